// Host functions for core modules: JS functions a guest in wasmtime imports, on the JS thread
// (wasi.instantiate + exports/start, runWasmSync) and from node-wasmtime's own threads
// (runWasm, startAsync). Conversions and errors are compared with V8 running the same module
// with the same import object.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { parse as watToWasm } from '@bytecodealliance/jco';
import v8 from 'node:v8';
import vm from 'node:vm';
import { lib, assertCode, fixture, NodeWASI, MEMORY_AND_REALLOC_WAT, EXPERIMENTAL_WARNING } from './helpers.mjs';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const { WASI, Module, runWasm, runWasmSync } = lib;

// A guest that passes every value type through an import and back.
const IDENTITY = `(module
  (import "env" "i32" (func $i32 (param i32) (result i32)))
  (import "env" "i64" (func $i64 (param i64) (result i64)))
  (import "env" "f32" (func $f32 (param f32) (result f32)))
  (import "env" "f64" (func $f64 (param f64) (result f64)))
  (import "env" "pair" (func $pair (param i32 i64) (result i32 i64)))
  (import "env" "none" (func $none))
  (func (export "i32") (param i32) (result i32) local.get 0 call $i32)
  (func (export "i64") (param i64) (result i64) local.get 0 call $i64)
  (func (export "f32") (param f32) (result f32) local.get 0 call $f32)
  (func (export "f64") (param f64) (result f64) local.get 0 call $f64)
  (func (export "pair") (param i32 i64) (result i32 i64) local.get 0 local.get 1 call $pair)
  (func (export "none") call $none))`;
const identityBytes = await watToWasm(IDENTITY);
const identity = new Module(identityBytes);
const identityV8 = new WebAssembly.Module(identityBytes);

/** The same call on a V8 instance and on ours, with the same import object. */
function both(imports, call) {
  const v8 = new WebAssembly.Instance(identityV8, imports);
  const ours = new WASI({ version: 'preview1' }).instantiate(identity, imports);
  return [outcome(() => call(v8.exports)), outcome(() => call(ours.exports))];
}

function outcome(fn) {
  try {
    return { value: fn() };
  } catch (error) {
    return { error };
  }
}

function echo() {
  return { env: { i32: (x) => x, i64: (x) => x, f32: (x) => x, f64: (x) => x, pair: (a, b) => [a, b], none() {} } };
}

/** Asserts V8 and node-wasmtime ended the same way: equal values, or errors of one class. */
function assertSame([v8, ours], label) {
  if ('error' in v8) {
    assert.ok('error' in ours, `${label}: V8 threw ${v8.error}, ours returned ${ours.value}`);
    assert.equal(ours.error.constructor.name, v8.error.constructor.name, `${label}: ${ours.error.message}`);
  } else {
    assert.ok(!('error' in ours), `${label}: ours threw ${ours.error?.stack}`);
    assert.deepEqual(ours.value, v8.value, label);
  }
}

