//! Streamed stdout/stderr (`stdout: (chunk) => {}` or a Writable): the guest's writes queue
//! here as chunks, in order, and JS is woken to take them. A guest on a pool thread waits
//! while more than `HIGH_WATER` bytes or `MAX_CHUNKS` chunks are handed to JS and not yet
//! acknowledged (a slow Writable acknowledges when it has flushed), so memory stays bounded;
//! the wait ends when the guest's timeout or abort stops it, and what was not yet taken is
//! then dropped. A guest on the JS thread cannot wait for JS, so its chunks are delivered
//! when the call returns.

use crate::error::ErrorCode;
use crate::js_bytes::JsBytes;
use crate::limits::{StopCell, Stopped, STOP_CHECK_INTERVAL};
use bytes::Bytes;
use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// How many bytes may be handed to JS and not yet acknowledged before the guest waits.
const HIGH_WATER: usize = 1 << 20;
/// How many chunks may be handed to JS and not yet acknowledged before the guest waits (a
/// guest writing a byte at a time would otherwise queue a million of them).
const MAX_CHUNKS: usize = 1024;

/// Wakes JS (on its thread) to take the pending chunks; weak, so an idle channel never
/// keeps the process alive.
type Wake = ThreadsafeFunction<(), (), (), napi::Status, false, true>;

struct Queue {
    pending: VecDeque<Bytes>,
    /// Bytes queued or handed to JS and not yet acknowledged.
    outstanding: usize,
    /// Chunks queued or handed to JS and not yet acknowledged (JS acknowledges one per call).
    outstanding_chunks: usize,
    /// JS is gone (its `OutputChannel` was finalized, e.g. a worker was terminated): nothing
    /// will be taken or acknowledged any more, so writes are dropped and nobody waits.
    closed: bool,
}

/// One stream's queue between the guest and JS.
pub struct Channel {
    queue: Mutex<Queue>,
    acknowledged: Condvar,
    wake: Wake,
    js_thread: ThreadId,
}

impl Queue {
    fn full(&self) -> bool {
        !self.closed && (self.outstanding > HIGH_WATER || self.outstanding_chunks > MAX_CHUNKS)
    }

    /// Drops the chunks JS has not taken yet.
    fn drop_pending(&mut self) {
        for chunk in self.pending.drain(..) {
            self.outstanding -= chunk.len();
            self.outstanding_chunks -= 1;
        }
    }
}

impl Channel {
    /// Queues `bytes` for JS. On a pool thread, then waits while too much is outstanding,
    /// unless `stop` (the writing guest's) says the guest must stop: then what JS has not
    /// taken is dropped and the guest is stopped.
    pub fn push(&self, bytes: Bytes, stop: Option<&StopCell>) -> Result<(), Stopped> {
        let len = bytes.len();
        let mut queue = self.queue.lock().unwrap();
        if queue.closed {
            return Ok(());
        }
        let was_empty = queue.pending.is_empty();
        queue.pending.push_back(bytes);
        queue.outstanding += len;
        queue.outstanding_chunks += 1;
        if was_empty {
            self.wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
        if std::thread::current().id() == self.js_thread || !queue.full() {
            return Ok(());
        }
        let stop = stop.map(StopCell::get).filter(|stop| stop.armed());
        while queue.full() {
            let Some(stop) = &stop else {
                queue = self.acknowledged.wait(queue).unwrap();
                continue;
            };
            queue = self
                .acknowledged
                .wait_timeout(queue, STOP_CHECK_INTERVAL)
                .unwrap()
                .0;
            if let Err(stopped) = stop.check() {
                queue.drop_pending();
                return Err(stopped);
            }
        }
        Ok(())
    }

    /// A stopped guest's output is not waited for: what JS has not taken is dropped.
    pub fn discard(&self) {
        self.queue.lock().unwrap().drop_pending();
    }

    /// Waits until JS has acknowledged every chunk (a pool thread, before a run settles).
    pub fn wait_delivered(&self) {
        let mut queue = self.queue.lock().unwrap();
        while queue.outstanding > 0 && !queue.closed {
            queue = self.acknowledged.wait(queue).unwrap();
        }
    }
}

/// The streamed outputs of one guest.
pub struct Streams(Vec<Arc<Channel>>);

impl Streams {
    pub fn new(channels: impl IntoIterator<Item = Arc<Channel>>) -> Self {
        Streams(channels.into_iter().collect())
    }

