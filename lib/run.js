'use strict';

// `runWasm` / `runWasmSync`: validate the options, resolve the module (a `Module` as is,
// bytes or text through the compilation cache), and hand both to the native run, which
// gives every call a fresh store, WASI context and instance.

const {
  Module, compileCachedModule, compileCachedModuleAsync, runSync, runAsync,
} = require('../index.js');
const { ERR_INVALID_ARG_VALUE } = require('./errors');
const { validateAbortSignal, throwIfAborted, withSignal } = require('./abort');
const { attachStreams, deliverNow, discard, isStop, streamError } = require('./stream');
const { validateRunOptions } = require('./validate');
const { importValues, makeDispatcher } = require('./host');

const kNoInput = new Uint8Array(0);

function runConfig(options, onPool) {
  const config = validateRunOptions(options, onPool);
  if (config.stdin === undefined) config.stdin = kNoInput;
  return config;
}

/** Runs a WASI command to completion on the calling thread. */
function runWasmSync(wasm, options) {
  const config = runConfig(options, false);
  if (options?.signal !== undefined) {
    throw ERR_INVALID_ARG_VALUE('options.signal', options.signal,
                                'works with runWasm only: runWasmSync blocks this thread, so ' +
                                'nothing could abort it (use limits.timeout)');
  }
  const module = wasm instanceof Module ? wasm : compileCachedModule(wasm);
  const values = importValues(module, options?.imports, 'options.imports');
  const streams = attachStreams(config);
  let result;
  try {
    result = runSync(module, config, streams.stdout?.channel, streams.stderr?.channel, values);
  } finally {
    deliverNow(streams);
  }
  const error = streamError(streams);
  if (error !== undefined) throw error;
  return result;
}

/**
 * Runs a WASI command to completion on node-wasmtime's own threads; bytes or text are
 * compiled there too (once per distinct input). `options.signal` stops the run: the promise
 * rejects with an AbortError (with what the guest wrote so far as `stdout`/`stderr`).
 */
async function runWasm(wasm, options) {
  const config = runConfig(options, true);
  const signal = options?.signal;
  validateAbortSignal(signal, 'options.signal');
  throwIfAborted(signal);
  let module = wasm instanceof Module ? wasm : compileCachedModuleAsync(wasm);
  if (!(module instanceof Module)) {
    // Compiling takes a while: keep the stdin bytes as they are now, whatever the caller does
    // with its buffer meanwhile (runAsync copies them itself when it is called at once).
    if (config.stdin instanceof Uint8Array) config.stdin = new Uint8Array(config.stdin);
    module = await module;
    throwIfAborted(signal);
  }
  const values = importValues(module, options?.imports, 'options.imports');
  const dispatch = values === undefined ? undefined : makeDispatcher(values);
  const streams = attachStreams(config);
  const result = await withSignal(signal, (token) =>
    runAsync(module, config, token, streams.stdout?.channel, streams.stderr?.channel, values,
             dispatch), { settleQueued: true }).catch((err) => {
    if (isStop(err)) discard(streams);
    throw err;
  });
  const error = streamError(streams);
  if (error !== undefined) throw error;
  return result;
}

module.exports = { runWasm, runWasmSync };