describe('values cross as the WebAssembly JS API converts them (compared with V8)', () => {
  const cases = [
    // [label, import name, export call, what the host function returns]
    ['i32 argument and result', 'i32', (e) => e.i32(-7), (x) => x * 2],
    ['i32 result wraps (ToInt32)', 'i32', (e) => e.i32(1), () => 2 ** 32 + 5],
    ['i32 result truncates', 'i32', (e) => e.i32(1), () => -3.9],
    ['i32 result from a string', 'i32', (e) => e.i32(1), () => '42'],
    ['i32 result NaN is 0', 'i32', (e) => e.i32(1), () => undefined],
    ['i32 result from an object with valueOf', 'i32', (e) => e.i32(1), () => ({ valueOf: () => 9 })],
    ['i32 result BigInt is a TypeError', 'i32', (e) => e.i32(1), () => 1n],
    ['i32 result Symbol is a TypeError', 'i32', (e) => e.i32(1), () => Symbol('x')],
    ['i64 argument and result', 'i64', (e) => e.i64(-(2n ** 63n)), (x) => x],
    ['i64 result wraps (ToBigInt64)', 'i64', (e) => e.i64(1n), () => 2n ** 64n + 3n],
    ['i64 result from a boolean', 'i64', (e) => e.i64(1n), () => true],
    ['i64 result from a string', 'i64', (e) => e.i64(1n), () => '123'],
    ['i64 result from a bad string is a SyntaxError', 'i64', (e) => e.i64(1n), () => '1.5'],
    ['i64 result number is a TypeError', 'i64', (e) => e.i64(1n), () => 5],
    ['i64 result undefined is a TypeError', 'i64', (e) => e.i64(1n), () => undefined],
    ['f32 rounds to single precision', 'f32', (e) => e.f32(0.1), (x) => x + 0.2],
    ['f32 NaN and infinities', 'f32', (e) => [e.f32(NaN), e.f32(Infinity)], (x) => x],
    ['f64 argument and result', 'f64', (e) => e.f64(Math.PI), (x) => x / 3],
    ['f64 result from a string', 'f64', (e) => e.f64(1), () => '2.5'],
    ['several results from an array', 'pair', (e) => e.pair(3, 4n), (a, b) => [a + 1, b * 2n]],
    ['several results: too few is a TypeError', 'pair', (e) => e.pair(3, 4n), () => [1]],
    ['several results: not an array is a TypeError', 'pair', (e) => e.pair(3, 4n), () => 5],
    ['no result: the return value is ignored', 'none', (e) => e.none(), () => 123],
  ];
  for (const [label, name, call, host] of cases) {
    test(label, () => {
      const imports = echo();
      imports.env[name] = host;
      assertSame(both(imports, call), label);
    });
  }

  test('the arguments a host function receives, and its this, match V8', () => {
    const seen = [];
    const imports = echo();
    imports.env.pair = function (...args) { seen.push([this, args]); return [0, 0n]; };
    both(imports, (e) => e.pair(-1, 2n ** 63n - 1n));
    assert.deepEqual(seen[1], seen[0]);
    assert.deepEqual(seen[0], [undefined, [-1, 2n ** 63n - 1n]]);
  });
});

describe('exceptions from host functions', () => {
  test('unwind the guest and reach the caller as the same object; the instance stays usable', () => {
    const error = new Error('from the host');
    let fail = true;
    const imports = echo();
    imports.env.i32 = (x) => { if (fail) throw error; return x + 1; };
    const instance = new WASI({ version: 'preview1' }).instantiate(identity, imports);
    assert.throws(() => instance.exports.i32(1), (err) => err === error);
    fail = false;
    assert.equal(instance.exports.i32(1), 2);
  });

  test('any thrown value, not only errors, comes back untouched', () => {
    for (const thrown of ['a string', 42, null, undefined, Symbol('s'), { plain: true }]) {
      const imports = echo();
      imports.env.none = () => { throw thrown; };
      const instance = new WASI({ version: 'preview1' }).instantiate(identity, imports);
      let caught = 'nothing thrown';
      try { instance.exports.none(); } catch (err) { caught = err; }
      assert.equal(caught, thrown);
    }
  });

  test('a throw from inside start() reaches start()', () => {
    const error = new RangeError('stop');
    const module = new Module(`(module
      (import "env" "hook" (func $hook))
      (memory (export "memory") 1)
      (func (export "_start") call $hook))`);
    const wasi = new WASI({ version: 'preview1' });
    const instance = wasi.instantiate(module, { env: { hook() { throw error; } } });
    assert.throws(() => wasi.start(instance), (err) => err === error);
  });

  test('a throw during instantiation (the start function) reaches instantiate()', () => {
    const error = new Error('in start function');
    const module = new Module(`(module (import "env" "hook" (func $hook)) (start $hook))`);
    assert.throws(() => new WASI({ version: 'preview1' }).instantiate(module, { env: { hook() { throw error; } } }),
                  (err) => err === error);
  });

  test('runWasmSync rethrows the same object; runWasm rejects with it', async () => {
    const error = new Error('plugin failed');
    const module = new Module(`(module
      (import "env" "hook" (func $hook))
      (memory (export "memory") 1)
      (func (export "_start") call $hook))`);
    const imports = { env: { hook() { throw error; } } };
    assert.throws(() => runWasmSync(module, { imports }), (err) => err === error);
    await assert.rejects(runWasm(module, { imports }), (err) => err === error);
    const rejecting = { env: { hook: async () => { throw error; } } };
    await assert.rejects(runWasm(module, { imports: rejecting }), (err) => err === error);
  });

  test('a Promise returned on the JS thread for a function with results is a clear TypeError', () => {
    const imports = echo();
    imports.env.i32 = async (x) => x;
    const instance = new WASI({ version: 'preview1' }).instantiate(identity, imports);
    assert.throws(() => instance.exports.i32(1), (err) => err instanceof TypeError && /runWasm\(\) or wasi\.startAsync\(\)/.test(err.message));
  });
});

