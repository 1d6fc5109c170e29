// The V8 path: node:wasi's drop-in surface (wasiImport, getImportObject, start/initialize/
// finalizeBindings with WebAssembly instances), served by wasmtime-wasi's preview1, compared
// with Node's own node:wasi where Node defines the behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { lib, fixture, NodeWASI, EXPERIMENTAL_WARNING } from './helpers.mjs';

const { WASI } = lib;
const P1 = 'preview1';

async function instantiate(wasi, name) {
  const { instance } = await WebAssembly.instantiate(fixture(name), wasi.getImportObject());
  return instance;
}

test('wasiImport: the same 46 own, enumerable, writable functions as node:wasi, in order', () => {
  const ours = new WASI({ version: P1 }).wasiImport;
  const node = new NodeWASI({ version: P1 }).wasiImport;
  assert.deepEqual(Object.keys(ours), Object.keys(node));
  assert.equal(Object.keys(ours).length, 46);
  for (const name of Object.keys(ours)) {
    const descriptor = Object.getOwnPropertyDescriptor(ours, name);
    assert.equal(typeof descriptor.value, 'function', name);
    assert.equal(descriptor.enumerable, true, name);
    assert.equal(descriptor.writable, true, name);
  }
});

test('getImportObject(): the wasiImport object under the version\'s module name', () => {
  const p1 = new WASI({ version: 'preview1' });
  assert.deepEqual(Object.keys(p1.getImportObject()), ['wasi_snapshot_preview1']);
  assert.equal(p1.getImportObject().wasi_snapshot_preview1, p1.wasiImport);
  const unstable = new WASI({ version: 'unstable' });
  assert.deepEqual(Object.keys(unstable.getImportObject()), ['wasi_unstable']);
  assert.equal(unstable.getImportObject().wasi_unstable, unstable.wasiImport);
});

test('a call before the memory is bound throws ERR_WASI_NOT_STARTED, as node:wasi does', () => {
  for (const W of [NodeWASI, WASI]) {
    const { wasiImport } = new W({ version: P1 });
    assert.throws(() => wasiImport.fd_write(1, 0, 0, 0), { name: 'Error', code: 'ERR_WASI_NOT_STARTED', message: 'wasi.start() has not been called' });
  }
});

// `(module (memory (export "memory") 1))`, assembled by hand (V8 does not read WAT): a
// reactor whose memory the tests bind and then call imports over by hand.
const MEMORY_ONLY = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 5, 3, 1, 0, 1, 7, 10, 1, 6, 109, 101, 109, 111, 114, 121, 2, 0,
]);

function bound(W) {
  const wasi = new W({ version: P1, stdout: W === WASI ? 'pipe' : 1 });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(MEMORY_ONLY), {});
  wasi.initialize(instance);
  return { wasi, memory: instance.exports.memory };
}

test('calling convention: wrong count or types -> 28, pointers outside memory -> 61, like node:wasi', () => {
  for (const W of [NodeWASI, WASI]) {
    const { wasi } = bound(W);
    const { fd_write: fdWrite, clock_time_get: clockTimeGet, random_get: randomGet } = wasi.wasiImport;
    const label = W === WASI ? 'ours' : 'node:wasi';
    assert.equal(fdWrite(1, 0, 0), 28, `${label}: too few arguments`);
    assert.equal(fdWrite(1, 0, 0, 0, 0), 28, `${label}: too many arguments`);
    assert.equal(fdWrite('1', 0, 0, 0), 28, `${label}: a string for an i32`);
    assert.equal(fdWrite(1n, 0, 0, 0), 28, `${label}: a BigInt for an i32`);
    assert.equal(clockTimeGet(0, 1, 0), 28, `${label}: a number for an i64`);
    assert.equal(clockTimeGet(0, 1n, 0), 0, `${label}: a BigInt for an i64`);
    assert.equal(randomGet(65536 - 4, 8), 61, `${label}: a buffer running past the end`);
    assert.equal(randomGet(65536 - 8, 8), 0, `${label}: a buffer ending at the end`);
  }
});

test('memory is re-read on every call, so memory.grow between calls is safe', () => {
  const { wasi, memory } = bound(WASI);
  assert.equal(wasi.wasiImport.random_get(65536, 16), 61);
  memory.grow(1);
  assert.equal(wasi.wasiImport.random_get(65536, 16), 0);
  assert.notDeepEqual([...new Uint8Array(memory.buffer, 65536, 16)], new Array(16).fill(0));
});

