//! The `Module` class: compiling wasm bytes or WAT text (core modules and components),
//! `kind`, import/export descriptors, `serialize`/`deserialize`, the per-module cache of
//! pre-linked forms (one per engine and import set), and the cache that lets the same bytes
//! passed again skip compilation.

use crate::command::{not_a_command, CommandPre};
use crate::component_imports::{user_component_linker, ComponentPlan};
use crate::engine::{engine, engine_for, EngineEntry, EngineKey, Host};
use crate::error::{reason, ErrorCode, Failure, Result};
use crate::host_functions::{user_linker, ImportPlan};
use crate::limits::Limits;
use crate::source::{read_buffer_source, read_source};
use hmac::Mac;
use napi::bindgen_prelude::{Buffer, Either, JsObjectValue, Object, Unknown};
use napi::{Env, ValueType};
use once_cell::sync::{Lazy, OnceCell};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use wasmtime::component::{self, Component};
use wasmtime::{Engine, InstancePre};

/// What wasmtime compiled: a core module or a component.
#[derive(Clone)]
pub enum Compiled {
    Core(wasmtime::Module),
    Component(Component),
}

/// The imports JS serves for one instantiation: a core module's or a component's.
#[derive(Clone, Copy)]
pub enum UserImports<'a> {
    Core(&'a ImportPlan),
    Component(&'a ComponentPlan),
}

impl UserImports<'_> {
    fn mask(&self) -> Arc<[bool]> {
        match self {
            UserImports::Core(plan) => plan.mask.clone(),
            UserImports::Component(plan) => plan.mask.clone(),
        }
    }
}

/// What one pre-linked form is for: an engine, a component's use as a command (one-shot
/// runs) or not, and which imports the user supplies as JS functions.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PrepareKey {
    engine: EngineKey,
    command: bool,
    user_imports: Option<Arc<[bool]>>,
}

/// A compiled program and its pre-linked forms, each made the first time it is needed.
pub struct CompiledModule {
    /// The code in the main engine.
    pub compiled: Compiled,
    /// The wasm binary, kept to compile a fuel-metered copy if `limits.fuel` asks for one
    /// (`None` for `Module.deserialize()` output).
    source: Option<Arc<[u8]>>,
    /// The fuel-metered copy, compiled in the fuel engine the first time it is needed.
    fuel_compiled: OnceCell<Compiled>,
    /// The code loaded into other engines (moved without compiling again).
    moved: Mutex<HashMap<EngineKey, Compiled>>,
    prepared: Mutex<HashMap<PrepareKey, Prepared>>,
}

/// Why `source`, which has no `\0asm` header, is not wasm: WAT's own error when it reads as
/// WebAssembly text (it starts with `(` or a comment), else that it is neither; and for a short single
/// line that names a `.wasm`/`.wat` file or a path, that a path may have been passed instead
/// of the file's contents.
fn not_wasm_message(source: &[u8], error: &wat::Error) -> String {
    let text = String::from_utf8_lossy(source);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return "empty input: expected a WebAssembly binary (starting with \\0asm) or \
                WebAssembly text"
            .to_string();
    }
    if trimmed.starts_with('(') || trimmed.starts_with(";;") || trimmed.starts_with("(;") {
        return format!("invalid WebAssembly text: {error}");
    }
    let mut message = "the input is neither a WebAssembly binary (it does not start with the \
                       \\0asm header) nor WebAssembly text (which starts with `(`)"
        .to_string();
    let looks_like_path = trimmed.len() < 4096
        && !trimmed.contains('\n')
        && (trimmed.ends_with(".wasm") || trimmed.ends_with(".wat") || trimmed.contains('/'));
    if looks_like_path {
        message.push_str(&format!(
            "; was the path {trimmed:?} passed instead of the file's bytes? Read the file \
             first, e.g. fs.readFileSync(path)"
        ));
    }
    message
}

