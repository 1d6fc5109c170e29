//! The `Instance` class (a wasmtime instance bound to one `WASI` object), its `exports`
//! object (exported functions callable from JS, exported memories as `Memory`), and the
//! `Memory` class.

use crate::command::{exit_code, not_a_command, Command};
use crate::component_exports::component_exports;
use crate::engine::{exit_process, Host};
use crate::error::{classify, ErrorCode, Failure, Result};
use crate::limits::{not_cancelled, Limits, Ticking};
use crate::module::{Compiled, CompiledModule, Module};
use napi::bindgen_prelude::{
    BigInt, Buffer, FromNapiValue, JavaScriptClassExt, JsObjectValue, Object, ObjectRef,
    ToNapiValue, Uint8Array, Unknown,
};
use napi::{sys, Env, JsValue, ValueType};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use wasmtime::{component, Extern, Func, Store, TypedFunc, Val, ValType};
use wasmtime_wasi::I32Exit;

/// A live core-module instance or component instance.
pub enum Guest {
    Core(wasmtime::Instance),
    Component(component::Instance),
}

/// One live guest: its store, its instance, and the started flag of the `WASI` that made it.
pub struct Running {
    store: Mutex<Store<Host>>,
    guest: Guest,
    /// Shared with the owning `WASI`: entry points run at most once per `WASI` object.
    pub started: Arc<AtomicBool>,
    /// Armed afresh for every call into the guest (`limits.timeout` is per call).
    limits: Limits,
    /// Set while `wasi.startAsync()` runs the guest on a pool thread.
    busy: AtomicBool,
}

impl Running {
    pub fn new(store: Store<Host>, guest: Guest, started: Arc<AtomicBool>, limits: Limits) -> Self {
        Running {
            store: Mutex::new(store),
            guest,
            started,
            limits,
            busy: AtomicBool::new(false),
        }
    }

    /// Checks that `name` can be entered (`_start`/`_initialize` of a core module, `run` of
    /// a component's `wasi:cli/run`) and claims it: for a component this sets the started
    /// flag. A component without `wasi:cli/run` (`ERR_INVALID_ARG_TYPE`) and a second start
    /// (`ERR_WASI_ALREADY_STARTED`) fail here, before any guest code runs.
    pub fn begin(&self, name: &str) -> Result<Entry> {
        let mut store = self.store()?;
        match &self.guest {
            Guest::Core(instance) => instance
                .get_typed_func::<(), ()>(&mut *store, name)
                .map(Entry::Core)
                .map_err(|e| {
                    Failure::new(
                        ErrorCode::InvalidArgValue,
                        format!("the export {name} is not a function of no arguments: {e:#}"),
                    )
                }),
            Guest::Component(instance) => {
                let command = Command::new(&mut *store, instance)
                    .map_err(|e| not_a_command(ErrorCode::InvalidArgType, &e))?;
                if self.started.swap(true, Ordering::SeqCst) {
                    return Err(crate::wasi::already_started());
                }
                Ok(Entry::Command(command))
            }
        }
    }

    /// Runs a claimed entry point and returns the exit code: 0 when it returns (a component:
    /// `ok`; `err` is 1), else the code it exited with.
    fn run(
        &self,
        store: &mut Store<Host>,
        entry: Entry,
        cancel: Option<Arc<AtomicBool>>,
    ) -> Result<i32> {
        not_cancelled(&cancel)?;
        let _ticking = self.limits.arm(store, cancel);
        let outcome = match entry {
            Entry::Core(func) => func.call(&mut *store, ()).map(Ok),
            Entry::Command(command) => command.wasi_cli_run().call_run(&mut *store),
        };
        if let Err(error) = &outcome {
            if let Some(I32Exit(code)) = error.downcast_ref::<I32Exit>() {
                if store.data().exit_process_on_proc_exit {
                    exit_process(*code);
                }
            }
        }
        exit_code(outcome)
    }

    /// Runs the entry point `name` here and now (see `begin` and `run`).
    pub fn call_entry(&self, name: &str) -> Result<i32> {
        let entry = self.begin(name)?;
        let mut store = self.store()?;
        self.run(&mut store, entry, None)
    }

