//! Limits on what one guest may do (`limits: { timeout, fuel, maxMemory }`) and stopping it
//! from outside (`signal`): a wall-clock deadline and a cancel flag, both checked by the
//! store's epoch-deadline callback on the ticks of one shared clock thread, a fuel budget
//! (in the fuel engine only), and a memory cap checked by the store's resource limiter.

use crate::engine::{all_engines, EngineKey, Host};
use crate::error::{ErrorCode, Failure, Result};
use once_cell::sync::Lazy;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use wasmtime::{Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};

/// The `limits` option, validated by the JS layer.
#[napi(object)]
#[derive(Clone, Default)]
pub struct RunLimits {
    /// Wall-clock milliseconds each entry into the guest may take (`ERR_WASI_TIMEOUT`).
    pub timeout: Option<f64>,
    /// Bytes any one linear memory may grow to; growing past it fails inside the guest.
    pub max_memory: Option<f64>,
    /// Fuel (about one unit per wasm instruction) each entry into the guest may burn.
    pub fuel: Option<f64>,
    /// Bytes of wasm stack (rounded down to a power of two); deeper recursion traps.
    pub max_stack: Option<f64>,
}

/// The limits of one guest, ready to apply to its store.
#[derive(Clone, Default)]
pub struct Limits {
    timeout: Option<Duration>,
    max_memory: Option<usize>,
    fuel: Option<u64>,
    max_stack: Option<usize>,
}

/// Why a guest was stopped from outside; `classify` turns it into the JS error.
#[derive(Debug)]
pub enum Stopped {
    TimedOut(Duration),
    Aborted,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::TimedOut(timeout) => write!(
                f,
                "The guest was stopped after running for its timeout of {} ms",
                timeout.as_millis()
            ),
            Stopped::Aborted => write!(f, "The operation was aborted"),
        }
    }
}

impl std::error::Error for Stopped {}

/// A run's cancel flag, set from JS when its `AbortSignal` aborts, and whether the run has
/// begun on a pool thread (until then it waits in the pool's queue).
#[napi]
pub struct CancelToken {
    pub(crate) flag: Arc<AtomicBool>,
    pub(crate) began: Arc<AtomicBool>,
}

