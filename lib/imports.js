'use strict';

// The V8 path's `wasiImport`: node:wasi's 46 preview1 functions as own, enumerable, writable
// properties. Each forwards to the native syscall function (wasmtime-wasi's preview1 over the guest
// memory's current buffer, re-read on every call so `memory.grow` is safe); `proc_exit`
// unwinds the guest (returnOnExit) or ends the process, as node:wasi's does.

const { syscallNames, exitProcess } = require('../index.js');
const { ERR_WASI_NOT_STARTED } = require('./errors');

const kSyscallNames = syscallNames();

/**
 * @param {() => ({ syscall: Function, memory: WebAssembly.Memory } | undefined)} binding
 *   the bound context and memory, or undefined before start()/initialize()/finalizeBindings()
 * @param {(code: number) => never} procExit node:wasi's proc_exit for this object
 */
function createWasiImport(binding, procExit) {
  // A shared memory's buffer is a SharedArrayBuffer, which Node-API cannot read: the native
  // side gets a Uint8Array over it instead, made again only when the buffer changes (grow).
  let sharedBuffer;
  let sharedView;
  const bytesOf = (buffer) => {
    if (!(buffer instanceof SharedArrayBuffer)) return buffer;
    if (buffer !== sharedBuffer) {
      sharedBuffer = buffer;
      sharedView = new Uint8Array(buffer);
    }
    return sharedView;
  };
  const wasiImport = {};
  kSyscallNames.forEach((name, index) => {
    // Positional parameters and arguments.length, not a rest array: this runs on every
    // syscall. No preview1 function takes more than 9 arguments.
    wasiImport[name] = name === 'proc_exit' ? procExit : {
      [name](a0, a1, a2, a3, a4, a5, a6, a7, a8) {
        const bound = binding();
        if (bound === undefined) throw ERR_WASI_NOT_STARTED();
        return bound.syscall(index, bytesOf(bound.memory.buffer), arguments.length,
                             a0, a1, a2, a3, a4, a5, a6, a7, a8);
      },
    }[name];
  });
  return wasiImport;
}

module.exports = { createWasiImport, exitProcess };
