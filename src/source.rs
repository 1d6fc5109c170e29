//! Reading wasm input from JS values: a string (WAT text) or any `BufferSource` (Buffer,
//! TypedArray, DataView, ArrayBuffer), borrowed for the length of one native call.

use crate::error::{ErrorCode, Failure};
use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Unknown};
use napi::{sys, JsValue, ValueType};
use std::ptr;

/// Wasm input as the caller gave it: bytes, or WAT/text to be parsed.
pub enum Source<'a> {
    Bytes(&'a [u8]),
    Text(String),
}

impl Source<'_> {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Source::Bytes(bytes) => bytes,
            Source::Text(text) => text.as_bytes(),
        }
    }
}

/// Reads `value` as wasm input. The slice borrows the JS value's backing store and must not
/// outlive the native call it was read in (the `'a` ties it to the `Unknown`).
pub fn read_source<'a>(value: &Unknown<'a>, name: &str) -> Result<Source<'a>, Failure> {
    if value.get_type().ok() == Some(ValueType::String) {
        // SAFETY: `value` is a live string handle of the current call.
        let text = unsafe { String::from_napi_value(value.value().env, value.raw()) }
            .map_err(|e| Failure::new(ErrorCode::InvalidArgValue, e.reason))?;
        return Ok(Source::Text(text));
    }
    match read_buffer_source(value) {
        Some(bytes) => Ok(Source::Bytes(bytes)),
        None => Err(invalid_type(
            name,
            "of type string or an instance of Buffer, TypedArray, DataView, or ArrayBuffer",
            value,
        )),
    }
}

/// Reads `value` as bytes if it is a `BufferSource`.
pub fn read_buffer_source<'a>(value: &Unknown<'a>) -> Option<&'a [u8]> {
    let env = value.value().env;
    let raw = value.raw();
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut length: usize = 0;
    let mut flag = false;
    // SAFETY: `env` and `raw` come from a live `Unknown` on the JS thread; every napi call
    // below only reads type information or the backing store's address and length, and
    // the resulting slice is tied to the `Unknown`'s lifetime (one native call).
    unsafe {
        if sys::napi_is_typedarray(env, raw, &mut flag) == sys::Status::napi_ok && flag {
            let mut kind = 0;
            let mut elements: usize = 0;
            let mut buffer = ptr::null_mut();
            let mut offset: usize = 0;
            if sys::napi_get_typedarray_info(
                env,
                raw,
                &mut kind,
                &mut elements,
                &mut data,
                &mut buffer,
                &mut offset,
            ) != sys::Status::napi_ok
            {
                return None;
            }
            length = elements * typed_array_element_size(kind);
        } else if sys::napi_is_dataview(env, raw, &mut flag) == sys::Status::napi_ok && flag {
            let mut buffer = ptr::null_mut();
            let mut offset: usize = 0;
            if sys::napi_get_dataview_info(
                env,
                raw,
                &mut length,
                &mut data,
                &mut buffer,
                &mut offset,
            ) != sys::Status::napi_ok
            {
                return None;
            }
        } else if sys::napi_is_arraybuffer(env, raw, &mut flag) == sys::Status::napi_ok && flag {
            if sys::napi_get_arraybuffer_info(env, raw, &mut data, &mut length)
                != sys::Status::napi_ok
            {
                return None;
            }
        } else {
            return None;
        }
        if length == 0 || data.is_null() {
            return Some(&[]);
        }
        Some(std::slice::from_raw_parts(data as *const u8, length))
    }
}

fn typed_array_element_size(kind: sys::napi_typedarray_type) -> usize {
    match kind {
        sys::TypedarrayType::int8_array
        | sys::TypedarrayType::uint8_array
        | sys::TypedarrayType::uint8_clamped_array => 1,
        sys::TypedarrayType::int16_array | sys::TypedarrayType::uint16_array => 2,
        sys::TypedarrayType::int32_array
        | sys::TypedarrayType::uint32_array
        | sys::TypedarrayType::float32_array => 4,
        _ => 8,
    }
}

/// `ERR_INVALID_ARG_TYPE` in Node's wording: `The "name" argument must be <expected>. Received ...`.
pub fn invalid_type(name: &str, expected: &str, value: &Unknown) -> Failure {
    let noun = if name.contains('.') {
        "property"
    } else {
        "argument"
    };
    Failure::new(
        ErrorCode::InvalidArgType,
        format!(
            "The \"{name}\" {noun} must be {expected}. Received {}",
            describe(value)
        ),
    )
}

/// A short description of a JS value, in the shape of Node's `Received ...` suffix.
pub fn describe(value: &Unknown) -> String {
    match value.get_type() {
        Ok(ValueType::Undefined) => "undefined".into(),
        Ok(ValueType::Null) => "null".into(),
        Ok(ValueType::Object) | Ok(ValueType::Function) => value
            .coerce_to_object()
            .and_then(|object| object.get_named_property::<Unknown>("constructor"))
            .and_then(|constructor| constructor.coerce_to_object())
            .and_then(|constructor| constructor.get_named_property::<String>("name"))
            .map(|name| format!("an instance of {name}"))
            .unwrap_or_else(|_| "an object".into()),
        Ok(ValueType::Symbol) => "type symbol".into(),
        Ok(kind) => {
            let shown = value
                .coerce_to_string()
                .and_then(|s| s.into_utf8())
                .and_then(|s| s.into_owned())
                .unwrap_or_default();
            let suffix = if kind == ValueType::BigInt { "n" } else { "" };
            format!("type {} ({shown}{suffix})", kind.to_string().to_lowercase())
        }
        Err(_) => "an unknown value".into(),
    }
}
