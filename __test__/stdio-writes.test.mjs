// The V8 path's direct lane for fd_write to stdout/stderr (src/stdio_writes.rs) must be
// indistinguishable from wasmtime-wasi's own fd_write. Each scenario runs the same raw
// wasiImport calls twice: over an unshared memory (served by the direct lane) and over a
// shared memory (which the lane never serves, so wasmtime-wasi answers), and compares every
// errno, every byte of memory and every byte of output. Scenarios cover several iovecs
// (only the first non-empty one is written), none, bad and misaligned pointers, a large
// write, stderr, and stdout closed or renumbered by the guest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { lib, tempDir } from './helpers.mjs';

const { WASI } = lib;
const PAGE = 65536;

/** A memory and helpers to lay out iovecs in it. */
function setup(shared, options) {
  const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: 1, shared: true } : { initial: 1 });
  const wasi = new WASI({ version: 'preview1', ...options });
  wasi.finalizeBindings({ exports: {} }, { memory });
  const bytes = () => new Uint8Array(memory.buffer);
  let next = 1024;
  const data = (text) => {
    const buf = Buffer.from(text);
    const at = next;
    bytes().set(buf, at);
    next += buf.length + 8 - (buf.length % 8);
    return [at, buf.length];
  };
  // iovecs: [[ptr, len], ...] at a 4-aligned address (or `at`); returns [address, count].
  const iovecs = (list, at = 256) => {
    const view = new DataView(memory.buffer);
    list.forEach(([ptr, len], i) => {
      view.setUint32(at + 8 * i, ptr, true);
      view.setUint32(at + 8 * i + 4, len, true);
    });
    return [at, list.length];
  };
  return { wasi, memory, bytes, data, iovecs, call: wasi.wasiImport };
}

const SCENARIOS = {
  'one iovec': ({ call, data, iovecs }) => [call.fd_write(1, ...iovecs([data('hello')]), 64)],
  'first non-empty iovec only': ({ call, data, iovecs }) =>
    [call.fd_write(1, ...iovecs([[0, 0], data('ab'), data('cd')]), 64)],
  'no iovecs, and only empty ones': ({ call, iovecs }) =>
    [call.fd_write(1, ...iovecs([]), 64), call.fd_write(1, ...iovecs([[0, 0], [5000, 0]]), 68)],
  'iovec data outside memory': ({ call, iovecs }) =>
    [call.fd_write(1, ...iovecs([[PAGE - 2, 4]]), 64), call.fd_write(1, ...iovecs([[0xffffffff, 2]]), 64)],
  'iovec array outside memory': ({ call }) => [call.fd_write(1, PAGE - 4, 1, 64), call.fd_write(1, 0, 0x20000000, 64)],
  'misaligned iovec array': ({ call, data, iovecs }) => [call.fd_write(1, ...iovecs([data('x')], 258), 64)],
  'nwritten outside memory (the bytes are written first)': ({ call, data, iovecs }) =>
    [call.fd_write(1, ...iovecs([data('kept')]), PAGE - 2)],
  'misaligned nwritten': ({ call, data, iovecs }) => [call.fd_write(1, ...iovecs([data('odd')]), 66)],
  'a large write (several 4 KiB chunks)': ({ call, data, iovecs }) =>
    [call.fd_write(1, ...iovecs([data('z'.repeat(10000) + 'end')]), 64)],
  'stderr, and fds that are not stdio': ({ call, data, iovecs }) =>
    [call.fd_write(2, ...iovecs([data('to stderr')]), 64), call.fd_write(0, ...iovecs([data('in')]), 64),
     call.fd_write(7, ...iovecs([data('nope')]), 64), call.fd_write(-1, ...iovecs([data('neg')]), 64)],
  'stdout closed by the guest': ({ call, data, iovecs }) =>
    [call.fd_write(1, ...iovecs([data('before')]), 64), call.fd_close(1), call.fd_write(1, ...iovecs([data('after')]), 64)],
  'stderr renumbered onto stdout': ({ call, data, iovecs }) =>
    [call.fd_renumber(2, 1), call.fd_write(1, ...iovecs([data('to old stderr')]), 64),
     call.fd_write(2, ...iovecs([data('gone')]), 64)],
};

function run(scenario, shared, options) {
  const env = setup(shared, options);
  const errnos = SCENARIOS[scenario](env);
  return { errnos, memory: Buffer.from(env.bytes()), stdout: env.wasi.stdout, stderr: env.wasi.stderr };
}

for (const scenario of Object.keys(SCENARIOS)) {
  test(`fd_write direct lane = wasmtime-wasi: ${scenario}`, () => {
    const options = { stdout: 'pipe', stderr: 'pipe' };
    const direct = run(scenario, false, options);
    const wasmtime = run(scenario, true, options);
    assert.deepEqual(direct.errnos, wasmtime.errnos);
    assert.ok(direct.memory.equals(wasmtime.memory), 'memory differs');
    assert.deepEqual(direct.stdout, wasmtime.stdout);
    assert.deepEqual(direct.stderr, wasmtime.stderr);
  });
}

test('fd_write direct lane, concrete results: counts, errnos and bytes', () => {
  const one = run('first non-empty iovec only', false, { stdout: 'pipe' });
  assert.deepEqual(one.errnos, [0]);
  assert.equal(one.memory.readUInt32LE(64), 2);
  assert.deepEqual(one.stdout, Buffer.from('ab'));
  const bad = run('iovec data outside memory', false, { stdout: 'pipe' });
  assert.deepEqual(bad.errnos, [61, 61]);
  const kept = run('nwritten outside memory (the bytes are written first)', false, { stdout: 'pipe' });
  assert.deepEqual(kept.errnos, [61]);
  assert.deepEqual(kept.stdout, Buffer.from('kept'));
  const closed = run('stdout closed by the guest', false, { stdout: 'pipe' });
  assert.deepEqual(closed.errnos, [0, 0, 8]);
  assert.deepEqual(closed.stdout, Buffer.from('before'));
  const big = run('a large write (several 4 KiB chunks)', false, { stdout: 'ignore' });
  assert.deepEqual(big.errnos, [0]);
  assert.equal(big.memory.readUInt32LE(64), 10003);
});

test('fd_write direct lane to host fds writes the same file bytes as wasmtime-wasi', () => {
  const dir = tempDir();
  for (const scenario of ['first non-empty iovec only', 'a large write (several 4 KiB chunks)', 'stderr renumbered onto stdout']) {
    const outputs = [false, true].map((shared) => {
      const files = ['out', 'err'].map((name) => path.join(dir, `${name}-${shared}`));
      const fds = files.map((file) => fs.openSync(file, 'w'));
      let result;
      try {
        result = run(scenario, shared, { stdout: fds[0], stderr: fds[1] });
      } finally {
        fds.forEach((fd) => fs.closeSync(fd));
      }
      return { errnos: result.errnos, files: files.map((file) => fs.readFileSync(file)) };
    });
    assert.deepEqual(outputs[0], outputs[1], scenario);
  }
});
