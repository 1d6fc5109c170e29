//! How JS reaches a guest's store while the guest is suspended in a call to JS. A store is
//! normally behind its `Running`'s mutex, held for the whole of a call into the guest; a host
//! function that calls the instance's own exports or reads its memory would lock it again
//! and hang. So while a host function runs, the `Caller` it was given is published:
//! - on the JS thread (the guest runs there): in a thread-local stack that `Running` consults
//!   before locking, so nested calls go through the caller, as wasmtime requires;
//! - from a pool thread (the guest waits there for JS): as a lent store that JS may use for
//!   memory access, and to call into the guest by handing the call to the waiting thread
//!   (wasm must run on the thread the guest is suspended on: wasmtime's stack limit and trap
//!   handling are per thread).

use crate::engine::Host;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use wasmtime::{AsContext, AsContextMut, Caller, Store, StoreContext, StoreContextMut, ValRaw};

/// A `Caller` whose lifetime has been erased so it can be published; it is only dereferenced
/// while the host call that owns it is suspended in JS (see `enter` and `Lent`).
type CallerPtr = *mut Caller<'static, Host>;

thread_local! {
    /// The callers of host calls in progress on this thread, innermost last, by store id.
    static ACTIVE: RefCell<Vec<(u64, CallerPtr)>> = const { RefCell::new(Vec::new()) };
}

/// How many callers are published on all threads: while none is, every call from JS is a
/// top-level one, found without touching the thread-local.
static PUBLISHED: AtomicUsize = AtomicUsize::new(0);

/// Publishes `caller` (of the store `id`) for nested calls from JS on this thread until the
/// returned guard is dropped, which must happen before the host call returns.
pub fn enter(id: u64, caller: &mut Caller<'_, Host>) -> Entered {
    let ptr = (caller as *mut Caller<'_, Host>).cast::<Caller<'static, Host>>();
    ACTIVE.with_borrow_mut(|active| active.push((id, ptr)));
    PUBLISHED.fetch_add(1, Ordering::SeqCst);
    Entered(())
}

/// Unpublishes the caller `enter` published.
pub struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        ACTIVE.with_borrow_mut(|active| active.pop());
        PUBLISHED.fetch_sub(1, Ordering::SeqCst);
    }
}

thread_local! {
    /// The stores whose component host calls are in progress on this thread.
    static COMPONENT_CALLS: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// How many component host calls are in progress on all threads (the fast path of
/// `in_component_call`).
static COMPONENT_CALLS_ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Marks a component host call of store `id` in progress on this thread until the guard is
/// dropped. A component cannot be re-entered (the component model forbids it, and its store
/// is locked meanwhile), so calls from JS into it fail at once instead of waiting forever.
pub fn enter_component(id: u64) -> ComponentEntered {
    COMPONENT_CALLS.with_borrow_mut(|calls| calls.push(id));
    COMPONENT_CALLS_ACTIVE.fetch_add(1, Ordering::SeqCst);
    ComponentEntered(())
}

/// Ends what `enter_component` marked.
pub struct ComponentEntered(());

impl Drop for ComponentEntered {
    fn drop(&mut self) {
        COMPONENT_CALLS.with_borrow_mut(|calls| calls.pop());
        COMPONENT_CALLS_ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether JS on this thread runs inside a component host call of store `id`.
pub fn in_component_call(id: u64) -> bool {
    COMPONENT_CALLS_ACTIVE.load(Ordering::SeqCst) != 0
        && COMPONENT_CALLS.with_borrow(|calls| calls.contains(&id))
}

/// The caller of the innermost host call in progress on this thread for store `id`.
fn active(id: u64) -> Option<CallerPtr> {
    if PUBLISHED.load(Ordering::SeqCst) == 0 {
        return None;
    }
    ACTIVE.with_borrow(|active| {
        active
            .iter()
            .rev()
            .find(|(store, _)| *store == id)
            .map(|(_, ptr)| *ptr)
    })
}

/// The store of a guest, as JS code reaches it: locked (a call from JS at the top level) or
/// through the caller of the host call JS is running inside (a nested call).
pub enum StoreRef<'a> {
    Top(&'a mut Store<Host>),
    Nested(&'a mut Caller<'static, Host>),
}

impl StoreRef<'_> {
    /// Whether this is a call made from inside a host function.
    pub fn nested(&self) -> bool {
        matches!(self, StoreRef::Nested(_))
    }
}

impl AsContext for StoreRef<'_> {
    type Data = Host;
    fn as_context(&self) -> StoreContext<'_, Host> {
        match self {
            StoreRef::Top(store) => store.as_context(),
            StoreRef::Nested(caller) => caller.as_context(),
        }
    }
}

