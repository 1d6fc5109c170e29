//! `WasiCore`: the native half of the `WASI` class (`lib/wasi.js` holds node:wasi's argument
//! checks). It owns the started flag, the WASI configuration, the capture pipes, and
//! instantiating and starting guests in wasmtime.

use crate::ctx::{WasiConfig, WasiSpec};
use crate::error::{ErrorCode, Failure};
use crate::host_calls::{Dispatch, Dispatcher};
use crate::host_externs;
use crate::host_functions::Plan;
use crate::imports::{syscall_function, SyscallState};
use crate::instance::{Guest, Instance, Running};
use crate::instance_handles;
use crate::js_bytes::JsBytes;
use crate::limits::{CancelToken, StopCell};
use crate::module::{Module, Prepared};
use crate::run::instantiate_failure;
use crate::stdio::{captured_bytes, Captured};
use crate::stdio_writes::StdioWrites;
use crate::stream_output::OutputChannel;
use crate::teardown::stop_flag;
use napi::bindgen_prelude::{Function, Object, Unknown};
use napi::Env;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wasmtime_wasi::p1::WasiP1Ctx;

/// node:wasi's `ERR_WASI_ALREADY_STARTED`.
pub fn already_started() -> Failure {
    Failure::new(
        ErrorCode::WasiAlreadyStarted,
        "WASI instance has already started",
    )
}

/// Internal: the native state behind one `WASI` object. Use `WASI`.
#[napi]
pub struct WasiCore {
    spec: WasiSpec,
    captured: Captured,
    started: Arc<AtomicBool>,
    return_on_exit: bool,
    /// The V8 guest's context, once bound (`bind_syscalls`), shared with its syscall function.
    bound: Option<Rc<SyscallState>>,
}

#[napi]
impl WasiCore {
    /// Opens the configured host resources; fails like node:wasi's native setup
    /// (`UVWASI_ENOENT`, `UVWASI_ENOTDIR`, `UVWASI_EBADF`).
    #[napi(catch_unwind, constructor)]
    pub fn new(
        env: Env,
        config: WasiConfig,
        stdout: Option<&OutputChannel>,
        stderr: Option<&OutputChannel>,
    ) -> napi::Result<Self> {
        let spec =
            WasiSpec::from_config(config, (stdout, stderr)).map_err(|f| f.into_napi(&env))?;
        Ok(WasiCore {
            captured: spec.new_captured(),
            spec,
            started: Arc::new(AtomicBool::new(false)),
            return_on_exit: true,
            bound: None,
        })
    }

    /// Makes this object, whose `WASI` has run its command and holds no instance (its V8
    /// guest's command has ended, or every instance of `instantiate()` is disposed), the
    /// state of a new `WASI` object, as `new` would
    /// (failing as it fails, in which case nothing changes). The syscall function of
    /// `bind_syscalls` is kept, unbound until `rebind_syscalls`: so a loop making a `WASI`
    /// per run does not make a native object per run, whose memory Node 20 would give back
    /// only when the event loop turns (`lib/wasi.js` keeps a few ended objects for this).
    #[napi(catch_unwind)]
    pub fn reset(
        &mut self,
        env: Env,
        config: WasiConfig,
        stdout: Option<&OutputChannel>,
        stderr: Option<&OutputChannel>,
    ) -> napi::Result<()> {
        let spec =
            WasiSpec::from_config(config, (stdout, stderr)).map_err(|f| f.into_napi(&env))?;
        self.spec = spec;
        self.started = Arc::new(AtomicBool::new(false));
        self.return_on_exit = true;
        self.park();
        Ok(())
    }

    /// Empties an object handed back for a later `reset` (its `WASI` has copied what it
    /// captured): its capture buffers, up to `maxBuffer` each, and its V8 guest's context are
    /// dropped now rather than kept while it waits.
    #[napi(catch_unwind)]
    pub fn park(&mut self) {
        self.captured = self.spec.new_captured();
        self.unbind();
    }

    /// `bind_syscalls` for an object whose syscall function exists already (after `reset`):
    /// that function now serves a fresh context of this object's configuration.
    #[napi(catch_unwind)]
    pub fn rebind_syscalls(&mut self, env: Env) -> napi::Result<()> {
        let Some(state) = self.bound.clone() else {
            return Err(
                Failure::new(ErrorCode::InvalidArgValue, "no syscall function to rebind")
                    .into_napi(&env),
            );
        };
        *state.borrow_mut() = Some(self.syscall_state().map_err(|f| f.into_napi(&env))?);
        Ok(())
    }

    /// Whether `start`/`initialize` (or an entry point export) has run.
    #[napi(catch_unwind, getter)]
    pub fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Sets the started flag; throws `ERR_WASI_ALREADY_STARTED` if it was set.
    #[napi(catch_unwind)]
    pub fn mark_started(&self, env: Env) -> napi::Result<()> {
        if self.started.swap(true, Ordering::SeqCst) {
            return Err(already_started().into_napi(&env));
        }
        Ok(())
    }

