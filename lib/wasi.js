'use strict';

// The `WASI` class: node:wasi's public surface with node:wasi's argument checks (in the
// order and with the messages Node uses, from ./validate.js), over the native `WasiCore`,
// which owns the started flag, the WASI context and running guests in wasmtime.

const { WasiCore, Instance, Memory, Module, compileCachedModule } = require('../index.js');
const {
  validateWasiOptions,
  validateReturnOnExit,
  validateObject,
  validateFunction,
  validateUndefined,
  validateMemory,
} = require('./validate');
const { ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_WASI_ALREADY_STARTED } = require('./errors');

class WASI {
  #core;

  constructor(options) {
    const config = validateWasiOptions(options);
    this.#core = new WasiCore(config);
    this.#core.returnOnExit = validateReturnOnExit(config.returnOnExit);
  }

  /**
   * Instantiates `module` (a `Module`, wasm bytes or WAT text) in wasmtime with this
   * object's WASI context. Pass the result to `start()` or `initialize()`.
   */
  instantiate(module) {
    if (!(module instanceof Module)) module = compileCachedModule(module);
    return this.#core.instantiate(module);
  }

  /** Runs the command's `_start` once; returns its exit code. */
  start(instance) {
    const exports = this.#checkInstance(instance);
    this.#core.markStarted();
    const { _start, _initialize } = exports;
    validateFunction(_start, 'instance.exports._start');
    validateUndefined(_initialize, 'instance.exports._initialize');
    return this.#core.runEntry(instance, '_start');
  }

  /** Runs the reactor's `_initialize` once, if it has one. */
  initialize(instance) {
    const exports = this.#checkInstance(instance);
    this.#core.markStarted();
    const { _start, _initialize } = exports;
    validateUndefined(_start, 'instance.exports._start');
    if (_initialize !== undefined) {
      validateFunction(_initialize, 'instance.exports._initialize');
      this.#core.runEntry(instance, '_initialize');
    }
  }

  /** With `stdout: 'pipe'`: everything the guest wrote to stdout so far. */
  get stdout() {
    return this.#core.stdout ?? undefined;
  }

  /** With `stderr: 'pipe'`: everything the guest wrote to stderr so far. */
  get stderr() {
    return this.#core.stderr ?? undefined;
  }

  // node:wasi's checks before anything is marked started (Node 24+ order).
  #checkInstance(instance) {
    if (this.#core.started) throw ERR_WASI_ALREADY_STARTED();
    validateObject(instance, 'instance');
    const { exports } = instance;
    validateObject(exports, 'instance.exports');
    validateMemory(exports.memory, Memory);
    if (!(instance instanceof Instance)) {
      throw ERR_INVALID_ARG_TYPE('instance', 'an instance of Instance', instance);
    }
    if (!this.#core.owns(instance)) {
      throw ERR_INVALID_ARG_VALUE('instance', instance, 'was instantiated by a different WASI object');
    }
    return exports;
  }
}

module.exports = { WASI };
