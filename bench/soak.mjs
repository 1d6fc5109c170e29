// `npm run soak`: long loops and hostile input, watching what the process holds. Not part of
// `npm test` (minutes, not seconds). Each loop runs N iterations without calling gc() and,
// unless it says otherwise, without yielding to the event loop, sampling RSS, the V8 heap and
// open descriptors ten times. Growth is judged on what a leak moves and heap sizing does not:
// memory outside the V8 heap (RSS - heapTotal: V8 grows and shrinks its own heap in a
// sawtooth between collections, which moved a whole-RSS figure by +/-10% run to run) must grow
// by less than 5% after the first 20% (warm-up), what the JS heap keeps (heapUsed after a gc()
// before and after the loop, never inside it; 1,000 runs first) by less than 2 MB, and
// descriptors by at most 5. Then random and mutated bytes go to `new Module`,
// `Module.deserialize` and `instantiate`, which must throw coded errors, never crash. Last,
// hostile guests (flooding output, asleep in poll_oneoff for a year, reading a stdin that never
// delivers, flooding a slow Writable) must be stopped with the expected code within 2x their
// deadline, every time, with RSS bounded.
//
// SOAK_SCALE (default 1) scales every count: SOAK_SCALE=0.01 is a quick check.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { WASI, Module, runWasm, runWasmSync } = require('../lib/index.js');

const scale = Number(process.env.SOAK_SCALE ?? 1);
const fixture = (name) => fs.readFileSync(new URL(`../__test__/fixtures/${name}`, import.meta.url));
const HELLO = fixture('hello.wasm');
const helloModule = new Module(HELLO);
const helloV8 = new WebAssembly.Module(HELLO);
const componentModule = new Module(fixture('components/hello.wasm'));
const devNull = fs.openSync('/dev/null', 'w');

const openFds = () => fs.readdirSync('/proc/self/fd').length;
const rssMb = () => process.memoryUsage().rss / 2 ** 20;
const gc = (await import('node:vm')).runInNewContext('gc', (await import('node:v8')).setFlagsFromString('--expose-gc'));
const keptByJsMb = () => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};
const sample = () => {
  const { rss, heapTotal } = process.memoryUsage();
  return { rss: rss / 2 ** 20, native: (rss - heapTotal) / 2 ** 20, fds: openFds() };
};

/** Runs `body(i)` `n` times (awaiting it if `async`), sampling ten times. */
async function soak(name, n, body, { async = false } = {}) {
  n = Math.max(10, Math.round(n * scale));
  const samples = [];
  // What the body's first runs leave for good (compiled code, caches) is not growth.
  for (let i = 0; i < Math.min(1000, n); i++) if (async) await body(i); else body(i);
  const heapBefore = keptByJsMb();
  const started = Date.now();
  for (let i = 0; i < n; i++) {
    if (async) await body(i); else body(i);
    if ((i + 1) % Math.ceil(n / 10) === 0) samples.push(sample());
  }
  const seconds = (Date.now() - started) / 1000;
  const jsKept = keptByJsMb() - heapBefore;
  const warm = samples[Math.min(1, samples.length - 1)];
  const last = samples[samples.length - 1];
  const nativeGrowth = (last.native - warm.native) / warm.native;
  const fdGrowth = last.fds - warm.fds;
  return {
    name, n, seconds,
    rss: `${warm.rss.toFixed(1)} -> ${last.rss.toFixed(1)} MB`,
    native: `${warm.native.toFixed(1)} -> ${last.native.toFixed(1)} MB`, nativeGrowth, jsKept, fdGrowth,
    ok: nativeGrowth < 0.05 && jsKept < 2 && fdGrowth <= 5,
  };
}

function expectCodedError(what, fn) {
  try {
    fn();
  } catch (err) {
    if (typeof err?.code !== 'string') throw new Error(`${what}: an error without a code: ${err?.stack ?? err}`);
    return err.code;
  }
  return 'no error';
}

