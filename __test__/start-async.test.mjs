// wasi.startAsync(): the started flag is set before the promise is returned, calls into the
// guest meanwhile throw ERR_WASI_BUSY (not block), components and core modules, exit codes,
// traps, timeouts and signals, and bad input rejecting (never throwing).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lib, fixture, ENDLESS_WAT } from './helpers.mjs';

const { WASI, Module } = lib;

const ENDLESS = new Module(ENDLESS_WAT);

test('startAsync runs _start off the main thread and resolves to the exit code', async () => {
  const wasi = new WASI({ version: 'preview1', stdout: 'pipe', args: ['exitcode', '7', 'proc_exit'] });
  const instance = wasi.instantiate(fixture('exitcode.wasm'));
  const pending = wasi.startAsync(instance);
  assert.ok(pending instanceof Promise);
  assert.throws(() => wasi.start(instance), { code: 'ERR_WASI_ALREADY_STARTED' });
  assert.equal(await pending, 7);
  assert.deepEqual(wasi.stdout, Buffer.from('exiting with 7\n'));
});

test('while it runs, calls into the guest throw ERR_WASI_BUSY; afterwards they work', async () => {
  const controller = new AbortController();
  const wasi = new WASI({ version: 'preview1', stdout: 'pipe' });
  const instance = wasi.instantiate(ENDLESS);
  const { memory, peek } = instance.exports;
  const pending = wasi.startAsync(instance, { signal: controller.signal });
  for (const call of [() => peek(), () => memory.byteLength, () => memory.read(0, 4), () => memory.grow(1)]) {
    assert.throws(call, { code: 'ERR_WASI_BUSY' });
  }
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.throws(() => peek(), { code: 'ERR_WASI_BUSY' });
  controller.abort();
  await assert.rejects(pending, (err) => {
    assert.equal(err.name, 'AbortError');
    assert.equal(err.code, 'ABORT_ERR');
    assert.equal(err.cause, controller.signal.reason);
    assert.deepEqual(err.stdout, Buffer.from('start\n'), 'the output so far, on the error');
    assert.deepEqual(err.stderr, Buffer.alloc(0), 'stderr is not piped: empty');
    return true;
  });
  assert.deepEqual(wasi.stdout, Buffer.from('start\n'));
  assert.equal(memory.byteLength, 65536);
  assert.equal(peek(), 7);
});

test('startAsync on a component runs wasi:cli/run once', async () => {
  const wasi = new WASI({ version: 'preview2', stdout: 'pipe', args: ['x', '5'] });
  const instance = wasi.instantiate(fixture('components/exit-with-code.wasm'));
  assert.equal(await wasi.startAsync(instance), 5);
  assert.deepEqual(wasi.stdout, Buffer.from('exiting with code 5\n'));
  await assert.rejects(wasi.startAsync(instance), { code: 'ERR_WASI_ALREADY_STARTED' });
  // A component without wasi:cli/run is refused before anything is marked started.
  const lib2 = new WASI({ version: 'preview2' });
  const noRun = lib2.instantiate(fixture('components/no-run.wasm'));
  await assert.rejects(lib2.startAsync(noRun), { code: 'ERR_INVALID_ARG_TYPE' });
  lib2.initialize(noRun);
  assert.equal(noRun.exports.add(1, 2), 3);
});

test('startAsync: traps and timeouts reject with their codes and keep the output', async () => {
  const trapping = new WASI({ version: 'preview1', stdout: 'pipe' });
  await assert.rejects(trapping.startAsync(trapping.instantiate(fixture('trap.wasm'))),
                       (err) => err.code === 'ERR_WASM_TRAP' && err.trapCode === 'unreachable' &&
                                err.stdout.equals(Buffer.from('before trap\n')));
  assert.deepEqual(trapping.stdout, Buffer.from('before trap\n'));
  const slow = new WASI({ version: 'preview1', stdout: 'pipe', stderr: 'pipe', limits: { timeout: 100 } });
  await assert.rejects(slow.startAsync(slow.instantiate(ENDLESS)), (err) => {
    assert.equal(err.code, 'ERR_WASI_TIMEOUT');
    assert.deepEqual(err.stdout, Buffer.from('start\n'));
    assert.deepEqual(err.stderr, Buffer.alloc(0));
    return true;
  });
  assert.deepEqual(slow.stdout, Buffer.from('start\n'));
  // The same for start(): its errors carry the output too.
  const sync = new WASI({ version: 'preview1', stdout: 'pipe', limits: { timeout: 100 } });
  assert.throws(() => sync.start(sync.instantiate(ENDLESS)),
                (err) => err.code === 'ERR_WASI_TIMEOUT' && err.stdout.equals(Buffer.from('start\n')));
});

test('startAsync: an already aborted signal rejects and runs nothing', async () => {
  const wasi = new WASI({ version: 'preview1', stdout: 'pipe' });
  const instance = wasi.instantiate(fixture('hello.wasm'));
  await assert.rejects(wasi.startAsync(instance, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  assert.deepEqual(wasi.stdout, Buffer.alloc(0));
  assert.equal(await wasi.startAsync(instance), 0, 'nothing was marked started');
  assert.deepEqual(wasi.stdout, Buffer.from('hello world\n'));
});

test('startAsync: bad input rejects (a V8 instance, a foreign instance, bad options)', async () => {
  const wasi = new WASI({ version: 'preview1' });
  const { instance: v8 } = await WebAssembly.instantiate(fixture('hello.wasm'), wasi.getImportObject());
  let pending;
  assert.doesNotThrow(() => { pending = wasi.startAsync(v8); });
  await assert.rejects(pending, (err) => {
    assert.equal(err.code, 'ERR_INVALID_ARG_TYPE');
    assert.match(err.message, /must be an Instance made by wasi\.instantiate\(\)\. Received a WebAssembly\.Instance/);
    assert.match(err.message, /only on the main thread/);
    assert.doesNotMatch(err.message, /instance of Instance/);
    return true;
  });
  await assert.rejects(wasi.startAsync(new WASI({ version: 'preview1' }).instantiate(fixture('hello.wasm'))),
                       { code: 'ERR_INVALID_ARG_VALUE' });
  const instance = wasi.instantiate(fixture('hello.wasm'));
  await assert.rejects(wasi.startAsync(instance, 5), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(wasi.startAsync(instance, { signal: 'x' }), { code: 'ERR_INVALID_ARG_TYPE' });
});
