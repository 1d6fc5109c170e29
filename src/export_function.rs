//! A core module's exported function as a JS function whose callback converts the arguments
//! (`wasm_values.rs`, against the signature worked out once), calls the guest without
//! re-checking its type, and converts the results, allocating nothing for up to `MAX_INLINE`
//! values. This is the hot path of every JS -> guest call.
//!
//! An instance's exports are one native function, the trampoline, bound in JS to the
//! instance's handle and the export's index (`bound`): a bound function is a plain JS object,
//! where a native function per export would be a Node-API object whose memory Node 20 gives
//! back only when the event loop turns (a loop reading `instance.exports` without yielding
//! grew by about 1.9 KB per instance; a native function per export with no data to free still
//! kept about 350 bytes, Node's own bookkeeping of it). A call costs a few nanoseconds more
//! than through a function of its own (bench (i)). Its bound `this` is the JS `Instance`, so the instance
//! is not forgotten while one of its functions is reachable. A table's functions
//! (`table.get`) are still native functions of their own (`create`).

use crate::error::{ErrorCode, Failure, Result};
use crate::instance::Running;
use crate::instance_handles;
use crate::native_function::{self, NativeCall};
use crate::wasm_values::{self, Num, Refused, Signature};
use napi::bindgen_prelude::Unknown;
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

/// Internal: the trampoline (`lib/instance.js` makes one per thread and passes it to
/// `instanceExports`); called as `trampoline.bind(instance, handle, index)(...args)`.
#[napi(catch_unwind, ts_return_type = "Function")]
pub fn export_trampoline(env: &Env) -> napi::Result<Unknown<'_>> {
    let name = "exportTrampoline";
    let mut function = std::ptr::null_mut();
    // SAFETY: a function with no data, on this thread.
    let status = unsafe {
        sys::napi_create_function(
            env.raw(),
            name.as_ptr().cast(),
            name.len() as isize,
            Some(trampoline),
            std::ptr::null_mut(),
            &mut function,
        )
    };
    napi_ok(status, "cannot make the export trampoline")?;
    // SAFETY: the function just made.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), function) })
}

/// The export function JS calls for the export `index` of the instance `handle` (the
/// `instance` object), named `name`: `trampoline.bind(instance, handle, index)`.
pub fn bound(
    env: &Env,
    trampoline: sys::napi_value,
    instance: sys::napi_value,
    handle: i64,
    index: u32,
    name: &str,
) -> napi::Result<sys::napi_value> {
    let env = env.raw();
    let mut bind = std::ptr::null_mut();
    let mut args = [instance, std::ptr::null_mut(), std::ptr::null_mut()];
    let mut function = std::ptr::null_mut();
    let mut name_value = std::ptr::null_mut();
    // SAFETY: values of this scope on this thread; `bind` is `Function.prototype.bind`
    // (the trampoline is ours and has no own `bind`).
    unsafe {
        napi_ok(
            sys::napi_get_named_property(env, trampoline, c"bind".as_ptr(), &mut bind),
            "cannot read Function.prototype.bind",
        )?;
        sys::napi_create_int64(env, handle, &mut args[1]);
        sys::napi_create_uint32(env, index, &mut args[2]);
        napi_ok(
            sys::napi_call_function(env, trampoline, bind, 3, args.as_ptr(), &mut function),
            "cannot bind an export function",
        )?;
        sys::napi_create_string_utf8(
            env,
            name.as_ptr().cast(),
            name.len() as isize,
            &mut name_value,
        );
        // A bound function's `name` is `bound exportTrampoline`; the export's own name, as
        // before (configurable, not writable or enumerable, like any function's).
        let descriptor = sys::napi_property_descriptor {
            utf8name: c"name".as_ptr(),
            name: std::ptr::null_mut(),
            method: None,
            getter: None,
            setter: None,
            value: name_value,
            attributes: sys::PropertyAttributes::configurable,
            data: std::ptr::null_mut(),
        };
        napi_ok(
            sys::napi_define_properties(env, function, 1, &descriptor),
            "cannot name an export function",
        )?;
    }
    Ok(function)
}

fn napi_ok(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        return Ok(());
    }
    Err(napi::Error::new(napi::Status::GenericFailure, what))
}

/// The trampoline's callback: `this` is the instance (ignored), then its handle and the
/// export's index (bound), then the call's own arguments.
unsafe extern "C" fn trampoline(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    const LEAD: usize = 2;
    let mut argc = LEAD + MAX_INLINE;
    let mut inline = [std::ptr::null_mut(); LEAD + MAX_INLINE];
    // SAFETY: the callback's own info; missing arguments are filled with `undefined`.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            inline.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut handle = 0;
        let mut index = 0;
        // SAFETY: the bound numbers (`bound`), read on this thread.
        unsafe {
            sys::napi_get_value_int64(env, inline[0], &mut handle);
            sys::napi_get_value_uint32(env, inline[1], &mut index);
        }
        let instance = instance_handles::get(handle)?;
        let export = instance.function(index)?;
        let wanted = export.sig.params.len();
        if wanted <= MAX_INLINE {
            return call(env, export, &inline[LEAD..LEAD + wanted]);
        }
        // SAFETY: the callback's own info.
        let many = unsafe { native_function::arguments(env, info, LEAD + wanted) };
        call(env, export, &many[LEAD..])
    }));
    // SAFETY: the callback's own environment.
    unsafe { native_function::settle(env, outcome) }
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