/** Random and mutated inputs: counts of each outcome; any uncoded error fails. */
function fuzz(n) {
  n = Math.max(10, Math.round(n * scale));
  const outcomes = new Map();
  const count = (code) => outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
  const serialized = helloModule.serialize();
  for (let i = 0; i < n; i++) {
    const random = crypto.randomBytes(1 + (i % 512));
    count(`new Module(random): ${expectCodedError('new Module', () => new Module(random))}`);
    const mutated = Buffer.from(HELLO);
    for (let k = 0; k < 1 + (i % 8); k++) mutated[crypto.randomInt(mutated.length)] = crypto.randomInt(256);
    let module;
    const code = expectCodedError('new Module', () => { module = new Module(mutated); });
    count(`new Module(mutated): ${code}`);
    if (module !== undefined) {
      count(`run(mutated): ${expectCodedError('runWasmSync', () => runWasmSync(module, { stdout: 'ignore', limits: { timeout: 1000 } }))}`);
    }
    const forged = Buffer.from(serialized);
    forged[crypto.randomInt(forged.length)] ^= 1 + crypto.randomInt(255);
    count(`Module.deserialize(mutated): ${expectCodedError('deserialize', () => Module.deserialize(forged))}`);
  }
  return outcomes;
}

/** A module whose `_start` is `body` (WAT), with fd_write, fd_read and poll_oneoff imported. */
function guest(body) {
  return new Module(`(module
    (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "${'y'.repeat(4095)}\\n")
    (func (export "_start") ${body}))`);
}
const FLOOD = guest(`(i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 4096))
  (loop $l (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l))`);
const SMALL_FLOOD = guest(`(i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 8))
  (loop $l (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l))`);
const SLEEP_A_YEAR = guest(`(i32.store8 (i32.const 8) (i32.const 0))
  (i64.store (i32.const 24) (i64.const 31536000000000000))
  (drop (call $poll (i32.const 0) (i32.const 8192) (i32.const 1) (i32.const 8256)))`);
// The same sleep through the older wasi_unstable ABI (56-byte subscriptions: timeout at 32).
const SLEEP_A_YEAR_UNSTABLE = new Module(`(module
  (import "wasi_unstable" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store8 (i32.const 8) (i32.const 0))
    (i64.store (i32.const 32) (i64.const 31536000000000000))
    (drop (call $poll (i32.const 0) (i32.const 8192) (i32.const 1) (i32.const 8256)))))`);
const READ_STDIN = guest(`(i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 10))
  (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))`);
const fifo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nwt-soak-')), 'stdin');
execFileSync('mkfifo', [fifo]);
const silentStdin = fs.openSync(fifo, 'r+'); // no data, never end of file
const slowWritable = () => new Writable({ write(_chunk, _encoding, callback) { setTimeout(callback, 2); } });

/** Runs a hostile guest `n` times; each must fail with `code` within 2x `deadline` ms. */
async function hostile(name, n, deadline, code, run) {
  n = Math.max(3, Math.round(n * scale));
  let slowest = 0;
  let wrong;
  // Let the finalizers the loops above left pending run first (Node 20 runs them when the
  // event loop turns: after a million synchronous runs that alone takes a while).
  await new Promise((resolve) => setTimeout(resolve, 50));
  const rssBefore = rssMb();
  for (let i = 0; i < n; i++) {
    const began = performance.now();
    try {
      await run();
      wrong ??= 'returned';
    } catch (err) {
      if (err.code !== code) wrong ??= `${err.code}: ${err.message}`;
    }
    slowest = Math.max(slowest, performance.now() - began);
  }
  const ok = wrong === undefined && slowest < 2 * deadline;
  return { name, n, deadline, code, slowest, rss: `${rssBefore.toFixed(1)} -> ${rssMb().toFixed(1)} MB`, ok, wrong };
}

