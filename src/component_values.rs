//! Component-model values to and from JS, for calling a component's exports: numbers and
//! BigInts (64-bit), strings, arrays (`Uint8Array` for `list<u8>`), plain objects for records
//! and flags, `{ tag, val }` for variants and results, `undefined`/`null` for `none`, JS
//! objects for resources (through `component_resources.rs`).

use crate::component_resources::{GuestOut, ResourceCx, SendRef};
use crate::error::{ErrorCode, Failure, Result};
use napi::bindgen_prelude::{
    Array, BigInt, JsObjectValue, Object, ToNapiValue, Uint8Array, Unknown,
};
use napi::{sys, Env, JsValue, ValueType};
use wasmtime::component::{Type, Val};

fn wrong_type(path: &str, expected: &str) -> Failure {
    Failure::new(
        ErrorCode::InvalidArgType,
        format!("{path} must be {expected}"),
    )
}

fn out_of_range(path: &str, expected: &str, value: impl std::fmt::Display) -> Failure {
    Failure::new(
        ErrorCode::OutOfRange,
        format!("{path} must be {expected}. Received {value}"),
    )
}

/// Converts the JS value at `path` (for messages, e.g. `argument 0.name`) to a `ty` value.
pub fn from_js(value: &Unknown, ty: &Type, path: &str, cx: &mut ResourceCx) -> Result<Val> {
    let kind = value.get_type().map_err(|_| wrong_type(path, "a value"))?;
    // SAFETY (every `cast` below): `kind` was checked to be the JS type cast to.
    let integer = |min: f64, max: f64, name: &str| -> Result<f64> {
        if kind != ValueType::Number {
            return Err(wrong_type(path, &format!("a number ({name})")));
        }
        let n = unsafe { value.cast::<f64>() }.map_err(|_| wrong_type(path, "a number"))?;
        if n.fract() != 0.0 || !(min..=max).contains(&n) {
            return Err(out_of_range(
                path,
                &format!("an integer from {min} to {max} ({name})"),
                n,
            ));
        }
        Ok(n)
    };
    let float = || -> Result<f64> {
        if kind != ValueType::Number {
            return Err(wrong_type(path, "a number"));
        }
        unsafe { value.cast::<f64>() }.map_err(|_| wrong_type(path, "a number"))
    };
    let bigint = |name: &str| -> Result<BigInt> {
        if kind != ValueType::BigInt {
            return Err(wrong_type(path, &format!("a BigInt ({name})")));
        }
        unsafe { value.cast::<BigInt>() }.map_err(|_| wrong_type(path, "a BigInt"))
    };
    let string = || -> Result<String> {
        if kind != ValueType::String {
            return Err(wrong_type(path, "a string"));
        }
        unsafe { value.cast::<String>() }.map_err(|_| wrong_type(path, "a string"))
    };
    let object = |expected: &str| -> Result<Object> {
        if kind != ValueType::Object {
            return Err(wrong_type(path, expected));
        }
        unsafe { value.cast::<Object>() }.map_err(|_| wrong_type(path, expected))
    };
    let array = |expected: &str| -> Result<Vec<Unknown>> {
        if kind != ValueType::Object || !value.is_array().unwrap_or(false) {
            return Err(wrong_type(path, expected));
        }
        let array = unsafe { value.cast::<Array>() }.map_err(|_| wrong_type(path, expected))?;
        (0..array.len())
            .map(|i| {
                array
                    .get::<Unknown>(i)
                    .map_err(|_| wrong_type(path, expected))
                    .map(|v| v.expect("index < length"))
            })
            .collect()
    };
    let property = |object: &Object, name: &str| -> Result<Unknown> {
        object
            .get_named_property::<Unknown>(name)
            .map_err(|_| wrong_type(&format!("{path}.{name}"), "readable"))
    };
    Ok(match ty {
        Type::Bool => {
            if kind != ValueType::Boolean {
                return Err(wrong_type(path, "a boolean"));
            }
            Val::Bool(unsafe { value.cast::<bool>() }.map_err(|_| wrong_type(path, "a boolean"))?)
        }
        Type::S8 => Val::S8(integer(i8::MIN as f64, i8::MAX as f64, "s8")? as i8),
        Type::U8 => Val::U8(integer(0.0, u8::MAX as f64, "u8")? as u8),
        Type::S16 => Val::S16(integer(i16::MIN as f64, i16::MAX as f64, "s16")? as i16),
        Type::U16 => Val::U16(integer(0.0, u16::MAX as f64, "u16")? as u16),
        Type::S32 => Val::S32(integer(i32::MIN as f64, i32::MAX as f64, "s32")? as i32),
        Type::U32 => Val::U32(integer(0.0, u32::MAX as f64, "u32")? as u32),
        Type::S64 => {
            let (n, lossless) = bigint("s64")?.get_i64();
            if !lossless {
                return Err(out_of_range(
                    path,
                    "a BigInt that fits in s64",
                    "a larger BigInt",
                ));
            }
            Val::S64(n)
        }
        Type::U64 => {
            let (signed, n, lossless) = bigint("u64")?.get_u64();
            if signed || !lossless {
                return Err(out_of_range(
                    path,
                    "a BigInt that fits in u64",
                    "another BigInt",
                ));
            }
            Val::U64(n)
        }
        Type::Float32 => Val::Float32(float()? as f32),
        Type::Float64 => Val::Float64(float()?),
        Type::Char => {
            let s = string()?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => {
                    return Err(out_of_range(
                        path,
                        "a string of one character",
                        format!("{s:?}"),
                    ))
                }
            }
        }
        Type::String => Val::String(string()?),
        Type::List(list) => {
            let element = list.ty();
            if matches!(element, Type::U8) && value.is_typedarray().unwrap_or(false) {
                let bytes = unsafe { value.cast::<Uint8Array>() }
                    .map_err(|_| wrong_type(path, "a Uint8Array or an array"))?;
                Val::List(bytes.iter().map(|b| Val::U8(*b)).collect())
            } else {
                let items = array("an array")?;
                Val::List(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| from_js(item, &element, &format!("{path}[{i}]"), cx))
                        .collect::<Result<_>>()?,
                )
            }
        }
        Type::Tuple(tuple) => {
            let items = array("an array (a tuple)")?;
            let types: Vec<Type> = tuple.types().collect();
            if items.len() != types.len() {
                return Err(wrong_type(
                    path,
                    &format!("an array of {} items", types.len()),
                ));
            }
            Val::Tuple(
                items
                    .iter()
                    .zip(&types)
                    .enumerate()
                    .map(|(i, (item, ty))| from_js(item, ty, &format!("{path}[{i}]"), cx))
                    .collect::<Result<_>>()?,
            )
        }
        Type::Record(record) => {
            let object = object("an object (a record)")?;
            let mut fields = Vec::new();
            for field in record.fields() {
                let item = property(&object, field.name)?;
                let val = from_js(&item, &field.ty, &format!("{path}.{}", field.name), cx)?;
                fields.push((field.name.to_string(), val));
            }
            Val::Record(fields)
        }
        Type::Flags(flags) => {
            let object = object("an object of booleans (flags)")?;
            let mut set = Vec::new();
            for name in flags.names() {
                let item = property(&object, name)?;
                let on = match item.get_type() {
                    Ok(ValueType::Undefined) => false,
                    Ok(ValueType::Boolean) => unsafe { item.cast::<bool>() }.unwrap_or(false),
                    _ => return Err(wrong_type(&format!("{path}.{name}"), "a boolean")),
                };
                if on {
                    set.push(name.to_string());
                }
            }
            Val::Flags(set)
        }
        Type::Enum(cases) => {
            let name = string()?;
            if !cases.names().any(|case| case == name) {
                let names: Vec<&str> = cases.names().collect();
                return Err(out_of_range(
                    path,
                    &format!("one of {names:?}"),
                    format!("{name:?}"),
                ));
            }
            Val::Enum(name)
        }
        Type::Option(option) => match kind {
            ValueType::Undefined | ValueType::Null => Val::Option(None),
            _ => Val::Option(Some(Box::new(from_js(value, &option.ty(), path, cx)?))),
        },
        Type::Variant(variant) => {
            let (tag, payload) = tagged(&object("an object { tag, val }")?, path)?;
            let case = variant
                .cases()
                .find(|case| case.name == tag)
                .ok_or_else(|| {
                    let names: Vec<&str> = variant.cases().map(|case| case.name).collect();
                    out_of_range(
                        &format!("{path}.tag"),
                        &format!("one of {names:?}"),
                        format!("{tag:?}"),
                    )
                })?;
            let payload = payload_from_js(&payload, case.ty.as_ref(), path, cx)?;
            Val::Variant(tag, payload)
        }
        Type::Result(result) => {
            let (tag, payload) = tagged(&object("an object { tag, val }")?, path)?;
            match tag.as_str() {
                "ok" => Val::Result(Ok(payload_from_js(
                    &payload,
                    result.ok().as_ref(),
                    path,
                    cx,
                )?)),
                "err" => Val::Result(Err(payload_from_js(
                    &payload,
                    result.err().as_ref(),
                    path,
                    cx,
                )?)),
                _ => {
                    return Err(out_of_range(
                        &format!("{path}.tag"),
                        "'ok' or 'err'",
                        format!("{tag:?}"),
                    ))
                }
            }
        }
        Type::Own(_) | Type::Borrow(_) => cx.resource_from_js(value, ty, path)?,
        _ => return Err(unsupported(path)),
    })
}

