// The WASI class on the wasmtime path: instantiate/start/initialize, the start-once rule,
// exit codes, returnOnExit, stdio routing, and a reactor's exports and memory from JS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { lib, fixture, tempDir, echoReport } from './helpers.mjs';

const { WASI, Module, Instance, Memory } = lib;
const P1 = 'preview1';
const libPath = path.resolve('lib/index.js');

function command(name, options = {}) {
  const wasi = new WASI({ version: P1, stdout: 'pipe', stderr: 'pipe', ...options });
  return { wasi, instance: wasi.instantiate(fixture(name)) };
}

test('start() returns the exit code and pipes capture output', () => {
  for (const [n, mode] of [[0, 'exit'], [3, 'exit'], [120, 'return'], [200, 'proc_exit'], [300, 'proc_exit'], [-1, 'exit']]) {
    const { wasi, instance } = command('exitcode.wasm', { args: ['exitcode', String(n), mode] });
    assert.ok(instance instanceof Instance);
    assert.equal(wasi.start(instance), n, `${n} ${mode}`);
    assert.equal(wasi.stdout.toString(), `exiting with ${n}\n`);
    assert.equal(wasi.stderr.length, 0);
  }
});

test('a second start() throws ERR_WASI_ALREADY_STARTED before any guest code runs', () => {
  const { wasi, instance } = command('counter.wasm');
  assert.equal(wasi.start(instance), 0);
  assert.throws(() => wasi.start(instance), { code: 'ERR_WASI_ALREADY_STARTED', message: 'WASI instance has already started' });
  assert.throws(() => wasi.initialize(instance), { code: 'ERR_WASI_ALREADY_STARTED' });
  // Calling the entry point directly is refused too.
  assert.throws(() => instance.exports._start(), { code: 'ERR_WASI_ALREADY_STARTED' });
  // A fresh instance of the same WASI object is refused as well: the flag is per WASI object.
  assert.throws(() => wasi.start(wasi.instantiate(fixture('counter.wasm'))), { code: 'ERR_WASI_ALREADY_STARTED' });
  assert.equal(wasi.stdout.toString(), '1\n');
});

test('calling _start directly counts as the start', () => {
  const { wasi, instance } = command('counter.wasm');
  assert.equal(instance.exports._start(), undefined);
  assert.throws(() => wasi.start(instance), { code: 'ERR_WASI_ALREADY_STARTED' });
  assert.equal(wasi.stdout.toString(), '1\n');
});

test('start() on a reactor fails after marking started, as node:wasi does', () => {
  const wasi = new WASI({ version: P1 });
  const instance = wasi.instantiate(fixture('reactor.wasm'));
  assert.throws(() => wasi.start(instance), {
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'The "instance.exports._start" property must be of type function. Received undefined',
  });
  assert.throws(() => wasi.initialize(instance), { code: 'ERR_WASI_ALREADY_STARTED' });
});

