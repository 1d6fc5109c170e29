//! The V8 path: the native side of node:wasi's `wasiImport`. Each call views the guest's
//! `WebAssembly.Memory` buffer as a `wiggle::GuestMemory` for the length of the call and hands
//! it to wasmtime-wasi's own preview1 implementation, so the syscall semantics and the sandbox
//! are wasmtime-wasi's and the calling convention is Node's: `lib/imports.js` answers a wrong
//! argument count or type with errno 28, and a pointer outside memory here gives 61.

use crate::capability_errors::{path_errno, path_link_errno, PATH_CALLS};
use crate::error::Failure;
use crate::instance::to_int32;
use crate::stdio_writes::StdioWrites;
use napi::bindgen_prelude::{Function, Unknown};
use napi::{sys, Env, JsValue};
use once_cell::sync::Lazy;
use std::cell::{RefCell, UnsafeCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::runtime::{in_tokio, with_ambient_tokio_runtime};
use wiggle::{GuestError, GuestMemory};

const EINVAL: i32 = 28;
/// `badf`: what every syscall of a released context returns.
const EBADF: i32 = 8;
/// How many bytes one syscall may copy between guest and host: wasmtime's default per
/// hostcall, which its own linker glue sets before every call.
const HOSTCALL_FUEL: usize = 128 << 20;
const EOVERFLOW: i32 = 61;

/// The wasm type of one syscall parameter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    I32,
    I64,
}

/// What a syscall returns: an errno, or nothing (`proc_exit`).
trait Errno {
    fn errno(self) -> i32;
}

impl Errno for i32 {
    fn errno(self) -> i32 {
        self
    }
}

impl Errno for () {
    fn errno(self) -> i32 {
        0
    }
}

/// Runs one of wasmtime-wasi's async syscalls to completion. Most complete on their first poll
/// (stdio, files: the context allows blocking the current thread), so poll once inside the
/// ambient Tokio runtime and fall back to wasmtime-wasi's own `in_tokio` (which yields to the
/// runtime's background work first) only when the syscall really has to wait.
fn settle<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let ready = with_ambient_tokio_runtime(|| {
        future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
    });
    match ready {
        Poll::Ready(output) => output,
        Poll::Pending => in_tokio(future),
    }
}

/// Declares the preview1 imports in node:wasi's order: their names, their parameter kinds, and
/// the dispatch to wasmtime-wasi (`await` marks the functions wasmtime-wasi implements as async).
macro_rules! syscalls {
    ($( $name:ident ( $($arg:ident : $kind:ident),* ) $($await:ident)? ;)*) => {
        /// The 46 `wasiImport` function names, in node:wasi's order.
        pub const SYSCALL_NAMES: &[&str] = &[$(stringify!($name)),*];

        const SYSCALL_KINDS: &[&[Kind]] = &[$(&[$(Kind::$kind),*]),*];

        fn dispatch(
            index: usize,
            ctx: &mut WasiP1Ctx,
            memory: &mut GuestMemory<'_>,
            args: &[i64],
        ) -> wasmtime::Result<i32> {
            let mut position = 0;
            $(
                if index == position {
                    let [$($arg),*] = args else { return Ok(EINVAL) };
                    return syscalls!(@call $name ctx memory ($($arg : $kind),*) $($await)?)
                        .map(Errno::errno);
                }
                position += 1;
            )*
            let _ = position;
            Ok(EINVAL)
        }
    };
    (@call $name:ident $ctx:ident $memory:ident ($($arg:ident : $kind:ident),*) await) => {
        settle(p1::$name($ctx, $memory, $(syscalls!(@arg $arg $kind)),*))
    };
    (@call $name:ident $ctx:ident $memory:ident ($($arg:ident : $kind:ident),*)) => {
        p1::$name($ctx, $memory, $(syscalls!(@arg $arg $kind)),*)
    };
    (@arg $arg:ident I32) => { *$arg as i32 };
    (@arg $arg:ident I64) => { *$arg };
}

