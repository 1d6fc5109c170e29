// limits.timeout and signal stop a guest also while it waits outside wasm, where epoch
// interruption cannot reach it: asleep in poll_oneoff (for a year), blocked reading a stdin
// descriptor that never delivers, waiting on a slow Writable, or flooding its output. Each
// run must settle within 2x its deadline, and after a stop nothing more is handed to a
// stream target.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { lib, fixture, tempDir } from './helpers.mjs';

const { Module, WASI, runWasm, runWasmSync } = lib;
const YEAR_NS = 365n * 24n * 3600n * 1_000_000_000n;

/**
 * poll_oneoff on `count` relative clock subscriptions of `ns` each (userdata 77, 78, ...), of
 * preview1 or, with `unstable`, of the older wasi_unstable ABI (56-byte subscriptions, the
 * timeout at 32 rather than 24).
 */
function sleeper(count, ns, { unstable = false } = {}) {
  const [namespace, stride, timeoutAt] = unstable ? ['wasi_unstable', 56, 32] : ['wasi_snapshot_preview1', 48, 24];
  let setup = '';
  for (let i = 0; i < count; i++) {
    const at = stride * i;
    setup += `(i64.store (i32.const ${at}) (i64.const ${77 + i}))
      (i32.store8 (i32.const ${at + 8}) (i32.const 0))
      (i64.store (i32.const ${at + timeoutAt}) (i64.const ${ns}))`;
  }
  return new Module(`(module
    (import "${namespace}" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start")
      ${setup}
      (if (call $poll (i32.const 0) (i32.const 1024) (i32.const ${count}) (i32.const 2048))
        (then unreachable))
      ;; at least one event, the first for the first subscription (one for a plain sleep)
      (if (i32.eqz (i32.load (i32.const 2048))) (then unreachable))
      ${count === 1 ? '(if (i32.ne (i32.load (i32.const 2048)) (i32.const 1)) (then unreachable))' : ''}
      (if (i64.ne (i64.load (i32.const 1024)) (i64.const 77)) (then unreachable))))`);
}

/** fd_read of stdin, once. */
const stdinReader = new Module(`(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 10))
    (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`);

/** Writes `len` bytes ("yyy...\n") to stdout forever, one fd_write each. */
function flooder(len) {
  return new Module(`(module
    (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "${'y'.repeat(len - 1)}\\n")
    (func (export "_start")
      (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const ${len}))
      (loop $l (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l))))`);
}

/** A FIFO opened read-write: reading it blocks forever (no data, never end of file). */
function silentStdin() {
  const fifo = path.join(tempDir(), 'stdin');
  execFileSync('mkfifo', [fifo]);
  return fs.openSync(fifo, 'r+');
}

/** Runs `start`, expecting it to fail with `code` within 2x `deadline` ms. */
async function settlesWith(code, deadline, start) {
  const began = performance.now();
  await assert.rejects(async () => start(), { code });
  const took = performance.now() - began;
  assert.ok(took < 2 * deadline, `settled after ${took.toFixed(0)} ms, deadline ${deadline} ms`);
}

test('a year-long sleep in poll_oneoff is stopped by timeout and by abort', async () => {
  const plain = sleeper(1, YEAR_NS);
  const two = sleeper(2, YEAR_NS);
  for (const guest of [plain, two]) {
    await settlesWith('ERR_WASI_TIMEOUT', 300, () => runWasmSync(guest, { limits: { timeout: 300 } }));
    await settlesWith('ERR_WASI_TIMEOUT', 300, () => runWasm(guest, { limits: { timeout: 300 } }));
    await settlesWith('ABORT_ERR', 300, () => runWasm(guest, { signal: AbortSignal.timeout(300) }));
    const wasi = new WASI({ version: 'preview1', limits: { timeout: 300 } });
    await settlesWith('ERR_WASI_TIMEOUT', 300, () => wasi.start(wasi.instantiate(guest)));
    const other = new WASI({ version: 'preview1' });
    const instance = other.instantiate(guest);
    await settlesWith('ABORT_ERR', 300, () => other.startAsync(instance, { signal: AbortSignal.timeout(300) }));
  }
});