const results = [
  await soak('seed loop: new WASI + new WebAssembly.Instance + start (V8)', 1_000_000, () => {
    const wasi = new WASI({ version: 'preview1', stdout: devNull });
    wasi.start(new WebAssembly.Instance(helloV8, wasi.getImportObject()));
  }),
  await soak('runWasmSync(Module), never yielding', 1_000_000, () => {
    runWasmSync(helloModule, { stdout: 'pipe' });
  }),
  await soak('runWasmSync(component)', 100_000, () => {
    runWasmSync(componentModule, { stdout: 'pipe' });
  }),
  await soak('runWasm(Module), awaited one by one', 200_000, () => runWasm(helloModule, { stdout: 'pipe' }), { async: true }),
  // An Instance's store is freed by its finalizer, which Node 20 runs only when the event
  // loop turns: this loop yields every 1,000 runs; the next one disposes instead.
  await soak('new WASI + instantiate + start (wasmtime), yielding every 1,000', 100_000, async (i) => {
    const wasi = new WASI({ version: 'preview1', stdout: devNull });
    wasi.start(wasi.instantiate(helloModule));
    if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
  }, { async: true }),
  await soak('new WASI + instantiate + start + instance[Symbol.dispose](), never yielding', 100_000, () => {
    const wasi = new WASI({ version: 'preview1', stdout: devNull });
    const instance = wasi.instantiate(helloModule);
    wasi.start(instance);
    instance[Symbol.dispose]();
  }),
  // The same through the exports: export functions and memories are plain JS objects.
  await soak('new WASI + instantiate + exports._start() + exports.memory.read() + dispose, never yielding', 100_000, () => {
    const wasi = new WASI({ version: 'preview1', stdout: devNull });
    const instance = wasi.instantiate(helloModule);
    instance.exports._start();
    instance.exports.memory.read(0, 16);
    instance[Symbol.dispose]();
  }),
];

console.log('soak (SOAK_SCALE=%s), Node %s; after warm-up (20%%) -> end', scale, process.version);
console.log('| loop | runs | seconds | RSS | outside the V8 heap | growth | kept by the JS heap | fds growth | |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.name} | ${r.n} | ${r.seconds.toFixed(1)} | ${r.rss} | ${r.native} | ${(r.nativeGrowth * 100).toFixed(1)}% | ${r.jsKept.toFixed(2)} MB | ${r.fdGrowth} | ${r.ok ? 'ok' : 'GROWS'} |`);
}
const outcomes = fuzz(2000);
console.log('\nhostile input (every error coded):');
for (const [outcome, times] of [...outcomes].sort()) console.log(`  ${outcome}: ${times}`);

const timeout = { limits: { timeout: 200 } };
const guests = [
  await hostile('floods a captured stdout (default maxBuffer)', 200, 200, 'ERR_WASI_STDIO_MAXBUFFER',
                () => runWasm(FLOOD, timeout)),
  await hostile('floods an ignored stdout', 20, 200, 'ERR_WASI_TIMEOUT',
                () => runWasm(FLOOD, { ...timeout, stdout: 'ignore' })),
  await hostile('floods a slow Writable in 8-byte writes', 20, 200, 'ERR_WASI_TIMEOUT',
                () => runWasm(SMALL_FLOOD, { ...timeout, stdout: slowWritable() })),
  await hostile('sleeps a year in poll_oneoff (runWasm)', 20, 200, 'ERR_WASI_TIMEOUT',
                () => runWasm(SLEEP_A_YEAR, timeout)),
  await hostile('sleeps a year in poll_oneoff (runWasmSync)', 20, 200, 'ERR_WASI_TIMEOUT',
                () => runWasmSync(SLEEP_A_YEAR, timeout)),
  await hostile('sleeps a year in wasi_unstable poll_oneoff', 20, 200, 'ERR_WASI_TIMEOUT',
                () => runWasmSync(SLEEP_A_YEAR_UNSTABLE, timeout)),
  await hostile('sleeps a year, aborted', 20, 200, 'ABORT_ERR',
                () => runWasm(SLEEP_A_YEAR, { signal: AbortSignal.timeout(200) })),
  await hostile('reads a stdin that never delivers', 20, 200, 'ERR_WASI_TIMEOUT',
                () => runWasm(READ_STDIN, { ...timeout, stdin: silentStdin })),
];
console.log('\nhostile guests (each run stopped with its code within 2x the deadline):');
console.log('| guest | runs | deadline | code | slowest | RSS | |');
console.log('|---|---|---|---|---|---|---|');
for (const g of guests) {
  console.log(`| ${g.name} | ${g.n} | ${g.deadline} ms | ${g.code} | ${g.slowest.toFixed(0)} ms | ${g.rss} | ${g.ok ? 'ok' : `FAILS${g.wrong ? `: ${g.wrong}` : ''}`} |`);
}
if (results.some((r) => !r.ok)) {
  console.log('\nFAIL: growth after warm-up');
  process.exitCode = 1;
}
if (guests.some((g) => !g.ok)) {
  console.log('\nFAIL: a hostile guest was not stopped as it should be');
  process.exitCode = 1;
}
fs.closeSync(silentStdin);
