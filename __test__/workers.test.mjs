// worker_threads: each worker loads the addon and runs guests (sync, async, WASI objects,
// components, streamed output); terminating workers in the middle of async runs neither
// crashes the process nor leaves their guests running on the pool (the pool stays usable).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { lib, fixture, fixturePath } from './helpers.mjs';

const LIB = path.resolve('lib/index.js');

function worker(body, workerData = {}) {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const fs = require('node:fs');
    const { WASI, Module, runWasm, runWasmSync } = require(${JSON.stringify(LIB)});
    const fixture = (name) => fs.readFileSync(${JSON.stringify(path.dirname(fixturePath('hello.wasm')))} + '/' + name);
    (async () => { ${body} })().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }));`;
  return new Worker(code, { eval: true, workerData });
}

function nextMessage(w) {
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

test('a worker runs guests: runWasmSync, runWasm, WASI, a component, streamed output', async () => {
  const w = worker(`
    const hello = fixture('hello.wasm');
    const out = [];
    out.push(runWasmSync(hello).stdout.toString());
    out.push((await runWasm(hello)).stdout.toString());
    const wasi = new WASI({ version: 'preview1', stdout: 'pipe' });
    wasi.start(wasi.instantiate(hello));
    out.push(wasi.stdout.toString());
    out.push((await runWasm(fixture('components/hello.wasm'))).stdout.toString());
    const chunks = [];
    await runWasm(hello, { stdout: (chunk) => chunks.push(Buffer.from(chunk).toString()) });
    out.push(chunks.join(''));
    parentPort.postMessage(out);`);
  const out = await nextMessage(w);
  assert.deepEqual(out, Array(5).fill('hello world\n'));
  await w.terminate();
});

test('several workers run guests at once', async () => {
  const workers = Array.from({ length: 4 }, (_, i) => worker(`
    const results = await Promise.all(Array.from({ length: 4 }, (_, j) =>
      runWasm(fixture('echo.wasm'), { args: ['echo', workerData.i + '.' + j] })));
    parentPort.postMessage(results.map((r) => r.stdout.toString().split('\\n')[2]));`, { i }));
  const outputs = await Promise.all(workers.map(nextMessage));
  outputs.forEach((lines, i) => {
    assert.deepEqual(lines, [0, 1, 2, 3].map((j) => `argv[1]=${i}.${j}`), `worker ${i}`);
  });
  await Promise.all(workers.map((w) => w.terminate()));
});

test('terminating workers mid-run stops their guests; the pool stays usable', async () => {
  // More endless guests than the pool has threads: if terminated workers left them running,
  // the run below would never get a thread.
  const workers = Array.from({ length: 4 }, () => worker(`
    parentPort.postMessage('running');
    await runWasm(fixture('spin.wasm'), { args: ['spin', '1000000000000'] });`));
  await Promise.all(workers.map(nextMessage));
  await new Promise((resolve) => setTimeout(resolve, 50));
  await Promise.all(workers.map((w) => w.terminate()));
  const started = Date.now();
  const result = await lib.runWasm(fixture('hello.wasm'));
  assert.deepEqual(result.stdout, Buffer.from('hello world\n'));
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
});

test('terminating a worker whose guest waits on a stalled Writable frees the pool thread', async () => {
  const workers = Array.from({ length: 3 }, () => worker(`
    const { Writable } = require('node:stream');
    const stalled = new Writable({ highWaterMark: 1, write() {} });   // never calls back
    parentPort.postMessage('running');
    await runWasm(fixture('large.wasm'), { args: ['large', '64'], stdout: stalled });`));
  await Promise.all(workers.map(nextMessage));
  await new Promise((resolve) => setTimeout(resolve, 100));
  await Promise.all(workers.map((w) => w.terminate()));
  const result = await lib.runWasm(fixture('hello.wasm'));
  assert.deepEqual(result.stdout, Buffer.from('hello world\n'));
});

test('terminating workers whose guests sleep or wait on stdin frees the pool threads', async () => {
  // Asleep in poll_oneoff (core), in wasi:io/poll (component) and blocked on a stdin that
  // never delivers: more such guests than the pool has threads, then the workers go away.
  const year = String(365 * 24 * 3600 * 1000);
  const bodies = [
    `await runWasm(fixture('sleep.wasm'), { args: ['sleep', '${year}'] });`,
    `await runWasm(fixture('components/sleep.wasm'), { args: ['sleep', '${year}'] });`,
    `const { execFileSync } = require('node:child_process');
     const fifo = require('node:path').join(require('node:os').tmpdir(), 'nwt-stdin-' + process.pid + '-' + require('node:worker_threads').threadId);
     execFileSync('mkfifo', [fifo]);
     const fd = fs.openSync(fifo, 'r+');
     fs.unlinkSync(fifo);
     await runWasm(fixture('echo.wasm'), { args: ['echo'], stdin: fd });`,
  ];
  const workers = [0, 1, 2, 0].map((i) => worker(`parentPort.postMessage('running'); ${bodies[i]}`));
  await Promise.all(workers.map(nextMessage));
  await new Promise((resolve) => setTimeout(resolve, 100));
  await Promise.all(workers.map((w) => w.terminate()));
  const started = Date.now();
  const result = await lib.runWasm(fixture('hello.wasm'));
  assert.deepEqual(result.stdout, Buffer.from('hello world\n'));
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
});
