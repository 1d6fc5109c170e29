//! The `Module` class: compiling wasm bytes or WAT text (core modules and components),
//! `kind`, import/export descriptors, `serialize`/`deserialize`, the per-module cached
//! `InstancePre`, and the cache that lets the same bytes passed again skip compilation.

use crate::command::{not_a_command, CommandPre};
use crate::engine::{
    component_linker, core_linker, engine, fuel_component_linker, fuel_engine, fuel_linker,
    run_component_linker, run_engine, run_linker, stack_engine, Host,
};
use crate::error::{reason, ErrorCode, Failure, Result};
use crate::limits::Limits;
use crate::source::{read_buffer_source, read_source};
use napi::bindgen_prelude::{Buffer, Either, Object, Unknown};
use napi::Env;
use once_cell::sync::{Lazy, OnceCell};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use wasmtime::component::{self, Component};
use wasmtime::{Engine, InstancePre};

/// What wasmtime compiled: a core module or a component.
pub enum Compiled {
    Core(wasmtime::Module),
    Component(Component),
}

/// A compiled program and, once first needed, its pre-linked forms: for `wasi.instantiate()`
/// in the main engine, and for one-shot runs in the run engine.
pub struct CompiledModule {
    pub compiled: Compiled,
    instance_pre: OnceCell<InstancePre<Host>>,
    run_instance_pre: OnceCell<InstancePre<Host>>,
    component_pre: OnceCell<component::InstancePre<Host>>,
    run_command_pre: OnceCell<CommandPre<Host>>,
    /// The wasm binary, kept to compile a fuel-metered copy if `limits.fuel` asks for one
    /// (`None` for `Module.deserialize()` output).
    source: Option<Arc<[u8]>>,
    /// The fuel-metered copy and its pre-linked forms, all in the fuel engine.
    fuel_compiled: OnceCell<Compiled>,
    fuel_instance_pre: OnceCell<InstancePre<Host>>,
    fuel_component_pre: OnceCell<component::InstancePre<Host>>,
    fuel_command_pre: OnceCell<CommandPre<Host>>,
    /// `limits.maxStack` forms, by (stack size, fuel, one-shot run).
    stack_prepared: Mutex<HashMap<(usize, bool, bool), Prepared>>,
}

impl CompiledModule {
    /// Compiles wasm bytes, or WAT text, into a core module or a component.
    pub fn compile(source: &[u8]) -> Result<Self> {
        let binary = if source.starts_with(b"\0asm") {
            std::borrow::Cow::Borrowed(source)
        } else {
            wat::parse_bytes(source).map_err(|e| {
                Failure::new(
                    ErrorCode::WasmCompile,
                    format!("invalid WebAssembly text: {e}"),
                )
            })?
        };
        let compiled = compile_in(engine(), &binary)?;
        Ok(Self::from_compiled(
            compiled,
            Some(binary.into_owned().into()),
        ))
    }

