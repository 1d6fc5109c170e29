//! A guest's linear memory, behind the JS `Memory` class (`lib/memory.js`). One made by
//! `new Memory({ initial, maximum })` is a `NativeMemory` that keeps its bytes in a JS
//! `ArrayBuffer` until an instance imports it (`host_externs.rs`), and from then on is that
//! instance's memory (a wasmtime store owns its memories, so one `Memory` serves one
//! instance). An exported one is reached by its instance's handle and its index
//! (`memory_byte_length` and the rest), with no native object of its own. `buffer` views the
//! guest's memory itself (`memory_buffer.rs`); `read`/`write` copy. All of it works while JS
//! runs inside one of the guest's host functions, and while a guest on a pool thread waits
//! for one.

use crate::engine::Host;
use crate::error::{ErrorCode, Failure, Result};
use crate::host_externs::{descriptor_limits, descriptor_object, PAGE_SIZE};
use crate::instance::Running;
use crate::js_bytes::JsBytes;
use napi::bindgen_prelude::{ArrayBuffer, FromNapiValue, Uint8Array, Unknown};
use napi::{sys, Env};
use std::cell::RefCell;
use std::sync::Arc;
use wasmtime::{MemoryType, StoreContextMut};

/// The most pages a 32-bit memory can have (4 GiB).
const MAX_PAGES: u64 = 65536;

/// A guest's linear memory made by JS for an instance to import (or, for a moment, an
/// exported one: `exported`). JS sees it through `Memory` (`lib/memory.js`).
#[napi(js_name = "NativeMemory")]
pub struct Memory {
    state: RefCell<MemoryState>,
}

enum MemoryState {
    /// Made by `new Memory()`, not imported yet.
    Unbound(UnboundMemory),
    /// An instance's memory.
    Bound {
        running: Arc<Running>,
        memory: wasmtime::Memory,
    },
}

/// The bytes of a `Memory` no instance has imported yet: a JS `ArrayBuffer` (its `buffer`)
/// and the declared maximum, in pages.
struct UnboundMemory {
    env: sys::napi_env,
    buffer: sys::napi_ref,
    maximum: Option<u64>,
}

impl Drop for UnboundMemory {
    fn drop(&mut self) {
        // SAFETY: our strong reference, released once; `Memory` objects are finalized on
        // the JS thread that made them.
        unsafe { sys::napi_delete_reference(self.env, self.buffer) };
    }
}

impl UnboundMemory {
    fn new(env: &Env, pages: u64, maximum: Option<u64>) -> napi::Result<Self> {
        let buffer = new_array_buffer(env, (pages * PAGE_SIZE) as usize)?;
        let mut reference = std::ptr::null_mut();
        // SAFETY: a strong reference to the buffer just made, on this thread.
        napi_ok(unsafe { sys::napi_create_reference(env.raw(), buffer, 1, &mut reference) })?;
        Ok(UnboundMemory {
            env: env.raw(),
            buffer: reference,
            maximum,
        })
    }

    fn buffer(&self) -> napi::Result<sys::napi_value> {
        let mut value = std::ptr::null_mut();
        // SAFETY: our strong reference, on its own thread.
        napi_ok(unsafe { sys::napi_get_reference_value(self.env, self.buffer, &mut value) })?;
        Ok(value)
    }

    /// The bytes, valid until the buffer is detached or JS runs.
    fn bytes(&self) -> napi::Result<&[u8]> {
        let (data, len) = self.backing_store()?;
        if len == 0 {
            return Ok(&[]);
        }
        // SAFETY: `data..data + len` is the buffer's backing store, as just reported.
        Ok(unsafe { std::slice::from_raw_parts(data, len) })
    }

    /// The bytes, to write, valid until the buffer is detached or JS runs.
    fn bytes_mut(&mut self) -> napi::Result<&mut [u8]> {
        let (data, len) = self.backing_store()?;
        if len == 0 {
            return Ok(&mut []);
        }
        // SAFETY: as in `bytes`; `&mut self` makes this the only Rust view of them.
        Ok(unsafe { std::slice::from_raw_parts_mut(data, len) })
    }

    fn backing_store(&self) -> napi::Result<(*mut u8, usize)> {
        let buffer = self.buffer()?;
        let mut data = std::ptr::null_mut();
        let mut len = 0;
        // SAFETY: a live ArrayBuffer of ours.
        napi_ok(unsafe { sys::napi_get_arraybuffer_info(self.env, buffer, &mut data, &mut len) })?;
        Ok((data.cast::<u8>(), len))
    }

