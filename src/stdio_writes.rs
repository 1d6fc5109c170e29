//! The V8 path's direct lane for `fd_write` to the guest's own stdout and stderr, the hottest
//! syscall of most programs. It gives the same bytes, counts and errnos as wasmtime-wasi's
//! preview1 `fd_write` on a stdio stream (the first non-empty iovec, written whole in 4 KiB
//! chunks), without the preview2 stream layers under it. Anything out of the ordinary (a
//! shared memory, a pointer wasmtime-wasi would reject, a guest that closed or renumbered
//! fd 1 or 2) is left to wasmtime-wasi.

use crate::capture::{CapturePipe, MaxBufferExceeded};
use crate::ctx::WasiSpec;
use crate::stdio::{Captured, Output};
use crate::stream_output::Channel;
use bytes::Bytes;
use std::fs::File;
use std::io::Write;
use std::sync::Arc;

/// wasmtime-wasi's preview1 writes a stream in chunks of at most this many bytes.
const CHUNK: usize = 4096;

/// Where guest fd 1 or 2 writes.
enum Sink {
    File(Arc<File>),
    Pipe(CapturePipe),
    Stream(Arc<Channel>),
    Ignore,
}

impl Sink {
    fn new(output: &Output, captured: &Option<CapturePipe>) -> Option<Self> {
        match (output, captured) {
            (Output::Fd { file, .. }, _) => Some(Sink::File(file.clone())),
            (Output::Pipe, Some(pipe)) => Some(Sink::Pipe(pipe.clone())),
            (Output::Ignore, _) => Some(Sink::Ignore),
            (Output::Stream(channel), _) => Some(Sink::Stream(channel.clone())),
            (Output::Pipe, None) => None,
        }
    }

    /// Writes `data` as wasmtime-wasi's stdio stream would; the errno of a failed write.
    fn write(&mut self, data: &[u8]) -> Result<(), WriteError> {
        for chunk in data.chunks(CHUNK) {
            match self {
                Sink::File(file) => (&**file)
                    .write_all(chunk)
                    .map_err(|e| WriteError::Errno(errno(&e)))?,
                Sink::Pipe(pipe) => pipe.push(chunk).map_err(WriteError::MaxBuffer)?,
                // The V8 path: on the JS thread, which never waits, so nothing to stop.
                Sink::Stream(channel) => {
                    let _ = channel.push(Bytes::copy_from_slice(chunk), None);
                }
                Sink::Ignore => {}
            }
        }
        Ok(())
    }
}

/// How a direct write failed: an errno for the guest, or a captured stream past its cap
/// (which stops the guest).
pub enum WriteError {
    Errno(i32),
    MaxBuffer(MaxBufferExceeded),
}

const ERRNO_IO: i32 = 29;

/// The preview1 errno wasmtime-wasi reports for a failed write (its `filesystem::ErrorCode`
/// mapping of the OS error, narrowed to what `write(2)` can return; anything else is EIO).
fn errno(error: &std::io::Error) -> i32 {
    match error.raw_os_error() {
        Some(libc_errno::EPIPE) => 64,
        Some(libc_errno::EPERM) => 63,
        Some(libc_errno::EBADF) => 8,
        Some(libc_errno::EINVAL) => 28,
        Some(libc_errno::EFBIG) => 22,
        Some(libc_errno::ENOSPC) => 51,
        Some(libc_errno::EINTR) => 27,
        Some(libc_errno::EACCES) => 2,
        Some(libc_errno::ENOMEM) => 48,
        _ => ERRNO_IO,
    }
}

/// Linux's errno values (the ones `errno` above maps).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const EINTR: i32 = 4;
    pub const EBADF: i32 = 9;
    pub const ENOMEM: i32 = 12;
    pub const EACCES: i32 = 13;
    pub const EINVAL: i32 = 22;
    pub const EFBIG: i32 = 27;
    pub const ENOSPC: i32 = 28;
    pub const EPIPE: i32 = 32;
}

/// Guest fds 1 and 2, while they still are the stdout and stderr the `WASI` object set up,
/// and the host descriptor behind stdin (for `stdin_hangup.rs`).
pub struct StdioWrites {
    sinks: [Option<Sink>; 2],
    pub stdin: Option<Arc<File>>,
}

impl StdioWrites {
    pub fn new(spec: &WasiSpec, captured: &Captured) -> Self {
        StdioWrites {
            sinks: [
                Sink::new(&spec.stdout, &captured.stdout),
                Sink::new(&spec.stderr, &captured.stderr),
            ],
            stdin: spec.stdin_file(),
        }
    }

    /// `fd` may stop being the original stdout or stderr (`fd_close`, `fd_renumber`): from
    /// now on its writes go to wasmtime-wasi.
    pub fn forget(&mut self, fd: i64) {
        if let Some(sink) = usize::try_from(fd - 1)
            .ok()
            .and_then(|i| self.sinks.get_mut(i))
        {
            *sink = None;
        }
    }

    /// `fd_write(fd, iovs, iovs_len, nwritten)` over `memory`: `Some(Ok(errno))` if it was
    /// served here (`Some(Err(_))` if that stops the guest), `None` to leave it to
    /// wasmtime-wasi (which then gives the exact same outcome, including its error for a bad
    /// pointer).
    pub fn fd_write(
        &mut self,
        memory: &mut [u8],
        args: &[i64],
        max_bytes: usize,
    ) -> Option<Result<i32, MaxBufferExceeded>> {
        let &[fd, iovs, iovs_len, nwritten] = args else {
            return None;
        };
        let sink = self
            .sinks
            .get_mut(usize::try_from(fd - 1).ok()?)?
            .as_mut()?;
        let pointer = |value: i64| value as u32 as usize;
        let (iovs, count, nwritten) = (pointer(iovs), pointer(iovs_len), pointer(nwritten));
        // wiggle's rules: u32 and ciovec pointers 4-aligned, everything inside memory.
        if iovs % 4 != 0 || nwritten % 4 != 0 || nwritten.checked_add(4)? > memory.len() {
            return None;
        }
        let array_len = count.checked_mul(8)?;
        if array_len > max_bytes {
            return None;
        }
        let array = memory.get(iovs..iovs.checked_add(array_len)?)?;
        let mut data: &[u8] = &[];
        for iov in array.chunks_exact(8) {
            let start = u32::from_le_bytes(iov[..4].try_into().ok()?) as usize;
            let len = u32::from_le_bytes(iov[4..].try_into().ok()?) as usize;
            if len == 0 {
                continue;
            }
            if len > max_bytes {
                return None;
            }
            data = memory.get(start..start.checked_add(len)?)?;
            break;
        }
        let written = data.len();
        Some(match sink.write(data) {
            Ok(()) => {
                memory[nwritten..nwritten + 4].copy_from_slice(&(written as u32).to_le_bytes());
                Ok(0)
            }
            Err(WriteError::Errno(errno)) => Ok(errno),
            Err(WriteError::MaxBuffer(exceeded)) => Err(exceeded),
        })
    }
}
