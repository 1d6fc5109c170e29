'use strict';

// The `Memory` class: a guest's linear memory. A plain JS object, like Instance: one an
// instance exports holds that instance's handle and the memory's index and has no native
// object of its own (Node 20 gives a native object's memory back only when the event loop
// turns, so a loop reading `instance.exports` without yielding would grow); one made by
// `new Memory({ initial, maximum })` holds a NativeMemory (src/memory.rs).

const {
  NativeMemory, memoryByteLength, memoryBuffer, memoryRead, memoryWrite, memoryGrow, memoryNative,
} = require('../index.js');

const kExported = Symbol('kExported');

let nativeOf;
let newExportedMemory;

/**
 * A guest's linear memory: one an instance exports (`instance.exports.memory`), or one made
 * here for an instance to import.
 */
class Memory {
  #native;
  #handle;
  #index;
  #instance;

  /**
   * A memory for a guest to import, as `new WebAssembly.Memory({ initial, maximum })`:
   * `initial` and `maximum` in 64 KiB pages (at most 65536). Its bytes are zero; an instance
   * that imports it (`wasi.instantiate(module, { env: { memory } })`) takes them over, and
   * from then on this object is that instance's memory.
   */
  constructor(descriptor, handle, index, instance) {
    if (descriptor === kExported) {
      this.#handle = handle;
      this.#index = index;
      this.#instance = instance; // kept alive while its memory is reachable
      return;
    }
    this.#native = new NativeMemory(descriptor);
  }

  /** Current size in bytes. */
  get byteLength() {
    return this.#native !== undefined ?
      this.#native.byteLength :
      memoryByteLength(this.#handle, this.#index);
  }

  /**
   * An `ArrayBuffer` over the memory itself, as `WebAssembly.Memory.prototype.buffer`: the
   * same object until the memory grows, then that one is detached (`byteLength` 0) and a new
   * one is returned. It keeps the instance's memory alive while JS holds it.
   */
  get buffer() {
    return this.#native !== undefined ?
      this.#native.buffer :
      memoryBuffer(this.#handle, this.#index);
  }

  /**
   * Copies `length` bytes starting at `offset` out of the memory. Throws `ERR_OUT_OF_RANGE`
   * if the range is not inside the memory.
   */
  read(offset, length) {
    return this.#native !== undefined ?
      this.#native.read(offset, length) :
      memoryRead(this.#handle, this.#index, offset, length);
  }

  /** Copies `bytes` into the memory at `offset`. Throws `ERR_OUT_OF_RANGE` if they do not fit. */
  write(offset, bytes) {
    return this.#native !== undefined ?
      this.#native.write(offset, bytes) :
      memoryWrite(this.#handle, this.#index, offset, bytes);
  }

  /**
   * Grows the memory by `pages` 64 KiB pages; returns the previous size in pages (and
   * detaches the old `buffer`). Throws `ERR_OUT_OF_RANGE` if it cannot grow that far.
   */
  grow(pages) {
    return this.#native !== undefined ?
      this.#native.grow(pages) :
      memoryGrow(this.#handle, this.#index, pages);
  }

  static {
    // For the import list (lib/host.js): what native code takes for this Memory (an
    // exported one's, made now, is refused there: it belongs to its instance). Anything
    // else is passed on as it is.
    nativeOf = (value) => {
      if (typeof value !== 'object' || value === null || !(#native in value)) return value;
      return value.#native ?? memoryNative(value.#handle, value.#index);
    };
    // For src/instance.rs (through lib/instance.js): the exported memory `index` of `this`,
    // the Instance with `handle`.
    newExportedMemory = function exportedMemory(handle, index) {
      return new Memory(kExported, handle, index, this);
    };
  }
}

module.exports = { Memory, nativeOf, newExportedMemory };