fn unsupported(path: &str) -> Failure {
    Failure::new(
        ErrorCode::InvalidArgType,
        format!(
            "{path} has a type JS cannot pass to or receive from a component here \
             (maps, fixed-length lists, streams, futures and error contexts are not \
             supported)"
        ),
    )
}

/// `{ tag, val }` of a variant or result.
fn tagged<'env>(object: &Object<'env>, path: &str) -> Result<(String, Unknown<'env>)> {
    let tag = object
        .get_named_property::<Unknown>("tag")
        .ok()
        .filter(|tag| tag.get_type().ok() == Some(ValueType::String))
        // SAFETY: checked to be a string just above.
        .and_then(|tag| unsafe { tag.cast::<String>() }.ok())
        .ok_or_else(|| wrong_type(&format!("{path}.tag"), "a string"))?;
    let payload = object
        .get_named_property::<Unknown>("val")
        .map_err(|_| wrong_type(&format!("{path}.val"), "readable"))?;
    Ok((tag, payload))
}

fn payload_from_js(
    value: &Unknown,
    ty: Option<&Type>,
    path: &str,
    cx: &mut ResourceCx,
) -> Result<Option<Box<Val>>> {
    ty.map(|ty| from_js(value, ty, &format!("{path}.val"), cx).map(Box::new))
        .transpose()
}

