//! A path that would leave a preopened directory is refused with ENOTCAPABLE (76), as
//! node:wasi (uvwasi) refuses it and as Node's own WASI tests expect, where wasmtime-wasi
//! says EPERM (63): its sandbox (cap-std) reports an escape as "permission denied", which it
//! maps to EPERM. So every EPERM of a `path_*` call becomes ENOTCAPABLE, on both paths and in
//! both ABIs (`wasi_snapshot_preview1`, `wasi_unstable`),
//! except the one refusal the OS itself gives as EPERM on an ordinary path: a hard link to a
//! directory (`path_link` looks at its source before it says ENOTCAPABLE). Other OS refusals
//! as EPERM (an immutable file, a sticky directory) read ENOTCAPABLE too: the two cannot be
//! told apart once wasmtime-wasi has answered.

use crate::engine::Host;
use crate::wasi_calls::with_guest;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p0::wasi_unstable as p0;
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::runtime::in_tokio;
use wiggle::{GuestMemory, GuestPtr};

const EPERM: i32 = 63;
const ENOTCAPABLE: i32 = 76;

/// The preview1 functions that resolve a path inside a directory descriptor.
pub const PATH_CALLS: [&str; 10] = [
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
];

/// The errno a `path_*` call returns: ENOTCAPABLE where wasmtime-wasi said EPERM.
pub fn path_errno(errno: i32) -> i32 {
    if errno == EPERM {
        ENOTCAPABLE
    } else {
        errno
    }
}

/// Links each `path_*` function of `$namespace` as wasmtime-wasi's own (`$abi`: `p1` for
/// `wasi_snapshot_preview1`, `p0` for `wasi_unstable`, whose path calls take the same
/// arguments), with `path_errno` applied to its result, and `path_link` with
/// `path_link_errno`.
macro_rules! link_path_calls {
    ($linker:ident, $namespace:literal, $abi:ident) => {
        link_path_calls!(@each $linker, $namespace, $abi:
            path_create_directory(a: i32, b: i32, c: i32);
            path_filestat_get(a: i32, b: i32, c: i32, d: i32, e: i32);
            path_filestat_set_times(a: i32, b: i32, c: i32, d: i32, e: i64, f: i64, g: i32);
            path_open(a: i32, b: i32, c: i32, d: i32, e: i32, f: i64, g: i64, h: i32, i: i32);
            path_readlink(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32);
            path_remove_directory(a: i32, b: i32, c: i32);
            path_rename(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32);
            path_symlink(a: i32, b: i32, c: i32, d: i32, e: i32);
            path_unlink_file(a: i32, b: i32, c: i32);
        );
        $linker.func_wrap(
            $namespace,
            "path_link",
            |mut caller: Caller<'_, Host>,
             old_fd: i32,
             old_flags: i32,
             old_path: i32,
             old_len: i32,
             new_fd: i32,
             new_path: i32,
             new_len: i32|
             -> wasmtime::Result<i32> {
                with_guest(&mut caller, |host, memory| {
                    let errno = in_tokio($abi::path_link(
                        &mut host.wasi,
                        memory,
                        old_fd,
                        old_flags,
                        old_path,
                        old_len,
                        new_fd,
                        new_path,
                        new_len,
                    ))?;
                    let source = [old_fd, old_flags, old_path, old_len];
                    Ok(path_link_errno(&mut host.wasi, memory, errno, source))
                })
            },
        )?;
    };
    (@each $linker:ident, $namespace:literal, $abi:ident: $($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            $linker.func_wrap(
                $namespace,
                stringify!($name),
                |mut caller: Caller<'_, Host>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                    with_guest(&mut caller, |host, memory| {
                        in_tokio($abi::$name(&mut host.wasi, memory, $($arg),*)).map(path_errno)
                    })
                },
            )?;
        )*
    };
}

/// Shadows the `path_*` functions in `linker` (which already has wasmtime-wasi's preview1
/// and `wasi_unstable`).
pub fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    link_path_calls!(linker, "wasi_snapshot_preview1", p1);
    link_path_calls!(linker, "wasi_unstable", p0);
    Ok(())
}

/// The errno `path_link` returns: as `path_errno`, but the OS's own EPERM for a hard link to
/// a directory (`source` is the call's old fd, lookup flags, path pointer and length) stays.
pub fn path_link_errno(
    ctx: &mut WasiP1Ctx,
    memory: &GuestMemory<'_>,
    errno: i32,
    source: [i32; 4],
) -> i32 {
    let [fd, flags, path, len] = source;
    if errno == EPERM && is_directory(ctx, memory, fd, flags, path, len) {
        EPERM
    } else {
        path_errno(errno)
    }
}

/// Whether `path` (in guest memory) names a directory inside `fd`, asked of wasmtime-wasi
/// with a copy of the path in host memory, so the guest's memory is never written.
fn is_directory(
    ctx: &mut WasiP1Ctx,
    memory: &GuestMemory<'_>,
    fd: i32,
    flags: i32,
    path: i32,
    len: i32,
) -> bool {
    const FILESTAT: usize = 64; // preview1's filestat: filetype is the byte at 16
    const DIRECTORY: u8 = 3;
    let path = GuestPtr::<[u8]>::new((path as u32, len as u32));
    let Ok(mut scratch) = memory.to_vec(path) else {
        return false;
    };
    let path_len = scratch.len();
    let stat_at = path_len.next_multiple_of(8);
    scratch.resize(stat_at + FILESTAT, 0);
    let mut scratch_memory = GuestMemory::Unshared(&mut scratch);
    let errno = in_tokio(p1::path_filestat_get(
        ctx,
        &mut scratch_memory,
        fd,
        flags,
        0,
        path_len as i32,
        stat_at as i32,
    ));
    matches!(errno, Ok(0)) && scratch[stat_at + 16] == DIRECTORY
}
