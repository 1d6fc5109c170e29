//! preview1 `poll_oneoff` on the wasmtime path: wasmtime-wasi's own, except while the guest can
//! be stopped (`limits.timeout`, a `signal`). Epoch interruption only reaches a guest running
//! wasm, so a guest asleep in `poll_oneoff` (for a year, say) would outlive its timeout; here
//! its wait is cut short when the guest must stop: a plain sleep (one relative clock, which
//! wasmtime-wasi serves with a thread sleep) sleeps in slices, and any other poll races a stop
//! check. After a poll, stdin at end of input reads as hung up (`stdin_hangup.rs`).

use crate::engine::Host;
use crate::limits::{sleep_unless_stopped, unless_stopped, StopWhen};
use crate::stdin_hangup;
use crate::wasi_calls::with_guest;
use std::time::Duration;
use wasmtime::Caller;
use wasmtime_wasi::p0::{types as p0_types, wasi_unstable as p0};
use wasmtime_wasi::p1::{types, wasi_snapshot_preview1 as p1};
use wasmtime_wasi::runtime::in_tokio;
use wiggle::{GuestMemory, GuestPtr};

/// `poll_oneoff(subscriptions, events, count, nevents) -> errno`, linked over wasmtime-wasi's.
pub fn poll_oneoff(
    mut caller: Caller<'_, Host>,
    subscriptions: i32,
    events: i32,
    count: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let stop = caller.data().stop.clone();
    with_guest(&mut caller, |host, memory| {
        if stop.armed() {
            if let Some((duration, userdata)) = plain_sleep(memory, subscriptions, count) {
                sleep_unless_stopped(duration, &stop)?;
                return write_clock_event(memory, events, nevents, userdata);
            }
        }
        let poll = p1::poll_oneoff(
            &mut host.wasi,
            memory,
            subscriptions,
            events,
            count,
            nevents,
        );
        let errno = serve(poll, &stop)?;
        if let (0, Some(stdin)) = (errno, &host.stdin_file) {
            stdin_hangup::mark(memory, stdin, (subscriptions, events, count, nevents));
        }
        Ok(errno)
    })
}

/// The timeout and userdata of a poll wasmtime-wasi would serve with a thread sleep: one
/// subscription, a clock, relative.
fn plain_sleep(
    memory: &GuestMemory<'_>,
    subscriptions: i32,
    count: i32,
) -> Option<(Duration, u64)> {
    if count != 1 {
        return None;
    }
    let subscription = memory
        .read(GuestPtr::<types::Subscription>::new(subscriptions as u32))
        .ok()?;
    match subscription.u {
        types::SubscriptionU::Clock(clock)
            if !clock
                .flags
                .contains(types::Subclockflags::SUBSCRIPTION_CLOCK_ABSTIME) =>
        {
            Some((Duration::from_nanos(clock.timeout), subscription.userdata))
        }
        _ => None,
    }
}

/// What wasmtime-wasi writes after a plain sleep: one clock event, and a count of 1. A bad
/// pointer traps, as there (after the sleep, as there).
fn write_clock_event(
    memory: &mut GuestMemory<'_>,
    events: i32,
    nevents: i32,
    userdata: u64,
) -> wasmtime::Result<i32> {
    let event = types::Event {
        userdata,
        error: types::Errno::Success,
        type_: types::Eventtype::Clock,
        fd_readwrite: types::EventFdReadwrite {
            flags: types::Eventrwflags::empty(),
            nbytes: 1,
        },
    };
    memory.write(GuestPtr::<types::Event>::new(events as u32), event)?;
    memory.write(GuestPtr::<u32>::new(nevents as u32), 1)?;
    Ok(0)
}

/// `wasi_unstable`'s `poll_oneoff`, linked over wasmtime-wasi's with the same stop rule: its
/// subscriptions have their own layout (wasmtime-wasi rewrites them into preview1's and sleeps
/// the same uninterruptible thread sleep), so a guest could otherwise sleep past its timeout
/// by importing the older ABI.
pub fn poll_oneoff_unstable(
    mut caller: Caller<'_, Host>,
    subscriptions: i32,
    events: i32,
    count: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let stop = caller.data().stop.clone();
    with_guest(&mut caller, |host, memory| {
        if stop.armed() {
            if let Some((duration, userdata)) = plain_sleep_unstable(memory, subscriptions, count) {
                sleep_unless_stopped(duration, &stop)?;
                // The event layout is the same in both ABIs.
                return write_clock_event(memory, events, nevents, userdata);
            }
        }
        let poll = p0::poll_oneoff(
            &mut host.wasi,
            memory,
            subscriptions,
            events,
            count,
            nevents,
        );
        serve(poll, &stop)
    })
}

/// `plain_sleep` for `wasi_unstable`'s subscription layout.
fn plain_sleep_unstable(
    memory: &GuestMemory<'_>,
    subscriptions: i32,
    count: i32,
) -> Option<(Duration, u64)> {
    if count != 1 {
        return None;
    }
    let subscription = memory
        .read(GuestPtr::<p0_types::Subscription>::new(
            subscriptions as u32,
        ))
        .ok()?;
    match subscription.u {
        p0_types::SubscriptionU::Clock(clock)
            if !clock
                .flags
                .contains(p0_types::Subclockflags::SUBSCRIPTION_CLOCK_ABSTIME) =>
        {
            Some((Duration::from_nanos(clock.timeout), subscription.userdata))
        }
        _ => None,
    }
}

/// wasmtime-wasi's poll, raced with a stop check while the guest can be stopped.
fn serve(
    poll: impl std::future::Future<Output = wasmtime::Result<i32>>,
    stop: &StopWhen,
) -> wasmtime::Result<i32> {
    if stop.armed() {
        in_tokio(unless_stopped(poll, stop))
    } else {
        in_tokio(poll)
    }
}