describe('link errors name the import, what it must be and what was given', () => {
  const cases = [
    ['a missing function', { env: { ...echo().env, f64: undefined } }, /env\.f64, a function \(f64\) -> f64, but imports\.env\.f64 is undefined/],
    ['a missing namespace', {}, /env\.i32, a function \(i32\) -> i32, but imports\.env\.i32 is undefined/],
    ['a value that is not a function', { env: { ...echo().env, none: 5 } }, /imports\.env\.none must be a function: the module imports a function \(\) -> \(\)\. Received a number/],
  ];
  for (const [label, imports, message] of cases) {
    test(label, () => {
      assert.throws(() => new WASI({ version: 'preview1' }).instantiate(identity, imports),
                    (err) => assertCode('ERR_WASM_LINK')(err) && message.test(err.message));
      assert.throws(() => runWasmSync(identity, { imports }),
                    (err) => assertCode('ERR_WASM_LINK')(err) && message.test(err.message));
    });
  }

  test('no import object at all: the missing imports are named the same way', () => {
    assert.throws(() => new WASI({ version: 'preview1' }).instantiate(identity),
                  (err) => assertCode('ERR_WASM_LINK')(err) && /env\.i32, a function \(i32\) -> i32, but imports\.env\.i32 is undefined/.test(err.message));
    assert.throws(() => runWasmSync(identity), assertCode('ERR_WASM_LINK'));
  });

  test('imported memories, tables and globals are refused clearly for now', () => {
    const module = new Module('(module (import "env" "mem" (memory 1)))');
    assert.throws(() => new WASI({ version: 'preview1' }).instantiate(module, { env: {} }),
                  (err) => assertCode('ERR_WASM_LINK')(err) && /env\.mem, a memory of at least 1 pages/.test(err.message));
  });

  test('v128 and reference types in a host function signature are refused', () => {
    const module = new Module('(module (import "env" "f" (func (param externref))))');
    assert.throws(() => new WASI({ version: 'preview1' }).instantiate(module, { env: { f() {} } }),
                  (err) => assertCode('ERR_WASM_LINK')(err) && /i32, i64, f32 and f64 only/.test(err.message));
  });

  test('imports must be an object', () => {
    for (const bad of [null, 5, 'env']) {
      assert.throws(() => new WASI({ version: 'preview1' }).instantiate(identity, bad), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
      assert.throws(() => runWasmSync(identity, { imports: bad }), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
    }
  });
});

describe('WASI and user functions together', () => {
  const hello = `(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import "env" "code" (func $code (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 8) "\\10\\00\\00\\00\\03\\00\\00\\00hi\\n")
    (func (export "_start")
      (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 0)))
      (call $exit (call $code))))`;

  test('WASI serves what the import object leaves out', () => {
    const result = runWasmSync(new Module(hello), { imports: { env: { code: () => 7 } } });
    assert.equal(result.exitCode, 7);
    assert.equal(result.stdout.toString(), 'hi\n');
  });

  test('a user function under a WASI name replaces it', () => {
    const writes = [];
    const imports = {
      env: { code: () => 3 },
      wasi_snapshot_preview1: { fd_write: (...args) => { writes.push(args); return 0; } },
    };
    const result = runWasmSync(new Module(hello), { imports });
    assert.deepEqual(writes, [[1, 8, 1, 0]]);
    assert.equal(result.stdout.length, 0);
    assert.equal(result.exitCode, 3);
  });

  test("getImportObject()'s own functions stand for WASI itself on the wasmtime path", () => {
    const wasi = new WASI({ version: 'preview1', stdout: 'pipe' });
    const instance = wasi.instantiate(new Module(hello), { ...wasi.getImportObject(), env: { code: () => 0 } });
    assert.equal(wasi.start(instance), 0);
    assert.equal(wasi.stdout.toString(), 'hi\n');
  });
});

// A guest with an allocator and a host function that calls back into it, as glue code does.
const REENTRANT = `(module
  (import "env" "greet" (func $greet (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 16) "world")
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    global.get $next local.set $p
    global.get $next local.get $n i32.add global.set $next
    local.get $p)
  (func (export "depth") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (call $greet (local.get $n) (i32.const -1)))))
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "hello") (result i32) (call $greet (i32.const 16) (i32.const 5))))`;

// REENTRANT as a command: _start recurses 10 deep through the host and exits with the depth.
const REENTRANT_COMMAND = REENTRANT
  .replace('(memory (export "memory") 1)', `(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (call $depth_of (i32.const 10))))`)
  .replace('(func (export "depth") (param $n i32) (result i32)', '(func $depth_of (export "depth") (param $n i32) (result i32)');

describe('re-entrancy: a host function calls the instance and reads its memory', () => {
  test('calls an export (malloc) and writes the result into memory the guest reads', () => {
    let instance;
    const imports = { env: { greet(ptr, len) {
      const name = Buffer.from(instance.exports.memory.buffer, ptr, len).toString();
      const text = Buffer.from(`hello ${name}`);
      const at = instance.exports.malloc(text.length);
      instance.exports.memory.write(at, text);
      return at;
    } } };
    instance = new WASI({ version: 'preview1' }).instantiate(new Module(REENTRANT), imports);
    const at = instance.exports.hello();
    assert.equal(at, 1024);
    assert.equal(instance.exports.memory.read(at, 11).toString(), 'hello world');
  });

  test('nests: host -> export -> host -> export, 50 deep', () => {
    let instance;
    const imports = { env: { greet: (n) => 1 + instance.exports.depth(n - 1) } };
    instance = new WASI({ version: 'preview1' }).instantiate(new Module(REENTRANT), imports);
    assert.equal(instance.exports.depth(50), 50);
  });

  test('an error from a nested call unwinds both guests to the outer caller', () => {
    let instance;
    const imports = { env: { greet: (n) => {
      if (n === 1) throw new URIError('deep');
      return instance.exports.depth(n - 1);
    } } };
    instance = new WASI({ version: 'preview1' }).instantiate(new Module(REENTRANT), imports);
    assert.throws(() => instance.exports.depth(5), URIError);
    assert.equal(instance.exports.malloc(0), 1024, 'still usable');
  });
});

describe('memory.buffer', () => {
  test('views the memory itself: the same object until the memory grows, then detached', () => {
    const instance = new WASI({ version: 'preview1' }).instantiate(new Module(REENTRANT), { env: { greet: () => 0 } });
    const memory = instance.exports.memory;
    const first = memory.buffer;
    assert.ok(first instanceof ArrayBuffer);
    assert.equal(first.byteLength, 65536);
    assert.equal(memory.buffer, first);
    assert.equal(Buffer.from(first, 16, 5).toString(), 'world');
    new Uint8Array(first)[16] = 'W'.charCodeAt(0);
    assert.equal(memory.read(16, 5).toString(), 'World', 'writes through the buffer reach the guest');
    assert.equal(instance.exports.grow(1), 1);
    assert.equal(first.byteLength, 0, 'detached when the guest grew the memory');
    const second = memory.buffer;
    assert.notEqual(second, first);
    assert.equal(second.byteLength, 131072);
    assert.equal(memory.grow(2), 2);
    assert.equal(second.byteLength, 0, 'detached when JS grew the memory');
    assert.equal(memory.buffer.byteLength, 4 * 65536);
  });

  test('a buffer taken during a host call is detached if the guest grows memory after it', () => {
    let instance;
    let seen;
    const imports = { env: { greet() { seen = instance.exports.memory.buffer; return 0; } } };
    instance = new WASI({ version: 'preview1' }).instantiate(new Module(REENTRANT), imports);
    instance.exports.hello();
    assert.equal(seen.byteLength, 65536);
    instance.exports.grow(1);
    assert.equal(seen.byteLength, 0);
  });

  test('keeps the memory alive after the instance is unreachable', async () => {
    let buffer = (() => {
      const instance = new WASI({ version: 'preview1' }).instantiate(new Module(REENTRANT), { env: { greet: () => 0 } });
      return instance.exports.memory.buffer;
    })();
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(Buffer.from(buffer, 16, 5).toString(), 'world');
    buffer = null;
  });
});

describe('host functions on node-wasmtime threads (runWasm, startAsync)', () => {
  // A command that asks its host for a number and exits with it.
  const ASK = `(module
    (import "env" "ask" (func $ask (param i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "question")
    (func (export "noop"))
    (func (export "_start")
      (call $exit (call $ask (i32.const 16)))))`;
  const ask = new Module(ASK);

  test('every call runs on the JS thread; a sync result and a Promise result both arrive', async () => {
    const { threadId } = await import('node:worker_threads');
    const seen = [];
    const sync = await runWasm(ask, { imports: { env: { ask: (p) => { seen.push(threadId); return p + 1; } } } });
    assert.equal(sync.exitCode, 17);
    const later = await runWasm(ask, { imports: { env: { ask: async (p) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      seen.push(threadId);
      return p + 2;
    } } } });
    assert.equal(later.exitCode, 18);
    assert.deepEqual(seen, [threadId, threadId]);
  });

  test('the event loop keeps running while the guest waits for a Promise', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const result = await runWasm(ask, { imports: { env: { ask: () => new Promise((resolve) => setTimeout(() => resolve(5), 50)) } } });
    clearInterval(timer);
    assert.equal(result.exitCode, 5);
    assert.ok(ticks >= 5, `the timer ticked ${ticks} times`);
  });

  test('a result of the wrong type rejects the run with a TypeError, as a throw would', async () => {
    await assert.rejects(runWasm(ask, { imports: { env: { ask: async () => 1n } } }), TypeError);
  });

  test('limits.timeout stops a guest waiting on a host call that never settles', async () => {
    const started = Date.now();
    await assert.rejects(runWasm(ask, { imports: { env: { ask: () => new Promise(() => {}) } }, limits: { timeout: 100 } }),
                         assertCode('ERR_WASI_TIMEOUT'));
    assert.ok(Date.now() - started < 2000);
  });

  test('signal stops a guest waiting on a host call', async () => {
    const controller = new AbortController();
    const run = runWasm(ask, { imports: { env: { ask: () => { setTimeout(() => controller.abort(), 20); return new Promise(() => {}); } } }, signal: controller.signal });
    await assert.rejects(run, (err) => err.name === 'AbortError');
  });

  test('startAsync: host functions read and write guest memory and call exports while the guest waits', async () => {
    const wasi = new WASI({ version: 'preview1' });
    let instance;
    let called;
    instance = wasi.instantiate(ask, { env: { ask: async (p) => {
      await null;
      const question = instance.exports.memory.read(p, 8).toString();
      new Uint8Array(instance.exports.memory.buffer)[p] = 'Q'.charCodeAt(0);
      called = instance.exports.noop();
      return question === 'question' ? 42 : 1;
    } } });
    assert.equal(await wasi.startAsync(instance), 42);
    assert.equal(called, undefined);
    assert.equal(instance.exports.memory.read(16, 8).toString(), 'Question');
  });

  test('startAsync: re-entrant calls nest (host -> export -> host -> export) on the guest\'s thread', async () => {
    const wasi = new WASI({ version: 'preview1' });
    let instance;
    const depth = [];
    instance = wasi.instantiate(new Module(REENTRANT_COMMAND), { env: {
      greet: (n) => { depth.push(n); return n === 0 ? 0 : 1 + instance.exports.depth(n - 1); },
    } });
    assert.equal(await wasi.startAsync(instance), 10);
    assert.deepEqual(depth, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0].slice(0, depth.length));
  });

  test('startAsync: an export called while the guest runs wasm (not waiting for JS) is ERR_WASI_BUSY', async () => {
    const endless = new Module(`(module
      (import "env" "tick" (func $tick))
      (memory (export "memory") 1)
      (func (export "noop"))
      (func (export "_start") (loop $forever (br $forever))))`);
    const wasi = new WASI({ version: 'preview1', limits: { timeout: 200 } });
    const instance = wasi.instantiate(endless, { env: { tick() {} } });
    const running = wasi.startAsync(instance);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.throws(() => instance.exports.noop(), assertCode('ERR_WASI_BUSY'));
    await assert.rejects(running, assertCode('ERR_WASI_TIMEOUT'));
  });

  test('startAsync rejects with what the host function threw', async () => {
    const error = new Error('async failure');
    const wasi = new WASI({ version: 'preview1' });
    const instance = wasi.instantiate(ask, { env: { ask: () => Promise.reject(error) } });
    await assert.rejects(wasi.startAsync(instance), (err) => err === error);
  });

  test('many concurrent runs, each calling JS many times', async () => {
    const LOOP = `(module
      (import "env" "step" (func $step (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (local $i i32) (local $acc i32)
        (loop $again
          (local.set $acc (call $step (local.get $acc)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $again (i32.lt_u (local.get $i) (i32.const 200))))
        (call $exit (i32.and (local.get $acc) (i32.const 255)))))`;
    const module = new Module(LOOP);
    const runs = Array.from({ length: 8 }, (_, k) =>
      runWasm(module, { imports: { env: { step: (acc) => (k % 2 ? Promise.resolve(acc + 1) : acc + 1) } } }));
    const results = await Promise.all(runs);
    assert.deepEqual(results.map((r) => r.exitCode), Array(8).fill(200));
  });

  test('host calls from a worker thread\'s runs run on that worker', async () => {
    const worker = new Worker(`
      const { parentPort, threadId } = require('node:worker_threads');
      const { runWasm, Module } = require(${JSON.stringify(new URL('../lib/index.js', import.meta.url).pathname)});
      const module = new Module(${JSON.stringify(ASK)});
      runWasm(module, { imports: { env: { ask: async () => threadId } } })
        .then((r) => parentPort.postMessage({ exitCode: r.exitCode, threadId }),
              (e) => parentPort.postMessage({ error: String(e) }));
    `, { eval: true });
    const message = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    assert.equal(message.error, undefined);
    assert.equal(message.exitCode, message.threadId);
  });
});

