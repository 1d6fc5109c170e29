// A plugin host: the guest (__test__/fixtures/plugin.c) calls JS for a logger, an async
// key-value lookup and a greeting the host allocates in the guest's memory with the guest's own
// malloc; the guest runs on node-wasmtime's threads, so the event loop stays free while it
// waits for the lookup.
//   node examples/plugin-host.mjs [KEY...]
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRequire } from 'node:module';

const { WASI, Module } = createRequire(import.meta.url)('../lib/index.js');

const store = new Map([['colour', 'teal'], ['size', 'XL']]);
const keys = process.argv.length > 2 ? process.argv.slice(2) : ['colour', 'weight', 'size'];
const plugin = new Module(await readFile(new URL('../__test__/fixtures/plugin.wasm', import.meta.url)));

const wasi = new WASI({ version: 'preview1', args: ['plugin', ...keys] });
const bytes = (ptr, len) => new Uint8Array(instance.exports.memory.buffer, ptr, len);
const text = (ptr, len) => Buffer.from(bytes(ptr, len)).toString();
const instance = wasi.instantiate(plugin, {
  env: {
    log: (ptr, len) => console.error(`[plugin] ${text(ptr, len)}`),
    lookup: async (keyPtr, keyLen, out, capacity) => {
      await sleep(5); // a database, a fetch, ...
      const value = store.get(text(keyPtr, keyLen));
      if (value === undefined) return -1;
      const encoded = Buffer.from(value).subarray(0, capacity);
      bytes(out, encoded.length).set(encoded);
      return encoded.length;
    },
    greeting: (ptr, len) => {
      const greeting = Buffer.from(`hello from the host, ${text(ptr, len)}\0`);
      const at = instance.exports.malloc(greeting.length); // re-entrant: the guest's allocator
      bytes(at, greeting.length).set(greeting);
      return at;
    },
    add64: (a, b) => a + b,
    scale: (x, factor) => x * factor,
  },
});
process.exitCode = await wasi.startAsync(instance);