    /// Replaces the buffer with a longer copy and detaches the old one, as growth does.
    fn grow(&mut self, env: &Env, pages: u64) -> napi::Result<()> {
        let old = self.bytes()?.to_vec();
        let buffer = new_array_buffer(env, old.len() + (pages * PAGE_SIZE) as usize)?;
        let mut data = std::ptr::null_mut();
        let mut len = 0;
        // SAFETY: the live ArrayBuffer just made, at least `old.len()` bytes long.
        unsafe {
            napi_ok(sys::napi_get_arraybuffer_info(
                env.raw(),
                buffer,
                &mut data,
                &mut len,
            ))?;
            std::ptr::copy_nonoverlapping(old.as_ptr(), data.cast::<u8>(), old.len());
        }
        self.detach()?;
        let mut reference = std::ptr::null_mut();
        // SAFETY: a strong reference to the new buffer, replacing (and releasing) the old one.
        unsafe {
            napi_ok(sys::napi_create_reference(
                env.raw(),
                buffer,
                1,
                &mut reference,
            ))?;
            sys::napi_delete_reference(self.env, self.buffer);
        }
        self.buffer = reference;
        Ok(())
    }

    /// Detaches the buffer (its bytes have moved into a store, or into a longer buffer).
    fn detach(&self) -> napi::Result<()> {
        // SAFETY: our live ArrayBuffer, on its own thread.
        napi_ok(unsafe { sys::napi_detach_arraybuffer(self.env, self.buffer()?) })
    }
}

fn new_array_buffer(env: &Env, len: usize) -> napi::Result<sys::napi_value> {
    let mut data = std::ptr::null_mut();
    let mut value = std::ptr::null_mut();
    // SAFETY: a new zero-filled buffer on this thread.
    napi_ok(unsafe { sys::napi_create_arraybuffer(env.raw(), len, &mut data, &mut value) })
        .map_err(|_| {
            napi::Error::new(
                napi::Status::GenericFailure,
                format!("cannot allocate a memory of {len} bytes"),
            )
        })?;
    Ok(value)
}

fn napi_ok(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(
            napi::Status::GenericFailure,
            "a napi call on the memory's buffer failed",
        ))
    }
}

impl Memory {
    /// An instance's exported memory.
    pub fn exported(running: Arc<Running>, memory: wasmtime::Memory) -> Self {
        Memory {
            state: RefCell::new(MemoryState::Bound { running, memory }),
        }
    }

    /// The instance this memory belongs to, if one has imported or exported it.
    pub fn is_bound(&self) -> bool {
        matches!(*self.state.borrow(), MemoryState::Bound { .. })
    }

    /// Its size in pages and declared maximum, while no instance has it.
    pub fn unbound_limits(&self) -> Option<(u64, Option<u64>)> {
        match &*self.state.borrow() {
            MemoryState::Unbound(unbound) => {
                let pages = unbound
                    .bytes()
                    .map_or(0, |bytes| bytes.len() as u64 / PAGE_SIZE);
                Some((pages, unbound.maximum))
            }
            MemoryState::Bound { .. } => None,
        }
    }

    /// A wasmtime memory in `store` with this memory's size, maximum and bytes, for an
    /// instance that imports it (bound to it by `bind` once the instance exists).
    pub fn instantiate_into(&self, store: StoreContextMut<'_, Host>) -> Result<wasmtime::Memory> {
        let MemoryState::Unbound(unbound) = &*self.state.borrow() else {
            return Err(Failure::new(
                ErrorCode::WasmLink,
                "This Memory already belongs to an instance",
            ));
        };
        let mut store = store;
        let bytes = unbound
            .bytes()
            .map_err(|e| Failure::new(ErrorCode::WasmLink, e.reason))?;
        let pages = bytes.len() as u64 / PAGE_SIZE;
        let memory = wasmtime::Memory::new(
            &mut store,
            MemoryType::new(pages as u32, unbound.maximum.map(|m| m as u32)),
        )
        .map_err(|e| {
            Failure::new(
                ErrorCode::WasmLink,
                format!(
                    "The imported Memory ({pages} pages) cannot be made in this instance: \
                         {}. An instance's memories count against limits.maxMemory",
                    crate::error::reason(&e)
                ),
            )
        })?;
        memory.data_mut(&mut store)[..bytes.len()].copy_from_slice(bytes);
        Ok(memory)
    }

