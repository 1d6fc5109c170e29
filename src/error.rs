//! The one error type of the addon: `ErrorCode` (the JS `err.code`), `Failure` (plain data that
//! can cross threads), `classify` (the one place a `wasmtime::Error` is judged), and the
//! conversion of a `Failure` into a real JS error object of the right class.

use crate::capture::MaxBufferExceeded;
use crate::engine::ExitProcess;
use crate::js_bytes::JsBytes;
use crate::limits::Stopped;
use napi::bindgen_prelude::{FromNapiValue, Function, JsObjectValue, Object, Unknown};
use napi::{sys, Env, JsValue};
use std::sync::Arc;
use std::thread::ThreadId;
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

/// Every `code` a JS error thrown by this addon can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgType,
    InvalidArgValue,
    OutOfRange,
    WasmCompile,
    WasmDeserialize,
    WasmSerialize,
    WasmLink,
    WasmInstanceLimit,
    WasmInstanceDisposed,
    WasmTrap,
    WasiAlreadyStarted,
    WasiExited,
    WasiTimeout,
    WasiBusy,
    WasiStdioMaxBuffer,
    /// Never reaches JS: the JS thread ends the process (`ExitProcess`).
    ExitProcess,
    Aborted,
    UvwasiEnoent,
    UvwasiEnotdir,
    UvwasiEacces,
    UvwasiEbadf,
    UvwasiEmfile,
    UvwasiEio,
    UvwasiEloop,
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        match self {
            ErrorCode::InvalidArgType => "ERR_INVALID_ARG_TYPE",
            ErrorCode::InvalidArgValue => "ERR_INVALID_ARG_VALUE",
            ErrorCode::OutOfRange => "ERR_OUT_OF_RANGE",
            ErrorCode::WasmCompile => "ERR_WASM_COMPILE",
            ErrorCode::WasmDeserialize => "ERR_WASM_DESERIALIZE",
            ErrorCode::WasmSerialize => "ERR_WASM_SERIALIZE",
            ErrorCode::WasmLink => "ERR_WASM_LINK",
            ErrorCode::WasmInstanceLimit => "ERR_WASM_INSTANCE_LIMIT",
            ErrorCode::WasmInstanceDisposed => "ERR_WASM_INSTANCE_DISPOSED",
            ErrorCode::WasmTrap => "ERR_WASM_TRAP",
            ErrorCode::WasiAlreadyStarted => "ERR_WASI_ALREADY_STARTED",
            ErrorCode::WasiExited => "ERR_WASI_EXITED",
            ErrorCode::WasiTimeout => "ERR_WASI_TIMEOUT",
            ErrorCode::WasiBusy => "ERR_WASI_BUSY",
            ErrorCode::WasiStdioMaxBuffer => "ERR_WASI_STDIO_MAXBUFFER",
            ErrorCode::ExitProcess => "ERR_WASI_EXITED",
            // The JS layer turns it into Node's `AbortError`.
            ErrorCode::Aborted => "ABORT_ERR",
            ErrorCode::UvwasiEnoent => "UVWASI_ENOENT",
            ErrorCode::UvwasiEnotdir => "UVWASI_ENOTDIR",
            ErrorCode::UvwasiEacces => "UVWASI_EACCES",
            ErrorCode::UvwasiEbadf => "UVWASI_EBADF",
            ErrorCode::UvwasiEmfile => "UVWASI_EMFILE",
            ErrorCode::UvwasiEloop => "UVWASI_ELOOP",
            ErrorCode::UvwasiEio => "UVWASI_EIO",
        }
    }
}

impl ErrorCode {
    /// The JS class an error with this code is an instance of.
    fn class(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgType | ErrorCode::InvalidArgValue => "TypeError",
            // As Node's ERR_CHILD_PROCESS_STDIO_MAXBUFFER.
            ErrorCode::OutOfRange | ErrorCode::WasiStdioMaxBuffer => "RangeError",
            ErrorCode::WasmTrap => "RuntimeError",
            _ => "Error",
        }
    }

    /// The WASI errno Node attaches to its `UVWASI_*` errors.
    fn wasi_errno(self) -> Option<u32> {
        match self {
            ErrorCode::UvwasiEacces => Some(2),
            ErrorCode::UvwasiEbadf => Some(8),
            ErrorCode::UvwasiEio => Some(29),
            ErrorCode::UvwasiEloop => Some(32),
            ErrorCode::UvwasiEmfile => Some(33),
            ErrorCode::UvwasiEnoent => Some(44),
            ErrorCode::UvwasiEnotdir => Some(54),
            _ => None,
        }
    }
}

