//! Resources crossing between JS and a component, both ways.
//!
//! A resource an imported interface declares (`resource counter { constructor(start: u32);
//! bump: func(by: u32) -> u32; }`) is served by a JS class (`lib/host.js` turns its
//! constructor, methods and statics into functions). Each handle the guest holds stands for a
//! JS object, kept in the store's `HostObjects` until the guest drops the handle (then the
//! object's `[Symbol.dispose]()` runs, if it has one) or gives it to JS. A guest on a pool
//! thread reaches the objects through its run's dispatcher, as its host calls do: arguments
//! carry references the JS thread reads, results come back as reps (`defer`) that `finish`
//! turns into handles on the guest's thread, and a dropped handle's `[Symbol.dispose]()` is a
//! call to JS like any other.
//!
//! A resource the component exports is a class on the exports object
//! (`exports['ns:pkg/iface'].blob`): `new blob(...)` calls the guest's constructor, its
//! objects hold the guest's handle, their methods call the guest, and `[Symbol.dispose]()`
//! drops the handle (the guest's destructor runs) once. An object JS never disposes keeps its
//! handle as long as the instance lives.
//!
//! `ResourceCx` is what the value conversions of `component_values.rs` consult for both.

use crate::component_imports::ComponentHostFunction;
use crate::component_values::JsOut;
use crate::engine::Host;
use crate::error::{ErrorCode, Failure, HostThrow, Result, Thrown};
use crate::instance::Running;
use crate::wasm_values::check;
use napi::bindgen_prelude::Unknown;
use napi::{sys, Env, JsValue};
use std::sync::{Arc, Mutex};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ResourceAny, ResourceDynamic, ResourceType, Type, Val};
use wasmtime::{AsContextMut, StoreContextMut};

/// A resource type an imported interface (or the component's root) declares, served by JS.
#[derive(Clone)]
pub struct HostResourceType {
    pub interface: Option<String>,
    pub name: String,
    /// The type as the component's type names it (what its functions' types refer to).
    pub ty: ResourceType,
    /// Its number among the component's host resources: the payload of its runtime type.
    pub payload: u32,
}

/// The resource types `component` imports from JS (WASI's interfaces excluded).
pub fn imported_resources(component: &Component) -> Vec<HostResourceType> {
    let engine = component.engine();
    let mut resources = Vec::new();
    let mut add = |interface: Option<&str>, name: &str, ty: ResourceType| {
        resources.push(HostResourceType {
            interface: interface.map(str::to_string),
            name: name.to_string(),
            ty,
            payload: resources.len() as u32,
        });
    };
    for (name, item) in component.component_type().imports(engine) {
        match item.ty {
            ComponentItem::Resource(ty) => add(None, name, ty),
            ComponentItem::ComponentInstance(instance) if !name.starts_with("wasi:") => {
                for (member, item) in instance.exports(engine) {
                    if let ComponentItem::Resource(ty) = item.ty {
                        add(Some(name), member, ty);
                    }
                }
            }
            _ => {}
        }
    }
    resources
}

/// What a component function is by its name: `function`, or the `constructor`, a `method` or
/// a `static` function of a resource (`[constructor]r`, `[method]r.m`, `[static]r.s`), with
/// the resource and the member's name.
pub fn member_of(name: &str) -> (&'static str, Option<&str>, Option<&str>) {
    if let Some(resource) = name.strip_prefix("[constructor]") {
        return ("constructor", Some(resource), None);
    }
    for (prefix, kind) in [("[method]", "method"), ("[static]", "static")] {
        if let Some((resource, member)) = name.strip_prefix(prefix).and_then(|r| r.split_once('.'))
        {
            return (kind, Some(resource), Some(member));
        }
    }
    ("function", None, None)
}

/// A napi reference that may be moved between threads (it is only used on its own).
#[derive(Clone, Copy)]
pub struct SendRef(pub sys::napi_ref);

// SAFETY: only dereferenced on the JS thread that made it (see `HostObjects::thread`).
unsafe impl Send for SendRef {}
unsafe impl Sync for SendRef {}

/// The JS objects behind the guest's handles to host resources, by rep.
pub struct HostObjects {
    env: sys::napi_env,
    thread: std::thread::ThreadId,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    refs: Vec<Option<SendRef>>,
    free: Vec<u32>,
}

// SAFETY: `env` is only used on `thread`.
unsafe impl Send for HostObjects {}
unsafe impl Sync for HostObjects {}

