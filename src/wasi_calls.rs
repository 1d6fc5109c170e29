//! Our own preview1 functions linked over wasmtime-wasi's (`poll_oneoff.rs`,
//! `capability_errors.rs`): the guest memory and WASI context one call works on, got as
//! wiggle's own glue gets them, so wasmtime-wasi's implementation can still do the work.

use crate::engine::Host;
use wasmtime::{AsContextMut, Caller, Extern};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::p1::WasiP1Ctx;
use wiggle::GuestMemory;

/// Runs `call` with the caller's exported memory and WASI context (and the per-call copy
/// budget set, as wiggle's glue sets it); a module without a memory export fails as there.
pub fn with_guest<R>(
    caller: &mut Caller<'_, Host>,
    call: impl FnOnce(&mut Host, &mut GuestMemory<'_>) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    let export = caller.get_export("memory");
    let (mut memory, host) = match &export {
        Some(Extern::Memory(memory)) => {
            let (bytes, host) = memory.data_and_store_mut(&mut *caller);
            (GuestMemory::Unshared(bytes), host)
        }
        Some(Extern::SharedMemory(memory)) => {
            (GuestMemory::Shared(memory.data()), caller.data_mut())
        }
        _ => wasmtime::bail!("missing required memory export"),
    };
    let ctx: &mut WasiP1Ctx = &mut host.wasi;
    p1::WasiSnapshotPreview1::set_hostcall_fuel(ctx, fuel);
    call(host, &mut memory)
}