    fn from_compiled(compiled: Compiled, source: Option<Arc<[u8]>>) -> Self {
        CompiledModule {
            compiled,
            source,
            fuel_compiled: OnceCell::new(),
            fuel_instance_pre: OnceCell::new(),
            fuel_component_pre: OnceCell::new(),
            fuel_command_pre: OnceCell::new(),
            stack_prepared: Mutex::new(HashMap::new()),
            instance_pre: OnceCell::new(),
            run_instance_pre: OnceCell::new(),
            component_pre: OnceCell::new(),
            run_command_pre: OnceCell::new(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.compiled {
            Compiled::Core(_) => "module",
            Compiled::Component(_) => "component",
        }
    }

    /// The module linked against WASI once, for `wasi.instantiate()`.
    fn instance_pre(&self) -> Result<&InstancePre<Host>> {
        let module = self.core()?;
        self.instance_pre
            .get_or_try_init(|| link(core_linker(), module))
    }

    /// The module loaded into the run engine and linked once, so each run only allocates
    /// and initialises.
    fn run_instance_pre(&self) -> Result<&InstancePre<Host>> {
        let module = self.core()?;
        self.run_instance_pre
            .get_or_try_init(|| link(run_linker(), &module_into(module, run_engine())?))
    }

    /// The component linked against WASI 0.2 once, for `wasi.instantiate()`.
    fn component_pre(&self) -> Result<&component::InstancePre<Host>> {
        let component = self.component()?;
        self.component_pre
            .get_or_try_init(|| link_component(component_linker(), component))
    }

    /// The component loaded into the run engine, linked once and checked to be a command
    /// (`ERR_INVALID_ARG_VALUE` if it has no `wasi:cli/run`).
    fn run_command_pre(&self) -> Result<&CommandPre<Host>> {
        let component = self.component()?;
        self.run_command_pre.get_or_try_init(|| {
            let component = component_into(component, run_engine())?;
            let pre = link_component(run_component_linker(), &component)?;
            CommandPre::new(pre).map_err(|e| not_a_command(ErrorCode::InvalidArgValue, &e))
        })
    }

    /// The fuel-metered copy (`limits.fuel`), compiled from the source the first time.
    fn fuel_compiled(&self) -> Result<&Compiled> {
        self.fuel_compiled.get_or_try_init(|| {
            let source = self.source.as_ref().ok_or_else(|| {
                Failure::new(
                    ErrorCode::InvalidArgValue,
                    "limits.fuel needs a Module compiled from wasm bytes or text: the output of \
                     Module.deserialize() has no source to compile with fuel metering",
                )
            })?;
            compile_in(fuel_engine(), source)
        })
    }

    /// `instance_pre()` of the fuel-metered copy.
    fn fuel_instance_pre(&self) -> Result<&InstancePre<Host>> {
        match self.fuel_compiled()? {
            Compiled::Core(module) => self
                .fuel_instance_pre
                .get_or_try_init(|| link(fuel_linker(), module)),
            Compiled::Component(_) => Err(kind_mismatch("a core module")),
        }
    }

    /// `component_pre()` of the fuel-metered copy.
    fn fuel_component_pre(&self) -> Result<&component::InstancePre<Host>> {
        match self.fuel_compiled()? {
            Compiled::Component(component) => self
                .fuel_component_pre
                .get_or_try_init(|| link_component(fuel_component_linker(), component)),
            Compiled::Core(_) => Err(kind_mismatch("a component")),
        }
    }

    /// `run_command_pre()` of the fuel-metered copy.
    fn fuel_command_pre(&self) -> Result<&CommandPre<Host>> {
        self.fuel_command_pre.get_or_try_init(|| {
            let pre = self.fuel_component_pre()?.clone();
            CommandPre::new(pre).map_err(|e| not_a_command(ErrorCode::InvalidArgValue, &e))
        })
    }

    /// The pre-instantiated form and engine that `limits` call for: for a one-shot run
    /// (`run`: a command, in the pooling engine) or for an instance JS holds.
    pub fn prepare(&self, limits: &Limits, run: bool) -> Result<(&'static Engine, Prepared)> {
        let fuel = limits.uses_fuel();
        if let Some(max_stack) = limits.max_stack() {
            return self.prepare_with_stack(max_stack, fuel, run);
        }
        Ok(match (&self.compiled, fuel, run) {
            (Compiled::Core(_), false, false) => {
                (engine(), Prepared::Core(self.instance_pre()?.clone()))
            }
            (Compiled::Core(_), false, true) => (
                run_engine(),
                Prepared::Core(self.run_instance_pre()?.clone()),
            ),
            (Compiled::Core(_), true, _) => (
                fuel_engine(),
                Prepared::Core(self.fuel_instance_pre()?.clone()),
            ),
            (Compiled::Component(_), false, false) => {
                (engine(), Prepared::Component(self.component_pre()?.clone()))
            }
            (Compiled::Component(_), false, true) => (
                run_engine(),
                Prepared::Command(self.run_command_pre()?.clone()),
            ),
            (Compiled::Component(_), true, false) => (
                fuel_engine(),
                Prepared::Component(self.fuel_component_pre()?.clone()),
            ),
            (Compiled::Component(_), true, true) => (
                fuel_engine(),
                Prepared::Command(self.fuel_command_pre()?.clone()),
            ),
        })
    }

    /// `prepare` for `limits.maxStack`: the code moved into that stack size's engine, linked
    /// there once per (stack, fuel, run).
    fn prepare_with_stack(
        &self,
        max_stack: usize,
        fuel: bool,
        run: bool,
    ) -> Result<(&'static Engine, Prepared)> {
        let target = stack_engine(max_stack, fuel)?;
        let key = (max_stack, fuel, run);
        let mut cache = self
            .stack_prepared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(prepared) = cache.get(&key) {
            return Ok((&target.engine, prepared.clone()));
        }
        let compiled = if fuel {
            self.fuel_compiled()?
        } else {
            &self.compiled
        };
        let prepared = match compiled {
            Compiled::Core(module) => Prepared::Core(link(
                &target.core_linker,
                &module_into(module, &target.engine)?,
            )?),
            Compiled::Component(component) => {
                let component = component_into(component, &target.engine)?;
                let pre = link_component(&target.component_linker, &component)?;
                if run {
                    Prepared::Command(
                        CommandPre::new(pre)
                            .map_err(|e| not_a_command(ErrorCode::InvalidArgValue, &e))?,
                    )
                } else {
                    Prepared::Component(pre)
                }
            }
        };
        cache.insert(key, prepared.clone());
        Ok((&target.engine, prepared))
    }

    fn core(&self) -> Result<&wasmtime::Module> {
        match &self.compiled {
            Compiled::Core(module) => Ok(module),
            Compiled::Component(_) => Err(Failure::new(
                ErrorCode::InvalidArgValue,
                "expected a core module, got a component",
            )),
        }
    }

    fn component(&self) -> Result<&Component> {
        match &self.compiled {
            Compiled::Component(component) => Ok(component),
            Compiled::Core(_) => Err(Failure::new(
                ErrorCode::InvalidArgValue,
                "expected a component, got a core module",
            )),
        }
    }
}

/// The most recent distinct inputs and their compilations, oldest first in `order`.
#[derive(Default)]
struct CompileCache {
    modules: HashMap<Box<[u8]>, Arc<CompiledModule>>,
    order: VecDeque<Box<[u8]>>,
}

fn link(linker: &wasmtime::Linker<Host>, module: &wasmtime::Module) -> Result<InstancePre<Host>> {
    linker
        .instantiate_pre(module)
        .map_err(|e| Failure::new(ErrorCode::WasmLink, reason(&e)))
}

/// A guest ready to instantiate: a core module, a component, or a component as a command.
#[derive(Clone)]
pub enum Prepared {
    Core(InstancePre<Host>),
    Component(component::InstancePre<Host>),
    Command(CommandPre<Host>),
}

/// `module`'s compiled code loaded into `engine` without compiling again.
fn module_into(module: &wasmtime::Module, engine: &Engine) -> Result<wasmtime::Module> {
    let bytes = module
        .serialize()
        .map_err(|e| Failure::new(ErrorCode::WasmCompile, reason(&e)))?;
    // SAFETY: `bytes` is wasmtime's own serialization of `module`, made just above in this
    // process by the same wasmtime build; our engines differ only in how they allocate
    // instances and how deep the wasm stack may go, which compiled code does not depend on
    // (fuel metering does, so a fuel engine only ever receives fuel-compiled code).
    unsafe { wasmtime::Module::deserialize(engine, &bytes) }
        .map_err(|e| Failure::new(ErrorCode::WasmCompile, reason(&e)))
}

/// `module_into` for a component.
fn component_into(component: &Component, engine: &Engine) -> Result<Component> {
    let bytes = component
        .serialize()
        .map_err(|e| Failure::new(ErrorCode::WasmCompile, reason(&e)))?;
    // SAFETY: as in `module_into`.
    unsafe { Component::deserialize(engine, &bytes) }
        .map_err(|e| Failure::new(ErrorCode::WasmCompile, reason(&e)))
}

/// Compiles a wasm binary (core module or component) in `engine`.
fn compile_in(engine: &Engine, binary: &[u8]) -> Result<Compiled> {
    if wasmparser::Parser::is_component(binary) {
        Component::new(engine, binary).map(Compiled::Component)
    } else {
        wasmtime::Module::new(engine, binary).map(Compiled::Core)
    }
    .map_err(|e| Failure::new(ErrorCode::WasmCompile, reason(&e)))
}

fn kind_mismatch(expected: &str) -> Failure {
    Failure::new(ErrorCode::InvalidArgValue, format!("expected {expected}"))
}

fn link_component(
    linker: &component::Linker<Host>,
    component: &Component,
) -> Result<component::InstancePre<Host>> {
    linker
        .instantiate_pre(component)
        .map_err(|e| Failure::new(ErrorCode::WasmLink, reason(&e)))
}

static CACHE: Lazy<Mutex<CompileCache>> = Lazy::new(Default::default);

/// The compilation of `source` if it is among the recent inputs.
fn cached(source: &[u8]) -> Option<Arc<CompiledModule>> {
    CACHE.lock().unwrap().modules.get(source).cloned()
}

/// Compiles `source`, reusing the compilation of identical bytes seen recently.
pub fn compile_cached(source: &[u8]) -> Result<Arc<CompiledModule>> {
    const CAPACITY: usize = 32;
    if let Some(hit) = cached(source) {
        return Ok(hit);
    }
    let compiled = Arc::new(CompiledModule::compile(source)?);
    let cache = &mut *CACHE.lock().unwrap();
    if cache.modules.len() >= CAPACITY {
        if let Some(oldest) = cache.order.pop_front() {
            cache.modules.remove(&oldest);
        }
    }
    if cache
        .modules
        .insert(source.into(), compiled.clone())
        .is_none()
    {
        cache.order.push_back(source.into());
    }
    Ok(compiled)
}

/// Internal: a `Module` for `source`, compiled once per distinct bytes. Used by `runWasm`.
#[napi(ts_args_type = "source: ArrayBufferView | ArrayBuffer | string")]
pub fn compile_cached_module(env: Env, source: Unknown) -> napi::Result<Module> {
    let compile = || -> Result<Module> {
        let source = read_source(&source, "wasm")?;
        Ok(Module {
            inner: compile_cached(source.as_bytes())?,
        })
    };
    compile().map_err(|f| f.into_napi(&env))
}

/// Internal: `compileCachedModule` off the main thread (a recent input comes back at once,
/// not as a promise). Used by `runWasm`.
#[napi(
    ts_args_type = "source: ArrayBufferView | ArrayBuffer | string",
    ts_return_type = "Module | Promise<Module>"
)]
pub fn compile_cached_module_async<'env>(
    env: &'env Env,
    source: Unknown,
) -> napi::Result<Either<Module, Object<'env>>> {
    let hit = read_source(&source, "wasm")
        .map(|bytes| cached(bytes.as_bytes()))
        .map_err(|f| f.into_napi(env))?;
    match hit {
        Some(inner) => Ok(Either::A(Module { inner })),
        None => compile_on_pool(env, &source, "wasm", compile_cached).map(Either::B),
    }
}

