//! The `exports` object of a component instance: its functions, at the top level and inside
//! exported interfaces (`exports['my:pkg/iface'].fn`), callable from JS with the value
//! mapping of `component_values.rs`. `wasi:cli/run#run` shares the start-once flag.

use crate::component_values::{from_js, to_js, JsOut};
use crate::error::{ErrorCode, Failure, Result};
use crate::instance::{exit_failure, Running};
use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, Unknown};
use napi::{Env, JsValue};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Func, Instance, Type, Val};
use wasmtime::AsContext;

/// Builds the exports object of `instance`, a live instance of `component`.
pub fn component_exports<'env>(
    env: &'env Env,
    running: &Arc<Running>,
    instance: &Instance,
    component: &Component,
) -> napi::Result<Object<'env>> {
    let engine = crate::engine::engine();
    let mut object = Object::new(env)?;
    let ty = component.component_type();
    for (name, item) in ty.exports(engine) {
        match &item.ty {
            ComponentItem::ComponentFunc(_) => {
                let func = running
                    .with_store(|store| instance.get_func(store, name))
                    .map_err(|f| f.into_napi(env))?;
                if let Some(func) = func {
                    object
                        .set_named_property(name, js_function(env, running, name, func, false)?)?;
                }
            }
            ComponentItem::ComponentInstance(interface) => {
                let is_run = name.starts_with("wasi:cli/run@");
                let mut functions = Object::new(env)?;
                for (fname, fitem) in interface.exports(engine) {
                    if !matches!(fitem.ty, ComponentItem::ComponentFunc(_)) {
                        continue;
                    }
                    let func = running
                        .with_store(|mut store| {
                            let parent = instance.get_export_index(&mut store, None, name)?;
                            let index =
                                instance.get_export_index(&mut store, Some(&parent), fname)?;
                            instance.get_func(&mut store, index)
                        })
                        .map_err(|f| f.into_napi(env))?;
                    if let Some(func) = func {
                        let entry = is_run && fname == "run";
                        let qualified = format!("{name}#{fname}");
                        functions.set_named_property(
                            fname,
                            js_function(env, running, &qualified, func, entry)?,
                        )?;
                    }
                }
                object.set_named_property(name, functions)?;
            }
            _ => {}
        }
    }
    Ok(object)
}

/// One exported function's types and messages, worked out once when the exports object is
/// built.
struct Signature {
    /// Per parameter: its path for messages (`add: argument 0 (a)`) and its type.
    params: Vec<(String, Type)>,
    results: Vec<Type>,
    result_path: String,
}

fn js_function<'env>(
    env: &'env Env,
    running: &Arc<Running>,
    name: &str,
    func: Func,
    is_entry: bool,
) -> napi::Result<napi::bindgen_prelude::Function<'env, Vec<Unknown<'env>>, JsOut>> {
    let running = running.clone();
    let name_for_errors = name.to_string();
    let sig = running
        .with_store(|store| {
            let ty = func.ty(&store);
            Signature {
                params: ty
                    .params()
                    .enumerate()
                    .map(|(i, (param, ty))| (format!("{name}: argument {i} ({param})"), ty))
                    .collect(),
                results: ty.results().collect(),
                result_path: format!("{name}: result"),
            }
        })
        .map_err(|f| f.into_napi(env))?;
    let values = running
        .with_store(|store| {
            store
                .as_context()
                .data()
                .component_imports
                .as_ref()
                .and_then(|imports| imports.local_values(env))
        })
        .map_err(|f| f.into_napi(env))?;
    let function = env.create_function_from_closure::<Vec<Unknown>, _, _>(name, move |ctx| {
        let env = Env::from_raw(ctx.env.raw());
        let args: Vec<Unknown> = (0..ctx.length())
            .map(|i| ctx.get::<Unknown>(i))
            .collect::<napi::Result<_>>()?;
        call(&running, func, &name_for_errors, &sig, is_entry, &args)
            .map_err(|failure| failure.into_napi(&env))
    })?;
    if let Some(values) = values {
        // Holding the function keeps the host functions it may reach alive.
        // SAFETY: the function made just above, in this scope.
        let mut object = unsafe { Object::from_napi_value(env.raw(), function.raw())? };
        crate::host_functions::hold_values(env, &mut object, values)?;
    }
    Ok(function)
}

/// Calls `func` with JS arguments and returns its result for JS (`undefined` if none).
fn call(
    running: &Running,
    func: Func,
    name: &str,
    sig: &Signature,
    is_entry: bool,
    args: &[Unknown],
) -> Result<JsOut> {
    if is_entry && running.started.swap(true, Ordering::SeqCst) {
        return Err(crate::wasi::already_started());
    }
    // The arguments are converted before the store is taken: a getter or Proxy trap on an
    // argument may call into this same instance.
    let count = sig.params.len();
    let params = sig
        .params
        .iter()
        .enumerate()
        .map(|(i, (path, ty))| match args.get(i) {
            Some(value) => from_js(value, ty, path),
            None if matches!(ty, Type::Option(_)) => Ok(Val::Option(None)),
            None => Err(Failure::new(
                ErrorCode::InvalidArgType,
                format!("{path} is missing: {name} takes {count} arguments"),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut results = vec![Val::Bool(false); sig.results.len()];
    running
        .with_store(|mut store| {
            let _ticking = running.arm(&mut store);
            func.call(&mut store, &params, &mut results)
        })?
        .map_err(exit_failure)?;
    let mut values = results
        .into_iter()
        .zip(&sig.results)
        .map(|(val, ty)| to_js(val, ty, &sig.result_path))
        .collect::<Result<Vec<_>>>()?;
    Ok(match values.len() {
        0 => JsOut::Undefined,
        1 => values.remove(0),
        _ => JsOut::Array(values),
    })
}
