//! Host functions for components: the functions a component imports besides WASI 0.2, served
//! by JS functions with the WIT value mapping of `component_values.rs` in both directions. An
//! imported interface is `imports['ns:pkg/iface@1.0.0']['fn-name']`, a top-level imported
//! function `imports['fn-name']`. `lib/host.js` gathers the values in the order
//! `componentImportFunctions` lists; a guest on the JS thread calls them directly, a guest on a
//! pool thread through `host_calls.rs`.

use crate::component_values::{from_js, to_js, JsOut};
use crate::engine::{engine, Host};
use crate::error::{ErrorCode, Failure, HostThrow, Result, Thrown};
use crate::host_functions::{call_js, HandleScope, LocalValues};
use crate::module::{Compiled, Module};
use crate::wasm_values::type_error;
use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, ToNapiValue, Unknown};
use napi::{sys, Env, ValueType};
use std::sync::Arc;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{self, Component, Type, Val};
use wasmtime::StoreContextMut;

/// One imported function JS serves.
#[derive(Clone)]
pub struct ComponentHostFunction {
    pub interface: Option<String>,
    pub name: String,
    /// `my:pkg/api#fn`, or the function's name at the top level, for messages.
    pub path: String,
    /// Per parameter: its path for messages and its type.
    pub params: Vec<(String, Type)>,
    pub results: Vec<Type>,
}

/// An imported function JS must supply, as `lib/host.js` looks it up.
#[napi(object)]
pub struct ComponentImportName {
    /// The imported interface (`ns:pkg/iface@1.0.0`), or none for a top-level function.
    pub interface: Option<String>,
    pub name: String,
}

/// The functions `component` imports that WASI does not serve, in order.
fn import_functions(component: &Component) -> Vec<ComponentHostFunction> {
    let engine = engine();
    let mut functions = Vec::new();
    let function = |interface: Option<&str>, name: &str, ty: &component::types::ComponentFunc| {
        let path = match interface {
            Some(interface) => format!("{interface}#{name}"),
            None => name.to_string(),
        };
        ComponentHostFunction {
            interface: interface.map(str::to_string),
            name: name.to_string(),
            params: ty
                .params()
                .enumerate()
                .map(|(i, (param, ty))| (format!("{path}: argument {i} ({param})"), ty))
                .collect(),
            results: ty.results().collect(),
            path,
        }
    };
    for (name, item) in component.component_type().imports(engine) {
        match &item.ty {
            ComponentItem::ComponentFunc(ty) => functions.push(function(None, name, ty)),
            ComponentItem::ComponentInstance(instance) if !name.starts_with("wasi:") => {
                for (fname, fitem) in instance.exports(engine) {
                    if let ComponentItem::ComponentFunc(ty) = &fitem.ty {
                        functions.push(function(Some(name), fname, ty));
                    }
                }
            }
            _ => {}
        }
    }
    functions
}

/// Internal: the functions a component imports that JS must supply. Used by `lib/host.js`.
#[napi]
pub fn component_import_functions(module: &Module) -> Vec<ComponentImportName> {
    match &module.inner.compiled {
        Compiled::Component(component) => import_functions(component)
            .into_iter()
            .map(|f| ComponentImportName {
                interface: f.interface,
                name: f.name,
            })
            .collect(),
        Compiled::Core(_) => Vec::new(),
    }
}

/// The functions JS serves for one component.
#[derive(Clone)]
pub struct ComponentPlan {
    /// Every listed import is served (the cache key of the pre-linked form).
    pub mask: Arc<[bool]>,
    pub functions: Arc<[ComponentHostFunction]>,
}

impl ComponentPlan {
    /// Checks `values` (one per function `import_functions` lists): each must be a function.
    pub fn resolve(component: &Component, values: &Object) -> Result<Option<ComponentPlan>> {
        let functions = import_functions(component);
        for (index, function) in functions.iter().enumerate() {
            let value: Unknown = values
                .get_element(index as u32)
                .map_err(|_| link_error(format!("imports for {} cannot be read", function.path)))?;
            if value.get_type().ok() != Some(ValueType::Function) {
                let place = match &function.interface {
                    Some(interface) => format!("imports['{interface}']['{}']", function.name),
                    None => format!("imports['{}']", function.name),
                };
                return Err(link_error(format!(
                    "The component imports {}, a function; {place} must be a function that \
                     serves it",
                    function.path
                )));
            }
        }
        if functions.is_empty() {
            return Ok(None);
        }
        Ok(Some(ComponentPlan {
            mask: vec![true; functions.len()].into(),
            functions: functions.into(),
        }))
    }
}

fn link_error(message: String) -> Failure {
    Failure::new(ErrorCode::WasmLink, message)
}