test('instances whose host functions capture the instance are collected (no strong cycle through native code)', async () => {
  let collected = 0;
  const registry = new FinalizationRegistry(() => { collected++; });
  const module = new Module(REENTRANT);
  const COUNT = 300;
  for (let i = 0; i < COUNT; i++) {
    let instance;
    instance = new WASI({ version: 'preview1' }).instantiate(module, { env: { greet: () => instance.exports.malloc(1) } });
    instance.exports.hello();
    registry.register(instance, i);
  }
  for (let i = 0; i < 20 && collected < COUNT * 0.9; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(collected >= COUNT * 0.9, `only ${collected} of ${COUNT} instances were collected`);
});

// The same glue code for V8's instance and ours: it only uses `instance.exports` (memory.buffer,
// malloc), as JS written for WebAssembly.instantiate does.
function pluginImports(getInstance, log, { async = false, allocate = true } = {}) {
  const table = { colour: 'teal', size: 'XL' };
  const bytes = (ptr, len) => new Uint8Array(getInstance().exports.memory.buffer, ptr, len);
  const lookup = (keyPtr, keyLen, out, capacity) => {
    const key = Buffer.from(bytes(keyPtr, keyLen)).toString();
    if (!(key in table)) return -1;
    const value = Buffer.from(table[key]).subarray(0, capacity);
    bytes(out, value.length).set(value);
    return value.length;
  };
  return {
    env: {
      log: (ptr, len) => { log.push(Buffer.from(bytes(ptr, len)).toString()); },
      lookup: async ? async (...args) => { await new Promise((r) => setTimeout(r, 1)); return lookup(...args); } : lookup,
      greeting: (ptr, len) => {
        if (!allocate) return 0;
        const text = Buffer.from(`hello from the host, ${Buffer.from(bytes(ptr, len))}\0`);
        const at = getInstance().exports.malloc(text.length);
        bytes(at, text.length).set(text);
        return at;
      },
      add64: (a, b) => a + b,
      scale: (x, factor) => x * factor,
    },
  };
}

describe('a C plugin calling its host (fixtures/plugin.c): the same glue on node:wasi + V8 and here', () => {
  const bytes = fixture('plugin.wasm');
  const args = ['plugin', 'colour', 'weight', 'size'];
  const expected = 'colour=teal\nweight: missing\nsize=XL\nhello from the host, plugin\nadd64=1099511627771 scale=3.000\n';

  test('node:wasi + V8 (the reference)', async () => {
    const log = [];
    let instance;
    const wasi = new NodeWASI({ version: 'preview1', args, stdout: 1, returnOnExit: true });
    // node:wasi writes to a real fd: run it in a child process to capture its stdout.
    const { spawnSync } = await import('node:child_process');
    const child = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', `
      import { WASI } from 'node:wasi';
      import fs from 'node:fs';
      const pluginImports = ${pluginImports.toString()};
      const log = [];
      let instance;
      const wasi = new WASI({ version: 'preview1', args: ${JSON.stringify(args)}, returnOnExit: true });
      ({ instance } = await WebAssembly.instantiate(fs.readFileSync(${JSON.stringify(new URL('fixtures/plugin.wasm', import.meta.url).pathname)}),
        { ...wasi.getImportObject(), ...pluginImports(() => instance, log) }));
      const code = wasi.start(instance);
      process.stderr.write(JSON.stringify({ code, log }));
    `], { encoding: 'utf8' });
    assert.equal(child.stdout, expected);
    assert.deepEqual(JSON.parse(child.stderr), { code: 1, log: ['looked up colour', 'looked up size'] });
    void wasi; void log; void instance;
  });

  test('node-wasmtime, guest on the JS thread (wasi.instantiate + start)', () => {
    const log = [];
    let instance;
    const wasi = new WASI({ version: 'preview1', args, stdout: 'pipe' });
    instance = wasi.instantiate(bytes, pluginImports(() => instance, log));
    assert.equal(wasi.start(instance), 1);
    assert.equal(wasi.stdout.toString(), expected);
    assert.deepEqual(log, ['looked up colour', 'looked up size']);
  });

  test('node-wasmtime, guest on a pool thread with an async lookup (startAsync); malloc called from the host', async () => {
    const log = [];
    let instance;
    const wasi = new WASI({ version: 'preview1', args, stdout: 'pipe' });
    instance = wasi.instantiate(bytes, pluginImports(() => instance, log, { async: true }));
    assert.equal(await wasi.startAsync(instance), 1);
    assert.equal(wasi.stdout.toString(), expected);
    assert.deepEqual(log, ['looked up colour', 'looked up size']);
  });

  test('node-wasmtime, 16 plugins at once on the pool, each with async lookups and malloc from the host', async () => {
    const module = new Module(bytes);
    const runs = Array.from({ length: 16 }, async () => {
      const log = [];
      let instance;
      const wasi = new WASI({ version: 'preview1', args, stdout: 'pipe' });
      instance = wasi.instantiate(module, pluginImports(() => instance, log, { async: true }));
      const code = await wasi.startAsync(instance);
      return [code, wasi.stdout.toString(), log.length];
    });
    for (const [code, stdout, logged] of await Promise.all(runs)) {
      assert.equal(code, 1);
      assert.equal(stdout, expected);
      assert.equal(logged, 2);
    }
  });

  test('node-wasmtime, a loop of 2,000 instances with host functions stays bounded', () => {
    const module = new Module(bytes);
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 2000; i++) {
      let instance;
      const wasi = new WASI({ version: 'preview1', args, stdout: 'ignore' });
      instance = wasi.instantiate(module, pluginImports(() => instance, []));
      assert.equal(wasi.start(instance), 1);
      if (i % 200 === 0) gc();
    }
    gc();
    const grown = process.memoryUsage().rss - before;
    assert.ok(grown < 200 * 1024 * 1024, `RSS grew by ${grown} bytes`);
  });
});

// A component importing a top-level function and an interface, with exports that call them
// (component WAT: one memory module for strings, the lowered imports, a core module using them).
const COMPONENT_WAT = `(component
  (import "double" (func $double (param "x" u32) (result u32)))
  (import "test:host/api" (instance $api
    (export "greet" (func (param "name" string) (result string)))
    (export "add64" (func (param "a" s64) (param "b" s64) (result s64)))))
  (core module $mem
    ${MEMORY_AND_REALLOC_WAT})
  (core instance $m (instantiate $mem))
  (alias export $api "greet" (func $greet))
  (alias export $api "add64" (func $add64))
  (core func $double_l (canon lower (func $double)))
  (core func $greet_l (canon lower (func $greet) (memory (core memory $m "mem")) (realloc (core func $m "realloc"))))
  (core func $add64_l (canon lower (func $add64)))
  (core module $main
    (import "host" "double" (func $double (param i32) (result i32)))
    (import "host" "greet" (func $greet (param i32 i32 i32)))
    (import "host" "add64" (func $add64 (param i64 i64) (result i64)))
    (import "mem" "mem" (memory 1))
    (func (export "run-double") (param i32) (result i32) local.get 0 call $double)
    (func (export "run-add64") (param i64 i64) (result i64) local.get 0 local.get 1 call $add64)
    (func (export "run-greet") (param i32 i32) (result i32)
      local.get 0 local.get 1 i32.const 64 call $greet i32.const 64)
    (func (export "run") (result i32)
      (i32.ne (call $double (i32.const 21)) (i32.const 42))))
  (core instance $i (instantiate $main
    (with "host" (instance (export "double" (func $double_l)) (export "greet" (func $greet_l)) (export "add64" (func $add64_l))))
    (with "mem" (instance $m))))
  (func (export "run-double") (param "x" u32) (result u32) (canon lift (core func $i "run-double")))
  (func (export "run-add64") (param "a" s64) (param "b" s64) (result s64) (canon lift (core func $i "run-add64")))
  (func (export "run-greet") (param "name" string) (result string)
    (canon lift (core func $i "run-greet") (memory (core memory $m "mem")) (realloc (core func $m "realloc"))))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run_instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run_instance)))`;

describe('components: imported functions and interfaces served by JS', () => {
  const component = new Module(COMPONENT_WAT);
  const hostImports = () => ({
    double: (x) => x * 2,
    'test:host/api': { greet: (name) => `hello ${name}`, add64: (a, b) => a + b },
  });

  test('module.imports() lists what to supply, with WIT types', () => {
    assert.deepEqual(component.imports(), [
      { module: '', name: 'double', kind: 'function', type: 'func(x: u32) -> u32' },
      { module: '', name: 'test:host/api', kind: 'instance',
        type: 'instance { greet: func(name: string) -> string; add64: func(a: s64, b: s64) -> s64 }' },
    ]);
  });

  test('values cross with the WIT mapping both ways (u32, string, s64)', () => {
    const wasi = new WASI({ version: 'preview2' });
    const instance = wasi.instantiate(component, hostImports());
    const { exports } = instance;
    assert.equal(exports['run-double'](21), 42);
    assert.equal(exports['run-greet']('world'), 'hello world');
    assert.equal(exports['run-add64'](2n ** 40n, -1n), 2n ** 40n - 1n);
  });

  test('a missing or mistyped import is ERR_WASM_LINK naming it', () => {
    const wasi = new WASI({ version: 'preview2' });
    assert.throws(() => wasi.instantiate(component, { ...hostImports(), double: 5 }),
                  (err) => assertCode('ERR_WASM_LINK')(err) && /imports\['double'\]/.test(err.message));
    assert.throws(() => wasi.instantiate(component, { double: (x) => x }),
                  (err) => assertCode('ERR_WASM_LINK')(err) && /test:host\/api#greet/.test(err.message));
  });

  test('a throw reaches the caller as the same object; a result of the wrong type is a TypeError', () => {
    const error = new Error('component host failure');
    const throwing = new WASI({ version: 'preview2' }).instantiate(component, { ...hostImports(), double: () => { throw error; } });
    assert.throws(() => throwing.exports['run-double'](1), (err) => err === error);
    const wrong = new WASI({ version: 'preview2' }).instantiate(component, { ...hostImports(), double: () => 'two' });
    assert.throws(() => wrong.exports['run-double'](1), TypeError);
  });

  test('runWasmSync and runWasm (on the pool, with an async host function) run the command', async () => {
    assert.equal(runWasmSync(component, { imports: hostImports() }).exitCode, 0);
    assert.equal(runWasmSync(component, { imports: { ...hostImports(), double: (x) => x } }).exitCode, 1);
    const asyncImports = { ...hostImports(), double: async (x) => { await new Promise((r) => setTimeout(r, 5)); return x * 2; } };
    assert.equal((await runWasm(component, { imports: asyncImports })).exitCode, 0);
    const error = new Error('async component failure');
    await assert.rejects(runWasm(component, { imports: { ...hostImports(), double: async () => { throw error; } } }),
                         (err) => err === error);
  });
});

test('examples/plugin-host.mjs runs: async lookups, a logger and a re-entrant malloc from the host', async () => {
  const { spawnSync } = await import('node:child_process');
  const result = spawnSync(process.execPath, ['examples/plugin-host.mjs', 'size', 'nope'],
                           { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
  assert.equal(result.status, 1, result.stderr);
  assert.equal(result.stdout, 'size=XL\nnope: missing\nhello from the host, plugin\nadd64=1099511627771 scale=3.000\n');
  assert.match(result.stderr, new RegExp(`^${EXPERIMENTAL_WARNING}\\[plugin\\] looked up size\n$`));
});