/// A component value on its way to JS.
pub enum JsOut {
    Undefined,
    Bool(bool),
    Number(f64),
    BigInt(BigInt),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<JsOut>),
    Object(Vec<(String, JsOut)>),
    /// A host resource's JS object (its reference released once read, if JS now owns it).
    Host {
        reference: SendRef,
        release: bool,
    },
    /// A guest resource: a new object of its exported class.
    Guest(GuestOut),
}

/// Converts a value of type `ty` that a component returned (`path` for messages).
pub fn to_js(val: Val, ty: &Type, path: &str, cx: &mut ResourceCx) -> Result<JsOut> {
    let tagged = |tag: String, val: JsOut| {
        JsOut::Object(vec![
            ("tag".into(), JsOut::String(tag)),
            ("val".into(), val),
        ])
    };
    Ok(match (val, ty) {
        (Val::Bool(b), _) => JsOut::Bool(b),
        (Val::S8(n), _) => JsOut::Number(n.into()),
        (Val::U8(n), _) => JsOut::Number(n.into()),
        (Val::S16(n), _) => JsOut::Number(n.into()),
        (Val::U16(n), _) => JsOut::Number(n.into()),
        (Val::S32(n), _) => JsOut::Number(n.into()),
        (Val::U32(n), _) => JsOut::Number(n.into()),
        (Val::S64(n), _) => JsOut::BigInt(n.into()),
        (Val::U64(n), _) => JsOut::BigInt(n.into()),
        (Val::Float32(n), _) => JsOut::Number(n.into()),
        (Val::Float64(n), _) => JsOut::Number(n),
        (Val::Char(c), _) => JsOut::String(c.to_string()),
        (Val::String(s), _) => JsOut::String(s),
        (Val::List(items), Type::List(list)) if matches!(list.ty(), Type::U8) => JsOut::Bytes(
            items
                .into_iter()
                .map(|item| if let Val::U8(b) = item { b } else { 0 })
                .collect(),
        ),
        (Val::List(items), Type::List(list)) => {
            let element = list.ty();
            JsOut::Array(
                items
                    .into_iter()
                    .map(|item| to_js(item, &element, path, cx))
                    .collect::<Result<_>>()?,
            )
        }
        (Val::Tuple(items), Type::Tuple(tuple)) => JsOut::Array(
            items
                .into_iter()
                .zip(tuple.types())
                .map(|(item, ty)| to_js(item, &ty, path, cx))
                .collect::<Result<_>>()?,
        ),
        (Val::Record(fields), Type::Record(record)) => JsOut::Object(
            fields
                .into_iter()
                .zip(record.fields())
                .map(|((name, val), field)| Ok((name, to_js(val, &field.ty, path, cx)?)))
                .collect::<Result<_>>()?,
        ),
        (Val::Flags(set), Type::Flags(flags)) => JsOut::Object(
            flags
                .names()
                .map(|name| {
                    (
                        name.to_string(),
                        JsOut::Bool(set.iter().any(|on| on == name)),
                    )
                })
                .collect(),
        ),
        (Val::Enum(name), _) => JsOut::String(name),
        (Val::Option(None), _) => JsOut::Undefined,
        (Val::Option(Some(val)), Type::Option(option)) => to_js(*val, &option.ty(), path, cx)?,
        (Val::Variant(tag, val), Type::Variant(variant)) => {
            let case_ty = variant
                .cases()
                .find(|case| case.name == tag)
                .and_then(|case| case.ty);
            tagged(tag, payload_to_js(val, case_ty, path, cx)?)
        }
        (Val::Result(Ok(val)), Type::Result(result)) => {
            tagged("ok".into(), payload_to_js(val, result.ok(), path, cx)?)
        }
        (Val::Result(Err(val)), Type::Result(result)) => {
            tagged("err".into(), payload_to_js(val, result.err(), path, cx)?)
        }
        (Val::Resource(any), _) => cx.resource_to_js(any, path)?,
        _ => return Err(unsupported(path)),
    })
}

