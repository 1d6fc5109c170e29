//! Host calls from a guest on a pool thread (`runWasm`, `wasi.startAsync()`): every call is
//! sent to the JS thread that started the run, through a threadsafe function over the run's
//! JS dispatcher (`lib/host.js`), and the guest waits for the answer. The dispatcher calls
//! the host function and answers through the `PendingHostCall` it was given, at once or when
//! the returned Promise settles. While it waits, the guest checks its timeout and cancel flag
//! (so `limits.timeout`, `signal` and worker teardown still stop it) and lends its store to
//! JS for memory access (`store_access.rs`).

use crate::engine::Host;
use crate::error::{HostThrow, Thrown};
use crate::host_functions::{results_from_js, serve_waiting, HostFunction, HostImports};
use crate::limits::STOP_CHECK_INTERVAL;
use crate::store_access::{JsRequest, Lent};
use crate::wasm_values::{self, type_error, Num};
use napi::bindgen_prelude::{FnArgs, Function, ToNapiValue, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, JsValue, Status};
use std::sync::{Arc, Condvar, Mutex};
use wasmtime::{Caller, Val, ValRaw};

/// One call on its way to JS.
pub struct Request {
    reply: Arc<Reply>,
    function: HostFunction,
    args: Vec<Val>,
}

/// The JS dispatcher, callable from any thread: `dispatch(call, importIndex, args)`.
type Tsfn = ThreadsafeFunction<
    Request,
    (),
    FnArgs<(PendingHostCall, u32, Vec<JsArg>)>,
    Status,
    false,
    true,
>;

/// The JS dispatcher as `lib/host.js` passes it.
pub type Dispatch<'a> = Function<'a, FnArgs<(PendingHostCall, u32, Vec<JsArg>)>, ()>;

/// A run's way to its JS thread.
pub struct Dispatcher {
    tsfn: Tsfn,
}

impl Dispatcher {
    /// Wraps `dispatch` (made by `lib/host.js` for one run, on the JS thread).
    pub fn new(dispatch: Dispatch<'_>) -> napi::Result<Self> {
        let tsfn = dispatch
            .build_threadsafe_function::<Request>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(
                |ctx: napi::threadsafe_function::ThreadsafeCallContext<Request>| {
                    let Request {
                        reply,
                        function,
                        args,
                    } = ctx.value;
                    let import_index = function.import_index;
                    let args = args
                        .into_iter()
                        .zip(function.sig.params.iter())
                        .map(|(val, num)| JsArg(val, *num))
                        .collect();
                    Ok(FnArgs::from((
                        PendingHostCall {
                            reply: Some(reply),
                            function,
                        },
                        import_index,
                        args,
                    )))
                },
            )?;
        Ok(Dispatcher { tsfn })
    }

    /// Sends the call of `imports.functions[k]` to JS and waits for its answer (or for the
    /// guest to be stopped), lending the store to JS meanwhile and running the calls JS makes
    /// into the guest while it waits. When the JS thread itself waits for such a call, the
    /// host call goes to it directly instead of through the event loop.
    pub fn call(
        &self,
        caller: &mut Caller<'_, Host>,
        imports: &Arc<HostImports>,
        k: usize,
        params: &[ValRaw],
        results: &mut [ValRaw],
    ) -> wasmtime::Result<()> {
        let function = &imports.functions[k];
        let stop = caller.data().stop.clone();
        let lent = caller.data().lent.clone();
        let reply = Arc::new(Reply {
            lent: lent.clone(),
            ..Reply::default()
        });
        let args: Vec<Val> = params
            .iter()
            .zip(function.sig.params.iter())
            .map(|(raw, num)| wasm_values::to_val(raw, *num))
            .collect();
        // Lent before JS can see the call, so the host function finds the memory ready.
        let _lending = lent.as_ref().map(|lent| lent.lend(caller));
        let direct: JsRequest = {
            let (imports, reply, args) = (imports.clone(), reply.clone(), args.clone());
            Box::new(move |env: &Env| {
                let answer = match serve_waiting(env, &imports, k, &args) {
                    Some(Ok(values)) => Answer::Values(values),
                    Some(Err(thrown)) => Answer::Thrown(thrown),
                    None => {
                        Answer::Lost("this guest's host functions are not on this thread".into())
                    }
                };
                reply.answer(answer);
            })
        };
        let undelivered = match &lent {
            Some(lent) => lent.request(direct).is_some(),
            None => true,
        };
        if undelivered {
            let status = self.tsfn.call(
                Request {
                    reply: reply.clone(),
                    function: function.clone(),
                    args,
                },
                ThreadsafeFunctionCallMode::NonBlocking,
            );
            if status != Status::Ok {
                return Err(wasmtime::Error::msg(format!(
                    "the JS thread that started this run is gone (host function {})",
                    function.name
                )));
            }
        }
        // Most host functions answer within microseconds: look for the answer for a little
        // while before sleeping, since waking a sleeping thread costs more than the call.
        let spin_until = std::time::Instant::now() + SPIN;
        while !reply.done.load(std::sync::atomic::Ordering::Acquire)
            && std::time::Instant::now() < spin_until
        {
            std::thread::yield_now();
        }
        loop {
            match reply.lock().take() {
                Some(Answer::Values(values)) => {
                    for (result, value) in results.iter_mut().zip(&values) {
                        *result = wasm_values::to_raw(value);
                    }
                    return Ok(());
                }
                Some(Answer::Thrown(thrown)) => return Err(HostThrow(Arc::new(thrown)).into()),
                Some(Answer::Lost(why)) => return Err(wasmtime::Error::msg(why)),
                None => {}
            }
            if let Err(stopped) = stop.check() {
                return Err(stopped.into());
            }
            match &lent {
                Some(lent) => lent.serve_jobs(&reply.done, STOP_CHECK_INTERVAL),
                None => reply.wait(STOP_CHECK_INTERVAL),
            }
        }
    }
}

