//! A host descriptor as the guest's stdin. Reads block, as with node:wasi, except while the
//! guest can be stopped (`limits.timeout`, a `signal`): then the read waits for input in short
//! slices and checks the guest's `StopWhen` between them, so a timeout or an abort reaches a
//! guest blocked on a stdin that never delivers.

use crate::limits::{StopCell, Stopped, STOP_CHECK_INTERVAL};
use bytes::{Bytes, BytesMut};
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use wasmtime_wasi::cli::{IsTerminal, StdinStream};
use wasmtime_wasi::p2::{InputStream, Pollable, StreamError, StreamResult};

/// wasmtime-wasi's cap on one read's buffer (`MAX_READ_SIZE_ALLOC`).
const MAX_READ: usize = 64 * 1024;

/// A duplicate of the host's stdin descriptor, with the stop rule of the store reading it.
#[derive(Clone)]
pub struct StdinFile {
    file: Arc<File>,
    stop: StopCell,
}

impl StdinFile {
    pub fn new(file: Arc<File>, stop: StopCell) -> Self {
        StdinFile { file, stop }
    }

    /// Waits until a read will not block (input, end of file or an error), unless the guest
    /// must stop first.
    fn wait_readable(&self) -> Result<(), Stopped> {
        let stop = self.stop.get();
        if !stop.armed() {
            return Ok(());
        }
        let timeout = STOP_CHECK_INTERVAL.as_millis() as libc::c_int;
        loop {
            let mut poll = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid `pollfd` for a descriptor this struct keeps open.
            let ready = unsafe { libc::poll(&mut poll, 1, timeout) };
            // Readable, hung up or failed (the read reports which), or `poll` itself failed
            // for a reason other than a signal: let the read go ahead.
            if ready > 0
                || (ready < 0
                    && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
            {
                return Ok(());
            }
            stop.check()?;
        }
    }
}

impl IsTerminal for StdinFile {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for StdinFile {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StdinFile {
    async fn ready(&mut self) {}
}

impl InputStream for StdinFile {
    /// As wasmtime-wasi's `InputFile::read`, after `wait_readable`.
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.wait_readable()
            .map_err(|stopped| StreamError::Trap(stopped.into()))?;
        let mut buffer = BytesMut::zeroed(size.min(MAX_READ));
        let read = (&*self.file)
            .read(&mut buffer)
            .map_err(|error| StreamError::LastOperationFailed(error.into()))?;
        if read == 0 {
            return Err(StreamError::Closed);
        }
        buffer.truncate(read);
        Ok(buffer.freeze())
    }
}

impl AsyncRead for StdinFile {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Err(stopped) = self.wait_readable() {
            return Poll::Ready(Err(std::io::Error::other(stopped)));
        }
        match (&*self.file).read(buf.initialize_unfilled()) {
            Ok(read) => {
                buf.advance(read);
                Poll::Ready(Ok(()))
            }
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}
