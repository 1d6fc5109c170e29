//! The engine registry and the per-store `Host` state. Engines differ only in what
//! `EngineKey` names (pooling allocation for one-shot runs, fuel metering, wasm stack size,
//! the compiler);
//! each is made once, on first use, with its WASI linkers: core modules get WASI preview1 and
//! `wasi_unstable` (with `proc_exit` shadowed), components WASI 0.2, over one WASI context.

use crate::component_imports::ComponentImports;
use crate::error::{ErrorCode, Failure, Result};
use crate::host_calls::Dispatcher;
use crate::host_functions::HostImports;
use crate::limits::{StopCell, StopWhen};
use crate::memory_buffer::TrackedBuffers;
use crate::store_access::Lent;
use once_cell::sync::Lazy;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::{component, Caller, Config, Engine, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{I32Exit, WasiCtxView, WasiView};

/// Everything one `Store` owns: the guest's WASI context, its limits, and its JS imports.
pub struct Host {
    /// Unique per store: finds the store a host function lent to JS (`store_access.rs`).
    pub id: u64,
    pub wasi: WasiP1Ctx,
    /// The memory cap of `limits.maxMemory` (and wasmtime's defaults otherwise).
    pub store_limits: crate::limits::MemoryCap,
    /// `returnOnExit: false`: `proc_exit` ends the whole process at once, as node:wasi does
    /// (from this JS thread: a guest on a pool thread unwinds with `ExitProcess` instead).
    pub exit_process_on_proc_exit: bool,
    /// The JS thread the store was made on.
    pub js_thread: std::thread::ThreadId,
    /// The host descriptor behind the guest's stdin, if it reads one (`stdin_hangup.rs`).
    pub stdin_file: Option<Arc<std::fs::File>>,
    /// The JS functions the guest imports, when the user supplied any.
    pub imports: Option<Arc<HostImports>>,
    /// The same for a component.
    pub component_imports: Option<Arc<ComponentImports>>,
    /// While the guest runs on a pool thread: the way its host calls reach JS.
    pub dispatcher: Option<Arc<Dispatcher>>,
    /// Where a guest waiting for JS on a pool thread lends its store (instances JS holds).
    pub lent: Option<Arc<Lent>>,
    /// What stops the current entry into the guest (a guest waiting on JS checks it).
    pub stop: StopWhen,
    /// The same, shared with the context's stdio streams.
    pub stop_cell: StopCell,
    /// `memory.buffer` objects handed to JS, detached when their memory grows.
    pub buffers: TrackedBuffers,
}

impl Host {
    pub fn new(
        wasi: WasiP1Ctx,
        stop_cell: StopCell,
        store_limits: crate::limits::MemoryCap,
        exit_process: bool,
    ) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Host {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            wasi,
            store_limits,
            exit_process_on_proc_exit: exit_process,
            js_thread: std::thread::current().id(),
            stdin_file: None,
            imports: None,
            component_imports: None,
            dispatcher: None,
            lent: None,
            stop: StopWhen::default(),
            stop_cell,
            buffers: TrackedBuffers::default(),
        }
    }

    /// Arms (or disarms) what stops the guest, for wasm and for its stdio streams.
    pub fn set_stop(&mut self, stop: StopWhen) {
        self.stop_cell.set(stop.clone());
        self.stop = stop;
    }
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

/// What engines differ in. The default key is the engine that compiles every module and
/// hosts the instances JS holds (`wasi.instantiate()`): each instance maps its own memory and
/// lives as long as JS keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EngineKey {
    /// One-shot runs (`runWasm`/`runWasmSync`), whose stores live for exactly one run: a
    /// pooling allocator reuses instance, memory and table slots (keeping the first MiB of
    /// each memory resident) instead of mapping, faulting in and unmapping a fresh 4 GiB
    /// reservation every run, which makes a hello-world run about 4x cheaper. Its slots are
    /// freed when a run ends, so it never waits on the garbage collector.
    pub pooling: bool,
    /// `limits.fuel`: metering is compiled into the code (several times slower on tight
    /// loops), so only modules that ask for it are compiled for it, on demand.
    pub fuel: bool,
    /// `limits.maxStack` (a power of two): wasmtime limits the wasm stack per engine.
    pub max_stack: Option<usize>,
    /// What compiles the code (its output only loads into an engine of the same compiler).
    /// Never Winch with `fuel`, which Winch does not support.
    pub compiler: Compiler,
}