/// Copies `source` and compiles it with `compile` on the guest pool; the promise resolves to
/// a `Module`. Bad input rejects too, as Node's promise APIs do.
fn compile_on_pool<'env>(
    env: &'env Env,
    source: &Unknown,
    name: &str,
    compile: fn(&[u8]) -> Result<Arc<CompiledModule>>,
) -> napi::Result<Object<'env>> {
    let bytes = read_source(source, name).map(|source| source.as_bytes().to_vec());
    let (deferred, promise) = env.create_deferred()?;
    let settle = move |compiled: Result<Arc<CompiledModule>>| {
        deferred.resolve(move |env: Env| {
            compiled
                .map(|inner| Module { inner })
                .map_err(|f| f.into_napi(&env))
        })
    };
    match bytes {
        Ok(bytes) => crate::pool::spawn(move || settle(compile(&bytes))),
        Err(failure) => settle(Err(failure)),
    }
    Ok(promise)
}

/// `serialize()` output: this header, a SHA-256 of the payload, then wasmtime's bytes.
const MAGIC: &[u8; 8] = b"NWASMTM\x01";
const HEADER_LEN: usize = MAGIC.len() + 1 + 32;

/// One import of a module: where it comes from and what it is.
#[napi(object)]
pub struct ImportDescriptor {
    pub module: String,
    pub name: String,
    /// `'function'`, `'memory'`, `'table'`, `'global'`, `'tag'`; for components `'instance'`,
    /// `'component'`, `'module'`, `'type'`, `'resource'`.
    pub kind: String,
}

