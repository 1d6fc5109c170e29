// Components: `wasi:cli/run` under the start-once guard, exit-code rules, fresh instances per
// runWasm call, stdio/args/env/preopens/traps matching the same C program run as a core
// module, version rules, the "not a command" error, and exports called from JS.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  lib, fixture, fixturePath, tempDir, assertCode, snapshot, echoReport, errPrefixed,
} from './helpers.mjs';

const { WASI, Module, Instance, runWasm, runWasmSync } = lib;

const component = (name) => fixture(`components/${name}.wasm`);
const HELLO = new Module(component('hello'));
const ECHO = new Module(component('echo'));
const COUNTER = new Module(component('counter'));
const EXITCODE = new Module(component('exitcode'));
const EXIT_WITH_CODE = new Module(component('exit-with-code'));
const TRAP = new Module(component('trap'));
const FS = new Module(component('fs'));
const WRITES = new Module(component('writes'));
const NO_RUN = new Module(component('no-run'));

const RUN = /^wasi:cli\/run@0\.2\.\d+$/;

/** A command component and its `WASI` object, with stdout and stderr captured. */
function started(module, options = {}) {
  const wasi = new WASI({ version: 'preview2', stdout: 'pipe', stderr: 'pipe', ...options });
  const instance = wasi.instantiate(module);
  return { wasi, instance, exitCode: wasi.start(instance) };
}

test('components report kind "component" and their WASI imports and exports', () => {
  for (const module of [HELLO, ECHO, NO_RUN]) assert.equal(module.kind, 'component');
  assert.ok(HELLO.exports().some((e) => RUN.test(e.name) && e.kind === 'instance'));
  assert.ok(HELLO.imports().some((i) => /^wasi:cli\/stdout@0\.2\./.test(i.name) && i.kind === 'instance'));
  assert.deepEqual(NO_RUN.exports(), [{ name: 'add', kind: 'function', type: 'func(a: s32, b: s32) -> s32' }]);
  assert.ok(EXIT_WITH_CODE.imports().some((i) => i.name === 'wasi:cli/exit@0.2.12'));
  const wasi = new WASI({ version: 'preview2' });
  assert.equal(wasi.instantiate(HELLO).kind, 'component');
  assert.equal(new WASI({ version: 'preview1' }).instantiate(fixture('hello.wasm')).kind, 'module');
});

test('wasi.start() runs wasi:cli/run once and returns 0', () => {
  const { wasi, exitCode } = started(HELLO);
  assert.equal(exitCode, 0);
  assert.deepEqual(wasi.stdout, Buffer.from('hello world\n'));
  assert.deepEqual(wasi.stderr, Buffer.alloc(0));
});

test('a second start() or initialize() throws ERR_WASI_ALREADY_STARTED before guest code runs', () => {
  const { wasi, instance } = started(COUNTER);
  assert.deepEqual(wasi.stdout, Buffer.from('1\n'));
  assert.throws(() => wasi.start(instance), assertCode('ERR_WASI_ALREADY_STARTED'));
  assert.throws(() => wasi.initialize(instance), assertCode('ERR_WASI_ALREADY_STARTED'));
  // Through the export itself: the same flag, so no "unreachable instruction executed" trap.
  const run = Object.entries(instance.exports).find(([name]) => RUN.test(name))[1].run;
  assert.throws(() => run(), assertCode('ERR_WASI_ALREADY_STARTED'));
  // A second instance of the same WASI object is refused too: the flag is per WASI object.
  assert.throws(() => wasi.start(wasi.instantiate(COUNTER)), assertCode('ERR_WASI_ALREADY_STARTED'));
  assert.deepEqual(wasi.stdout, Buffer.from('1\n'), 'no guest code ran again');
});

test('calling wasi:cli/run#run through exports marks the WASI object started', () => {
  const wasi = new WASI({ version: 'preview2', stdout: 'pipe' });
  const instance = wasi.instantiate(COUNTER);
  const run = Object.entries(instance.exports).find(([name]) => RUN.test(name))[1].run;
  assert.deepEqual(run(), { tag: 'ok', val: undefined });
  assert.throws(() => wasi.start(instance), assertCode('ERR_WASI_ALREADY_STARTED'));
  assert.deepEqual(wasi.stdout, Buffer.from('1\n'));
});