    /// Claims the entry point `name` now and marks this guest busy; the returned work runs
    /// it (on a pool thread) and clears the mark. Until then calls from JS get
    /// `ERR_WASI_BUSY` instead of waiting for the store.
    pub fn call_entry_later(
        self: &Arc<Self>,
        name: &str,
        cancel: Option<Arc<AtomicBool>>,
    ) -> Result<impl FnOnce() -> Result<i32> + Send + 'static> {
        let entry = self.begin(name)?;
        self.busy.store(true, Ordering::SeqCst);
        let running = self.clone();
        Ok(move || {
            let outcome = running.run(&mut running.lock(), entry, cancel);
            running.busy.store(false, Ordering::SeqCst);
            outcome
        })
    }

    /// `wasi.initialize()` of a component: components initialise when instantiated, so this
    /// only marks the `WASI` started; a command (with `wasi:cli/run`) is refused.
    pub fn initialize_component(&self) -> Result<()> {
        let mut store = self.store()?;
        let Guest::Component(instance) = &self.guest else {
            return Err(Failure::new(
                ErrorCode::InvalidArgValue,
                "expected a component instance, got a core module instance",
            ));
        };
        if Command::new(&mut *store, instance).is_ok() {
            return Err(Failure::new(
                ErrorCode::InvalidArgType,
                "The component exports wasi:cli/run, so it is a WASI command: run it with \
                 wasi.start(instance), not wasi.initialize(instance)",
            ));
        }
        if self.started.swap(true, Ordering::SeqCst) {
            return Err(crate::wasi::already_started());
        }
        Ok(())
    }

    /// The store, for a call from JS: `ERR_WASI_BUSY` while an async start runs the guest.
    fn store(&self) -> Result<MutexGuard<'_, Store<Host>>> {
        if self.busy.load(Ordering::SeqCst) {
            return Err(Failure::new(
                ErrorCode::WasiBusy,
                "The guest is running (wasi.startAsync()); wait for its promise before calling \
                 into it or its memory",
            ));
        }
        Ok(self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Store<Host>> {
        // A panic cannot leave the store half-updated in a way later calls could observe
        // unsafely (wasmtime unwinds guest state itself), so a poisoned lock is still usable.
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn call(&self, func: Func, args: &[Val]) -> Result<Vec<Val>> {
        let mut store = self.store()?;
        let ty = func.ty(&*store);
        let mut results = vec![Val::I32(0); ty.results().len()];
        let _ticking = self.limits.arm(&mut store, None);
        func.call(&mut *store, args, &mut results)
            .map_err(exit_failure)?;
        Ok(results)
    }

    /// Runs `f` with the store locked (`ERR_WASI_BUSY` during an async start).
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store<Host>) -> R) -> Result<R> {
        Ok(f(&mut *self.store()?))
    }

    /// Arms this guest's limits for one call into it (see `Limits::arm`).
    pub fn arm(&self, store: &mut Store<Host>) -> Ticking {
        self.limits.arm(store, None)
    }
}

/// An entry point claimed by `Running::begin`, ready to run.
pub enum Entry {
    Core(TypedFunc<(), ()>),
    Command(Command),
}

/// The error of an export JS called: a trap, or `ERR_WASI_EXITED` (with `exitCode`) when the
/// guest exited instead of returning.
pub fn exit_failure(error: wasmtime::Error) -> Failure {
    match classify(error) {
        Ok(exit_code) => Failure {
            exit_code: Some(exit_code),
            ..Failure::new(
                ErrorCode::WasiExited,
                format!("the guest called proc_exit({exit_code})"),
            )
        },
        Err(failure) => failure,
    }
}

/// A wasmtime instance made by `wasi.instantiate()`. Pass it to `wasi.start()` or
/// `wasi.initialize()`; after `initialize()`, call its exports.
#[napi]
pub struct Instance {
    pub(crate) running: Arc<Running>,
    module: Arc<CompiledModule>,
    exports: Option<ObjectRef<false>>,
}

#[napi]
impl Instance {
    /// `'module'` for a core module's instance, `'component'` for a component's.
    #[napi(getter, ts_return_type = "'module' | 'component'")]
    pub fn kind(&self) -> &'static str {
        self.module.kind()
    }

    /// The module this instance was made from.
    #[napi(getter)]
    pub fn module(&self) -> Module {
        Module {
            inner: self.module.clone(),
        }
    }

    /// The instance's exports. Core module: functions take and return numbers (i64 as
    /// BigInt), memories are `Memory` objects. Component: functions at the top level and,
    /// for each exported interface, an object of its functions (`exports['my:pkg/api'].f`),
    /// with the value mapping the README describes. Entry points (`_start`, `_initialize`,
    /// `wasi:cli/run#run`) run at most once per `WASI` object, whether called here or
    /// through `wasi.start()`/`wasi.initialize()`.
    #[napi(
        getter,
        ts_return_type = "Record<string, Function | Memory | Record<string, Function>>"
    )]
    pub fn exports<'env>(&mut self, env: &'env Env) -> napi::Result<Object<'env>> {
        if let Some(exports) = &self.exports {
            return exports.get_value(env);
        }
        let object = self.build_exports(env)?;
        self.exports = Some(object.create_ref()?);
        Ok(object)
    }
}

