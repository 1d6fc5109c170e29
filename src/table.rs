//! The `Table` class, as `WebAssembly.Table` for tables of function references: a table made
//! by `new Table()` for a guest to import (every element null until an instance imports it,
//! then the instance's), or an instance's exported table. `get` returns an element as a JS
//! function, called like an export.

use crate::engine::Host;
use crate::error::{ErrorCode, Failure, Result};
use crate::export_function::{self, ExportFunction};
use crate::host_externs::{descriptor_limits, descriptor_object};
use crate::instance::Running;
use crate::wasm_values;
use napi::bindgen_prelude::{JsObjectValue, Unknown};
use napi::{sys, Env, JsValue, ValueType};
use std::cell::RefCell;
use std::sync::Arc;
use wasmtime::{Ref, RefType, StoreContextMut, TableType};

/// The most elements a table made by `new Table()` may have (V8's limit).
const MAX_TABLE_LENGTH: u64 = 10_000_000;

/// A table of function references, as `WebAssembly.Table({ element: 'anyfunc' })`.
#[napi]
pub struct Table {
    state: RefCell<TableState>,
}

enum TableState {
    Unbound {
        length: u64,
        maximum: Option<u64>,
    },
    Bound {
        running: Arc<Running>,
        table: wasmtime::Table,
    },
}

#[napi]
impl Table {
    /// A table for a guest to import, as `new WebAssembly.Table({ element: 'anyfunc',
    /// initial, maximum })`: every element starts null.
    #[napi(
        catch_unwind,
        constructor,
        ts_args_type = "descriptor: { element: 'anyfunc'; initial: number; maximum?: number }"
    )]
    pub fn new(env: Env, descriptor: Unknown) -> napi::Result<Self> {
        let descriptor = descriptor_object(descriptor).map_err(|f| f.into_napi(&env))?;
        let element: Option<String> = descriptor
            .get_named_property::<Unknown>("element")
            .ok()
            .filter(|e| e.get_type().ok() == Some(ValueType::String))
            .and_then(|e| {
                e.coerce_to_string()
                    .ok()?
                    .into_utf8()
                    .ok()?
                    .into_owned()
                    .ok()
            });
        if !matches!(element.as_deref(), Some("anyfunc" | "funcref")) {
            return Err(Failure::new(
                ErrorCode::InvalidArgValue,
                format!(
                    "The property 'descriptor.element' must be 'anyfunc' (tables of function \
                     references; externref tables are not supported). Received {}",
                    element.map_or("a non-string".to_string(), |e| format!("'{e}'"))
                ),
            )
            .into_napi(&env));
        }
        let (length, maximum) =
            descriptor_limits(&descriptor, MAX_TABLE_LENGTH).map_err(|f| f.into_napi(&env))?;
        Ok(Table {
            state: RefCell::new(TableState::Unbound { length, maximum }),
        })
    }

    /// The number of elements.
    #[napi(catch_unwind, getter)]
    pub fn length(&self, env: Env) -> napi::Result<f64> {
        match &*self.state.borrow() {
            TableState::Unbound { length, .. } => Ok(*length as f64),
            TableState::Bound { running, table } => running
                .with_memory(|store| table.size(store) as f64)
                .map_err(|f| f.into_napi(&env)),
        }
    }

    /// The function at `index` (callable like an export), or null. `ERR_OUT_OF_RANGE` past
    /// the end.
    #[napi(catch_unwind, ts_return_type = "Function | null")]
    pub fn get(&self, env: Env, index: f64) -> napi::Result<Unknown<'_>> {
        let null = || {
            let mut value = std::ptr::null_mut();
            // SAFETY: a plain value constructor on this thread.
            unsafe { sys::napi_get_null(env.raw(), &mut value) };
            // SAFETY: the value just made.
            Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
        };
        let length = self.length(env)?;
        if !(index >= 0.0 && index.fract() == 0.0 && index < length) {
            return Err(out_of_range(index, length).into_napi(&env));
        }
        let TableState::Bound { running, table } = &*self.state.borrow() else {
            return null();
        };
        let found = running
            .with_memory(|mut store| {
                let func = table.get(&mut store, index as u64)?.as_func()?.copied()?;
                let sig = wasm_values::Signature::of(&func.ty(&store))?;
                Some((func, sig))
            })
            .map_err(|f| f.into_napi(&env))?;
        let Some((func, sig)) = found else {
            return null();
        };
        let function = export_function::create(
            &env,
            &format!("{index}"),
            ExportFunction {
                running: running.clone(),
                func,
                sig,
                is_entry: false,
            },
        )?;
        // SAFETY: the function just made.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), function) })
    }

    /// Sets the element at `index` to null (the only value JS can store here).
    #[napi(catch_unwind, ts_args_type = "index: number, value: null")]
    pub fn set(&self, env: Env, index: f64, value: Unknown) -> napi::Result<()> {
        if !matches!(value.get_type()?, ValueType::Null | ValueType::Undefined) {
            return Err(Failure::new(
                ErrorCode::InvalidArgType,
                "table.set() takes null only here: JS cannot store functions in a node-wasmtime \
                 table",
            )
            .into_napi(&env));
        }
        let length = self.length(env)?;
        if !(index >= 0.0 && index.fract() == 0.0 && index < length) {
            return Err(out_of_range(index, length).into_napi(&env));
        }
        if let TableState::Bound { running, table } = &*self.state.borrow() {
            running
                .with_memory(|store| table.set(store, index as u64, Ref::Func(None)))
                .map_err(|f| f.into_napi(&env))?
                .map_err(|e| {
                    Failure::new(ErrorCode::OutOfRange, crate::error::reason(&e)).into_napi(&env)
                })?;
        }
        Ok(())
    }

    /// Adds `delta` null elements; returns the previous length. `ERR_OUT_OF_RANGE` past the
    /// maximum.
    #[napi(catch_unwind)]
    pub fn grow(&self, env: Env, delta: f64) -> napi::Result<f64> {
        let fail = || {
            Failure::new(
                ErrorCode::OutOfRange,
                format!("The table cannot grow by {delta} elements"),
            )
            .into_napi(&env)
        };
        if !(delta >= 0.0 && delta.fract() == 0.0 && delta <= MAX_TABLE_LENGTH as f64) {
            return Err(fail());
        }
        match &mut *self.state.borrow_mut() {
            TableState::Unbound { length, maximum } => {
                let previous = *length;
                if previous + delta as u64 > maximum.unwrap_or(MAX_TABLE_LENGTH) {
                    return Err(fail());
                }
                *length += delta as u64;
                Ok(previous as f64)
            }
            TableState::Bound { running, table } => running
                .with_memory(|store| table.grow(store, delta as u64, Ref::Func(None)))
                .map_err(|f| f.into_napi(&env))?
                .map(|previous| previous as f64)
                .map_err(|_| fail()),
        }
    }
}

