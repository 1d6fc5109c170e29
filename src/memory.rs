//! The `Memory` class: an exported linear memory of an `Instance`. `buffer` views the
//! guest's memory itself (`memory_buffer.rs`); `read`/`write` copy. All of it works while
//! JS runs inside one of the guest's host functions, and while a guest on a pool thread waits
//! for one.

use crate::error::{ErrorCode, Failure, Result};
use crate::instance::Running;
use napi::bindgen_prelude::{ArrayBuffer, Buffer, FromNapiValue, Uint8Array};
use napi::Env;
use std::sync::Arc;

/// An exported linear memory.
#[napi]
pub struct Memory {
    running: Arc<Running>,
    memory: wasmtime::Memory,
}

impl Memory {
    pub fn new(running: Arc<Running>, memory: wasmtime::Memory) -> Self {
        Memory { running, memory }
    }
}

#[napi]
impl Memory {
    /// Current size in bytes.
    #[napi(getter)]
    pub fn byte_length(&self, env: Env) -> napi::Result<f64> {
        self.running
            .with_memory(|store| self.memory.data_size(&store) as f64)
            .map_err(|f| f.into_napi(&env))
    }

    /// An `ArrayBuffer` over the memory itself, as `WebAssembly.Memory.prototype.buffer`: the
    /// same object until the memory grows, then that one is detached (`byteLength` 0) and a
    /// new one is returned. It keeps the instance's memory alive while JS holds it.
    #[napi(getter, ts_return_type = "ArrayBuffer")]
    pub fn buffer<'env>(&self, env: &'env Env) -> napi::Result<ArrayBuffer<'env>> {
        let value = self
            .running
            .with_memory(|store| {
                crate::memory_buffer::buffer(
                    env,
                    store,
                    self.memory,
                    Box::new(self.running.clone()),
                )
            })
            .map_err(|f| f.into_napi(env))??;
        // SAFETY: `value` is an ArrayBuffer handle made or found just above, in this scope.
        unsafe { ArrayBuffer::from_napi_value(env.raw(), value) }
    }

    /// Copies `length` bytes starting at `offset` out of the memory.
    /// Throws `ERR_OUT_OF_RANGE` if the range is not inside the memory.
    #[napi]
    pub fn read(&self, env: Env, offset: f64, length: f64) -> napi::Result<Buffer> {
        self.running
            .with_memory(|store| -> Result<Buffer> {
                let data = self.memory.data(&store);
                let range = checked_range(offset, length, data.len())?;
                Ok(data[range].to_vec().into())
            })
            .and_then(|read| read)
            .map_err(|f| f.into_napi(&env))
    }

    /// Copies `bytes` into the memory at `offset`.
    /// Throws `ERR_OUT_OF_RANGE` if they do not fit.
    #[napi]
    pub fn write(&self, env: Env, offset: f64, bytes: Uint8Array) -> napi::Result<()> {
        self.running
            .with_memory(|mut store| -> Result<()> {
                let data = self.memory.data_mut(&mut store);
                let range = checked_range(offset, bytes.len() as f64, data.len())?;
                data[range].copy_from_slice(&bytes);
                Ok(())
            })
            .and_then(|written| written)
            .map_err(|f| f.into_napi(&env))
    }

    /// Grows the memory by `pages` 64 KiB pages; returns the previous size in pages (and
    /// detaches the old `buffer`). Throws `ERR_OUT_OF_RANGE` if it cannot grow that far.
    #[napi]
    pub fn grow(&self, env: Env, pages: f64) -> napi::Result<f64> {
        let fail = || {
            Failure::new(
                ErrorCode::OutOfRange,
                format!("The memory cannot grow by {pages} pages"),
            )
        };
        self.running
            .with_memory(|mut store| -> Result<f64> {
                if !(pages >= 0.0 && pages.fract() == 0.0) {
                    return Err(fail());
                }
                let previous = self
                    .memory
                    .grow(&mut store, pages as u64)
                    .map_err(|_| fail())?;
                crate::memory_buffer::refresh(&env, &mut store);
                Ok(previous as f64)
            })
            .and_then(|grown| grown)
            .map_err(|f| f.into_napi(&env))
    }
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
