//! JS functions for the hot paths (calls into a guest's exports): a plain napi callback with
//! Rust data the function owns (freed by its finalizer), its arguments read into a buffer on
//! the stack, panics caught and failures thrown as JS errors (`settle`, also used by the
//! export trampoline of `export_function.rs`). This skips napi-rs's closure
//! trampoline and the allocations it makes on every call.

use crate::error::{ErrorCode, Failure, Result};
use napi::{sys, Env, JsError};

/// Arguments read without allocating.
const MAX_INLINE: usize = 8;

/// What a function made by `create` does when JS calls it.
pub trait NativeCall: 'static {
    /// How many arguments `call` reads (missing ones are `undefined`).
    fn wanted(&self) -> usize;

    /// The call: `this`, the first `wanted()` arguments and how many JS passed.
    fn call(
        &self,
        env: sys::napi_env,
        this: sys::napi_value,
        args: &[sys::napi_value],
        count: usize,
    ) -> Result<sys::napi_value>;
}

/// Makes the JS function named `name` that runs `data.call` when called.
pub fn create<T: NativeCall>(env: &Env, name: &str, data: T) -> napi::Result<sys::napi_value> {
    let data = Box::into_raw(Box::new(data));
    let mut function = std::ptr::null_mut();
    // SAFETY: `data` lives until the function is finalized (`release`), which frees it once.
    let status = unsafe {
        sys::napi_create_function(
            env.raw(),
            name.as_ptr().cast(),
            name.len() as isize,
            Some(callback::<T>),
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
                Some(release::<T>),
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
        format!("cannot make the function {name}"),
    ))
}

unsafe extern "C" fn release<T>(
    _env: sys::napi_env,
    data: *mut std::ffi::c_void,
    _hint: *mut std::ffi::c_void,
) {
    // SAFETY: the box `create` leaked for this function, finalized once.
    drop(unsafe { Box::from_raw(data.cast::<T>()) });
}

/// The callback of every function `create` makes with data `T`: reads the arguments onto the
/// stack, runs `T::call`, and throws its failure (or a panic) as a JS error.
unsafe extern "C" fn callback<T: NativeCall>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut argc = MAX_INLINE;
    let mut inline = [std::ptr::null_mut(); MAX_INLINE];
    let mut this = std::ptr::null_mut();
    let mut data = std::ptr::null_mut();
    // SAFETY: the callback's own info; missing arguments are filled with `undefined`.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            inline.as_mut_ptr(),
            &mut this,
            &mut data,
        )
    };
    // SAFETY: `data` is the `T` this function was made with, alive while it is.
    let data = unsafe { &*data.cast::<T>() };
    let wanted = data.wanted();
    let many;
    let args: &[sys::napi_value] = if wanted <= MAX_INLINE {
        &inline[..wanted]
    } else {
        // SAFETY: the callback's own info.
        many = unsafe { arguments(env, info, wanted) };
        &many
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        data.call(env, this, args, argc)
    }));
    // SAFETY: the callback's own environment.
    unsafe { settle(env, outcome) }
}

/// The first `count` arguments of a call (missing ones `undefined`), for calls with more than
/// fit on the stack.
///
/// # Safety
/// `env` and `info` are the callback's own.
pub unsafe fn arguments(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    count: usize,
) -> Vec<sys::napi_value> {
    let mut read = count;
    let mut args = vec![std::ptr::null_mut(); count];
    // SAFETY: the callback's info, with room for `count` arguments.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut read,
            args.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    args
}

/// The value a native callback returns for `outcome`: the value, or null after throwing its
/// failure (or a panic, caught) as a JS error.
///
/// # Safety
/// `env` is the environment of the callback that is returning.
pub unsafe fn settle(
    env: sys::napi_env,
    outcome: std::thread::Result<Result<sys::napi_value>>,
) -> sys::napi_value {
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