test('exit codes: ok is 0, the adapter reports any proc_exit(n != 0) as 1, exit-with-code(n) is n', async () => {
  assert.equal(started(EXITCODE, { args: ['exitcode', '7', 'proc_exit'] }).exitCode, 1);
  assert.equal(started(EXITCODE, { args: ['exitcode', '0', 'proc_exit'] }).exitCode, 0);
  for (const n of [0, 1, 7, 42, 255]) {
    const { wasi, exitCode } = started(EXIT_WITH_CODE, { args: ['exit-with-code', String(n)] });
    assert.equal(exitCode, n);
    assert.deepEqual(wasi.stdout, Buffer.from(`exiting with code ${n}\n`));
    const sync = runWasmSync(EXIT_WITH_CODE, { args: ['exit-with-code', String(n)] });
    assert.equal(sync.exitCode, n);
    assert.deepEqual(sync.stdout, Buffer.from(`exiting with code ${n}\n`));
    assert.equal((await runWasm(EXIT_WITH_CODE, { args: ['exit-with-code', String(n)] })).exitCode, n);
  }
  // exit-with-code takes a u8: the fixture passes n & 0xff.
  assert.equal(runWasmSync(EXIT_WITH_CODE, { args: ['x', '300'] }).exitCode, 44);
  assert.equal(runWasmSync(EXIT_WITH_CODE).exitCode, 42);
});

test('runWasmSync: the counter component prints 1 on each of 100 runs (fresh instance per run)', () => {
  for (let i = 0; i < 100; i++) {
    const result = runWasmSync(COUNTER);
    assert.equal(result.exitCode, 0);
    assert.deepEqual(result.stdout, Buffer.from('1\n'), `run ${i}`);
  }
  // Bytes rather than a Module: compiled once through the cache, still a fresh instance.
  const bytes = component('counter');
  for (let i = 0; i < 10; i++) assert.deepEqual(runWasmSync(bytes).stdout, Buffer.from('1\n'));
});

test('args, env, stdin and preopens reach a component exactly as they reach the core module', () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'b.txt'), 'B');
  fs.mkdirSync(path.join(dir, 'sub'));
  const options = {
    args: ['echo', 'héllo wörld', '', 'a b'],
    env: { PATH: '/bin', EMPTY: '', 'K=V': 'x' },
    stdin: Buffer.from('line 1\nline 2\0binary\xff'),
    preopens: { '/sandbox': dir },
  };
  const expected = echoReport({
    args: options.args,
    env: ['PATH=/bin', 'EMPTY=', 'K=V=x'],
    stdin: options.stdin,
    preopens: [{ fd: 3, name: '/sandbox', entries: ['b.txt', 'sub'] }],
  });
  const core = runWasmSync(fixture('echo.wasm'), options);
  const comp = runWasmSync(ECHO, options);
  assert.deepEqual(core.stdout, expected);
  assert.deepEqual(comp.stdout, expected);
  assert.deepEqual(comp.stderr, errPrefixed(expected));
  assert.equal(comp.exitCode, 0);
  // The same through the WASI class (stdin as data, captured output).
  const { wasi, exitCode } = started(ECHO, options);
  assert.equal(exitCode, 0);
  assert.deepEqual(wasi.stdout, expected);
  assert.deepEqual(wasi.stderr, errPrefixed(expected));
});

test('files written by a component land on disk; escapes are refused; nothing outside changes', () => {
  const root = tempDir();
  const dir = path.join(root, 'sandbox');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(root, 'secret'), 'keep');
  const run = (...args) => runWasmSync(FS, { args: ['fs', ...args], preopens: { '/data': dir } });
  const wrote = run('write', '/data/out.txt', 'from a component');
  assert.equal(wrote.exitCode, 0);
  assert.deepEqual(wrote.stdout, Buffer.from('wrote 16\n'));
  assert.equal(fs.readFileSync(path.join(dir, 'out.txt'), 'utf8'), 'from a component');
  assert.deepEqual(run('read', '/data/out.txt').stdout, Buffer.from('from a component'));
  for (const escape of ['/data/../secret', '/secret', '/data/../../etc/passwd']) {
    const result = run('read', escape);
    assert.equal(result.exitCode, 1, escape);
    // WASI 0.2 has no "not capable": where the host refuses the escape, a component is told
    // `not-permitted` (EPERM, 63, through the preview1 adapter inside it) and the core module
    // ENOTCAPABLE (76, as with node:wasi); where wasi-libc refuses it (no preopen matches),
    // both say 76.
    const core = runWasmSync(fixture('fs.wasm'), { args: ['fs', 'read', escape], preopens: { '/data': dir } });
    const coreText = core.stdout.toString();
    assert.match(coreText, /errno=76 \(Capabilities insufficient\)/, escape);
    const asEperm = coreText.replace('errno=76 (Capabilities insufficient)', 'errno=63 (Operation not permitted)');
    assert.ok([coreText, asEperm].includes(result.stdout.toString()), `${escape}: ${result.stdout}`);
  }
  assert.deepEqual(run('symlink', '../secret', '/data/link').stdout, Buffer.from('ok\n'));
  assert.equal(run('read', '/data/link').exitCode, 1);
  assert.deepEqual(snapshot(root), {
    sandbox: { dir: { 'out.txt': { file: 'from a component' }, link: { symlink: '../secret' } } },
    secret: { file: 'keep' },
  });
});

