//! The `Module` class: compiling wasm bytes or WAT text (core modules and components),
//! `kind`, import/export descriptors, `serialize`/`deserialize`, the per-module cache of
//! pre-linked forms (one per engine and import set), and the cache that lets the same bytes
//! passed again skip compilation.

use crate::command::{not_a_command, CommandPre};
use crate::component_imports::{user_component_linker, ComponentPlan};
use crate::engine::{engine, engine_for, Compiler, EngineEntry, EngineKey, Host};
use crate::error::{reason, ErrorCode, Failure, Result};
use crate::host_functions::{user_linker, ImportPlan};
use crate::limits::Limits;
use crate::source::{read_buffer_source, read_source};
use napi::bindgen_prelude::{Buffer, Either, JsObjectValue, Object, Unknown};
use napi::{Env, ValueType};
use once_cell::sync::{Lazy, OnceCell};
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

/// Which compiler `new Module(source, { compiler })` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompilerChoice {
    #[default]
    Cranelift,
    /// Winch, or Cranelift for a module Winch cannot compile.
    Winch,
    /// Winch now, and Cranelift's code for the runs that start once a background compile of
    /// it finishes (at once when the persistent cache holds Cranelift's code already).
    Tiered,
}

/// A compiled program and its pre-linked forms, each made the first time it is needed.
pub struct CompiledModule {
    /// The code first compiled, in the main engine of `compiler`; its types describe the
    /// module.
    pub compiled: Compiled,
    /// What compiled `compiled`.
    compiler: Compiler,
    /// For a tiered module first compiled by Winch: Cranelift's code, once its background
    /// compile finished; the runs and instances made from then on use it.
    optimized: OnceCell<Compiled>,
    /// The wasm binary, kept to compile a fuel-metered copy if `limits.fuel` asks for one
    /// (and Cranelift's code of a tiered module) (`None` for `Module.deserialize()` output).
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
    /// Compiles wasm bytes, or WAT text, into a core module or a component, with Cranelift.
    pub fn compile(source: &[u8]) -> Result<Arc<Self>> {
        Self::compile_with(source, CompilerChoice::Cranelift)
    }

    /// Compiles wasm bytes, or WAT text, with the compiler `choice` names. Winch falls back
    /// to Cranelift for a module it cannot compile (one using a proposal it lacks); a tiered
    /// module starts Cranelift's compile on a thread of its own.
    pub fn compile_with(source: &[u8], choice: CompilerChoice) -> Result<Arc<Self>> {
        let binary: Arc<[u8]> = if source.starts_with(b"\0asm") {
            source.into()
        } else {
            wat::parse_bytes(source)
                .map_err(|e| Failure::new(ErrorCode::WasmCompile, not_wasm_message(source, &e)))?
                .into_owned()
                .into()
        };
        let cranelift = engine();
        let baseline = match choice {
            CompilerChoice::Cranelift => None,
            // A tiered module whose optimized code the persistent cache holds starts on it.
            CompilerChoice::Tiered if crate::code_cache::contains(cranelift, &binary) => None,
            // No Winch engine (a CPU Winch does not support) is no Winch code either.
            CompilerChoice::Winch | CompilerChoice::Tiered => winch_engine()
                .ok()
                .and_then(|winch| compile_in(winch, &binary).ok()),
        };
        let (compiled, compiler) = match baseline {
            Some(code) => (code, Compiler::Winch),
            None => (compile_in(cranelift, &binary)?, Compiler::Cranelift),
        };
        let module = Arc::new(Self::from_compiled(compiled, compiler, Some(binary)));
        if choice == CompilerChoice::Tiered && compiler == Compiler::Winch {
            module.tier_up();
        }
        Ok(module)
    }

    /// Compiles Cranelift's code of this Winch-compiled module in the background, on the
    /// low-priority tier-up pool (`tier_up.rs`), for the runs that start once it is done. The
    /// job holds the source, not the module: a module dropped meanwhile is not kept alive, and
    /// its compile is simply not used.
    fn tier_up(self: &Arc<Self>) {
        let Some(source) = self.source.clone() else {
            return;
        };
        let module = Arc::downgrade(self);
        // No pool to be had: the module stays on Winch's code, which runs correctly.
        crate::tier_up::spawn(move || {
            if let Ok(code) = compile_in(engine(), &source) {
                if let Some(module) = module.upgrade() {
                    let _ = module.optimized.set(code);
                }
            }
        });
    }