impl CompiledModule {
    /// Compiles wasm bytes, or WAT text, into a core module or a component.
    pub fn compile(source: &[u8]) -> Result<Self> {
        let binary = if source.starts_with(b"\0asm") {
            std::borrow::Cow::Borrowed(source)
        } else {
            wat::parse_bytes(source)
                .map_err(|e| Failure::new(ErrorCode::WasmCompile, not_wasm_message(source, &e)))?
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
            moved: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.compiled {
            Compiled::Core(_) => "module",
            Compiled::Component(_) => "component",
        }
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
            compile_in(
                &engine_for(EngineKey {
                    fuel: true,
                    ..EngineKey::default()
                })?
                .engine,
                source,
            )
        })
    }

    /// The code for `entry`'s engine: compiled there (the main engine; the fuel engine
    /// compiles its own metered copy) or moved there from the engine that compiled it.
    fn code_in(&self, entry: &EngineEntry) -> Result<Compiled> {
        let key = entry.key;
        let origin_key = EngineKey {
            fuel: key.fuel,
            ..EngineKey::default()
        };
        let origin = if key.fuel {
            self.fuel_compiled()?
        } else {
            &self.compiled
        };
        if key == origin_key {
            return Ok(origin.clone());
        }
        let mut moved = self
            .moved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(code) = moved.get(&key) {
            return Ok(code.clone());
        }
        let code = match origin {
            Compiled::Core(module) => Compiled::Core(module_into(module, &entry.engine)?),
            Compiled::Component(component) => {
                Compiled::Component(component_into(component, &entry.engine)?)
            }
        };
        moved.insert(key, code.clone());
        Ok(code)
    }

    /// The pre-instantiated form and engine that `limits` call for: for a one-shot run
    /// (`run`: a command, in the pooling engine unless the limits need another) or for an
    /// instance JS holds, with `plan`'s imports served by JS functions.
    pub fn prepare(
        &self,
        limits: &Limits,
        run: bool,
        plan: Option<UserImports<'_>>,
    ) -> Result<(&'static Engine, Prepared)> {
        let entry = engine_for(limits.engine_key(run))?;
        let key = PrepareKey {
            engine: entry.key,
            command: run,
            user_imports: plan.map(|plan| plan.mask()),
        };
        let mut prepared = self
            .prepared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = prepared.get(&key) {
            return Ok((&entry.engine, found.clone()));
        }
        let made = match self.code_in(entry)? {
            Compiled::Core(module) => match plan {
                Some(UserImports::Core(plan)) if !plan.externs.is_empty() => Prepared::Linked(
                    Arc::new(user_linker(&entry.core_linker, &module, plan)?),
                    module,
                ),
                Some(UserImports::Core(plan)) => Prepared::Core(link(
                    &user_linker(&entry.core_linker, &module, plan)?,
                    &module,
                )?),
                _ => Prepared::Core(link(&entry.core_linker, &module)?),
            },
            Compiled::Component(component) => {
                let pre = match plan {
                    Some(UserImports::Component(plan)) => link_component(
                        &user_component_linker(&entry.component_linker, plan)?,
                        &component,
                    )?,
                    _ => link_component(&entry.component_linker, &component)?,
                };
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
        prepared.insert(key, made.clone());
        Ok((&entry.engine, made))
    }

    pub fn component(&self) -> Option<&Component> {
        match &self.compiled {
            Compiled::Component(component) => Some(component),
            Compiled::Core(_) => None,
        }
    }

    pub fn core(&self) -> Result<&wasmtime::Module> {
        match &self.compiled {
            Compiled::Core(module) => Ok(module),
            Compiled::Component(_) => Err(Failure::new(
                ErrorCode::InvalidArgValue,
                "expected a core module, got a component",
            )),
        }
    }
}

/// The most recent distinct inputs and their compilations, oldest first in `order`; keyed by
/// the SHA-256 of the input, so that the cache holds no copy of it (the compilation keeps the
/// one it needs).
#[derive(Default)]
struct CompileCache {
    modules: HashMap<[u8; 32], Arc<CompiledModule>>,
    order: VecDeque<[u8; 32]>,
}

/// The key of `source` in the `CompileCache`.
fn input_key(source: &[u8]) -> [u8; 32] {
    Sha256::digest(source).into()
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
    /// A core module that imports memories, tables or globals from JS, which are made in
    /// each store (`host_externs.rs`): linked at instantiation instead.
    Linked(Arc<wasmtime::Linker<Host>>, wasmtime::Module),
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

/// Compiles a wasm binary (core module or component) in `engine`, or loads its code from the
/// persistent cache (`code_cache.rs`).
fn compile_in(engine: &Engine, binary: &[u8]) -> Result<Compiled> {
    let is_component = wasmparser::Parser::is_component(binary);
    crate::code_cache::compiled(
        engine,
        binary,
        || {
            if is_component {
                Component::new(engine, binary).map(Compiled::Component)
            } else {
                wasmtime::Module::new(engine, binary).map(Compiled::Core)
            }
            .map_err(|e| Failure::new(ErrorCode::WasmCompile, reason(&e)))
        },
        |compiled| match compiled {
            Compiled::Core(module) => module.serialize().ok(),
            Compiled::Component(component) => component.serialize().ok(),
        },
        |code| {
            // SAFETY: `code` is an authentic cache entry (its MAC, under the user's private
            // key, verified) that this build wrote with `serialize` for an engine of the same
            // compatibility hash; wasmtime checks its own header too.
            if is_component {
                unsafe { Component::deserialize(engine, code) }
                    .ok()
                    .map(Compiled::Component)
            } else {
                unsafe { wasmtime::Module::deserialize(engine, code) }
                    .ok()
                    .map(Compiled::Core)
            }
        },
    )
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
    let key = input_key(source);
    CACHE.lock().unwrap().modules.get(&key).cloned()
}

/// Compiles `source`, reusing the compilation of identical bytes seen recently.
pub fn compile_cached(source: &[u8]) -> Result<Arc<CompiledModule>> {
    const CAPACITY: usize = 32;
    let key = input_key(source);
    if let Some(hit) = CACHE.lock().unwrap().modules.get(&key).cloned() {
        return Ok(hit);
    }
    let compiled = Arc::new(CompiledModule::compile(source)?);
    let cache = &mut *CACHE.lock().unwrap();
    if cache.modules.len() >= CAPACITY {
        if let Some(oldest) = cache.order.pop_front() {
            cache.modules.remove(&oldest);
        }
    }
    if cache.modules.insert(key, compiled.clone()).is_none() {
        cache.order.push_back(key);
    }
    Ok(compiled)
}

/// Internal: a `Module` for `source`, compiled once per distinct bytes. Used by `runWasm`.
#[napi(
    catch_unwind,
    ts_args_type = "source: ArrayBufferView | ArrayBuffer | string"
)]
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
    catch_unwind,
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