    /// Makes this memory `running`'s `memory` (made by `instantiate_into`); the old buffer
    /// is detached, as growth detaches one.
    pub fn bind(&self, running: Arc<Running>, memory: wasmtime::Memory) {
        let old = std::mem::replace(
            &mut *self.state.borrow_mut(),
            MemoryState::Bound { running, memory },
        );
        if let MemoryState::Unbound(unbound) = old {
            let _ = unbound.detach();
        }
    }
}

#[napi]
impl Memory {
    /// `new Memory(descriptor)` (lib/memory.js documents the JS class).
    #[napi(
        catch_unwind,
        constructor,
        ts_args_type = "descriptor: { initial: number; maximum?: number }"
    )]
    pub fn new(env: Env, descriptor: Unknown) -> napi::Result<Self> {
        let (initial, maximum) = descriptor_object(descriptor)
            .and_then(|descriptor| descriptor_limits(&descriptor, MAX_PAGES))
            .map_err(|f| f.into_napi(&env))?;
        Ok(Memory {
            state: RefCell::new(MemoryState::Unbound(UnboundMemory::new(
                &env, initial, maximum,
            )?)),
        })
    }

    /// `memory.byteLength`.
    #[napi(catch_unwind, getter)]
    pub fn byte_length(&self, env: Env) -> napi::Result<f64> {
        match &*self.state.borrow() {
            MemoryState::Unbound(unbound) => Ok(unbound.bytes()?.len() as f64),
            MemoryState::Bound { running, memory } => running
                .with_memory(|store| memory.data_size(&store) as f64)
                .map_err(|f| f.into_napi(&env)),
        }
    }

    /// `memory.buffer`: the same `ArrayBuffer` until the memory grows (`memory_buffer.rs`).
    #[napi(catch_unwind, getter, ts_return_type = "ArrayBuffer")]
    pub fn buffer<'env>(&self, env: &'env Env) -> napi::Result<ArrayBuffer<'env>> {
        let value = match &*self.state.borrow() {
            MemoryState::Unbound(unbound) => unbound.buffer()?,
            MemoryState::Bound { running, memory } => running
                .with_memory(|store| {
                    crate::memory_buffer::buffer(env, store, *memory, Box::new(running.clone()))
                })
                .map_err(|f| f.into_napi(env))??,
        };
        // SAFETY: `value` is an ArrayBuffer handle made or found just above, in this scope.
        unsafe { ArrayBuffer::from_napi_value(env.raw(), value) }
    }

    /// `memory.read(offset, length)`: a copy; `ERR_OUT_OF_RANGE` outside the memory.
    #[napi(catch_unwind, ts_return_type = "Buffer")]
    pub fn read(&self, env: Env, offset: f64, length: f64) -> napi::Result<JsBytes> {
        let read = |data: &[u8]| -> Result<JsBytes> {
            let range = checked_range(offset, length, data.len())?;
            Ok(data[range].to_vec().into())
        };
        match &*self.state.borrow() {
            MemoryState::Unbound(unbound) => read(unbound.bytes()?),
            MemoryState::Bound { running, memory } => running
                .with_memory(|store| read(memory.data(&store)))
                .and_then(|read| read),
        }
        .map_err(|f| f.into_napi(&env))
    }

    /// `memory.write(offset, bytes)`; `ERR_OUT_OF_RANGE` if they do not fit.
    #[napi(catch_unwind)]
    pub fn write(&self, env: Env, offset: f64, bytes: Uint8Array) -> napi::Result<()> {
        let write = |data: &mut [u8]| -> Result<()> {
            let range = checked_range(offset, bytes.len() as f64, data.len())?;
            data[range].copy_from_slice(&bytes);
            Ok(())
        };
        match &mut *self.state.borrow_mut() {
            MemoryState::Unbound(unbound) => write(unbound.bytes_mut()?),
            MemoryState::Bound { running, memory } => running
                .with_memory(|mut store| write(memory.data_mut(&mut store)))
                .and_then(|written| written),
        }
        .map_err(|f| f.into_napi(&env))
    }

    /// `memory.grow(pages)`: the previous size in pages; `ERR_OUT_OF_RANGE` past the maximum.
    #[napi(catch_unwind)]
    pub fn grow(&self, env: Env, pages: f64) -> napi::Result<f64> {
        let fail = || {
            Failure::new(
                ErrorCode::OutOfRange,
                format!("The memory cannot grow by {pages} pages"),
            )
        };
        if !(pages >= 0.0 && pages.fract() == 0.0 && pages <= MAX_PAGES as f64) {
            return Err(fail().into_napi(&env));
        }
        let pages = pages as u64;
        match &mut *self.state.borrow_mut() {
            MemoryState::Unbound(unbound) => {
                let previous = unbound.bytes()?.len() as u64 / PAGE_SIZE;
                if previous + pages > unbound.maximum.unwrap_or(MAX_PAGES) {
                    return Err(fail().into_napi(&env));
                }
                if pages > 0 {
                    unbound.grow(&env, pages)?;
                }
                Ok(previous as f64)
            }
            MemoryState::Bound { running, memory } => running
                .with_memory(|mut store| -> Result<f64> {
                    let previous = memory.grow(&mut store, pages).map_err(|_| fail())?;
                    crate::memory_buffer::refresh(&env, &mut store);
                    Ok(previous as f64)
                })
                .and_then(|grown| grown)
                .map_err(|f| f.into_napi(&env)),
        }
    }
}
/// The exported memory `index` of the instance `handle`, for one call.
fn exported(handle: i64, index: u32) -> Result<Memory> {
    let instance = crate::instance_handles::get(handle)?;
    let memory = instance.memory(index)?;
    Ok(Memory::exported(instance.running.clone(), memory))
}

