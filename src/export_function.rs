//! A core module's exported function as a JS function (`native_function.rs`) whose callback
//! converts the arguments (`wasm_values.rs`, against the signature worked out once), calls
//! the guest without re-checking its type, and converts the results, allocating nothing for
//! up to `MAX_INLINE` values. This is the hot path of every JS -> guest call.

use crate::error::{ErrorCode, Failure, Result};
use crate::instance::Running;
use crate::native_function::{self, NativeCall};
use crate::wasm_values::{self, Num, Refused, Signature};
use napi::{sys, Env};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use wasmtime::{Func, ValRaw};

/// Parameter and result slots held without allocating.
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
    native_function::create(env, name, export)
}

impl NativeCall for ExportFunction {
    fn wanted(&self) -> usize {
        self.sig.params.len()
    }

    fn call(
        &self,
        env: sys::napi_env,
        _this: sys::napi_value,
        args: &[sys::napi_value],
        _count: usize,
    ) -> Result<sys::napi_value> {
        call(env, self, args)
    }
}

fn call(
    env: sys::napi_env,
    export: &ExportFunction,
    args: &[sys::napi_value],
) -> Result<sys::napi_value> {
    if export.is_entry {
        export.running.not_disposed()?;
        if export.running.started.swap(true, Ordering::SeqCst) {
            return Err(crate::wasi::already_started());
        }
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