impl HostObjects {
    pub fn new(env: &Env) -> Self {
        HostObjects {
            env: env.raw(),
            thread: std::thread::current().id(),
            slots: Mutex::new(Slots::default()),
        }
    }

    fn on_its_thread(&self) -> bool {
        std::thread::current().id() == self.thread
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `value` (a JS object) for a new handle; returns its rep.
    fn insert(&self, value: sys::napi_value) -> std::result::Result<u32, Thrown> {
        let mut reference = std::ptr::null_mut();
        // SAFETY: a strong reference to a live value, on its own thread.
        check(self.env, unsafe {
            sys::napi_create_reference(self.env, value, 1, &mut reference)
        })?;
        let mut slots = self.slots();
        let reference = Some(SendRef(reference));
        Ok(match slots.free.pop() {
            Some(rep) => {
                slots.refs[rep as usize] = reference;
                rep
            }
            None => {
                slots.refs.push(reference);
                slots.refs.len() as u32 - 1
            }
        })
    }

    fn get(&self, rep: u32) -> Option<SendRef> {
        self.slots().refs.get(rep as usize).copied().flatten()
    }

    /// Forgets the object of `rep` (the guest dropped its handle or gave it away); the caller
    /// owns the reference.
    fn take(&self, rep: u32) -> Option<SendRef> {
        let mut slots = self.slots();
        let taken = slots.refs.get_mut(rep as usize).and_then(Option::take);
        if taken.is_some() {
            slots.free.push(rep);
        }
        taken
    }
}

impl Drop for HostObjects {
    fn drop(&mut self) {
        if !self.on_its_thread() {
            return; // leaked rather than released off its thread
        }
        for reference in self.slots().refs.drain(..).flatten() {
            // SAFETY: our strong references, released once, on their thread.
            unsafe { sys::napi_delete_reference(self.env, reference.0) };
        }
    }
}

/// The guest dropped its handle to host resource `rep`: `[Symbol.dispose]()` runs on the JS
/// object, which is then released. (The resource destructor of every host resource type.)
pub fn drop_host_object(store: StoreContextMut<'_, Host>, rep: u32) -> wasmtime::Result<()> {
    let Some(imports) = store.data().component_imports.clone() else {
        return Ok(());
    };
    let objects = &imports.objects;
    let Some(reference) = objects.take(rep) else {
        return Ok(());
    };
    if !objects.on_its_thread() {
        // A guest on a pool thread: the JS thread runs `[Symbol.dispose]()` (lib/host.js's
        // dispatcher, for `DISPOSE_INDEX`) while the guest waits, as for a host call.
        let dispatcher = store.data().dispatcher.clone().ok_or_else(|| {
            wasmtime::Error::msg("a host resource was dropped on a thread that cannot reach JS")
        })?;
        let stop = store.data().stop.clone();
        let dispose = ComponentHostFunction::dispose();
        let args = vec![JsOut::Host {
            reference,
            release: true,
        }];
        dispatcher.call_component(&dispose, DISPOSE_INDEX, args, &stop, imports.clone())?;
        return Ok(());
    }
    let env = objects.env;
    let scope = crate::host_functions::HandleScope::open(env);
    let disposed = (|| -> std::result::Result<(), Thrown> {
        let mut object = std::ptr::null_mut();
        // SAFETY (each napi call): live handles of this scope, on the JS thread.
        check(env, unsafe {
            sys::napi_get_reference_value(env, reference.0, &mut object)
        })?;
        let dispose = dispose_symbol(env)?;
        let mut method = std::ptr::null_mut();
        check(env, unsafe {
            sys::napi_get_property(env, object, dispose, &mut method)
        })?;
        let mut kind = sys::ValueType::napi_undefined;
        check(env, unsafe { sys::napi_typeof(env, method, &mut kind) })?;
        if kind == sys::ValueType::napi_function {
            let mut ignored = std::ptr::null_mut();
            check(env, unsafe {
                sys::napi_call_function(env, object, method, 0, std::ptr::null(), &mut ignored)
            })?;
        }
        Ok(())
    })();
    // SAFETY: the reference `take` handed over, released once.
    unsafe { sys::napi_delete_reference(env, reference.0) };
    drop(scope);
    disposed.map_err(|thrown| HostThrow(Arc::new(thrown)).into())
}

/// The import index `lib/host.js`'s dispatcher reads as "run `[Symbol.dispose]()` on the
/// argument".
pub const DISPOSE_INDEX: u32 = u32::MAX;

/// `Symbol.dispose`.
fn dispose_symbol(env: sys::napi_env) -> std::result::Result<sys::napi_value, Thrown> {
    let mut global = std::ptr::null_mut();
    let mut symbol = std::ptr::null_mut();
    let mut dispose = std::ptr::null_mut();
    // SAFETY: plain property reads on this thread.
    unsafe {
        check(env, sys::napi_get_global(env, &mut global))?;
        check(
            env,
            sys::napi_get_named_property(env, global, c"Symbol".as_ptr(), &mut symbol),
        )?;
        check(
            env,
            sys::napi_get_named_property(env, symbol, c"dispose".as_ptr(), &mut dispose),
        )?;
    }
    Ok(dispose)
}

/// One exported resource's class: its prototype, for the objects made for JS.
pub struct GuestClass {
    pub ty: ResourceType,
    pub name: String,
    pub prototype: SendRef,
}

/// The classes of an instance's exported resources, with the instance.
pub struct GuestClasses {
    pub running: Arc<Running>,
    pub env: sys::napi_env,
    pub classes: Vec<GuestClass>,
}

// SAFETY: `env` and the prototypes' references are only used on the JS thread.
unsafe impl Send for GuestClasses {}
unsafe impl Sync for GuestClasses {}

impl Drop for GuestClasses {
    fn drop(&mut self) {
        for class in &self.classes {
            // SAFETY: our strong references, released once (the exports object, which owns
            // this through its functions, is finalized on the JS thread).
            unsafe { sys::napi_delete_reference(self.env, class.prototype.0) };
        }
    }
}

/// What a JS object of an exported resource's class holds: the guest's handle, until it is
/// disposed of or given to the guest.
pub struct GuestHandle {
    pub running: Arc<Running>,
    pub handle: Mutex<Option<ResourceAny>>,
}

/// Tags the objects `GuestHandle`s are wrapped in, so no other object passes for one.
const GUEST_HANDLE_TAG: sys::napi_type_tag = sys::napi_type_tag {
    lower: 0x6e77_746d_5f72_6573,
    upper: 0x6775_6573_745f_6864,
};

/// The `GuestHandle` wrapped in `object`, if it is one of ours.
pub fn guest_handle<'a>(env: sys::napi_env, object: sys::napi_value) -> Option<&'a GuestHandle> {
    let mut tagged = false;
    // SAFETY: plain queries on a live handle of this thread; the tag guarantees the type.
    unsafe {
        if sys::napi_check_object_type_tag(env, object, &GUEST_HANDLE_TAG, &mut tagged)
            != sys::Status::napi_ok
            || !tagged
        {
            return None;
        }
        let mut data = std::ptr::null_mut();
        if sys::napi_unwrap(env, object, &mut data) != sys::Status::napi_ok || data.is_null() {
            return None;
        }
        Some(&*(data as *const GuestHandle))
    }
}

/// A guest resource on its way to JS: an object of its class holding the handle.
pub struct GuestOut {
    prototype: SendRef,
    handle: GuestHandle,
}

impl GuestOut {
    /// The JS object (`Object.create(prototype)` with the handle wrapped in it).
    pub fn into_js(self, env: sys::napi_env) -> napi::Result<sys::napi_value> {
        let fail = |what: &str| napi::Error::new(napi::Status::GenericFailure, what.to_string());
        let mut prototype = std::ptr::null_mut();
        let mut global = std::ptr::null_mut();
        let mut object_class = std::ptr::null_mut();
        let mut create = std::ptr::null_mut();
        let mut object = std::ptr::null_mut();
        // SAFETY: napi calls with live handles on the JS thread; the box is handed to the
        // object's finalizer, which frees it once.
        unsafe {
            let ok = sys::Status::napi_ok;
            if sys::napi_get_reference_value(env, self.prototype.0, &mut prototype) != ok
                || sys::napi_get_global(env, &mut global) != ok
                || sys::napi_get_named_property(env, global, c"Object".as_ptr(), &mut object_class)
                    != ok
                || sys::napi_get_named_property(env, object_class, c"create".as_ptr(), &mut create)
                    != ok
                || sys::napi_call_function(env, object_class, create, 1, &prototype, &mut object)
                    != ok
            {
                return Err(fail("cannot make the resource's object"));
            }
            let data = Box::into_raw(Box::new(self.handle));
            if sys::napi_wrap(
                env,
                object,
                data.cast(),
                Some(release_guest_handle),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            ) != ok
            {
                drop(Box::from_raw(data));
                return Err(fail("cannot wrap the resource's handle"));
            }
            sys::napi_type_tag_object(env, object, &GUEST_HANDLE_TAG);
        }
        Ok(object)
    }
}

unsafe extern "C" fn release_guest_handle(
    _env: sys::napi_env,
    data: *mut std::ffi::c_void,
    _hint: *mut std::ffi::c_void,
) {
    // SAFETY: the box `into_js` wrapped, finalized once. A handle never disposed of stays in
    // the instance's table until the instance is freed (running the guest's destructor from
    // the garbage collector is not safe).
    drop(unsafe { Box::from_raw(data.cast::<GuestHandle>()) });
}

/// What value conversions need to turn resources into JS objects and back: the store (for
/// host resources), the store's host objects, and the instance's exported classes.
#[derive(Default)]
pub struct ResourceCx<'a> {
    pub store: Option<StoreContextMut<'a, Host>>,
    pub host: Option<(&'a [HostResourceType], &'a HostObjects)>,
    pub guest: Option<&'a GuestClasses>,
    /// On the JS thread for a guest on a pool thread (no store here): a host resource's
    /// object becomes its rep, which `finish` turns into a handle on the guest's thread.
    pub defer: bool,
}