    /// `false`: a guest's `proc_exit` ends the process, as node:wasi's `returnOnExit: false`.
    #[napi(catch_unwind, setter)]
    pub fn set_return_on_exit(&mut self, value: bool) {
        self.return_on_exit = value;
    }

    /// Throws `ERR_WASM_INSTANCE_DISPOSED` if `instance` was disposed (checked before this
    /// object is marked started).
    #[napi(catch_unwind)]
    pub fn check_live(&self, env: Env, instance: i64) -> napi::Result<()> {
        instance_handles::get(instance)
            .and_then(|instance| instance.running.not_disposed())
            .map_err(|f| f.into_napi(&env))
    }

    /// A new store and instance of `module` (core module or component) with this object's
    /// WASI context, as the handle of a JS `Instance` (`lib/instance.js`). `imports`: the
    /// import object's value for each import of the module, in order (`lib/host.js`);
    /// functions among them serve those imports.
    #[napi(
        catch_unwind,
        ts_args_type = "module: Module, imports?: unknown[] | undefined | null"
    )]
    pub fn instantiate(
        &self,
        env: Env,
        module: &Module,
        imports: Option<Object>,
    ) -> napi::Result<i64> {
        let make = || -> crate::error::Result<Instance> {
            let limits = &self.spec.limits;
            let plan = Plan::resolve(&module.inner, &imports)?;
            let (engine, prepared) =
                module
                    .inner
                    .prepare(limits, false, plan.as_ref().map(Plan::user_imports))?;
            let mut host = self.spec.host(&self.captured, !self.return_on_exit)?;
            if let (Some(plan), Some(values)) = (&plan, &imports) {
                plan.install(&mut host, &env, values)?;
            }
            let mut store = limits.new_store(engine, host);
            let ticking = limits.arm(&mut store, None);
            let mut bindings = Vec::new();
            let mut component = None;
            let guest = match prepared {
                Prepared::Core(pre) => {
                    Guest::Core(pre.instantiate(&mut store).map_err(instantiate_failure)?)
                }
                Prepared::Linked(linker, core) => {
                    let externs = match &plan {
                        Some(Plan::Core(plan)) => plan.externs.clone(),
                        _ => Default::default(),
                    };
                    let values = imports.as_ref().map(|values| (&env, values));
                    let (instance, made) =
                        host_externs::instantiate(&mut store, &linker, &core, &externs, values)?;
                    bindings = made;
                    Guest::Core(instance)
                }
                Prepared::Component(pre) => {
                    component = Some(pre.component().clone());
                    Guest::Component(pre.instantiate(&mut store).map_err(instantiate_failure)?)
                }
                Prepared::Command(_) => {
                    return Err(Failure::new(
                        ErrorCode::InvalidArgValue,
                        "an instance for JS is not prepared as a command",
                    ))
                }
            };
            drop(ticking);
            let mut instance = Instance::new(
                Running::new(store, guest, self.started.clone(), limits.clone()),
                component,
            );
            instance.report_memory(&env);
            host_externs::bind(&env, bindings, &instance.running);
            Ok(instance)
        };
        instance_handles::insert(&env, make().map_err(|f| f.into_napi(&env))?)
    }

    /// A fresh WASI context for a guest V8 runs (the `wasiImport` path), built when its
    /// memory is bound, wrapped in the native syscall function (see `imports.rs`).
    #[napi(
        catch_unwind,
        ts_return_type = "(index: number, memory: ArrayBuffer | Uint8Array, scratch: ArrayBuffer) => number"
    )]
    pub fn bind_syscalls<'env>(
        &mut self,
        env: &'env Env,
    ) -> napi::Result<Function<'env, Unknown<'env>, i32>> {
        let state = self.syscall_state().map_err(|f| f.into_napi(env))?;
        let state = Rc::new(RefCell::new(Some(state)));
        self.bound = Some(state.clone());
        syscall_function(env, &state)
    }

    /// Closes this object's host descriptors now rather than when the garbage collector
    /// frees it: its own duplicates of the stdio fds and preopens, and those of the context
    /// of the V8 guest and of `instance` (a command it started), which get a context
    /// without them (same arguments and environment; stdin at end of file, output to host
    /// fds discarded, captured and streamed output as before). Other instances made by
    /// `instantiate()` keep their own context until they are freed. Idempotent.
    #[napi(catch_unwind)]
    pub fn release(&mut self, env: Env, instance: Option<i64>) -> napi::Result<()> {
        self.spec.close_descriptors();
        if let Some(Ok(instance)) = instance.map(instance_handles::get) {
            instance
                .running
                .replace_wasi(|stop| self.spec.build(&self.captured, stop))
                .map_err(|f| f.into_napi(&env))?;
        }
        if let Some(state) = &self.bound {
            if let Ok(mut state) = state.try_borrow_mut() {
                if state.is_some() {
                    *state = Some(self.syscall_state().map_err(|f| f.into_napi(&env))?);
                }
            }
        }
        Ok(())
    }

    /// `[Symbol.dispose]()`: `release()`, and the V8 guest's syscalls then all return `badf`.
    #[napi(catch_unwind)]
    pub fn dispose(&mut self, env: Env) -> napi::Result<()> {
        self.release(env, None)?;
        self.unbind();
        self.bound = None;
        Ok(())
    }

    /// Runs `instance`'s entry point: `_start` or `_initialize` (the JS side has already
    /// checked the exports and set the started flag), or `run` for a component (checked and
    /// claimed here). Returns the exit code.
    #[napi(catch_unwind)]
    pub fn run_entry(&self, env: Env, instance: i64, name: String) -> napi::Result<i32> {
        instance_handles::get(instance)
            .and_then(|instance| instance.running.call_entry(&env, &name))
            .map_err(|f| f.into_napi(&env))
    }

    /// `wasi.startAsync()`: claims the entry point now (`_start`, or `run` for a component;
    /// the JS side has checked the exports and marked a core module started), then runs it
    /// on the guest pool, its host calls going to `dispatch` on this thread. The promise
    /// resolves to the exit code.
    #[napi(
        catch_unwind,
        ts_args_type = "instance: number, name: string, cancel?: CancelToken | undefined | null, dispatch?: (call: PendingHostCall, index: number, args: Array<number | bigint>) => void",
        ts_return_type = "Promise<number>"
    )]
    pub fn start_async<'env>(
        &self,
        env: &'env Env,
        instance: i64,
        name: String,
        cancel: Option<&CancelToken>,
        dispatch: Option<Dispatch<'_>>,
    ) -> napi::Result<Object<'env>> {
        let began = cancel.map(|token| token.began.clone());
        let cancel = Some(stop_flag(env, cancel.map(|token| token.flag.clone()))?);
        let dispatcher = dispatch.map(Dispatcher::new).transpose()?.map(Arc::new);
        let work = instance_handles::get(instance)
            .and_then(|instance| instance.running.call_entry_later(&name, cancel, dispatcher))
            .map_err(|f| f.into_napi(env))?;
        let streams = self.spec.streams();
        let (deferred, promise) = env.create_deferred()?;
        crate::pool::spawn(move || {
            crate::limits::begin(&began);
            let (outcome, running) = work();
            streams.settle(&outcome);
            deferred.resolve(move |env: Env| {
                // The guest's last holder may be this job: release it here, on its JS thread.
                drop(running);
                if let Err(failure) = &outcome {
                    if failure.code == ErrorCode::ExitProcess {
                        crate::engine::exit_process(failure.exit_code.unwrap_or(1));
                    }
                }
                outcome.map_err(|f| f.into_rejection(&env))
            });
        });
        Ok(promise)
    }

    /// `wasi.initialize()` of a component instance (marks this object started).
    #[napi(catch_unwind)]
    pub fn initialize_component(&self, env: Env, instance: i64) -> napi::Result<()> {
        instance_handles::get(instance)
            .and_then(|instance| instance.running.initialize_component())
            .map_err(|f| f.into_napi(&env))
    }

    /// Everything the guest wrote to stdout, with `stdout: 'pipe'`.
    #[napi(catch_unwind, getter, ts_return_type = "Buffer | null")]
    pub fn stdout(&self) -> Option<JsBytes> {
        self.captured
            .stdout
            .as_ref()
            .map(|_| captured_bytes(&self.captured.stdout).into())
    }

    /// Everything the guest wrote to stderr, with `stderr: 'pipe'`.
    #[napi(catch_unwind, getter, ts_return_type = "Buffer | null")]
    pub fn stderr(&self) -> Option<JsBytes> {
        self.captured
            .stderr
            .as_ref()
            .map(|_| captured_bytes(&self.captured.stderr).into())
    }
}

impl WasiCore {
    /// A fresh context for a V8 guest's syscalls, with its stdio lane. V8 runs that guest:
    /// nothing can stop it from outside (no limits apply).
    fn syscall_state(&self) -> crate::error::Result<(WasiP1Ctx, StdioWrites)> {
        let ctx = self.spec.build(&self.captured, &StopCell::default())?;
        Ok((ctx, StdioWrites::new(&self.spec, &self.captured)))
    }

    /// Drops the V8 guest's context (its syscalls then return `badf`), keeping the function.
    fn unbind(&self) {
        if let Some(state) = &self.bound {
            if let Ok(mut state) = state.try_borrow_mut() {
                state.take();
            }
        }
    }
}
