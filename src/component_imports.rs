//! Host functions for components: the functions a component imports besides WASI 0.2, served
//! by JS functions with the WIT value mapping of `component_values.rs` in both directions. An
//! imported interface is `imports['ns:pkg/iface@1.0.0']['fn-name']`, a top-level imported
//! function `imports['fn-name']`, an imported resource a JS class under its name (its
//! constructor, methods and statics are the functions; `component_resources.rs` keeps the
//! objects). `lib/host.js` gathers the values in the order `componentImportFunctions` lists;
//! a guest on the JS thread calls them directly, a guest on a pool thread through
//! `host_calls.rs`.

use crate::component_resources::{
    drop_host_object, imported_resources, member_of, HostObjects, HostResourceType, ResourceCx,
};
use crate::component_values::{from_js, to_js, JsOut};
use crate::engine::Host;
use crate::error::{ErrorCode, Failure, HostThrow, Result, Thrown};
use crate::host_functions::{call_js, HandleScope, LocalValues};
use crate::module::{Compiled, Module};
use crate::store_access;
use crate::wasm_values::type_error;
use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, ToNapiValue, Unknown};
use napi::{sys, Env, ValueType};
use std::sync::Arc;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{self, Component, Type, Val};
use wasmtime::{AsContextMut, StoreContextMut};

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
    /// What it is to JS: see `ComponentImportName`.
    pub kind: &'static str,
    pub resource: Option<String>,
    pub member: Option<String>,
}

impl ComponentHostFunction {
    /// The call that runs `[Symbol.dispose]()` on a host resource's object for a guest on a
    /// pool thread (`component_resources::DISPOSE_INDEX`).
    pub fn dispose() -> Self {
        ComponentHostFunction {
            interface: None,
            name: "[Symbol.dispose]".into(),
            path: "[Symbol.dispose] of a host resource".into(),
            params: Vec::new(),
            results: Vec::new(),
            kind: "dispose",
            resource: None,
            member: None,
        }
    }
}

/// An imported function JS must supply, as `lib/host.js` looks it up.
#[napi(object)]
pub struct ComponentImportName {
    /// The imported interface (`ns:pkg/iface@1.0.0`), or none for a top-level function.
    pub interface: Option<String>,
    pub name: String,
    /// `function`, or `constructor`, `method` or `static` of the JS class `resource`.
    pub kind: String,
    pub resource: Option<String>,
    /// A method's or static function's name.
    pub member: Option<String>,
}

