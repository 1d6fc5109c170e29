//! `runWasm`/`runWasmSync`: one `run_impl` that gives every call a fresh store, WASI context
//! and instance from the module's cached pre-instantiated form (core `_start` or component
//! `wasi:cli/run`); the async variant runs it on the guest pool (`pool.rs`).

use crate::command::exit_code;
use crate::component_resources::HostObjects;
use crate::ctx::{WasiConfig, WasiSpec};
use crate::engine::{Host, MAX_LIVE_INSTANCES};
use crate::error::{classify, reason, ErrorCode, Failure, HostThrow, Result};
use crate::host_calls::{Dispatch, Dispatcher};
use crate::host_externs;
use crate::host_functions::Plan;
use crate::js_bytes::JsBytes;
use crate::limits::{not_cancelled, CancelToken};
use crate::module::{CompiledModule, Module, Prepared};
use crate::stdio::captured_bytes;
use crate::stream_output::OutputChannel;
use crate::teardown::stop_flag;
use napi::bindgen_prelude::Object;
use napi::Env;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use wasmtime::{InstancePre, PoolConcurrencyLimitError, Store, Trap};

/// What one run produced.
#[napi(object, object_from_js = false)]
pub struct RunResult {
    /// 0 when `_start` returned, else the code passed to `proc_exit` (any i32). For a
    /// component: 0 for `ok`, 1 for `err`, `n` for `wasi:cli/exit#exit-with-code(n)`.
    pub exit_code: i32,
    /// Everything written to stdout (empty unless `stdout: 'pipe'`).
    #[napi(ts_type = "Buffer")]
    pub stdout: JsBytes,
    /// Everything written to stderr (empty unless `stderr: 'pipe'`).
    #[napi(ts_type = "Buffer")]
    pub stderr: JsBytes,
    /// Whether `limits.maxMemory` refused the guest a memory growth during the run (a guest
    /// whose allocator then failed exits with its own code, often with nothing on stderr).
    pub max_memory_reached: bool,
}

struct RunOutput {
    exit_code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    max_memory_reached: bool,
}

impl RunOutput {
    fn into_result(self) -> RunResult {
        RunResult {
            exit_code: self.exit_code,
            stdout: self.stdout.into(),
            stderr: self.stderr.into(),
            max_memory_reached: self.max_memory_reached,
        }
    }
}

/// An instantiation error: a trap in the start section is a trap, a full instance pool is
/// `ERR_WASM_INSTANCE_LIMIT`, anything else a link error.
pub fn instantiate_failure(error: wasmtime::Error) -> Failure {
    if error.downcast_ref::<Trap>().is_some() || error.downcast_ref::<HostThrow>().is_some() {
        return classify(error).expect_err("a trap is not an exit");
    }
    if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return Failure::new(
            ErrorCode::WasmInstanceLimit,
            format!(
                "At most {MAX_LIVE_INSTANCES} wasm instances can be alive at once in a process. \
                 Drop references to Instance objects you no longer need so they can be \
                 garbage-collected, or use runWasm, which frees its instance when the run ends"
            ),
        );
    }
    Failure::new(ErrorCode::WasmLink, explain_memory_cap(reason(&error)))
}

/// wasmtime's "memory minimum size of N pages exceeds memory limits" names neither the limit
/// nor the bytes: the only memory limit a store here has is `limits.maxMemory`, so say so.
fn explain_memory_cap(reason: String) -> String {
    let pages = reason
        .strip_prefix("memory minimum size of ")
        .and_then(|rest| rest.strip_suffix(" pages exceeds memory limits"))
        .and_then(|pages| pages.parse::<u64>().ok());
    match pages {
        Some(pages) => format!(
            "the module's memory declares a minimum of {pages} pages ({} bytes), more than \
             limits.maxMemory allows; raise limits.maxMemory to at least that",
            pages * 65536
        ),
        None => reason,
    }
}

/// The JS functions of one run: which imports they serve, and how calls reach them: from
/// `values` on this thread (`runWasmSync`), or through `dispatcher` from the pool (`runWasm`).
struct RunImports {
    plan: Plan,
    dispatcher: Option<Arc<Dispatcher>>,
    /// The JS objects behind a component's handles to host resources, made on the JS thread
    /// (and released there: the run's promise holds them until it settles).
    objects: Arc<HostObjects>,
}

fn run_impl(
    module: &CompiledModule,
    spec: &WasiSpec,
    cancel: Option<Arc<AtomicBool>>,
    imports: Option<RunImports>,
    local: Option<(&Env, &Object)>,
) -> Result<RunOutput> {
    not_cancelled(&cancel)?;
    let plan = imports.as_ref().map(|imports| imports.plan.user_imports());
    let (engine, prepared) = module.prepare(&spec.limits, true, plan)?;
    let captured = spec.new_captured();
    let mut host = spec.host(&captured, false)?;
    if let Some(imports) = &imports {
        match local {
            Some((env, values)) => imports.plan.install(&mut host, env, values)?,
            None => imports
                .plan
                .install_remote(&mut host, imports.objects.clone()),
        }
        host.dispatcher = imports.dispatcher.clone();
    }
    let mut store = spec.limits.new_store(engine, host);
    let _ticking = spec.limits.arm(&mut store, cancel);
    let outcome = match prepared {
        Prepared::Core(pre) => start(&mut store, &pre),
        Prepared::Linked(linker, core) => {
            let externs = match imports.as_ref().map(|imports| &imports.plan) {
                Some(Plan::Core(plan)) => plan.externs.clone(),
                _ => Default::default(),
            };
            host_externs::instantiate(&mut store, &linker, &core, &externs, None)
                .and_then(|(instance, _)| call_start(&mut store, instance))
        }
        Prepared::Command(pre) => pre
            .instantiate(&mut store)
            .map_err(instantiate_failure)
            .and_then(|command| exit_code(command.wasi_cli_run().call_run(&mut store))),
        Prepared::Component(_) => Err(Failure::new(
            ErrorCode::InvalidArgValue,
            "a one-shot run needs a command",
        )),
    };
    let stdout = captured_bytes(&captured.stdout);
    let stderr = captured_bytes(&captured.stderr);
    let max_memory_reached = store.data().store_limits.refused;
    match outcome {
        Ok(exit_code) => Ok(RunOutput {
            exit_code,
            stdout,
            stderr,
            max_memory_reached,
        }),
        Err(mut failure) => {
            failure.output = Some((stdout, stderr));
            Err(failure.after_memory_refused(max_memory_reached))
        }
    }
}