/// One export of a module.
#[napi(object)]
pub struct ExportDescriptor {
    pub name: String,
    /// Same kinds as `ImportDescriptor.kind`.
    pub kind: String,
}

/// A compiled WebAssembly core module or component. Immutable: compile once, run many times.
#[napi]
pub struct Module {
    pub(crate) inner: Arc<CompiledModule>,
}

#[napi]
impl Module {
    /// Compiles a core module or a component from wasm bytes (`Buffer`, any `TypedArray`,
    /// `DataView`, `ArrayBuffer`) or WAT text. Throws `ERR_WASM_COMPILE` with wasmtime's
    /// reason when the input does not compile.
    #[napi(
        constructor,
        ts_args_type = "source: ArrayBufferView | ArrayBuffer | string"
    )]
    pub fn new(env: Env, source: Unknown) -> napi::Result<Self> {
        let compile = || -> Result<Self> {
            let source = read_source(&source, "source")?;
            Ok(Module {
                inner: Arc::new(CompiledModule::compile(source.as_bytes())?),
            })
        };
        compile().map_err(|f| f.into_napi(&env))
    }

    /// Compiles like `new Module(source)`, on node-wasmtime's own threads: the promise
    /// resolves to the `Module`, or rejects with `ERR_WASM_COMPILE`. The bytes are copied
    /// first, so the caller may reuse its buffer at once.
    #[napi(
        ts_args_type = "source: ArrayBufferView | ArrayBuffer | string",
        ts_return_type = "Promise<Module>"
    )]
    pub fn compile<'env>(env: &'env Env, source: Unknown) -> napi::Result<Object<'env>> {
        compile_on_pool(env, &source, "source", |bytes| {
            CompiledModule::compile(bytes).map(Arc::new)
        })
    }

    /// Loads what `serialize()` produced, without compiling. Throws `ERR_WASM_DESERIALIZE`
    /// for bytes that are not intact `serialize()` output of this package version on this
    /// kind of CPU. The checksum guards against corruption, not against forgery: only load
    /// bytes you produced.
    #[napi(factory, ts_args_type = "bytes: ArrayBufferView | ArrayBuffer")]
    pub fn deserialize(env: Env, bytes: Unknown) -> napi::Result<Self> {
        let load = || -> Result<Self> {
            let bytes = read_buffer_source(&bytes).ok_or_else(|| {
                crate::source::invalid_type(
                    "bytes",
                    "an instance of Buffer, TypedArray, DataView, or ArrayBuffer",
                    &bytes,
                )
            })?;
            Ok(Module {
                inner: Arc::new(deserialize(bytes)?),
            })
        };
        load().map_err(|f| f.into_napi(&env))
    }

    /// The compiled code, for `Module.deserialize` in a later process (same package version,
    /// same CPU kind).
    #[napi]
    pub fn serialize(&self, env: Env) -> napi::Result<Buffer> {
        let (kind, payload) = match &self.inner.compiled {
            Compiled::Core(module) => (0u8, module.serialize()),
            Compiled::Component(component) => (1u8, component.serialize()),
        };
        let payload = payload
            .map_err(|e| Failure::new(ErrorCode::WasmDeserialize, reason(&e)).into_napi(&env))?;
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.push(kind);
        out.extend_from_slice(&Sha256::digest(&payload));
        out.extend_from_slice(&payload);
        Ok(out.into())
    }

    /// `'module'` for a core module, `'component'` for a component.
    #[napi(getter, ts_return_type = "'module' | 'component'")]
    pub fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    /// What the module imports, in declaration order.
    #[napi]
    pub fn imports(&self) -> Vec<ImportDescriptor> {
        match &self.inner.compiled {
            Compiled::Core(module) => module
                .imports()
                .map(|import| ImportDescriptor {
                    module: import.module().to_string(),
                    name: import.name().to_string(),
                    kind: extern_kind(&import.ty()).to_string(),
                })
                .collect(),
            Compiled::Component(component) => {
                let ty = component.component_type();
                ty.imports(engine())
                    .map(|(name, item)| ImportDescriptor {
                        module: String::new(),
                        name: name.to_string(),
                        kind: component_item_kind(&item.ty).to_string(),
                    })
                    .collect()
            }
        }
    }

    /// What the module exports, in declaration order.
    #[napi]
    pub fn exports(&self) -> Vec<ExportDescriptor> {
        match &self.inner.compiled {
            Compiled::Core(module) => module
                .exports()
                .map(|export| ExportDescriptor {
                    name: export.name().to_string(),
                    kind: extern_kind(&export.ty()).to_string(),
                })
                .collect(),
            Compiled::Component(component) => {
                let ty = component.component_type();
                ty.exports(engine())
                    .map(|(name, item)| ExportDescriptor {
                        name: name.to_string(),
                        kind: component_item_kind(&item.ty).to_string(),
                    })
                    .collect()
            }
        }
    }
}