test('an instance from another WASI object is refused without starting', () => {
  const a = new WASI({ version: P1, stdout: 'pipe' });
  const b = new WASI({ version: P1, stdout: 'pipe' });
  const instance = a.instantiate(fixture('hello.wasm'));
  assert.throws(() => b.start(instance), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.equal(b.start(b.instantiate(fixture('hello.wasm'))), 0);
  assert.equal(b.stdout.toString(), 'hello world\n');
  assert.equal(a.stdout.length, 0);
});

test('instantiate() takes a Module, bytes or WAT text', () => {
  const wat = '(module (memory (export "memory") 1) (func (export "_start")))';
  for (const source of [new Module(fixture('hello.wasm')), fixture('hello.wasm'), new Uint8Array(fixture('hello.wasm'))]) {
    const { wasi, instance } = { wasi: new WASI({ version: P1, stdout: 'pipe' }) };
    assert.equal(wasi.start(wasi.instantiate(source)), 0);
    assert.equal(wasi.stdout.toString(), 'hello world\n');
    void instance;
  }
  const wasi = new WASI({ version: P1 });
  assert.equal(wasi.start(wasi.instantiate(wat)), 0);
  assert.throws(() => new WASI({ version: P1 }).instantiate(42), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('a trap in start() is a WebAssembly.RuntimeError with ERR_WASM_TRAP', () => {
  const { wasi, instance } = command('trap.wasm');
  assert.throws(() => wasi.start(instance), (err) => {
    assert.ok(err instanceof WebAssembly.RuntimeError);
    assert.equal(err.code, 'ERR_WASM_TRAP');
    assert.equal(err.trapCode, 'unreachable');
    assert.match(err.message, /crash_here/);
    return true;
  });
  assert.equal(wasi.stdout.toString(), 'before trap\n');
});

test('initialize() runs _initialize once; exports take numbers and BigInts', () => {
  const wasi = new WASI({ version: P1, stdout: 'pipe' });
  const instance = wasi.instantiate(fixture('reactor.wasm'));
  const { exports } = instance;
  assert.equal(instance.exports, exports, 'exports is the same object each time');
  assert.equal(exports.get_initialized(), 0);
  assert.equal(wasi.initialize(instance), undefined);
  assert.equal(exports.get_initialized(), 42);
  assert.throws(() => exports._initialize(), { code: 'ERR_WASI_ALREADY_STARTED' });
  assert.equal(exports.add(2, 3), 5);
  assert.equal(exports.add(2147483647, 1), -2147483648);
  assert.equal(exports.add('4', 1.9), 5, 'ToInt32 coercion');
  assert.equal(exports.mul64(-3n, 4n), -12n);
  assert.throws(() => exports.mul64(3, 4), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(exports.fadd(1.5, 2.25), 3.75);
  assert.equal(exports.add.name, 'add');
});

test('exported memory can be read, written and grown from JS', () => {
  const wasi = new WASI({ version: P1, stdout: 'pipe' });
  const instance = wasi.instantiate(fixture('reactor.wasm'));
  wasi.initialize(instance);
  const { memory, alloc, sum_bytes: sumBytes, fill, say } = instance.exports;
  assert.ok(memory instanceof Memory);
  const ptr = alloc(16);
  memory.write(ptr, Buffer.from('hi there'));
  assert.equal(memory.read(ptr, 8).toString(), 'hi there');
  say(ptr, 8);
  assert.equal(wasi.stdout.toString(), 'hi there');
  fill(ptr, 16, 7);
  assert.deepEqual([...memory.read(ptr, 16)], new Array(16).fill(7));
  assert.equal(sumBytes(ptr, 16), 112);
  const size = memory.byteLength;
  assert.equal(size % 65536, 0);
  assert.equal(memory.grow(1), size / 65536);
  assert.equal(memory.byteLength, size + 65536);
  assert.throws(() => memory.read(memory.byteLength - 1, 2), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => memory.write(-1, Buffer.from('x')), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => memory.grow(1e9), { code: 'ERR_OUT_OF_RANGE' });
});

test('proc_exit inside an export call is ERR_WASI_EXITED with the code', () => {
  const wat = `(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "quit") (call $exit (i32.const 7))))`;
  const wasi = new WASI({ version: P1 });
  const instance = wasi.instantiate(wat);
  wasi.initialize(instance);
  assert.throws(() => instance.exports.quit(), { code: 'ERR_WASI_EXITED', exitCode: 7 });
});

test('stdout and stderr to host file descriptors', () => {
  const dir = tempDir();
  const outFd = fs.openSync(path.join(dir, 'out'), 'w');
  const errFd = fs.openSync(path.join(dir, 'err'), 'w');
  const wasi = new WASI({ version: P1, args: ['echo', 'x'], stdin: Buffer.from('in'), stdout: outFd, stderr: errFd });
  assert.equal(wasi.start(wasi.instantiate(fixture('echo.wasm'))), 0);
  fs.closeSync(outFd);
  fs.closeSync(errFd);
  const out = fs.readFileSync(path.join(dir, 'out'), 'utf8');
  assert.equal(out, 'argc=2\nargv[0]=echo\nargv[1]=x\ncwd=/\nstdin.len=2\nstdin=in\ndone\n');
  const err = fs.readFileSync(path.join(dir, 'err'), 'utf8');
  assert.equal(err, out.split('\n').filter(Boolean).map((line) => `err:${line}\n`).join(''));
  assert.equal(wasi.stdout, undefined, 'nothing captured without pipe');
});

function child(script) {
  return spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '-e', script], { encoding: 'utf8' });
}

test('returnOnExit: false ends the process with code & 0xff and no exit event', () => {
  for (const [n, status] of [[3, 3], [200, 200], [300, 44], [-1, 255]]) {
    const result = child(`
      const { WASI } = require(${JSON.stringify(libPath)});
      process.on('exit', () => console.log('exit event'));
      const wasi = new WASI({ version: 'preview1', args: ['x', '${n}', 'proc_exit'], returnOnExit: false });
      wasi.start(wasi.instantiate(require('fs').readFileSync(${JSON.stringify(path.resolve('__test__/fixtures/exitcode.wasm'))})));
      console.log('not reached');`);
    assert.equal(result.status, status, `${n}: ${result.stderr}`);
    assert.equal(result.stdout, `exiting with ${n}\n`);
  }
});

test('returnOnExit: false with startAsync: the JS thread ends the process, with the code', () => {
  for (const [n, status] of [[3, 3], [300, 44]]) {
    const result = child(`
      const { WASI } = require(${JSON.stringify(libPath)});
      process.on('exit', () => console.log('exit event'));
      const wasi = new WASI({ version: 'preview1', args: ['x', '${n}', 'proc_exit'], returnOnExit: false });
      const instance = wasi.instantiate(require('fs').readFileSync(${JSON.stringify(path.resolve('__test__/fixtures/exitcode.wasm'))}));
      wasi.startAsync(instance).then(() => console.log('resolved'), () => console.log('rejected'));
      setInterval(() => {}, 1000);`);
    assert.equal(result.status, status, `${n}: ${result.stderr}`);
    assert.equal(result.signal, null);
    assert.equal(result.stdout, `exiting with ${n}\n`);
  }
});

test('a guest closing fd 1 does not close the host stdout', () => {
  const result = child(`
    const { WASI } = require(${JSON.stringify(libPath)});
    const wasi = new WASI({ version: 'preview1' });
    wasi.start(wasi.instantiate('(module (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32))) (memory (export "memory") 1) (func (export "_start") (drop (call $close (i32.const 1))) (drop (call $close (i32.const 2)))))'));
    console.log('host stdout still open');
    console.error('host stderr still open');`);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, 'host stdout still open\n');
  assert.equal(result.stderr, 'host stderr still open\n');
});

const openFds = () => fs.readdirSync('/proc/self/fd').length;

/** Runs `body(fd)` with a descriptor of /dev/null open for writing, closed afterwards. */
function withDevNull(body) {
  const fd = fs.openSync('/dev/null', 'w');
  try {
    body(fd);
  } finally {
    fs.closeSync(fd);
  }
}

test('the seed loop (new WASI + new WebAssembly.Instance + start) keeps descriptors flat without gc: 10,000 runs', () => {
  // node:wasi's documented pattern. Each WASI duplicates its stdio descriptors; before start()
  // closed them, the loop ran out of descriptors after about 4,000 runs.
  const module = new WebAssembly.Module(fixture('hello.wasm'));
  withDevNull((devNull) => {
    const before = openFds();
    for (let i = 0; i < 10000; i++) {
      const wasi = new WASI({ version: P1, stdout: devNull });
      assert.equal(wasi.start(new WebAssembly.Instance(module, wasi.getImportObject())), 0);
    }
    const grown = openFds() - before;
    assert.ok(grown <= 5, `${grown} descriptors more than before the loop`);
  });
});

test('instantiate + start keeps descriptors flat without gc: 10,000 runs; memory and exports stay usable', () => {
  const module = new Module(fixture('hello.wasm'));
  withDevNull((devNull) => {
    const before = openFds();
    let instance;
    for (let i = 0; i < 10000; i++) {
      const wasi = new WASI({ version: P1, stdout: devNull });
      instance = wasi.instantiate(module);
      assert.equal(wasi.start(instance), 0);
    }
    const grown = openFds() - before;
    assert.ok(grown <= 5, `${grown} descriptors more than before the loop`);
    assert.ok(instance.exports.memory.buffer.byteLength > 0);
  });
});

test('[Symbol.dispose]() closes the descriptors a WASI holds, once; captured output stays readable', () => {
  withDevNull((devNull) => {
    const before = openFds();
    const wasi = new WASI({ version: P1, stdin: devNull, stdout: devNull, stderr: 'pipe' });
    assert.ok(openFds() > before, 'the WASI holds duplicates');
    wasi[Symbol.dispose]();
    assert.equal(openFds(), before);
    wasi[Symbol.dispose]();
    assert.equal(openFds(), before);
    assert.deepEqual(wasi.stderr, Buffer.alloc(0));
  });
});

test('after start() a V8 guest keeps its syscalls (no host descriptors); after [Symbol.dispose]() they return badf', () => {
  withDevNull((devNull) => {
    // What the first WASI of a process opens once (the runtime's own descriptors) is not
    // this object's: warm up first, so the test also holds when run alone.
    const warmUp = new WASI({ version: P1, stdout: devNull });
    warmUp.start(new WebAssembly.Instance(new WebAssembly.Module(fixture('hello.wasm')), warmUp.getImportObject()));
    const before = openFds();
    const wasi = new WASI({ version: P1, args: ['a', 'b'], stdout: devNull, stderr: 'pipe' });
    const { wasi_snapshot_preview1: wasiImport } = wasi.getImportObject();
    const instance = new WebAssembly.Instance(new WebAssembly.Module(fixture('hello.wasm')), wasi.getImportObject());
    assert.equal(wasi.start(instance), 0);
    assert.equal(openFds(), before, 'start() closed the duplicates');
    const memory = new Uint32Array(instance.exports.memory.buffer, 0, 4);
    assert.equal(wasiImport.args_sizes_get(0, 4), 0);
    assert.deepEqual([...memory.subarray(0, 2)], [2, 4]);
    // fd_write(1, iovs at 0: one iovec of 3 bytes at 16, 1 iovec, nwritten at 8): discarded
    memory.set([16, 3]);
    assert.equal(wasiImport.fd_write(1, 0, 1, 8), 0);
    assert.equal(wasiImport.fd_write(2, 0, 1, 8), 0);
    assert.equal(wasi.stderr.length, 3, 'captured output is still captured');
    wasi[Symbol.dispose]();
    assert.equal(wasiImport.fd_write(1, 0, 1, 8), 8);
    assert.equal(wasiImport.random_get(0, 8), 8);
  });
});

test('a WASI whose V8 command ended hands its native object to the next new WASI: each keeps its own state', () => {
  const hello = new WebAssembly.Module(fixture('hello.wasm'));
  const echo = new WebAssembly.Module(fixture('echo.wasm'));
  // The first object runs hello and ends; its native object then serves the second.
  const first = new WASI({ version: P1, args: ['first', 'x'], env: { WHO: 'first' }, stdout: 'pipe', stderr: 'pipe' });
  const firstInstance = new WebAssembly.Instance(hello, first.getImportObject());
  assert.equal(first.start(firstInstance), 0);
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'f.txt'), 'F');
  const second = new WASI({ version: P1, args: ['second', 'y', 'z'], env: { WHO: 'second' }, preopens: { '/d': dir }, stdin: Buffer.from('in'), stdout: 'pipe', stderr: 'pipe' });
  assert.throws(() => first.start(firstInstance), { code: 'ERR_WASI_ALREADY_STARTED' });
  assert.equal(second.start(new WebAssembly.Instance(echo, second.getImportObject())), 0);
  assert.deepEqual(second.stdout, echoReport({ args: ['second', 'y', 'z'], env: ['WHO=second'], stdin: Buffer.from('in'), preopens: [{ fd: 3, name: '/d', entries: ['f.txt'] }] }));
  // The first object's output and its late syscalls are its own: its arguments, its capture.
  assert.equal(first.stdout.toString(), 'hello world\n');
  const { wasi_snapshot_preview1: late } = first.getImportObject();
  const memory = new Uint32Array(firstInstance.exports.memory.buffer, 0, 4);
  assert.equal(late.args_sizes_get(0, 4), 0);
  assert.deepEqual([...memory.subarray(0, 2)], [2, 'first'.length + 1 + 'x'.length + 1], 'its own args');
  new Uint8Array(firstInstance.exports.memory.buffer).set(Buffer.from('abc'), 16);
  memory.set([16, 3]);
  assert.equal(late.fd_write(1, 0, 1, 8), 0);
  assert.equal(first.stdout.toString(), 'hello world\nabc', 'late output appends to what was captured');
  assert.equal(second.stdout.toString().includes('abc'), false, 'and never reaches the other object');
  first[Symbol.dispose]();
  assert.equal(late.fd_write(1, 0, 1, 8), 8, 'badf after dispose');
  // A native object that fails to take a new configuration stays usable for the next one.
  assert.throws(() => new WASI({ version: P1, preopens: { '/x': path.join(dir, 'missing') } }), { code: 'UVWASI_ENOENT' });
  const third = new WASI({ version: P1, args: ['third'], stdout: 'pipe' });
  assert.equal(third.start(new WebAssembly.Instance(hello, third.getImportObject())), 0);
  assert.equal(third.stdout.toString(), 'hello world\n');
  // dispose before anything late: the late syscalls are badf without reviving anything.
  third[Symbol.dispose]();
  assert.equal(third.wasiImport.random_get(0, 8), 8);
});