/// wasmtime's two compilers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compiler {
    /// The optimizing compiler, and wasmtime's best-supported (tier 1).
    #[default]
    Cranelift,
    /// The baseline compiler: one pass, several times faster to compile, slower code;
    /// supported by wasmtime at a lower tier than Cranelift, and without the GC, tail-call,
    /// exception, function-reference and relaxed-SIMD proposals.
    Winch,
}

impl Compiler {
    pub fn name(self) -> &'static str {
        match self {
            Compiler::Cranelift => "cranelift",
            Compiler::Winch => "winch",
        }
    }
}

/// One engine and the WASI linkers of its stores.
pub struct EngineEntry {
    pub key: EngineKey,
    pub engine: Engine,
    pub core_linker: Linker<Host>,
    pub component_linker: component::Linker<Host>,
}

/// The engines made so far, by the key asked for; few (2 allocation strategies x fuel x at
/// most 8 stack sizes x 2 compilers), alive as long as the process. A pooling key whose pool cannot be
/// reserved maps to the on-demand engine of the same key (see `make`).
static ENGINES: Lazy<Mutex<Vec<(EngineKey, &'static EngineEntry)>>> = Lazy::new(Default::default);

/// The engine every module is compiled in (and `wasi.instantiate()` runs in).
static MAIN: Lazy<&'static EngineEntry> =
    Lazy::new(|| engine_for(EngineKey::default()).expect("the main engine configuration is valid"));

/// The engine for `key`, made (with its linkers) the first time it is asked for.
pub fn engine_for(key: EngineKey) -> Result<&'static EngineEntry> {
    make(&mut engines(), key)
}

fn make(
    engines: &mut Vec<(EngineKey, &'static EngineEntry)>,
    key: EngineKey,
) -> Result<&'static EngineEntry> {
    if let Some((_, found)) = engines.iter().find(|(asked, _)| *asked == key) {
        return Ok(found);
    }
    let engine = match Engine::new(&config(key)) {
        Ok(engine) => engine,
        // The pool reserves address space for all its slots up front (about 4 TiB), which an
        // address-space limit (`ulimit -v`, as some containers set) refuses: one-shot runs
        // then map each instance on demand, as the instances JS holds always do.
        Err(_) if key.pooling => {
            let on_demand = make(
                engines,
                EngineKey {
                    pooling: false,
                    ..key
                },
            )?;
            engines.push((key, on_demand));
            return Ok(on_demand);
        }
        Err(e) => {
            return Err(Failure::new(
                ErrorCode::InvalidArgValue,
                format!("cannot make an engine for {key:?}: {e:#}"),
            ))
        }
    };
    // Leaked on purpose: a handful at most, alive as long as the process.
    let made: &'static EngineEntry = Box::leak(Box::new(EngineEntry {
        key,
        core_linker: wasi_linker(&engine),
        component_linker: wasi_component_linker(&engine),
        engine,
    }));
    engines.push((key, made));
    Ok(made)
}

fn engines() -> std::sync::MutexGuard<'static, Vec<(EngineKey, &'static EngineEntry)>> {
    // Nothing can be left half-done under this lock (a push is the only change).
    ENGINES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The configuration of `key`'s engine. Every engine has epoch interruption (`limits.timeout`
/// and `signal`; a store without either gets a deadline it never reaches) and memories that
/// never move, so `memory.buffer` can be a view of the guest's memory itself.
fn config(key: EngineKey) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.memory_may_move(false);
    if key.pooling {
        let mut pooling = wasmtime::PoolingAllocationConfig::new();
        pooling
            .total_component_instances(MAX_LIVE_INSTANCES)
            .total_core_instances(MAX_LIVE_INSTANCES * CORE_INSTANCES_PER_RUN)
            .total_memories(MAX_LIVE_INSTANCES)
            .total_tables(MAX_LIVE_INSTANCES * CORE_INSTANCES_PER_RUN)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(1 << 16);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    }
    config.consume_fuel(key.fuel);
    if key.compiler == Compiler::Winch {
        config.strategy(wasmtime::Strategy::Winch);
        // What Cranelift still compiles for a Winch module is its trampolines (one per
        // function the host can call: thousands in a language runtime), which are short
        // and run once per host call: compiled fast, not well (a 30 MB module's Winch
        // compile takes a fifth less CPU).
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        config.cranelift_regalloc_algorithm(wasmtime::RegallocAlgorithm::SinglePass);
    }
    if let Some(max_stack) = key.max_stack {
        config.max_wasm_stack(max_stack);
        // wasmtime requires the (unused here) async stack to be at least as deep.
        config.async_stack_size(max_stack.max(2 << 20) + (1 << 20));
    }
    config
}

