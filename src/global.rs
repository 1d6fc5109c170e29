//! The `Global` class, as `WebAssembly.Global`: a global made by `new Global()` for a guest to
//! import (its value held here until an instance imports it, then the instance's), or an
//! instance's exported global. Values convert as wasm arguments do (`wasm_values.rs`).

use crate::engine::Host;
use crate::error::{ErrorCode, Failure, Result, Thrown};
use crate::host_externs::descriptor_object;
use crate::instance::Running;
use crate::wasm_values::{self, Num, Refused};
use napi::bindgen_prelude::{JsObjectValue, Unknown};
use napi::{sys, Env, JsValue, ValueType};
use std::cell::RefCell;
use std::sync::Arc;
use wasmtime::{GlobalType, Mutability, StoreContextMut, Val, ValType};

/// A wasm value type as a descriptor names it (`'i32'`, ...).
fn num_named(name: &str) -> Option<Num> {
    Some(match name {
        "i32" => Num::I32,
        "i64" => Num::I64,
        "f32" => Num::F32,
        "f64" => Num::F64,
        _ => return None,
    })
}

pub fn val_type(num: Num) -> ValType {
    match num {
        Num::I32 => ValType::I32,
        Num::I64 => ValType::I64,
        Num::F32 => ValType::F32,
        Num::F64 => ValType::F64,
    }
}

fn napi_error(env: &Env, thrown: Thrown) -> napi::Error {
    Failure::rethrow(Arc::new(thrown)).into_napi(env)
}

/// `value` as a wasm number of type `num`, as the WebAssembly JS API converts it.
fn to_val(env: &Env, value: &Unknown, num: Num) -> napi::Result<Val> {
    match wasm_values::from_js(env.raw(), value.raw(), num) {
        Ok(raw) => Ok(wasm_values::to_val(&raw, num)),
        Err(Refused::Thrown(thrown)) => Err(napi_error(env, thrown)),
        Err(Refused::NotBigInt(kind)) => Err(napi_error(
            env,
            wasm_values::type_error(
                env.raw(),
                &format!("The value of an i64 global must be a BigInt. Received a {kind}"),
            ),
        )),
    }
}

fn from_val(env: &Env, val: &Val, num: Num) -> napi::Result<sys::napi_value> {
    wasm_values::to_js(env.raw(), &wasm_values::to_raw(val), num).map_err(|t| napi_error(env, t))
}

/// A global, as `WebAssembly.Global`: its `value` reads (and, if mutable, writes) the
/// instance's global once an instance has it.
#[napi]
pub struct Global {
    num: Num,
    mutable: bool,
    state: RefCell<GlobalState>,
}

enum GlobalState {
    Unbound(Val),
    Bound {
        running: Arc<Running>,
        global: wasmtime::Global,
    },
}

