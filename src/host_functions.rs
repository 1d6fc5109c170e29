//! Host functions for core modules: JS functions a guest imports. `ImportPlan` checks a
//! JS import object (one value per import of the module, gathered by `lib/host.js`) against
//! the module's imports; `user_linker` defines one trampoline per JS-supplied import on top
//! of the WASI linker (so the pre-linked form is cached per module and import set, and each
//! instantiation only supplies its functions); a trampoline calls its JS function directly
//! when the guest runs on that function's JS thread, or through `host_calls.rs` from a pool
//! thread. Values convert as the WebAssembly JS API converts them.

use crate::component_imports::{ComponentImports, ComponentPlan};
use crate::component_resources::HostObjects;
use crate::engine::{Host, WASI_NAMESPACES};
use crate::error::{ErrorCode, Failure, HostThrow, Result, Thrown};
use crate::host_externs::{self, HostExtern};
use crate::module::{CompiledModule, UserImports};
use crate::store_access;
use crate::wasm_values::{self, check, type_error, Num, Refused, Signature};
use napi::bindgen_prelude::{JsObjectValue, Object, Unknown};
use napi::{sys, Env, JsValue, ValueType};
use std::mem::MaybeUninit;
use std::sync::Arc;
use wasmtime::{Caller, ExternType, FuncType, Linker, Val, ValRaw};

/// One import served by a JS function.
#[derive(Clone)]
pub struct HostFunction {
    /// Its position among the module's imports (and in the JS values array).
    pub import_index: u32,
    /// `module.name`, for messages.
    pub name: String,
    pub ty: FuncType,
    pub sig: Signature,
}

/// Which of a module's imports JS supplies, as checked against its import object.
#[derive(Clone)]
pub struct ImportPlan {
    /// Per import of the module: served by a JS function.
    pub mask: Arc<[bool]>,
    /// The JS-served imports, in import order (trampoline `k` serves `functions[k]`).
    pub functions: Arc<[HostFunction]>,
    /// The memories, tables and globals JS supplies, in import order.
    pub externs: Arc<[HostExtern]>,
}

impl ImportPlan {
    /// Checks `values` (the import object's value for each import of `module`, in order;
    /// `undefined` where absent) and plans which imports JS serves. `ERR_WASM_LINK` names the
    /// import, what the module expects and what was given. `None`: WASI serves everything.
    pub fn resolve(module: &wasmtime::Module, values: &Object) -> Result<Option<ImportPlan>> {
        let mut mask = Vec::new();
        let mut functions = Vec::new();
        let mut externs = Vec::new();
        for (index, import) in module.imports().enumerate() {
            let name = format!("{}.{}", import.module(), import.name());
            let value: Unknown = values
                .get_element(index as u32)
                .map_err(|_| link_error(format!("imports.{name} cannot be read")))?;
            let given = value.get_type().unwrap_or(ValueType::Unknown);
            let is_wasi = WASI_NAMESPACES.contains(&import.module());
            let ty = import.ty();
            let served_by_js = match (&ty, given) {
                (ExternType::Func(ty), ValueType::Function) => {
                    let sig = Signature::of(ty).ok_or_else(|| unsupported(&name, ty))?;
                    functions.push(HostFunction {
                        import_index: index as u32,
                        name,
                        ty: ty.clone(),
                        sig,
                    });
                    true
                }
                (_, ValueType::Undefined) if is_wasi => false,
                (_, ValueType::Undefined) => {
                    return Err(link_error(format!(
                        "The module imports {name}, {}, but imports.{name} is undefined. Supply \
                         {} there",
                        describe(&ty),
                        match ty {
                            ExternType::Func(_) => "a function",
                            ExternType::Memory(_) => "a Memory",
                            ExternType::Table(_) => "a Table",
                            ExternType::Global(_) => "a Global (or a number for an immutable one)",
                            ExternType::Tag(_) => "a tag",
                        }
                    )))
                }
                (ExternType::Func(_), _) => {
                    return Err(link_error(format!(
                        "imports.{name} must be a function: the module imports {}. Received {}",
                        describe(&ty),
                        type_name(given)
                    )))
                }
                (_, _) => match host_externs::resolve(&name, &ty, &value)? {
                    Some(given) => {
                        externs.push(HostExtern {
                            import_index: index as u32,
                            given,
                        });
                        true
                    }
                    None => {
                        return Err(link_error(format!(
                            "The module imports {name}, {}, which JS cannot supply",
                            describe(&ty)
                        )))
                    }
                },
            };
            mask.push(served_by_js);
        }
        if functions.is_empty() && externs.is_empty() {
            return Ok(None);
        }
        Ok(Some(ImportPlan {
            mask: mask.into(),
            functions: functions.into(),
            externs: externs.into(),
        }))
    }
}

