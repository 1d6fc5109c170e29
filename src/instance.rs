//! The `Instance` class (a wasmtime instance bound to one `WASI` object), its `exports`
//! object (exported functions callable from JS, exported memories as `Memory`), and
//! `Running`, the live guest behind them: its store, reached from JS as `store_access.rs`
//! says (locked, or through a host call's caller while JS runs inside one).

use crate::command::{exit_code, not_a_command, Command};
use crate::component_exports::component_exports;
use crate::engine::Host;
use crate::error::{classify, ErrorCode, Failure, Result};
use crate::export_function::ExportFunction;
use crate::host_calls::Dispatcher;
use crate::host_externs;
use crate::host_functions::hold_values;
use crate::instance_handles::{self, disposed};
use crate::limits::{not_cancelled, Limits, Ticking};
use crate::store_access::{self, JobFn, JobValues, Lent, StoreRef};
use crate::wasm_values::Signature;
use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, Unknown};
use napi::Env;
use napi::JsValue;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use wasmtime::{
    component, AsContextMut, Extern, ExternType, Func, Store, StoreContextMut, TypedFunc, ValRaw,
};
use wasmtime_wasi::I32Exit;

/// The locked store of a guest that is not disposed.
pub struct StoreGuard<'a>(MutexGuard<'a, Option<Store<Host>>>);

impl std::ops::Deref for StoreGuard<'_> {
    type Target = Store<Host>;
    fn deref(&self) -> &Store<Host> {
        self.0.as_ref().expect("checked when locked")
    }
}

impl std::ops::DerefMut for StoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Store<Host> {
        self.0.as_mut().expect("checked when locked")
    }
}

/// A live core-module instance or component instance.
pub enum Guest {
    Core(wasmtime::Instance),
    Component(component::Instance),
}

/// One live guest: its store, its instance, and the started flag of the `WASI` that made it.
pub struct Running {
    /// `None` once disposed (`instance[Symbol.dispose]()`).
    store: Mutex<Option<Store<Host>>>,
    /// The store's `Host::id`.
    id: u64,
    /// Where the guest lends its store while it waits for JS on a pool thread.
    lent: Arc<Lent>,
    guest: Guest,
    /// Shared with the owning `WASI`: entry points run at most once per `WASI` object.
    pub started: Arc<AtomicBool>,
    /// Armed afresh for every call into the guest (`limits.timeout` is per call).
    limits: Limits,
    /// Set while `wasi.startAsync()` runs the guest on a pool thread.
    busy: AtomicBool,
    /// Set by `dispose` (the store is then `None`).
    disposed: AtomicBool,
}

impl Running {
    pub fn new(
        mut store: Store<Host>,
        guest: Guest,
        started: Arc<AtomicBool>,
        limits: Limits,
    ) -> Self {
        let lent = Arc::new(Lent::default());
        store.data_mut().lent = Some(lent.clone());
        Running {
            id: store.data().id,
            store: Mutex::new(Some(store)),
            lent,
            guest,
            started,
            limits,
            busy: AtomicBool::new(false),
            disposed: AtomicBool::new(false),
        }
    }

    /// The store's id: the handle of its JS `Instance` (`instance_handles.rs`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// `ERR_WASM_INSTANCE_DISPOSED` once disposed (checked before an entry point is claimed,
    /// so a disposed instance's `_start` leaves the `WASI` unstarted).
    pub fn not_disposed(&self) -> Result<()> {
        if self.disposed.load(Ordering::SeqCst) {
            return Err(disposed());
        }
        Ok(())
    }

    /// Checks that `name` can be entered (`_start`/`_initialize` of a core module, `run` of
    /// a component's `wasi:cli/run`) and claims it: for a component this sets the started
    /// flag. A component without `wasi:cli/run` (`ERR_INVALID_ARG_TYPE`) and a second start
    /// (`ERR_WASI_ALREADY_STARTED`) fail here, before any guest code runs.
    pub fn begin(&self, name: &str) -> Result<Entry> {
        self.with_store(|mut store| match &self.guest {
            Guest::Core(instance) => instance
                .get_typed_func::<(), ()>(&mut store, name)
                .map(Entry::Core)
                .map_err(|e| {
                    Failure::new(
                        ErrorCode::InvalidArgValue,
                        format!("the export {name} is not a function of no arguments: {e:#}"),
                    )
                }),
            Guest::Component(instance) => {
                let command = Command::new(&mut store, instance)
                    .map_err(|e| not_a_command(ErrorCode::InvalidArgType, &e))?;
                if self.started.swap(true, Ordering::SeqCst) {
                    return Err(crate::wasi::already_started());
                }
                Ok(Entry::Command(command))
            }
        })?
    }

