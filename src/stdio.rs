//! Where a guest's stdin comes from and where its stdout/stderr go: a host file descriptor
//! (duplicated, so the guest can never close the host's own), bytes fed in, a capture pipe
//! holding at most `maxBuffer` bytes (`capture.rs`), or nothing.

use crate::capture::CapturePipe;
use crate::error::{ErrorCode, Failure, Result};
use crate::limits::StopCell;
use crate::stdin_file::StdinFile;
use crate::stream_output::{Channel, ChannelOutput};
use bytes::Bytes;
use std::fs::File;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Arc;
use wasmtime_wasi::cli::OutputFile;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, SinkOutputStream};
use wasmtime_wasi::WasiCtxBuilder;

/// The guest's stdin.
#[derive(Clone)]
pub enum Input {
    /// A duplicate of a host descriptor: reads block, as with node:wasi (`stdin_file.rs`).
    Fd(Arc<File>),
    /// These bytes, then end of file.
    Bytes(Bytes),
}

/// The guest's stdout or stderr.
#[derive(Clone)]
pub enum Output {
    /// A duplicate of a host descriptor: wasmtime-wasi's stream over it, and the file itself
    /// (a second duplicate of the same open file) for the V8 path's direct writes.
    Fd { stream: OutputFile, file: Arc<File> },
    /// Captured in memory, up to `maxBuffer` bytes, readable after the run.
    Pipe,
    /// Discarded.
    Ignore,
    /// Streamed to a JS function or Writable (`stream_output.rs`).
    Stream(Arc<Channel>),
}

/// Which stream an output is, for messages.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Stdin,
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdin => "stdin",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

fn dup_failure(fd: u32, stream: Stream) -> Failure {
    Failure::new(
        ErrorCode::UvwasiEbadf,
        format!(
            "UVWASI_EBADF, uvwasi_init: options.{} is {fd}, which is not an open file descriptor",
            stream.name()
        ),
    )
}

/// Duplicates host descriptor `fd`, failing with node:wasi's `UVWASI_EBADF` if it is not open,
/// and with `UVWASI_EMFILE` when the process has no descriptor left for the duplicate.
pub fn dup_fd(fd: u32, stream: Stream) -> Result<File> {
    let bad = || dup_failure(fd, stream);
    let raw = RawFd::try_from(fd).map_err(|_| bad())?;
    // SAFETY: `borrow_raw` only requires the descriptor to stay open while borrowed; we use
    // the borrow for one `dup` (F_DUPFD_CLOEXEC), which fails cleanly with EBADF if `raw`
    // is not open. The duplicate is ours; the caller's descriptor is never closed by us.
    let owned = unsafe { BorrowedFd::borrow_raw(raw) }
        .try_clone_to_owned()
        .map_err(|error| dup_error(&error, fd, stream))?;
    Ok(File::from(owned))
}

/// Why duplicating `fd` failed: out of descriptors (`UVWASI_EMFILE`), else not open.
fn dup_error(error: &std::io::Error, fd: u32, stream: Stream) -> Failure {
    match error.raw_os_error() {
        Some(errno) if errno == EMFILE || errno == ENFILE => Failure::new(
            ErrorCode::UvwasiEmfile,
            format!(
                "UVWASI_EMFILE, uvwasi_init: cannot duplicate options.{} (fd {fd}): too many \
                 open files in the {}",
                stream.name(),
                if errno == EMFILE { "process" } else { "system" }
            ),
        ),
        _ => dup_failure(fd, stream),
    }
}

/// Linux's errno for a process (`EMFILE`) or the system (`ENFILE`) out of descriptors.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

impl Output {
    /// `fd` (duplicated) as an output.
    pub fn fd(fd: u32, stream: Stream) -> Result<Self> {
        let file = dup_fd(fd, stream)?;
        let for_stream = file
            .try_clone()
            .map_err(|error| dup_error(&error, fd, stream))?;
        Ok(Output::Fd {
            stream: OutputFile::new(for_stream),
            file: Arc::new(file),
        })
    }
}

/// The capture buffers of one execution (present for the outputs that are `Pipe`).
#[derive(Clone, Default)]
pub struct Captured {
    pub stdout: Option<CapturePipe>,
    pub stderr: Option<CapturePipe>,
}

impl Captured {
    /// Buffers for the piped ones of `stdout` and `stderr`, each keeping `max_buffer` bytes.
    pub fn new(stdout: &Output, stderr: &Output, max_buffer: usize) -> Self {
        let pipe = |output: &Output, stream| match output {
            Output::Pipe => Some(CapturePipe::new(stream, max_buffer)),
            _ => None,
        };
        Captured {
            stdout: pipe(stdout, Stream::Stdout),
            stderr: pipe(stderr, Stream::Stderr),
        }
    }
}

/// Everything a pipe captured so far, as an owned vector (one copy).
pub fn captured_bytes(pipe: &Option<CapturePipe>) -> Vec<u8> {
    pipe.as_ref().map(CapturePipe::contents).unwrap_or_default()
}

/// Wires the three streams into a context builder; those that can wait outside wasm (a
/// stdin descriptor, a streamed output) check `stop` while they wait.
pub fn attach(
    builder: &mut WasiCtxBuilder,
    (stdin, stdout, stderr): (&Input, &Output, &Output),
    captured: &Captured,
    stop: &StopCell,
) {
    match stdin {
        Input::Fd(file) => builder.stdin(StdinFile::new(file.clone(), stop.clone())),
        Input::Bytes(bytes) => builder.stdin(MemoryInputPipe::new(bytes.clone())),
    };
    match (stdout, &captured.stdout) {
        (Output::Fd { stream, .. }, _) => builder.stdout(stream.clone()),
        (Output::Pipe, Some(pipe)) => builder.stdout(pipe.clone()),
        (Output::Stream(channel), _) => {
            builder.stdout(ChannelOutput::new(channel.clone(), stop.clone()))
        }
        _ => builder.stdout(SinkOutputStream),
    };
    match (stderr, &captured.stderr) {
        (Output::Fd { stream, .. }, _) => builder.stderr(stream.clone()),
        (Output::Pipe, Some(pipe)) => builder.stderr(pipe.clone()),
        (Output::Stream(channel), _) => {
            builder.stderr(ChannelOutput::new(channel.clone(), stop.clone()))
        }
        _ => builder.stderr(SinkOutputStream),
    };
}