/// A failure as plain data: built on any thread, turned into a JS error on the main thread.
/// Boxed, so that a `Result` of the hot paths (export and host calls) stays two words.
#[derive(Debug, Clone)]
pub struct Failure(Box<FailureData>);

/// What a `Failure` holds.
#[derive(Debug, Clone)]
pub struct FailureData {
    pub code: ErrorCode,
    pub message: String,
    /// For `ERR_WASM_TRAP`: `unreachable`, `stack_overflow`, `out_of_fuel`, `host_error`, ...
    pub trap_code: Option<String>,
    /// For `ERR_WASI_EXITED`: the code the guest passed to `proc_exit`.
    pub exit_code: Option<i32>,
    /// What a failed run had written to its captured stdout and stderr, kept on the error.
    pub output: Option<(Vec<u8>, Vec<u8>)>,
    /// The run had a memory growth refused by `limits.maxMemory` before it failed.
    pub max_memory_reached: bool,
    /// A value a JS host function threw (or its promise rejected with): it unwound the guest
    /// and reaches the caller as the same value, untouched.
    pub thrown: Option<Arc<Thrown>>,
}

pub type Result<T> = std::result::Result<T, Failure>;

impl std::ops::Deref for Failure {
    type Target = FailureData;
    fn deref(&self) -> &FailureData {
        &self.0
    }
}

impl std::ops::DerefMut for Failure {
    fn deref_mut(&mut self) -> &mut FailureData {
        &mut self.0
    }
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure(Box::new(FailureData {
            code,
            message: message.into(),
            trap_code: None,
            exit_code: None,
            output: None,
            max_memory_reached: false,
            thrown: None,
        }))
    }

    /// This failure of a run whose store refused a memory growth past `limits.maxMemory`
    /// (`refused`): it says so (`maxMemoryReached`, a note in the message). Not a value a
    /// host function threw (passed on untouched), nor an instantiation refused by the cap
    /// (whose message already names it).
    pub fn after_memory_refused(mut self, refused: bool) -> Self {
        if refused && self.thrown.is_none() && self.code != ErrorCode::WasmLink {
            self.max_memory_reached = true;
            self.message.push_str(
                "\n(earlier in this run, limits.maxMemory refused the guest more memory)",
            );
        }
        self
    }

    /// The failure that rethrows `thrown` as it is.
    pub fn rethrow(thrown: Arc<Thrown>) -> Self {
        let mut failure = Failure::new(ErrorCode::WasmTrap, "a host function threw");
        failure.thrown = Some(thrown);
        failure
    }

    /// The message, without the rest.
    pub fn into_message(self) -> String {
        self.0.message
    }

    /// `ERR_WASI_EXITED` with `message`: the guest exited with `code` instead of returning.
    pub fn exited(code: i32, message: impl Into<String>) -> Self {
        let mut failure = Failure::new(ErrorCode::WasiExited, message);
        failure.exit_code = Some(code);
        failure
    }

    /// For a promise to reject with (a `deferred.resolve` callback): like `into_napi`, but a
    /// value a host function threw is handed over as is, whatever its type.
    pub fn into_rejection(self, env: &Env) -> napi::Error {
        if let Some(value) = self.thrown.as_ref().and_then(|thrown| thrown.value(env)) {
            // SAFETY: `value` is a live handle of the current scope on `env`'s thread.
            let unknown = unsafe { Unknown::from_napi_value(env.raw(), value) };
            if let Ok(unknown) = unknown {
                // napi-rs keeps a reference to the value and rejects with it verbatim; it
                // reads `message` on the way, which may throw (a thrown Symbol): clear that.
                let error = napi::Error::from(unknown);
                clear_pending_exception(env);
                return error;
            }
        }
        self.into_napi(env)
    }

    /// Builds the JS error object (a real `TypeError`, `RangeError` or
    /// `WebAssembly.RuntimeError` where the code calls for one) and wraps it for napi to throw
    /// or reject with.
    pub fn into_napi(self, env: &Env) -> napi::Error {
        if let Some(value) = self.thrown.as_ref().and_then(|thrown| thrown.value(env)) {
            // SAFETY: throwing a live value of this scope on `env`'s thread; napi-rs sees the
            // pending exception (and this status) and leaves it as it is.
            unsafe { sys::napi_throw(env.raw(), value) };
            return napi::Error::new(napi::Status::PendingException, "a host function threw");
        }
        match self.to_js(env) {
            Ok(value) => napi::Error::from(value),
            Err(err) => err,
        }
    }

    fn to_js<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        let global = env.get_global()?;
        let class_name = self.code.class();
        let holder: Object = if class_name == "RuntimeError" {
            global.get_named_property("WebAssembly")?
        } else {
            global.coerce_to_object()?
        };
        let constructor: Function<String, Unknown> = holder.get_named_property(class_name)?;
        let error = constructor.new_instance(self.message.clone())?;
        let mut object = error.coerce_to_object()?;
        object.set_named_property("code", self.code.as_ref())?;
        if let Some(trap_code) = &self.trap_code {
            object.set_named_property("trapCode", trap_code.as_str())?;
        }
        if let Some(exit_code) = self.exit_code {
            object.set_named_property("exitCode", exit_code)?;
        }
        if let Some((stdout, stderr)) = &self.output {
            object.set_named_property("stdout", JsBytes(stdout.clone()))?;
            object.set_named_property("stderr", JsBytes(stderr.clone()))?;
        }
        if self.max_memory_reached {
            object.set_named_property("maxMemoryReached", true)?;
        }
        if let Some(errno) = self.code.wasi_errno() {
            object.set_named_property("errno", errno)?;
            object.set_named_property("syscall", "uvwasi_init")?;
        }
        Ok(error)
    }
}

