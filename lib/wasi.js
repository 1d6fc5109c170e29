'use strict';

// The `WASI` class: node:wasi's public surface with node:wasi's argument checks (in the
// order and with the messages Node uses, from ./validate.js), over the native `WasiCore`,
// which owns the started flag and the WASI context. One class serves both paths: guests V8
// runs (`getImportObject()`, ./imports.js) and guests wasmtime runs (`instantiate()`).

const { WasiCore, Module, compileCachedModule } = require('../index.js');
const { Memory } = require('./memory');
const { newInstance, isInstance, handleOf, ownerOf, entryShapeOf } = require('./instance');
const { importValues, keepValues, valuesOf, makeDispatcher } = require('./host');
const {
  validateWasiOptions,
  validateReturnOnExit,
  validateObject,
  validateFunction,
  validateUndefined,
  validateMemory,
} = require('./validate');
const {
  codedError, ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_WASI_ALREADY_STARTED,
} = require('./errors');
const { validateAbortSignal, throwIfAborted, withSignal } = require('./abort');
const { attachStreams, deliverNow, discard, isStop, streamError } = require('./stream');
const { createWasiImport, exitProcess } = require('./imports');

// What node:wasi's proc_exit throws to unwind the guest with returnOnExit; start() catches it.
const kExitCode = Symbol('kExitCode');

// The codes of the errors a run itself fails with (#withOutput).
const RUN_FAILURES = new Set([
  'ABORT_ERR', 'ERR_WASM_TRAP', 'ERR_WASI_TIMEOUT', 'ERR_WASI_EXITED', 'ERR_WASI_STDIO_MAXBUFFER',
]);

// node:wasi warns once per process that WASI is experimental (when it is first loaded); code
// and tests written for it expect that warning (Node's own test/wasi asserts it), so the first
// `new WASI` gives the same one. runWasm/runWasmSync and the CLI do not. `--no-warnings` and
// `--disable-warning=ExperimentalWarning` silence it as they silence node:wasi's.
let warned = false;
function warnExperimental() {
  if (warned) return;
  warned = true;
  process.emitWarning('WASI is an experimental feature and might change at any time', 'ExperimentalWarning');
}

// Native objects of WASI objects whose command has ended (a V8 guest's, or one whose instances
// from instantiate() are all disposed), ready to serve the next
// `new WASI` (WasiCore.reset): node:wasi's documented pattern makes a WASI per run, and Node 20
// gives the memory of a native object back only when the event loop turns, so a loop that
// never yields would otherwise grow by one object per run.
const spareCores = [];
const kMaxSpareCores = 16;
const kSyscall = Symbol('syscall'); // a core's syscall function, kept across reset()
const EBADF = 8;

function takeCore(config, stdout, stderr) {
  const core = spareCores.pop();
  if (core === undefined) return new WasiCore(config, stdout, stderr);
  try {
    core.reset(config, stdout, stderr);
  } catch (err) {
    spareCores.push(core);
    throw err;
  }
  return core;
}

class WASI {
  // The native half; null once handed back to spareCores (see #handBack), after which
  // #native revives a descriptor-less one if anything still needs it.
  #core;
  #config;
  #revived; // that revived core, with its syscall function
  #endedStdout; // what the guest had written to 'pipe' outputs when the core was handed back
  #endedStderr;
  #disposed = false;
  #returnOnExit;
  #recyclable; // no streams: once nothing else refers to it, the core may be handed back
  #instances = 0; // instances of instantiate() not disposed: they refer to the core
  #version;
  #exitCode = 0;
  #binding; // { syscall, memory } once a V8 guest's memory is bound
  #streams; // streamed stdout/stderr (./stream.js)
  #limited = false; // options.limits given: the V8 path is refused