    /// Runs a claimed entry point and returns the exit code: 0 when it returns (a component:
    /// `ok`; `err` is 1), else the code it exited with.
    fn run(
        &self,
        mut store: StoreRef<'_>,
        entry: Entry,
        cancel: Option<Arc<AtomicBool>>,
    ) -> Result<i32> {
        not_cancelled(&cancel)?;
        let _ticking = arm(&self.limits, &mut store, cancel);
        let outcome = match entry {
            Entry::Core(func) => func.call(&mut store, ()).map(Ok),
            Entry::Command(command) => command.wasi_cli_run().call_run(&mut store),
        };
        let refused = store.as_context_mut().data().store_limits.refused;
        if let Err(error) = &outcome {
            // A component's `wasi:cli/exit` (a core module's `proc_exit` is ours, engine.rs).
            if let Some(I32Exit(code)) = error.downcast_ref::<I32Exit>() {
                let host = store.as_context_mut();
                if host.data().exit_process_on_proc_exit {
                    return classify(host.data().exit_process(*code).into());
                }
            }
        }
        exit_code(outcome).map_err(|failure| failure.after_memory_refused(refused))
    }

    /// Runs the entry point `name` here and now (see `begin` and `run`).
    pub fn call_entry(&self, env: &Env, name: &str) -> Result<i32> {
        let entry = self.begin(name)?;
        self.with_store(|mut store| {
            let outcome = self.run(reborrow(&mut store), entry, None);
            crate::memory_buffer::refresh(env, &mut store);
            outcome
        })?
    }

