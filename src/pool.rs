//! The threads that async work runs on (`runWasm`, `Module.compile`): as many as the machine
//! has cores, never libuv's threadpool, which `fs` and `dns` need.

use once_cell::sync::Lazy;

static POOL: Lazy<rayon::ThreadPool> = Lazy::new(|| {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("node-wasmtime-run-{i}"))
        .build()
        .expect("the run pool starts")
});

/// Runs `work` on a pool thread.
pub fn spawn(work: impl FnOnce() + Send + 'static) {
    POOL.spawn(work);
}