/// A linker serving WASI preview1 and `wasi_unstable` to core modules.
fn wasi_linker(engine: &Engine) -> Linker<Host> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |host: &mut Host| &mut host.wasi)
        .expect("preview1 links");
    wasmtime_wasi::p0::add_to_linker_sync(&mut linker, |host: &mut Host| &mut host.wasi)
        .expect("wasi_unstable links");
    // wasmtime-wasi refuses exit codes >= 126; node:wasi returns any i32, so shadow proc_exit.
    linker.allow_shadowing(true);
    for namespace in WASI_NAMESPACES {
        linker
            .func_wrap(namespace, "proc_exit", proc_exit)
            .expect("proc_exit links");
    }
    // A guest asleep in poll_oneoff can be stopped by its timeout or abort.
    linker
        .func_wrap(
            "wasi_snapshot_preview1",
            "poll_oneoff",
            crate::poll_oneoff::poll_oneoff,
        )
        .expect("poll_oneoff links");
    linker
        .func_wrap(
            "wasi_unstable",
            "poll_oneoff",
            crate::poll_oneoff::poll_oneoff_unstable,
        )
        .expect("wasi_unstable poll_oneoff links");
    // A path escaping a preopen is ENOTCAPABLE, as with node:wasi.
    crate::capability_errors::link(&mut linker).expect("path calls link");
    // The CPU-time clocks, as node:wasi serves them.
    crate::cpu_clocks::link(&mut linker).expect("clock calls link");
    linker
}

/// The import namespaces WASI serves to core modules.
pub const WASI_NAMESPACES: [&str; 2] = ["wasi_snapshot_preview1", "wasi_unstable"];

/// A linker serving WASI 0.2 to components (`wasi:cli/exit` ends the run with its code; a
/// wait in `wasi:io/poll` can be stopped, `component_poll.rs`).
fn wasi_component_linker(engine: &Engine) -> component::Linker<Host> {
    let mut linker = component::Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI 0.2 links");
    crate::component_poll::link(&mut linker).expect("wasi:io/poll links");
    linker
}

fn proc_exit(caller: Caller<'_, Host>, code: i32) -> wasmtime::Result<()> {
    let host = caller.data();
    if host.exit_process_on_proc_exit {
        return Err(host.exit_process(code).into());
    }
    Err(I32Exit(code).into())
}

impl Host {
    /// `returnOnExit: false`: ends the process now on the JS thread. Ending it on a pool
    /// thread would run its exit handlers while V8 runs on the JS thread, so there the guest
    /// unwinds with the returned `ExitProcess`, and the JS thread ends the process when the
    /// run settles (`wasi.startAsync`).
    pub fn exit_process(&self, code: i32) -> ExitProcess {
        if std::thread::current().id() == self.js_thread {
            exit_process(code);
        }
        ExitProcess(code)
    }
}

/// A guest on a pool thread called `proc_exit` with `returnOnExit: false`: the JS thread
/// ends the process with this code when the run settles.
#[derive(Debug)]
pub struct ExitProcess(pub i32);

impl std::fmt::Display for ExitProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proc_exit({}) with returnOnExit: false", self.0)
    }
}

impl std::error::Error for ExitProcess {}

/// node:wasi's `proc_exit` with `returnOnExit: false`: the whole process ends at once with
/// status `code & 0xff`, without Node's `'exit'` event.
///
/// It ends with `_exit`, not `exit`: `exit` runs the process's exit handlers and static
/// destructors (V8's, libuv's) while V8's platform threads still run, and one of them
/// (a sweeper touching a destroyed heap) then crashed the process with SIGSEGV in about one
/// exit in ten. Node writes stdout and stderr synchronously on Linux, so nothing JS wrote is
/// lost; C's and Rust's stdio buffers are flushed first.
pub fn exit_process(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: flushing every C stream and ending the process; neither returns control to
    // code that could observe a half-torn-down state.
    unsafe {
        libc::fflush(std::ptr::null_mut());
        libc::_exit(code & 0xff)
    }
}

/// The engine that compiles every module and hosts `wasi.instantiate()`'s instances.
pub fn engine() -> &'static Engine {
    &MAIN.engine
}

/// Every engine made so far (the clock ticks their epochs).
pub fn all_engines() -> Vec<&'static Engine> {
    engines()
        .iter()
        .filter(|(asked, entry)| *asked == entry.key)
        .map(|(_, entry)| &entry.engine)
        .collect()
}