#[napi]
impl CancelToken {
    #[napi(catch_unwind, constructor)]
    pub fn new() -> Self {
        CancelToken {
            flag: Arc::new(AtomicBool::new(false)),
            began: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Stops the run (or keeps it from starting) at the next clock tick. Returns `true` when
    /// the run had not begun: it never will (`begin` then sees the flag), so the caller may
    /// settle at once instead of waiting for a pool thread to free up.
    #[napi(catch_unwind)]
    pub fn cancel(&self) -> bool {
        self.flag.store(true, Ordering::SeqCst);
        !self.began.load(Ordering::SeqCst)
    }
}

/// Marks the run of `began` (a `CancelToken`'s) as begun on its pool thread: from here a
/// cancel waits for the run to stop. Stored before the run reads its cancel flag, so a cancel
/// that saw it unset is always seen by the run.
pub fn begin(began: &Option<Arc<AtomicBool>>) {
    if let Some(began) = began {
        began.store(true, Ordering::SeqCst);
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

/// Fails with `ABORT_ERR` (before anything runs) if `cancel` is already set.
pub fn not_cancelled(cancel: &Option<Arc<AtomicBool>>) -> Result<()> {
    if cancel
        .as_ref()
        .is_some_and(|flag| flag.load(Ordering::SeqCst))
    {
        return Err(Failure::new(
            ErrorCode::Aborted,
            Stopped::Aborted.to_string(),
        ));
    }
    Ok(())
}

/// A deadline far enough away never to be reached (and never to overflow the epoch counter).
const NEVER: u64 = u64::MAX / 2;

impl Limits {
    pub fn new(limits: Option<RunLimits>) -> Self {
        let limits = limits.unwrap_or_default();
        Limits {
            timeout: limits
                .timeout
                .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
            max_memory: limits.max_memory.map(|bytes| bytes as usize),
            fuel: limits.fuel.map(|fuel| fuel as u64),
            max_stack: limits
                .max_stack
                .map(|bytes| 1usize << (bytes as usize).max(1).ilog2()),
        }
    }

    /// The wasm stack size, a power of two, when `limits.maxStack` asks for one.
    pub fn max_stack(&self) -> Option<usize> {
        self.max_stack
    }

    /// Whether the guest needs the fuel-metered engine and compilation.
    pub fn uses_fuel(&self) -> bool {
        self.fuel.is_some()
    }

    /// The engine a guest with these limits runs in: pooling for a one-shot `run` (unless it
    /// needs fuel or its own stack size), metering fuel if asked, with its stack size; in
    /// Cranelift, which `CompiledModule::prepare` changes to the compiler of the module's code.
    pub fn engine_key(&self, run: bool) -> EngineKey {
        EngineKey {
            pooling: run && self.fuel.is_none() && self.max_stack.is_none(),
            fuel: self.fuel.is_some(),
            max_stack: self.max_stack,
            compiler: Default::default(),
        }
    }

    /// A store for `host` in `engine`, its memory capped by these limits.
    pub fn new_store(&self, engine: &Engine, host: Host) -> Store<Host> {
        let mut store = Store::new(engine, host);
        store.limiter(|host| &mut host.store_limits);
        store.set_epoch_deadline(NEVER);
        store
    }

    /// The resource limiter of a new store of a guest with these limits.
    pub fn store_limits(&self) -> MemoryCap {
        let mut builder = StoreLimitsBuilder::new();
        if let Some(bytes) = self.max_memory {
            builder = builder.memory_size(bytes);
        }
        MemoryCap {
            limits: builder.build(),
            max_memory: self.max_memory,
            refused: false,
        }
    }

    /// Arms the deadline (timing from now) and `cancel` for the next entry into the guest;
    /// the clock ticks until the returned guard is dropped.
    #[inline]
    pub fn arm(&self, store: &mut Store<Host>, cancel: Option<Arc<AtomicBool>>) -> Ticking {
        // The common case, on the path of every export call: nothing to arm or disarm.
        if self.fuel.is_none()
            && self.timeout.is_none()
            && cancel.is_none()
            && !store.data().stop.armed()
        {
            return Ticking(None);
        }
        self.arm_entry(store, cancel)
    }

    fn arm_entry(&self, store: &mut Store<Host>, cancel: Option<Arc<AtomicBool>>) -> Ticking {
        if let Some(fuel) = self.fuel {
            store
                .set_fuel(fuel)
                .expect("a guest with limits.fuel lives in the fuel engine");
        }
        if self.timeout.is_none() && cancel.is_none() {
            // A store armed for an earlier entry (a timeout, a cancel flag) is disarmed; one
            // never armed is left as it is, which keeps calls without limits cheap.
            if store.data().stop.armed() {
                store.set_epoch_deadline(NEVER);
                store.data_mut().set_stop(StopWhen::default());
            }
            return Ticking(None);
        }
        let stop = StopWhen {
            deadline: self
                .timeout
                .map(|timeout| (Instant::now() + timeout, timeout)),
            cancel,
        };
        store.data_mut().set_stop(stop.clone());
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| match stop.check() {
            Ok(()) => Ok(UpdateDeadline::Continue(1)),
            Err(stopped) => Err(stopped.into()),
        });
        Ticking(Some(Clock::watch()))
    }
}

/// What stops the current entry into a guest, for code that waits outside wasm (a host call
/// waiting on JS): the deadline of `limits.timeout` and the cancel flag.
#[derive(Clone, Default)]
pub struct StopWhen {
    deadline: Option<(Instant, Duration)>,
    cancel: Option<Arc<AtomicBool>>,
}

impl StopWhen {
    /// Whether anything can stop the entry (else the store's deadline is `NEVER`).
    pub fn armed(&self) -> bool {
        self.deadline.is_some() || self.cancel.is_some()
    }

    /// Why the guest must stop now, if it must.
    pub fn check(&self) -> std::result::Result<(), Stopped> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst))
        {
            return Err(Stopped::Aborted);
        }
        match self.deadline {
            Some((deadline, timeout)) if Instant::now() >= deadline => {
                Err(Stopped::TimedOut(timeout))
            }
            _ => Ok(()),
        }
    }
}

