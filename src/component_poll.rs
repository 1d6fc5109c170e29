//! WASI 0.2's `wasi:io/poll` for components: wasmtime-wasi's own `poll` and `pollable.block`,
//! except that while the guest can be stopped (`limits.timeout`, a `signal`) the wait races a
//! check of its deadline, so a component asleep (a `monotonic-clock` subscription, a pollable
//! that never becomes ready) is stopped within a tick, as a core module in `poll_oneoff` is.
//! (Blocking stdin reads and streamed writes check the same rule in their streams.)

use crate::engine::Host;
use crate::limits::unless_stopped;
use std::future::Future;
use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::bindings::io::poll::{Host as _, HostPollable as _};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi::WasiView;

/// The interface name wasmtime-wasi links (components importing older 0.2 versions match it).
const POLL: &str = "wasi:io/poll@0.2.12";

/// Shadows `poll` and `[method]pollable.block` in `linker` (which already has WASI 0.2).
pub fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(POLL)?;
    poll.func_wrap(
        "poll",
        |mut store: StoreContextMut<'_, Host>, (pollables,): (Vec<Resource<DynPollable>>,)| {
            let host = store.data_mut();
            let stop = host.stop.clone();
            let table = host.wasi.ctx().table;
            wait(table.poll(pollables), &stop).map(|ready| (ready,))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, Host>, (pollable,): (Resource<DynPollable>,)| {
            let host = store.data_mut();
            let stop = host.stop.clone();
            let table = host.wasi.ctx().table;
            wait(table.block(pollable), &stop)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Runs `future` in wasmtime-wasi's runtime, cut short if the guest must stop.
fn wait<T>(
    future: impl Future<Output = wasmtime::Result<T>>,
    stop: &crate::limits::StopWhen,
) -> wasmtime::Result<T> {
    if stop.armed() {
        in_tokio(unless_stopped(future, stop))
    } else {
        in_tokio(future)
    }
}
