//! The threads that async work runs on (`runWasm`, `Module.compile`): as many as the machine
//! has cores, or `NODE_WASMTIME_THREADS` (checked by `lib/index.js` when the package loads),
//! never libuv's threadpool, which `fs` and `dns` need, each with a native stack deep enough
//! for the largest `limits.maxStack` plus the host's own frames.

use once_cell::sync::Lazy;

/// Twice `runWasm`'s largest `limits.maxStack` (8 MiB, checked in `lib/validate.js`); only
/// the pages a guest touches are ever committed.
const POOL_THREAD_STACK: usize = 16 << 20;

/// The environment variable that sizes the pool (read once, when the pool starts).
const THREADS_VARIABLE: &str = "NODE_WASMTIME_THREADS";

static POOL: Lazy<rayon::ThreadPool> = Lazy::new(|| {
    // 0 is rayon's "as many as the machine has cores".
    let threads = std::env::var(THREADS_VARIABLE)
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(0);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("node-wasmtime-run-{i}"))
        .stack_size(POOL_THREAD_STACK)
        .build()
        .expect("the run pool starts")
});

/// Runs `work` on a pool thread. A panic there (a bug) must not abort the process, as rayon
/// would: it is caught and reported on stderr, and the work's promise is left unsettled.
pub fn spawn(work: impl FnOnce() + Send + 'static) {
    POOL.spawn(guarded("a pool job", work));
}

/// `work` as a rayon job that catches its own panic (which rayon would turn into an abort of
/// the process) and reports it on stderr as `what` panicking.
pub fn guarded(what: &'static str, work: impl FnOnce() + Send) -> impl FnOnce() + Send {
    move || {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).is_err() {
            eprintln!("node-wasmtime: {what} panicked (a bug; please report it)");
        }
    }
}