/// A linker serving `plan`'s functions on top of `base` (WASI 0.2).
pub fn user_component_linker(
    base: &component::Linker<Host>,
    plan: &ComponentPlan,
) -> Result<component::Linker<Host>> {
    let mut linker = base.clone();
    for (k, function) in plan.functions.iter().enumerate() {
        let body = move |mut store: StoreContextMut<'_, Host>,
                         _: component::types::ComponentFunc,
                         params: &[Val],
                         results: &mut [Val]| {
            component_host_call(&mut store, k, params, results)
        };
        let defined = match &function.interface {
            None => linker.root().func_new(&function.name, body),
            Some(interface) => linker
                .instance(interface)
                .and_then(|mut instance| instance.func_new(&function.name, body)),
        };
        defined.map_err(|e| link_error(crate::error::reason(&e)))?;
    }
    Ok(linker)
}

/// The JS functions of one component store.
pub struct ComponentImports {
    pub functions: Arc<[ComponentHostFunction]>,
    local: Option<LocalValues>,
}

impl ComponentImports {
    /// Served from `values` on this thread (and through a run's dispatcher from a pool thread).
    pub fn new(env: &Env, plan: &ComponentPlan, values: &Object) -> Result<Self> {
        Ok(ComponentImports {
            functions: plan.functions.clone(),
            local: Some(LocalValues::new(
                env,
                values,
                0..plan.functions.len() as u32,
            )?),
        })
    }

    /// The values array, while it is alive (on its own thread).
    pub fn local_values(&self, env: &Env) -> Option<sys::napi_value> {
        self.local
            .as_ref()
            .and_then(|local| local.values(env.raw()))
    }

    /// Served only through a run's dispatcher (`runWasm`).
    pub fn remote_only(plan: &ComponentPlan) -> Self {
        ComponentImports {
            functions: plan.functions.clone(),
            local: None,
        }
    }
}

fn component_host_call(
    store: &mut StoreContextMut<'_, Host>,
    k: usize,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let imports = store
        .data()
        .component_imports
        .clone()
        .ok_or_else(|| wasmtime::Error::msg("this store has no JS imports"))?;
    let function = &imports.functions[k];
    if let Some(local) = imports
        .local
        .as_ref()
        .filter(|local| local.on_this_thread())
    {
        let outcome = call_here(local, k, function, params)?;
        results.clone_from_slice(&outcome);
        return Ok(());
    }
    let dispatcher = store.data().dispatcher.clone().ok_or_else(|| {
        wasmtime::Error::msg("a JS host function was called from a thread that cannot reach JS")
    })?;
    let stop = store.data().stop.clone();
    let args = params
        .iter()
        .zip(&function.params)
        .map(|(val, (path, ty))| to_js(val.clone(), ty, path))
        .collect::<Result<Vec<JsOut>>>()
        .map_err(|failure| wasmtime::Error::msg(failure.message))?;
    let values = dispatcher.call_component(function, k as u32, args, &stop)?;
    results.clone_from_slice(&values);
    Ok(())
}

/// Calls the JS function of `function` on this (its) thread and converts what it returns.
fn call_here(
    local: &LocalValues,
    k: usize,
    function: &ComponentHostFunction,
    params: &[Val],
) -> wasmtime::Result<Vec<Val>> {
    let env = local.env();
    let scope = HandleScope::open(env);
    let outcome = (|| -> std::result::Result<Vec<Val>, Thrown> {
        let callee = local
            .function(k)
            .ok_or_else(|| type_error(env, "the host functions of this instance are gone"))?;
        let mut argv = Vec::with_capacity(params.len());
        for (val, (path, ty)) in params.iter().zip(&function.params) {
            let out = to_js(val.clone(), ty, path).map_err(|f| type_error(env, &f.message))?;
            // SAFETY: converting on this thread, inside the scope opened above.
            let value = unsafe { JsOut::to_napi_value(env, out) }
                .map_err(|_| type_error(env, "an argument cannot be converted"))?;
            argv.push(value);
        }
        let returned = call_js(
            env,
            callee,
            &argv,
            !function.results.is_empty(),
            &function.path,
        )?;
        results_from_js(env, returned, function)
    })();
    drop(scope);
    outcome.map_err(|thrown| HostThrow(Arc::new(thrown)).into())
}

/// What a component's host function returned, as its results (WIT has at most one).
pub fn results_from_js(
    env: sys::napi_env,
    returned: sys::napi_value,
    function: &ComponentHostFunction,
) -> std::result::Result<Vec<Val>, Thrown> {
    let Some(ty) = function.results.first() else {
        return Ok(Vec::new());
    };
    // SAFETY: a live handle of the current scope on this thread.
    let value = unsafe { Unknown::from_napi_value(env, returned) }
        .map_err(|_| type_error(env, "the result cannot be read"))?;
    let path = format!("{}: result", function.path);
    let val = from_js(&value, ty, &path).map_err(|failure| type_error(env, &failure.message))?;
    Ok(vec![val])
}
