//! Core wasm numbers to and from JS values, as the WebAssembly JS API converts them (ToInt32,
//! ToBigInt64, ToNumber; i64 as BigInt), on raw napi handles and `ValRaw`s: the hot paths of
//! export calls and host calls convert here, against a signature worked out once per function.

use crate::error::Thrown;
use crate::instance::to_int32;
use napi::sys;
use wasmtime::{FuncType, Val, ValRaw, ValType};

/// A core wasm number type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Num {
    I32,
    I64,
    F32,
    F64,
}

impl Num {
    pub fn of(ty: &ValType) -> Option<Num> {
        match ty {
            ValType::I32 => Some(Num::I32),
            ValType::I64 => Some(Num::I64),
            ValType::F32 => Some(Num::F32),
            ValType::F64 => Some(Num::F64),
            _ => None,
        }
    }
}

/// A function type made only of numbers, worked out once.
#[derive(Clone, Debug)]
pub struct Signature {
    pub params: Box<[Num]>,
    pub results: Box<[Num]>,
}

impl Signature {
    /// `None` when the type has v128 or reference parameters or results.
    pub fn of(ty: &FuncType) -> Option<Signature> {
        Some(Signature {
            params: ty.params().map(|t| Num::of(&t)).collect::<Option<_>>()?,
            results: ty.results().map(|t| Num::of(&t)).collect::<Option<_>>()?,
        })
    }

    /// The length of the `ValRaw` array a call needs (parameters in, results out).
    pub fn slots(&self) -> usize {
        self.params.len().max(self.results.len())
    }
}

