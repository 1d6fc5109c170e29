//! `WasiConfig` (the option bag the JS layer has already validated, as plain data) and
//! `WasiSpec` (the same with host resources opened), which builds a fresh `WasiP1Ctx` for each
//! store: args, env, preopens and stdio.

use crate::engine::Host;
use crate::error::{ErrorCode, Failure, Result};
use crate::limits::{Limits, RunLimits, StopCell};
use crate::stdio::{attach, dup_fd, Captured, Input, Output, Stream};
use crate::stream_output::{OutputChannel, Streams};
use bytes::Bytes;
use napi::bindgen_prelude::{Either, Uint8Array};
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// WASI options after validation by the JS layer (`lib/validate.js`).
#[napi(object)]
pub struct WasiConfig {
    /// Guest argv, `args[0]` included.
    pub args: Vec<String>,
    /// Guest environment as `KEY=VALUE` strings, in order.
    pub env: Vec<String>,
    /// `[guestPath, hostPath]` pairs; guest fds 3, 4, ... in this order.
    pub preopens: Vec<Vec<String>>,
    /// A host fd, or bytes fed to the guest.
    #[napi(ts_type = "number | Uint8Array")]
    pub stdin: Either<u32, Uint8Array>,
    /// A host fd, `'pipe'`, `'ignore'`, or `'stream'` (to the `OutputChannel` passed along).
    #[napi(ts_type = "number | 'pipe' | 'ignore' | 'stream'")]
    pub stdout: Either<u32, String>,
    /// A host fd, `'pipe'`, `'ignore'`, or `'stream'` (to the `OutputChannel` passed along).
    #[napi(ts_type = "number | 'pipe' | 'ignore' | 'stream'")]
    pub stderr: Either<u32, String>,
    /// Limits for guests wasmtime runs.
    pub limits: Option<RunLimits>,
    /// Bytes each captured (`'pipe'`) stream keeps before the guest is stopped; `Infinity`
    /// for no cap. Checked by the JS layer (a number >= 0).
    pub max_buffer: f64,
}

/// One preopened directory.
#[derive(Clone)]
pub struct Preopen {
    pub guest: String,
    pub host: PathBuf,
}

/// Everything needed to build a guest's WASI context, owned and thread-safe.
#[derive(Clone)]
pub struct WasiSpec {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
    pub limits: Limits,
    /// Bytes each captured stream keeps (`usize::MAX`: no cap).
    pub max_buffer: usize,
}

