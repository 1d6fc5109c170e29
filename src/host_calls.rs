//! Host calls from a guest on a pool thread (`runWasm`, `wasi.startAsync()`): every call is
//! sent to the JS thread that started the run, through a threadsafe function over the run's
//! JS dispatcher (`lib/host.js`), and the guest waits for the answer. The dispatcher calls
//! the host function and answers through the `PendingHostCall` it was given, at once or when
//! the returned Promise settles. While it waits, the guest checks its timeout and cancel flag
//! (so `limits.timeout`, `signal` and worker teardown still stop it) and lends its store to
//! JS (`store_access.rs`): for memory access, and to run the calls JS makes into it meanwhile;
//! the host calls those make go straight to the waiting JS thread. Core modules' and
//! components' host functions both come through here.

use crate::component_imports::{self, ComponentHostFunction, ComponentImports};
use crate::component_values::JsOut;
use crate::engine::Host;
use crate::error::{HostThrow, Thrown};
use crate::host_functions::{results_from_js, serve_waiting, HostFunction, HostImports};
use crate::limits::{StopWhen, STOP_CHECK_INTERVAL};
use crate::store_access::{JsRequest, Lent};
use crate::wasm_values::{self, type_error, Num};
use napi::bindgen_prelude::{FnArgs, Function, ToNapiValue, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, JsValue, Status};
use std::sync::{Arc, Condvar, Mutex};
use wasmtime::{component, Caller, Val, ValRaw};

/// One call on its way to JS: the function's position in the run's values, and its
/// arguments, already converted as far as they can be off the JS thread.
pub struct Request {
    reply: Arc<Reply>,
    callee: Callee,
    index: u32,
    args: Vec<JsArg>,
}

/// The function a host call is for: a core module's or a component's.
pub enum Callee {
    Core(HostFunction),
    /// With the store's component imports (for its host resources).
    Component(ComponentHostFunction, Arc<ComponentImports>),
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
                        callee,
                        index,
                        args,
                    } = ctx.value;
                    Ok(FnArgs::from((
                        PendingHostCall {
                            reply: Some(reply),
                            callee,
                        },
                        index,
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
            let request = Request {
                reply: reply.clone(),
                index: function.import_index,
                args: args
                    .into_iter()
                    .zip(function.sig.params.iter())
                    .map(|(val, num)| JsArg::Number(val, *num))
                    .collect(),
                callee: Callee::Core(function.clone()),
            };
            self.send(request, &function.name)?;
        }
        match self.wait(&reply, &stop, lent.as_deref())? {
            Answer::Values(values) => {
                for (result, value) in results.iter_mut().zip(&values) {
                    *result = wasm_values::to_raw(value);
                }
                Ok(())
            }
            Answer::ComponentValues(_) => {
                Err(wasmtime::Error::msg("a component answer to a core call"))
            }
            Answer::Thrown(thrown) => Err(HostThrow(Arc::new(thrown)).into()),
            Answer::Lost(why) => Err(wasmtime::Error::msg(why)),
        }
    }

    /// The call of a component's host function `function` (`index` in the run's values) with
    /// `args`, waited for as `call` waits.
    pub fn call_component(
        &self,
        function: &ComponentHostFunction,
        index: u32,
        args: Vec<JsOut>,
        stop: &StopWhen,
        imports: Arc<ComponentImports>,
    ) -> wasmtime::Result<Vec<component::Val>> {
        let reply = Arc::new(Reply::default());
        let request = Request {
            reply: reply.clone(),
            index,
            args: args.into_iter().map(JsArg::Component).collect(),
            callee: Callee::Component(function.clone(), imports),
        };
        self.send(request, &function.path)?;
        match self.wait(&reply, stop, None)? {
            Answer::ComponentValues(values) => Ok(values),
            Answer::Values(_) => Err(wasmtime::Error::msg("a core answer to a component call")),
            Answer::Thrown(thrown) => Err(HostThrow(Arc::new(thrown)).into()),
            Answer::Lost(why) => Err(wasmtime::Error::msg(why)),
        }
    }

    fn send(&self, request: Request, name: &str) -> wasmtime::Result<()> {
        let status = self
            .tsfn
            .call(request, ThreadsafeFunctionCallMode::NonBlocking);
        if status != Status::Ok {
            return Err(wasmtime::Error::msg(format!(
                "the JS thread that started this run is gone (host function {name})"
            )));
        }
        Ok(())
    }

    /// Waits for `reply` (running the calls JS makes into the guest meanwhile, if it lent its
    /// store), or until the guest must stop.
    fn wait(
        &self,
        reply: &Reply,
        stop: &StopWhen,
        lent: Option<&Lent>,
    ) -> wasmtime::Result<Answer> {
        // Most host functions answer within microseconds: look for the answer for a little
        // while before sleeping, since waking a sleeping thread costs more than the call.
        let spin_until = std::time::Instant::now() + SPIN;
        while !reply.done.load(std::sync::atomic::Ordering::Acquire)
            && std::time::Instant::now() < spin_until
        {
            std::thread::yield_now();
        }
        loop {
            if let Some(answer) = reply.lock().take() {
                return Ok(answer);
            }
            stop.check()?;
            match lent {
                Some(lent) => lent.serve_jobs(&reply.done, STOP_CHECK_INTERVAL),
                None => reply.wait(STOP_CHECK_INTERVAL),
            }
        }
    }
}

/// How a host call was answered.
enum Answer {
    Values(Vec<Val>),
    ComponentValues(Vec<component::Val>),
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
    callee: Callee,
}

#[napi]
impl PendingHostCall {
    /// The host function returned `value` (or its Promise fulfilled with it): converted to
    /// the guest's result types here; a value that does not convert is a `TypeError` thrown
    /// into the guest, as V8 does. Never throws.
    #[napi(catch_unwind)]
    pub fn resolve(&mut self, env: Env, value: Unknown) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        let answer = match &self.callee {
            Callee::Core(function) => {
                let mut results = vec![ValRaw::i32(0); function.sig.results.len()];
                match results_from_js(env.raw(), value.raw(), function, &mut results) {
                    Ok(()) => Answer::Values(
                        results
                            .iter()
                            .zip(function.sig.results.iter())
                            .map(|(raw, num)| wasm_values::to_val(raw, *num))
                            .collect(),
                    ),
                    Err(thrown) => Answer::Thrown(thrown),
                }
            }
            Callee::Component(function, imports) => {
                match component_imports::results_from_js(
                    env.raw(),
                    value.raw(),
                    function,
                    &mut imports.cx(None),
                ) {
                    Ok(values) => Answer::ComponentValues(values),
                    Err(thrown) => Answer::Thrown(thrown),
                }
            }
        };
        reply.answer(answer);
    }

    /// The host function threw `error` (or its Promise rejected with it): it unwinds the
    /// guest and reaches the run's caller as the same value.
    #[napi(catch_unwind)]
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
                match &self.callee {
                    Callee::Core(function) => &function.name,
                    Callee::Component(function, _) => &function.path,
                }
            )));
        }
    }
}

/// An argument on its way to the JS dispatcher.
pub enum JsArg {
    Number(Val, Num),
    Component(JsOut),
}

impl ToNapiValue for JsArg {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        match value {
            JsArg::Number(val, num) => wasm_values::to_js(env, &wasm_values::to_raw(&val), num)
                .map_err(|_| napi::Error::new(Status::GenericFailure, "unsupported wasm value")),
            // SAFETY: the caller's contract (this thread's `env`, inside a scope).
            JsArg::Component(out) => unsafe { JsOut::to_napi_value(env, out) },
        }
    }
}