fn payload_to_js(
    val: Option<Box<Val>>,
    ty: Option<Type>,
    path: &str,
    cx: &mut ResourceCx,
) -> Result<JsOut> {
    match (val, ty) {
        (Some(val), Some(ty)) => to_js(*val, &ty, path, cx),
        _ => Ok(JsOut::Undefined),
    }
}

impl ToNapiValue for JsOut {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        match value {
            JsOut::Undefined => <()>::to_napi_value(env, ()),
            JsOut::Bool(b) => bool::to_napi_value(env, b),
            JsOut::Number(n) => f64::to_napi_value(env, n),
            JsOut::BigInt(n) => BigInt::to_napi_value(env, n),
            JsOut::String(s) => String::to_napi_value(env, s),
            JsOut::Bytes(bytes) => Uint8Array::to_napi_value(env, Uint8Array::new(bytes)),
            JsOut::Array(items) => Vec::<JsOut>::to_napi_value(env, items),
            JsOut::Object(fields) => {
                let env = Env::from_raw(env);
                let mut object = Object::new(&env)?;
                for (name, value) in fields {
                    object.set_named_property(&name, value)?;
                }
                Ok(object.raw())
            }
            JsOut::Host { reference, release } => {
                let mut value = std::ptr::null_mut();
                // SAFETY: a reference of this thread's host objects; released once if ours.
                let status = unsafe { sys::napi_get_reference_value(env, reference.0, &mut value) };
                if release {
                    unsafe { sys::napi_delete_reference(env, reference.0) };
                }
                if status != sys::Status::napi_ok {
                    return Err(napi::Error::new(
                        napi::Status::GenericFailure,
                        "a host resource's object cannot be read",
                    ));
                }
                Ok(value)
            }
            JsOut::Guest(out) => out.into_js(env),
        }
    }
}