/// The functions `component` imports that WASI does not serve, in order.
fn import_functions(component: &Component) -> Vec<ComponentHostFunction> {
    let engine = component.engine();
    let mut functions = Vec::new();
    let function = |interface: Option<&str>, name: &str, ty: &component::types::ComponentFunc| {
        let path = match interface {
            Some(interface) => format!("{interface}#{name}"),
            None => name.to_string(),
        };
        let (kind, resource, member) = member_of(name);
        ComponentHostFunction {
            interface: interface.map(str::to_string),
            name: name.to_string(),
            kind,
            resource: resource.map(str::to_string),
            member: member.map(str::to_string),
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
#[napi(catch_unwind)]
pub fn component_import_functions(module: &Module) -> Vec<ComponentImportName> {
    match &module.inner.compiled {
        Compiled::Component(component) => import_functions(component)
            .into_iter()
            .map(|f| ComponentImportName {
                interface: f.interface,
                name: f.name,
                kind: f.kind.to_string(),
                resource: f.resource,
                member: f.member,
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
    /// The resource types JS serves (their classes are behind some of `functions`).
    pub resources: Arc<[HostResourceType]>,
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
                let scope = |key: &str| match &function.interface {
                    Some(interface) => format!("imports['{interface}']['{key}']"),
                    None => format!("imports['{key}']"),
                };
                return Err(link_error(match (&function.resource, &function.member) {
                    (Some(resource), None) => format!(
                        "The component imports the resource {resource} (with its constructor \
                         {}); {} must be the JS class that serves it",
                        function.path,
                        scope(resource)
                    ),
                    (Some(resource), Some(member)) => format!(
                        "The component imports {}, a {} of the resource {resource}; {} must \
                         be the JS class that serves it, with a static function {member}",
                        function.path,
                        function.kind,
                        scope(resource)
                    ),
                    _ => format!(
                        "The component imports {}, a function; {} must be a function that \
                         serves it",
                        function.path,
                        scope(&function.name)
                    ),
                }));
            }
        }
        if functions.is_empty() {
            return Ok(None);
        }
        Ok(Some(ComponentPlan {
            mask: vec![true; functions.len()].into(),
            functions: functions.into(),
            resources: imported_resources(component).into(),
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
    for resource in plan.resources.iter() {
        let ty = component::ResourceType::host_dynamic(resource.payload);
        let defined = match &resource.interface {
            None => linker.root().resource(&resource.name, ty, drop_host_object),
            Some(interface) => linker
                .instance(interface)
                .and_then(|mut instance| instance.resource(&resource.name, ty, drop_host_object)),
        };
        defined.map_err(|e| link_error(crate::error::reason(&e)))?;
    }
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
    pub resources: Arc<[HostResourceType]>,
    /// The JS objects behind the guest's handles to host resources.
    pub objects: Arc<HostObjects>,
    local: Option<LocalValues>,
}

impl ComponentImports {
    /// Served from `values` on this thread (and through a run's dispatcher from a pool thread).
    pub fn new(env: &Env, plan: &ComponentPlan, values: &Object) -> Result<Self> {
        Ok(ComponentImports {
            functions: plan.functions.clone(),
            resources: plan.resources.clone(),
            objects: Arc::new(HostObjects::new(env)),
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

    /// Served only through a run's dispatcher (`runWasm`), with `objects` (made on the JS
    /// thread) for host resources.
    pub fn remote_only(plan: &ComponentPlan, objects: Arc<HostObjects>) -> Self {
        ComponentImports {
            functions: plan.functions.clone(),
            resources: plan.resources.clone(),
            objects,
            local: None,
        }
    }

    /// The conversion context of a call in `store` (host resources are this store's), or,
    /// without it, of a pool guest's call on the JS thread (`ResourceCx::defer`).
    pub fn cx<'a>(&'a self, store: Option<StoreContextMut<'a, Host>>) -> ResourceCx<'a> {
        ResourceCx {
            defer: store.is_none(),
            store,
            host: Some((&self.resources, &*self.objects)),
            guest: None,
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
        let _entered = store_access::enter_component(store.data().id);
        let mut cx = imports.cx(Some(store.as_context_mut()));
        let outcome = call_here(local, k, function, params, &mut cx)?;
        results.clone_from_slice(&outcome);
        return Ok(());
    }
    let dispatcher = store.data().dispatcher.clone().ok_or_else(|| {
        wasmtime::Error::msg("a JS host function was called from a thread that cannot reach JS")
    })?;
    let stop = store.data().stop.clone();
    let mut cx = imports.cx(Some(store.as_context_mut()));
    let args = params
        .iter()
        .zip(&function.params)
        .map(|(val, (path, ty))| to_js(val.clone(), ty, path, &mut cx))
        .collect::<Result<Vec<JsOut>>>()
        .map_err(|failure| wasmtime::Error::msg(failure.into_message()))?;
    let values = dispatcher.call_component(function, k as u32, args, &stop, imports.clone())?;
    let path = format!("{}: result", function.path);
    for ((slot, val), ty) in results.iter_mut().zip(values).zip(&function.results) {
        *slot = cx
            .finish(val, ty, &path)
            .map_err(|failure| wasmtime::Error::msg(failure.into_message()))?;
    }
    Ok(())
}

/// Calls the JS function of `function` on this (its) thread and converts what it returns.
fn call_here(
    local: &LocalValues,
    k: usize,
    function: &ComponentHostFunction,
    params: &[Val],
    cx: &mut ResourceCx,
) -> wasmtime::Result<Vec<Val>> {
    let env = local.env();
    let scope = HandleScope::open(env);
    let outcome = (|| -> std::result::Result<Vec<Val>, Thrown> {
        let callee = local
            .function(k)
            .ok_or_else(|| type_error(env, "the host functions of this instance are gone"))?;
        let mut argv = Vec::with_capacity(params.len());
        for (val, (path, ty)) in params.iter().zip(&function.params) {
            let out = to_js(val.clone(), ty, path, cx).map_err(|f| type_error(env, &f.message))?;
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
        results_from_js(env, returned, function, cx)
    })();
    drop(scope);
    outcome.map_err(|thrown| HostThrow(Arc::new(thrown)).into())
}

/// What a component's host function returned, as its results (WIT has at most one).
pub fn results_from_js(
    env: sys::napi_env,
    returned: sys::napi_value,
    function: &ComponentHostFunction,
    cx: &mut ResourceCx,
) -> std::result::Result<Vec<Val>, Thrown> {
    let Some(ty) = function.results.first() else {
        return Ok(Vec::new());
    };
    // SAFETY: a live handle of the current scope on this thread.
    let value = unsafe { Unknown::from_napi_value(env, returned) }
        .map_err(|_| type_error(env, "the result cannot be read"))?;
    let path = format!("{}: result", function.path);
    let val =
        from_js(&value, ty, &path, cx).map_err(|failure| type_error(env, &failure.message))?;
    Ok(vec![val])
}
