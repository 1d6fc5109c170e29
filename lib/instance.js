'use strict';

// `Instance.prototype.exports`, kept: the native getter builds the exports object, and this
// layer returns that same object on every later access. It is held here, in a WeakMap keyed
// by the instance, not by a native reference: an instance whose host functions capture the
// instance itself (as glue code does) must stay collectable.

const { Instance } = require('../index.js');

const buildExports = Object.getOwnPropertyDescriptor(Instance.prototype, 'exports').get;
const exportsOf = new WeakMap();

Object.defineProperty(Instance.prototype, 'exports', {
  configurable: true,
  enumerable: true,
  get: function exports() {
    let object = exportsOf.get(this);
    if (object === undefined) {
      object = Reflect.apply(buildExports, this, []);
      exportsOf.set(this, object);
    }
    return object;
  },
});

// `instance[Symbol.dispose]()` (and `using`): frees the store, memory and WASI context now.
Object.defineProperty(Instance.prototype, Symbol.dispose, {
  configurable: true,
  writable: true,
  value: function dispose() {
    this.dispose();
  },
});

module.exports = { Instance };