fn clear_pending_exception(env: &Env) {
    let mut pending = false;
    // SAFETY: plain status queries on `env`'s own thread.
    unsafe {
        sys::napi_is_exception_pending(env.raw(), &mut pending);
        if pending {
            let mut ignored = std::ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env.raw(), &mut ignored);
        }
    }
}

/// A JS value thrown by a host function, held (by a strong reference) until it is rethrown.
/// It is made and read on its JS thread only; dropped elsewhere, the reference is leaked
/// rather than released off-thread (which would corrupt V8's handles).
#[derive(Debug)]
pub struct Thrown {
    env: sys::napi_env,
    reference: sys::napi_ref,
    thread: ThreadId,
}

// SAFETY: the raw handles are only used on `thread` (checked in `value` and `drop`).
unsafe impl Send for Thrown {}
unsafe impl Sync for Thrown {}

impl Thrown {
    /// Takes the exception pending on `env` (after a JS call failed), if there is one.
    pub fn take_pending(env: sys::napi_env) -> Option<Thrown> {
        let mut value = std::ptr::null_mut();
        // SAFETY: `env` is the current thread's environment, inside a napi scope.
        let status = unsafe { sys::napi_get_and_clear_last_exception(env, &mut value) };
        if status != sys::Status::napi_ok || value.is_null() {
            return None;
        }
        Thrown::hold(env, value)
    }

    /// Holds `value` (a live handle on this thread's `env`), inside a one-element array:
    /// Node 20 cannot reference a primitive (a thrown string or number) directly.
    pub fn hold(env: sys::napi_env, value: sys::napi_value) -> Option<Thrown> {
        let mut holder = std::ptr::null_mut();
        let mut reference = std::ptr::null_mut();
        // SAFETY: as in `take_pending`.
        let status = unsafe {
            sys::napi_create_array_with_length(env, 1, &mut holder);
            sys::napi_set_element(env, holder, 0, value);
            sys::napi_create_reference(env, holder, 1, &mut reference)
        };
        (status == sys::Status::napi_ok).then(|| Thrown {
            env,
            reference,
            thread: std::thread::current().id(),
        })
    }

    /// The value, on its own thread with its own environment.
    fn value(&self, env: &Env) -> Option<sys::napi_value> {
        if self.thread != std::thread::current().id() || env.raw() != self.env {
            return None;
        }
        let mut holder = std::ptr::null_mut();
        let mut value = std::ptr::null_mut();
        // SAFETY: our reference (to the holder array), on its own thread.
        let status = unsafe {
            sys::napi_get_reference_value(self.env, self.reference, &mut holder);
            sys::napi_get_element(self.env, holder, 0, &mut value)
        };
        (status == sys::Status::napi_ok && !value.is_null()).then_some(value)
    }
}