syscalls! {
    args_get(a: I32, b: I32);
    args_sizes_get(a: I32, b: I32);
    clock_res_get(a: I32, b: I32);
    clock_time_get(a: I32, b: I64, c: I32);
    environ_get(a: I32, b: I32);
    environ_sizes_get(a: I32, b: I32);
    fd_advise(a: I32, b: I64, c: I64, d: I32) await;
    fd_allocate(a: I32, b: I64, c: I64);
    fd_close(a: I32) await;
    fd_datasync(a: I32) await;
    fd_fdstat_get(a: I32, b: I32) await;
    fd_fdstat_set_flags(a: I32, b: I32);
    fd_fdstat_set_rights(a: I32, b: I64, c: I64);
    fd_filestat_get(a: I32, b: I32) await;
    fd_filestat_set_size(a: I32, b: I64) await;
    fd_filestat_set_times(a: I32, b: I64, c: I64, d: I32) await;
    fd_pread(a: I32, b: I32, c: I32, d: I64, e: I32) await;
    fd_prestat_get(a: I32, b: I32);
    fd_prestat_dir_name(a: I32, b: I32, c: I32);
    fd_pwrite(a: I32, b: I32, c: I32, d: I64, e: I32) await;
    fd_read(a: I32, b: I32, c: I32, d: I32) await;
    fd_readdir(a: I32, b: I32, c: I32, d: I64, e: I32) await;
    fd_renumber(a: I32, b: I32) await;
    fd_seek(a: I32, b: I64, c: I32, d: I32) await;
    fd_sync(a: I32) await;
    fd_tell(a: I32, b: I32);
    fd_write(a: I32, b: I32, c: I32, d: I32) await;
    path_create_directory(a: I32, b: I32, c: I32) await;
    path_filestat_get(a: I32, b: I32, c: I32, d: I32, e: I32) await;
    path_filestat_set_times(a: I32, b: I32, c: I32, d: I32, e: I64, f: I64, g: I32) await;
    path_link(a: I32, b: I32, c: I32, d: I32, e: I32, f: I32, g: I32) await;
    path_open(a: I32, b: I32, c: I32, d: I32, e: I32, f: I64, g: I64, h: I32, i: I32) await;
    path_readlink(a: I32, b: I32, c: I32, d: I32, e: I32, f: I32) await;
    path_remove_directory(a: I32, b: I32, c: I32) await;
    path_rename(a: I32, b: I32, c: I32, d: I32, e: I32, f: I32) await;
    path_symlink(a: I32, b: I32, c: I32, d: I32, e: I32) await;
    path_unlink_file(a: I32, b: I32, c: I32) await;
    poll_oneoff(a: I32, b: I32, c: I32, d: I32) await;
    proc_exit(a: I32);
    proc_raise(a: I32);
    random_get(a: I32, b: I32);
    sched_yield();
    sock_accept(a: I32, b: I32, c: I32);
    sock_recv(a: I32, b: I32, c: I32, d: I32, e: I32, f: I32);
    sock_send(a: I32, b: I32, c: I32, d: I32, e: I32);
    sock_shutdown(a: I32, b: I32);
}

/// Internal: the preview1 import names, in node:wasi's order.
#[napi(catch_unwind)]
pub fn syscall_names() -> Vec<&'static str> {
    SYSCALL_NAMES.to_vec()
}

/// Internal: each import's parameter kinds, `'i'` for i32 and `'I'` for i64 (`'iIi'` is
/// `clock_time_get`), in the order of `syscallNames()`.
#[napi(catch_unwind)]
pub fn syscall_kinds() -> Vec<String> {
    SYSCALL_KINDS
        .iter()
        .map(|kinds| {
            kinds
                .iter()
                .map(|kind| if *kind == Kind::I32 { 'i' } else { 'I' })
                .collect()
        })
        .collect()
}

/// The native function behind one `WASI` object's `wasiImport`:
/// `(index, buffer, scratch) => errno` runs syscall number `index` over `buffer` (the guest
/// memory's current `ArrayBuffer`) with its arguments read from `scratch`, an `ArrayBuffer` of
/// `SCRATCH_SLOTS` 8-byte slots the JS side filled and type-checked (f64 for an i32 parameter,
/// i64 for an i64 one). Three arguments and a closure, not a class method: this is the hot
/// path of every syscall, and it skips unwrapping a `this` and converting arguments one by one.
pub fn syscall_function<'env>(
    env: &'env Env,
    state: &Rc<SyscallState>,
) -> napi::Result<Function<'env, Unknown<'env>, i32>> {
    let state = state.clone();
    env.create_function_from_closure("syscall", move |call| {
        let index = call.get::<u32>(0)? as usize;
        let buffer = call.get::<Unknown>(1)?;
        let scratch = call.get::<Unknown>(2)?;
        // No JS runs during a syscall, so the state is never borrowed twice.
        match &mut *state.borrow_mut() {
            Some((ctx, stdio)) => {
                syscall(ctx, stdio, index, &buffer, &scratch).map_err(|f| f.into_napi(call.env))
            }
            // Released (the command ended, or the WASI object was disposed): no descriptor
            // is open any more.
            None => Ok(EBADF),
        }
    })
}

/// The context a V8 guest's syscalls act on, until it is released (`None`).
pub type SyscallState = RefCell<Option<(WasiP1Ctx, StdioWrites)>>;