fn link_error(message: String) -> Failure {
    Failure::new(ErrorCode::WasmLink, message)
}

fn unsupported(name: &str, ty: &FuncType) -> Failure {
    link_error(format!(
        "The module imports {name}, a function {}: JS host functions take and return i32, \
         i64, f32 and f64 only (v128 and references are not supported)",
        signature(ty)
    ))
}

/// `a function (i32, i32) -> i32`, `a memory`, ...
pub fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(ty) => format!("a function {}", signature(ty)),
        ExternType::Memory(ty) => format!("a memory of at least {} pages", ty.minimum()),
        ExternType::Table(_) => "a table".to_string(),
        ExternType::Global(ty) => format!("a global of type {}", ty.content()),
        ExternType::Tag(_) => "a tag".to_string(),
    }
}

/// `(i32, i64) -> f64`, `() -> ()`, `(i32) -> (i32, i32)`.
pub fn signature(ty: &FuncType) -> String {
    let list = |types: Vec<String>| types.join(", ");
    let params = list(ty.params().map(|t| t.to_string()).collect());
    let results: Vec<String> = ty.results().map(|t| t.to_string()).collect();
    match results.len() {
        1 => format!("({params}) -> {}", results[0]),
        _ => format!("({params}) -> ({})", list(results)),
    }
}

fn type_name(ty: ValueType) -> &'static str {
    match ty {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "a boolean",
        ValueType::Number => "a number",
        ValueType::String => "a string",
        ValueType::Symbol => "a symbol",
        ValueType::Object => "an object",
        ValueType::Function => "a function",
        ValueType::External => "an external",
        ValueType::BigInt => "a bigint",
        _ => "a value",
    }
}

/// A linker that serves `plan`'s imports of `module` through trampolines, on top of `base`
/// (WASI). A JS function under a WASI name replaces WASI's.
pub fn user_linker(
    base: &Linker<Host>,
    module: &wasmtime::Module,
    plan: &ImportPlan,
) -> Result<Linker<Host>> {
    let mut linker = base.clone();
    linker.allow_shadowing(true);
    for (k, function) in plan.functions.iter().enumerate() {
        let import = module
            .imports()
            .nth(function.import_index as usize)
            .expect("the plan was made for this module");
        // The type as the module in `base`'s engine has it (types belong to an engine).
        let ty = import
            .ty()
            .func()
            .cloned()
            .expect("the plan was made for this module");
        // SAFETY: `host_call` reads the parameters and writes the results of exactly this
        // type (its signature was worked out from it), numbers only.
        unsafe {
            linker.func_new_unchecked(
                import.module(),
                import.name(),
                ty,
                move |mut caller: Caller<'_, Host>, slots: &mut [MaybeUninit<ValRaw>]| {
                    host_call(&mut caller, k, slots)
                },
            )
        }
        .map_err(|e| link_error(crate::error::reason(&e)))?;
    }
    Ok(linker)
}

/// The JS functions of one store: the imports they serve and where to find them.
pub struct HostImports {
    pub functions: Arc<[HostFunction]>,
    /// The import values, for calls on their own JS thread.
    local: Option<LocalValues>,
}

impl HostImports {
    /// Imports served from `values` on this thread (and from a pool thread through the
    /// dispatcher of `host_calls.rs`, when a run sets one).
    pub fn new(env: &Env, plan: &ImportPlan, values: &Object) -> Result<Self> {
        Ok(HostImports {
            functions: plan.functions.clone(),
            local: Some(LocalValues::new(
                env,
                values,
                plan.functions.iter().map(|f| f.import_index),
            )?),
        })
    }

