//! The threads tiered modules compile their optimized code on: a pool of its own, started
//! with the first tiered module, whose threads run at the lowest CPU priority, so that a
//! background compile takes only the CPU that runs leave (the first run of a tiered module is
//! as fast as Winch's) and never holds up the run pool.

use once_cell::sync::Lazy;

/// The lowest priority `setpriority` gives (a nice value).
#[cfg(target_os = "linux")]
const LOWEST_PRIORITY: libc::c_int = 19;

static TIER_UP_POOL: Lazy<Option<rayon::ThreadPool>> = Lazy::new(|| {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("node-wasmtime-tier-up-{i}"))
        .start_handler(|_| lower_this_threads_priority())
        .build()
        .ok()
});

/// Linux keeps a nice value per thread: `setpriority(PRIO_PROCESS, 0, ..)` lowers the calling
/// thread's alone. Elsewhere the threads keep the normal priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only changes the scheduling priority of the calling thread. A
    // failure (a sandbox refusing it) leaves the normal priority, which is still correct.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, LOWEST_PRIORITY);
    }
}

/// Runs `compile` on the tier-up pool; wasmtime's parallel compile inside it uses the same
/// low-priority threads. Without a pool (no threads to be had) nothing runs, and the caller's
/// module keeps the code it has.
pub fn spawn(compile: impl FnOnce() + Send + 'static) {
    let Some(pool) = TIER_UP_POOL.as_ref() else {
        return;
    };
    pool.spawn(crate::pool::guarded("a tier-up compile", compile));
}
