// Streamed stdout/stderr: a function or a Writable gets every byte, in order, before the run
// settles (runWasm, startAsync) or returns (runWasmSync, start), also when the guest traps or
// is stopped; a slow Writable holds the guest back instead of filling memory; a target that
// throws fails the run with its error; the V8 path streams too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { lib, fixture, echoReport, errPrefixed, ENDLESS_WAT } from './helpers.mjs';

const { WASI, Module, runWasm, runWasmSync } = lib;

const LARGE = new Module(fixture('large.wasm'));
const ECHO = new Module(fixture('echo.wasm'));

/** large.wasm's output: MiB * 1 MiB bytes, byte i = i % 251. */
function largeOutput(mib) {
  const out = Buffer.alloc(mib << 20);
  for (let i = 0; i < out.length; i++) out[i] = i % 251;
  return out;
}

function collector() {
  const chunks = [];
  const fn = (chunk) => {
    assert.ok(chunk instanceof Uint8Array);
    chunks.push(Buffer.from(chunk));
  };
  fn.bytes = () => Buffer.concat(chunks);
  fn.chunks = chunks;
  return fn;
}

test('runWasm: a function gets every byte in order before the promise resolves', async () => {
  const stdout = collector();
  const stderr = collector();
  const result = await runWasm(ECHO, { args: ['echo', 'streamed'], stdin: 'in', stdout, stderr });
  const expected = echoReport({ args: ['echo', 'streamed'], stdin: 'in' });
  assert.deepEqual(stdout.bytes(), expected);
  assert.deepEqual(stderr.bytes(), errPrefixed(expected));
  assert.equal(result.exitCode, 0);
  assert.deepEqual(result.stdout, Buffer.alloc(0), 'streamed output is not captured too');
  const big = collector();
  await runWasm(LARGE, { args: ['large', '4'], stdout: big });
  assert.ok(big.chunks.length > 1);
  assert.ok(big.bytes().equals(largeOutput(4)));
});

test('runWasmSync: chunks are delivered, in order, before it returns', () => {
  const stdout = collector();
  runWasmSync(LARGE, { args: ['large', '2'], stdout });
  assert.ok(stdout.bytes().equals(largeOutput(2)));
});

test('a Writable gets every byte; a slow one holds the guest back (memory stays bounded)', async () => {
  const received = [];
  const held = [];
  let holding = true;
  const slow = new Writable({
    highWaterMark: 1,
    write(chunk, _encoding, callback) {
      received.push(Buffer.from(chunk));
      if (holding) held.push(callback);
      else callback();
    },
  });
  const pending = runWasm(LARGE, { args: ['large', '8'], stdout: slow });
  await new Promise((resolve) => setTimeout(resolve, 300));
  // No callback has run: the guest may have handed over at most about 1 MiB, not 8 (what
  // the Writable passed to write() plus what it buffers).
  const inFlight = received.reduce((n, chunk) => n + chunk.length, 0) + slow.writableLength;
  assert.ok(inFlight > 0 && inFlight <= (1 << 20) + 65536, `${inFlight} bytes handed over`);
  let settled = false;
  pending.then(() => { settled = true; }, () => { settled = true; });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, false);
  // Let it drain from now on.
  holding = false;
  held.splice(0).forEach((callback) => callback());
  const result = await pending;
  assert.equal(result.exitCode, 0);
  assert.ok(Buffer.concat(received).equals(largeOutput(8)));
});

test('output written before a trap or a timeout is all delivered before the rejection', async () => {
  const stdout = collector();
  await assert.rejects(runWasm(fixture('trap.wasm'), { stdout }), { code: 'ERR_WASM_TRAP' });
  assert.deepEqual(stdout.bytes(), Buffer.from('before trap\n'));
  const endless = new Module(ENDLESS_WAT);
  const timed = collector();
  await assert.rejects(runWasm(endless, { stdout: timed, limits: { timeout: 50 } }), { code: 'ERR_WASI_TIMEOUT' });
  assert.deepEqual(timed.bytes(), Buffer.from('start\n'));
  const aborted = collector();
  await assert.rejects(runWasm(endless, { stdout: aborted, signal: AbortSignal.timeout(50) }), { name: 'AbortError' });
  assert.deepEqual(aborted.bytes(), Buffer.from('start\n'));
  const sync = collector();
  assert.throws(() => runWasmSync(fixture('trap.wasm'), { stdout: sync }), { code: 'ERR_WASM_TRAP' });
  assert.deepEqual(sync.bytes(), Buffer.from('before trap\n'));
});

test('a target that throws fails the run with its error; the guest is not harmed', async () => {
  const boom = new Error('sink failed');
  const failing = () => { throw boom; };
  await assert.rejects(runWasm(ECHO, { args: ['echo'], stdout: failing }), (err) => err === boom);
  assert.throws(() => runWasmSync(ECHO, { args: ['echo'], stdout: failing }), (err) => err === boom);
  const wasi = new WASI({ version: 'preview1', args: ['echo'], stdin: Buffer.alloc(0), stdout: failing, stderr: 'ignore' });
  await assert.rejects(wasi.startAsync(wasi.instantiate(ECHO)), (err) => err === boom);
  // The next run is unaffected.
  const stdout = collector();
  await runWasm(ECHO, { args: ['echo'], stdout });
  assert.deepEqual(stdout.bytes(), echoReport({ args: ['echo'] }));
});

test('new WASI: streamed output with start(), startAsync() and the V8 path', async () => {
  const sync = collector();
  const a = new WASI({ version: 'preview1', args: ['echo', 'x'], stdin: Buffer.alloc(0), stdout: sync, stderr: 'ignore' });
  assert.equal(a.start(a.instantiate(ECHO)), 0);
  assert.deepEqual(sync.bytes(), echoReport({ args: ['echo', 'x'] }));
  assert.equal(a.stdout, undefined);

  const later = collector();
  const b = new WASI({ version: 'preview1', args: ['large', '2'], stdout: later });
  assert.equal(await b.startAsync(b.instantiate(LARGE)), 0);
  assert.ok(later.bytes().equals(largeOutput(2)));

  const v8 = collector();
  const c = new WASI({ version: 'preview1', args: ['echo', 'v8'], stdin: Buffer.alloc(0), stdout: v8, stderr: 'ignore' });
  const { instance } = await WebAssembly.instantiate(fixture('echo.wasm'), c.getImportObject());
  assert.equal(c.start(instance), 0);
  assert.deepEqual(v8.bytes(), echoReport({ args: ['echo', 'v8'] }));

  const component = collector();
  const d = new WASI({ version: 'preview2', stdout: component });
  assert.equal(await d.startAsync(d.instantiate(fixture('components/hello.wasm'))), 0);
  assert.deepEqual(component.bytes(), Buffer.from('hello world\n'));
});

test('stdout/stderr that are neither a mode, an fd, a function nor a Writable are refused', async () => {
  for (const bad of [true, null, {}, { write: 1 }]) {
    assert.throws(() => runWasmSync(ECHO, { stdout: bad }), { code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(runWasm(ECHO, { stderr: bad }), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  assert.throws(() => new WASI({ version: 'preview1', stdout: {} }), { code: 'ERR_INVALID_ARG_TYPE' });
});