impl AsContextMut for StoreRef<'_> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, Host> {
        match self {
            StoreRef::Top(store) => store.as_context_mut(),
            StoreRef::Nested(caller) => caller.as_context_mut(),
        }
    }
}

/// Whether JS on this thread is running inside a host call of the store `id`.
pub fn is_active(id: u64) -> bool {
    active(id).is_some()
}

/// Runs `f` on the store `id`: through the active caller on this thread if JS is running
/// inside one of its host calls, else through `lock()` (which may refuse).
pub fn with_store<R, E, G: std::ops::DerefMut<Target = Store<Host>>>(
    id: u64,
    lock: impl FnOnce() -> std::result::Result<G, E>,
    f: impl FnOnce(StoreRef<'_>) -> R,
) -> std::result::Result<R, E> {
    match active(id) {
        // SAFETY: the pointer was published by `enter` from a live `&mut Caller` whose host
        // call is suspended in JS on this thread (so nothing else uses it now), and the
        // guard unpublishes it before that call returns. Nested entries are innermost-last,
        // and `f` runs to completion before the outer frame resumes.
        Some(ptr) => Ok(f(StoreRef::Nested(unsafe { &mut *ptr }))),
        None => {
            let mut store = lock()?;
            Ok(f(StoreRef::Top(&mut store)))
        }
    }
}

/// The store of a guest that waits on a pool thread for a host call, lent to the JS thread:
/// JS may use its memory directly (`with`), and call into the guest through `run_job`, which
/// hands the call to the waiting thread (wasm must run on the thread it is suspended on) and
/// waits for it, serving meanwhile on the JS thread the host calls that call makes
/// (`request`: the event loop is blocked, so they cannot go through it).
#[derive(Default)]
pub struct Lent {
    state: Mutex<LentState>,
    /// Wakes the guest's thread: a job for it, or the answer to its host call.
    guest_wake: Condvar,
}

#[derive(Default)]
struct LentState {
    /// The callers lent, innermost last (a job's own host calls lend theirs on top).
    callers: Vec<SendPtr>,
    /// Calls from JS waiting to run on the guest's thread.
    jobs: VecDeque<Job>,
    /// The jobs JS waits for, innermost last.
    waiting: Vec<Arc<JobSlot>>,
}

struct SendPtr(CallerPtr);

// SAFETY: the pointer is only dereferenced under `Lent`'s mutex (memory access from JS) or by
// the guest's own thread running a job, while everyone else waits: one thread at a time uses
// the store, and a `Store` is `Send`.
unsafe impl Send for SendPtr {}

/// A call from JS to run on the guest's thread.
pub type JobFn = Box<dyn FnOnce(StoreContextMut<'_, Host>) -> wasmtime::Result<JobValues> + Send>;

/// Values a job carries back and forth (numbers only).
pub struct JobValues(pub Vec<ValRaw>);

// SAFETY: only numbers are put here (export signatures are numeric), never references.
unsafe impl Send for JobValues {}

struct Job {
    run: JobFn,
    slot: Arc<JobSlot>,
}

/// Where a job's outcome, and the host calls it makes meanwhile, reach the waiting JS thread.
#[derive(Default)]
struct JobSlot {
    state: Mutex<JobState>,
    wake: Condvar,
}

#[derive(Default)]
struct JobState {
    outcome: Option<wasmtime::Result<JobValues>>,
    requests: VecDeque<JsRequest>,
}

/// A host call for the JS thread to serve while it waits for a job.
pub type JsRequest = Box<dyn FnOnce(&napi::Env) + Send>;

impl Lent {
    /// Lends `caller` until the returned guard is dropped (the guest must not touch it
    /// meanwhile, except to run jobs through `serve_jobs`).
    pub fn lend<'a>(&'a self, caller: &mut Caller<'_, Host>) -> Lending<'a> {
        let ptr = (caller as *mut Caller<'_, Host>).cast::<Caller<'static, Host>>();
        self.lock().callers.push(SendPtr(ptr));
        Lending(self)
    }

    /// Runs `f` on the lent store, if a guest has lent it now (memory access from JS).
    pub fn with<R>(&self, f: impl FnOnce(StoreContextMut<'_, Host>) -> R) -> Option<R> {
        let lent = self.lock();
        // SAFETY: see `SendPtr`: the owner is blocked until `Lending` is dropped, which takes
        // this same lock, so the caller is alive and unused for as long as `f` runs.
        lent.callers
            .last()
            .map(|ptr| f(unsafe { &mut *ptr.0 }.as_context_mut()))
    }

    /// The guest's side, while it waits for its host call's answer: runs the jobs JS has
    /// queued, then sleeps until woken (`wake_guest`) or `timeout` passes, unless `answered`.
    pub fn serve_jobs(&self, answered: &AtomicBool, timeout: std::time::Duration) {
        let mut state = self.lock();
        while let Some(job) = state.jobs.pop_front() {
            let Some(ptr) = state.callers.last().map(|ptr| ptr.0) else {
                break;
            };
            drop(state);
            // SAFETY: the innermost lent caller belongs to this (the guest's) thread, which is
            // suspended in the host call that lent it; the JS thread that queued the job waits
            // for it and uses the store only through it.
            let outcome = (job.run)(unsafe { &mut *ptr }.as_context_mut());
            job.slot.finish(outcome);
            state = self.lock();
        }
        if !answered.load(Ordering::Acquire) {
            drop(
                self.guest_wake
                    .wait_timeout(state, timeout)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            );
        }
    }

    /// Wakes the guest's thread (its host call was answered).
    pub fn wake_guest(&self) {
        let _state = self.lock();
        self.guest_wake.notify_all();
    }

    /// The JS side: runs `run` on the guest's thread, which waits for a host call, and waits
    /// for it, serving the host calls it makes. `None` when no guest waits (nothing ran).
    pub fn run_job(&self, env: &napi::Env, run: JobFn) -> Option<wasmtime::Result<JobValues>> {
        let slot = Arc::new(JobSlot::default());
        {
            let mut state = self.lock();
            if state.callers.is_empty() {
                return None;
            }
            state.jobs.push_back(Job {
                run,
                slot: slot.clone(),
            });
            state.waiting.push(slot.clone());
            self.guest_wake.notify_all();
        }
        let outcome = slot.wait(env);
        let mut state = self.lock();
        if let Some(at) = state.waiting.iter().rposition(|s| Arc::ptr_eq(s, &slot)) {
            state.waiting.remove(at);
        }
        Some(outcome)
    }

    /// The guest's side: the host call `request` is for the JS thread that waits for one of
    /// this guest's jobs, if one does (else `request` comes back, for the event loop).
    pub fn request(&self, request: JsRequest) -> Option<JsRequest> {
        let state = self.lock();
        match state.waiting.last() {
            Some(slot) => {
                slot.state_lock().requests.push_back(request);
                slot.wake.notify_all();
                None
            }
            None => Some(request),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LentState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl JobSlot {
    fn state_lock(&self) -> MutexGuard<'_, JobState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn finish(&self, outcome: wasmtime::Result<JobValues>) {
        self.state_lock().outcome = Some(outcome);
        self.wake.notify_all();
    }

    /// Waits for the outcome, serving the host calls that arrive meanwhile.
    fn wait(&self, env: &napi::Env) -> wasmtime::Result<JobValues> {
        let mut state = self.state_lock();
        loop {
            if let Some(outcome) = state.outcome.take() {
                return outcome;
            }
            if let Some(request) = state.requests.pop_front() {
                drop(state);
                request(env);
                state = self.state_lock();
                continue;
            }
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

/// Takes a lent store back when dropped; when no caller is lent any more, jobs still queued
/// fail (the guest no longer waits to run them).
pub struct Lending<'a>(&'a Lent);

impl Drop for Lending<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.callers.pop();
        if state.callers.is_empty() {
            for job in state.jobs.drain(..) {
                job.slot.finish(Err(wasmtime::Error::msg(
                    "the guest stopped waiting before this call could run",
                )));
            }
        }
    }
}
