// node-wasmtime as a drop-in for node:wasi: the code is node:wasi's own example, with only the
// import changed. V8 runs the guest; its WASI syscalls are served by wasmtime-wasi.
//   node examples/node-wasi-drop-in.mjs [FILE.wasm]
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

const { WASI } = createRequire(import.meta.url)('../lib/index.js'); // was: require('node:wasi')

const file = process.argv[2] ?? new URL('../__test__/fixtures/hello.wasm', import.meta.url);
const wasi = new WASI({
  version: 'preview1',
  args: ['hello'],
  env: { GREETING: 'hi' },
  preopens: { '/sandbox': process.cwd() },
});
const { instance } = await WebAssembly.instantiate(await readFile(file), wasi.getImportObject());
process.exitCode = wasi.start(instance);