// (One subscription only: wasmtime-wasi 48's wasi_unstable poll_oneoff rewrites each 56-byte
// subscription into a 48-byte preview1 one in place, then reads them as a 48-byte array, so a
// second subscription is read from the wrong offset and the call fails with EINVAL (28).)
test('a wasi_unstable guest asleep for a year is stopped too; its short sleeps still answer', async () => {
  for (const guest of [sleeper(1, YEAR_NS, { unstable: true })]) {
    await settlesWith('ERR_WASI_TIMEOUT', 300, () => runWasmSync(guest, { limits: { timeout: 300 } }));
    await settlesWith('ABORT_ERR', 300, () => runWasm(guest, { signal: AbortSignal.timeout(300) }));
    const wasi = new WASI({ version: 'unstable', limits: { timeout: 300 } });
    await settlesWith('ERR_WASI_TIMEOUT', 300, () => wasi.start(wasi.instantiate(guest)));
  }
  // 10 ms, with and without a stop rule armed: the event comes back as before.
  for (const guest of [sleeper(1, 10_000_000n, { unstable: true })]) {
    assert.equal(runWasmSync(guest).exitCode, 0);
    assert.equal(runWasmSync(guest, { limits: { timeout: 5000 } }).exitCode, 0);
  }
});

test('C programs asleep for a year, as core modules and as components, are stopped', async () => {
  // sleep.wasm: nanosleep (poll_oneoff); as a component, wasi:clocks + wasi:io/poll through
  // the preview1 adapter.
  for (const name of ['sleep.wasm', 'components/sleep.wasm']) {
    const program = new Module(fixture(name));
    const args = ['sleep', String(365 * 24 * 3600 * 1000)];
    await settlesWith('ERR_WASI_TIMEOUT', 300, () => runWasmSync(program, { args, limits: { timeout: 300 } }));
    await settlesWith('ERR_WASI_TIMEOUT', 300, () => runWasm(program, { args, limits: { timeout: 300 } }));
    await settlesWith('ABORT_ERR', 300, () => runWasm(program, { args, signal: AbortSignal.timeout(300) }));
    const version = name.startsWith('components/') ? 'preview2' : 'preview1';
    const wasi = new WASI({ version, args, limits: { timeout: 300 } });
    await settlesWith('ERR_WASI_TIMEOUT', 300, () => wasi.start(wasi.instantiate(program)));
    // A short sleep under limits sleeps its time and finishes.
    const began = performance.now();
    const result = runWasmSync(program, { args: ['sleep', '60'], limits: { timeout: 5000 } });
    assert.equal(result.stdout.toString(), 'slept 60\n');
    assert.ok(performance.now() - began >= 59);
  }
});

test('a sleep under limits still sleeps its time and reports its event', () => {
  for (const limits of [undefined, { timeout: 5000 }]) {
    const began = performance.now();
    assert.equal(runWasmSync(sleeper(1, 60_000_000n), { limits }).exitCode, 0);
    assert.equal(runWasmSync(sleeper(3, 60_000_000n), { limits }).exitCode, 0);
    const took = performance.now() - began;
    assert.ok(took >= 115, `two 60 ms sleeps took ${took.toFixed(0)} ms`);
  }
});

test('a plain sleep with a misaligned events pointer still traps (after sleeping)', () => {
  const misaligned = new Module(`(module
    (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start")
      (i32.store8 (i32.const 8) (i32.const 0))
      (i64.store (i32.const 24) (i64.const 1000000))
      (drop (call $poll (i32.const 0) (i32.const 1028) (i32.const 1) (i32.const 2048)))))`);
  for (const limits of [undefined, { timeout: 5000 }]) {
    assert.throws(() => runWasmSync(misaligned, { limits }), (error) => {
      assert.equal(error.code, 'ERR_WASM_TRAP');
      assert.match(error.message, /not aligned|alignment/i);
      return true;
    });
  }
});