#[napi]
impl Global {
    /// A global for a guest to import, as `new WebAssembly.Global({ value, mutable }, init)`:
    /// `value` is `'i32'`, `'i64'`, `'f32'` or `'f64'`; `init` converts as wasm arguments do
    /// (i64 from a BigInt) and defaults to 0.
    #[napi(
        catch_unwind,
        constructor,
        ts_args_type = "descriptor: { value: 'i32' | 'i64' | 'f32' | 'f64'; mutable?: boolean }, value?: number | bigint"
    )]
    pub fn new(env: Env, descriptor: Unknown, value: Option<Unknown>) -> napi::Result<Self> {
        let descriptor = descriptor_object(descriptor).map_err(|f| f.into_napi(&env))?;
        let kind: Unknown = descriptor.get_named_property("value")?;
        let name = match kind.get_type()? {
            ValueType::String => kind.coerce_to_string()?.into_utf8()?.into_owned()?,
            _ => String::new(),
        };
        let Some(num) = num_named(&name) else {
            return Err(Failure::new(
                ErrorCode::InvalidArgValue,
                format!(
                    "The property 'descriptor.value' must be one of: 'i32', 'i64', 'f32', \
                     'f64' (the value types a JS Global can hold here). Received {}",
                    if name.is_empty() {
                        "a non-string".to_string()
                    } else {
                        format!("'{name}'")
                    }
                ),
            )
            .into_napi(&env));
        };
        let mutable: Option<bool> = descriptor.get_named_property("mutable")?;
        let initial = match value {
            Some(value) if value.get_type()? != ValueType::Undefined => to_val(&env, &value, num)?,
            _ => wasm_values::to_val(&wasmtime::ValRaw::i64(0), num),
        };
        Ok(Global {
            num,
            mutable: mutable.unwrap_or(false),
            state: RefCell::new(GlobalState::Unbound(initial)),
        })
    }

    /// The global's value (a BigInt for i64).
    #[napi(catch_unwind, getter, ts_return_type = "number | bigint")]
    pub fn value(&self, env: Env) -> napi::Result<Unknown<'_>> {
        let val = self.get(&env)?;
        let raw = from_val(&env, &val, self.num)?;
        // SAFETY: a value made just above, in this scope.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), raw) })
    }

    /// Sets a mutable global's value; a `TypeError` for an immutable one, as V8.
    #[napi(
        catch_unwind,
        setter,
        js_name = "value",
        ts_args_type = "value: number | bigint"
    )]
    pub fn set_value(&self, env: Env, value: Unknown) -> napi::Result<()> {
        if !self.mutable {
            return Err(napi_error(
                &env,
                wasm_values::type_error(env.raw(), "Can't set the value of an immutable global."),
            ));
        }
        let val = to_val(&env, &value, self.num)?;
        match &mut *self.state.borrow_mut() {
            GlobalState::Unbound(current) => *current = val,
            GlobalState::Bound { running, global } => running
                .with_memory(|store| global.set(store, val))
                .map_err(|f| f.into_napi(&env))?
                .map_err(|e| {
                    Failure::new(ErrorCode::InvalidArgValue, crate::error::reason(&e))
                        .into_napi(&env)
                })?,
        }
        Ok(())
    }

    /// The value, as `WebAssembly.Global.prototype.valueOf`.
    #[napi(catch_unwind, js_name = "valueOf", ts_return_type = "number | bigint")]
    pub fn value_of(&self, env: Env) -> napi::Result<Unknown<'_>> {
        self.value(env)
    }
}

impl Global {
    /// An instance's exported global.
    pub fn exported(
        running: Arc<Running>,
        global: wasmtime::Global,
        num: Num,
        mutable: bool,
    ) -> Self {
        Global {
            num,
            mutable,
            state: RefCell::new(GlobalState::Bound { running, global }),
        }
    }

    fn get(&self, env: &Env) -> napi::Result<Val> {
        match &*self.state.borrow() {
            GlobalState::Unbound(val) => Ok(*val),
            GlobalState::Bound { running, global } => running
                .with_memory(|store| global.get(store))
                .map_err(|f| f.into_napi(env)),
        }
    }

    /// Its value type and mutability.
    pub fn import_type(&self) -> (Num, bool) {
        (self.num, self.mutable)
    }

    /// Whether an instance has it.
    pub fn is_bound(&self) -> bool {
        matches!(*self.state.borrow(), GlobalState::Bound { .. })
    }

    /// Its current value.
    pub fn current(&self, env: &Env) -> Result<Val> {
        self.get(env)
            .map_err(|e| Failure::new(ErrorCode::WasmLink, e.reason))
    }

    /// A mutable wasmtime global in `store` with this global's value, for an instance that
    /// imports it (bound to it by `bind` once the instance exists).
    pub fn instantiate_into(&self, store: StoreContextMut<'_, Host>) -> Result<wasmtime::Global> {
        let GlobalState::Unbound(val) = *self.state.borrow() else {
            return Err(Failure::new(
                ErrorCode::WasmLink,
                "This Global already belongs to an instance",
            ));
        };
        let ty = GlobalType::new(val_type(self.num), Mutability::Var);
        wasmtime::Global::new(store, ty, val)
            .map_err(|e| Failure::new(ErrorCode::WasmLink, crate::error::reason(&e)))
    }

    /// Makes this global `running`'s `global` (made by `instantiate_into`).
    pub fn bind(&self, running: Arc<Running>, global: wasmtime::Global) {
        *self.state.borrow_mut() = GlobalState::Bound { running, global };
    }
}