/// Instantiates a core command and runs its `_start`.
fn start(store: &mut Store<Host>, pre: &InstancePre<Host>) -> Result<i32> {
    let instance = pre.instantiate(&mut *store).map_err(instantiate_failure)?;
    call_start(store, instance)
}

/// Runs a core command's `_start`.
fn call_start(store: &mut Store<Host>, instance: wasmtime::Instance) -> Result<i32> {
    let start = instance
        .get_typed_func::<(), ()>(&mut *store, "_start")
        .map_err(|_| {
            Failure::new(
                ErrorCode::InvalidArgValue,
                "The module has no `_start` export, so it is not a WASI command. A reactor \
                 (exporting `_initialize`) runs with new WASI(...), wasi.instantiate() and \
                 wasi.initialize(), then its exports",
            )
        })?;
    start
        .call(&mut *store, ())
        .map_or_else(classify, |()| Ok(0))
}

/// Internal: runs a WASI command in a fresh instance on this thread. Use `runWasmSync`.
#[napi(
    catch_unwind,
    ts_args_type = "module: Module, config: WasiConfig, stdout?: OutputChannel | undefined | null, stderr?: OutputChannel | undefined | null, imports?: unknown[] | undefined | null"
)]
pub fn run_sync(
    env: Env,
    module: &Module,
    config: WasiConfig,
    stdout: Option<&OutputChannel>,
    stderr: Option<&OutputChannel>,
    imports: Option<Object>,
) -> napi::Result<RunResult> {
    let run = || -> Result<RunOutput> {
        let spec = WasiSpec::from_config(config, (stdout, stderr))?;
        let run_imports = Plan::resolve(&module.inner, &imports)?.map(|plan| RunImports {
            plan,
            dispatcher: None,
            objects: Arc::new(HostObjects::new(&env)),
        });
        let local = imports.as_ref().map(|values| (&env, values));
        run_impl(&module.inner, &spec, None, run_imports, local)
    };
    run()
        .map(RunOutput::into_result)
        .map_err(|f| f.into_napi(&env))
}

/// Internal: runs a WASI command in a fresh instance on a pool thread, its host calls going
/// to `dispatch` on this thread. Use `runWasm`.
#[napi(
    catch_unwind,
    ts_args_type = "module: Module, config: WasiConfig, cancel?: CancelToken | undefined | null, stdout?: OutputChannel | undefined | null, stderr?: OutputChannel | undefined | null, imports?: unknown[] | undefined | null, dispatch?: (call: PendingHostCall, index: number, args: Array<number | bigint>) => void",
    ts_return_type = "Promise<RunResult>"
)]
#[allow(clippy::too_many_arguments)] // one internal entry point; lib/run.js names them all
pub fn run_async<'env>(
    env: &'env Env,
    module: &Module,
    config: WasiConfig,
    cancel: Option<&CancelToken>,
    stdout: Option<&OutputChannel>,
    stderr: Option<&OutputChannel>,
    imports: Option<Object>,
    dispatch: Option<Dispatch<'_>>,
) -> napi::Result<Object<'env>> {
    let began = cancel.map(|token| token.began.clone());
    let cancel = Some(stop_flag(env, cancel.map(|token| token.flag.clone()))?);
    let spec = WasiSpec::from_config(config, (stdout, stderr)).map_err(|f| f.into_napi(env))?;
    let plan = Plan::resolve(&module.inner, &imports).map_err(|f| f.into_napi(env))?;
    let run_imports = match plan {
        Some(plan) => {
            let dispatch = dispatch.ok_or_else(|| {
                Failure::new(
                    ErrorCode::InvalidArgValue,
                    "host functions need a dispatcher",
                )
                .into_napi(env)
            })?;
            Some(RunImports {
                plan,
                dispatcher: Some(Arc::new(Dispatcher::new(dispatch)?)),
                objects: Arc::new(HostObjects::new(env)),
            })
        }
        None => None,
    };
    let objects = run_imports.as_ref().map(|imports| imports.objects.clone());
    let module: Arc<CompiledModule> = module.inner.clone();
    let (deferred, promise) = env.create_deferred()?;
    crate::pool::spawn(move || {
        crate::limits::begin(&began);
        let outcome = run_impl(&module, &spec, cancel, run_imports, None);
        spec.streams().settle(&outcome);
        deferred.resolve(move |env: Env| {
            // The host objects' last holder: their references are released on this thread.
            drop(objects);
            outcome
                .map(RunOutput::into_result)
                .map_err(|f| f.into_rejection(&env))
        });
    });
    Ok(promise)
}
