// Limits and cancellation: `limits.fuel` traps deterministically with out_of_fuel;
// `limits.timeout` stops an endless guest (sync, async, and on a
// WASI instance per call) with ERR_WASI_TIMEOUT and keeps the output written so far;
// `limits.maxMemory` makes memory.grow fail inside the guest; `signal` aborts a running or
// not yet started runWasm with Node's AbortError; bad values are refused with codes.
// Timings are only checked loosely (a stop well within 2x the deadline); the bench measures
// precision.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { lib, fixture, assertCode, ENDLESS_WAT } from './helpers.mjs';

const { WASI, Module, runWasm, runWasmSync } = lib;

const ENDLESS = new Module(ENDLESS_WAT);

// Grows its memory one page at a time until memory.grow fails; exits with the pages grown.
const GROWER = new Module(`(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $grown i32)
    (block $done
      (loop $more
        (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (local.set $grown (i32.add (local.get $grown) (i32.const 1)))
        (br $more)))
    (call $exit (local.get $grown))))`);

function assertTimeout(timeout, started) {
  return (err) => {
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'ERR_WASI_TIMEOUT');
    assert.match(err.message, new RegExp(`timeout of ${timeout} ms`));
    assert.deepEqual(err.stdout, Buffer.from('start\n'));
    assert.deepEqual(err.stderr, Buffer.alloc(0));
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= timeout - 1 && elapsed < 2 * timeout + 500, `stopped after ${elapsed} ms`);
    return true;
  };
}

test('limits.timeout stops an endless guest: runWasmSync', () => {
  const started = Date.now();
  assert.throws(() => runWasmSync(ENDLESS, { limits: { timeout: 100 } }), assertTimeout(100, started));
});

test('limits.timeout stops an endless guest: runWasm (and the event loop stays free)', async () => {
  const started = Date.now();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  await assert.rejects(runWasm(ENDLESS, { limits: { timeout: 300 } }), assertTimeout(300, started));
  clearInterval(timer);
  assert.ok(ticks > 3, `the event loop ran ${ticks} timer ticks meanwhile`);
});

test('limits.timeout on new WASI applies to each call into the guest', () => {
  const wasi = new WASI({ version: 'preview1', stdout: 'pipe', limits: { timeout: 100 } });
  const started = Date.now();
  assert.throws(() => wasi.start(wasi.instantiate(ENDLESS)), (err) => err.code === 'ERR_WASI_TIMEOUT');
  assert.ok(Date.now() - started < 700);
  assert.deepEqual(wasi.stdout, Buffer.from('start\n'));
});

test('a guest that finishes in time is unaffected by its timeout', async () => {
  const result = runWasmSync(fixture('hello.wasm'), { limits: { timeout: 10_000 } });
  assert.deepEqual(result.stdout, Buffer.from('hello world\n'));
  const results = await Promise.all(Array.from({ length: 8 }, () => runWasm(fixture('hello.wasm'), { limits: { timeout: 10_000 } })));
  for (const r of results) assert.deepEqual(r.stdout, Buffer.from('hello world\n'));
});

test('limits.maxMemory: memory.grow fails inside the guest at the cap', async () => {
  // 1 page to start with: a 10-page cap leaves room for 9 more.
  assert.equal(runWasmSync(GROWER, { limits: { maxMemory: 10 * 65536 } }).exitCode, 9);
  assert.equal((await runWasm(GROWER, { limits: { maxMemory: 3 * 65536 } })).exitCode, 2);
  assert.equal(runWasmSync(GROWER, { limits: { maxMemory: 65536 } }).exitCode, 0);
  // A partial page rounds down: growing to 2 pages would pass 1.5 pages.
  assert.equal(runWasmSync(GROWER, { limits: { maxMemory: 1.5 * 65536 } }).exitCode, 0);
  const wasi = new WASI({ version: 'preview1', limits: { maxMemory: 4 * 65536 } });
  assert.equal(wasi.start(wasi.instantiate(GROWER)), 3);
});