/// `serialize()` output: this magic, a kind byte (0 core module, 1 component), a SHA-256 of
/// the payload, an HMAC-SHA256 of the three under the user's key (`user_key.rs`), then
/// wasmtime's bytes.
const MAGIC: &[u8; 8] = b"NWASMTM\x02";
/// The magic of the first format (no MAC), refused with a message of its own.
const MAGIC_V1: &[u8; 8] = b"NWASMTM\x01";
const HEADER_LEN: usize = MAGIC.len() + 1 + 32 + 32;

/// The MAC of a `serialize()` header.
fn header_mac(key: &[u8; 32], kind: u8, checksum: &[u8]) -> crate::user_key::HmacSha256 {
    crate::user_key::mac(key, &[MAGIC, &[kind], checksum])
}

/// One import of a module: where it comes from and what it is.
#[napi(object)]
pub struct ImportDescriptor {
    pub module: String,
    pub name: String,
    /// `'function'`, `'memory'`, `'table'`, `'global'`, `'tag'`; for components `'instance'`,
    /// `'component'`, `'module'`, `'type'`, `'resource'`.
    pub kind: String,
    /// The type, as text: `func (i32, i32) -> i32` for a core function; WIT-like for a
    /// component (`func(name: string) -> string`, `instance { log: func(message: string) }`).
    #[napi(js_name = "type")]
    pub ty: String,
}

