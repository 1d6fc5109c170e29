//! The CPU-time clocks of preview1 (`CLOCK_PROCESS_CPUTIME_ID`, 2, and
//! `CLOCK_THREAD_CPUTIME_ID`, 3) for `clock_res_get` and `clock_time_get`, as node:wasi
//! (uvwasi) serves them: the host process's and the calling thread's CPU time, from
//! `clock_gettime`. wasmtime-wasi answers EBADF for both; the realtime and monotonic clocks
//! stay wasmtime-wasi's. Both paths: linked over wasmtime-wasi's here, and called by the V8
//! path's dispatch (`imports.rs`).

use crate::engine::{Host, WASI_NAMESPACES};
use crate::wasi_calls::with_guest;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wiggle::{GuestMemory, GuestPtr};

const EINVAL: i32 = 28;

/// The libc clock behind a CPU-time clock id, `None` for any other id.
fn cpu_clock(id: i32) -> Option<libc::clockid_t> {
    match id {
        2 => Some(libc::CLOCK_PROCESS_CPUTIME_ID),
        3 => Some(libc::CLOCK_THREAD_CPUTIME_ID),
        _ => None,
    }
}

/// `clock_getres` or `clock_gettime` of `clock` in nanoseconds, `None` if the OS refuses.
fn read_clock(clock: libc::clockid_t, resolution: bool) -> Option<u64> {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec for the call.
    let status = unsafe {
        if resolution {
            libc::clock_getres(clock, &mut time)
        } else {
            libc::clock_gettime(clock, &mut time)
        }
    };
    let seconds = u64::try_from(time.tv_sec).ok()?;
    let nanos = u64::try_from(time.tv_nsec).ok()?;
    (status == 0).then(|| seconds.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// The errno of `clock_res_get` (`resolution`) or `clock_time_get` for a CPU-time clock, its
/// value stored at `result`; `None` for another clock (wasmtime-wasi's to answer). A bad
/// `result` pointer is an error, as wasmtime-wasi's for the other clocks.
pub fn cpu_clock_call(
    memory: &mut GuestMemory<'_>,
    id: i32,
    result: i32,
    resolution: bool,
) -> Option<wasmtime::Result<i32>> {
    let clock = cpu_clock(id)?;
    let Some(nanos) = read_clock(clock, resolution) else {
        return Some(Ok(EINVAL));
    };
    let stored = memory.write(GuestPtr::<u64>::new(result as u32), nanos);
    Some(stored.map(|()| 0).map_err(wasmtime::Error::from))
}

/// Shadows `clock_res_get` and `clock_time_get` in every WASI namespace of `linker`.
pub fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    for namespace in WASI_NAMESPACES {
        linker.func_wrap(
            namespace,
            "clock_res_get",
            |mut caller: Caller<'_, Host>, id: i32, result: i32| -> wasmtime::Result<i32> {
                with_guest(&mut caller, |host, memory| {
                    cpu_clock_call(memory, id, result, true)
                        .unwrap_or_else(|| p1::clock_res_get(&mut host.wasi, memory, id, result))
                })
            },
        )?;
        linker.func_wrap(
            namespace,
            "clock_time_get",
            |mut caller: Caller<'_, Host>,
             id: i32,
             precision: i64,
             result: i32|
             -> wasmtime::Result<i32> {
                with_guest(&mut caller, |host, memory| {
                    cpu_clock_call(memory, id, result, false).unwrap_or_else(|| {
                        p1::clock_time_get(&mut host.wasi, memory, id, precision, result)
                    })
                })
            },
        )?;
    }
    Ok(())
}