    fn from_compiled(compiled: Compiled, compiler: Compiler, source: Option<Arc<[u8]>>) -> Self {
        CompiledModule {
            compiled,
            compiler,
            optimized: OnceCell::new(),
            source,
            fuel_compiled: OnceCell::new(),
            moved: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
        }
    }

    /// The code `compiler` made: `compiled`, or Cranelift's code of a tiered module (which
    /// `current()` names only once it is there).
    fn code_of(&self, compiler: Compiler) -> &Compiled {
        match self.optimized.get() {
            Some(code) if compiler != self.compiler => code,
            _ => &self.compiled,
        }
    }

    /// The compiler of the code new runs and instances use now, and that code.
    pub fn current(&self) -> (Compiler, &Compiled) {
        match self.optimized.get() {
            Some(code) => (Compiler::Cranelift, code),
            None => (self.compiler, &self.compiled),
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
            compiler: key.compiler,
            ..EngineKey::default()
        };
        let origin = if key.fuel {
            self.fuel_compiled()?
        } else {
            self.code_of(key.compiler)
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
        let mut key = limits.engine_key(run);
        if !key.fuel {
            key.compiler = self.current().0;
        }
        let entry = engine_for(key)?;
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
/// the BLAKE3 hash of the input, so that the cache holds no copy of it (the compilation keeps the
/// one it needs).
#[derive(Default)]
struct CompileCache {
    modules: HashMap<[u8; 32], Arc<CompiledModule>>,
    order: VecDeque<[u8; 32]>,
}

/// The key of `source` in the `CompileCache`.
fn input_key(source: &[u8]) -> [u8; 32] {
    blake3::hash(source).into()
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

/// The engine Winch compiles in (and `wasi.instantiate()` of its code runs in).
fn winch_engine() -> Result<&'static Engine> {
    Ok(&engine_for(EngineKey {
        compiler: Compiler::Winch,
        ..EngineKey::default()
    })?
    .engine)
}

/// Compiles a wasm binary (core module or component) in `engine`, or loads its code from the
/// persistent cache (`code_cache.rs`).
fn compile_in(engine: &Engine, binary: &[u8]) -> Result<Compiled> {
    let is_component = wasmparser::Parser::is_component(binary);
    crate::code_cache::compiled(
        engine,
        binary,
        || {
            let compiled = if is_component {
                Component::new(engine, binary).map(Compiled::Component)
            } else {
                wasmtime::Module::new(engine, binary).map(Compiled::Core)
            }
            .map_err(|e| Failure::new(ErrorCode::WasmCompile, reason(&e)));
            release_compiler_heap(binary.len());
            compiled
        },
        |compiled| match compiled {
            Compiled::Core(module) => module.serialize().ok(),
            Compiled::Component(component) => component.serialize().ok(),
        },
        |entry| {
            // SAFETY: `entry` is an authentic cache entry (its MAC, under the user's private
            // key, verified) that this build wrote with `serialize` for an engine of the same
            // compatibility hash; wasmtime checks its own header too. wasmtime maps the file
            // for as long as the code lives: entries are only ever replaced by a rename (a
            // new file), never written in place, and no other user can write the directory.
            if is_component {
                unsafe { Component::deserialize_file(engine, entry) }
                    .ok()
                    .map(Compiled::Component)
            } else {
                unsafe { wasmtime::Module::deserialize_file(engine, entry) }
                    .ok()
                    .map(Compiled::Core)
            }
        },
    )
}

/// Hands the heap a large compile freed back to the system. The compiler's working memory is
/// many times the input (about 380 MB for a 30 MB module with Winch, 700 MB with Cranelift),
/// all freed when the compile ends, but glibc's allocator keeps freed pages mapped and counted
/// in the process's RSS until the top of its heap is free; `malloc_trim` returns them now.
/// Small compiles are left alone: their heap is soon reused, and a trim costs a walk of it.
fn release_compiler_heap(input_len: usize) {
    const LARGE_INPUT: usize = 1 << 20;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if input_len >= LARGE_INPUT {
        // SAFETY: malloc_trim only releases free memory; it may be called from any thread.
        unsafe { libc::malloc_trim(0) };
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (input_len, LARGE_INPUT);
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
    let compiled = CompiledModule::compile(source)?;
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
    compile: impl FnOnce(&[u8]) -> Result<Arc<CompiledModule>> + Send + 'static,
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

/// `serialize()` output: this magic, a kind byte (`KIND_*`), a BLAKE3 hash of the payload,
/// a MAC of the three under the user's key (keyed BLAKE3, `user_key.rs`), then wasmtime's
/// bytes.
const MAGIC: &[u8; 8] = b"NWASMTM\x03";
/// The kind byte: a core module or a component, and whether Winch compiled it.
const KIND_CORE: u8 = 0;
const KIND_COMPONENT: u8 = 1;
const KIND_WINCH: u8 = 0x10;
/// The magic of the first format (no MAC), refused with a message of its own.
const MAGIC_V1: &[u8; 8] = b"NWASMTM\x01";
const HEADER_LEN: usize = MAGIC.len() + 1 + 32 + 32;

/// The MAC of a `serialize()` header.
fn header_mac(key: &[u8; 32], kind: u8, checksum: &[u8]) -> blake3::Hash {
    crate::user_key::mac(key, &[MAGIC, &[kind], checksum]).finalize()
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
    /// `DataView`, `ArrayBuffer`) or WAT text, with `options.compiler` (`'cranelift'`, the
    /// default; `'winch'`; `'tiered'`). Throws `ERR_WASM_COMPILE` with wasmtime's reason
    /// when the input does not compile.
    #[napi(
        catch_unwind,
        constructor,
        ts_args_type = "source: ArrayBufferView | ArrayBuffer | string, options?: { compiler?: 'cranelift' | 'winch' | 'tiered' }"
    )]
    pub fn new(env: Env, source: Unknown, options: Unknown) -> napi::Result<Self> {
        let compile = || -> Result<Self> {
            let choice = compiler_option(&options)?;
            let source = read_source(&source, "source")?;
            Ok(Module {
                inner: CompiledModule::compile_with(source.as_bytes(), choice)?,
            })
        };
        compile().map_err(|f| f.into_napi(&env))
    }

    /// Compiles like `new Module(source, options)`, on node-wasmtime's own threads: the
    /// promise resolves to the `Module`, or rejects with `ERR_WASM_COMPILE`. The bytes are
    /// copied first, so the caller may reuse its buffer at once.
    #[napi(
        catch_unwind,
        ts_args_type = "source: ArrayBufferView | ArrayBuffer | string, options?: { compiler?: 'cranelift' | 'winch' | 'tiered' }",
        ts_return_type = "Promise<Module>"
    )]
    pub fn compile<'env>(
        env: &'env Env,
        source: Unknown,
        options: Unknown,
    ) -> napi::Result<Object<'env>> {
        let choice = compiler_option(&options);
        compile_on_pool(env, &source, "source", move |bytes| {
            CompiledModule::compile_with(bytes, choice?)
        })
    }

    /// The compiler of the code that new runs and instances of this module use:
    /// `'cranelift'`, or `'winch'` (a tiered module's until Cranelift's code is ready, then
    /// `'cranelift'`).
    #[napi(catch_unwind, getter, ts_return_type = "'cranelift' | 'winch'")]
    pub fn compiler(&self) -> &'static str {
        self.inner.current().0.name()
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
        let (compiler, code) = self.inner.current();
        let (kind, payload) = match code {
            Compiled::Core(module) => (KIND_CORE, module.serialize()),
            Compiled::Component(component) => (KIND_COMPONENT, component.serialize()),
        };
        let kind = kind
            | if compiler == Compiler::Winch {
                KIND_WINCH
            } else {
                0
            };
        let payload = payload.map_err(|e| fail(reason(&e)))?;
        let checksum = blake3::hash(&payload);
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.push(kind);
        out.extend_from_slice(checksum.as_bytes());
        out.extend_from_slice(header_mac(&key, kind, checksum.as_bytes()).as_bytes());
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
                ty.imports(component.engine())
                    .map(|(name, item)| ImportDescriptor {
                        module: String::new(),
                        name: name.to_string(),
                        kind: component_item_kind(&item.ty).to_string(),
                        ty: crate::wit_text::item(component.engine(), &item.ty),
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
                ty.exports(component.engine())
                    .map(|(name, item)| ExportDescriptor {
                        name: name.to_string(),
                        kind: component_item_kind(&item.ty).to_string(),
                        ty: crate::wit_text::item(component.engine(), &item.ty),
                    })
                    .collect()
            }
        }
    }
}

