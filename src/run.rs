//! `runWasm`/`runWasmSync`: one `run_impl` that gives every call a fresh store, WASI context
//! and instance from the module's cached pre-instantiated form (core `_start` or component
//! `wasi:cli/run`); the async variant runs it on the guest pool (`pool.rs`).

use crate::command::exit_code;
use crate::ctx::{WasiConfig, WasiSpec};
use crate::engine::{Host, MAX_LIVE_INSTANCES};
use crate::error::{classify, reason, ErrorCode, Failure, Result};
use crate::limits::{not_cancelled, CancelToken};
use crate::module::{CompiledModule, Module, Prepared};
use crate::stdio::captured_bytes;
use crate::stream_output::OutputChannel;
use crate::teardown::stop_flag;
use napi::bindgen_prelude::{Buffer, Object};
use napi::Env;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use wasmtime::{InstancePre, PoolConcurrencyLimitError, Store, Trap};

/// What one run produced.
#[napi(object)]
pub struct RunResult {
    /// 0 when `_start` returned, else the code passed to `proc_exit` (any i32). For a
    /// component: 0 for `ok`, 1 for `err`, `n` for `wasi:cli/exit#exit-with-code(n)`.
    pub exit_code: i32,
    /// Everything written to stdout (empty unless `stdout: 'pipe'`).
    pub stdout: Buffer,
    /// Everything written to stderr (empty unless `stderr: 'pipe'`).
    pub stderr: Buffer,
}

struct RunOutput {
    exit_code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl RunOutput {
    fn into_result(self) -> RunResult {
        RunResult {
            exit_code: self.exit_code,
            stdout: self.stdout.into(),
            stderr: self.stderr.into(),
        }
    }
}

/// An instantiation error: a trap in the start section is a trap, a full instance pool is
/// `ERR_WASM_INSTANCE_LIMIT`, anything else a link error.
pub fn instantiate_failure(error: wasmtime::Error) -> Failure {
    if error.downcast_ref::<Trap>().is_some() {
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
    Failure::new(ErrorCode::WasmLink, reason(&error))
}

fn run_impl(
    module: &CompiledModule,
    spec: &WasiSpec,
    cancel: Option<Arc<AtomicBool>>,
) -> Result<RunOutput> {
    not_cancelled(&cancel)?;
    let (engine, prepared) = module.prepare(&spec.limits, true)?;
    let captured = spec.new_captured();
    let mut store = spec.limits.new_store(engine, spec.host(&captured, false)?);
    let _ticking = spec.limits.arm(&mut store, cancel);
    let outcome = match prepared {
        Prepared::Core(pre) => start(&mut store, &pre),
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
    match outcome {
        Ok(exit_code) => Ok(RunOutput {
            exit_code,
            stdout,
            stderr,
        }),
        Err(failure) => Err(Failure {
            output: Some((stdout, stderr)),
            ..failure
        }),
    }
}

/// Instantiates a core command and runs its `_start`.
fn start(store: &mut Store<Host>, pre: &InstancePre<Host>) -> Result<i32> {
    let instance = pre.instantiate(&mut *store).map_err(instantiate_failure)?;
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
#[napi]
pub fn run_sync(
    env: Env,
    module: &Module,
    config: WasiConfig,
    stdout: Option<&OutputChannel>,
    stderr: Option<&OutputChannel>,
) -> napi::Result<RunResult> {
    let spec = WasiSpec::from_config(config, (stdout, stderr)).map_err(|f| f.into_napi(&env))?;
    run_impl(&module.inner, &spec, None)
        .map(RunOutput::into_result)
        .map_err(|f| f.into_napi(&env))
}

/// Internal: runs a WASI command in a fresh instance on a pool thread. Use `runWasm`.
#[napi(ts_return_type = "Promise<RunResult>")]
pub fn run_async<'env>(
    env: &'env Env,
    module: &Module,
    config: WasiConfig,
    cancel: Option<&CancelToken>,
    stdout: Option<&OutputChannel>,
    stderr: Option<&OutputChannel>,
) -> napi::Result<Object<'env>> {
    let cancel = Some(stop_flag(env, cancel.map(|token| token.flag.clone()))?);
    let spec = WasiSpec::from_config(config, (stdout, stderr)).map_err(|f| f.into_napi(env))?;
    let module: Arc<CompiledModule> = module.inner.clone();
    let (deferred, promise) = env.create_deferred()?;
    crate::pool::spawn(move || {
        let outcome = run_impl(&module, &spec, cancel);
        spec.streams().wait_delivered();
        deferred.resolve(move |env: Env| {
            outcome
                .map(RunOutput::into_result)
                .map_err(|f| f.into_napi(&env))
        });
    });
    Ok(promise)
}