    /// Imports served only through a run's dispatcher (`runWasm`).
    pub fn remote_only(plan: &ImportPlan) -> Self {
        HostImports {
            functions: plan.functions.clone(),
            local: None,
        }
    }

    /// The import values array, while it is alive (on its own thread).
    pub fn local_values(&self, env: &Env) -> Option<sys::napi_value> {
        self.local
            .as_ref()
            .and_then(|local| local.values(env.raw()))
    }
}

/// A cheap identity of the current thread: the address of a thread-local.
fn thread_token() -> usize {
    thread_local!(static TOKEN: u8 = const { 0 });
    TOKEN.with(|token| token as *const u8 as usize)
}

/// A weak reference to the JS array of import values: the JS objects that can call into
/// the guest (the `Instance`, its exports object and functions) hold the array strongly, so
/// a host function that captures its own instance forms a cycle the garbage collector can
/// collect, which a strong reference from native code would pin forever.
pub struct LocalValues {
    env: sys::napi_env,
    /// The values array, and each host function in it (`HostImports::functions` order).
    values: sys::napi_ref,
    functions: Vec<sys::napi_ref>,
    /// `thread_token()` of the JS thread.
    thread: usize,
}

// SAFETY: the raw handles are only used on `thread` (checked before each use and on drop).
unsafe impl Send for LocalValues {}
unsafe impl Sync for LocalValues {}

impl LocalValues {
    /// Weak references to `values` and to its elements at `indices` (the host functions).
    pub fn new(env: &Env, values: &Object, indices: impl Iterator<Item = u32>) -> Result<Self> {
        let weak = |value: sys::napi_value| -> Result<sys::napi_ref> {
            let mut weak = std::ptr::null_mut();
            // SAFETY: a weak reference to a live value, on its own thread.
            let status = unsafe { sys::napi_create_reference(env.raw(), value, 0, &mut weak) };
            if status != sys::Status::napi_ok {
                return Err(link_error("cannot reference the imports".into()));
            }
            Ok(weak)
        };
        let mut local = LocalValues {
            env: env.raw(),
            values: weak(values.raw())?,
            functions: Vec::new(),
            thread: thread_token(),
        };
        for index in indices {
            let value: Unknown = values
                .get_element(index)
                .map_err(|_| link_error("the imports cannot be read".into()))?;
            local.functions.push(weak(value.raw())?);
        }
        Ok(local)
    }

    pub fn on_this_thread(&self) -> bool {
        thread_token() == self.thread
    }

    pub fn env(&self) -> sys::napi_env {
        self.env
    }

    /// The host function `k`, while it is alive (on its own thread).
    pub fn function(&self, k: usize) -> Option<sys::napi_value> {
        self.get(self.env, self.functions[k])
    }

    /// The values array, while it is alive (on its own thread).
    pub fn values(&self, env: sys::napi_env) -> Option<sys::napi_value> {
        self.get(env, self.values)
    }

    /// The value `reference` (one of ours) holds, while it is alive.
    fn get(&self, env: sys::napi_env, reference: sys::napi_ref) -> Option<sys::napi_value> {
        if env != self.env || !self.on_this_thread() {
            return None;
        }
        let mut value = std::ptr::null_mut();
        // SAFETY: our reference, on its own thread.
        let status = unsafe { sys::napi_get_reference_value(env, reference, &mut value) };
        (status == sys::Status::napi_ok && !value.is_null()).then_some(value)
    }
}

impl Drop for LocalValues {
    fn drop(&mut self) {
        // Stores that call JS on this thread are dropped on it; elsewhere, leak the
        // references rather than release them off-thread.
        if self.on_this_thread() {
            for reference in std::iter::once(self.values).chain(self.functions.iter().copied()) {
                // SAFETY: our reference, released once, on its own thread.
                unsafe { sys::napi_delete_reference(self.env, reference) };
            }
        }
    }
}