/// The property `name` of an options argument: `None` when the options or the property are
/// left out (`undefined`); `ERR_INVALID_ARG_TYPE` for options that are not an object.
fn option<'a>(options: &Unknown<'a>, name: &str) -> Result<Option<Unknown<'a>>> {
    match options.get_type() {
        Ok(ValueType::Undefined) => return Ok(None),
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
    let value = object
        .get_named_property::<Unknown>(name)
        .map_err(|e| Failure::new(ErrorCode::InvalidArgValue, e.reason))?;
    Ok((value.get_type().ok() != Some(ValueType::Undefined)).then_some(value))
}

/// `options.trusted` of `Module.deserialize(bytes, options)`: false when left out.
fn trusted_option(options: &Unknown) -> Result<bool> {
    let Some(trusted) = option(options, "trusted")? else {
        return Ok(false);
    };
    if trusted.get_type().ok() != Some(ValueType::Boolean) {
        return Err(crate::source::invalid_type(
            "options.trusted",
            "of type boolean",
            &trusted,
        ));
    }
    // SAFETY: a boolean, checked just above.
    unsafe { trusted.cast::<bool>() }.map_err(|e| Failure::new(ErrorCode::InvalidArgType, e.reason))
}

/// `options.compiler` of `new Module(source, options)`: Cranelift when left out.
fn compiler_option(options: &Unknown) -> Result<CompilerChoice> {
    let Some(compiler) = option(options, "compiler")? else {
        return Ok(CompilerChoice::default());
    };
    if compiler.get_type().ok() != Some(ValueType::String) {
        return Err(crate::source::invalid_type(
            "options.compiler",
            "of type string",
            &compiler,
        ));
    }
    // SAFETY: a string, checked just above.
    let name = unsafe { compiler.cast::<String>() }
        .map_err(|e| Failure::new(ErrorCode::InvalidArgType, e.reason))?;
    match name.as_str() {
        "cranelift" => Ok(CompilerChoice::Cranelift),
        "winch" => Ok(CompilerChoice::Winch),
        "tiered" => Ok(CompilerChoice::Tiered),
        _ => Err(Failure::new(
            ErrorCode::InvalidArgValue,
            format!(
                "The property 'options.compiler' must be one of: 'cranelift', 'winch', \
                 'tiered'. Received '{}'",
                name.replace('\'', "\\'")
            ),
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
    if blake3::hash(payload).as_bytes() != checksum {
        return Err(fail("the bytes are corrupt (checksum mismatch)"));
    }
    if !trusted {
        let key = crate::user_key::serialization_key()
            .map_err(|why| fail(&format!("cannot check who signed the bytes: {why}")))?;
        let tag: [u8; 32] = tag.try_into().expect("32 bytes");
        // `Hash`'s equality is constant-time.
        if header_mac(&key, kind, checksum) != blake3::Hash::from_bytes(tag) {
            return Err(fail(
                "the bytes are not signed by this user's key: another user, machine or \
                 installation serialized them, or they are forged. Pass { trusted: true } only \
                 for bytes whose origin you vouch for: they become native code in this process",
            ));
        }
    }
    // SAFETY: wasmtime requires the payload to be the output of its own `serialize` for this
    // engine. The hash above establishes that the payload is intact, and the MAC under
    // the user's private key that our `serialize()` wrote it (or, `trusted`, the caller
    // vouches for it); wasmtime itself then rejects output of another wasmtime version or an
    // incompatible engine configuration or CPU.
    let (compiler, engine) = if kind & KIND_WINCH != 0 {
        (Compiler::Winch, winch_engine()?)
    } else {
        (Compiler::Cranelift, engine())
    };
    let compiled = unsafe {
        match kind & !KIND_WINCH {
            KIND_CORE => wasmtime::Module::deserialize(engine, payload).map(Compiled::Core),
            KIND_COMPONENT => Component::deserialize(engine, payload).map(Compiled::Component),
            _ => return Err(fail("unknown module kind")),
        }
    }
    .map_err(|e| fail(&reason(&e)))?;
    Ok(CompiledModule::from_compiled(compiled, compiler, None))
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