/// One export of a module.
#[napi(object)]
pub struct ExportDescriptor {
    pub name: String,
    /// Same kinds as `ImportDescriptor.kind`.
    pub kind: String,
    /// The type, as text (as `ImportDescriptor.type`).
    #[napi(js_name = "type")]
    pub ty: String,
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
        catch_unwind,
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
        catch_unwind,
        ts_args_type = "source: ArrayBufferView | ArrayBuffer | string",
        ts_return_type = "Promise<Module>"
    )]
    pub fn compile<'env>(env: &'env Env, source: Unknown) -> napi::Result<Object<'env>> {
        compile_on_pool(env, &source, "source", |bytes| {
            CompiledModule::compile(bytes).map(Arc::new)
        })
    }

    /// Loads what `serialize()` produced, without compiling. The bytes must carry the MAC
    /// of this user's key (the one `serialize()` signs with); `{ trusted: true }` loads
    /// bytes signed elsewhere (another user, machine or build step), which the caller then
    /// vouches for: forged bytes are native code that runs in this process. Throws
    /// `ERR_WASM_DESERIALIZE` for bytes that are not intact `serialize()` output of this
    /// package version on this kind of CPU, or not signed by this user's key.
    #[napi(
        catch_unwind,
        factory,
        ts_args_type = "bytes: ArrayBufferView | ArrayBuffer, options?: { trusted?: boolean }"
    )]
    pub fn deserialize(env: Env, bytes: Unknown, options: Unknown) -> napi::Result<Self> {
        let load = || -> Result<Self> {
            let trusted = trusted_option(&options)?;
            let bytes = read_buffer_source(&bytes).ok_or_else(|| {
                crate::source::invalid_type(
                    "bytes",
                    "an instance of Buffer, TypedArray, DataView, or ArrayBuffer",
                    &bytes,
                )
            })?;
            Ok(Module {
                inner: Arc::new(deserialize(bytes, trusted)?),
            })
        };
        load().map_err(|f| f.into_napi(&env))
    }

    /// The compiled code, for `Module.deserialize` in a later process (same package version,
    /// same CPU kind), signed with this user's key (made in the user's node-wasmtime
    /// directory the first time). Throws `ERR_WASM_SERIALIZE` when that key cannot be made
    /// or read.
    #[napi(catch_unwind)]
    pub fn serialize(&self, env: Env) -> napi::Result<Buffer> {
        let fail = |why: String| Failure::new(ErrorCode::WasmSerialize, why).into_napi(&env);
        let key = crate::user_key::serialization_key()
            .map_err(|why| fail(format!("cannot sign the compiled code: {why}")))?;
        let (kind, payload) = match &self.inner.compiled {
            Compiled::Core(module) => (0u8, module.serialize()),
            Compiled::Component(component) => (1u8, component.serialize()),
        };
        let payload = payload.map_err(|e| fail(reason(&e)))?;
        let checksum = Sha256::digest(&payload);
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.push(kind);
        out.extend_from_slice(&checksum);
        out.extend_from_slice(&header_mac(&key, kind, &checksum).finalize().into_bytes());
        out.extend_from_slice(&payload);
        Ok(out.into())
    }

    /// `'module'` for a core module, `'component'` for a component.
    #[napi(catch_unwind, getter, ts_return_type = "'module' | 'component'")]
    pub fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    /// What the module imports, in declaration order.
    #[napi(catch_unwind)]
    pub fn imports(&self) -> Vec<ImportDescriptor> {
        match &self.inner.compiled {
            Compiled::Core(module) => module
                .imports()
                .map(|import| ImportDescriptor {
                    module: import.module().to_string(),
                    name: import.name().to_string(),
                    kind: extern_kind(&import.ty()).to_string(),
                    ty: crate::wit_text::core(&import.ty()),
                })
                .collect(),
            Compiled::Component(component) => {
                let ty = component.component_type();
                ty.imports(engine())
                    .map(|(name, item)| ImportDescriptor {
                        module: String::new(),
                        name: name.to_string(),
                        kind: component_item_kind(&item.ty).to_string(),
                        ty: crate::wit_text::item(engine(), &item.ty),
                    })
                    .collect()
            }
        }
    }

    /// What the module exports, in declaration order.
    #[napi(catch_unwind)]
    pub fn exports(&self) -> Vec<ExportDescriptor> {
        match &self.inner.compiled {
            Compiled::Core(module) => module
                .exports()
                .map(|export| ExportDescriptor {
                    name: export.name().to_string(),
                    kind: extern_kind(&export.ty()).to_string(),
                    ty: crate::wit_text::core(&export.ty()),
                })
                .collect(),
            Compiled::Component(component) => {
                let ty = component.component_type();
                ty.exports(engine())
                    .map(|(name, item)| ExportDescriptor {
                        name: name.to_string(),
                        kind: component_item_kind(&item.ty).to_string(),
                        ty: crate::wit_text::item(engine(), &item.ty),
                    })
                    .collect()
            }
        }
    }
}