/// The body of trampoline `k`: calls the JS function serving `functions[k]`, here on its
/// JS thread, or through the run's dispatcher from a pool thread. `slots` holds the
/// parameters and receives the results.
fn host_call(
    caller: &mut Caller<'_, Host>,
    k: usize,
    slots: &mut [MaybeUninit<ValRaw>],
) -> wasmtime::Result<()> {
    let imports = caller
        .data()
        .imports
        .clone()
        .ok_or_else(|| wasmtime::Error::msg("this store has no JS imports"))?;
    let function = &imports.functions[k];
    let mut params = [ValRaw::i32(0); MAX_INLINE];
    let mut many_params;
    let params: &mut [ValRaw] = if function.sig.params.len() <= MAX_INLINE {
        &mut params[..function.sig.params.len()]
    } else {
        many_params = vec![ValRaw::i32(0); function.sig.params.len()];
        &mut many_params
    };
    for (param, slot) in params.iter_mut().zip(slots.iter()) {
        // SAFETY: wasmtime initialises the first `params.len()` slots with the parameters,
        // of the types of the signature this trampoline was defined with.
        *param = unsafe { slot.assume_init() };
    }
    let mut results = [ValRaw::i32(0); MAX_INLINE];
    let mut many;
    let results: &mut [ValRaw] = if function.sig.results.len() <= MAX_INLINE {
        &mut results[..function.sig.results.len()]
    } else {
        many = vec![ValRaw::i32(0); function.sig.results.len()];
        &mut many
    };
    if let Some(local) = imports
        .local
        .as_ref()
        .filter(|local| local.on_this_thread())
    {
        call_here(caller, local, k, function, params, results)?;
    } else {
        match caller.data().dispatcher.clone() {
            Some(dispatcher) => dispatcher.call(caller, &imports, k, params, results)?,
            None => {
                return Err(wasmtime::Error::msg(
                    "a JS host function was called from a thread that cannot reach JS",
                ))
            }
        }
    }
    for (slot, result) in slots.iter_mut().zip(results.iter()) {
        slot.write(*result);
    }
    Ok(())
}

/// Values a host call converts without allocating.
const MAX_INLINE: usize = 8;

/// Calls the JS function of `function` on this (its) thread, inside a handle scope, with
/// the caller published so the function may call back into the guest.
fn call_here(
    caller: &mut Caller<'_, Host>,
    local: &LocalValues,
    k: usize,
    function: &HostFunction,
    params: &[ValRaw],
    results: &mut [ValRaw],
) -> wasmtime::Result<()> {
    let raw_env = local.env;
    let env = Env::from_raw(raw_env);
    let scope = HandleScope::open(raw_env);
    crate::memory_buffer::refresh(&env, &mut *caller);
    let id = caller.data().id;
    let entered = store_access::enter(id, caller);
    let outcome = invoke(local, k, function, params, results);
    drop(entered);
    drop(scope);
    outcome.map_err(|thrown| HostThrow(Arc::new(thrown)).into())
}

/// Calls the JS function of `functions[k]` (on its thread, inside a handle scope) with
/// `params` and converts what it returns into `results`. A returned Promise cannot be waited
/// for here (the caller blocks the JS thread), so for a function with results it is a
/// `TypeError`.
fn invoke(
    local: &LocalValues,
    k: usize,
    function: &HostFunction,
    params: &[ValRaw],
    results: &mut [ValRaw],
) -> std::result::Result<(), Thrown> {
    let raw_env = local.env;
    let callee = local
        .get(raw_env, local.functions[k])
        .ok_or_else(|| type_error(raw_env, "the host functions of this instance are gone"))?;
    let mut argv = [std::ptr::null_mut(); MAX_INLINE];
    let mut many;
    let argv: &mut [sys::napi_value] = if params.len() <= MAX_INLINE {
        &mut argv[..params.len()]
    } else {
        many = vec![std::ptr::null_mut(); params.len()];
        &mut many
    };
    for ((arg, param), num) in argv.iter_mut().zip(params).zip(function.sig.params.iter()) {
        *arg = wasm_values::to_js(raw_env, param, *num)?;
    }
    let returned = call_js(
        raw_env,
        callee,
        argv,
        !function.sig.results.is_empty(),
        &function.name,
    )?;
    results_from_js(raw_env, returned, function, results)
}

