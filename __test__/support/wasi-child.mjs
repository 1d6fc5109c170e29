// Runs one WASI command in this (child) process, for the differential and sandbox tests:
// under Node's own node:wasi (`impl: 'node'`) or under node-wasmtime's `WASI` class with
// node:wasi's default stdio, the real fds 0/1/2, on the wasmtime path (`impl: 'ours'`) or as
// a node:wasi drop-in with V8 running the guest (`impl: 'ours-v8'`). The parent captures
// the guest's stdout and stderr byte for byte and feeds its stdin through the pipes.
//
// Usage: node --disable-warning=ExperimentalWarning wasi-child.mjs CONFIG_JSON
// CONFIG_JSON: { impl, wasm, args, env, preopens, resultFile, returnOnExit = true }
//   wasm        path of the .wasm file
//   resultFile  receives, as JSON, what start() did: { exitCode: <its return value> }, or
//               { trap: { name, code, trapCode, isRuntimeError } } if it threw, or
//               { constructorError: { name, code, errno, syscall } } if `new WASI` threw.
// Exits with start()'s return value (the OS keeps its low 8 bits), 70 after a throw from
// start(), 71 after a throw from the constructor. Writes nothing of its own to stdout or
// stderr, so they hold exactly what the guest wrote.
import fs from 'node:fs';
import { createRequire } from 'node:module';

const config = JSON.parse(process.argv[2]);
const bytes = fs.readFileSync(config.wasm);
const options = {
  version: 'preview1',
  args: config.args,
  env: config.env,
  preopens: config.preopens,
  returnOnExit: config.returnOnExit ?? true,
};

function record(result, status) {
  fs.writeFileSync(config.resultFile, JSON.stringify(result));
  process.exit(status);
}

let wasi;
let instance;
try {
  if (config.impl === 'node') {
    const { WASI } = await import('node:wasi');
    wasi = new WASI(options);
    ({ instance } = await WebAssembly.instantiate(bytes, wasi.getImportObject()));
  } else if (config.impl === 'ours') {
    const { WASI } = createRequire(import.meta.url)('../../lib/index.js');
    wasi = new WASI(options);
    instance = wasi.instantiate(bytes);
  } else if (config.impl === 'ours-v8') {
    const { WASI } = createRequire(import.meta.url)('../../lib/index.js');
    wasi = new WASI(options);
    ({ instance } = await WebAssembly.instantiate(bytes, wasi.getImportObject()));
  } else {
    throw new Error(`unknown impl ${config.impl}`);
  }
} catch (err) {
  const { name, code, errno, syscall } = err;
  record({ constructorError: { name, code, errno, syscall } }, 71);
}

let exitCode;
try {
  exitCode = wasi.start(instance);
} catch (err) {
  const { name, code, trapCode } = err;
  record({ trap: { name, code, trapCode, isRuntimeError: err instanceof WebAssembly.RuntimeError } }, 70);
}
record({ exitCode }, exitCode);