test('stdout and stderr to host fds, and large outputs, are byte-exact', () => {
  const dir = tempDir();
  const out = fs.openSync(path.join(dir, 'out'), 'w');
  const err = fs.openSync(path.join(dir, 'err'), 'w');
  try {
    const wasi = new WASI({ version: 'preview2', args: ['echo', 'x'], stdin: Buffer.alloc(0), stdout: out, stderr: err });
    assert.equal(wasi.start(wasi.instantiate(ECHO)), 0);
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
  }
  const expected = echoReport({ args: ['echo', 'x'] });
  assert.deepEqual(fs.readFileSync(path.join(dir, 'out')), expected);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'err')), errPrefixed(expected));
  const args = ['writes', '20000'];
  const core = runWasmSync(fixture('writes.wasm'), { args });
  const comp = runWasmSync(WRITES, { args });
  assert.ok(core.stdout.length > 0);
  assert.deepEqual(comp.stdout, core.stdout);
  assert.deepEqual(comp.stderr, core.stderr);
  assert.equal(comp.exitCode, core.exitCode);
});

function assertTrap(err) {
  assert.ok(err instanceof WebAssembly.RuntimeError, String(err));
  assert.equal(err.code, 'ERR_WASM_TRAP');
  assert.equal(err.trapCode, 'unreachable');
  assert.match(err.message, /crash_here/);
  assert.deepEqual(err.stdout, Buffer.from('before trap\n'));
  return true;
}

test('a trapping component: ERR_WASM_TRAP with trapCode and the output so far', async () => {
  assert.throws(() => runWasmSync(TRAP), assertTrap);
  await assert.rejects(runWasm(TRAP), assertTrap);
  const wasi = new WASI({ version: 'preview2', stdout: 'pipe' });
  const instance = wasi.instantiate(TRAP);
  assert.throws(() => wasi.start(instance), (err) => err.code === 'ERR_WASM_TRAP' && err.trapCode === 'unreachable');
  assert.deepEqual(wasi.stdout, Buffer.from('before trap\n'));
  assert.throws(() => wasi.start(instance), assertCode('ERR_WASI_ALREADY_STARTED'));
});

test('runWasm runs components in parallel, each with its own instance and output', async () => {
  const runs = Array.from({ length: 16 }, (_, i) => runWasm(ECHO, { args: ['echo', `run ${i}`], stdin: `input ${i}` }));
  const results = await Promise.all(runs);
  results.forEach((result, i) => {
    assert.equal(result.exitCode, 0);
    assert.deepEqual(result.stdout, echoReport({ args: ['echo', `run ${i}`], stdin: `input ${i}` }));
  });
  const counters = await Promise.all(Array.from({ length: 16 }, () => runWasm(COUNTER)));
  for (const result of counters) assert.deepEqual(result.stdout, Buffer.from('1\n'));
});

test('a component without wasi:cli/run: start() names the export and points at initialize()', () => {
  const wasi = new WASI({ version: 'preview2' });
  const instance = wasi.instantiate(NO_RUN);
  assert.throws(() => wasi.start(instance), (err) => {
    assert.ok(err instanceof TypeError);
    assert.equal(err.code, 'ERR_INVALID_ARG_TYPE');
    assert.match(err.message, /does not export wasi:cli\/run/);
    assert.match(err.message, /wasi\.initialize\(instance\)/);
    return true;
  });
  // Refused before anything was marked started: initialize() still works, then its exports.
  assert.equal(wasi.initialize(instance), undefined);
  assert.equal(instance.exports.add(40, 2), 42);
  assert.equal(instance.exports.add(-5, 3), -2);
  assert.throws(() => wasi.initialize(instance), assertCode('ERR_WASI_ALREADY_STARTED'));
  assert.throws(() => runWasmSync(NO_RUN), assertCode('ERR_INVALID_ARG_VALUE'));
  return assert.rejects(runWasm(NO_RUN), assertCode('ERR_INVALID_ARG_VALUE'));
});