test('a read of a stdin that never delivers is stopped by timeout and by abort', async () => {
  const fd = silentStdin();
  try {
    await settlesWith('ERR_WASI_TIMEOUT', 300, () => runWasmSync(stdinReader, { stdin: fd, limits: { timeout: 300 } }));
    await settlesWith('ERR_WASI_TIMEOUT', 300, () => runWasm(stdinReader, { stdin: fd, limits: { timeout: 300 } }));
    await settlesWith('ABORT_ERR', 300, () => runWasm(stdinReader, { stdin: fd, signal: AbortSignal.timeout(300) }));
    // A component reading stdin (echo.wasm reads all of it) is stopped the same way.
    const echo = new Module(fixture('components/echo.wasm'));
    await settlesWith('ERR_WASI_TIMEOUT', 300, () => runWasmSync(echo, { args: ['echo'], stdin: fd, limits: { timeout: 300 } }));
    await settlesWith('ABORT_ERR', 300, () => runWasm(echo, { args: ['echo'], stdin: fd, signal: AbortSignal.timeout(300) }));
    // Input that does arrive is read as before, under limits too.
    fs.writeSync(fd, 'hello');
    const result = runWasmSync(stdinReader, { stdin: fd, limits: { timeout: 5000 } });
    assert.equal(result.stdout.toString(), 'hello');
  } finally {
    fs.closeSync(fd);
  }
});

test('a guest flooding its output is stopped by its timeout, or by maxBuffer first', async () => {
  const options = { stdout: 'ignore', limits: { timeout: 300 } };
  await settlesWith('ERR_WASI_TIMEOUT', 300, () => runWasmSync(flooder(4096), options));
  await settlesWith('ERR_WASI_TIMEOUT', 300, () => runWasm(flooder(4096), options));
  await settlesWith('ERR_WASI_TIMEOUT', 300,
                    () => runWasm(flooder(64), { stdout: () => {}, limits: { timeout: 300 } }));
  // Captured with the default cap: stopped at 1 MiB, long before the deadline.
  const piped = { stdout: 'pipe', limits: { timeout: 300 } };
  await settlesWith('ERR_WASI_STDIO_MAXBUFFER', 300, () => runWasmSync(flooder(4096), piped));
  await settlesWith('ERR_WASI_STDIO_MAXBUFFER', 300, () => runWasm(flooder(4096), piped));
});

/** A Writable that takes 2 ms per chunk, counting what reaches it and `write()` calls. */
function slowWritable() {
  const seen = { calls: 0, callsAfter: 0, bytesAfter: 0, settled: false };
  const writable = new Writable({
    write(chunk, _encoding, callback) {
      if (seen.settled) seen.bytesAfter += chunk.length;
      setTimeout(callback, 2);
    },
  });
  const write = writable.write.bind(writable);
  writable.write = (...args) => {
    seen.calls++;
    if (seen.settled) seen.callsAfter++;
    return write(...args);
  };
  return { writable, seen };
}

test('a guest waiting on a slow Writable is stopped, and nothing more is handed to it', async () => {
  for (const len of [8, 80]) {
    for (const stop of ['timeout', 'abort']) {
      const { writable, seen } = slowWritable();
      const options = stop === 'timeout'
        ? { stdout: writable, limits: { timeout: 500 } }
        : { stdout: writable, signal: AbortSignal.timeout(500) };
      await settlesWith(stop === 'timeout' ? 'ERR_WASI_TIMEOUT' : 'ABORT_ERR', 500,
                        () => runWasm(flooder(len), options).finally(() => { seen.settled = true; }));
      assert.ok(seen.calls > 10, `the Writable got ${seen.calls} chunks before the stop`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(seen.callsAfter, 0, `${len}-byte chunks, ${stop}: write() calls after the stop`);
      // What reaches _write later is only what the Writable had already accepted.
      assert.ok(seen.bytesAfter <= writable.writableHighWaterMark + len,
                `${seen.bytesAfter} bytes reached the Writable after the stop`);
    }
  }
});

test('startAsync: a guest waiting on a slow Writable is stopped by its timeout', async () => {
  const { writable, seen } = slowWritable();
  const wasi = new WASI({ version: 'preview1', stdout: writable, limits: { timeout: 500 } });
  const instance = wasi.instantiate(flooder(8));
  await settlesWith('ERR_WASI_TIMEOUT', 500,
                    () => wasi.startAsync(instance).finally(() => { seen.settled = true; }));
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(seen.callsAfter, 0);
});