impl WasiSpec {
    /// Opens what the config names (duplicating stdio fds) and checks every preopen is an
    /// existing directory, failing as node:wasi does (`UVWASI_ENOENT`, `UVWASI_ENOTDIR`,
    /// `UVWASI_EBADF`).
    pub fn from_config(config: WasiConfig, channels: Channels) -> Result<Self> {
        let env = config
            .env
            .into_iter()
            .map(|entry| match entry.split_once('=') {
                Some((key, value)) => (key.to_string(), value.to_string()),
                None => (entry, String::new()),
            })
            .collect();
        let preopens = config
            .preopens
            .into_iter()
            .map(|pair| {
                let [guest, host] = <[String; 2]>::try_from(pair).map_err(|_| {
                    Failure::new(
                        ErrorCode::InvalidArgValue,
                        "a preopen is a [guest, host] pair",
                    )
                })?;
                check_directory(&guest, &host)?;
                Ok(Preopen {
                    guest,
                    host: PathBuf::from(host),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let stdin = match config.stdin {
            Either::A(fd) => Input::Fd(Arc::new(dup_fd(fd, Stream::Stdin)?)),
            Either::B(bytes) => Input::Bytes(Bytes::copy_from_slice(&bytes)),
        };
        Ok(WasiSpec {
            args: config.args,
            env,
            preopens,
            stdin,
            stdout: output(config.stdout, Stream::Stdout, channels.0)?,
            stderr: output(config.stderr, Stream::Stderr, channels.1)?,
            limits: Limits::new(config.limits),
            // Saturating: Infinity and anything past usize::MAX mean no cap; 1.5 keeps 1.
            max_buffer: config.max_buffer as usize,
        })
    }

    /// Drops this spec's host descriptors (contexts built from it already hold their own):
    /// a context built later has no preopens, reads an empty stdin and discards output that
    /// went to a host fd.
    pub fn close_descriptors(&mut self) {
        self.preopens.clear();
        if let Input::Fd(_) = self.stdin {
            self.stdin = Input::Bytes(Bytes::new());
        }
        for output in [&mut self.stdout, &mut self.stderr] {
            if let Output::Fd { .. } = output {
                *output = Output::Ignore;
            }
        }
    }

    /// The host descriptor the guest's stdin reads, if any.
    pub fn stdin_file(&self) -> Option<Arc<std::fs::File>> {
        match &self.stdin {
            Input::Fd(file) => Some(file.clone()),
            Input::Bytes(_) => None,
        }
    }

    /// The streamed outputs, to wait on before a run's promise settles.
    pub fn streams(&self) -> Streams {
        Streams::new(
            [&self.stdout, &self.stderr]
                .into_iter()
                .filter_map(|output| match output {
                    Output::Stream(channel) => Some(channel.clone()),
                    _ => None,
                }),
        )
    }

    /// Fresh capture buffers for this spec's piped outputs.
    pub fn new_captured(&self) -> Captured {
        Captured::new(&self.stdout, &self.stderr, self.max_buffer)
    }

    /// A fresh store state for a guest wasmtime runs: its context, exit rule and limits.
    pub fn host(&self, captured: &Captured, exit_process_on_proc_exit: bool) -> Result<Host> {
        let stop = StopCell::default();
        let mut host = Host::new(
            self.build(captured, &stop)?,
            stop,
            self.limits.store_limits(),
            exit_process_on_proc_exit,
        );
        host.stdin_file = self.stdin_file();
        Ok(host)
    }

    /// A fresh context: nothing guest-visible is shared with any other context. Its stdio
    /// streams stop waiting when `stop` (its store's) says so.
    pub fn build(&self, captured: &Captured, stop: &StopCell) -> Result<WasiP1Ctx> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .allow_blocking_current_thread(true)
            .args(&self.args)
            .envs(&self.env);
        attach(
            &mut builder,
            (&self.stdin, &self.stdout, &self.stderr),
            captured,
            stop,
        );
        for preopen in &self.preopens {
            builder
                .preopened_dir(&preopen.host, &preopen.guest, FsPerms::ReadWrite)
                .map_err(|e| {
                    preopen_failure(&preopen.guest, &preopen.host.to_string_lossy(), &e)
                })?;
        }
        Ok(builder.build_p1())
    }
}

/// The `OutputChannel`s of streamed stdout and stderr, when `'stream'`.
pub type Channels<'a> = (Option<&'a OutputChannel>, Option<&'a OutputChannel>);

fn output(
    spec: Either<u32, String>,
    stream: Stream,
    channel: Option<&OutputChannel>,
) -> Result<Output> {
    match spec {
        Either::A(fd) => Output::fd(fd, stream),
        Either::B(kind) if kind == "pipe" => Ok(Output::Pipe),
        Either::B(kind) if kind == "ignore" => Ok(Output::Ignore),
        Either::B(kind) if kind == "stream" => channel
            .map(|channel| Output::Stream(channel.channel.clone()))
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::InvalidArgValue,
                    "a streamed output needs its channel",
                )
            }),
        Either::B(kind) => Err(Failure::new(
            ErrorCode::InvalidArgValue,
            format!("unknown output kind '{kind}'"),
        )),
    }
}

fn check_directory(guest: &str, host: &str) -> Result<()> {
    match std::fs::metadata(host) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Failure::new(
            ErrorCode::UvwasiEnotdir,
            format!("UVWASI_ENOTDIR, uvwasi_init: preopen '{guest}': '{host}' is not a directory"),
        )),
        Err(e) => Err(preopen_failure(guest, host, &e.into())),
    }
}

/// A preopen that cannot be opened, with the `UVWASI_*` code node:wasi gives for the same
/// cause; anything unrecognised is `UVWASI_EIO`.
fn preopen_failure(guest: &str, host: &str, error: &wasmtime::Error) -> Failure {
    use std::io::ErrorKind;
    let io = error.downcast_ref::<std::io::Error>();
    let (code, what) = match io.map(|e| (e.kind(), e.raw_os_error())) {
        Some((ErrorKind::NotFound, _)) => (ErrorCode::UvwasiEnoent, "does not exist".to_string()),
        Some((ErrorKind::NotADirectory, _)) => {
            (ErrorCode::UvwasiEnotdir, "is not a directory".to_string())
        }
        Some((ErrorKind::PermissionDenied, _)) => {
            (ErrorCode::UvwasiEacces, "is not accessible".to_string())
        }
        Some((_, Some(ELOOP))) => (ErrorCode::UvwasiEloop, "is a symlink loop".to_string()),
        _ => (ErrorCode::UvwasiEio, format!("cannot be opened: {error:#}")),
    };
    Failure::new(
        code,
        format!(
            "{}, uvwasi_init: preopen '{guest}': '{host}' {what}",
            code.as_ref()
        ),
    )
}

/// Linux's `ELOOP` (std has no stable `ErrorKind` for it).
const ELOOP: i32 = 40;