fn unsupported(path: &str, why: &str) -> Failure {
    Failure::new(
        ErrorCode::InvalidArgType,
        format!("{path} is a resource that cannot cross here: {why}"),
    )
}

impl ResourceCx<'_> {
    /// A resource the guest gives JS (`own`: JS takes it over; `borrow`: for this call).
    pub fn resource_to_js(&mut self, any: ResourceAny, path: &str) -> Result<JsOut> {
        let runtime_ty = any.ty();
        if let Some(guest) = self.guest {
            if let Some(class) = guest.classes.iter().find(|class| class.ty == runtime_ty) {
                return Ok(JsOut::Guest(GuestOut {
                    prototype: class.prototype,
                    handle: GuestHandle {
                        running: guest.running.clone(),
                        handle: Mutex::new(Some(any)),
                    },
                }));
            }
        }
        let (Some(store), Some((types, objects))) = (self.store.as_mut(), self.host) else {
            return Err(unsupported(path, "it is not one JS serves"));
        };
        if !types
            .iter()
            .any(|t| ResourceType::host_dynamic(t.payload) == runtime_ty)
        {
            return Err(unsupported(
                path,
                "it is not one JS serves or the component exports",
            ));
        }
        let owned = any.owned();
        let resource = ResourceDynamic::try_from_resource_any(any, store.as_context_mut())
            .map_err(|e| unsupported(path, &crate::error::reason(&e)))?;
        let rep = resource.rep();
        let reference = if owned {
            objects.take(rep)
        } else {
            objects.get(rep)
        };
        let reference = reference.ok_or_else(|| unsupported(path, "its JS object is gone"))?;
        Ok(JsOut::Host {
            reference,
            release: owned,
        })
    }

    /// A JS object given to the guest where `ty` (`own` or `borrow` of a resource) is expected.
    pub fn resource_from_js(&mut self, value: &Unknown, ty: &Type, path: &str) -> Result<Val> {
        let (Type::Own(resource) | Type::Borrow(resource)) = ty else {
            return Err(unsupported(path, "not a resource type"));
        };
        let env = value.value().env;
        if let Some(guest) = self.guest {
            if let Some(class) = guest.classes.iter().find(|class| class.ty == *resource) {
                let handle = guest_handle(env, value.raw())
                    .filter(|handle| Arc::ptr_eq(&handle.running, &guest.running))
                    .ok_or_else(|| {
                        Failure::new(
                            ErrorCode::InvalidArgType,
                            format!(
                                "{path} must be a {} (an object of that resource, made by this \
                                 instance)",
                                class.name
                            ),
                        )
                    })?;
                let mut slot = handle.handle.lock().unwrap_or_else(|p| p.into_inner());
                let any = match ty {
                    Type::Own(_) => slot.take(),
                    _ => *slot,
                };
                return any.map(Val::Resource).ok_or_else(|| {
                    Failure::new(
                        ErrorCode::InvalidArgValue,
                        format!(
                            "{path}: this {} was disposed of or given to the guest",
                            class.name
                        ),
                    )
                });
            }
        }
        let Some((types, objects)) = self.host.filter(|_| self.store.is_some() || self.defer)
        else {
            return Err(unsupported(
                path,
                "JS objects of host resources are given to a component only by host functions",
            ));
        };
        let Some(host) = types.iter().find(|t| t.ty == *resource) else {
            return Err(unsupported(
                path,
                "it is not one JS serves or the component exports",
            ));
        };
        if !matches!(ty, Type::Own(_)) {
            return Err(unsupported(path, "a host function cannot return a borrow"));
        }
        if value.get_type().ok() != Some(napi::ValueType::Object) {
            return Err(Failure::new(
                ErrorCode::InvalidArgType,
                format!("{path} must be an object (a {})", host.name),
            ));
        }
        let rep = objects
            .insert(value.raw())
            .map_err(|_| unsupported(path, "its JS object cannot be kept"))?;
        match self.store.as_mut() {
            Some(store) => own_handle(store.as_context_mut(), rep, host.payload, path),
            None => Ok(Val::U32(rep)),
        }
    }

    /// Turns the reps `defer` left in `val` (of type `ty`) into handles, in the guest's store.
    pub fn finish(&mut self, val: Val, ty: &Type, path: &str) -> Result<Val> {
        let Some((types, _)) = self.host.filter(|(types, _)| !types.is_empty()) else {
            return Ok(val);
        };
        let store = self
            .store
            .as_mut()
            .expect("finish runs with the guest's store");
        finish(store.as_context_mut(), types, val, ty, path)
    }
}

