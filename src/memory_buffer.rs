//! `memory.buffer`: an `ArrayBuffer` over the guest's linear memory itself, as
//! `WebAssembly.Memory.prototype.buffer` is. The same object is returned until the memory
//! grows; then it is detached (byteLength 0) and a new one made. Memories never move (every
//! engine has `memory_may_move(false)`), so a buffer's bytes stay valid for its length, and
//! each buffer keeps the store it views alive, so JS never reads freed memory. Growth is
//! noticed wherever JS can look: the getter itself, after every call into the guest from JS,
//! and before every host function runs on the JS thread.

use crate::engine::Host;
use napi::{sys, Env};
use std::any::Any;
use std::thread::ThreadId;
use wasmtime::{AsContextMut, StoreContextMut};

/// The buffers of one store handed to JS and not yet detached.
#[derive(Default)]
pub struct TrackedBuffers(Vec<Tracked>);

/// One handed-out buffer: which memory, how long it is, and a weak reference to it.
struct Tracked {
    memory: wasmtime::Memory,
    base: usize,
    len: usize,
    env: sys::napi_env,
    weak: sys::napi_ref,
    thread: ThreadId,
}

// SAFETY: the raw handles are only used on `thread` (checked before each use and on drop).
unsafe impl Send for Tracked {}
unsafe impl Sync for Tracked {}

impl Tracked {
    /// The buffer, if it is still alive (and we are on its thread).
    fn value(&self, env: sys::napi_env) -> Option<sys::napi_value> {
        if env != self.env || std::thread::current().id() != self.thread {
            return None;
        }
        let mut value = std::ptr::null_mut();
        // SAFETY: our reference, on its own thread.
        let status = unsafe { sys::napi_get_reference_value(env, self.weak, &mut value) };
        (status == sys::Status::napi_ok && !value.is_null()).then_some(value)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Off its thread the reference is leaked rather than released unsafely; stores with
        // buffers are dropped on the JS thread (the buffers keep them alive until then).
        if std::thread::current().id() == self.thread {
            // SAFETY: our reference, released once, on its own thread.
            unsafe { sys::napi_delete_reference(self.env, self.weak) };
        }
    }
}

impl TrackedBuffers {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `memory.buffer` of `memory` in `store`: the buffer handed out before if the memory has not
/// grown since, else a new one (the old one detached). `keep_alive` (the store's owner) is
/// held by the buffer until it is garbage-collected.
pub fn buffer(
    env: &Env,
    mut store: impl AsContextMut<Data = Host>,
    memory: wasmtime::Memory,
    keep_alive: Box<dyn Any + Send>,
) -> napi::Result<sys::napi_value> {
    refresh(env, &mut store);
    let base = memory.data_ptr(&store) as usize;
    let len = memory.data_size(&store);
    let raw = env.raw();
    if let Some(value) = store
        .as_context()
        .data()
        .buffers
        .0
        .iter()
        .find(|tracked| tracked.base == base)
        .and_then(|tracked| tracked.value(raw))
    {
        return Ok(value);
    }
    let hint = Box::into_raw(Box::new(keep_alive));
    let mut value = std::ptr::null_mut();
    // SAFETY: `base..base + len` is the guest's linear memory, which never moves and never
    // shrinks; the buffer is detached before the memory is seen to have a different size,
    // and `hint` keeps the store (and so the memory) alive until V8 finalizes the buffer.
    let status = unsafe {
        sys::napi_create_external_arraybuffer(
            raw,
            base as *mut std::ffi::c_void,
            len,
            Some(release_keep_alive),
            hint.cast(),
            &mut value,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: V8 did not take `hint`, so it is still ours.
        drop(unsafe { Box::from_raw(hint) });
        return Err(napi::Error::new(
            napi::Status::GenericFailure,
            "memory.buffer cannot be made in this runtime (it refuses external buffers); \
             use memory.read() and memory.write()",
        ));
    }
    let mut weak = std::ptr::null_mut();
    // SAFETY: a weak reference to the buffer just made, on this thread.
    unsafe { sys::napi_create_reference(raw, value, 0, &mut weak) };
    let mut context = store.as_context_mut();
    let buffers = &mut context.data_mut().buffers.0;
    buffers.retain(|tracked| tracked.base != base);
    buffers.push(Tracked {
        memory,
        base,
        len,
        env: raw,
        weak,
        thread: std::thread::current().id(),
    });
    Ok(value)
}

unsafe extern "C" fn release_keep_alive(
    _env: sys::napi_env,
    _data: *mut std::ffi::c_void,
    hint: *mut std::ffi::c_void,
) {
    // SAFETY: `hint` is the box `buffer` leaked for this buffer, finalized once.
    drop(unsafe { Box::from_raw(hint.cast::<Box<dyn Any + Send>>()) });
}

/// Detaches the buffers of `store` whose memory has grown since they were made (and forgets
/// those already collected), so JS sees `byteLength` 0 on them, as with V8.
#[inline]
pub fn refresh(env: &Env, mut store: impl AsContextMut<Data = Host>) {
    let store = store.as_context_mut();
    if !store.data().buffers.is_empty() {
        detach_grown(env, store);
    }
}

fn detach_grown(env: &Env, mut store: StoreContextMut<'_, Host>) {
    let raw = env.raw();
    let mut buffers = std::mem::take(&mut store.data_mut().buffers.0);
    buffers.retain(|tracked| {
        let Some(value) = tracked.value(raw) else {
            return tracked.thread != std::thread::current().id();
        };
        if tracked.memory.data_size(&store) == tracked.len {
            return true;
        }
        // SAFETY: a live external buffer of ours, on its own thread.
        unsafe { sys::napi_detach_arraybuffer(raw, value) };
        false
    });
    store.data_mut().buffers.0 = buffers;
}

/// Detaches every live buffer of `store` (it is about to be freed).
pub fn detach_all(env: &Env, mut store: impl AsContextMut<Data = Host>) {
    let raw = env.raw();
    let mut context = store.as_context_mut();
    for tracked in std::mem::take(&mut context.data_mut().buffers.0) {
        if let Some(value) = tracked.value(raw) {
            // SAFETY: a live external buffer of ours, on its own thread.
            unsafe { sys::napi_detach_arraybuffer(raw, value) };
        }
    }
}
