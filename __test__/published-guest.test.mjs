// A published guest with its own JS glue, run on the wasmtime path: quickjs-wasi (QuickJS-NG
// compiled to a WASI reactor; npm `quickjs-wasi`, MIT). Its glue supplies `env.host_*`
// imports whose JS reads and writes the guest's memory and calls its exports (malloc, value
// constructors) from inside the import, grows the memory, and snapshots and restores the
// VM through the exported `__stack_pointer` global. The glue runs unchanged: its one
// `WebAssembly.instantiate` call is pointed at node-wasmtime's `wasi.instantiate` while a VM
// is created, and WASI is chosen with the glue's own `wasi` option. Every run is compared
// with the same glue on V8 with node:wasi serving WASI.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { QuickJS } from 'quickjs-wasi';
import { lib, NodeWASI } from './helpers.mjs';

const require = createRequire(import.meta.url);
const bytes = fs.readFileSync(require.resolve('quickjs-wasi/quickjs.wasm'));
const { WASI, Module } = lib;
const module = new Module(bytes);

const realInstantiate = WebAssembly.instantiate;
// Every instance the wasmtime paths made (so a test can see the glue really used them).
const wasmtimeInstances = [];

function onWasmtime(wasi, imports) {
  const instance = wasi.instantiate(module, imports);
  wasmtimeInstances.push(instance);
  return instance;
}

/** Runs `create` (which makes a VM through the glue) with `instantiate` standing in for V8's. */
async function creating(instantiate, create) {
  WebAssembly.instantiate = instantiate;
  try {
    return await create();
  } finally {
    WebAssembly.instantiate = realInstantiate;
  }
}

// How each path makes a VM: `make(options)` is `QuickJS.create` or `QuickJS.restore`.
const paths = {
  // V8 runs the guest; node:wasi serves WASI (bound to the guest's memory, as its glue would).
  'V8 + node:wasi': (make) => {
    const wasi = new NodeWASI({ version: 'preview1', returnOnExit: true });
    return creating(async (compiled, imports) => {
      const instance = await realInstantiate(compiled, imports);
      wasi.initialize({ exports: { memory: instance.exports.memory } });
      return instance;
    }, () => make({ wasm: bytes, wasi: () => wasi.wasiImport }));
  },
  // wasmtime runs the guest; wasmtime-wasi serves WASI (wasiImport's functions stand for it).
  'wasmtime + wasmtime-wasi': (make) => {
    const wasi = new WASI({ version: 'preview1', returnOnExit: true });
    return creating(async (_compiled, imports) => onWasmtime(wasi, imports),
      () => make({ wasm: bytes, wasi: () => wasi.wasiImport }));
  },
  // wasmtime runs the guest; the glue's own JS WASI shim replaces wasmtime-wasi's functions.
  'wasmtime + the glue\'s WASI': (make) => {
    const wasi = new WASI({ version: 'preview1', returnOnExit: true });
    return creating(async (_compiled, imports) => onWasmtime(wasi, imports),
      () => make({ wasm: bytes }));
  },
};

/** A session with the VM: host callbacks both ways, errors, growth, dump, a snapshot. */
function session(vm) {
  const out = [];
  const print = vm.newFunction('print', (...args) => {
    out.push(args.map((arg) => arg.toString()).join(' '));
    return vm.undefined;
  });
  vm.setProp(vm.global, 'print', print);
  print.dispose();
  const fail = vm.newFunction('fail', () => { throw new RangeError('from the host'); });
  vm.setProp(vm.global, 'fail', fail);
  fail.dispose();
  const result = vm.evalCode(`
    print('clock', typeof Date.now(), Date.now() > 1.7e12, Math.random() < 1);
    const big = Array.from({ length: 200000 }, (_, i) => 'x' + i).join(',');
    print('grown', big.length, JSON.stringify({ a: [1, 2, { b: 3 }] }));
    try { fail(); } catch (e) { print('caught', e.name, e.message); }
    globalThis.kept = { n: 41 };
    [1, 2, 3].map((x) => x * 7).reduce((a, b) => a + b)`);
  out.push(`result ${result.consume((handle) => handle.toNumber())}`);
  try {
    vm.evalCode('throw new TypeError("from the guest")');
  } catch (err) {
    out.push(`threw ${err.message}`);
  }
  out.push(`dump ${JSON.stringify(vm.dump(vm.hostToHandle({ x: 1, y: [2, 'three'] })))}`);
  const snapshot = vm.snapshot();
  out.push(`snapshot ${snapshot.memory.byteLength > 1 << 20}`);
  return { out, snapshot };
}

async function runPath(makeVm) {
  const vm = await makeVm((options) => QuickJS.create(options));
  const { out, snapshot } = session(vm);
  vm.dispose();
  const restored = await makeVm((options) => QuickJS.restore(snapshot, options));
  out.push(`restored ${restored.evalCode('kept.n + 1').consume((handle) => handle.toNumber())}`);
  restored.dispose();
  return out;
}

describe('quickjs-wasi, a published guest with JS glue', () => {
  test('its glue runs unchanged on wasmtime, with the output it has on V8 with node:wasi', async () => {
    const results = {};
    for (const [name, makeVm] of Object.entries(paths)) results[name] = await runPath(makeVm);
    // Two wasmtime paths, each a create and a restore.
    assert.equal(wasmtimeInstances.length, 4);
    assert.ok(wasmtimeInstances.every((instance) => instance instanceof lib.Instance));
    const expected = results['V8 + node:wasi'];
    assert.deepEqual(expected, [
      'clock number true true',
      'grown 1488889 {"a":[1,2,{"b":3}]}',
      'caught RangeError from the host',
      'result 42',
      'threw from the guest',
      'dump {"x":1,"y":[2,"three"]}',
      'snapshot true',
      'restored 42',
    ]);
    assert.deepEqual(results['wasmtime + wasmtime-wasi'], expected);
    assert.deepEqual(results['wasmtime + the glue\'s WASI'], expected);
  });

  test('a snapshot taken on wasmtime restores on V8, and one from V8 on wasmtime', async () => {
    const onWasmtime = await paths['wasmtime + wasmtime-wasi']((options) => QuickJS.create(options));
    onWasmtime.evalCode('globalThis.where = "made on wasmtime"').dispose();
    const fromWasmtime = onWasmtime.snapshot();
    onWasmtime.dispose();
    const onV8 = await paths['V8 + node:wasi']((options) => QuickJS.restore(fromWasmtime, options));
    assert.equal(onV8.evalCode('where').consume((handle) => handle.toString()), 'made on wasmtime');
    onV8.evalCode('globalThis.where += ", then V8"').dispose();
    const fromV8 = onV8.snapshot();
    onV8.dispose();
    const back = await paths['wasmtime + wasmtime-wasi']((options) => QuickJS.restore(fromV8, options));
    assert.equal(back.evalCode('where').consume((handle) => handle.toString()), 'made on wasmtime, then V8');
    back.dispose();
  });
});