test('start() returns the signed proc_exit code, as node:wasi does', async () => {
  for (const n of [0, 3, 120, 200, 300, -1]) {
    const wasi = new WASI({ version: P1, args: ['exitcode', String(n), 'proc_exit'], stdout: 'pipe' });
    assert.equal(wasi.start(await instantiate(wasi, 'exitcode.wasm')), n);
    assert.equal(wasi.stdout.toString(), `exiting with ${n}\n`);
  }
});

test('a user proc_exit that throws has its error rethrown as is', async () => {
  const wasi = new WASI({ version: P1, args: ['exitcode', '7', 'proc_exit'], stdout: 'pipe' });
  const mine = new Error('my exit');
  wasi.wasiImport.proc_exit = () => { throw mine; };
  const instance = await instantiate(wasi, 'exitcode.wasm');
  assert.throws(() => wasi.start(instance), (err) => err === mine);
});

test('a second start()/initialize() throws ERR_WASI_ALREADY_STARTED before any guest code runs', async () => {
  const wasi = new WASI({ version: P1, stdout: 'pipe' });
  const instance = await instantiate(wasi, 'counter.wasm');
  assert.equal(wasi.start(instance), 0);
  assert.throws(() => wasi.start(instance), { code: 'ERR_WASI_ALREADY_STARTED' });
  assert.throws(() => wasi.initialize(instance), { code: 'ERR_WASI_ALREADY_STARTED' });
  assert.throws(() => wasi.finalizeBindings(instance), { code: 'ERR_WASI_ALREADY_STARTED' });
  assert.equal(wasi.stdout.toString(), '1\n');
});

test('initialize() runs a reactor\'s _initialize; its exports then use the imports', async () => {
  const wasi = new WASI({ version: P1, stdout: 'pipe' });
  const instance = await instantiate(wasi, 'reactor.wasm');
  assert.equal(instance.exports.get_initialized(), 0);
  wasi.initialize(instance);
  assert.equal(instance.exports.get_initialized(), 42);
  const ptr = instance.exports.alloc(5);
  new Uint8Array(instance.exports.memory.buffer).set(Buffer.from('hello'), ptr);
  instance.exports.say(ptr, 5);
  assert.equal(wasi.stdout.toString(), 'hello');
});

test('finalizeBindings() binds the memory and marks the object started', () => {
  const wasi = new WASI({ version: P1, stdout: 'pipe' });
  const memory = new WebAssembly.Memory({ initial: 1 });
  assert.throws(() => wasi.finalizeBindings({ exports: {} }, { memory: {} }), {
    code: 'ERR_INVALID_ARG_TYPE',
    message: '"instance.exports.memory" property must be a WebAssembly.Memory object',
  });
  wasi.finalizeBindings({ exports: {} }, { memory });
  // iovec { buf: 16, len: 3 } at 0, "hi\n" at 16, nwritten at 32.
  const view = new DataView(memory.buffer);
  view.setUint32(0, 16, true);
  view.setUint32(4, 3, true);
  new Uint8Array(memory.buffer).set(Buffer.from('hi\n'), 16);
  assert.equal(wasi.wasiImport.fd_write(1, 0, 1, 32), 0);
  assert.equal(view.getUint32(32, true), 3);
  assert.equal(wasi.stdout.toString(), 'hi\n');
  assert.throws(() => wasi.start({ exports: { memory, _start() {} } }), { code: 'ERR_WASI_ALREADY_STARTED' });
});

test('an instance from another vm context is accepted (no instanceof check)', async () => {
  const context = vm.createContext({ bytes: fixture('hello.wasm') });
  const wasi = new WASI({ version: P1, stdout: 'pipe' });
  context.imports = wasi.getImportObject();
  const instance = await vm.runInContext('WebAssembly.instantiate(bytes, imports).then((r) => r.instance)', context);
  assert.equal(instance instanceof WebAssembly.Instance, false);
  assert.equal(wasi.start(instance), 0);
  assert.equal(wasi.stdout.toString(), 'hello world\n');
});

test('an object shaped like an instance is accepted', () => {
  const wasi = new WASI({ version: P1 });
  let ran = false;
  assert.equal(wasi.start({ exports: { memory: new WebAssembly.Memory({ initial: 1 }), _start() { ran = true; } } }), 0);
  assert.equal(ran, true);
});

test('the README\'s drop-in example runs', async () => {
  const { spawnSync } = await import('node:child_process');
  const result = spawnSync(process.execPath, ['examples/node-wasi-drop-in.mjs'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, 'hello world\n');
  // node:wasi's warning, as node:wasi gives it (once, on the first new WASI).
  assert.match(result.stderr, new RegExp(`^${EXPERIMENTAL_WARNING}$`));
});
