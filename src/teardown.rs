//! Stopping guests whose JS environment goes away: a worker terminated in the middle of a
//! `runWasm` or `startAsync` must not leave its guest running on the pool. Every async run
//! registers its stop flag with the environment (one per thread: the main thread or a
//! worker), whose cleanup hook sets them all.

use napi::Env;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

thread_local! {
    /// The stop flags of this thread's environment's runs in flight (`None` until the first
    /// run registers the cleanup hook).
    static RUNS: RefCell<Option<Vec<Weak<AtomicBool>>>> = const { RefCell::new(None) };
}

/// The flag that stops an async run started from `env`: `flag` (its `AbortSignal`'s) or a new
/// one, registered to be set when `env` is torn down.
pub fn stop_flag(env: &Env, flag: Option<Arc<AtomicBool>>) -> napi::Result<Arc<AtomicBool>> {
    let flag = flag.unwrap_or_default();
    let first = RUNS.with_borrow_mut(|runs| {
        let first = runs.is_none();
        let runs = runs.get_or_insert_with(Vec::new);
        runs.retain(|run| run.strong_count() > 0);
        runs.push(Arc::downgrade(&flag));
        first
    });
    if first {
        env.add_env_cleanup_hook((), |()| stop_all())?;
    }
    Ok(flag)
}

fn stop_all() {
    RUNS.with_borrow_mut(|runs| {
        for run in runs.take().unwrap_or_default() {
            if let Some(flag) = run.upgrade() {
                flag.store(true, Ordering::SeqCst);
            }
        }
    });
}