fn deserialize(bytes: &[u8]) -> Result<CompiledModule> {
    let fail = |why: &str| {
        Failure::new(
            ErrorCode::WasmDeserialize,
            format!("cannot deserialize module: {why}"),
        )
    };
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(fail("not the output of Module.prototype.serialize()"));
    }
    let kind = bytes[MAGIC.len()];
    let (checksum, payload) = bytes[MAGIC.len() + 1..].split_at(32);
    if Sha256::digest(payload).as_slice() != checksum {
        return Err(fail("the bytes are corrupt (checksum mismatch)"));
    }
    // SAFETY: wasmtime requires the payload to be the output of its own `serialize` for this
    // engine. The magic and the SHA-256 above establish that these bytes are exactly what our
    // `serialize()` wrote; wasmtime itself then rejects output of another wasmtime version or
    // an incompatible engine configuration or CPU.
    let compiled = unsafe {
        match kind {
            0 => wasmtime::Module::deserialize(engine(), payload).map(Compiled::Core),
            1 => Component::deserialize(engine(), payload).map(Compiled::Component),
            _ => return Err(fail("unknown module kind")),
        }
    }
    .map_err(|e| fail(&reason(&e)))?;
    Ok(CompiledModule::from_compiled(compiled, None))
}

fn extern_kind(ty: &wasmtime::ExternType) -> &'static str {
    match ty {
        wasmtime::ExternType::Func(_) => "function",
        wasmtime::ExternType::Memory(_) => "memory",
        wasmtime::ExternType::Table(_) => "table",
        wasmtime::ExternType::Global(_) => "global",
        wasmtime::ExternType::Tag(_) => "tag",
    }
}

fn component_item_kind(item: &wasmtime::component::types::ComponentItem) -> &'static str {
    use wasmtime::component::types::ComponentItem;
    match item {
        ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_) => "function",
        ComponentItem::Module(_) => "module",
        ComponentItem::Component(_) => "component",
        ComponentItem::ComponentInstance(_) => "instance",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &[u8] = b"(module (func (export \"f\") (result i32) i32.const 7))";

    #[test]
    fn detects_kind_from_text() {
        assert_eq!(CompiledModule::compile(WAT).unwrap().kind(), "module");
        assert_eq!(
            CompiledModule::compile(b"(component)").unwrap().kind(),
            "component"
        );
    }

    #[test]
    fn the_same_bytes_compile_once() {
        let a = compile_cached(WAT).unwrap();
        let b = compile_cached(WAT).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn rejects_foreign_serialized_bytes() {
        let failure = deserialize(b"definitely not a module at all, really not")
            .err()
            .unwrap();
        assert_eq!(failure.code, ErrorCode::WasmDeserialize);
    }
}
