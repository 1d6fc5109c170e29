//! The process-wide wasmtime `Engine`, the per-store `Host` state, and the shared core-module
//! `Linker` (WASI preview1 and `wasi_unstable`, with `proc_exit` shadowed).

use once_cell::sync::Lazy;
use wasmtime::{Caller, Config, Engine, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::I32Exit;

/// Everything one `Store` owns: the guest's WASI context and how `proc_exit` behaves.
pub struct Host {
    pub wasi: WasiP1Ctx,
    /// `returnOnExit: false`: `proc_exit` ends the whole process at once, as node:wasi does.
    pub exit_process_on_proc_exit: bool,
}

static ENGINE: Lazy<Engine> = Lazy::new(|| {
    let config = Config::new();
    Engine::new(&config).expect("the engine configuration is valid")
});

static CORE_LINKER: Lazy<Linker<Host>> = Lazy::new(|| {
    let mut linker = Linker::new(&ENGINE);
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
});

fn proc_exit(caller: Caller<'_, Host>, code: i32) -> wasmtime::Result<()> {
    if caller.data().exit_process_on_proc_exit {
        std::process::exit(code & 0xff);
    }
    Err(I32Exit(code).into())
}

/// The one engine every module, component and store of this process uses.
pub fn engine() -> &'static Engine {
    &ENGINE
}

/// The linker that serves core modules' WASI imports.
pub fn core_linker() -> &'static Linker<Host> {
    &CORE_LINKER
}
