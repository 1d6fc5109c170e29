'use strict';

// `runWasm` / `runWasmSync`: validate the options, resolve the module (a `Module` as is,
// bytes or text through the compilation cache), and hand both to the native run, which
// gives every call a fresh store, WASI context and instance.

const { Module, compileCachedModule, runSync, runAsync } = require('../index.js');
const { validateRunOptions } = require('./validate');

const kNoInput = new Uint8Array(0);

function prepare(wasm, options) {
  const config = validateRunOptions(options);
  if (config.stdin === undefined) config.stdin = kNoInput;
  const module = wasm instanceof Module ? wasm : compileCachedModule(wasm);
  return [module, config];
}

/** Runs a WASI command to completion on the calling thread. */
function runWasmSync(wasm, options) {
  const [module, config] = prepare(wasm, options);
  return runSync(module, config);
}

/** Runs a WASI command to completion on a worker thread of node-wasmtime's own pool. */
async function runWasm(wasm, options) {
  const [module, config] = prepare(wasm, options);
  return runAsync(module, config);
}

module.exports = { runWasm, runWasmSync };
