//! Captured stdout/stderr (`'pipe'`): an in-memory buffer that keeps at most `maxBuffer`
//! bytes. A write past the cap keeps what fits and stops the guest with
//! `ERR_WASI_STDIO_MAXBUFFER` (a trap on the wasmtime path, a thrown error on the V8 path), as
//! `child_process` stops a child whose output passes its `maxBuffer`.

use crate::stdio::Stream;
use bytes::{Bytes, BytesMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Why a guest was stopped: it wrote more than `limit` bytes to captured `stream`.
#[derive(Debug, Clone, Copy)]
pub struct MaxBufferExceeded {
    pub stream: Stream,
    pub limit: usize,
}

impl std::fmt::Display for MaxBufferExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} maxBuffer length exceeded: the guest wrote more than {} bytes to it and was \
             stopped; the first {} bytes were kept",
            self.stream.name(),
            self.limit,
            self.limit
        )
    }
}

impl std::error::Error for MaxBufferExceeded {}

/// One captured stream; clones share the buffer.
#[derive(Clone)]
pub struct CapturePipe(Arc<Shared>);

struct Shared {
    stream: Stream,
    limit: usize,
    buffer: Mutex<BytesMut>,
}

impl CapturePipe {
    /// A pipe for `stream` keeping at most `limit` bytes.
    pub fn new(stream: Stream, limit: usize) -> Self {
        CapturePipe(Arc::new(Shared {
            stream,
            limit,
            buffer: Mutex::new(BytesMut::new()),
        }))
    }

    /// Appends `data`, or as much of it as fits under the cap and fails if that is not all.
    pub fn push(&self, data: &[u8]) -> Result<(), MaxBufferExceeded> {
        let mut buffer = self.0.buffer.lock().unwrap();
        let room = self.0.limit - buffer.len();
        if data.len() <= room {
            buffer.extend_from_slice(data);
            return Ok(());
        }
        buffer.extend_from_slice(&data[..room]);
        Err(MaxBufferExceeded {
            stream: self.0.stream,
            limit: self.0.limit,
        })
    }

    /// Everything captured so far, as an owned vector (one copy).
    pub fn contents(&self) -> Vec<u8> {
        Vec::from(&self.0.buffer.lock().unwrap()[..])
    }
}

impl IsTerminal for CapturePipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturePipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturePipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturePipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes)
            .map_err(|exceeded| StreamError::Trap(exceeded.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    /// Always room: a write past the cap is not refused but stops the guest.
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(usize::MAX)
    }
}

impl AsyncWrite for CapturePipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(
            self.push(buf)
                .map(|()| buf.len())
                .map_err(std::io::Error::other),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_exactly_the_cap_and_reports_the_overflow() {
        let pipe = CapturePipe::new(Stream::Stdout, 5);
        assert!(pipe.push(b"abc").is_ok());
        assert!(pipe.push(b"de").is_ok());
        let exceeded = pipe.push(b"f").unwrap_err();
        assert_eq!(exceeded.limit, 5);
        assert_eq!(pipe.contents(), b"abcde");
        let pipe = CapturePipe::new(Stream::Stderr, 4);
        assert!(pipe.push(b"abcdefgh").is_err());
        assert_eq!(pipe.contents(), b"abcd");
    }
}
