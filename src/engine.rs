//! The process-wide wasmtime engines, the per-store `Host` state, and the shared linkers:
//! core modules get WASI preview1 and `wasi_unstable` (with `proc_exit` shadowed), components
//! get WASI 0.2 (`wasi:cli`, `wasi:filesystem`, ...), both over the same WASI context.

use crate::error::{ErrorCode, Failure, Result};
use once_cell::sync::Lazy;
use std::sync::Mutex;
use wasmtime::{component, Caller, Config, Engine, Linker, StoreLimits};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{I32Exit, WasiCtxView, WasiView};

/// Everything one `Store` owns: the guest's WASI context and how `proc_exit` behaves.
pub struct Host {
    pub wasi: WasiP1Ctx,
    /// The memory cap of `limits.maxMemory` (and wasmtime's defaults otherwise).
    pub store_limits: StoreLimits,
    /// `returnOnExit: false`: `proc_exit` ends the whole process at once, as node:wasi does.
    pub exit_process_on_proc_exit: bool,
}

/// Components reach the same context through WASI 0.2's interfaces.
impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

/// How many one-shot runs may be in flight at once in this process (each pool slot reserves
/// 4 GiB of address space, not memory).
pub const MAX_LIVE_INSTANCES: u32 = 1000;

/// Core instances (and tables) one run may use: a component made from a preview1 command
/// with the adapter instantiates several small core modules besides the program itself.
const CORE_INSTANCES_PER_RUN: u32 = 8;

/// Compiles every module and runs the instances users hold (`wasi.instantiate()`): each
/// instance maps its own memory and lives as long as JS keeps it.
static ENGINE: Lazy<Engine> =
    Lazy::new(|| Engine::new(&base_config()).expect("the engine configuration is valid"));

/// What both engines share: epoch interruption, which `limits.timeout` and `signal` use
/// (a store without either gets a deadline it never reaches).
fn base_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config
}

/// Runs `runWasm`/`runWasmSync`, whose stores live for exactly one run: a pooling allocator
/// reuses instance, memory and table slots (keeping the first MiB of each memory resident)
/// instead of mapping, faulting in and unmapping a fresh 4 GiB reservation every run, which
/// makes a hello-world run about 4x cheaper. Its slots are freed when a run ends, so unlike
/// `ENGINE` it never waits on the garbage collector.
static RUN_ENGINE: Lazy<Engine> = Lazy::new(|| {
    let mut pooling = wasmtime::PoolingAllocationConfig::new();
    pooling
        .total_component_instances(MAX_LIVE_INSTANCES)
        .total_core_instances(MAX_LIVE_INSTANCES * CORE_INSTANCES_PER_RUN)
        .total_memories(MAX_LIVE_INSTANCES)
        .total_tables(MAX_LIVE_INSTANCES * CORE_INSTANCES_PER_RUN)
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(1 << 16);
    let mut config = base_config();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config).expect("the engine configuration is valid")
});

/// Runs guests with `limits.fuel`: fuel metering is compiled into the code (several times
/// slower on tight loops), so only modules that ask for it are compiled here, on demand.
static FUEL_ENGINE: Lazy<Engine> = Lazy::new(|| {
    let mut config = base_config();
    config.consume_fuel(true);
    Engine::new(&config).expect("the engine configuration is valid")
});

static CORE_LINKER: Lazy<Linker<Host>> = Lazy::new(|| wasi_linker(&ENGINE));
static FUEL_LINKER: Lazy<Linker<Host>> = Lazy::new(|| wasi_linker(&FUEL_ENGINE));
static FUEL_COMPONENT_LINKER: Lazy<component::Linker<Host>> =
    Lazy::new(|| wasi_component_linker(&FUEL_ENGINE));
static RUN_LINKER: Lazy<Linker<Host>> = Lazy::new(|| wasi_linker(&RUN_ENGINE));
static COMPONENT_LINKER: Lazy<component::Linker<Host>> =
    Lazy::new(|| wasi_component_linker(&ENGINE));
static RUN_COMPONENT_LINKER: Lazy<component::Linker<Host>> =
    Lazy::new(|| wasi_component_linker(&RUN_ENGINE));

/// A linker serving WASI preview1 and `wasi_unstable` to core modules.
fn wasi_linker(engine: &Engine) -> Linker<Host> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |host: &mut Host| &mut host.wasi)
        .expect("preview1 links");
    wasmtime_wasi::p0::add_to_linker_sync(&mut linker, |host: &mut Host| &mut host.wasi)
        .expect("wasi_unstable links");
    // wasmtime-wasi refuses exit codes >= 126; node:wasi returns any i32, so shadow proc_exit.
    linker.allow_shadowing(true);
    for namespace in ["wasi_snapshot_preview1", "wasi_unstable"] {
        linker
            .func_wrap(namespace, "proc_exit", proc_exit)
            .expect("proc_exit links");
    }
    linker
}

