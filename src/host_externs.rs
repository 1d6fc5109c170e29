//! Memories, tables and globals a core module imports from JS. A number or BigInt, or an
//! immutable `Global`, gives an immutable global its value (made afresh in each store, so
//! one-shot runs take them too). A `Memory`, `Table` or mutable `Global` made by `new` holds
//! its contents until an instance imports it; it is then made in that instance's store and
//! the object becomes the instance's own: a wasmtime store owns what its instances use, so
//! such an object serves the one instance `wasi.instantiate()` makes with it, and one-shot
//! runs refuse it. Also: exported globals and tables as `Global` and `Table` objects.

use crate::engine::Host;
use crate::error::{ErrorCode, Failure, Result};
use crate::global::{val_type, Global};
use crate::instance::Running;
use crate::memory::Memory;
use crate::table::Table;
use crate::wasm_values::{self, Num};
use napi::bindgen_prelude::{
    ClassInstance, FromNapiValue, JsObjectValue, Object, ToNapiValue, Unknown,
};
use napi::{sys, Env, JsValue, ValueType};
use std::sync::Arc;
use wasmtime::StoreContextMut;
use wasmtime::{
    AsContextMut, Extern, ExternType, GlobalType, Linker, Mutability, RefType, Store, Val,
};

/// A wasm page: 64 KiB.
pub const PAGE_SIZE: u64 = 65536;

fn link_error(message: String) -> Failure {
    Failure::new(ErrorCode::WasmLink, message)
}

/// `descriptor.initial` and `descriptor.maximum` of a `Memory` or `Table` descriptor:
/// integers in `[0, max]`, `maximum` (optional) at least `initial`.
pub fn descriptor_limits(descriptor: &Object, max: u64) -> Result<(u64, Option<u64>)> {
    let read = |key: &str| -> Result<Option<u64>> {
        let value: Unknown = descriptor
            .get_named_property(key)
            .map_err(|e| Failure::new(ErrorCode::InvalidArgValue, e.reason))?;
        match value.get_type() {
            Ok(ValueType::Undefined) => Ok(None),
            Ok(ValueType::Number) => {
                let n = value
                    .coerce_to_number()
                    .and_then(|n| n.get_double())
                    .unwrap_or(f64::NAN);
                if !(n >= 0.0 && n.fract() == 0.0 && n <= max as f64) {
                    return Err(Failure::new(
                        ErrorCode::OutOfRange,
                        format!(
                            "The value of \"descriptor.{key}\" is out of range. It must be an \
                             integer >= 0 && <= {max}. Received {n}"
                        ),
                    ));
                }
                Ok(Some(n as u64))
            }
            _ => Err(crate::source::invalid_type(
                &format!("descriptor.{key}"),
                "of type number",
                &value,
            )),
        }
    };
    let Some(initial) = read("initial")? else {
        return Err(Failure::new(
            ErrorCode::InvalidArgType,
            "The \"descriptor.initial\" property must be of type number. Received undefined",
        ));
    };
    let maximum = read("maximum")?;
    if let Some(maximum) = maximum {
        if maximum < initial {
            return Err(Failure::new(
                ErrorCode::OutOfRange,
                format!(
                    "The value of \"descriptor.maximum\" is out of range. It must be >= \
                     descriptor.initial ({initial}). Received {maximum}"
                ),
            ));
        }
    }
    Ok((initial, maximum))
}

/// A `Memory`, `Table` or `Global` constructor's descriptor: an object.
pub fn descriptor_object(value: Unknown) -> Result<Object> {
    if value.get_type().ok() != Some(ValueType::Object) {
        return Err(crate::source::invalid_type(
            "descriptor",
            "of type object",
            &value,
        ));
    }
    value
        .coerce_to_object()
        .map_err(|e| Failure::new(ErrorCode::InvalidArgType, e.reason))
}