test('instantiate() and a disposed object after a handed-back V8 run behave as after release()', () => {
  const wasi = new WASI({ version: P1, args: ['a'], stdout: 'pipe' });
  assert.equal(wasi.start(new WebAssembly.Instance(new WebAssembly.Module(fixture('hello.wasm')), wasi.getImportObject())), 0);
  // An instance made now has the object's configuration without host descriptors; the object
  // is started, so it cannot start it.
  const instance = wasi.instantiate(fixture('hello.wasm'));
  assert.throws(() => wasi.start(instance), { code: 'ERR_WASI_ALREADY_STARTED' });
  assert.equal(wasi.stdout.toString(), 'hello world\n');
});

test('instances that are no longer reachable are freed: a loop of 1,000 keeps descriptors bounded', async () => {
  // Each instance holds duplicated stdio descriptors; before the exports object stopped being
  // pinned by a native reference, every instance leaked (two descriptors and its memory each).
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  const module = new lib.Module(fixture('hello.wasm'));
  const before = openFds();
  for (let i = 0; i < 1000; i++) {
    const wasi = new lib.WASI({ version: 'preview1', stdout: 'ignore' });
    const instance = wasi.instantiate(module);
    assert.equal(instance.exports.memory.byteLength > 0, true);
    assert.equal(wasi.start(instance), 0);
    if (i % 200 === 199) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const grown = openFds() - before;
  assert.ok(grown < 100, `${grown} descriptors more than before the loop`);
});

test('running out of descriptors is UVWASI_EMFILE, not a bad descriptor', () => {
  // A child with a low descriptor limit holds WASI objects until none can be made.
  const script = `
    const { WASI } = require(${JSON.stringify(libPath)});
    const held = [];
    try {
      for (;;) held.push(new WASI({ version: 'preview1' }));
    } catch (err) {
      process.stdout.write(JSON.stringify({ code: err.code, errno: err.errno, message: err.message, made: held.length > 0 }));
    }`;
  const child = spawnSync('bash', ['-c', 'ulimit -n 64 && exec "$0" -e "$1"', process.execPath, script], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  const report = JSON.parse(child.stdout);
  assert.equal(report.code, 'UVWASI_EMFILE');
  assert.equal(report.errno, 33);
  assert.equal(report.made, true);
  assert.match(report.message, /^UVWASI_EMFILE, uvwasi_init: cannot duplicate options\.std(in|out|err) \(fd [012]\): too many open files in the process$/);
});

// --- instance[Symbol.dispose]() ---------------------------------------------------------

test('instance[Symbol.dispose]() frees the store: buffers detach, every later use throws ERR_WASM_INSTANCE_DISPOSED', () => {
  const wasi = new WASI({ version: P1, stdout: 'pipe' });
  const instance = wasi.instantiate(new Module(fixture('hello.wasm')));
  const { memory, _start } = instance.exports;
  const buffer = memory.buffer;
  assert.ok(buffer.byteLength > 0);
  assert.equal(instance[Symbol.dispose], Instance.prototype[Symbol.dispose]);
  instance[Symbol.dispose]();
  assert.equal(buffer.byteLength, 0, 'the buffer over the freed memory is detached');
  const disposed = { code: 'ERR_WASM_INSTANCE_DISPOSED', message: /disposed/ };
  assert.throws(() => memory.buffer, disposed);
  assert.throws(() => memory.read(0, 4), disposed);
  assert.throws(() => memory.grow(1), disposed);
  assert.throws(() => _start(), disposed);
  assert.throws(() => wasi.start(instance), disposed);
  instance.dispose(); // idempotent, under either name
  instance[Symbol.dispose]();
  // Nothing was started: the same WASI starts a fresh instance.
  assert.equal(wasi.start(wasi.instantiate(new Module(fixture('hello.wasm')))), 0);
  assert.equal(wasi.stdout.toString(), 'hello world\n');
});

test('instance dispose closes what the guest holds: its preopens and stdio duplicates, before start', () => {
  const dir = tempDir();
  const module = new Module(fixture('hello.wasm'));
  withDevNull((devNull) => {
    // The module's memory image (a descriptor of its own) is made at its first instantiation.
    new WASI({ version: P1 }).instantiate(module)[Symbol.dispose]();
    const before = openFds();
    const instances = [];
    for (let i = 0; i < 20; i++) {
      const wasi = new WASI({ version: P1, stdout: devNull, preopens: { '/sandbox': dir } });
      instances.push(wasi.instantiate(module));
      wasi[Symbol.dispose]();
    }
    assert.ok(openFds() >= before + 20, 'each unstarted instance holds its own context');
    for (const instance of instances) instance[Symbol.dispose]();
    assert.equal(openFds(), before);
  });
});

test('dispose in a loop that never yields: 20,000 instantiate + start + dispose', () => {
  // Without dispose, each instance's store (memory reservation included) waits for a finalizer
  // that Node 20 runs only when the event loop turns.
  const module = new Module(fixture('hello.wasm'));
  withDevNull((devNull) => {
    const before = openFds();
    for (let i = 0; i < 20000; i++) {
      const wasi = new WASI({ version: P1, stdout: devNull });
      const instance = wasi.instantiate(module);
      assert.equal(wasi.start(instance), 0);
      instance[Symbol.dispose]();
    }
    assert.ok(openFds() - before <= 5);
  });
});

// A reactor that writes "hi\n" to stdout from an export (no _start, no _initialize).
const SAY_WAT = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hi\\n")
  (func (export "say")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`;

test('a loop that never yields keeps no native instance: dispose() frees it at once, collection later', async () => {
  const native = (await import('node:module')).createRequire(import.meta.url)('../index.js');
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  const collect = async () => {
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  await collect(); // what earlier tests left for the collector
  const module = new Module(fixture('hello.wasm'));
  const base = native.liveInstanceCount();
  withDevNull((devNull) => {
    for (let i = 0; i < 2000; i++) {
      const wasi = new WASI({ version: P1, stdout: devNull });
      const instance = wasi.instantiate(module);
      assert.equal(wasi.start(instance), 0);
      instance.dispose();
    }
    // Reading the exports: its functions are bound JS functions, its memory a JS object.
    for (let i = 0; i < 2000; i++) {
      const wasi = new WASI({ version: P1, stdout: devNull });
      const instance = wasi.instantiate(module);
      assert.equal(instance.exports._start(), undefined);
      assert.ok(instance.exports.memory.byteLength > 0);
      instance.dispose();
    }
  });
  assert.equal(native.liveInstanceCount(), base, 'every disposed instance is gone before the loop turns');
  // Not disposed: forgotten once the JS object is collected. One whose export is kept stays
  // alive and usable: an export function or memory holds its instance.
  // (Made in a function of their own: a suspended async function keeps its dead locals.)
  const wasi = new WASI({ version: P1, stdout: 'pipe' });
  const [say, memory] = (() => {
    const { exports } = wasi.instantiate(SAY_WAT);
    const other = new WASI({ version: P1, stdout: 'ignore' }).instantiate(SAY_WAT).exports.memory;
    for (let i = 2; i < 50; i++) new WASI({ version: P1, stdout: 'ignore' }).instantiate(SAY_WAT);
    return [exports.say, other];
  })();
  assert.equal(native.liveInstanceCount(), base + 50);
  await collect();
  assert.equal(native.liveInstanceCount(), base + 2, 'the 48 unreachable ones are forgotten');
  say.call({ not: 'the instance' });
  assert.equal(wasi.stdout.toString(), 'hi\n');
  assert.ok(memory instanceof Memory);
  assert.equal(Buffer.from(memory.buffer, 0, 8).length, 8);
  assert.equal(memory.read(16, 3).toString(), 'hi\n', 'the data segment of the instance it holds');
});

test('a WASI whose instances are all disposed after it started hands its native object on: each keeps its own output', () => {
  const module = new Module(SAY_WAT);
  const wasi = new WASI({ version: P1, stdout: 'pipe', limits: { timeout: 5000 } });
  const a = wasi.instantiate(module);
  const b = wasi.instantiate(module);
  wasi.initialize(a); // no _initialize: only marks the object started
  a.exports.say();
  a.dispose();
  b.exports.say(); // b still writes to this object's capture
  assert.equal(wasi.stdout.toString(), 'hi\nhi\n');
  b.dispose();
  assert.equal(wasi.stdout.toString(), 'hi\nhi\n', 'what was captured stays readable');
  // The next WASI may get the native object: its configuration and output are its own.
  const next = new WASI({ version: P1, args: ['next', 'arg'], stdin: Buffer.from('in'), stdout: 'pipe' });
  assert.equal(next.start(next.instantiate(fixture('echo.wasm'))), 0);
  assert.deepEqual(next.stdout, echoReport({ args: ['next', 'arg'], stdin: Buffer.from('in') }));
  assert.equal(wasi.stdout.toString(), 'hi\nhi\n');
  // The first object stays started; an instance made now runs its exports, output appending.
  const late = wasi.instantiate(module);
  assert.throws(() => wasi.initialize(late), { code: 'ERR_WASI_ALREADY_STARTED' });
  late.exports.say();
  assert.equal(wasi.stdout.toString(), 'hi\nhi\nhi\n');
  late.dispose();
  assert.equal(next.stdout.includes('hi'), false);
  // Not started: disposing its instance leaves the object as it was, ready to start another.
  const unstarted = new WASI({ version: P1, stdout: 'pipe' });
  unstarted.instantiate(fixture('hello.wasm')).dispose();
  assert.equal(unstarted.start(unstarted.instantiate(fixture('hello.wasm'))), 0);
  assert.equal(unstarted.stdout.toString(), 'hello world\n');
});

test('Instance has no public constructor; instance.module is the module it was made from', async () => {
  assert.throws(() => new Instance(), { name: 'TypeError', code: 'ERR_ILLEGAL_CONSTRUCTOR' });
  const module = new Module(fixture('hello.wasm'));
  const wasi = new WASI({ version: P1, stdout: 'ignore' });
  const instance = wasi.instantiate(module);
  assert.equal(instance.module, module);
  assert.equal(instance.kind, 'module');
  assert.ok(instance instanceof Instance);
  // Something merely made to look like one is not run as one.
  const forged = Object.create(Instance.prototype);
  assert.throws(() => wasi.start(forged), TypeError);
  await assert.rejects(wasi.startAsync(forged), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(wasi.start(instance), 0);
  instance.dispose();
  assert.equal(instance.module, module, 'still known after dispose');
});

test('dispose is refused while the guest runs (startAsync) or from its own host call', async () => {
  const wasi = new WASI({ version: P1 });
  const { ENDLESS_WAT } = await import('./helpers.mjs');
  const instance = wasi.instantiate(new Module(ENDLESS_WAT));
  const controller = new AbortController();
  const running = wasi.startAsync(instance, { signal: controller.signal });
  assert.throws(() => instance[Symbol.dispose](), { code: 'ERR_WASI_BUSY' });
  controller.abort();
  await assert.rejects(running, { code: 'ABORT_ERR' });
  instance[Symbol.dispose]();
  assert.throws(() => instance.exports.peek(), { code: 'ERR_WASM_INSTANCE_DISPOSED' });

  const other = new WASI({ version: P1 });
  let inner;
  const guest = other.instantiate(new Module(`(module
    (import "host" "call" (func $call))
    (memory (export "memory") 1)
    (func (export "_start") (call $call)))`), {
    host: { call: () => { try { guest[Symbol.dispose](); } catch (err) { inner = err; } } },
  });
  assert.equal(other.start(guest), 0);
  assert.equal(inner?.code, 'ERR_WASI_BUSY');
  guest[Symbol.dispose]();
});

test('a component instance is disposed the same way', () => {
  const wasi = new WASI({ version: 'preview2', stdout: 'pipe' });
  const instance = wasi.instantiate(new Module(fixture('components/hello.wasm')));
  instance[Symbol.dispose]();
  assert.throws(() => wasi.start(instance), { code: 'ERR_WASM_INSTANCE_DISPOSED' });
});

test('the first new WASI warns as node:wasi does, once per process; runWasmSync does not', () => {
  const warning = 'ExperimentalWarning: WASI is an experimental feature and might change at any time';
  const warnings = (script, flags = []) => {
    const child = spawnSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    return child.stderr.split('\n').filter((line) => line.includes('ExperimentalWarning')).map((line) => line.replace(/^\(node:\d+\) /, ''));
  };
  const twice = (lib) => `const { WASI } = require(${JSON.stringify(lib)});
    new WASI({ version: 'preview1' }); new WASI({ version: 'preview1' });`;
  assert.deepEqual(warnings(twice(libPath)), [warning]);
  assert.deepEqual(warnings(twice('node:wasi')), [warning], 'node:wasi');
  assert.deepEqual(warnings(twice(libPath), ['--disable-warning=ExperimentalWarning']), [], 'silenced as node:wasi\'s is');
  // A type error in the options still warns first, as node:wasi has warned by then.
  assert.deepEqual(warnings(`const { WASI } = require(${JSON.stringify(libPath)});
    try { new WASI({ version: 'preview1', args: 'x' }); } catch (e) { if (e.code !== 'ERR_INVALID_ARG_TYPE') throw e; }`), [warning]);
  const quiet = `const { runWasmSync } = require(${JSON.stringify(libPath)});
    runWasmSync('(module (memory (export "memory") 1) (func (export "_start")))');`;
  assert.deepEqual(warnings(quiet), [], 'runWasmSync');
});