  constructor(options) {
    warnExperimental();
    const config = validateWasiOptions(options);
    this.#version = config.version;
    this.#streams = attachStreams(config);
    this.#config = config;
    this.#recyclable = this.#streams.stdout === undefined && this.#streams.stderr === undefined;
    this.#core = takeCore(config, this.#streams.stdout?.channel, this.#streams.stderr?.channel);
    const returnOnExit = validateReturnOnExit(config.returnOnExit);
    this.#core.returnOnExit = returnOnExit;
    this.#returnOnExit = returnOnExit;
    const procExit = returnOnExit ?
      (code) => {
        this.#exitCode = code;
        throw kExitCode;
      } :
      (code) => exitProcess(code);
    this.wasiImport = createWasiImport(() => this.#binding, procExit);
    if (config.limits !== undefined) {
      // V8 would run a guest given wasiImport: none of the limits could apply to it.
      this.#limited = true;
      Object.defineProperty(this, 'wasiImport', {
        enumerable: true,
        configurable: true,
        get: () => { throw limitsUnsupported('wasi.wasiImport is for a guest V8 runs'); },
      });
    }
  }

  /** `{ wasi_snapshot_preview1: wasiImport }`, or `{ wasi_unstable: wasiImport }` for 'unstable'. */
  getImportObject() {
    if (this.#version === 'preview2') {
      throw versionMismatch('getImportObject() serves core modules (WASI preview1), but this ' +
                            "WASI object has version 'preview2', which runs components. Use " +
                            "version: 'preview1'");
    }
    if (this.#limited) throw limitsUnsupported('wasi.getImportObject() is for a guest V8 runs');
    const name = this.#version === 'unstable' ? 'wasi_unstable' : 'wasi_snapshot_preview1';
    return { [name]: this.wasiImport };
  }

  /**
   * Binds a V8-instantiated guest's memory (default `instance.exports.memory`) and marks the
   * object started, for hosts that run the entry point themselves (wasi-threads workers).
   */
  finalizeBindings(instance, { memory = instance?.exports?.memory } = {}) {
    if (this.#started) throw ERR_WASI_ALREADY_STARTED();
    validateObject(instance, 'instance');
    validateObject(instance.exports, 'instance.exports');
    validateMemory(memory);
    this.#bind(memory);
  }

  /**
   * Instantiates `module` (a `Module`, wasm bytes or WAT text) in wasmtime with this
   * object's WASI context, and `imports` (shaped as `WebAssembly.instantiate`'s) for what it
   * imports besides WASI. Pass the result to `start()` or `initialize()`.
   */
  instantiate(module, imports = undefined) {
    if (!(module instanceof Module)) module = compileCachedModule(module);
    this.#checkVersion(module.kind);
    const values = importValues(module, imports, 'imports');
    const handle = this.#native.instantiate(module, values);
    this.#instances++;
    return keepValues(newInstance(handle, module, this, () => this.#instanceDisposed()), values);
  }

  // One of this object's instances was disposed: once none is left and the command has run,
  // the native object is handed back (see #handBack), as after a V8 guest's command.
  #instanceDisposed() {
    this.#instances--;
    if (this.#core?.started) this.#handBackIfUnused();
  }

  /**
   * Runs the command's entry point once and returns its exit code: a core module's
   * `_start`, or a component's `wasi:cli/run#run`.
   */
  start(instance) {
    try {
      return this.#deliveringAfter(() => this.#start(instance));
    } catch (err) {
      throw this.#withOutput(err);
    }
  }

  #start(instance) {
    if (isComponent(instance)) {
      this.#claim(instance);
      return this.#releasingAfter(() => this.#native.runEntry(handleOf(instance), 'run'), instance);
    }
    if (isInstance(instance) && entryShapeOf(instance) === 'command') {
      // What the checks below would find, read without building the exports.
      if (this.#started) throw ERR_WASI_ALREADY_STARTED();
      this.#claimInstance(instance);
      return this.#releasingAfter(() => this.#native.runEntry(handleOf(instance), '_start'), instance);
    }
    const exports = this.#checkAndBind(instance);
    const { _start, _initialize } = exports;
    validateFunction(_start, 'instance.exports._start');
    validateUndefined(_initialize, 'instance.exports._initialize');
    if (isInstance(instance)) {
      return this.#releasingAfter(() => this.#native.runEntry(handleOf(instance), '_start'), instance);
    }
    return this.#releasingAfter(() => {
      try {
        _start();
      } catch (err) {
        if (err !== kExitCode) throw err;
      }
      return this.#exitCode;
    });
  }

  // Runs a command's entry point, then closes this object's descriptors and those of the
  // `Instance` that ran it (`release()`): the program has ended, and a loop making a WASI
  // per run (as node:wasi's docs do) must not run out of descriptors while it waits for the
  // garbage collector. The instance's memory and exports stay usable.
  #releasingAfter(run, instance) {
    try {
      return run();
    } finally {
      // Not when the entry point was refused before it ran (the object is not started).
      if (this.#started) {
        this.#native.release(instance && handleOf(instance));
        if (instance === undefined) this.#handBackIfUnused();
      }
    }
  }

  // Hands the native object back once the command has run, if nothing else refers to it: no
  // streams, no instance of instantiate() left undisposed, and this object not disposed.
  #handBackIfUnused() {
    if (this.#recyclable && this.#instances === 0 && !this.#disposed && this.#core !== null) this.#handBack();
  }

  // The command has ended and nothing else refers to the native object: keep what
  // is still readable here (captured output), point late syscalls at a revived object, and
  // give the native object to the next `new WASI`.
  #handBack() {
    const core = this.#core;
    this.#endedStdout = core.stdout ?? undefined;
    this.#endedStderr = core.stderr ?? undefined;
    this.#core = null;
    if (this.#binding !== undefined) {
      const { memory } = this.#binding;
      this.#binding = { memory, syscall: (index, buffer, scratch) => this.#lateSyscall(index, buffer, scratch) };
    }
    if (spareCores.length < kMaxSpareCores) {
      core.park(); // what it captured is copied above; nothing large waits in spareCores
      spareCores.push(core);
    }
  }

  // A syscall of the V8 guest after its command ended (an export called later): served by a
  // revived object as release() left the context: same arguments and environment, no host
  // descriptors, 'pipe' output still captured; badf after dispose.
  #lateSyscall(index, buffer, scratch) {
    if (this.#disposed && this.#revived === undefined) return EBADF;
    return this.#revive()[kSyscall](index, buffer, scratch);
  }

  // Whether start/initialize (or an entry point) has run; a handed-back object has.
  get #started() {
    return this.#core === null || this.#core.started;
  }