    /// Claims the entry point `name` now and marks this guest busy; the returned work runs
    /// it (on a pool thread, its host calls reaching JS through `dispatcher`) and clears the
    /// mark. Until then calls from JS get `ERR_WASI_BUSY` instead of waiting for the store,
    /// except while the guest waits for a host call (see `call_in_waiting_guest` and
    /// `with_memory`). The work hands back this `Running` so that it is released on the JS
    /// thread.
    pub fn call_entry_later(
        self: &Arc<Self>,
        name: &str,
        cancel: Option<Arc<AtomicBool>>,
        dispatcher: Option<Arc<Dispatcher>>,
    ) -> Result<impl FnOnce() -> (Result<i32>, Arc<Running>) + Send + 'static> {
        let entry = self.begin(name)?;
        self.busy.store(true, Ordering::SeqCst);
        let running = self.clone();
        Ok(move || {
            let outcome = (|| {
                // Never disposed meanwhile: a busy guest refuses it.
                let mut store = running.lock()?;
                store.data_mut().dispatcher = dispatcher;
                let outcome = running.run(StoreRef::Top(&mut store), entry, cancel);
                store.data_mut().dispatcher = None;
                outcome
            })();
            running.busy.store(false, Ordering::SeqCst);
            (outcome, running)
        })
    }

    /// Replaces the guest's WASI context once its command has run: the old one's descriptors
    /// (stdio duplicates, preopened directories, files it opened) close now, not when the
    /// garbage collector frees the instance. Its memory and exports stay usable. Does
    /// nothing while an async start runs the guest. `build` makes the new context for the
    /// store's stop rule.
    pub fn replace_wasi(
        &self,
        build: impl FnOnce(&crate::limits::StopCell) -> Result<wasmtime_wasi::p1::WasiP1Ctx>,
    ) -> Result<()> {
        match self.with_store(|mut store| {
            let mut context = store.as_context_mut();
            let host = context.data_mut();
            host.wasi = build(&host.stop_cell)?;
            host.stdin_file = None;
            Ok(())
        }) {
            Ok(built) => built,
            Err(_) => Ok(()),
        }
    }

    /// `wasi.initialize()` of a component: components initialise when instantiated, so this
    /// only marks the `WASI` started; a command (with `wasi:cli/run`) is refused.
    pub fn initialize_component(&self) -> Result<()> {
        let Guest::Component(instance) = &self.guest else {
            return Err(Failure::new(
                ErrorCode::InvalidArgValue,
                "expected a component instance, got a core module instance",
            ));
        };
        if self.with_store(|mut store| Command::new(&mut store, instance).is_ok())? {
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

    /// Runs `f` on the store, for a call from JS: through the caller if JS runs inside one of
    /// this guest's host calls, else locked; `ERR_WASI_BUSY` while an async start runs it.
    pub fn with_store<R>(&self, f: impl FnOnce(StoreRef<'_>) -> R) -> Result<R> {
        store_access::with_store(
            self.id,
            || {
                self.not_busy()?;
                if store_access::in_component_call(self.id) {
                    return Err(Failure::new(
                        ErrorCode::WasiBusy,
                        "A component cannot be called from inside one of its own host \
                         functions: the component model forbids re-entering an instance",
                    ));
                }
                self.lock()
            },
            f,
        )
    }

    /// Frees the store now (its instance, linear memories and WASI context), detaching the
    /// `memory.buffer` objects JS holds; every later use fails with
    /// `ERR_WASM_INSTANCE_DISPOSED`. Refused (`ERR_WASI_BUSY`) while the guest runs or waits
    /// for a host call. Idempotent.
    pub fn dispose(&self, env: &Env) -> Result<()> {
        self.not_busy()?;
        if store_access::is_active(self.id) {
            return Err(Failure::new(
                ErrorCode::WasiBusy,
                "An instance cannot be disposed from inside one of its own host calls",
            ));
        }
        self.disposed.store(true, Ordering::SeqCst);
        let store = self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(mut store) = store {
            crate::memory_buffer::detach_all(env, &mut store);
            drop(store);
        }
        Ok(())
    }

    /// `with_store` for memory access only (no wasm runs): also allowed while the guest waits
    /// on a pool thread for a host call, through the store it lends.
    pub fn with_memory<R>(&self, f: impl FnOnce(StoreContextMut<'_, Host>) -> R) -> Result<R> {
        if self.busy.load(Ordering::SeqCst) && !store_access::is_active(self.id) {
            return self.lent.with(f).ok_or_else(busy);
        }
        self.with_store(|mut store| f(store.as_context_mut()))
    }

    fn not_busy(&self) -> Result<()> {
        if self.busy.load(Ordering::SeqCst) {
            return Err(busy());
        }
        Ok(())
    }

    pub fn lock(&self) -> Result<StoreGuard<'_>> {
        // A panic cannot leave the store half-updated in a way later calls could observe
        // unsafely (wasmtime unwinds guest state itself), so a poisoned lock is still usable.
        let guard = self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.is_none() {
            return Err(disposed());
        }
        Ok(StoreGuard(guard))
    }

    /// Calls `func` for JS with its parameters in `slots`, which receives its results:
    /// limits armed for a top-level call (a nested one runs under its outer call's), buffers
    /// refreshed after.
    ///
    /// # Safety
    /// `slots` must hold values of `func`'s parameter types and be long enough for its
    /// results (as `Func::call_unchecked` requires), numbers only.
    pub unsafe fn call_raw(&self, env: &Env, func: Func, slots: &mut [ValRaw]) -> Result<()> {
        if self.busy.load(Ordering::SeqCst) && !store_access::is_active(self.id) {
            return self.call_in_waiting_guest(env, func, slots);
        }
        self.with_store(|mut store| {
            let outcome = {
                let _ticking = arm(&self.limits, &mut store, None);
                // SAFETY: the caller's contract.
                unsafe { func.call_unchecked(&mut store, slots as *mut [ValRaw]) }
            };
            crate::memory_buffer::refresh(env, &mut store);
            outcome.map_err(exit_failure)
        })?
    }

    /// `call_raw` while `wasi.startAsync()` runs the guest: if it waits for a host function
    /// (whose JS may be what calls here), the call runs on the guest's thread, nested in that
    /// host call, and this thread waits for it; otherwise `ERR_WASI_BUSY`.
    fn call_in_waiting_guest(&self, env: &Env, func: Func, slots: &mut [ValRaw]) -> Result<()> {
        let values = JobValues(slots.to_vec());
        let job: JobFn = Box::new(move |mut store| {
            let mut values = values;
            let slots = values.0.as_mut_slice() as *mut [ValRaw];
            // SAFETY: `call_raw`'s contract, for these same values.
            unsafe { func.call_unchecked(&mut store, slots) }?;
            Ok(values)
        });
        match self.lent.run_job(env, job) {
            None => Err(busy()),
            Some(Ok(values)) => {
                slots.copy_from_slice(&values.0);
                self.lent
                    .with(|store| crate::memory_buffer::refresh(env, store));
                Ok(())
            }
            Some(Err(error)) => Err(exit_failure(error)),
        }
    }

    /// Arms this guest's limits for one call into it from JS (see `arm`).
    pub fn arm(&self, store: &mut StoreRef<'_>) -> Ticking {
        arm(&self.limits, store, None)
    }
}

/// The error of a call into a guest that `wasi.startAsync()` is running.
fn busy() -> Failure {
    Failure::new(
        ErrorCode::WasiBusy,
        "The guest is running (wasi.startAsync()); wait for its promise before calling into \
         it. While it waits for a host function, that function may call its exports and use \
         its memory",
    )
}

/// Arms `limits` for a top-level entry into the guest; a nested call (from inside a host
/// function) runs under the limits of the entry it is part of.
fn arm(limits: &Limits, store: &mut StoreRef<'_>, cancel: Option<Arc<AtomicBool>>) -> Ticking {
    match store {
        StoreRef::Top(store) => limits.arm(store, cancel),
        StoreRef::Nested(_) => Ticking::none(),
    }
}

/// A shorter-lived `StoreRef` to the same store.
fn reborrow<'a>(store: &'a mut StoreRef<'_>) -> StoreRef<'a> {
    match store {
        StoreRef::Top(store) => StoreRef::Top(store),
        StoreRef::Nested(caller) => StoreRef::Nested(caller),
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
        Ok(exit_code) => Failure::exited(
            exit_code,
            format!("the guest called proc_exit({exit_code})"),
        ),
        Err(failure) => failure,
    }
}

/// The native side of a JS `Instance` (`lib/instance.js`), made by `wasi.instantiate()` and
/// reached by its handle (`instance_handles.rs`).
pub struct Instance {
    pub(crate) running: Arc<Running>,
    /// For a component instance, the compiled component it was made from (its module's code
    /// of the compiler current then: see `CompiledModule::current`).
    component: Option<wasmtime::component::Component>,
    /// What this instance told V8 it holds outside the JS heap (`report_memory`).
    reported: std::cell::Cell<i64>,
    /// A core instance's exported functions JS can call, in export order, by the index its
    /// JS functions are bound to (`export_function::bound`); set when its exports are built.
    functions: std::cell::OnceCell<Vec<ExportFunction>>,
    /// Its exported memories, by the index their JS `Memory` objects hold (`lib/memory.js`).
    memories: std::cell::OnceCell<Vec<wasmtime::Memory>>,
}

/// What an instance holds natively besides its linear memories' bytes (store, instance,
/// WASI context, stacks), as told to V8.
const INSTANCE_OVERHEAD: i64 = 64 << 10;

/// Internal: `instance.dispose()` of the `Instance` with `handle` (see `lib/instance.js`):
/// frees its store now and forgets the handle. Returns whether it was live (idempotent).
#[napi(catch_unwind)]
pub fn instance_dispose(env: Env, handle: i64) -> napi::Result<bool> {
    let Ok(instance) = instance_handles::get(handle) else {
        return Ok(false);
    };
    instance
        .running
        .dispose(&env)
        .map_err(|f| f.into_napi(&env))?;
    instance_forget(env, handle)?;
    Ok(true)
}

/// Internal: forgets `handle` (its JS object was collected, or it is disposed): V8 no longer
/// counts what it reported, and its store goes once no export refers to it.
#[napi(catch_unwind)]
pub fn instance_forget(env: Env, handle: i64) -> napi::Result<()> {
    if let Some(instance) = instance_handles::remove(handle) {
        env.adjust_external_memory(-instance.reported.take())?;
    }
    Ok(())
}

/// Internal: the exports object of the `Instance` with `handle`, the JS object `instance`
/// (`lib/instance.js` keeps it); a core module's functions are `trampoline`
/// (`exportTrampoline()`) bound to it, its memories `exportedMemory.call(instance, handle, index)`.
#[napi(
    catch_unwind,
    ts_args_type = "handle: number, instance: object, trampoline: Function, exportedMemory: (this: object, handle: number, index: number) => unknown",
    ts_return_type = "Record<string, unknown>"
)]
pub fn instance_exports<'env>(
    env: &'env Env,
    handle: i64,
    instance: Unknown,
    trampoline: Unknown,
    exported_memory: Unknown,
) -> napi::Result<Object<'env>> {
    instance_handles::get(handle)
        .map_err(|f| f.into_napi(env))?
        .build_exports(
            env,
            handle,
            instance.raw(),
            trampoline.raw(),
            exported_memory.raw(),
        )
}

