//! The process-wide wasmtime engines, the per-store `Host` state, and the shared linkers:
//! core modules get WASI preview1 and `wasi_unstable` (with `proc_exit` shadowed), components
//! get WASI 0.2 (`wasi:cli`, `wasi:filesystem`, ...), both over the same WASI context.

use once_cell::sync::Lazy;
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