test('limits.maxMemory: a C guest whose malloc fails gets NULL, and the host stays bounded', async () => {
  // alloc.c mallocs (and touches) 1 MiB blocks until malloc returns NULL.
  const capped = runWasmSync(fixture('alloc.wasm'), { args: ['alloc', '4096'], limits: { maxMemory: 16 << 20 } });
  assert.equal(capped.exitCode, 0);
  assert.deepEqual(capped.stdout, Buffer.from('allocated 15 MiB\nmalloc returned NULL\n'));
  const asyncCapped = await runWasm(fixture('alloc.wasm'), { args: ['alloc', '4096'], limits: { maxMemory: 8 << 20 } });
  assert.deepEqual(asyncCapped.stdout, Buffer.from('allocated 7 MiB\nmalloc returned NULL\n'));
  const free = runWasmSync(fixture('alloc.wasm'), { args: ['alloc', '20'] });
  assert.deepEqual(free.stdout, Buffer.from('allocated 20 MiB\n'));
});

test('limits.maxMemory below what the module declares fails at instantiation', () => {
  const message = "the module's memory declares a minimum of 2 pages (131072 bytes), more than limits.maxMemory allows; raise limits.maxMemory to at least that";
  assert.throws(() => runWasmSync(fixture('alloc.wasm'), { limits: { maxMemory: 65536 } }), { code: 'ERR_WASM_LINK', message });
  const wasi = new WASI({ version: 'preview1', limits: { maxMemory: 1000 } });
  assert.throws(() => wasi.instantiate(fixture('alloc.wasm')), { code: 'ERR_WASM_LINK', message });
});

// Writes "." to stdout once per loop iteration, forever.
const DOTS = new Module(`(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 8) "\\10\\00\\00\\00\\01\\00\\00\\00")
  (data (i32.const 16) ".")
  (func (export "_start")
    (loop $forever
      (drop (call $write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 0)))
      (br $forever))))`);

function assertOutOfFuel(err) {
  assert.ok(err instanceof WebAssembly.RuntimeError);
  assert.equal(err.code, 'ERR_WASM_TRAP');
  assert.equal(err.trapCode, 'out_of_fuel');
  return true;
}

test('limits.fuel: a spent budget traps with out_of_fuel, at the same point every time', async () => {
  const dots = [];
  for (let i = 0; i < 3; i++) {
    assert.throws(() => runWasmSync(DOTS, { limits: { fuel: 5000 } }), (err) => {
      assertOutOfFuel(err);
      dots.push(err.stdout.length);
      return true;
    });
  }
  await assert.rejects(runWasm(DOTS, { limits: { fuel: 5000 } }), (err) => {
    assertOutOfFuel(err);
    dots.push(err.stdout.length);
    return true;
  });
  assert.ok(dots[0] > 10, `${dots[0]} iterations`);
  assert.deepEqual(dots, Array(4).fill(dots[0]), 'deterministic');
  // Twice the budget, about twice the iterations.
  assert.throws(() => runWasmSync(DOTS, { limits: { fuel: 10000 } }), (err) => {
    assert.ok(err.stdout.length > 1.8 * dots[0] && err.stdout.length < 2.2 * dots[0], `${err.stdout.length}`);
    return true;
  });
});

test('limits.fuel: enough fuel runs to completion; the same module runs unmetered without it', async () => {
  const spin = new Module(fixture('spin.wasm'));
  const expected = Buffer.from('spin 100000 -> ' + runWasmSync(spin, { args: ['spin', '100000'] }).stdout.toString().split('-> ')[1]);
  assert.deepEqual(runWasmSync(spin, { args: ['spin', '100000'], limits: { fuel: 1e9 } }).stdout, expected);
  assert.deepEqual((await runWasm(spin, { args: ['spin', '100000'], limits: { fuel: 1e9 } })).stdout, expected);
  assert.throws(() => runWasmSync(spin, { args: ['spin', '100000'], limits: { fuel: 1000 } }), assertOutOfFuel);
  assert.deepEqual(runWasmSync(spin, { args: ['spin', '100000'] }).stdout, expected);
  // Components and WASI objects (a budget per call) too.
  await assert.rejects(runWasm(fixture('components/hello.wasm'), { limits: { fuel: 10 } }), assertOutOfFuel);
  assert.deepEqual(runWasmSync(fixture('components/hello.wasm'), { limits: { fuel: 1e8 } }).stdout, Buffer.from('hello world\n'));
  const wasi = new WASI({ version: 'preview1', stdout: 'pipe', limits: { fuel: 5000 } });
  assert.throws(() => wasi.start(wasi.instantiate(DOTS)), assertOutOfFuel);
  assert.equal(wasi.stdout.length, (() => {
    try { runWasmSync(DOTS, { limits: { fuel: 5000 } }); } catch (err) { return err.stdout.length; }
    return -1;
  })());
});