/// Internal: whether the `Instance` with `handle` is a WASI command node:wasi's checks would
/// pass without building its exports: `'command'` (a `memory`, `_start` of no arguments or
/// results, no `_initialize`), `'reactor'` (the same with `_initialize` and no `_start`),
/// `'bare'` (a `memory`, neither), else `'other'` (`lib/wasi.js` then checks the exports, as
/// it does for a disposed or busy instance).
#[napi(
    catch_unwind,
    ts_return_type = "'command' | 'reactor' | 'bare' | 'other'"
)]
pub fn instance_entry_shape(handle: i64) -> &'static str {
    let Ok(instance) = instance_handles::get(handle) else {
        return "other";
    };
    let Guest::Core(core) = &instance.running.guest else {
        return "other";
    };
    instance
        .running
        .with_store(|mut store| {
            let memory = core.get_memory(&mut store, "memory").is_some();
            let mut entry = |name: &str| match core.get_export(&mut store, name) {
                None => Some(false),
                Some(_) => core
                    .get_typed_func::<(), ()>(&mut store, name)
                    .is_ok()
                    .then_some(true),
            };
            match (memory, entry("_start"), entry("_initialize")) {
                (true, Some(true), Some(false)) => "command",
                (true, Some(false), Some(true)) => "reactor",
                (true, Some(false), Some(false)) => "bare",
                _ => "other",
            }
        })
        .unwrap_or("other")
}

