//! A path that would leave a preopened directory is refused with ENOTCAPABLE (76), as
//! node:wasi (uvwasi) refuses it and as Node's own WASI tests expect, where wasmtime-wasi
//! says EPERM (63): its sandbox (cap-std) reports an escape as "permission denied", which it
//! maps to EPERM. So every EPERM of a `path_*` call becomes ENOTCAPABLE, on both paths. (The
//! few refusals the OS itself gives as EPERM on a path, such as a hard link to a directory,
//! read ENOTCAPABLE too: the two cannot be told apart once wasmtime-wasi has answered.)

use crate::engine::Host;
use crate::wasi_calls::with_guest;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::runtime::in_tokio;

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

/// Links each `path_*` function of `wasi_snapshot_preview1` as wasmtime-wasi's own, with
/// `path_errno` applied to its result.
macro_rules! link_path_calls {
    ($linker:ident: $($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            $linker.func_wrap(
                "wasi_snapshot_preview1",
                stringify!($name),
                |mut caller: Caller<'_, Host>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                    with_guest(&mut caller, |host, memory| {
                        in_tokio(p1::$name(&mut host.wasi, memory, $($arg),*)).map(path_errno)
                    })
                },
            )?;
        )*
    };
}

/// Shadows the `path_*` functions in `linker` (which already has wasmtime-wasi's preview1).
pub fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    link_path_calls! { linker:
        path_create_directory(a: i32, b: i32, c: i32);
        path_filestat_get(a: i32, b: i32, c: i32, d: i32, e: i32);
        path_filestat_set_times(a: i32, b: i32, c: i32, d: i32, e: i64, f: i64, g: i32);
        path_link(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32, g: i32);
        path_open(a: i32, b: i32, c: i32, d: i32, e: i32, f: i64, g: i64, h: i32, i: i32);
        path_readlink(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32);
        path_remove_directory(a: i32, b: i32, c: i32);
        path_rename(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32);
        path_symlink(a: i32, b: i32, c: i32, d: i32, e: i32);
        path_unlink_file(a: i32, b: i32, c: i32);
    }
    Ok(())
}