/// Calls the host function `callee` (named `name`, for messages) with `argv` and `this`
/// undefined, as V8 calls imports. While the JS thread waits for the guest (a guest on the JS
/// thread, or an export called from a host function) a Promise cannot be waited for, so one
/// returned where results are expected (`wants_results`) is a `TypeError`.
pub fn call_js(
    env: sys::napi_env,
    callee: sys::napi_value,
    argv: &[sys::napi_value],
    wants_results: bool,
    name: &str,
) -> std::result::Result<sys::napi_value, Thrown> {
    let mut undefined = std::ptr::null_mut();
    let mut returned = std::ptr::null_mut();
    // SAFETY: plain napi calls with live handles of the caller's scope, on this thread.
    check(env, unsafe { sys::napi_get_undefined(env, &mut undefined) })?;
    check(env, unsafe {
        sys::napi_call_function(
            env,
            undefined,
            callee,
            argv.len(),
            argv.as_ptr(),
            &mut returned,
        )
    })?;
    if wants_results && is_promise(env, returned) {
        return Err(type_error(
            env,
            &format!(
                "The host function {name} returned a Promise, but it was called while the JS \
                 thread waits for the guest (a guest on the JS thread, or an export called \
                 from a host function), so it cannot be waited for. Return its value itself, \
                 or let the guest run with runWasm() or wasi.startAsync() and call no export \
                 from the host function"
            ),
        ));
    }
    Ok(returned)
}

/// Serves the host call of `functions[k]` with `args` on the JS thread, which waits for a
/// call it made into the guest (see `store_access::Lent::run_job`): synchronously, as for a
/// guest on the JS thread. `None` if these imports have no functions on this thread.
pub fn serve_waiting(
    env: &Env,
    imports: &HostImports,
    k: usize,
    args: &[Val],
) -> Option<std::result::Result<Vec<Val>, Thrown>> {
    let local = imports
        .local
        .as_ref()
        .filter(|local| local.on_this_thread())?;
    let function = &imports.functions[k];
    let scope = HandleScope::open(env.raw());
    let params: Vec<ValRaw> = args.iter().map(wasm_values::to_raw).collect();
    let mut results = vec![ValRaw::i32(0); function.sig.results.len()];
    let outcome = invoke(local, k, function, &params, &mut results).map(|()| {
        results
            .iter()
            .zip(function.sig.results.iter())
            .map(|(raw, num)| wasm_values::to_val(raw, *num))
            .collect()
    });
    drop(scope);
    Some(outcome)
}

/// An open napi handle scope, closed when dropped: a guest calling JS a million times in
/// one entry must not pile up a million handles in the outer scope.
pub struct HandleScope(sys::napi_env, sys::napi_handle_scope);

impl HandleScope {
    pub fn open(env: sys::napi_env) -> Self {
        let mut scope = std::ptr::null_mut();
        // SAFETY: opened and closed on this thread, strictly nested.
        unsafe { sys::napi_open_handle_scope(env, &mut scope) };
        HandleScope(env, scope)
    }
}

impl Drop for HandleScope {
    fn drop(&mut self) {
        // SAFETY: see `open`.
        unsafe { sys::napi_close_handle_scope(self.0, self.1) };
    }
}

fn is_promise(env: sys::napi_env, value: sys::napi_value) -> bool {
    let mut promise = false;
    // SAFETY: a live handle on this thread.
    unsafe { sys::napi_is_promise(env, value, &mut promise) };
    promise
}

