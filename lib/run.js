'use strict';

// `runWasm` / `runWasmSync`: validate the options, resolve the module (a `Module` as is,
// bytes or text through the compilation cache), and hand both to the native run, which
// gives every call a fresh store, WASI context and instance.

const {
  Module, compileCachedModule, compileCachedModuleAsync, runSync, runAsync,
} = require('../index.js');
const { validateRunOptions } = require('./validate');

const kNoInput = new Uint8Array(0);

function runConfig(options) {
  const config = validateRunOptions(options);
  if (config.stdin === undefined) config.stdin = kNoInput;
  return config;
}

/** Runs a WASI command to completion on the calling thread. */
function runWasmSync(wasm, options) {
  const config = runConfig(options);
  const module = wasm instanceof Module ? wasm : compileCachedModule(wasm);
  return runSync(module, config);
}

/**
 * Runs a WASI command to completion on node-wasmtime's own threads; bytes or text are
 * compiled there too (once per distinct input).
 */
async function runWasm(wasm, options) {
  const config = runConfig(options);
  const module = wasm instanceof Module ? wasm : compileCachedModuleAsync(wasm);
  if (module instanceof Module) return runAsync(module, config);
  // Compiling takes a while: keep the stdin bytes as they are now, whatever the caller does
  // with its buffer meanwhile (runAsync copies them itself when it is called at once).
  if (config.stdin instanceof Uint8Array) config.stdin = new Uint8Array(config.stdin);
  return runAsync(await module, config);
}

module.exports = { runWasm, runWasmSync };