test('limits.fuel needs a module with a source: Module.deserialize() output is refused', () => {
  const restored = Module.deserialize(new Module(fixture('hello.wasm')).serialize());
  assert.throws(() => runWasmSync(restored, { limits: { fuel: 1e6 } }), (err) => {
    assert.equal(err.code, 'ERR_INVALID_ARG_VALUE');
    assert.match(err.message, /limits\.fuel/);
    return true;
  });
  assert.deepEqual(runWasmSync(restored).stdout, Buffer.from('hello world\n'));
});

// Recurses `n` calls deep (each frame holds 8 i64 locals), then exits with n.
const recurse = (n) => new Module(`(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func $down (param i32) (result i32) (local i64 i64 i64 i64 i64 i64 i64 i64)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $down (i32.sub (local.get 0) (i32.const 1)))))))
  (func (export "_start") (call $exit (call $down (i32.const ${n})))))`);

function assertStackOverflow(err) {
  assert.ok(err instanceof WebAssembly.RuntimeError);
  assert.equal(err.code, 'ERR_WASM_TRAP');
  assert.equal(err.trapCode, 'stack_overflow');
  return true;
}

test('limits.maxStack: recursion deeper than the stack traps; a deeper stack lets it finish', async () => {
  const deep = recurse(100_000);
  // The default wasm stack (512 KiB) and a 1 MiB one are too shallow for it...
  await assert.rejects(runWasm(deep), assertStackOverflow);
  assert.throws(() => runWasmSync(deep, { limits: { maxStack: 1 << 20 } }), assertStackOverflow);
  // ...8 MiB on node-wasmtime's threads is enough, and the pool survives either way.
  assert.equal((await runWasm(deep, { limits: { maxStack: 8 << 20 } })).exitCode, 100_000);
  const shallow = recurse(1000);
  assert.equal(runWasmSync(shallow, { limits: { maxStack: 64 << 10 } }).exitCode, 1000);
  // 64 KiB is less than the default: what passes by default can overflow it.
  const medium = recurse(3000);
  assert.equal(runWasmSync(medium).exitCode, 3000);
  assert.throws(() => runWasmSync(medium, { limits: { maxStack: 64 << 10 } }), assertStackOverflow);
  // Values between powers of two round down (100 KiB acts as 64 KiB).
  assert.throws(() => runWasmSync(medium, { limits: { maxStack: 100 << 10 } }), assertStackOverflow);
  // With fuel too, with a WASI object, and on a pool thread through startAsync.
  assert.equal((await runWasm(deep, { limits: { maxStack: 8 << 20, fuel: 1e9 } })).exitCode, 100_000);
  const wasi = new WASI({ version: 'preview1', limits: { maxStack: 64 << 10 } });
  await assert.rejects(wasi.startAsync(wasi.instantiate(medium)), assertStackOverflow);
  const roomy = new WASI({ version: 'preview1', limits: { maxStack: 1 << 20 } });
  assert.equal(roomy.start(roomy.instantiate(medium)), 3000);
});

test('limits.maxStack: bounds depend on the thread the guest runs on', async () => {
  const module = recurse(10);
  for (const [options, code] of [
    [{ limits: { maxStack: 2 << 20 } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { maxStack: 1000 } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { maxStack: 65536.5 } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { maxStack: '1MB' } }, 'ERR_INVALID_ARG_TYPE'],
  ]) {
    assert.throws(() => runWasmSync(module, options), { code }, JSON.stringify(options));
    assert.throws(() => new WASI({ version: 'preview1', ...options }), { code }, JSON.stringify(options));
  }
  assert.equal((await runWasm(module, { limits: { maxStack: 2 << 20 } })).exitCode, 10);
  await assert.rejects(runWasm(module, { limits: { maxStack: 16 << 20 } }), { code: 'ERR_OUT_OF_RANGE' });
});

function assertAbort(reason) {
  return (err) => {
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'AbortError');
    assert.equal(err.code, 'ABORT_ERR');
    assert.equal(err.cause, reason);
    return true;
  };
}

