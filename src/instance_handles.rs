//! The live `Instance`s of this JS thread, by handle. A JS `Instance` (`lib/instance.js`)
//! holds a number, not a native object: Node 20 gives a native object's memory back only in a
//! finalizer that runs when the event loop turns, so a loop that never yields would keep one
//! per instance even after `dispose()`. A handle's entry goes at `dispose()`, when the JS
//! object is collected (its `FinalizationRegistry`), or when the thread's environment is torn
//! down (a worker's end).

use crate::error::{ErrorCode, Failure, Result};
use crate::instance::Instance;
use napi::Env;
use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;
use std::rc::Rc;

thread_local! {
    /// This thread's live instances by handle (`None` until the first registers the
    /// environment's cleanup hook).
    static LIVE: RefCell<Option<HashMap<i64, Rc<Instance>>>> = const { RefCell::new(None) };
}

/// The error of a handle with no live instance: it was disposed.
pub fn disposed() -> Failure {
    Failure::new(
        ErrorCode::WasmInstanceDisposed,
        "The instance was disposed ([Symbol.dispose]()): its memory and exports are gone",
    )
}

/// Keeps `instance` live and returns its handle (its store's id, unique in the process).
pub fn insert(env: &Env, instance: Instance) -> napi::Result<i64> {
    let handle = instance.running.id() as i64;
    let first = LIVE.with_borrow_mut(|live| {
        let first = live.is_none();
        live.get_or_insert_with(HashMap::default)
            .insert(handle, Rc::new(instance));
        first
    });
    if first {
        env.add_env_cleanup_hook((), |()| {
            // Dropped outside the borrow: a store's drop releases its references.
            let live = LIVE.with_borrow_mut(Option::take);
            drop(live);
        })?;
    }
    Ok(handle)
}

/// The live instance of `handle`; `ERR_WASM_INSTANCE_DISPOSED` if there is none.
pub fn get(handle: i64) -> Result<Rc<Instance>> {
    LIVE.with_borrow(|live| live.as_ref().and_then(|live| live.get(&handle).cloned()))
        .ok_or_else(disposed)
}

/// Takes `handle`'s instance out (its store goes when the last holder drops it).
pub fn remove(handle: i64) -> Option<Rc<Instance>> {
    LIVE.with_borrow_mut(|live| live.as_mut().and_then(|live| live.remove(&handle)))
}

/// Internal: how many instances this thread holds (not disposed, not yet collected), for
/// tests that check what a loop leaves behind.
#[napi(catch_unwind)]
pub fn live_instance_count() -> u32 {
    LIVE.with_borrow(|live| live.as_ref().map_or(0, HashMap::len)) as u32
}
