//! Bytes handed to JS as a `Buffer` copied into memory V8 owns. napi-rs's `Buffer` from a
//! `Vec` is an external buffer, whose native memory Node frees in a finalizer that runs only
//! when the event loop turns: a loop of runs that never yields piled up every run's output.
//! A copy is freed here at once, and V8's garbage collector sees its size.

use napi::bindgen_prelude::ToNapiValue;
use napi::sys;

/// Bytes that become a `Buffer` of their own (see the file comment).
pub struct JsBytes(pub Vec<u8>);

impl From<Vec<u8>> for JsBytes {
    fn from(bytes: Vec<u8>) -> Self {
        JsBytes(bytes)
    }
}

impl ToNapiValue for JsBytes {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        let mut buffer = std::ptr::null_mut();
        // SAFETY: copies `value`'s bytes (none for an empty one) into a new Buffer of `env`.
        let status = unsafe {
            sys::napi_create_buffer_copy(
                env,
                value.0.len(),
                value.0.as_ptr().cast(),
                std::ptr::null_mut(),
                &mut buffer,
            )
        };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::new(
                napi::Status::GenericFailure,
                format!("cannot make a Buffer of {} bytes", value.0.len()),
            ));
        }
        Ok(buffer)
    }
}
