//! A core module's exported function as a JS function: a plain napi function whose callback
//! converts the arguments (`wasm_values.rs`, against the signature worked out once), calls
//! the guest without re-checking its type, and converts the results, allocating nothing for
//! up to `MAX_INLINE` values. This is the hot path of every JS -> guest call.

use crate::error::{ErrorCode, Failure, Result};
use crate::instance::Running;
use crate::wasm_values::{self, Num, Refused, Signature};
use napi::{sys, Env, JsError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use wasmtime::{Func, ValRaw};

/// Arguments and results converted without allocating.
const MAX_INLINE: usize = 8;

/// What one export function's callback needs.
pub struct ExportFunction {
    pub running: Arc<Running>,
    pub func: Func,
    pub sig: Signature,
    /// `_start`/`_initialize`: runs at most once per `WASI` object.
    pub is_entry: bool,
}

/// Makes the JS function named `name` for `export`.
pub fn create(env: &Env, name: &str, export: ExportFunction) -> napi::Result<sys::napi_value> {
    let data = Box::into_raw(Box::new(export));
    let mut function = std::ptr::null_mut();
    // SAFETY: `data` lives until the function is finalized (`release`), which frees it once.
    let status = unsafe {
        sys::napi_create_function(
            env.raw(),
            name.as_ptr().cast(),
            name.len() as isize,
            Some(callback),
            data.cast(),
            &mut function,
        )
    };
    if status == sys::Status::napi_ok {
        // SAFETY: as above.
        let status = unsafe {
            sys::napi_add_finalizer(
                env.raw(),
                function,
                data.cast(),
                Some(release),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if status == sys::Status::napi_ok {
            return Ok(function);
        }
    }
    // SAFETY: not handed to a live function, so still ours.
    drop(unsafe { Box::from_raw(data) });
    Err(napi::Error::new(
        napi::Status::GenericFailure,
        format!("cannot make the export function {name}"),
    ))
}

unsafe extern "C" fn release(
    _env: sys::napi_env,
    data: *mut std::ffi::c_void,
    _hint: *mut std::ffi::c_void,
) {
    // SAFETY: the box `create` leaked for this function, finalized once.
    drop(unsafe { Box::from_raw(data.cast::<ExportFunction>()) });
}

unsafe extern "C" fn callback(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut argc = MAX_INLINE;
    let mut inline = [std::ptr::null_mut(); MAX_INLINE];
    let mut data = std::ptr::null_mut();
    // SAFETY: the callback's own info; missing arguments are filled with `undefined`.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            inline.as_mut_ptr(),
            std::ptr::null_mut(),
            &mut data,
        )
    };
    // SAFETY: `data` is the `ExportFunction` this function was made with, alive while it is.
    let export = unsafe { &*data.cast::<ExportFunction>() };
    let wanted = export.sig.params.len();
    let mut many;
    let args: &[sys::napi_value] = if wanted <= MAX_INLINE {
        &inline[..wanted]
    } else {
        let mut count = wanted;
        many = vec![std::ptr::null_mut(); wanted];
        // SAFETY: as above, with room for every parameter.
        unsafe {
            sys::napi_get_cb_info(
                env,
                info,
                &mut count,
                many.as_mut_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        &many
    };
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(env, export, args)));
    let failure = match outcome {
        Ok(Ok(value)) => return value,
        Ok(Err(failure)) => failure,
        Err(_) => Failure::new(
            ErrorCode::WasmTrap,
            "node-wasmtime panicked in an export call (a bug; please report it)",
        ),
    };
    let env_ref = Env::from_raw(env);
    // SAFETY: throwing on the callback's own environment.
    unsafe { JsError::from(failure.into_napi(&env_ref)).throw_into(env) };
    std::ptr::null_mut()
}

fn call(
    env: sys::napi_env,
    export: &ExportFunction,
    args: &[sys::napi_value],
) -> Result<sys::napi_value> {
    if export.is_entry && export.running.started.swap(true, Ordering::SeqCst) {
        return Err(crate::wasi::already_started());
    }
    let sig = &export.sig;
    let mut inline = [ValRaw::i32(0); MAX_INLINE];
    let mut many;
    let slots: &mut [ValRaw] = if sig.slots() <= MAX_INLINE {
        &mut inline[..sig.slots()]
    } else {
        many = vec![ValRaw::i32(0); sig.slots()];
        &mut many
    };
    for (i, (arg, num)) in args.iter().zip(sig.params.iter()).enumerate() {
        slots[i] = wasm_values::from_js(env, *arg, *num).map_err(|refused| match refused {
            Refused::Thrown(thrown) => Failure::rethrow(Arc::new(thrown)),
            Refused::NotBigInt(kind) => Failure::new(
                ErrorCode::InvalidArgType,
                format!("argument {i} must be a BigInt (the parameter is i64). Received a {kind}"),
            ),
        })?;
    }
    let env_ref = Env::from_raw(env);
    // SAFETY: `slots` holds parameters of exactly `func`'s parameter types (`sig` was worked
    // out from its type), numbers only, and is long enough for its results.
    unsafe { export.running.call_raw(&env_ref, export.func, slots) }?;
    let results = &sig.results;
    let convert = |raw: &ValRaw, num: Num| {
        wasm_values::to_js(env, raw, num).map_err(|thrown| Failure::rethrow(Arc::new(thrown)))
    };
    match results.len() {
        0 => {
            let mut undefined = std::ptr::null_mut();
            // SAFETY: a plain value on this thread.
            unsafe { sys::napi_get_undefined(env, &mut undefined) };
            Ok(undefined)
        }
        1 => convert(&slots[0], results[0]),
        count => {
            let mut array = std::ptr::null_mut();
            // SAFETY: a new array on this thread, filled with values of this scope.
            unsafe { sys::napi_create_array_with_length(env, count, &mut array) };
            for (i, num) in results.iter().enumerate() {
                let value = convert(&slots[i], *num)?;
                unsafe { sys::napi_set_element(env, array, i as u32, value) };
            }
            Ok(array)
        }
    }
}