/// What JS gives one imported memory, table or global.
#[derive(Clone)]
pub enum Given {
    /// A value for an immutable global (a number, a BigInt, an immutable `Global`'s value).
    Constant(Val),
    /// A `Memory`, `Table` or mutable `Global`: made in the store, then the instance's.
    Object,
}

/// One memory, table or global import JS supplies.
#[derive(Clone)]
pub struct HostExtern {
    pub import_index: u32,
    pub given: Given,
}

/// Checks what JS gives the memory, table or global import `name` of type `ty`. `None`: not
/// an extern import (a function).
pub fn resolve(name: &str, ty: &ExternType, value: &Unknown) -> Result<Option<Given>> {
    let env = Env::from_raw(value.value().env);
    let given = value.get_type().unwrap_or(ValueType::Unknown);
    let wanted = crate::host_functions::describe(ty);
    let received = || crate::source::describe(value);
    let wrong = |what: &str, class: &str| {
        link_error(format!(
            "imports.{name} must be {what}: the module imports {wanted}. Received {}{}",
            received(),
            v8_hint(&env, value, class)
        ))
    };
    match ty {
        ExternType::Func(_) | ExternType::Tag(_) => Ok(None),
        ExternType::Global(ty) => {
            let Some(num) = Num::of(ty.content()) else {
                return Err(link_error(format!(
                    "The module imports {name}, {wanted}: JS can give globals of type i32, \
                     i64, f32 and f64 only"
                )));
            };
            let mutable = ty.mutability() == Mutability::Var;
            let expected = format!(
                "a Global {{ value: '{}', mutable: {mutable} }}{}",
                ty.content(),
                if mutable {
                    ""
                } else if num == Num::I64 {
                    " or a BigInt"
                } else {
                    " or a number"
                }
            );
            match given {
                ValueType::Number | ValueType::BigInt if !mutable => {
                    if (num == Num::I64) != (given == ValueType::BigInt) {
                        return Err(wrong(&expected, "Global"));
                    }
                    let raw = wasm_values::from_js(env.raw(), value.raw(), num)
                        .map_err(|_| wrong(&expected, "Global"))?;
                    Ok(Some(Given::Constant(wasm_values::to_val(&raw, num))))
                }
                ValueType::Object if class::<Global>(&env, value).is_some() => {
                    let global = class::<Global>(&env, value).expect("checked just above");
                    let (its_num, its_mutable) = global.import_type();
                    if its_num != num || its_mutable != mutable {
                        return Err(link_error(format!(
                            "imports.{name} is a Global {{ value: '{}', mutable: {its_mutable} \
                             }}, but the module imports {wanted}",
                            val_type(its_num),
                        )));
                    }
                    if !mutable {
                        return Ok(Some(Given::Constant(global.current(&env)?)));
                    }
                    if global.is_bound() {
                        return Err(already_bound(name, "Global"));
                    }
                    Ok(Some(Given::Object))
                }
                _ => Err(wrong(&expected, "Global")),
            }
        }
        ExternType::Memory(ty) => {
            let Some(memory) = class::<Memory>(&env, value) else {
                return Err(wrong(
                    "a node-wasmtime Memory (new Memory({ initial, maximum }))",
                    "Memory",
                ));
            };
            if ty.is_shared() || ty.is_64() {
                return Err(link_error(format!(
                    "The module imports {name}, a {} memory, which JS cannot give here",
                    if ty.is_shared() { "shared" } else { "64-bit" }
                )));
            }
            let Some(limits) = memory.unbound_limits() else {
                return Err(already_bound(name, "Memory"));
            };
            check_limits(name, "Memory", "pages", limits, ty.minimum(), ty.maximum())?;
            Ok(Some(Given::Object))
        }
        ExternType::Table(ty) => {
            let Some(table) = class::<Table>(&env, value) else {
                return Err(wrong(
                    "a node-wasmtime Table (new Table({ element: 'anyfunc', initial }))",
                    "Table",
                ));
            };
            if !ty.element().matches(&RefType::FUNCREF) || ty.is_64() {
                return Err(link_error(format!(
                    "The module imports {name}, a table of {}, but JS can give tables of \
                     funcref only",
                    ty.element()
                )));
            }
            let Some(limits) = table.unbound_limits() else {
                return Err(already_bound(name, "Table"));
            };
            check_limits(
                name,
                "Table",
                "elements",
                limits,
                ty.minimum(),
                ty.maximum(),
            )?;
            Ok(Some(Given::Object))
        }
    }
}