test('signal: aborting stops a running guest; output so far is on the error', async () => {
  const controller = new AbortController();
  const pending = runWasm(ENDLESS, { signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(pending, (err) => {
    assertAbort(controller.signal.reason)(err);
    assert.deepEqual(err.stdout, Buffer.from('start\n'));
    return true;
  });
});

test('signal: an already aborted signal rejects without running anything', async () => {
  const reason = new Error('no thanks');
  await assert.rejects(runWasm(ENDLESS, { signal: AbortSignal.abort(reason) }), assertAbort(reason));
  // Bytes that were never compiled are not compiled either.
  await assert.rejects(runWasm(Buffer.from('not wasm'), { signal: AbortSignal.abort(reason) }), assertAbort(reason));
});

test('signal: a run that finishes first is not affected, and no listener is left behind', async () => {
  const controller = new AbortController();
  const result = await runWasm(fixture('hello.wasm'), { signal: controller.signal });
  assert.deepEqual(result.stdout, Buffer.from('hello world\n'));
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  const wasi = new WASI({ version: 'preview1', stdout: 'pipe' });
  assert.equal(await wasi.startAsync(wasi.instantiate(fixture('hello.wasm')), { signal: controller.signal }), 0);
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  controller.abort();
});

test('signal: several runs aborted at once all stop', async () => {
  const controller = new AbortController();
  const runs = Array.from({ length: 4 }, () => runWasm(ENDLESS, { signal: controller.signal }));
  setTimeout(() => controller.abort(), 30);
  const settled = await Promise.allSettled(runs);
  for (const outcome of settled) {
    assert.equal(outcome.status, 'rejected');
    assert.equal(outcome.reason.code, 'ABORT_ERR');
  }
});

test('bad limits and signals are refused with codes', async () => {
  const bad = [
    [{ limits: 5 }, 'ERR_INVALID_ARG_TYPE'],
    [{ limits: { timeout: '1' } }, 'ERR_INVALID_ARG_TYPE'],
    [{ limits: { timeout: 0 } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { timeout: -5 } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { timeout: NaN } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { timeout: 2 ** 31 } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { maxMemory: 1.5 } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { fuel: '1' } }, 'ERR_INVALID_ARG_TYPE'],
    [{ limits: { fuel: -1 } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { fuel: 1.5 } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { fuel: 2 ** 53 } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { maxMemory: -1 } }, 'ERR_OUT_OF_RANGE'],
    [{ limits: { maxMemory: 2 ** 32 + 1 } }, 'ERR_OUT_OF_RANGE'],
  ];
  for (const [options, code] of bad) {
    assert.throws(() => runWasmSync(ENDLESS, options), { code }, JSON.stringify(options));
    await assert.rejects(runWasm(ENDLESS, options), { code }, JSON.stringify(options));
    assert.throws(() => new WASI({ version: 'preview1', ...options }), { code }, JSON.stringify(options));
  }
  await assert.rejects(runWasm(ENDLESS, { signal: {} }), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
  await assert.rejects(runWasm(ENDLESS, { signal: null }), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
  assert.throws(() => runWasmSync(ENDLESS, { signal: new AbortController().signal }),
                assertCode('ERR_INVALID_ARG_VALUE', TypeError));
});

test('deep recursion traps with stack_overflow on the calling thread and on pool threads', async () => {
  const recursive = new Module(`(module
    (memory (export "memory") 1)
    (func $deeper (param i32) (result i32) (call $deeper (i32.add (local.get 0) (i32.const 1))))
    (func (export "_start") (drop (call $deeper (i32.const 0)))))`);
  const overflow = (err) => {
    assert.ok(err instanceof WebAssembly.RuntimeError);
    assert.equal(err.code, 'ERR_WASM_TRAP');
    assert.equal(err.trapCode, 'stack_overflow');
    return true;
  };
  assert.throws(() => runWasmSync(recursive), overflow);
  const settled = await Promise.allSettled(Array.from({ length: 8 }, () => runWasm(recursive)));
  for (const outcome of settled) overflow(outcome.reason);
  const wasi = new WASI({ version: 'preview1' });
  await assert.rejects(wasi.startAsync(wasi.instantiate(recursive)), overflow);
  // The pool threads are fine afterwards.
  assert.deepEqual((await runWasm(fixture('hello.wasm'))).stdout, Buffer.from('hello world\n'));
});

test('a WASI object with limits refuses the V8 path, where no limit could apply', () => {
  const { WASI, Module } = lib;
  const refused = { code: 'ERR_WASI_LIMITS_UNSUPPORTED', message: /has limits, which apply only to guests node-wasmtime runs.*wasi\.instantiate\(module\)/ };
  const wasi = new WASI({ version: 'preview1', limits: { timeout: 100 } });
  assert.throws(() => wasi.getImportObject(), refused);
  assert.throws(() => wasi.wasiImport, refused);
  assert.ok(Object.keys(wasi).includes('wasiImport'), 'still an own enumerable property, as in node:wasi');
  // A V8 instance made from an unlimited WASI's imports, started by the limited one.
  const other = new WASI({ version: 'preview1', stdout: 'ignore' });
  const v8 = new WebAssembly.Instance(new WebAssembly.Module(fixture('hello.wasm')), other.getImportObject());
  assert.throws(() => wasi.start(v8), refused);
  assert.throws(() => wasi.initialize({ exports: { memory: new WebAssembly.Memory({ initial: 1 }) } }), refused);
  assert.throws(() => wasi.finalizeBindings(v8), refused);
  // Nothing was marked started: the wasmtime path runs it, under its limits.
  const limited = new WASI({ version: 'preview1', stdout: 'pipe', limits: { timeout: 5000 } });
  assert.throws(() => limited.start(v8), refused);
  assert.equal(limited.start(limited.instantiate(new Module(fixture('hello.wasm')))), 0);
  assert.equal(limited.stdout.toString(), 'hello world\n');
});

test('a run that had memory refused by limits.maxMemory says so: maxMemoryReached on the result and the error', async () => {
  // malloc fails inside the guest, which exits 0 after saying so itself; the result tells why.
  const capped = runWasmSync(fixture('alloc.wasm'), { args: ['alloc', '4096'], limits: { maxMemory: 8 << 20 } });
  assert.equal(capped.exitCode, 0);
  assert.equal(capped.maxMemoryReached, true);
  assert.equal((await runWasm(fixture('alloc.wasm'), { args: ['alloc', '4096'], limits: { maxMemory: 8 << 20 } })).maxMemoryReached, true);
  // Within the cap, or without one: false.
  assert.equal(runWasmSync(fixture('alloc.wasm'), { args: ['alloc', '2'], limits: { maxMemory: 8 << 20 } }).maxMemoryReached, false);
  assert.equal(runWasmSync(fixture('hello.wasm')).maxMemoryReached, false);
  // A guest that traps once refused: the error says so, on every path.
  const trapsWhenRefused = `(module (memory (export "memory") 1)
    (func (export "_start") (if (i32.lt_s (memory.grow (i32.const 5)) (i32.const 0)) (then unreachable))))`;
  const refusedTrap = (err) => {
    assert.equal(err.code, 'ERR_WASM_TRAP');
    assert.equal(err.maxMemoryReached, true);
    assert.match(err.message, /\n\(earlier in this run, limits\.maxMemory refused the guest more memory\)$/);
    return true;
  };
  const limits = { maxMemory: 2 * 65536 };
  assert.throws(() => runWasmSync(trapsWhenRefused, { limits }), refusedTrap);
  await assert.rejects(runWasm(trapsWhenRefused, { limits }), refusedTrap);
  const wasi = new WASI({ version: 'preview1', limits });
  assert.throws(() => wasi.start(wasi.instantiate(trapsWhenRefused)), refusedTrap);
  // Room enough: the same guest grows and returns; a trap for another reason has no note.
  assert.equal(runWasmSync(trapsWhenRefused, { limits: { maxMemory: 6 * 65536 } }).maxMemoryReached, false);
  assert.throws(() => runWasmSync('(module (memory (export "memory") 1) (func (export "_start") unreachable))', { limits }),
                (err) => err.code === 'ERR_WASM_TRAP' && err.maxMemoryReached === undefined && !err.message.includes('maxMemory'));
  // An instantiation the cap refuses names it once, without the note.
  assert.throws(() => runWasmSync(fixture('alloc.wasm'), { limits: { maxMemory: 65536 } }),
                (err) => err.code === 'ERR_WASM_LINK' && err.maxMemoryReached === undefined && !err.message.includes('earlier in this run'));
});
