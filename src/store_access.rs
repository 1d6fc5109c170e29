//! How JS reaches a guest's store while the guest is suspended in a call to JS. A store is
//! normally behind its `Running`'s mutex, held for the whole of a call into the guest; a host
//! function that calls the instance's own exports or reads its memory would lock it again
//! and hang. So while a host function runs, the `Caller` it was given is published:
//! - on the JS thread (the guest runs there): in a thread-local stack that `Running` consults
//!   before locking, so nested calls go through the caller, as wasmtime requires;
//! - from a pool thread (the guest waits there for JS): as a lent store that JS may use for
//!   memory access only; entering wasm from another thread than the one the guest is
//!   suspended on is not allowed (wasmtime's stack limit and trap handling are per thread).

use crate::engine::Host;
use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard};
use wasmtime::{AsContext, AsContextMut, Caller, Store, StoreContext, StoreContextMut};

/// A `Caller` whose lifetime has been erased so it can be published; it is only dereferenced
/// while the host call that owns it is suspended in JS (see `enter` and `Lent`).
type CallerPtr = *mut Caller<'static, Host>;

thread_local! {
    /// The callers of host calls in progress on this thread, innermost last, by store id.
    static ACTIVE: RefCell<Vec<(u64, CallerPtr)>> = const { RefCell::new(Vec::new()) };
}

/// Publishes `caller` (of the store `id`) for nested calls from JS on this thread until the
/// returned guard is dropped, which must happen before the host call returns.
pub fn enter(id: u64, caller: &mut Caller<'_, Host>) -> Entered {
    let ptr = (caller as *mut Caller<'_, Host>).cast::<Caller<'static, Host>>();
    ACTIVE.with_borrow_mut(|active| active.push((id, ptr)));
    Entered(())
}

/// Unpublishes the caller `enter` published.
pub struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        ACTIVE.with_borrow_mut(|active| active.pop());
    }
}

/// The caller of the innermost host call in progress on this thread for store `id`.
fn active(id: u64) -> Option<CallerPtr> {
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
pub fn with_store<'a, R, E>(
    id: u64,
    lock: impl FnOnce() -> std::result::Result<MutexGuard<'a, Store<Host>>, E>,
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

/// A store lent to JS by a guest waiting on a pool thread for a host call, for memory access
/// from the JS thread (`Memory`, `memory.buffer`) while it waits.
#[derive(Default)]
pub struct Lent(Mutex<Option<SendPtr>>);

struct SendPtr(CallerPtr);

// SAFETY: the pointer is only dereferenced under `Lent`'s mutex while its owner (a pool
// thread) is blocked waiting for JS, so one thread at a time uses the store; a `Store` is
// `Send`.
unsafe impl Send for SendPtr {}

impl Lent {
    /// Lends `caller` until the returned guard is dropped (the guest must not touch it
    /// meanwhile); dropping the guard waits for any access in progress to finish.
    pub fn lend<'a>(&'a self, caller: &mut Caller<'_, Host>) -> Lending<'a> {
        let ptr = (caller as *mut Caller<'_, Host>).cast::<Caller<'static, Host>>();
        *self.lock() = Some(SendPtr(ptr));
        Lending(self)
    }

    /// Runs `f` on the lent store, if a guest has lent it now.
    pub fn with<R>(&self, f: impl FnOnce(StoreContextMut<'_, Host>) -> R) -> Option<R> {
        let lent = self.lock();
        // SAFETY: see `SendPtr`: the owner is blocked until `Lending` is dropped, which takes
        // this same lock, so the caller is alive and unused for as long as `f` runs.
        lent.as_ref()
            .map(|ptr| f(unsafe { &mut *ptr.0 }.as_context_mut()))
    }

    fn lock(&self) -> MutexGuard<'_, Option<SendPtr>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Takes a lent store back when dropped.
pub struct Lending<'a>(&'a Lent);

impl Drop for Lending<'_> {
    fn drop(&mut self) {
        *self.0.lock() = None;
    }
}