/// `value` as an object of the native class `T`, if it is one.
fn class<'env, T: 'env + napi::bindgen_prelude::MaybeTypeTag>(
    env: &Env,
    value: &Unknown,
) -> Option<ClassInstance<'env, T>> {
    if value.get_type().ok() != Some(ValueType::Object) {
        return None;
    }
    // SAFETY: a live handle of this scope; the conversion checks the class's type tag.
    unsafe { ClassInstance::<T>::from_napi_value(env.raw(), value.raw()) }.ok()
}

/// For a V8 `WebAssembly.Memory`/`Table`/`Global` given where ours is needed: why it cannot
/// be used.
fn v8_hint(env: &Env, value: &Unknown, class: &str) -> String {
    let is_v8 = || -> napi::Result<bool> {
        let global = env.get_global()?;
        let webassembly: Object = global.get_named_property("WebAssembly")?;
        let constructor: napi::bindgen_prelude::Function<(), ()> =
            webassembly.get_named_property(class)?;
        value.instanceof(constructor)
    };
    if value.get_type().ok() == Some(ValueType::Object) && is_v8().unwrap_or(false) {
        format!(
            " (a WebAssembly.{class}: V8's, which a guest that wasmtime runs cannot use; \
             make a node-wasmtime {class} instead)"
        )
    } else {
        String::new()
    }
}

fn already_bound(name: &str, class: &str) -> Failure {
    link_error(format!(
        "imports.{name}: this {class} already belongs to an instance. Each node-wasmtime \
         instance has its own store, so a {class} serves the one instance that imported or \
         exported it; make a new {class} for this one"
    ))
}

/// The import's declared size limits against what JS gives (the wasm import matching rule).
fn check_limits(
    name: &str,
    class: &str,
    unit: &str,
    (size, maximum): (u64, Option<u64>),
    wanted_min: u64,
    wanted_max: Option<u64>,
) -> Result<()> {
    if size < wanted_min {
        return Err(link_error(format!(
            "imports.{name} is a {class} of {size} {unit}, but the module imports one of at \
             least {wanted_min} {unit}"
        )));
    }
    if let Some(wanted_max) = wanted_max {
        if maximum.is_none_or(|maximum| maximum > wanted_max) {
            return Err(link_error(format!(
                "imports.{name} is a {class} with {}, but the module imports one with a \
                 maximum of at most {wanted_max} {unit}",
                maximum.map_or("no maximum".to_string(), |m| format!(
                    "a maximum of {m} {unit}"
                ))
            )));
        }
    }
    Ok(())
}

/// A JS object that becomes the instance's once it exists.
pub struct Binding {
    object: sys::napi_value,
    made: Extern,
}