impl Table {
    /// An instance's exported table.
    pub fn exported(running: Arc<Running>, table: wasmtime::Table) -> Self {
        Table {
            state: RefCell::new(TableState::Bound { running, table }),
        }
    }

    /// Its length and declared maximum, while no instance has it.
    pub fn unbound_limits(&self) -> Option<(u64, Option<u64>)> {
        match *self.state.borrow() {
            TableState::Unbound { length, maximum } => Some((length, maximum)),
            TableState::Bound { .. } => None,
        }
    }

    /// A wasmtime table in `store` of this table's length and maximum, every element null,
    /// for an instance that imports it (bound to it by `bind` once the instance exists).
    pub fn instantiate_into(&self, store: StoreContextMut<'_, Host>) -> Result<wasmtime::Table> {
        let Some((length, maximum)) = self.unbound_limits() else {
            return Err(Failure::new(
                ErrorCode::WasmLink,
                "This Table already belongs to an instance",
            ));
        };
        let ty = TableType::new(RefType::FUNCREF, length as u32, maximum.map(|m| m as u32));
        wasmtime::Table::new(store, ty, Ref::Func(None))
            .map_err(|e| Failure::new(ErrorCode::WasmLink, crate::error::reason(&e)))
    }

    /// Makes this table `running`'s `table` (made by `instantiate_into`).
    pub fn bind(&self, running: Arc<Running>, table: wasmtime::Table) {
        *self.state.borrow_mut() = TableState::Bound { running, table };
    }
}

fn out_of_range(index: f64, length: f64) -> Failure {
    Failure::new(
        ErrorCode::OutOfRange,
        format!(
            "The value of \"index\" is out of range. It must be an integer >= 0 && < {length} \
             (the table's length). Received {index}"
        ),
    )
}
