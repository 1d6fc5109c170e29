//! `poll_oneoff` on stdin at end of input reports `POLLIN | POLLHUP`, as node:wasi (uvwasi)
//! does and Node's own WASI tests expect: wasmtime-wasi reports a readable stdin without the
//! hang-up flag, so after a poll each `fd_read` event for guest fd 0 gets
//! `FD_READWRITE_HANGUP` when the host's stdin descriptor polls as hung up (a pipe whose
//! writer is gone, a socket whose peer shut down writing). Stdin given as bytes, or no stdin descriptor, is left as wasmtime-wasi
//! reports it.

use std::fs::File;
use std::os::fd::AsRawFd;
use wasmtime_wasi::p1::types;
use wiggle::{GuestMemory, GuestPtr};

/// Adds the hang-up flag to the `fd_read` events of fd 0 among the `nevents` written at
/// `events` by a poll of `count` subscriptions at `subscriptions`, if `stdin` has hung up.
pub fn mark(
    memory: &mut GuestMemory<'_>,
    stdin: &File,
    (subscriptions, events, count, nevents): (i32, i32, i32, i32),
) {
    let Ok(written) = memory.read(GuestPtr::<u32>::new(nevents as u32)) else {
        return;
    };
    let mut hung_up = None;
    for i in 0..written.min(count as u32) {
        let at = GuestPtr::<types::Event>::new((events as u32).wrapping_add(32 * i));
        let Ok(mut event) = memory.read(at) else {
            return;
        };
        if event.type_ != types::Eventtype::FdRead || event.error != types::Errno::Success {
            continue;
        }
        if !reads_stdin(memory, subscriptions, count, event.userdata) {
            continue;
        }
        if !*hung_up.get_or_insert_with(|| has_hung_up(stdin)) {
            return;
        }
        event.fd_readwrite.flags |= types::Eventrwflags::FD_READWRITE_HANGUP;
        let _ = memory.write(at, event);
    }
}

/// Whether the subscription with `userdata` is an `fd_read` of fd 0.
fn reads_stdin(memory: &GuestMemory<'_>, subscriptions: i32, count: i32, userdata: u64) -> bool {
    (0..count as u32).any(|i| {
        let at = GuestPtr::<types::Subscription>::new((subscriptions as u32).wrapping_add(48 * i));
        match memory.read(at) {
            Ok(types::Subscription {
                userdata: data,
                u: types::SubscriptionU::FdRead(read),
            }) => data == userdata && u32::from(read.file_descriptor) == 0,
            _ => false,
        }
    })
}

/// Whether `file` polls as hung up, now: closed by its writer (`POLLHUP`), or a socket whose
/// peer shut down writing (`POLLRDHUP`: Node's child-process pipes are socket pairs), as
/// libuv's `UV_DISCONNECT`, which uvwasi reports as hang-up.
fn has_hung_up(file: &File) -> bool {
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid `pollfd` for a descriptor `file` keeps open; no waiting.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & (libc::POLLHUP | libc::POLLRDHUP) != 0
}