/// Internal: `memory.byteLength` of an exported memory (`lib/memory.js`).
#[napi(catch_unwind)]
pub fn memory_byte_length(env: Env, handle: i64, index: u32) -> napi::Result<f64> {
    exported(handle, index)
        .map_err(|f| f.into_napi(&env))?
        .byte_length(env)
}

/// Internal: `memory.buffer` of an exported memory.
#[napi(catch_unwind, ts_return_type = "ArrayBuffer")]
pub fn memory_buffer(env: &Env, handle: i64, index: u32) -> napi::Result<ArrayBuffer<'_>> {
    exported(handle, index)
        .map_err(|f| f.into_napi(env))?
        .buffer(env)
}

/// Internal: `memory.read()` of an exported memory.
#[napi(catch_unwind, ts_return_type = "Buffer")]
pub fn memory_read(
    env: Env,
    handle: i64,
    index: u32,
    offset: f64,
    length: f64,
) -> napi::Result<JsBytes> {
    exported(handle, index)
        .map_err(|f| f.into_napi(&env))?
        .read(env, offset, length)
}

/// Internal: `memory.write()` of an exported memory.
#[napi(catch_unwind)]
pub fn memory_write(
    env: Env,
    handle: i64,
    index: u32,
    offset: f64,
    bytes: Uint8Array,
) -> napi::Result<()> {
    exported(handle, index)
        .map_err(|f| f.into_napi(&env))?
        .write(env, offset, bytes)
}

/// Internal: `memory.grow()` of an exported memory.
#[napi(catch_unwind)]
pub fn memory_grow(env: Env, handle: i64, index: u32, pages: f64) -> napi::Result<f64> {
    exported(handle, index)
        .map_err(|f| f.into_napi(&env))?
        .grow(env, pages)
}

/// Internal: an exported memory as a `NativeMemory`, for where one is imported (which
/// refuses it: it already belongs to its instance).
#[napi(catch_unwind)]
pub fn memory_native(env: Env, handle: i64, index: u32) -> napi::Result<Memory> {
    exported(handle, index).map_err(|f| f.into_napi(&env))
}

fn checked_range(offset: f64, length: f64, size: usize) -> Result<std::ops::Range<usize>> {
    let valid = |n: f64| n >= 0.0 && n.fract() == 0.0 && n <= size as f64;
    if !valid(offset) || !valid(length) || offset + length > size as f64 {
        return Err(Failure::new(
            ErrorCode::OutOfRange,
            format!(
                "The range [{offset}, {offset} + {length}) is out of range. It must be inside the memory's {size} bytes"
            ),
        ));
    }
    Ok(offset as usize..(offset + length) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_must_fit() {
        assert_eq!(checked_range(0.0, 4.0, 4).unwrap(), 0..4);
        assert!(checked_range(1.0, 4.0, 4).is_err());
        assert!(checked_range(-1.0, 1.0, 4).is_err());
        assert!(checked_range(0.5, 1.0, 4).is_err());
    }
}
