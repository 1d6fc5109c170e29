'use strict';

// The `Instance` class: a wasmtime instance made by `wasi.instantiate()`. It is a plain JS
// object holding the handle of its native side (src/instance_handles.rs), not a native
// object: Node 20 gives a native object's memory back only when the event loop turns, so a
// loop that makes and disposes instances without yielding would otherwise grow. The native
// side goes at dispose(), or when this object is collected.

const {
  instanceDispose, instanceForget, instanceExports, instanceEntryShape, exportTrampoline,
} = require('../index.js');
const { codedError } = require('./errors');
const { newExportedMemory } = require('./memory');

const kCreate = Symbol('kCreate');

// The one native function behind every core export function: each is this bound to its
// instance, handle and index (src/export_function.rs), a plain JS function rather than a
// Node-API object per export.
const trampoline = exportTrampoline();

// An instance collected without dispose(): its handle is forgotten then.
const collected = new FinalizationRegistry((handle) => instanceForget(handle));

let handleOf;
let ownerOf;
let isInstance;
let entryShapeOf;

/**
 * A wasmtime instance made by `wasi.instantiate()`. Pass it to `wasi.start()` or
 * `wasi.initialize()`; after `initialize()`, call its exports.
 */
class Instance {
  #handle;
  #kind;
  #module;
  #exports;
  #owner;
  #onDispose;

  constructor(token, handle, module, owner, onDispose) {
    if (token !== kCreate) {
      throw codedError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR',
                       'Illegal constructor: an Instance is made by wasi.instantiate(module)');
    }
    this.#handle = handle;
    this.#kind = module.kind;
    this.#module = module;
    this.#owner = owner;
    this.#onDispose = onDispose;
    collected.register(this, handle, this);
  }

  /**
   * Frees the instance's store (its linear memories, instance and WASI context) now, rather
   * than when the garbage collector frees this object; `memory.buffer` objects are detached,
   * and every later use of the instance, its exports or its memories throws
   * `ERR_WASM_INSTANCE_DISPOSED`. Also `instance[Symbol.dispose]()`. Throws `ERR_WASI_BUSY`
   * while the guest runs (`startAsync`) or from inside its own host call. Idempotent.
   */
  dispose() {
    if (!instanceDispose(this.#handle)) return;
    collected.unregister(this);
    const onDispose = this.#onDispose;
    this.#onDispose = undefined;
    onDispose?.();
  }

  /** `instance.dispose()`, for `using`. */
  [Symbol.dispose]() {
    this.dispose();
  }

  /** `'module'` for a core module's instance, `'component'` for a component's. */
  get kind() {
    return this.#kind;
  }

  /** The module this instance was made from. */
  get module() {
    return this.#module;
  }

  /**
   * The instance's exports. Core module: functions take and return numbers (i64 as BigInt),
   * memories are `Memory` objects. Component: functions at the top level and, for each
   * exported interface, an object of its functions (`exports['my:pkg/api'].f`). The same
   * object on every access.
   */
  get exports() {
    this.#exports ??= instanceExports(this.#handle, this, trampoline, newExportedMemory);
    return this.#exports;
  }

  static {
    // For lib/wasi.js: the handle and the WASI object that made it (a TypeError for anything
    // not made here), and whether a core instance passes node:wasi's checks without building
    // its exports.
    handleOf = (instance) => instance.#handle;
    ownerOf = (instance) => instance.#owner;
    isInstance = (value) => typeof value === 'object' && value !== null && #handle in value;
    entryShapeOf = (instance) => instance.#kind === 'module' ? instanceEntryShape(instance.#handle) : 'other';
  }
}

/**
 * The Instance of `handle`, made by `owner` (a WASI object) from `module`; `onDispose` runs
 * once it is disposed.
 */
function newInstance(handle, module, owner, onDispose) {
  return new Instance(kCreate, handle, module, owner, onDispose);
}

module.exports = { Instance, newInstance, isInstance, handleOf, ownerOf, entryShapeOf };