fn own_handle(store: StoreContextMut<'_, Host>, rep: u32, payload: u32, path: &str) -> Result<Val> {
    ResourceDynamic::new_own(rep, payload)
        .try_into_resource_any(store)
        .map(Val::Resource)
        .map_err(|e| unsupported(path, &crate::error::reason(&e)))
}

fn finish(
    mut store: StoreContextMut<'_, Host>,
    types: &[HostResourceType],
    val: Val,
    ty: &Type,
    path: &str,
) -> Result<Val> {
    let mut again = |val: Val, ty: &Type| finish(store.as_context_mut(), types, val, ty, path);
    Ok(match (val, ty) {
        (Val::U32(rep), Type::Own(resource)) => {
            let Some(host) = types.iter().find(|t| t.ty == *resource) else {
                return Err(unsupported(path, "it is not one JS serves"));
            };
            return own_handle(store.as_context_mut(), rep, host.payload, path);
        }
        (Val::List(items), Type::List(list)) => {
            let element = list.ty();
            Val::List(
                items
                    .into_iter()
                    .map(|v| again(v, &element))
                    .collect::<Result<_>>()?,
            )
        }
        (Val::Tuple(items), Type::Tuple(tuple)) => Val::Tuple(
            items
                .into_iter()
                .zip(tuple.types())
                .map(|(v, t)| again(v, &t))
                .collect::<Result<_>>()?,
        ),
        (Val::Record(fields), Type::Record(record)) => Val::Record(
            fields
                .into_iter()
                .zip(record.fields())
                .map(|((name, v), field)| Ok((name, again(v, &field.ty)?)))
                .collect::<Result<_>>()?,
        ),
        (Val::Option(Some(v)), Type::Option(option)) => {
            Val::Option(Some(Box::new(again(*v, &option.ty())?)))
        }
        (Val::Variant(tag, Some(v)), Type::Variant(variant)) => {
            let case = variant
                .cases()
                .find(|case| case.name == tag)
                .and_then(|c| c.ty);
            match case {
                Some(case) => Val::Variant(tag, Some(Box::new(again(*v, &case)?))),
                None => Val::Variant(tag, Some(v)),
            }
        }
        (Val::Result(Ok(Some(v))), Type::Result(result)) => match result.ok() {
            Some(ok) => Val::Result(Ok(Some(Box::new(again(*v, &ok)?)))),
            None => Val::Result(Ok(Some(v))),
        },
        (Val::Result(Err(Some(v))), Type::Result(result)) => match result.err() {
            Some(err) => Val::Result(Err(Some(Box::new(again(*v, &err)?)))),
            None => Val::Result(Err(Some(v))),
        },
        (val, _) => val,
    })
}
