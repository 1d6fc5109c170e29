//! The fast lane of component values: a signature whose parameters and results are all
//! booleans and numbers (`bool`, `s8` to `u32`, `f32`, `f64`) converts straight between napi
//! values and `Val`s, with exactly `component_values.rs`'s rules. Any value the lane does not
//! take (a wrong type, an out-of-range number) goes to `from_js`, which accepts or reports it
//! as every other call does.

use napi::sys;
use wasmtime::component::{Type, Val};

/// Whether `ty` is one the lane converts.
pub fn is_scalar(ty: &Type) -> bool {
    matches!(
        ty,
        Type::Bool
            | Type::S8
            | Type::U8
            | Type::S16
            | Type::U16
            | Type::S32
            | Type::U32
            | Type::Float32
            | Type::Float64
    )
}

/// The `Val` of type `ty` (one `is_scalar` takes) that `value` converts to, or `None` when
/// it does not convert exactly (`from_js` then says why).
///
/// # Safety
/// `value` is a live handle of `env`'s current scope, on its thread.
pub unsafe fn from_napi(env: sys::napi_env, value: sys::napi_value, ty: &Type) -> Option<Val> {
    if let Type::Bool = ty {
        let mut b = false;
        // SAFETY: per this function's contract; a non-boolean fails with a status.
        let status = unsafe { sys::napi_get_value_bool(env, value, &mut b) };
        return (status == sys::Status::napi_ok).then_some(Val::Bool(b));
    }
    let mut n = 0f64;
    // SAFETY: as above; a non-number fails with a status.
    if unsafe { sys::napi_get_value_double(env, value, &mut n) } != sys::Status::napi_ok {
        return None;
    }
    // An integer type takes a number only if it is exactly one of the type's values: Rust's
    // saturating casts change any other (a fraction, NaN, one out of range).
    macro_rules! exact {
        ($int:ty) => {{
            let i = n as $int;
            (i as f64 == n).then_some(i)?
        }};
    }
    Some(match ty {
        Type::S8 => Val::S8(exact!(i8)),
        Type::U8 => Val::U8(exact!(u8)),
        Type::S16 => Val::S16(exact!(i16)),
        Type::U16 => Val::U16(exact!(u16)),
        Type::S32 => Val::S32(exact!(i32)),
        Type::U32 => Val::U32(exact!(u32)),
        Type::Float32 => Val::Float32(n as f32),
        Type::Float64 => Val::Float64(n),
        _ => return None,
    })
}

/// The JS value of `val`, a result of a type `is_scalar` takes; `None` for any other.
///
/// # Safety
/// On `env`'s thread, inside a callback scope.
pub unsafe fn to_napi(env: sys::napi_env, val: &Val) -> Option<sys::napi_value> {
    let mut out = std::ptr::null_mut();
    // SAFETY (each call): per this function's contract.
    let status = unsafe {
        match *val {
            Val::Bool(b) => sys::napi_get_boolean(env, b, &mut out),
            Val::S8(n) => sys::napi_create_int32(env, n.into(), &mut out),
            Val::U8(n) => sys::napi_create_int32(env, n.into(), &mut out),
            Val::S16(n) => sys::napi_create_int32(env, n.into(), &mut out),
            Val::U16(n) => sys::napi_create_int32(env, n.into(), &mut out),
            Val::S32(n) => sys::napi_create_int32(env, n, &mut out),
            Val::U32(n) => sys::napi_create_uint32(env, n, &mut out),
            Val::Float32(n) => sys::napi_create_double(env, n.into(), &mut out),
            Val::Float64(n) => sys::napi_create_double(env, n, &mut out),
            _ => return None,
        }
    };
    (status == sys::Status::napi_ok).then_some(out)
}
