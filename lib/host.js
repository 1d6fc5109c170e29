'use strict';

// Host functions: JS functions a guest running in wasmtime imports. This file turns an
// import object shaped like `WebAssembly.instantiate`'s (`{ [module]: { [name]: value } }`;
// for a component `{ [interface]: { [name]: fn } }` and `{ [name]: fn }`, with a JS class under
// an imported resource's name) into one value per
// import of the module, in import order, which the native side checks against the module's
// import types (`src/host_functions.rs`, `src/component_imports.rs`); it keeps those values
// alive as long as the instance that calls them; and it makes the dispatcher through which a
// guest on node-wasmtime's own threads calls them on this thread (`src/host_calls.rs`),
// waiting for a returned Promise to settle.

const { types } = require('node:util');
const { componentImportFunctions } = require('../index.js');
const { validateObject } = require('./validate');
const { isWasiImportFunction } = require('./imports');
const { nativeOf } = require('./memory');

// Per Module: its imports as `module.imports()` lists them (the list never changes).
const importLists = new WeakMap();

// For a core module: `{ module, name }` per import; for a component: `{ interface, name }`
// per imported function JS must serve (WASI's interfaces excluded).
function importList(module) {
  let list = importLists.get(module);
  if (list === undefined) {
    list = module.kind === 'module' ? module.imports() : componentImportFunctions(module);
    importLists.set(module, list);
  }
  return list;
}

/**
 * The value `imports` gives each import of `module` (`undefined` where it gives none), or
 * `undefined` when there is no import object. A function a `wasiImport` was made with stands
 * for WASI itself (wasmtime-wasi serves it); any other function replaces what it names.
 */
function importValues(module, imports, name) {
  if (imports === undefined) {
    // Nothing given: WASI serves everything, unless the module imports more, which then is
    // reported as missing (by name and type) rather than as wasmtime's bare unknown import.
    if (!needsHostFunctions(module)) return undefined;
    imports = {};
  }
  validateObject(imports, name);
  if (module.kind !== 'module') {
    const list = importList(module);
    if (list.length === 0) return undefined;
    return list.map((entry) => {
      const { interface: iface, name: field, kind, resource, member } = entry;
      const scope = iface === undefined || iface === null ? imports : imports[iface];
      if (scope === undefined || scope === null) return undefined;
      return kind === 'function' ? scope[field] : resourceFunction(scope[resource], kind, member);
    });
  }
  return importList(module).map(({ module: namespace, name: field }) => {
    const scope = imports[namespace];
    const value = scope === undefined || scope === null ? undefined : scope[field];
    return isWasiImportFunction(value) ? undefined : nativeOf(value);
  });
}

// The function serving a resource's constructor, method or static function, from the JS
// class that serves the resource (as jco maps them): `new Class(...args)`,
// `self.member(...args)` on the object the handle stands for, `Class.member(...args)`.
// `undefined` (a link error naming the class) when the class or the static is missing.
function resourceFunction(Class, kind, member) {
  if (typeof Class !== 'function') return undefined;
  switch (kind) {
    case 'constructor':
      return (...args) => Reflect.construct(Class, args);
    case 'method':
      return (self, ...args) => {
        const method = self[member];
        if (typeof method !== 'function') {
          throw new TypeError(`The host object of resource ${Class.name} has no method ${member}`);
        }
        return Reflect.apply(method, self, args);
      };
    default: {
      const fn = Class[member];
      return typeof fn === 'function' ? (...args) => Reflect.apply(fn, Class, args) : undefined;
    }
  }
}

const kWasiNamespaces = ['wasi_snapshot_preview1', 'wasi_unstable'];

function needsHostFunctions(module) {
  const list = importList(module);
  return module.kind === 'module' ?
    list.some(({ module: namespace }) => !kWasiNamespaces.includes(namespace)) :
    list.length > 0;
}

// Per Instance: the import values its host functions come from. The instance (and each of
// its export functions, natively) holds them; the native side only has a weak reference, so
// host functions that capture their own instance do not keep it alive for ever.
const instanceValues = new WeakMap();

function keepValues(instance, values) {
  if (values !== undefined) instanceValues.set(instance, values);
  return instance;
}

function valuesOf(instance) {
  return instanceValues.get(instance);
}

/**
 * The dispatcher of one run on node-wasmtime's threads: `(call, index, args)` calls the
 * function for import `index` and answers `call` with what it returned, or with what its
 * Promise settles to. Never throws (it runs from a threadsafe function).
 */
// The index under which a guest on node-wasmtime's threads asks for `[Symbol.dispose]()` of
// a host resource's object (its only argument): it dropped its handle.
const kDisposeIndex = 0xFFFFFFFF;

function dispose(object) {
  const method = object[Symbol.dispose];
  if (typeof method === 'function') Reflect.apply(method, object, []);
}

function makeDispatcher(values) {
  return function dispatch(call, index, args) {
    let result;
    try {
      result = index === kDisposeIndex ? dispose(args[0]) : Reflect.apply(values[index], undefined, args);
    } catch (err) {
      call.reject(err);
      return;
    }
    if (types.isPromise(result)) {
      result.then((value) => call.resolve(value), (err) => call.reject(err));
    } else {
      call.resolve(result);
    }
  };
}

module.exports = { importValues, keepValues, valuesOf, makeDispatcher };