/// The current entry's `StopWhen`, shared by a store and the stdio streams of its WASI
/// context, which wait outside wasm too (stdin reads, a slow streamed output).
#[derive(Clone, Default)]
pub struct StopCell(Arc<Mutex<StopWhen>>);

impl StopCell {
    pub fn set(&self, stop: StopWhen) {
        *self.0.lock().unwrap() = stop;
    }

    pub fn get(&self) -> StopWhen {
        self.0.lock().unwrap().clone()
    }
}

/// Sleeps up to `duration` in slices of `STOP_CHECK_INTERVAL`, returning early (with why) if
/// `stop` says the guest must stop.
pub fn sleep_unless_stopped(
    duration: Duration,
    stop: &StopWhen,
) -> std::result::Result<(), Stopped> {
    let end = Instant::now().checked_add(duration);
    loop {
        stop.check()?;
        let now = Instant::now();
        let left = match end {
            Some(end) if now >= end => return Ok(()),
            Some(end) => end - now,
            None => STOP_CHECK_INTERVAL,
        };
        std::thread::sleep(left.min(STOP_CHECK_INTERVAL));
    }
}

/// `future`, unless `stop` says the guest must stop first (checked every tick).
pub async fn unless_stopped<F, T>(future: F, stop: &StopWhen) -> wasmtime::Result<T>
where
    F: Future<Output = wasmtime::Result<T>>,
{
    let mut future = pin!(future);
    let mut tick = pin!(tokio::time::sleep(STOP_CHECK_INTERVAL));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        while tick.as_mut().poll(cx).is_ready() {
            if let Err(stopped) = stop.check() {
                return Poll::Ready(Err(wasmtime::Error::from(stopped)));
            }
            tick.set(tokio::time::sleep(STOP_CHECK_INTERVAL));
        }
        Poll::Pending
    })
    .await
}

/// How long a guest waiting outside wasm sleeps between checks of its `StopWhen`.
pub const STOP_CHECK_INTERVAL: Duration = TICK;

/// Keeps the clock ticking while alive.
pub struct Ticking(#[allow(dead_code)] Option<Watcher>);

impl Ticking {
    /// A guard that keeps nothing ticking.
    pub fn none() -> Self {
        Ticking(None)
    }
}

/// How often the clock ticks: a stopped guest is at most about this late.
const TICK: Duration = Duration::from_millis(5);

/// The clock thread: ticks the engines' epochs while at least one watched guest runs, and
/// sleeps on a condition variable otherwise.
struct Clock {
    watchers: Mutex<usize>,
    wake: Condvar,
}

static CLOCK: Lazy<Arc<Clock>> = Lazy::new(|| {
    let clock = Arc::new(Clock {
        watchers: Mutex::new(0),
        wake: Condvar::new(),
    });
    let ticking = clock.clone();
    std::thread::Builder::new()
        .name("node-wasmtime-clock".into())
        .spawn(move || ticking.run())
        .expect("the clock thread starts");
    clock
});

impl Clock {
    fn watch() -> Watcher {
        let clock = CLOCK.clone();
        *clock.watchers.lock().unwrap() += 1;
        clock.wake.notify_one();
        Watcher(clock)
    }

    fn run(&self) {
        loop {
            {
                let mut watchers = self.watchers.lock().unwrap();
                while *watchers == 0 {
                    watchers = self.wake.wait(watchers).unwrap();
                }
            }
            std::thread::sleep(TICK);
            for engine in all_engines() {
                engine.increment_epoch();
            }
        }
    }
}

struct Watcher(Arc<Clock>);

impl Drop for Watcher {
    fn drop(&mut self) {
        *self.0.watchers.lock().unwrap() -= 1;
    }
}

/// A store's resource limiter: wasmtime's `StoreLimits` (`limits.maxMemory`, its defaults
/// otherwise), which also remembers whether it refused a memory growth past `maxMemory`, so a
/// run that ends after one (a guest's allocator failing, say) can say so.
#[derive(Default)]
pub struct MemoryCap {
    limits: StoreLimits,
    max_memory: Option<usize>,
    /// A memory was refused growth (or creation) past `limits.maxMemory`.
    pub refused: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed && self.max_memory.is_some_and(|max| desired > max) {
            self.refused = true;
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}