/// Positions in `SYSCALL_NAMES` of the calls `StdioWrites` cares about.
static FD_WRITE: Lazy<usize> = Lazy::new(|| position("fd_write"));
static FD_CLOSE: Lazy<usize> = Lazy::new(|| position("fd_close"));
static FD_RENUMBER: Lazy<usize> = Lazy::new(|| position("fd_renumber"));
static POLL_ONEOFF: Lazy<usize> = Lazy::new(|| position("poll_oneoff"));
static PATH_LINK: Lazy<usize> = Lazy::new(|| position("path_link"));
static CLOCK_RES_GET: Lazy<usize> = Lazy::new(|| position("clock_res_get"));
static CLOCK_TIME_GET: Lazy<usize> = Lazy::new(|| position("clock_time_get"));
/// Which syscalls resolve a path (their EPERM is ENOTCAPABLE, `capability_errors.rs`).
static PATH_CALL: Lazy<Vec<bool>> = Lazy::new(|| {
    SYSCALL_NAMES
        .iter()
        .map(|name| PATH_CALLS.contains(name))
        .collect()
});

fn position(name: &str) -> usize {
    SYSCALL_NAMES
        .iter()
        .position(|n| *n == name)
        .expect("a preview1 import")
}

/// How many argument slots the scratch buffer has: the most any preview1 function takes.
pub const SCRATCH_SLOTS: u32 = 9;

fn syscall(
    ctx: &mut WasiP1Ctx,
    stdio: &mut StdioWrites,
    index: usize,
    buffer: &Unknown,
    scratch: &Unknown,
) -> Result<i32, Failure> {
    let Some(kinds) = SYSCALL_KINDS.get(index) else {
        return Ok(EINVAL);
    };
    let Some(values) = read_args(kinds, scratch) else {
        return Ok(EINVAL);
    };
    let args = &values[..kinds.len()];
    let Some(mut memory) = guest_memory(buffer) else {
        return Ok(EINVAL);
    };
    if index == *FD_WRITE {
        if let GuestMemory::Unshared(bytes) = &mut memory {
            if let Some(written) = stdio.fd_write(bytes, args, HOSTCALL_FUEL) {
                return written.map_err(|exceeded| Failure::from(&exceeded));
            }
        }
    } else if index == *FD_CLOSE || index == *FD_RENUMBER {
        args.iter().for_each(|fd| stdio.forget(*fd));
    }
    p1::WasiSnapshotPreview1::set_hostcall_fuel(ctx, HOSTCALL_FUEL);
    let cpu_clock = match (index, args) {
        (i, &[id, result]) if i == *CLOCK_RES_GET => Some((id, result, true)),
        (i, &[id, _, result]) if i == *CLOCK_TIME_GET => Some((id, result, false)),
        _ => None,
    };
    let served = cpu_clock.and_then(|(id, result, resolution)| {
        crate::cpu_clocks::cpu_clock_call(&mut memory, id as i32, result as i32, resolution)
    });
    match served.unwrap_or_else(|| dispatch(index, ctx, &mut memory, args)) {
        Ok(errno) if index == *PATH_LINK => {
            let source = [args[0], args[1], args[2], args[3]].map(|arg| arg as i32);
            Ok(path_link_errno(ctx, &memory, errno, source))
        }
        Ok(errno) if PATH_CALL[index] => Ok(path_errno(errno)),
        Ok(0) if index == *POLL_ONEOFF => {
            if let (Some(stdin), &[subscriptions, events, count, nevents]) = (&stdio.stdin, args) {
                let args = (
                    subscriptions as i32,
                    events as i32,
                    count as i32,
                    nevents as i32,
                );
                crate::stdin_hangup::mark(&mut memory, stdin, args);
            }
            Ok(0)
        }
        Ok(errno) => Ok(errno),
        Err(error) if is_bad_pointer(&error) => Ok(EOVERFLOW),
        Err(error) => Err(match crate::error::classify(error) {
            Ok(code) => Failure::exited(code, format!("the guest exited with {code}")),
            Err(failure) => failure,
        }),
    }
}

/// Internal: ends the process as node:wasi's `proc_exit` does with `returnOnExit: false`.
#[napi(catch_unwind)]
pub fn exit_process(code: i32) {
    crate::engine::exit_process(code)
}