impl Instance {
    pub fn new(running: Running, component: Option<wasmtime::component::Component>) -> Self {
        Instance {
            running: Arc::new(running),
            component,
            reported: Default::default(),
            functions: Default::default(),
            memories: Default::default(),
        }
    }

    /// The exported memory at `index` (`memories`).
    pub fn memory(&self, index: u32) -> Result<wasmtime::Memory> {
        self.memories
            .get()
            .and_then(|memories| memories.get(index as usize).copied())
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::InvalidArgValue,
                    "not an exported memory of this instance",
                )
            })
    }

    /// The exported function at `index` (`functions`).
    pub fn function(&self, index: u32) -> Result<&ExportFunction> {
        self.functions
            .get()
            .and_then(|functions| functions.get(index as usize))
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::InvalidArgValue,
                    "not an export function of this instance",
                )
            })
    }

    /// Tells V8 what this instance holds outside the JS heap (its memories as they are now,
    /// and a fixed overhead), so that a loop making instances and dropping them collects
    /// them as it would V8's own, instead of piling up native memory the collector cannot
    /// see.
    pub fn report_memory(&mut self, env: &Env) {
        let memories = self
            .running
            .with_store(|mut store| match &self.running.guest {
                Guest::Core(instance) => instance
                    .exports(&mut store)
                    .filter_map(|export| export.into_memory())
                    .collect::<Vec<_>>()
                    .into_iter()
                    .map(|memory| memory.data_size(&store) as i64)
                    .sum(),
                Guest::Component(_) => 0,
            })
            .unwrap_or(0);
        let bytes = memories + INSTANCE_OVERHEAD;
        if env.adjust_external_memory(bytes).is_ok() {
            self.reported.set(bytes);
        }
    }

    fn build_exports<'env>(
        &self,
        env: &'env Env,
        handle: i64,
        instance_object: napi::sys::napi_value,
        trampoline: napi::sys::napi_value,
        exported_memory: napi::sys::napi_value,
    ) -> napi::Result<Object<'env>> {
        let instance = match (&self.running.guest, &self.component) {
            (Guest::Core(instance), _) => instance,
            (Guest::Component(instance), Some(component)) => {
                return component_exports(env, &self.running, instance, component)
            }
            (Guest::Component(_), None) => return Object::new(env),
        };
        let mut object = Object::new(env)?;
        let (exports, host_values) = self
            .running
            .with_store(|mut store| {
                let exports: Vec<(String, Extern)> = instance
                    .exports(&mut store)
                    .map(|export| (export.name().to_string(), export.into_extern()))
                    .collect();
                let exports: Vec<(String, Extern, ExternType, Option<Signature>)> = exports
                    .into_iter()
                    .map(|(name, export)| {
                        let ty = export.ty(&store);
                        let sig = ty.func().and_then(Signature::of);
                        (name, export, ty, sig)
                    })
                    .collect();
                let values = store
                    .as_context_mut()
                    .data()
                    .imports
                    .as_ref()
                    .and_then(|imports| imports.local_values(env));
                (exports, values)
            })
            .map_err(|f| f.into_napi(env))?;
        let functions = self.functions.get_or_init(|| {
            exports
                .iter()
                .filter_map(|(name, export, _, sig)| match (export, sig) {
                    (Extern::Func(func), Some(sig)) => Some(ExportFunction {
                        running: self.running.clone(),
                        func: *func,
                        sig: sig.clone(),
                        is_entry: name == "_start" || name == "_initialize",
                    }),
                    _ => None,
                })
                .collect()
        });
        let memories = self.memories.get_or_init(|| {
            exports
                .iter()
                .filter_map(|(_, export, _, _)| export.clone().into_memory())
                .collect()
        });
        let mut next = 0..functions.len() as u32;
        let mut next_memory = 0..memories.len() as u32;
        for (name, export, ty, sig) in exports {
            match (export, sig) {
                (Extern::Func(_), Some(_)) => {
                    let index = next.next().expect("one function per callable export");
                    let function = crate::export_function::bound(
                        env,
                        trampoline,
                        instance_object,
                        handle,
                        index,
                        &name,
                    )?;
                    // SAFETY: a function made just above, in this scope.
                    let mut as_object = unsafe { Object::from_napi_value(env.raw(), function)? };
                    if let Some(values) = host_values {
                        hold_values(env, &mut as_object, values)?;
                    }
                    object.set_named_property(&name, as_object)?;
                }
                (Extern::Func(_), None) => {
                    let unsupported =
                        env.create_function_from_closure::<(), (), _>(&name, |_| {
                            Err(napi::Error::new(
                                napi::Status::InvalidArg,
                                "this export takes or returns v128 or reference values, which JS \
                             cannot pass here",
                            ))
                        })?;
                    object.set_named_property(&name, unsupported)?;
                }
                (Extern::Memory(_), _) => {
                    let index = next_memory.next().expect("one index per exported memory");
                    let mut memory = std::ptr::null_mut();
                    let mut args = [std::ptr::null_mut(); 2];
                    // SAFETY: values of this scope; `exported_memory` is lib/memory.js's.
                    unsafe {
                        napi::sys::napi_create_int64(env.raw(), handle, &mut args[0]);
                        napi::sys::napi_create_uint32(env.raw(), index, &mut args[1]);
                        let status = napi::sys::napi_call_function(
                            env.raw(),
                            instance_object,
                            exported_memory,
                            2,
                            args.as_ptr(),
                            &mut memory,
                        );
                        if status != napi::sys::Status::napi_ok {
                            return Err(napi::Error::new(
                                napi::Status::GenericFailure,
                                "cannot make an exported Memory",
                            ));
                        }
                        let memory = Unknown::from_raw_unchecked(env.raw(), memory);
                        object.set_named_property(&name, memory)?;
                    }
                }
                (export, _) => {
                    if let Some(value) = host_externs::exported(env, &self.running, export, &ty)? {
                        // SAFETY: a value made just above, in this scope.
                        let value = unsafe { Unknown::from_raw_unchecked(env.raw(), value) };
                        object.set_named_property(&name, value)?;
                    }
                }
            }
        }
        Ok(object)
    }
}

/// ECMAScript ToInt32: wrap modulo 2^32.
pub fn to_int32(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    (n.trunc().rem_euclid(4294967296.0) as u32) as i32
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
}
