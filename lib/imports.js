'use strict';

// The V8 path's `wasiImport`: node:wasi's 46 preview1 functions as own, enumerable, writable
// properties. Each forwards to the native syscall function (wasmtime-wasi's preview1 over the guest
// memory's current buffer, re-read on every call so `memory.grow` is safe); `proc_exit`
// unwinds the guest (returnOnExit) or ends the process, as node:wasi's does.

const { syscallNames, syscallKinds, exitProcess } = require('../index.js');
const { ERR_WASI_NOT_STARTED } = require('./errors');

const kSyscallNames = syscallNames();
const kSyscallKinds = syscallKinds(); // 'i' = i32 (a number), 'I' = i64 (a BigInt), per parameter
const kMaxArgs = 9;
const EINVAL = 28;

// Every function a `wasiImport` was made with: passed back in an import object for the
// wasmtime path (`wasi.instantiate(m, wasi.getImportObject())`), wasmtime-wasi serves them
// itself, since these serve a guest V8 runs.
const wasiImportFunctions = new WeakSet();

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
  // Arguments travel in one scratch buffer of 8-byte slots (f64 for i32, i64 for i64), so the
  // native call takes three values instead of converting up to nine, one by one.
  const scratch = new ArrayBuffer(8 * kMaxArgs);
  const numbers = new Float64Array(scratch);
  const bigints = new BigInt64Array(scratch);
  // Node's convention: a wrong argument count or type is EINVAL, not an exception.
  const put = (kinds, i, value) => {
    if (kinds[i] === 'i') {
      if (typeof value !== 'number') return false;
      numbers[i] = value;
    } else {
      if (typeof value !== 'bigint') return false;
      bigints[i] = value;
    }
    return true;
  };
  const wasiImport = {};
  kSyscallNames.forEach((name, index) => {
    const kinds = kSyscallKinds[index];
    const arity = kinds.length;
    // Positional parameters and arguments.length, not a rest array: this runs on every syscall.
    wasiImport[name] = name === 'proc_exit' ? procExit : {
      [name](a0, a1, a2, a3, a4, a5, a6, a7, a8) {
        const bound = binding();
        if (bound === undefined) throw ERR_WASI_NOT_STARTED();
        if (arguments.length !== arity ||
            (arity > 0 && !put(kinds, 0, a0)) || (arity > 1 && !put(kinds, 1, a1)) ||
            (arity > 2 && !put(kinds, 2, a2)) || (arity > 3 && !put(kinds, 3, a3)) ||
            (arity > 4 && !put(kinds, 4, a4)) || (arity > 5 && !put(kinds, 5, a5)) ||
            (arity > 6 && !put(kinds, 6, a6)) || (arity > 7 && !put(kinds, 7, a7)) ||
            (arity > 8 && !put(kinds, 8, a8))) {
          return EINVAL;
        }
        return bound.syscall(index, bytesOf(bound.memory.buffer), scratch);
      },
    }[name];
    wasiImportFunctions.add(wasiImport[name]);
  });
  return wasiImport;
}

/** Whether `value` is one of the functions a `wasiImport` was made with. */
function isWasiImportFunction(value) {
  return wasiImportFunctions.has(value);
}

module.exports = { createWasiImport, exitProcess, isWasiImportFunction };