impl Instance {
    pub fn new(running: Running, module: Arc<CompiledModule>) -> Self {
        Instance {
            running: Arc::new(running),
            module,
            exports: None,
        }
    }

    fn build_exports<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let instance = match (&self.running.guest, &self.module.compiled) {
            (Guest::Core(instance), _) => instance,
            (Guest::Component(instance), Compiled::Component(component)) => {
                return component_exports(env, &self.running, instance, component)
            }
            (Guest::Component(_), Compiled::Core(_)) => return Object::new(env),
        };
        let mut object = Object::new(env)?;
        let exports: Vec<(String, Extern)> = {
            let mut store = self.running.store().map_err(|f| f.into_napi(env))?;
            instance
                .exports(&mut *store)
                .map(|export| (export.name().to_string(), export.into_extern()))
                .collect()
        };
        for (name, export) in exports {
            match export {
                Extern::Func(func) => {
                    let running = self.running.clone();
                    let is_entry = name == "_start" || name == "_initialize";
                    let function = env.create_function_from_closure::<Vec<Unknown>, _, _>(
                        &name,
                        move |ctx| {
                            let env = Env::from_raw(ctx.env.raw());
                            let args: Vec<Unknown> = (0..ctx.length())
                                .map(|i| ctx.get::<Unknown>(i))
                                .collect::<napi::Result<_>>()?;
                            call_export(&running, func, is_entry, &args)
                                .map_err(|failure| failure.into_napi(&env))
                        },
                    )?;
                    object.set_named_property(&name, function)?;
                }
                Extern::Memory(memory) => {
                    let memory = Memory {
                        running: self.running.clone(),
                        memory,
                    };
                    object.set_named_property(&name, memory.into_instance(env)?)?;
                }
                _ => {}
            }
        }
        Ok(object)
    }
}

fn call_export(
    running: &Running,
    func: Func,
    is_entry: bool,
    args: &[Unknown],
) -> Result<WasmValue> {
    if is_entry && running.started.swap(true, Ordering::SeqCst) {
        return Err(crate::wasi::already_started());
    }
    let params: Vec<ValType> = func.ty(&*running.store()?).params().collect();
    let args = params
        .iter()
        .enumerate()
        .map(|(i, ty)| to_val(args.get(i), ty, i))
        .collect::<Result<Vec<_>>>()?;
    let results = running.call(func, &args)?;
    let mut values = results.iter().map(from_val).collect::<Result<Vec<_>>>()?;
    Ok(match values.len() {
        0 => WasmValue::Undefined,
        1 => values.remove(0),
        _ => WasmValue::Array(values),
    })
}

/// A wasm value on its way to JS.
enum WasmValue {
    Undefined,
    Number(f64),
    BigInt(i64),
    Array(Vec<WasmValue>),
}

impl ToNapiValue for WasmValue {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        match value {
            WasmValue::Undefined => <()>::to_napi_value(env, ()),
            WasmValue::Number(n) => f64::to_napi_value(env, n),
            WasmValue::BigInt(n) => BigInt::to_napi_value(env, BigInt::from(n)),
            WasmValue::Array(values) => Vec::<WasmValue>::to_napi_value(env, values),
        }
    }
}

/// JS -> wasm with the WebAssembly JS API's coercions: ToInt32 for i32, ToBigInt64 for i64.
fn to_val(arg: Option<&Unknown>, ty: &ValType, index: usize) -> Result<Val> {
    let wrong = |expected: &str| {
        Failure::new(
            ErrorCode::InvalidArgType,
            format!("argument {index} must be {expected}"),
        )
    };
    let number = || -> Result<f64> {
        match arg {
            None => Ok(f64::NAN),
            Some(value) => value
                .coerce_to_number()
                .and_then(|n| n.get_double())
                .map_err(|_| wrong("a number")),
        }
    };
    Ok(match ty {
        ValType::I32 => Val::I32(to_int32(number()?)),
        ValType::F32 => Val::F32((number()? as f32).to_bits()),
        ValType::F64 => Val::F64(number()?.to_bits()),
        ValType::I64 => {
            let value = arg.filter(|v| v.get_type().ok() == Some(ValueType::BigInt));
            let value = value.ok_or_else(|| wrong("a BigInt (the parameter is i64)"))?;
            // SAFETY: `value` is a live BigInt handle of the current call.
            let big = unsafe { BigInt::from_napi_value(value.value().env, value.raw()) }
                .map_err(|_| wrong("a BigInt"))?;
            Val::I64(big.get_i64().0)
        }
        _ => {
            return Err(wrong(
                "a number: v128 and reference parameters are not supported",
            ))
        }
    })
}