/// Why a JS value did not convert.
pub enum Refused {
    /// JS code ran and threw (a `valueOf`, ToNumber of a BigInt or a Symbol, a bad BigInt
    /// string): that exception, as is.
    Thrown(Thrown),
    /// Not convertible to an i64 (a number, undefined, an object): the JS type it was.
    NotBigInt(&'static str),
}

/// A JS value as a wasm number of type `num`.
pub fn from_js(env: sys::napi_env, value: sys::napi_value, num: Num) -> Result<ValRaw, Refused> {
    Ok(match num {
        Num::I32 => {
            let mut n = 0i32;
            // SAFETY (every napi call here): plain queries on live handles of this thread.
            // For a number this is ToInt32 (NaN and infinities are 0, the rest wraps).
            if unsafe { sys::napi_get_value_int32(env, value, &mut n) } != sys::Status::napi_ok {
                n = to_int32(to_number(env, value)?);
            }
            ValRaw::i32(n)
        }
        Num::F32 => ValRaw::f32((number(env, value)? as f32).to_bits()),
        Num::F64 => ValRaw::f64(number(env, value)?.to_bits()),
        Num::I64 => ValRaw::i64(to_big_int64(env, value)?),
    })
}

/// A wasm number as a JS value: a number, or a BigInt for i64.
pub fn to_js(env: sys::napi_env, raw: &ValRaw, num: Num) -> Result<sys::napi_value, Thrown> {
    let mut out = std::ptr::null_mut();
    // SAFETY: plain value constructors on this thread.
    let status = unsafe {
        match num {
            Num::I32 => sys::napi_create_int32(env, raw.get_i32(), &mut out),
            Num::I64 => sys::napi_create_bigint_int64(env, raw.get_i64(), &mut out),
            Num::F32 => {
                sys::napi_create_double(env, f32::from_bits(raw.get_f32()) as f64, &mut out)
            }
            Num::F64 => sys::napi_create_double(env, f64::from_bits(raw.get_f64()), &mut out),
        }
    };
    check(env, status).map(|()| out)
}

/// A raw number as a `Val` (which can cross threads).
pub fn to_val(raw: &ValRaw, num: Num) -> Val {
    match num {
        Num::I32 => Val::I32(raw.get_i32()),
        Num::I64 => Val::I64(raw.get_i64()),
        Num::F32 => Val::F32(raw.get_f32()),
        Num::F64 => Val::F64(raw.get_f64()),
    }
}

/// A numeric `Val` as a raw number (anything else, which signatures exclude, is 0).
pub fn to_raw(val: &Val) -> ValRaw {
    match val {
        Val::I32(n) => ValRaw::i32(*n),
        Val::I64(n) => ValRaw::i64(*n),
        Val::F32(bits) => ValRaw::f32(*bits),
        Val::F64(bits) => ValRaw::f64(*bits),
        _ => ValRaw::i32(0),
    }
}

/// ToNumber, with a fast path for numbers.
fn number(env: sys::napi_env, value: sys::napi_value) -> Result<f64, Refused> {
    let mut n = 0.0;
    // SAFETY: a plain query on a live handle of this thread.
    if unsafe { sys::napi_get_value_double(env, value, &mut n) } == sys::Status::napi_ok {
        return Ok(n);
    }
    to_number(env, value)
}

/// ToNumber (which throws a TypeError for a BigInt or a Symbol, as V8 does).
fn to_number(env: sys::napi_env, value: sys::napi_value) -> Result<f64, Refused> {
    let mut coerced = std::ptr::null_mut();
    let mut n = 0.0;
    // SAFETY: plain napi calls on live handles of this thread.
    check(env, unsafe {
        sys::napi_coerce_to_number(env, value, &mut coerced)
    })
    .map_err(Refused::Thrown)?;
    check(env, unsafe {
        sys::napi_get_value_double(env, coerced, &mut n)
    })
    .map_err(Refused::Thrown)?;
    Ok(n)
}

/// ToBigInt64: a BigInt (wrapped modulo 2^64), a boolean or a string of digits (a bad string
/// throws V8's `SyntaxError`); anything else is refused.
fn to_big_int64(env: sys::napi_env, value: sys::napi_value) -> Result<i64, Refused> {
    let mut n = 0i64;
    let mut lossless = false;
    // SAFETY (every napi call here): plain queries and calls on live handles of this thread.
    if unsafe { sys::napi_get_value_bigint_int64(env, value, &mut n, &mut lossless) }
        == sys::Status::napi_ok
    {
        return Ok(n);
    }
    let mut kind = 0;
    unsafe { sys::napi_typeof(env, value, &mut kind) };
    if kind != sys::ValueType::napi_boolean && kind != sys::ValueType::napi_string {
        return Err(Refused::NotBigInt(js_type_name(kind)));
    }
    // `BigInt(value)` is ToBigInt for these two types.
    let mut global = std::ptr::null_mut();
    let mut constructor = std::ptr::null_mut();
    let mut converted = std::ptr::null_mut();
    let thrown = Refused::Thrown;
    check(env, unsafe { sys::napi_get_global(env, &mut global) }).map_err(thrown)?;
    check(env, unsafe {
        sys::napi_get_named_property(env, global, c"BigInt".as_ptr(), &mut constructor)
    })
    .map_err(thrown)?;
    check(env, unsafe {
        sys::napi_call_function(env, global, constructor, 1, &value, &mut converted)
    })
    .map_err(thrown)?;
    check(env, unsafe {
        sys::napi_get_value_bigint_int64(env, converted, &mut n, &mut lossless)
    })
    .map_err(thrown)?;
    Ok(n)
}

fn js_type_name(kind: sys::napi_valuetype) -> &'static str {
    match kind {
        sys::ValueType::napi_undefined => "undefined",
        sys::ValueType::napi_null => "null",
        sys::ValueType::napi_number => "number",
        sys::ValueType::napi_symbol => "symbol",
        sys::ValueType::napi_function => "function",
        _ => "object",
    }
}

/// A failed napi call: the exception it left pending, or a `TypeError` saying it failed.
pub fn check(env: sys::napi_env, status: sys::napi_status) -> Result<(), Thrown> {
    if status == sys::Status::napi_ok {
        return Ok(());
    }
    Err(Thrown::take_pending(env).unwrap_or_else(|| type_error(env, "a napi call failed")))
}

/// A new `TypeError` with `message`, held to be thrown.
pub fn type_error(env: sys::napi_env, message: &str) -> Thrown {
    let mut text = std::ptr::null_mut();
    let mut error = std::ptr::null_mut();
    // SAFETY: plain napi calls on this thread.
    unsafe {
        sys::napi_create_string_utf8(
            env,
            message.as_ptr().cast(),
            message.len() as isize,
            &mut text,
        );
        sys::napi_create_type_error(env, std::ptr::null_mut(), text, &mut error);
    }
    Thrown::hold(env, error).expect("a reference to a new error can be made")
}
