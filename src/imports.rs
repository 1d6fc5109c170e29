//! The V8 path: `Syscalls`, the native side of node:wasi's `wasiImport`. Each call views the
//! guest's `WebAssembly.Memory` buffer as a `wiggle::GuestMemory` for the length of the call
//! and hands it to wasmtime-wasi's own preview1 implementation, so the syscall semantics and
//! the sandbox are wasmtime-wasi's and the calling convention is Node's (errno 28 for a wrong
//! argument count or type, 61 for a pointer outside memory).

use crate::error::{ErrorCode, Failure};
use crate::instance::to_int32;
use napi::bindgen_prelude::{BigInt, FromNapiValue, Unknown};
use napi::{sys, Env, JsValue, ValueType};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::runtime::in_tokio;
use wiggle::{GuestError, GuestMemory};

const EINVAL: i32 = 28;
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
            let mut names = SYSCALL_NAMES.iter();
            $(
                if names.next() == Some(&SYSCALL_NAMES[index]) {
                    let [$($arg),*] = args else { return Ok(EINVAL) };
                    return syscalls!(@call $name ctx memory ($($arg : $kind),*) $($await)?)
                        .map(Errno::errno);
                }
            )*
            Ok(EINVAL)
        }
    };
    (@call $name:ident $ctx:ident $memory:ident ($($arg:ident : $kind:ident),*) await) => {
        in_tokio(p1::$name($ctx, $memory, $(syscalls!(@arg $arg $kind)),*))
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

/// Internal: the WASI context the `wasiImport` functions of one `WASI` object serve. Use `WASI`.
#[napi]
pub struct Syscalls {
    ctx: WasiP1Ctx,
}

impl Syscalls {
    pub fn new(ctx: WasiP1Ctx) -> Self {
        Syscalls { ctx }
    }
}

#[napi]
impl Syscalls {
    /// The preview1 import names, in node:wasi's order.
    #[napi]
    pub fn names() -> Vec<&'static str> {
        SYSCALL_NAMES.to_vec()
    }

    /// Runs syscall number `index` over `buffer` (the guest memory's current `ArrayBuffer`)
    /// with the first `argc` of `a0`..`a8` as its arguments; returns the errno. (Positional
    /// arguments, not an array: this is the hot path of every syscall.)
    #[napi]
    #[allow(clippy::too_many_arguments)] // one parameter per possible syscall argument
    pub fn call(
        &mut self,
        env: Env,
        index: u32,
        buffer: Unknown,
        argc: u32,
        a0: Unknown,
        a1: Unknown,
        a2: Unknown,
        a3: Unknown,
        a4: Unknown,
        a5: Unknown,
        a6: Unknown,
        a7: Unknown,
        a8: Unknown,
    ) -> napi::Result<i32> {
        let index = index as usize;
        let Some(kinds) = SYSCALL_KINDS.get(index) else {
            return Ok(EINVAL);
        };
        let args = [a0, a1, a2, a3, a4, a5, a6, a7, a8];
        let Some(values) = convert_args(kinds, argc as usize, &args) else {
            return Ok(EINVAL);
        };
        let Some(bytes) = array_buffer_bytes(&buffer) else {
            return Ok(EINVAL);
        };
        let mut memory = GuestMemory::Unshared(bytes);
        p1::WasiSnapshotPreview1::set_hostcall_fuel(&mut self.ctx, HOSTCALL_FUEL);
        match dispatch(index, &mut self.ctx, &mut memory, &values[..kinds.len()]) {
            Ok(errno) => Ok(errno),
            Err(error) if is_bad_pointer(&error) => Ok(EOVERFLOW),
            Err(error) => {
                let failure = match crate::error::classify(error) {
                    Ok(code) => Failure {
                        exit_code: Some(code),
                        ..Failure::new(
                            ErrorCode::WasiExited,
                            format!("the guest exited with {code}"),
                        )
                    },
                    Err(failure) => failure,
                };
                Err(failure.into_napi(&env))
            }
        }
    }
}

/// Internal: ends the process as node:wasi's `proc_exit` does with `returnOnExit: false`.
#[napi]
pub fn exit_process(code: i32) {
    crate::engine::exit_process(code)
}

/// Node's calling convention: exactly the declared number of arguments, numbers for i32
/// (pointers and fds, taken modulo 2^32) and BigInts for i64.
fn convert_args(kinds: &[Kind], argc: usize, args: &[Unknown; 9]) -> Option<[i64; 9]> {
    if argc != kinds.len() {
        return None;
    }
    let mut values = [0i64; 9];
    for ((kind, value), slot) in kinds.iter().zip(args).zip(&mut values) {
        *slot = match (kind, value.get_type().ok()?) {
            (Kind::I32, ValueType::Number) => {
                let n = value.coerce_to_number().ok()?.get_double().ok()?;
                i64::from(to_int32(n))
            }
            (Kind::I64, ValueType::BigInt) => {
                // SAFETY: `value` is a live BigInt handle of the current call.
                let big =
                    unsafe { BigInt::from_napi_value(value.value().env, value.raw()) }.ok()?;
                big.get_i64().0
            }
            _ => return None,
        };
    }
    Some(values)
}

/// The bytes of an `ArrayBuffer`, mutable for the length of one native call.
fn array_buffer_bytes<'a>(value: &Unknown<'a>) -> Option<&'a mut [u8]> {
    let env = value.value().env;
    let raw = value.raw();
    let mut is_array_buffer = false;
    let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
    let mut length: usize = 0;
    // SAFETY: `env` and `raw` come from a live handle of the current call. The slice covers
    // exactly the ArrayBuffer's backing store, which the guest's memory owns; while this call
    // runs no JS runs, so the memory can neither grow nor be touched by anyone else, and the
    // slice does not outlive the call (`'a`).
    unsafe {
        if sys::napi_is_arraybuffer(env, raw, &mut is_array_buffer) != sys::Status::napi_ok
            || !is_array_buffer
            || sys::napi_get_arraybuffer_info(env, raw, &mut data, &mut length)
                != sys::Status::napi_ok
        {
            return None;
        }
        if length == 0 || data.is_null() {
            return Some(&mut []);
        }
        Some(std::slice::from_raw_parts_mut(data as *mut u8, length))
    }
}

/// wasmtime-wasi turns a pointer outside memory into a trap; node:wasi returns EOVERFLOW.
fn is_bad_pointer(error: &wasmtime::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<GuestError>(),
            Some(
                GuestError::PtrOutOfBounds { .. }
                    | GuestError::PtrOverflow
                    | GuestError::PtrNotAligned { .. }
            )
        )
    })
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