/// What a host function returned, as the guest's results: one value as is, several from an
/// array of that many, converted as V8 converts them (a value that does not convert is a
/// `TypeError`, or whatever converting it threw).
pub fn results_from_js(
    env: sys::napi_env,
    returned: sys::napi_value,
    function: &HostFunction,
    results: &mut [ValRaw],
) -> std::result::Result<(), Thrown> {
    let convert = |value: sys::napi_value, num: Num| {
        wasm_values::from_js(env, value, num).map_err(|refused| match refused {
            Refused::Thrown(thrown) => thrown,
            Refused::NotBigInt(kind) => type_error(
                env,
                &format!(
                    "The host function {} must return a BigInt for its i64 result (Cannot \
                     convert a {kind} to a BigInt)",
                    function.name
                ),
            ),
        })
    };
    match function.sig.results.len() {
        0 => Ok(()),
        1 => {
            results[0] = convert(returned, function.sig.results[0])?;
            Ok(())
        }
        count => {
            let mut is_array = false;
            let mut length = 0;
            // SAFETY: plain queries on live handles of this thread.
            unsafe { sys::napi_is_array(env, returned, &mut is_array) };
            if is_array {
                unsafe { sys::napi_get_array_length(env, returned, &mut length) };
            }
            if !is_array || length as usize != count {
                return Err(type_error(
                    env,
                    &format!(
                        "The host function {} must return an array of {count} values (its \
                         wasm type is {})",
                        function.name,
                        signature(&function.ty)
                    ),
                ));
            }
            for (i, num) in function.sig.results.iter().enumerate() {
                let mut item = std::ptr::null_mut();
                // SAFETY: `i` < length of a live array.
                check(env, unsafe {
                    sys::napi_get_element(env, returned, i as u32, &mut item)
                })?;
                results[i] = convert(item, *num)?;
            }
            Ok(())
        }
    }
}

/// Makes `values` reachable from `object` (an instance's exports object or function) under
/// `Symbol.for('node-wasmtime.imports')`, so holding it keeps the host functions alive.
pub fn hold_values(env: &Env, object: &mut Object, values: sys::napi_value) -> napi::Result<()> {
    hold(env, object, "node-wasmtime.imports", values)
}

/// Sets `object[Symbol.for(key)] = value`: a JS edge that keeps `value` alive with `object`
/// (where a native reference would pin it, and whatever it reaches, forever).
pub fn hold(env: &Env, object: &mut Object, key: &str, value: sys::napi_value) -> napi::Result<()> {
    let global = env.get_global()?;
    let symbol_class = global
        .get_named_property::<Unknown>("Symbol")?
        .coerce_to_object()?;
    let symbol_for: napi::bindgen_prelude::Function<String, Unknown> =
        symbol_class.get_named_property("for")?;
    let key = symbol_for.apply(symbol_class, key.to_string())?;
    // SAFETY: setting a property with live handles of this scope.
    let status = unsafe { sys::napi_set_property(env.raw(), object.raw(), key.raw(), value) };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::new(
            napi::Status::GenericFailure,
            "cannot attach a held value",
        ));
    }
    Ok(())
}

/// The JS functions one instantiation supplies, for a core module or a component.
pub enum Plan {
    Core(ImportPlan),
    Component(ComponentPlan),
}

impl Plan {
    /// Checks `values` (from `lib/host.js`) against `module`'s imports; `None`: WASI serves
    /// everything.
    pub fn resolve(module: &CompiledModule, values: &Option<Object>) -> Result<Option<Plan>> {
        let Some(values) = values else {
            return Ok(None);
        };
        Ok(match module.component() {
            Some(component) => ComponentPlan::resolve(component, values)?.map(Plan::Component),
            None => ImportPlan::resolve(module.core()?, values)?.map(Plan::Core),
        })
    }

    pub fn user_imports(&self) -> UserImports<'_> {
        match self {
            Plan::Core(plan) => UserImports::Core(plan),
            Plan::Component(plan) => UserImports::Component(plan),
        }
    }

    /// Gives `host` these functions, called from `values` on this thread (and through the
    /// run's dispatcher from a pool thread).
    pub fn install(&self, host: &mut Host, env: &Env, values: &Object) -> Result<()> {
        match self {
            Plan::Core(plan) => host.imports = Some(Arc::new(HostImports::new(env, plan, values)?)),
            Plan::Component(plan) => {
                host.component_imports = Some(Arc::new(ComponentImports::new(env, plan, values)?))
            }
        }
        Ok(())
    }

    /// Gives `host` these functions, called only through the run's dispatcher (`runWasm`);
    /// a component's host resources are kept in `objects`.
    pub fn install_remote(&self, host: &mut Host, objects: Arc<HostObjects>) {
        match self {
            Plan::Core(plan) => host.imports = Some(Arc::new(HostImports::remote_only(plan))),
            Plan::Component(plan) => {
                host.component_imports =
                    Some(Arc::new(ComponentImports::remote_only(plan, objects)))
            }
        }
    }
}
