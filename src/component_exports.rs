//! The `exports` object of a component instance: its functions, at the top level and inside
//! exported interfaces (`exports['my:pkg/iface'].fn`), callable from JS with the value
//! mapping of `component_values.rs`, and its exported resources as JS classes
//! (`exports['my:pkg/iface'].blob`, see `component_resources.rs`). `wasi:cli/run#run` shares
//! the start-once flag.

use crate::component_resources::{
    guest_handle, member_of, GuestClass, GuestClasses, ResourceCx, SendRef,
};
use crate::component_scalars;
use crate::component_values::{from_js, to_js, JsOut};
use crate::error::{ErrorCode, Failure, Result};
use crate::instance::{exit_failure, Running};
use crate::native_function::{self, NativeCall};
use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, ToNapiValue, Unknown};
use napi::{sys, Env, JsValue};
use smallvec::{smallvec, SmallVec};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Func, Instance, Type, Val};
use wasmtime::{AsContext, AsContextMut};

/// One exported function or resource member, found in the instance.
struct Export {
    /// The exported interface, or none at the top level.
    interface: Option<String>,
    name: String,
    func: Func,
}

/// Builds the exports object of `instance`, a live instance of `component`.
pub fn component_exports<'env>(
    env: &'env Env,
    running: &Arc<Running>,
    instance: &Instance,
    component: &Component,
) -> napi::Result<Object<'env>> {
    let engine = component.engine();
    let ty = component.component_type();
    let mut functions = Vec::new();
    let mut resources = Vec::new();
    // The top-level names in the component's order (functions and interfaces).
    let mut order = Vec::new();
    running
        .with_store(|mut store| {
            for (name, item) in ty.exports(engine) {
                let is_interface = matches!(item.ty, ComponentItem::ComponentInstance(_));
                order.push((name.to_string(), is_interface));
                match &item.ty {
                    ComponentItem::ComponentFunc(_) => {
                        if let Some(func) = instance.get_func(&mut store, name) {
                            functions.push(Export {
                                interface: None,
                                name: name.into(),
                                func,
                            });
                        }
                    }
                    ComponentItem::ComponentInstance(interface) => {
                        let Some(parent) = instance.get_export_index(&mut store, None, name) else {
                            continue;
                        };
                        for (member, item) in interface.exports(engine) {
                            let Some(index) =
                                instance.get_export_index(&mut store, Some(&parent), member)
                            else {
                                continue;
                            };
                            match item.ty {
                                ComponentItem::ComponentFunc(_) => {
                                    if let Some(func) = instance.get_func(&mut store, index) {
                                        functions.push(Export {
                                            interface: Some(name.into()),
                                            name: member.into(),
                                            func,
                                        });
                                    }
                                }
                                ComponentItem::Resource(_) => {
                                    if let Some(ty) = instance.get_resource(&mut store, index) {
                                        resources.push((name.to_string(), member.to_string(), ty));
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
        })
        .map_err(|f| f.into_napi(env))?;

    // Each exported resource's class: a prototype, filled below with its methods.
    let mut prototypes = Vec::new();
    let mut classes = Vec::new();
    for (_, name, ty) in &resources {
        let prototype = Object::new(env)?;
        let mut weak = std::ptr::null_mut();
        // SAFETY: a weak reference (the functions hold the prototypes, see below) to the
        // object just made, on this thread.
        unsafe { sys::napi_create_reference(env.raw(), prototype.raw(), 0, &mut weak) };
        classes.push(GuestClass {
            ty: *ty,
            name: name.clone(),
            prototype: SendRef(weak),
        });
        prototypes.push(prototype);
    }
    let classes = Arc::new(GuestClasses {
        running: running.clone(),
        env: env.raw(),
        classes,
    });
    // Every function holds the prototypes (a JS edge), so they live while any function does,
    // and nothing native holds them strongly (which would pin the instance forever).
    let mut held = env.create_array(prototypes.len() as u32)?;
    for (i, prototype) in prototypes.iter().enumerate() {
        held.set(i as u32, *prototype)?;
    }

    let mut top = Object::new(env)?;
    let mut interfaces: Vec<(String, Object)> = Vec::new();
    let mut constructors: Vec<Option<Object>> = vec![None; resources.len()];
    let mut statics = Vec::new();
    for export in functions {
        let qualified = match &export.interface {
            Some(interface) => format!("{interface}#{}", export.name),
            None => export.name.clone(),
        };
        let entry = export
            .interface
            .as_deref()
            .is_some_and(|i| i.starts_with("wasi:cli/run@"))
            && export.name == "run";
        let (kind, resource, member) = member_of(&export.name);
        let class = resource.and_then(|resource| {
            resources.iter().position(|(interface, name, _)| {
                Some(interface.as_str()) == export.interface.as_deref() && name == resource
            })
        });
        let this_first = kind == "method" && class.is_some();
        let function = js_function(
            env,
            running,
            &qualified,
            export.func,
            entry,
            &classes,
            this_first,
        )?;
        // SAFETY: the function made just above, in this scope.
        let mut function_object = unsafe { Object::from_napi_value(env.raw(), function.raw())? };
        if !prototypes.is_empty() {
            crate::host_functions::hold(env, &mut function_object, PROTOTYPES_KEY, held.raw())?;
        }
        match (kind, class) {
            ("constructor", Some(class)) => {
                let prototype = &mut prototypes[class];
                function_object.set_named_property("prototype", *prototype)?;
                prototype.set_named_property("constructor", function_object)?;
                constructors[class] = Some(function_object);
            }
            ("method", Some(class)) => {
                prototypes[class].set_named_property(member.unwrap_or_default(), function)?;
            }
            ("static", Some(class)) => {
                statics.push((
                    class,
                    member.unwrap_or_default().to_string(),
                    function_object,
                ));
            }
            _ => {
                let target = match &export.interface {
                    None => &mut top,
                    Some(interface) => interface_object(env, &mut interfaces, interface)?,
                };
                target.set_named_property(&export.name, function)?;
            }
        }
    }
    // Each class is its constructor (or, without one, a function that says so), with the
    // statics and `[Symbol.dispose]`.
    for (class, (interface, name, _)) in resources.iter().enumerate() {
        let constructor = match constructors[class] {
            Some(constructor) => constructor,
            None => {
                let resource = name.clone();
                let mut constructor = env
                    .create_function_from_closure::<(), (), _>(name, move |_| {
                        Err(napi::Error::new(
                            napi::Status::InvalidArg,
                            format!("the resource {resource} has no constructor: its objects come from the component's functions"),
                        ))
                    })?
                    .coerce_to_object()?;
                constructor.set_named_property("prototype", prototypes[class])?;
                prototypes[class].set_named_property("constructor", constructor)?;
                constructor
            }
        };
        install_dispose(env, &mut prototypes[class], name)?;
        let mut constructor = constructor;
        for (_, member, function) in statics.iter().filter(|(of, _, _)| *of == class) {
            constructor.set_named_property(member, *function)?;
        }
        let interface_object = interface_object(env, &mut interfaces, interface)?;
        interface_object.set_named_property(name, constructor)?;
    }
    let mut object = Object::new(env)?;
    for (name, is_interface) in order {
        if is_interface {
            let functions = interface_object(env, &mut interfaces, &name)?;
            object.set_named_property(&name, *functions)?;
        } else if top.has_named_property(&name)? {
            object.set_named_property(&name, top.get_named_property::<Unknown>(&name)?)?;
        }
    }
    Ok(object)
}

/// The `Symbol.for` key under which every export function holds its instance's prototypes.
const PROTOTYPES_KEY: &str = "node-wasmtime.resource-classes";

fn interface_object<'a, 'env>(
    env: &'env Env,
    interfaces: &'a mut Vec<(String, Object<'env>)>,
    interface: &str,
) -> napi::Result<&'a mut Object<'env>> {
    let at = match interfaces.iter().position(|(name, _)| name == interface) {
        Some(at) => at,
        None => {
            interfaces.push((interface.to_string(), Object::new(env)?));
            interfaces.len() - 1
        }
    };
    Ok(&mut interfaces[at].1)
}

/// `prototype[Symbol.dispose]`: drops the guest's handle (its destructor runs) once.
fn install_dispose(env: &Env, prototype: &mut Object, class: &str) -> napi::Result<()> {
    let class = class.to_string();
    let dispose =
        env.create_function_from_closure::<(), (), _>("[Symbol.dispose]", move |ctx| {
            let env = Env::from_raw(ctx.env.raw());
            let this: Unknown = ctx.this()?;
            let Some(handle) = guest_handle(env.raw(), this.raw()) else {
                return Err(Failure::new(
                    ErrorCode::InvalidArgType,
                    format!("[Symbol.dispose] must be called on a {class}"),
                )
                .into_napi(&env));
            };
            let taken = handle
                .handle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(any) = taken {
                handle
                    .running
                    .with_store(|mut store| any.resource_drop(store.as_context_mut()))
                    .and_then(|dropped| dropped.map_err(exit_failure))
                    .map_err(|f| f.into_napi(&env))?;
            }
            Ok(())
        })?;
    // `prototype[Symbol.dispose] = dispose`, through JS's own Symbol.dispose.
    let symbol: Unknown = env
        .get_global()?
        .get_named_property::<Unknown>("Symbol")?
        .coerce_to_object()?
        .get_named_property("dispose")?;
    // SAFETY: setting a property with live handles of this scope.
    let status =
        unsafe { sys::napi_set_property(env.raw(), prototype.raw(), symbol.raw(), dispose.raw()) };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::new(
            napi::Status::GenericFailure,
            "cannot define [Symbol.dispose]",
        ));
    }
    Ok(())
}

/// One exported function's types and messages, worked out once when the exports object is
/// built.
struct Signature {
    /// Per parameter: its path for messages (`add: argument 0 (a)`) and its type.
    params: Vec<(String, Type)>,
    results: Vec<Type>,
    result_path: String,
    /// Every parameter and the result (if any) are booleans or numbers: calls take
    /// `component_scalars.rs`'s lane.
    scalar: bool,
}

/// What one export function's callback needs.
struct ComponentExport {
    running: Arc<Running>,
    func: Func,
    name: String,
    sig: Signature,
    /// `wasi:cli/run#run`: runs at most once per `WASI` object.
    is_entry: bool,
    classes: Arc<GuestClasses>,
    /// A resource method: `this` is its first argument (the resource).
    this_first: bool,
}

fn js_function<'env>(
    env: &'env Env,
    running: &Arc<Running>,
    name: &str,
    func: Func,
    is_entry: bool,
    classes: &Arc<GuestClasses>,
    this_first: bool,
) -> napi::Result<Unknown<'env>> {
    let sig = running
        .with_store(|store| {
            let ty = func.ty(&store);
            let params: Vec<_> = ty
                .params()
                .enumerate()
                .map(|(i, (param, ty))| (format!("{name}: argument {i} ({param})"), ty))
                .collect();
            let results: Vec<_> = ty.results().collect();
            let scalar = !is_entry
                && !this_first
                && results.len() <= 1
                && results.iter().all(component_scalars::is_scalar)
                && params
                    .iter()
                    .all(|(_, ty)| component_scalars::is_scalar(ty));
            Signature {
                params,
                results,
                result_path: format!("{name}: result"),
                scalar,
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
    let export = ComponentExport {
        running: running.clone(),
        func,
        name: name.to_string(),
        sig,
        is_entry,
        classes: classes.clone(),
        this_first,
    };
    let function = native_function::create(env, name, export)?;
    if let Some(values) = values {
        // Holding the function keeps the host functions it may reach alive.
        // SAFETY: the function made just above, in this scope.
        let mut object = unsafe { Object::from_napi_value(env.raw(), function)? };
        crate::host_functions::hold_values(env, &mut object, values)?;
    }
    // SAFETY: as above.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), function) })
}

impl NativeCall for ComponentExport {
    fn wanted(&self) -> usize {
        // A method's first parameter (the resource) is `this`.
        self.sig
            .params
            .len()
            .saturating_sub(usize::from(self.this_first))
    }

    /// `this` and the `count` arguments passed (of `args`), as the export's arguments.
    fn call(
        &self,
        env: sys::napi_env,
        this: sys::napi_value,
        args: &[sys::napi_value],
        count: usize,
    ) -> Result<sys::napi_value> {
        if self.sig.scalar && count >= args.len() {
            let mut params: SmallVec<[Val; 4]> = SmallVec::new();
            for ((_, ty), raw) in self.sig.params.iter().zip(args) {
                // SAFETY: handles of the calling callback's scope.
                match unsafe { component_scalars::from_napi(env, *raw, ty) } {
                    Some(val) => params.push(val),
                    None => break,
                }
            }
            // An argument the lane does not take is converted (or reported) below.
            if params.len() == args.len() {
                return call_scalar(self, env, &params);
            }
        }
        // SAFETY: handles of the calling callback's scope.
        let value = |raw| unsafe { Unknown::from_raw_unchecked(env, raw) };
        let mut values: SmallVec<[Unknown; 4]> = SmallVec::new();
        if self.this_first {
            values.push(value(this));
        }
        values.extend(args.iter().take(count).map(|raw| value(*raw)));
        let result = call(self, &values)?;
        // SAFETY: converting on the callback's thread, in its scope.
        unsafe { JsOut::to_napi_value(env, result) }.map_err(|e| {
            Failure::new(
                ErrorCode::InvalidArgValue,
                format!("{}: result: {}", self.name, e.reason),
            )
        })
    }
}

/// Calls an export of booleans and numbers (`Signature::scalar`) with its arguments.
fn call_scalar(
    export: &ComponentExport,
    env: sys::napi_env,
    params: &[Val],
) -> Result<sys::napi_value> {
    let ComponentExport { running, func, .. } = export;
    let mut results = [Val::Bool(false)];
    let results = &mut results[..export.sig.results.len()];
    running.with_store(|mut store| {
        let _ticking = running.arm(&mut store);
        func.call(store.as_context_mut(), params, results)
            .map_err(exit_failure)
    })??;
    let converted = match results.first() {
        // SAFETY: on the callback's thread, in its scope.
        Some(val) => unsafe { component_scalars::to_napi(env, val) },
        None => {
            let mut undefined = std::ptr::null_mut();
            // SAFETY: as above.
            unsafe { sys::napi_get_undefined(env, &mut undefined) };
            Some(undefined)
        }
    };
    converted.ok_or_else(|| {
        Failure::new(
            ErrorCode::InvalidArgValue,
            format!("{}: cannot convert the result", export.sig.result_path),
        )
    })
}

/// Calls the export with JS arguments and returns its result for JS (`undefined` if none).
fn call(export: &ComponentExport, args: &[Unknown]) -> Result<JsOut> {
    let ComponentExport {
        running,
        func,
        name,
        sig,
        is_entry,
        classes,
        ..
    } = export;
    if *is_entry {
        running.not_disposed()?;
        if running.started.swap(true, Ordering::SeqCst) {
            return Err(crate::wasi::already_started());
        }
    }
    // The arguments are converted before the store is taken: a getter or Proxy trap on an
    // argument may call into this same instance. (So the JS objects of host resources, which
    // need the store, cannot be passed here.)
    let count = sig.params.len();
    let mut cx = ResourceCx {
        guest: Some(classes),
        ..ResourceCx::default()
    };
    let mut params: SmallVec<[Val; 4]> = SmallVec::with_capacity(count);
    for (i, (path, ty)) in sig.params.iter().enumerate() {
        params.push(match args.get(i) {
            Some(value) => from_js(value, ty, path, &mut cx)?,
            None if matches!(ty, Type::Option(_)) => Val::Option(None),
            None => {
                return Err(Failure::new(
                    ErrorCode::InvalidArgType,
                    format!("{path} is missing: {name} takes {count} arguments"),
                ))
            }
        });
    }
    let mut results: SmallVec<[Val; 1]> = smallvec![Val::Bool(false); sig.results.len()];
    let mut values = running.with_store(|mut store| -> Result<SmallVec<[JsOut; 1]>> {
        {
            let _ticking = running.arm(&mut store);
            func.call(store.as_context_mut(), &params, &mut results)
                .map_err(exit_failure)?;
        }
        // Results convert with the store at hand (host resources live in it); no JS runs.
        let imports = store.as_context().data().component_imports.clone();
        let mut cx = ResourceCx {
            store: Some(store.as_context_mut()),
            host: imports.as_deref().map(|i| (&*i.resources, &*i.objects)),
            guest: Some(classes),
            defer: false,
        };
        let mut values = SmallVec::with_capacity(results.len());
        for (val, ty) in results.into_iter().zip(&sig.results) {
            values.push(to_js(val, ty, &sig.result_path, &mut cx)?);
        }
        Ok(values)
    })??;
    Ok(match values.len() {
        0 => JsOut::Undefined,
        1 => values.remove(0),
        _ => JsOut::Array(values.into_vec()),
    })
}

/// wasmtime's own cost of a component export call, with no JS in the way: the floor under
/// bench (j). Run with `cargo test --release --lib component_call_floor -- --ignored
/// --nocapture`.
#[cfg(test)]
mod component_call_floor {
    #[test]
    #[ignore = "a measurement, not a check"]
    fn component_call_floor() {
        use wasmtime::component::{Component, TypedFunc, Val};
        let engine = crate::engine::engine();
        let bytes = std::fs::read("__test__/fixtures/components/no-run.wasm").unwrap();
        let component = Component::new(engine, &bytes).unwrap();
        let key = crate::engine::EngineKey::default();
        let linker = &crate::engine::engine_for(key).unwrap().component_linker;
        let wasi = wasmtime_wasi::WasiCtxBuilder::new().build_p1();
        let host = crate::engine::Host::new(wasi, Default::default(), Default::default(), false);
        let mut store = wasmtime::Store::new(engine, host);
        store.set_epoch_deadline(u64::MAX);
        let instance = linker.instantiate(&mut store, &component).unwrap();
        let func = instance.get_func(&mut store, "add").unwrap();
        let typed: TypedFunc<(i32, i32), (i32,)> = func.typed(&store).unwrap();
        let n = 2_000_000;
        for round in 0..3 {
            let start = std::time::Instant::now();
            for i in 0..n {
                assert_eq!(typed.call(&mut store, (i, 1)).unwrap(), (i + 1,));
            }
            let typed_ns = start.elapsed().as_nanos() as f64 / n as f64;
            let start = std::time::Instant::now();
            let mut results = [Val::Bool(false)];
            for i in 0..n {
                func.call(&mut store, &[Val::S32(i), Val::S32(1)], &mut results)
                    .unwrap();
                assert_eq!(results[0], Val::S32(i + 1));
            }
            let val_ns = start.elapsed().as_nanos() as f64 / n as f64;
            eprintln!("round {round}: TypedFunc::call {typed_ns:.1} ns, Func::call {val_ns:.1} ns");
        }
    }
}