impl Drop for Thrown {
    fn drop(&mut self) {
        if self.thread == std::thread::current().id() {
            // SAFETY: our reference, released once, on its own thread.
            unsafe { sys::napi_delete_reference(self.env, self.reference) };
        }
    }
}

impl From<&MaxBufferExceeded> for Failure {
    fn from(exceeded: &MaxBufferExceeded) -> Self {
        Failure::new(ErrorCode::WasiStdioMaxBuffer, exceeded.to_string())
    }
}

/// The wasmtime error that unwinds a guest when its JS host function threw.
#[derive(Debug)]
pub struct HostThrow(pub Arc<Thrown>);

impl std::fmt::Display for HostThrow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a JS host function threw")
    }
}

impl std::error::Error for HostThrow {}

/// How a guest call ended, judged in a fixed order: `proc_exit` is a result, a trap is
/// `ERR_WASM_TRAP` with its kind and the wasm backtrace, anything else that unwound the guest
/// (a host function failing) is `ERR_WASM_TRAP` with `trapCode: 'host_error'` and its root cause.
pub fn classify(error: wasmtime::Error) -> Result<i32> {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    if let Some(HostThrow(thrown)) = error.downcast_ref::<HostThrow>() {
        return Err(Failure::rethrow(thrown.clone()));
    }
    if let Some(stopped) = error.downcast_ref::<Stopped>() {
        let code = match stopped {
            Stopped::TimedOut(_) => ErrorCode::WasiTimeout,
            Stopped::Aborted => ErrorCode::Aborted,
        };
        return Err(Failure::new(code, stopped.to_string()));
    }
    if let Some(ExitProcess(code)) = error.downcast_ref::<ExitProcess>() {
        let mut failure = Failure::new(ErrorCode::ExitProcess, error.to_string());
        failure.exit_code = Some(*code);
        return Err(failure);
    }
    if let Some(exceeded) = error.downcast_ref::<MaxBufferExceeded>() {
        return Err(exceeded.into());
    }
    let trap_code = match error.downcast_ref::<Trap>() {
        Some(trap) => trap_code_name(*trap),
        None => "host_error".to_string(),
    };
    let mut message = error.root_cause().to_string();
    if let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() {
        message.push('\n');
        message.push_str(backtrace.to_string().trim_end());
    }
    let mut failure = Failure::new(ErrorCode::WasmTrap, message);
    failure.trap_code = Some(trap_code);
    Err(failure)
}

/// `Trap::StackOverflow` -> `stack_overflow`; `UnreachableCodeReached` is `unreachable`.
fn trap_code_name(trap: Trap) -> String {
    if trap == Trap::UnreachableCodeReached {
        return "unreachable".to_string();
    }
    let mut name = String::new();
    for (i, ch) in format!("{trap:?}").chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(ch.to_ascii_lowercase());
    }
    name
}

/// The message of a wasmtime error without its backtrace context: the whole cause chain.
pub fn reason(error: &wasmtime::Error) -> String {
    format!("{error:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trap_codes_are_snake_case() {
        assert_eq!(trap_code_name(Trap::StackOverflow), "stack_overflow");
        assert_eq!(trap_code_name(Trap::OutOfFuel), "out_of_fuel");
        assert_eq!(trap_code_name(Trap::UnreachableCodeReached), "unreachable");
        assert_eq!(trap_code_name(Trap::Interrupt), "interrupt");
    }

    #[test]
    fn exit_is_a_result_not_a_failure() {
        assert_eq!(classify(I32Exit(200).into()).unwrap(), 200);
        assert_eq!(classify(I32Exit(-1).into()).unwrap(), -1);
    }

    #[test]
    fn a_trap_carries_its_code() {
        let failure = classify(Trap::IntegerDivisionByZero.into()).unwrap_err();
        assert_eq!(failure.code, ErrorCode::WasmTrap);
        assert_eq!(
            failure.trap_code.as_deref(),
            Some("integer_division_by_zero")
        );
    }
}