  // The native object: this object's own, or once handed back, a revived one without host
  // descriptors (made at most once, only if something still asks).
  get #native() {
    return this.#core ?? this.#revive();
  }

  #revive() {
    if (this.#revived === undefined) {
      const config = this.#config;
      const ended = {
        ...config,
        preopens: [],
        stdin: config.stdin instanceof Uint8Array ? config.stdin : new Uint8Array(0),
        stdout: config.stdout === 'pipe' ? 'pipe' : 'ignore',
        stderr: config.stderr === 'pipe' ? 'pipe' : 'ignore',
      };
      const revived = new WasiCore(ended, undefined, undefined);
      revived.returnOnExit = this.#returnOnExit;
      revived.markStarted();
      revived[kSyscall] = revived.bindSyscalls();
      revived.release(undefined);
      if (this.#disposed) revived.dispose();
      this.#revived = revived;
    }
    return this.#revived;
  }

  /**
   * Extension: closes the host descriptors this object holds (its duplicates of the stdio
   * fds, its preopens, and the context of a guest V8 runs, whose syscalls then fail with
   * `badf`) now, instead of when the garbage collector frees it. `start()` closes them when
   * the command ends. Instances from `instantiate()` keep their own context; captured
   * output stays readable. Safe to call more than once.
   */
  [Symbol.dispose]() {
    this.#disposed = true;
    if (this.#core !== null) this.#core.dispose();
    this.#revived?.dispose();
  }

  /**
   * Extension: start() on node-wasmtime's own threads, for an `Instance` from instantiate().
   * The object is marked started before the promise is returned; until it settles, calls
   * into the guest (its exports, its memory) throw ERR_WASI_BUSY, except from a host function the
   * guest waits for. `options.signal` stops it
   * (the promise rejects with an AbortError). Bad input rejects.
   */
  startAsync(instance, options = undefined) {
    try {
      if (options !== undefined) validateObject(options, 'options');
      const signal = options?.signal;
      validateAbortSignal(signal, 'options.signal');
      throwIfAborted(signal);
      if (this.#started) throw ERR_WASI_ALREADY_STARTED();
      if (instance instanceof WebAssembly.Instance) {
        throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE',
                         'The "instance" argument must be an Instance made by wasi.instantiate(). ' +
                         'Received a WebAssembly.Instance: V8 runs that guest, and only on the ' +
                         'main thread, so it cannot run on node-wasmtime\'s threads; use ' +
                         'wasi.start(instance) for it, or wasi.instantiate(module) and ' +
                         'wasi.startAsync() on the result');
      }
      if (!isInstance(instance)) {
        throw ERR_INVALID_ARG_TYPE('instance', 'Instance', instance);
      }
      let name = 'run';
      if (isComponent(instance)) {
        this.#claim(instance);
      } else {
        const { _start, _initialize } = this.#checkAndBind(instance);
        validateFunction(_start, 'instance.exports._start');
        validateUndefined(_initialize, 'instance.exports._initialize');
        name = '_start';
      }
      const values = valuesOf(instance);
      const dispatch = values === undefined ? undefined : makeDispatcher(values);
      const handle = handleOf(instance);
      return withSignal(signal, (token) => this.#native.startAsync(handle, name, token, dispatch))
        .catch((err) => {
          if (isStop(err)) discard(this.#streams);
          throw this.#withOutput(err);
        })
        .finally(() => this.#native.release(handle))
        .then((exitCode) => {
          const error = streamError(this.#streams);
          if (error !== undefined) throw error;
          return exitCode;
        });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Runs the reactor's `_initialize` once, if it has one. A component (initialised when
   * instantiated) is only marked started; its exports are then ready to call.
   */
  initialize(instance) {
    return this.#deliveringAfter(() => this.#initialize(instance));
  }

  #initialize(instance) {
    if (isComponent(instance)) return this.#native.initializeComponent(handleOf(this.#claim(instance)));
    const shape = isInstance(instance) ? entryShapeOf(instance) : 'other';
    if (shape === 'reactor' || shape === 'bare') {
      // What the checks below would find, read without building the exports.
      if (this.#started) throw ERR_WASI_ALREADY_STARTED();
      this.#claimInstance(instance);
      if (shape === 'reactor') this.#native.runEntry(handleOf(instance), '_initialize');
      return;
    }
    const exports = this.#checkAndBind(instance);
    const { _start, _initialize } = exports;
    validateUndefined(_start, 'instance.exports._start');
    if (_initialize === undefined) return;
    validateFunction(_initialize, 'instance.exports._initialize');
    if (isInstance(instance)) {
      this.#native.runEntry(handleOf(instance), '_initialize');
    } else {
      _initialize();
    }
  }

  /** With `stdout: 'pipe'`: everything the guest wrote to stdout so far. */
  get stdout() {
    if (this.#core === null) return joined(this.#endedStdout, this.#revived?.stdout);
    return this.#core.stdout ?? undefined;
  }

  /** With `stderr: 'pipe'`: everything the guest wrote to stderr so far. */
  get stderr() {
    if (this.#core === null) return joined(this.#endedStderr, this.#revived?.stderr);
    return this.#core.stderr ?? undefined;
  }

  // Runs `call` (which ran the guest on this thread), then hands streamed output written
  // meanwhile to its targets, in order, before returning; a target's error is thrown.
  // A run's own failure (a trap, a timeout, an abort, ...) carries what the guest wrote to
  // its captured stdout and stderr, as runWasm's errors do (an empty Buffer for a stream
  // that is not 'pipe'). Values a host function threw are left untouched.
  #withOutput(err) {
    if (err instanceof Error && RUN_FAILURES.has(err.code) && err.stdout === undefined) {
      err.stdout = this.stdout ?? Buffer.alloc(0);
      err.stderr = this.stderr ?? Buffer.alloc(0);
    }
    return err;
  }

  #deliveringAfter(call) {
    let result;
    try {
      result = call();
    } finally {
      deliverNow(this.#streams);
    }
    const error = streamError(this.#streams);
    if (error !== undefined) throw error;
    return result;
  }

  // A component Instance passed to start()/initialize(): the same started and ownership
  // checks as a core Instance; the native side checks the exports and sets the flag.
  #claim(instance) {
    if (this.#started) throw ERR_WASI_ALREADY_STARTED();
    this.#checkOwner(instance);
    return instance;
  }

  #checkOwner(instance) {
    if (ownerOf(instance) !== this) {
      throw ERR_INVALID_ARG_VALUE('instance', instance, 'was instantiated by a different WASI object');
    }
  }

  // 'preview2' runs components only; 'unstable' names a core-module ABI, so a component
  // under it is a mistake too.
  #checkVersion(kind) {
    const version = this.#version;
    if (kind === 'module' && version === 'preview2') {
      throw versionMismatch("This WASI object has version 'preview2', which runs components, " +
                            "but the module is a core module (WASI preview1). Use version: 'preview1'");
    }
    if (kind === 'component' && version === 'unstable') {
      throw versionMismatch("This WASI object has version 'unstable', a core-module ABI, but " +
                            "the module is a component. Use version: 'preview2' (or 'preview1')");
    }
  }

  // node:wasi's checks before anything is marked started (Node 24+ order), then the memory
  // binding and the started flag. Returns the exports.
  #checkAndBind(instance) {
    if (this.#started) throw ERR_WASI_ALREADY_STARTED();
    validateObject(instance, 'instance');
    const { exports } = instance;
    validateObject(exports, 'instance.exports');
    if (isInstance(instance)) {
      validateMemory(exports.memory, Memory);
      this.#claimInstance(instance);
    } else {
      if (this.#version === 'preview2') {
        throw versionMismatch("A guest V8 runs imports WASI preview1, but this WASI object has " +
                              "version 'preview2', which runs components. Use version: 'preview1'");
      }
      validateMemory(exports.memory);
      this.#bind(exports.memory);
    }
    return exports;
  }

  // An Instance of this object's, not disposed: marks the object started.
  #claimInstance(instance) {
    this.#checkOwner(instance);
    this.#native.checkLive(handleOf(instance));
    this.#native.markStarted();
  }

  // Binds a V8 guest's memory to a fresh WASI context and marks the object started.
  #bind(memory) {
    if (this.#limited) throw limitsUnsupported('this instance is a guest V8 runs');
    const core = this.#native;
    core.markStarted();
    // A core from spareCores keeps its syscall function: rebinding it makes nothing new.
    if (core[kSyscall] === undefined) core[kSyscall] = core.bindSyscalls();
    else core.rebindSyscalls();
    this.#binding = { syscall: core[kSyscall], memory };
  }
}

/** Output captured before a hand-back, then by the revived object, as one Buffer. */
function joined(before, after) {
  if (after === undefined || after === null || after.length === 0) return before;
  return before === undefined ? after : Buffer.concat([before, after]);
}

function isComponent(instance) {
  return isInstance(instance) && instance.kind === 'component';
}

/** A `WASI` object with `limits` asked to serve a guest V8 runs, which no limit can reach. */
function limitsUnsupported(what) {
  return codedError(Error, 'ERR_WASI_LIMITS_UNSUPPORTED',
                    'This WASI object has limits, which apply only to guests node-wasmtime ' +
                    `runs, but ${what}: no timeout, fuel, memory or stack limit could stop it. ` +
                    'Run the guest with wasi.instantiate(module) and wasi.start(instance) to ' +
                    'have its limits enforced');
}

function versionMismatch(message) {
  return codedError(Error, 'ERR_WASI_VERSION_MISMATCH', message);
}

module.exports = { WASI };