test('initialize() of a command component is refused and leaves the WASI object unstarted', () => {
  const wasi = new WASI({ version: 'preview2', stdout: 'pipe' });
  const instance = wasi.instantiate(HELLO);
  assert.throws(() => wasi.initialize(instance), (err) => {
    assert.equal(err.code, 'ERR_INVALID_ARG_TYPE');
    assert.match(err.message, /wasi\.start\(instance\)/);
    return true;
  });
  assert.equal(wasi.start(instance), 0);
  assert.deepEqual(wasi.stdout, Buffer.from('hello world\n'));
});

test("version: 'preview2' and 'preview1' run components; mismatches get ERR_WASI_VERSION_MISMATCH", async () => {
  assert.equal(started(HELLO, { version: 'preview1' }).exitCode, 0);
  const p2 = new WASI({ version: 'preview2' });
  assert.throws(() => p2.instantiate(fixture('hello.wasm')), assertCode('ERR_WASI_VERSION_MISMATCH'));
  assert.throws(() => p2.getImportObject(), assertCode('ERR_WASI_VERSION_MISMATCH'));
  // A guest V8 instantiated some other way is refused too, before anything is marked started.
  const v8 = await WebAssembly.instantiate(fixture('hello.wasm'), new WASI({ version: 'preview1' }).getImportObject());
  assert.throws(() => p2.start(v8.instance), assertCode('ERR_WASI_VERSION_MISMATCH'));
  assert.equal(p2.start(p2.instantiate(HELLO)), 0);
  const unstable = new WASI({ version: 'unstable' });
  assert.throws(() => unstable.instantiate(HELLO), assertCode('ERR_WASI_VERSION_MISMATCH'));
  // runWasm has no version: it runs whatever it is given.
  assert.deepEqual(runWasmSync(HELLO).stdout, Buffer.from('hello world\n'));
});

test('an instance from another WASI object is refused', () => {
  const a = new WASI({ version: 'preview2' });
  const b = new WASI({ version: 'preview2' });
  assert.throws(() => b.start(a.instantiate(HELLO)), assertCode('ERR_INVALID_ARG_VALUE'));
  assert.ok(a.instantiate(HELLO) instanceof Instance);
});

test('returnOnExit: false ends the process with the component exit code', () => {
  for (const n of [0, 3, 200]) {
    const result = spawnSync(process.execPath, ['-e', `
      const { WASI, Module } = require(${JSON.stringify(path.resolve('lib/index.js'))});
      process.on('exit', () => console.log('exit event'));
      const wasi = new WASI({ version: 'preview2', args: ['x', '${n}'], returnOnExit: false });
      wasi.start(wasi.instantiate(new Module(require('fs').readFileSync(${JSON.stringify(fixturePath('components/exit-with-code.wasm'))}))));
      console.log('not reached');`], { encoding: 'utf8' });
    assert.equal(result.status, n, result.stderr);
    assert.equal(result.stdout, `exiting with code ${n}\n`);
  }
});

test('returnOnExit: false with startAsync: the JS thread ends the process with the exit code', () => {
  for (const n of [3, 200]) {
    const result = spawnSync(process.execPath, ['-e', `
      const { WASI, Module } = require(${JSON.stringify(path.resolve('lib/index.js'))});
      process.on('exit', () => console.log('exit event'));
      const wasi = new WASI({ version: 'preview2', args: ['x', '${n}'], returnOnExit: false });
      const instance = wasi.instantiate(new Module(require('fs').readFileSync(${JSON.stringify(fixturePath('components/exit-with-code.wasm'))})));
      wasi.startAsync(instance).then(() => console.log('resolved'), () => console.log('rejected'));
      setInterval(() => {}, 1000);`], { encoding: 'utf8' });
    assert.equal(result.status, n, result.stderr);
    assert.equal(result.signal, null);
    assert.equal(result.stdout, `exiting with code ${n}\n`);
  }
});