    /// Waits until JS has taken and acknowledged everything written so far (on a pool
    /// thread, before a run's promise settles).
    pub fn wait_delivered(&self) {
        for channel in &self.0 {
            channel.wait_delivered();
        }
    }

    /// Once a run is stopped (timeout, abort): drops what JS has not taken, waiting for
    /// nothing. Otherwise waits as `wait_delivered`.
    pub fn settle<T>(&self, outcome: &crate::error::Result<T>) {
        let stopped = matches!(outcome, Err(failure)
            if matches!(failure.code, ErrorCode::WasiTimeout | ErrorCode::Aborted));
        if !stopped {
            return self.wait_delivered();
        }
        for channel in &self.0 {
            channel.discard();
        }
    }
}

/// Internal: the JS side of one streamed output (`lib/stream.js`).
#[napi]
pub struct OutputChannel {
    pub(crate) channel: Arc<Channel>,
}

#[napi]
impl OutputChannel {
    /// `wake` is called (on this thread, soon) whenever chunks are waiting to be taken.
    #[napi(catch_unwind, constructor)]
    pub fn new(wake: Function<(), ()>) -> napi::Result<Self> {
        let wake = wake
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        Ok(OutputChannel {
            channel: Arc::new(Channel {
                queue: Mutex::new(Queue {
                    pending: VecDeque::new(),
                    outstanding: 0,
                    outstanding_chunks: 0,
                    closed: false,
                }),
                acknowledged: Condvar::new(),
                wake,
                js_thread: std::thread::current().id(),
            }),
        })
    }

    /// The chunks written since the last call, oldest first.
    #[napi(catch_unwind, ts_return_type = "Array<Buffer>")]
    pub fn take(&self) -> Vec<JsBytes> {
        let mut queue = self.channel.queue.lock().unwrap();
        queue
            .pending
            .drain(..)
            .map(|bytes| JsBytes(Vec::from(bytes)))
            .collect()
    }

    /// JS is done with one chunk of `bytes` bytes (delivered, or dropped): a waiting guest
    /// may go on.
    #[napi(catch_unwind)]
    pub fn ack(&self, bytes: f64) {
        let mut queue = self.channel.queue.lock().unwrap();
        queue.outstanding = queue.outstanding.saturating_sub(bytes as usize);
        queue.outstanding_chunks = queue.outstanding_chunks.saturating_sub(1);
        self.channel.acknowledged.notify_all();
    }
}

impl Drop for OutputChannel {
    /// Finalized with its JS environment at the latest: release a guest waiting on JS.
    fn drop(&mut self) {
        let mut queue = self.channel.queue.lock().unwrap();
        queue.closed = true;
        queue.pending.clear();
        self.channel.acknowledged.notify_all();
    }
}

/// The guest-facing stream: wasmtime-wasi writes stdout or stderr here.
#[derive(Clone)]
pub struct ChannelOutput {
    channel: Arc<Channel>,
    stop: StopCell,
}

impl ChannelOutput {
    pub fn new(channel: Arc<Channel>, stop: StopCell) -> Self {
        ChannelOutput { channel, stop }
    }
}

impl IsTerminal for ChannelOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ChannelOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ChannelOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for ChannelOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if !bytes.is_empty() {
            self.channel
                .push(bytes, Some(&self.stop))
                .map_err(|stopped| StreamError::Trap(stopped.into()))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(HIGH_WATER)
    }
}

impl AsyncWrite for ChannelOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if !buf.is_empty() {
            if let Err(stopped) = self
                .channel
                .push(Bytes::copy_from_slice(buf), Some(&self.stop))
            {
                return Poll::Ready(Err(std::io::Error::other(stopped)));
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