/// Instantiates `module` in `store`: the imports `externs` names are made in the store (from
/// `values`, the import values of `lib/host.js`, for objects), the rest come from `linker`.
/// Returns the instance and the objects to `bind` to it.
pub fn instantiate(
    store: &mut Store<Host>,
    linker: &Linker<Host>,
    module: &wasmtime::Module,
    externs: &[HostExtern],
    values: Option<(&Env, &Object)>,
) -> Result<(wasmtime::Instance, Vec<Binding>)> {
    let mut imports = Vec::new();
    let mut bindings = Vec::new();
    let mut externs = externs.iter().peekable();
    for (index, import) in module.imports().enumerate() {
        let given = externs
            .next_if(|e| e.import_index as usize == index)
            .map(|e| &e.given);
        let made = match given {
            None => linker.get_by_import(&mut *store, &import).ok_or_else(|| {
                link_error(format!(
                    "unknown import: `{}::{}` has not been defined",
                    import.module(),
                    import.name()
                ))
            })?,
            Some(Given::Constant(val)) => {
                let ty = import.ty();
                let content = ty
                    .global()
                    .expect("constants are given to globals")
                    .content();
                Extern::Global(
                    wasmtime::Global::new(
                        &mut *store,
                        GlobalType::new(content.clone(), Mutability::Const),
                        *val,
                    )
                    .map_err(|e| link_error(crate::error::reason(&e)))?,
                )
            }
            Some(Given::Object) => {
                let Some((env, values)) = values else {
                    return Err(link_error(format!(
                        "The module imports {}.{}, {}: a one-shot run (runWasm, runWasmSync) \
                         makes a store of its own, so it cannot take a Memory, Table or mutable \
                         Global object. Use wasi.instantiate(module, imports)",
                        import.module(),
                        import.name(),
                        crate::host_functions::describe(&import.ty())
                    )));
                };
                let object: Unknown = values
                    .get_element(index as u32)
                    .map_err(|e| link_error(e.reason))?;
                let made = make_in_store(env, &object, store.as_context_mut())?;
                bindings.push(Binding {
                    object: object.raw(),
                    made: made.clone(),
                });
                made
            }
        };
        imports.push(made);
    }
    let instance = wasmtime::Instance::new(&mut *store, module, &imports)
        .map_err(crate::run::instantiate_failure)?;
    Ok((instance, bindings))
}

/// The store's copy of a `Memory`, `Table` or mutable `Global` (checked by `resolve`).
fn make_in_store(env: &Env, object: &Unknown, store: StoreContextMut<'_, Host>) -> Result<Extern> {
    if let Some(memory) = class::<Memory>(env, object) {
        return memory.instantiate_into(store).map(Extern::Memory);
    }
    if let Some(table) = class::<Table>(env, object) {
        return table.instantiate_into(store).map(Extern::Table);
    }
    match class::<Global>(env, object) {
        Some(global) => global.instantiate_into(store).map(Extern::Global),
        None => Err(link_error(
            "The imports changed while the module was being instantiated".into(),
        )),
    }
}

/// Makes each bound object the instance's: from now on it reads and writes `running`'s.
pub fn bind(env: &Env, bindings: Vec<Binding>, running: &Arc<Running>) {
    for Binding { object, made } in bindings {
        // SAFETY: `object` is a handle of the current scope.
        let object = unsafe { Unknown::from_raw_unchecked(env.raw(), object) };
        match made {
            Extern::Memory(memory) => {
                if let Some(object) = class::<Memory>(env, &object) {
                    object.bind(running.clone(), memory);
                }
            }
            Extern::Table(table) => {
                if let Some(object) = class::<Table>(env, &object) {
                    object.bind(running.clone(), table);
                }
            }
            Extern::Global(global) => {
                if let Some(object) = class::<Global>(env, &object) {
                    object.bind(running.clone(), global);
                }
            }
            _ => {}
        }
    }
}

/// An exported global or table as its JS object (`None` for what JS cannot use).
pub fn exported(
    env: &Env,
    running: &Arc<Running>,
    export: Extern,
    ty: &ExternType,
) -> napi::Result<Option<sys::napi_value>> {
    Ok(Some(match (export, ty) {
        (Extern::Global(global), ExternType::Global(ty)) => {
            let Some(num) = Num::of(ty.content()) else {
                return Ok(None);
            };
            let mutable = ty.mutability() == Mutability::Var;
            let object = Global::exported(running.clone(), global, num, mutable);
            // SAFETY: converting a new class instance on this thread.
            unsafe { Global::to_napi_value(env.raw(), object)? }
        }
        (Extern::Table(table), ExternType::Table(ty))
            if ty.element().matches(&RefType::FUNCREF) =>
        {
            let object = Table::exported(running.clone(), table);
            // SAFETY: as above.
            unsafe { Table::to_napi_value(env.raw(), object)? }
        }
        _ => return Ok(None),
    }))
}