/// The arguments the JS side wrote into `scratch`: slot `i` holds an f64 for an i32 parameter
/// (a pointer or fd, taken modulo 2^32 as node:wasi does) and an i64 for an i64 parameter.
fn read_args(kinds: &[Kind], scratch: &Unknown) -> Option<[i64; SCRATCH_SLOTS as usize]> {
    let (env, raw) = (scratch.value().env, scratch.raw());
    let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
    let mut length: usize = 0;
    // SAFETY: a live handle of the current call; `napi_get_arraybuffer_info` fails unless it is
    // an ArrayBuffer, whose backing store is then `length` bytes at `data` for the whole call.
    let status = unsafe { sys::napi_get_arraybuffer_info(env, raw, &mut data, &mut length) };
    if status != sys::Status::napi_ok || length < 8 * SCRATCH_SLOTS as usize || data.is_null() {
        return None;
    }
    let mut values = [0i64; SCRATCH_SLOTS as usize];
    for (i, (kind, value)) in kinds.iter().zip(&mut values).enumerate() {
        // SAFETY: `i < SCRATCH_SLOTS` slots of 8 bytes lie inside the buffer checked above;
        // `read_unaligned` makes no alignment assumption.
        let bits = unsafe { (data as *const [u8; 8]).add(i).read_unaligned() };
        *value = match kind {
            Kind::I32 => i64::from(to_int32(f64::from_ne_bytes(bits))),
            Kind::I64 => i64::from_ne_bytes(bits),
        };
    }
    Some(values)
}

/// The guest memory behind `value`, for the length of one native call: an `ArrayBuffer` (an
/// unshared memory's buffer), or a `Uint8Array` over a `SharedArrayBuffer` (a shared memory's
/// buffer, which Node-API cannot read directly).
fn guest_memory<'a>(value: &Unknown<'a>) -> Option<GuestMemory<'a>> {
    let env = value.value().env;
    let raw = value.raw();
    let mut is_array_buffer = false;
    let mut is_typed_array = false;
    let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
    let mut length: usize = 0;
    // SAFETY: `env` and `raw` come from a live handle of the current call, and the slices
    // cover exactly the buffer's backing store, which the guest's memory owns, for no longer
    // than the call (`'a`). An unshared memory is touched by nobody else while this call runs
    // (no JS runs, so it cannot grow either), so a `&mut [u8]` is sound; a shared memory may be
    // written by other threads meanwhile, so it is viewed as `UnsafeCell`s, which is what
    // wiggle's `GuestMemory::Shared` is for.
    unsafe {
        if sys::napi_is_arraybuffer(env, raw, &mut is_array_buffer) != sys::Status::napi_ok {
            return None;
        }
        if is_array_buffer {
            if sys::napi_get_arraybuffer_info(env, raw, &mut data, &mut length)
                != sys::Status::napi_ok
            {
                return None;
            }
            if length == 0 || data.is_null() {
                return Some(GuestMemory::Unshared(&mut []));
            }
            return Some(GuestMemory::Unshared(std::slice::from_raw_parts_mut(
                data as *mut u8,
                length,
            )));
        }
        if sys::napi_is_typedarray(env, raw, &mut is_typed_array) != sys::Status::napi_ok
            || !is_typed_array
        {
            return None;
        }
        let mut kind = 0;
        let mut buffer = std::ptr::null_mut();
        let mut offset = 0;
        if sys::napi_get_typedarray_info(
            env,
            raw,
            &mut kind,
            &mut length,
            &mut data,
            &mut buffer,
            &mut offset,
        ) != sys::Status::napi_ok
            || kind != sys::TypedarrayType::uint8_array
        {
            return None;
        }
        if length == 0 || data.is_null() {
            return Some(GuestMemory::Shared(&[]));
        }
        Some(GuestMemory::Shared(std::slice::from_raw_parts(
            data as *const UnsafeCell<u8>,
            length,
        )))
    }
}

/// wasmtime-wasi turns a pointer outside memory into a trap; node:wasi returns EOVERFLOW.
fn is_bad_pointer(error: &wasmtime::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<GuestError>()
            .is_some_and(is_pointer_error)
    })
}

/// A bad pointer, also when wiggle's glue wraps it with where it happened (`InFunc`), as it
/// does for the results a syscall stores (`fd_write`'s `nwritten`, say).
fn is_pointer_error(error: &GuestError) -> bool {
    match error {
        GuestError::PtrOutOfBounds { .. }
        | GuestError::PtrOverflow
        | GuestError::PtrNotAligned { .. } => true,
        GuestError::InFunc { err, .. } => is_pointer_error(err),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_wasi_has_46_imports_in_its_order() {
        assert_eq!(SYSCALL_NAMES.len(), 46);
        assert_eq!(SYSCALL_KINDS.len(), 46);
        assert_eq!(SYSCALL_NAMES[0], "args_get");
        assert_eq!(SYSCALL_NAMES[45], "sock_shutdown");
    }
}