/// How a host call was answered.
enum Answer {
    Values(Vec<Val>),
    Thrown(Thrown),
    Lost(String),
}

/// How long a guest looks for its host call's answer before it sleeps on it.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

#[derive(Default)]
struct Reply {
    answer: Mutex<Option<Answer>>,
    answered: Condvar,
    /// Set with the answer (read without the lock while spinning).
    done: std::sync::atomic::AtomicBool,
    /// The store the waiting guest lent, whose thread waits on it (not on `answered`).
    lent: Option<Arc<Lent>>,
}

impl Reply {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Answer>> {
        self.answer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn answer(&self, answer: Answer) {
        let mut slot = self.lock();
        if slot.is_none() {
            *slot = Some(answer);
            self.done.store(true, std::sync::atomic::Ordering::Release);
        }
        self.answered.notify_all();
        drop(slot);
        if let Some(lent) = &self.lent {
            lent.wake_guest();
        }
    }

    /// Sleeps until answered or `timeout` passes.
    fn wait(&self, timeout: std::time::Duration) {
        let slot = self.lock();
        if slot.is_none() {
            drop(
                self.answered
                    .wait_timeout(slot, timeout)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            );
        }
    }
}

/// Internal: one host call from a guest on a pool thread, answered once by `lib/host.js`.
#[napi]
pub struct PendingHostCall {
    reply: Option<Arc<Reply>>,
    function: HostFunction,
}

#[napi]
impl PendingHostCall {
    /// The host function returned `value` (or its Promise fulfilled with it): converted to
    /// the guest's result types here; a value that does not convert is a `TypeError` thrown
    /// into the guest, as V8 does. Never throws.
    #[napi]
    pub fn resolve(&mut self, env: Env, value: Unknown) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        let sig = &self.function.sig;
        let mut results = vec![ValRaw::i32(0); sig.results.len()];
        let answer = match results_from_js(env.raw(), value.raw(), &self.function, &mut results) {
            Ok(()) => Answer::Values(
                results
                    .iter()
                    .zip(sig.results.iter())
                    .map(|(raw, num)| wasm_values::to_val(raw, *num))
                    .collect(),
            ),
            Err(thrown) => Answer::Thrown(thrown),
        };
        reply.answer(answer);
    }

    /// The host function threw `error` (or its Promise rejected with it): it unwinds the
    /// guest and reaches the run's caller as the same value.
    #[napi]
    pub fn reject(&mut self, env: Env, error: Unknown) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        let thrown = Thrown::hold(env.raw(), error.raw())
            .unwrap_or_else(|| type_error(env.raw(), "a host function failed"));
        reply.answer(Answer::Thrown(thrown));
    }
}

impl Drop for PendingHostCall {
    /// Collected without an answer (a Promise that can never settle was dropped): the
    /// guest fails instead of waiting for ever.
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            reply.answer(Answer::Lost(format!(
                "The host function {} returned a Promise that was garbage-collected without \
                 settling",
                self.function.name
            )));
        }
    }
}

/// A wasm argument on its way to the JS dispatcher.
pub struct JsArg(Val, Num);

impl ToNapiValue for JsArg {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        wasm_values::to_js(env, &wasm_values::to_raw(&value.0), value.1)
            .map_err(|_| napi::Error::new(Status::GenericFailure, "unsupported wasm value"))
    }
}