/// `options.trusted` of `Module.deserialize(bytes, options)`: false when left out.
fn trusted_option(options: &Unknown) -> Result<bool> {
    match options.get_type() {
        Ok(ValueType::Undefined) => return Ok(false),
        Ok(ValueType::Object) => {}
        _ => {
            return Err(crate::source::invalid_type(
                "options",
                "of type object",
                options,
            ))
        }
    }
    // SAFETY: `options` is a live object handle of the current call.
    let object = unsafe { options.cast::<Object>() }
        .map_err(|e| Failure::new(ErrorCode::InvalidArgType, e.reason))?;
    let trusted = object
        .get_named_property::<Unknown>("trusted")
        .map_err(|e| Failure::new(ErrorCode::InvalidArgValue, e.reason))?;
    match trusted.get_type() {
        Ok(ValueType::Undefined) => Ok(false),
        // SAFETY: checked to be a boolean just above.
        Ok(ValueType::Boolean) => unsafe { trusted.cast::<bool>() }
            .map_err(|e| Failure::new(ErrorCode::InvalidArgType, e.reason)),
        _ => Err(crate::source::invalid_type(
            "options.trusted",
            "of type boolean",
            &trusted,
        )),
    }
}

/// Loads `serialize()` output: intact (its SHA-256) and, unless `trusted`, signed by this
/// user's key.
fn deserialize(bytes: &[u8], trusted: bool) -> Result<CompiledModule> {
    let fail = |why: &str| {
        Failure::new(
            ErrorCode::WasmDeserialize,
            format!("cannot deserialize module: {why}"),
        )
    };
    if bytes.starts_with(MAGIC_V1) {
        return Err(fail(
            "made by an older node-wasmtime (0.1.0 before signed output): serialize() it again",
        ));
    }
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(fail("not the output of Module.prototype.serialize()"));
    }
    let kind = bytes[MAGIC.len()];
    let (checksum, rest) = bytes[MAGIC.len() + 1..].split_at(32);
    let (tag, payload) = rest.split_at(32);
    if Sha256::digest(payload).as_slice() != checksum {
        return Err(fail("the bytes are corrupt (checksum mismatch)"));
    }
    if !trusted {
        let key = crate::user_key::serialization_key()
            .map_err(|why| fail(&format!("cannot check who signed the bytes: {why}")))?;
        if header_mac(&key, kind, checksum).verify_slice(tag).is_err() {
            return Err(fail(
                "the bytes are not signed by this user's key: another user, machine or \
                 installation serialized them, or they are forged. Pass { trusted: true } only \
                 for bytes whose origin you vouch for: they become native code in this process",
            ));
        }
    }
    // SAFETY: wasmtime requires the payload to be the output of its own `serialize` for this
    // engine. The SHA-256 above establishes that the payload is intact, and the MAC under
    // the user's private key that our `serialize()` wrote it (or, `trusted`, the caller
    // vouches for it); wasmtime itself then rejects output of another wasmtime version or an
    // incompatible engine configuration or CPU.
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
        let failure = deserialize(b"definitely not a module at all, really not", false)
            .err()
            .unwrap();
        assert_eq!(failure.code, ErrorCode::WasmDeserialize);
    }
}