/// A linker serving WASI 0.2 to components (`wasi:cli/exit` ends the run with its code).
fn wasi_component_linker(engine: &Engine) -> component::Linker<Host> {
    let mut linker = component::Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI 0.2 links");
    linker
}

fn proc_exit(caller: Caller<'_, Host>, code: i32) -> wasmtime::Result<()> {
    if caller.data().exit_process_on_proc_exit {
        exit_process(code);
    }
    Err(I32Exit(code).into())
}

/// node:wasi's `proc_exit` with `returnOnExit: false`: the whole process ends at once with
/// status `code & 0xff`, without Node's `'exit'` event.
pub fn exit_process(code: i32) -> ! {
    std::process::exit(code & 0xff)
}

/// The engine that compiles every module and hosts `wasi.instantiate()`'s instances.
pub fn engine() -> &'static Engine {
    &ENGINE
}

/// The engine of one-shot runs (pooling allocation).
pub fn run_engine() -> &'static Engine {
    &RUN_ENGINE
}

/// The linker for `engine()`'s instances.
pub fn core_linker() -> &'static Linker<Host> {
    &CORE_LINKER
}

/// The linker for `run_engine()`'s instances.
pub fn run_linker() -> &'static Linker<Host> {
    &RUN_LINKER
}

/// The component linker for `engine()`'s instances.
pub fn component_linker() -> &'static component::Linker<Host> {
    &COMPONENT_LINKER
}

/// The component linker for `run_engine()`'s instances.
pub fn run_component_linker() -> &'static component::Linker<Host> {
    &RUN_COMPONENT_LINKER
}

/// The engine of guests with `limits.fuel`.
pub fn fuel_engine() -> &'static Engine {
    &FUEL_ENGINE
}

/// The core-module linker for `fuel_engine()`'s instances.
pub fn fuel_linker() -> &'static Linker<Host> {
    &FUEL_LINKER
}

/// The component linker for `fuel_engine()`'s instances.
pub fn fuel_component_linker() -> &'static component::Linker<Host> {
    &FUEL_COMPONENT_LINKER
}

/// An engine for guests with `limits.maxStack` (and maybe `limits.fuel`): wasmtime limits the
/// wasm stack per engine, not per store, so each stack size has its own, with its linkers.
pub struct StackEngine {
    pub engine: Engine,
    pub core_linker: Linker<Host>,
    pub component_linker: component::Linker<Host>,
}

/// The stack engines made so far, by (stack size, fuel); sizes are powers of two (see
/// `Limits`), so there are few.
type StackEngines = Vec<((usize, bool), &'static StackEngine)>;
static STACK_ENGINES: Lazy<Mutex<StackEngines>> = Lazy::new(Default::default);

/// The engine whose guests may use `max_stack` bytes of wasm stack, metering fuel if `fuel`.
pub fn stack_engine(max_stack: usize, fuel: bool) -> Result<&'static StackEngine> {
    let mut engines = stack_engines();
    if let Some((_, found)) = engines.iter().find(|(key, _)| *key == (max_stack, fuel)) {
        return Ok(found);
    }
    let mut config = base_config();
    config.max_wasm_stack(max_stack);
    // wasmtime requires the (unused here) async stack to be at least as deep.
    config.async_stack_size(max_stack.max(2 << 20) + (1 << 20));
    config.consume_fuel(fuel);
    let engine = Engine::new(&config).map_err(|e| {
        Failure::new(
            ErrorCode::InvalidArgValue,
            format!("cannot make an engine with a {max_stack}-byte wasm stack: {e:#}"),
        )
    })?;
    // Leaked on purpose: a handful at most, alive as long as the process, like the others.
    let made: &'static StackEngine = Box::leak(Box::new(StackEngine {
        core_linker: wasi_linker(&engine),
        component_linker: wasi_component_linker(&engine),
        engine,
    }));
    engines.push(((max_stack, fuel), made));
    Ok(made)
}

fn stack_engines() -> std::sync::MutexGuard<'static, StackEngines> {
    // Nothing can be left half-done under this lock (a push is the only change).
    STACK_ENGINES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every engine made so far (the clock ticks their epochs).
pub fn all_engines() -> Vec<&'static Engine> {
    let mut all = vec![engine(), run_engine(), fuel_engine()];
    all.extend(stack_engines().iter().map(|(_, made)| &made.engine));
    all
}