fn from_val(value: &Val) -> Result<WasmValue> {
    Ok(match value {
        Val::I32(n) => WasmValue::Number(*n as f64),
        Val::I64(n) => WasmValue::BigInt(*n),
        Val::F32(bits) => WasmValue::Number(f32::from_bits(*bits) as f64),
        Val::F64(bits) => WasmValue::Number(f64::from_bits(*bits)),
        _ => {
            return Err(Failure::new(
                ErrorCode::InvalidArgValue,
                "v128 and reference results cannot be passed to JS",
            ))
        }
    })
}

/// ECMAScript ToInt32: wrap modulo 2^32.
pub fn to_int32(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    (n.trunc().rem_euclid(4294967296.0) as u32) as i32
}

/// An exported linear memory. Reads and writes copy, so a `memory.grow` can never leave JS
/// holding a dangling view.
#[napi]
pub struct Memory {
    running: Arc<Running>,
    memory: wasmtime::Memory,
}

#[napi]
impl Memory {
    /// Current size in bytes.
    #[napi(getter)]
    pub fn byte_length(&self, env: Env) -> napi::Result<f64> {
        let store = self.running.store().map_err(|f| f.into_napi(&env))?;
        Ok(self.memory.data_size(&*store) as f64)
    }

    /// Copies `length` bytes starting at `offset` out of the memory.
    /// Throws `ERR_OUT_OF_RANGE` if the range is not inside the memory.
    #[napi]
    pub fn read(&self, env: Env, offset: f64, length: f64) -> napi::Result<Buffer> {
        let store = self.running.store().map_err(|f| f.into_napi(&env))?;
        let data = self.memory.data(&*store);
        let range = checked_range(offset, length, data.len()).map_err(|f| f.into_napi(&env))?;
        Ok(data[range].to_vec().into())
    }

    /// Copies `bytes` into the memory at `offset`.
    /// Throws `ERR_OUT_OF_RANGE` if they do not fit.
    #[napi]
    pub fn write(&self, env: Env, offset: f64, bytes: Uint8Array) -> napi::Result<()> {
        let mut store = self.running.store().map_err(|f| f.into_napi(&env))?;
        let data = self.memory.data_mut(&mut *store);
        let range =
            checked_range(offset, bytes.len() as f64, data.len()).map_err(|f| f.into_napi(&env))?;
        data[range].copy_from_slice(&bytes);
        Ok(())
    }

    /// Grows the memory by `pages` 64 KiB pages; returns the previous size in pages.
    /// Throws `ERR_OUT_OF_RANGE` if it cannot grow that far.
    #[napi]
    pub fn grow(&self, env: Env, pages: f64) -> napi::Result<f64> {
        let mut store = self.running.store().map_err(|f| f.into_napi(&env))?;
        let fail = || {
            Failure::new(
                ErrorCode::OutOfRange,
                format!("The memory cannot grow by {pages} pages"),
            )
            .into_napi(&env)
        };
        if !(pages >= 0.0 && pages.fract() == 0.0) {
            return Err(fail());
        }
        self.memory
            .grow(&mut *store, pages as u64)
            .map(|previous| previous as f64)
            .map_err(|_| fail())
    }
}

fn checked_range(offset: f64, length: f64, size: usize) -> Result<std::ops::Range<usize>> {
    let valid = |n: f64| n >= 0.0 && n.fract() == 0.0 && n <= size as f64;
    if !valid(offset) || !valid(length) || offset + length > size as f64 {
        return Err(Failure::new(
            ErrorCode::OutOfRange,
            format!(
                "The range [{offset}, {offset} + {length}) is out of range. It must be inside the memory's {size} bytes"
            ),
        ));
    }
    Ok(offset as usize..(offset + length) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_int32_wraps_like_javascript() {
        assert_eq!(to_int32(2147483648.0), -2147483648);
        assert_eq!(to_int32(-1.0), -1);
        assert_eq!(to_int32(4294967297.0), 1);
        assert_eq!(to_int32(f64::NAN), 0);
        assert_eq!(to_int32(3.9), 3);
    }

    #[test]
    fn ranges_must_fit() {
        assert_eq!(checked_range(0.0, 4.0, 4).unwrap(), 0..4);
        assert!(checked_range(1.0, 4.0, 4).is_err());
        assert!(checked_range(-1.0, 1.0, 4).is_err());
        assert!(checked_range(0.5, 1.0, 4).is_err());
    }
}
