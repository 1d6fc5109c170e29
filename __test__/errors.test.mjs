// The error table: ERR_WASM_LINK for unresolved or mistyped imports (runWasm and
// wasi.instantiate), ERR_WASM_TRAP with its trapCode for each kind of trap (and the process
// surviving them), ERR_WASI_ALREADY_STARTED raised before any guest code runs, and results
// that do not depend on RUST_BACKTRACE / RUST_LIB_BACKTRACE.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lib, fixture, fixturePath, tempDir, assertCode } from './helpers.mjs';

const { WASI, Module, Instance, runWasm, runWasmSync } = lib;

const HELLO = fixture('hello.wasm');
const COUNTER = fixture('counter.wasm');
const EMPTY = Buffer.alloc(0);


const wasiPiped = () => new WASI({ version: 'preview1', stdout: 'pipe', stderr: 'pipe' });

// --- ERR_WASM_LINK --------------------------------------------------------------------

const UNKNOWN_IMPORT = '(module (import "env" "nope" (func)) (func (export "_start")))';
const MISTYPED_IMPORT = `(module
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i64)))
  (memory (export "memory") 1)
  (func (export "_start")))`;
const UNKNOWN_WASI_FUNC = `(module
  (import "wasi_snapshot_preview1" "no_such_call" (func))
  (memory (export "memory") 1)
  (func (export "_start")))`;

function assertLink(...reasons) {
  return (err) => {
    assertCode('ERR_WASM_LINK')(err);
    assert.ok(!(err instanceof TypeError) && !(err instanceof WebAssembly.RuntimeError));
    for (const reason of reasons) {
      assert.ok(err.message.includes(reason), `message ${JSON.stringify(err.message)} lacks ${reason}`);
    }
    return true;
  };
}

test('runWasmSync: an unknown import fails with ERR_WASM_LINK naming it', () => {
  assert.throws(() => runWasmSync(UNKNOWN_IMPORT), assertLink('nope'));
  assert.throws(() => runWasmSync(new Module(UNKNOWN_IMPORT)), assertLink('nope'));
});

test('runWasm: an unknown import rejects with ERR_WASM_LINK', async () => {
  await assert.rejects(runWasm(UNKNOWN_IMPORT), assertLink('nope'));
});

test('wasi.instantiate: an unknown import throws ERR_WASM_LINK', () => {
  const wasi = wasiPiped();
  assert.throws(() => wasi.instantiate(UNKNOWN_IMPORT), assertLink('nope'));
  assert.throws(() => wasi.instantiate(new Module(UNKNOWN_IMPORT)), assertLink('nope'));
  // Nothing was started by the failed instantiation: the same WASI still runs a command.
  const instance = wasi.instantiate(HELLO);
  assert.equal(wasi.start(instance), 0);
  assert.deepEqual(wasi.stdout, Buffer.from('hello world\n'));
});

test('an unknown WASI function and a mistyped WASI import fail with ERR_WASM_LINK', async () => {
  assert.throws(() => runWasmSync(UNKNOWN_WASI_FUNC), assertLink('no_such_call'));
  assert.throws(() => runWasmSync(MISTYPED_IMPORT), assertLink());
  await assert.rejects(runWasm(MISTYPED_IMPORT), assertLink());
  assert.throws(() => wasiPiped().instantiate(MISTYPED_IMPORT), assertLink());
  assert.throws(() => wasiPiped().instantiate(UNKNOWN_WASI_FUNC), assertLink('no_such_call'));
});

test('a link error is reported on every run of the same Module (not cached as success)', () => {
  const mod = new Module(UNKNOWN_IMPORT);
  for (let i = 0; i < 3; i++) assert.throws(() => runWasmSync(mod), assertLink('nope'), `run ${i}`);
});

// --- ERR_WASM_TRAP --------------------------------------------------------------------

const TRAPS = [
  ['unreachable', '(module (memory (export "memory") 1) (func (export "_start") unreachable))'],
  ['integer_division_by_zero',
    '(module (memory (export "memory") 1) (func (export "_start") (drop (i32.div_s (i32.const 1) (i32.const 0)))))'],
  ['integer_overflow',
    '(module (memory (export "memory") 1) (func (export "_start") (drop (i32.div_s (i32.const -2147483648) (i32.const -1)))))'],
  ['memory_out_of_bounds',
    '(module (memory (export "memory") 1) (func (export "_start") (drop (i32.load (i32.const 70000)))))'],
  ['stack_overflow',
    '(module (memory (export "memory") 1) (func $recurse (export "_start") (call $recurse)))'],
];

function assertTrap(trapCode) {
  return (err) => {
    assert.ok(err instanceof WebAssembly.RuntimeError,
      `expected WebAssembly.RuntimeError, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'RuntimeError');
    assert.equal(err.code, 'ERR_WASM_TRAP');
    assert.equal(err.trapCode, trapCode);
    return true;
  };
}

for (const [trapCode, wat] of TRAPS) {
  test(`trap ${trapCode}: runWasmSync throws, runWasm rejects, wasi.start throws`, async () => {
    assert.throws(() => runWasmSync(wat), assertTrap(trapCode));
    await assert.rejects(runWasm(wat), assertTrap(trapCode));
    const wasi = wasiPiped();
    const instance = wasi.instantiate(wat);
    assert.throws(() => wasi.start(instance), assertTrap(trapCode));
    // The process (and the engine) survived: a normal run still works.
    const result = runWasmSync(HELLO);
    assert.equal(result.exitCode, 0);
    assert.deepEqual(result.stdout, Buffer.from('hello world\n'));
  });
}

test('the stack_overflow trap can be hit repeatedly, sync and async, and the process survives', async () => {
  const wat = TRAPS.find(([code]) => code === 'stack_overflow')[1];
  const mod = new Module(wat);
  for (let i = 0; i < 5; i++) assert.throws(() => runWasmSync(mod), assertTrap('stack_overflow'), `sync ${i}`);
  const settled = await Promise.allSettled(Array.from({ length: 8 }, () => runWasm(mod)));
  for (const outcome of settled) {
    assert.equal(outcome.status, 'rejected');
    assertTrap('stack_overflow')(outcome.reason);
  }
  assert.deepEqual(runWasmSync(HELLO).stdout, Buffer.from('hello world\n'));
  assert.deepEqual((await runWasm(HELLO)).stdout, Buffer.from('hello world\n'));
});

test('a trap in a start section at instantiation is ERR_WASM_TRAP, not ERR_WASM_LINK', () => {
  const wat = '(module (memory (export "memory") 1) (func $s unreachable) (start $s) (func (export "_start")))';
  assert.throws(() => runWasmSync(wat), assertTrap('unreachable'));
  assert.throws(() => wasiPiped().instantiate(wat), assertTrap('unreachable'));
});

test('a trap in an export called after initialize() is ERR_WASM_TRAP; the instance stays usable', () => {
  const wat = `(module
    (memory (export "memory") 1)
    (func (export "_initialize"))
    (func (export "boom") unreachable)
    (func (export "div") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1))))`;
  const wasi = wasiPiped();
  const instance = wasi.instantiate(wat);
  wasi.initialize(instance);
  assert.throws(() => instance.exports.boom(), assertTrap('unreachable'));
  assert.throws(() => instance.exports.div(1, 0), assertTrap('integer_division_by_zero'));
  assert.equal(instance.exports.div(7, 2), 3);
});

test('a trap error carries the output written before the trap', () => {
  assert.throws(() => runWasmSync(fixture('trap.wasm')), (err) => {
    assertTrap('unreachable')(err);
    assert.deepEqual(err.stdout, Buffer.from('before trap\n'));
    assert.deepEqual(err.stderr, EMPTY);
    assert.ok(err.message.includes('crash_here'), err.message);
    return true;
  });
});

// --- ERR_WASI_ALREADY_STARTED ---------------------------------------------------------

const assertStarted = assertCode('ERR_WASI_ALREADY_STARTED');

// A reactor whose _initialize counts its runs, to see whether guest code ran again.
const COUNTING_REACTOR = `(module
  (memory (export "memory") 1)
  (global $runs (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $runs (i32.add (global.get $runs) (i32.const 1))))
  (func (export "runs") (result i32) (global.get $runs)))`;

test('second wasi.start() on the same instance throws before guest code runs', () => {
  const wasi = wasiPiped();
  const instance = wasi.instantiate(COUNTER);
  assert.ok(instance instanceof Instance);
  assert.equal(wasi.start(instance), 0);
  assert.deepEqual(wasi.stdout, Buffer.from('1\n'));
  assert.throws(() => wasi.start(instance), assertStarted);
  assert.throws(() => wasi.start(instance), assertStarted);
  // counter would have printed "2\n" had its _start run again.
  assert.deepEqual(wasi.stdout, Buffer.from('1\n'));
  assert.deepEqual(wasi.stderr, EMPTY);
});

test('wasi.start() of a second instance of the same WASI throws before guest code runs', () => {
  const wasi = wasiPiped();
  assert.equal(wasi.start(wasi.instantiate(COUNTER)), 0);
  const second = wasi.instantiate(HELLO);
  assert.throws(() => wasi.start(second), assertStarted);
  assert.deepEqual(wasi.stdout, Buffer.from('1\n'));
});

test('second wasi.initialize() throws before _initialize runs again', () => {
  const wasi = wasiPiped();
  const instance = wasi.instantiate(COUNTING_REACTOR);
  assert.equal(instance.exports.runs(), 0);
  assert.equal(wasi.initialize(instance), undefined);
  assert.equal(instance.exports.runs(), 1);
  assert.throws(() => wasi.initialize(instance), assertStarted);
  assert.equal(instance.exports.runs(), 1);
});

test('wasi.start() after wasi.initialize() throws before the command runs', () => {
  const wasi = wasiPiped();
  wasi.initialize(wasi.instantiate(COUNTING_REACTOR));
  const command = wasi.instantiate(HELLO);
  assert.throws(() => wasi.start(command), assertStarted);
  assert.deepEqual(wasi.stdout, EMPTY);
});

test('wasi.initialize() after wasi.start() throws before _initialize runs', () => {
  const wasi = wasiPiped();
  assert.equal(wasi.start(wasi.instantiate(HELLO)), 0);
  const reactor = wasi.instantiate(COUNTING_REACTOR);
  assert.throws(() => wasi.initialize(reactor), assertStarted);
  assert.equal(reactor.exports.runs(), 0);
  assert.deepEqual(wasi.stdout, Buffer.from('hello world\n'));
});

test('instance.exports._start() after wasi.start() throws ERR_WASI_ALREADY_STARTED', () => {
  const wasi = wasiPiped();
  const instance = wasi.instantiate(COUNTER);
  assert.equal(wasi.start(instance), 0);
  assert.equal(typeof instance.exports._start, 'function');
  assert.throws(() => instance.exports._start(), assertStarted);
  assert.deepEqual(wasi.stdout, Buffer.from('1\n'));
  // A second instance of the same WASI is blocked too.
  assert.throws(() => wasi.instantiate(COUNTER).exports._start(), assertStarted);
  assert.deepEqual(wasi.stdout, Buffer.from('1\n'));
});

test('instance.exports._initialize() after wasi.initialize() throws ERR_WASI_ALREADY_STARTED', () => {
  const wasi = wasiPiped();
  const instance = wasi.instantiate(COUNTING_REACTOR);
  wasi.initialize(instance);
  assert.throws(() => instance.exports._initialize(), assertStarted);
  assert.equal(instance.exports.runs(), 1);
});

test('calling exports._start() directly counts as the start: wasi.start() then throws', () => {
  const wasi = wasiPiped();
  const instance = wasi.instantiate(COUNTER);
  assert.equal(instance.exports._start(), undefined);
  assert.deepEqual(wasi.stdout, Buffer.from('1\n'));
  assert.throws(() => wasi.start(instance), assertStarted);
  assert.throws(() => instance.exports._start(), assertStarted);
  assert.deepEqual(wasi.stdout, Buffer.from('1\n'));
});

test('a start that trapped still counts as started', () => {
  const wasi = wasiPiped();
  const instance = wasi.instantiate(fixture('trap.wasm'));
  assert.throws(() => wasi.start(instance), assertTrap('unreachable'));
  assert.deepEqual(wasi.stdout, Buffer.from('before trap\n'));
  assert.throws(() => wasi.start(instance), assertStarted);
  assert.deepEqual(wasi.stdout, Buffer.from('before trap\n'));
});

test('separate WASI objects start independently', () => {
  for (let i = 0; i < 3; i++) {
    const wasi = wasiPiped();
    assert.equal(wasi.start(wasi.instantiate(COUNTER)), 0);
    assert.deepEqual(wasi.stdout, Buffer.from('1\n'));
  }
});

// --- RUST_BACKTRACE does not change results -------------------------------------------

const libPath = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lib', 'index.js');

// Runs in a child process and prints one JSON document describing every outcome.
const CHILD_SCRIPT = `
'use strict';
const fs = require('node:fs');
const { WASI, runWasmSync } = require(${JSON.stringify(libPath)});
const exitcode = fs.readFileSync(${JSON.stringify(fixturePath('exitcode.wasm'))});
const trap = fs.readFileSync(${JSON.stringify(fixturePath('trap.wasm'))});
const hello = fs.readFileSync(${JSON.stringify(fixturePath('hello.wasm'))});
const out = [];
const describe = (fn) => {
  try {
    const r = fn();
    return { exitCode: r.exitCode, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') };
  } catch (e) {
    return {
      error: e.constructor.name, code: e.code, trapCode: e.trapCode, message: e.message,
      stdout: e.stdout && e.stdout.toString('latin1'), stderr: e.stderr && e.stderr.toString('latin1'),
    };
  }
};
for (const mode of ['proc_exit', 'exit', 'return']) {
  for (const n of ['0', '3', '120', '200', '300', '-1']) {
    out.push(describe(() => runWasmSync(exitcode, { args: ['exitcode', n, mode] })));
  }
}
out.push(describe(() => runWasmSync(hello)));
out.push(describe(() => runWasmSync(trap)));
out.push(describe(() => runWasmSync(${JSON.stringify(TRAPS[1][1])})));
out.push(describe(() => runWasmSync(${JSON.stringify(UNKNOWN_IMPORT)})));
const wasi = new WASI({ version: 'preview1', args: ['exitcode', '7', 'proc_exit'], stdout: 'pipe' });
const instance = wasi.instantiate(exitcode);
out.push({ start: wasi.start(instance), stdout: wasi.stdout.toString('latin1') });
try { wasi.start(instance); out.push('no throw'); } catch (e) { out.push({ code: e.code }); }
process.stdout.write(JSON.stringify(out));
`;

function runChild(envOverrides) {
  const env = { ...process.env };
  delete env.RUST_BACKTRACE;
  delete env.RUST_LIB_BACKTRACE;
  Object.assign(env, envOverrides);
  const dir = tempDir();
  const script = path.join(dir, 'child.cjs');
  fs.writeFileSync(script, CHILD_SCRIPT);
  const child = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', script], { env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  assert.equal(child.error, undefined);
  assert.equal(child.signal, null, `child killed by ${child.signal}; stderr: ${child.stderr}`);
  assert.equal(child.status, 0, `child exited ${child.status}; stderr: ${child.stderr}`);
  return { results: JSON.parse(child.stdout), stderr: child.stderr };
}

test('RUST_BACKTRACE=1 (and full, and RUST_LIB_BACKTRACE=1) in a child does not change results', () => {
  const baseline = runChild({});
  assert.equal(baseline.stderr, '');
  const { results } = baseline;

  // The baseline itself is right.
  let i = 0;
  for (const mode of ['proc_exit', 'exit', 'return']) {
    for (const n of [0, 3, 120, 200, 300, -1]) {
      assert.deepEqual(results[i++], { exitCode: n, stdout: `exiting with ${n}\n`, stderr: '' }, `${mode} ${n}`);
    }
  }
  assert.deepEqual(results[i++], { exitCode: 0, stdout: 'hello world\n', stderr: '' });
  const trap = results[i++];
  assert.equal(trap.error, 'RuntimeError');
  assert.equal(trap.code, 'ERR_WASM_TRAP');
  assert.equal(trap.trapCode, 'unreachable');
  assert.ok(trap.message.includes('crash_here'));
  assert.equal(trap.stdout, 'before trap\n');
  const div = results[i++];
  assert.equal(div.code, 'ERR_WASM_TRAP');
  assert.equal(div.trapCode, 'integer_division_by_zero');
  const link = results[i++];
  assert.equal(link.error, 'Error');
  assert.equal(link.code, 'ERR_WASM_LINK');
  assert.deepEqual(results[i++], { start: 7, stdout: 'exiting with 7\n' });
  assert.deepEqual(results[i++], { code: 'ERR_WASI_ALREADY_STARTED' });
  assert.equal(results.length, i);

  for (const overrides of [{ RUST_BACKTRACE: '1' }, { RUST_BACKTRACE: 'full' },
    { RUST_BACKTRACE: '1', RUST_LIB_BACKTRACE: '1' }]) {
    const label = JSON.stringify(overrides);
    const other = runChild(overrides);
    assert.deepEqual(other.results, results, label);
    assert.equal(other.stderr, '', `${label}: stderr`);
  }
});

test('input that is not wasm says so: a path instead of bytes, arbitrary bytes, empty input, bad WAT', () => {
  const { Module, runWasmSync } = lib;
  const compileError = (input) => {
    try {
      new Module(input);
    } catch (err) {
      assert.equal(err.code, 'ERR_WASM_COMPILE');
      return err.message;
    }
    assert.fail('compiled');
  };
  const neither = 'the input is neither a WebAssembly binary (it does not start with the \\0asm header) nor WebAssembly text (which starts with `(`)';
  for (const path of ['wc.wasm', 'prog.wat', './build/prog', Buffer.from('/abs/x.wasm')]) {
    assert.equal(compileError(path), `${neither}; was the path "${path}" passed instead of the file's bytes? Read the file first, e.g. fs.readFileSync(path)`, String(path));
  }
  assert.equal(compileError(Buffer.from('hello')), neither);
  assert.equal(compileError(Buffer.from([1, 2, 3, 4])), neither);
  for (const empty of [Buffer.alloc(0), '', '  \n']) {
    assert.equal(compileError(empty), 'empty input: expected a WebAssembly binary (starting with \\0asm) or WebAssembly text');
  }
  assert.match(compileError('(module (func'), /^invalid WebAssembly text: expected `\)`/);
  assert.match(compileError(';; a comment\n(module (bad))'), /^invalid WebAssembly text: /);
  // runWasmSync and runWasm go through the same compile.
  assert.throws(() => runWasmSync('wc.wasm'), { code: 'ERR_WASM_COMPILE', message: /was the path "wc\.wasm" passed/ });
});

test('isWasmtimeError narrows to our codes; every code of the README\'s error table is one', () => {
  const { isWasmtimeError, runWasmSync, Module } = lib;
  let trap;
  try { runWasmSync('(module (memory (export "memory") 1) (func (export "_start") unreachable))'); } catch (err) { trap = err; }
  assert.equal(isWasmtimeError(trap), true);
  assert.equal(isWasmtimeError(trap, 'ERR_WASM_TRAP'), true);
  assert.equal(isWasmtimeError(trap, 'ERR_WASM_LINK'), false);
  let compile;
  try { new Module('(module'); } catch (err) { compile = err; }
  assert.equal(isWasmtimeError(compile, 'ERR_WASM_COMPILE'), true);
  for (const other of [new Error('x'), Object.assign(new Error('x'), { code: 'ENOENT' }), { code: 'ERR_WASM_TRAP' }, null, 'ERR_WASM_TRAP']) {
    assert.equal(isWasmtimeError(other), false, String(other));
  }
  assert.throws(() => isWasmtimeError(trap, 'ERR_NOPE'), { code: 'ERR_INVALID_ARG_VALUE', message: /'code' is not one of node-wasmtime's error codes/ });
  const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const table = readme.slice(readme.indexOf('## Errors'), readme.indexOf('## Differences from node:wasi'));
  const documented = new Set([...table.matchAll(/`((?:ERR|UVWASI|ABORT)_[A-Z_]+)`/g)].map((m) => m[1]));
  assert.ok(documented.size >= 20, `${documented.size} codes in the table`);
  for (const code of documented) assert.equal(isWasmtimeError(Object.assign(new Error(), { code }), code), true, code);
});

test('wasiImport serves the V8 path; on the wasmtime path a WASI function is overridden through instantiate()', () => {
  const { WASI } = lib;
  const hello = fixture('hello.wasm');
  // Replacing wasiImport.fd_write changes nothing for a guest wasmtime runs.
  const wasi = new WASI({ version: 'preview1', stdout: 'pipe' });
  let replaced = 0;
  wasi.wasiImport.fd_write = () => { replaced++; return 0; };
  wasi.start(wasi.instantiate(hello));
  assert.equal(replaced, 0);
  assert.equal(wasi.stdout.toString(), 'hello world\n');
  // Passing fd_write to instantiate() takes the place of wasmtime-wasi's.
  const own = new WASI({ version: 'preview1', stdout: 'pipe' });
  const seen = [];
  const instance = own.instantiate(hello, { wasi_snapshot_preview1: {
    fd_write(fd, iovs, count, nwritten) {
      const view = new DataView(instance.exports.memory.buffer);
      let total = 0;
      for (let i = 0; i < count; i++) {
        const [ptr, len] = [view.getUint32(iovs + 8 * i, true), view.getUint32(iovs + 8 * i + 4, true)];
        seen.push(Buffer.from(instance.exports.memory.buffer, ptr, len).toString());
        total += len;
      }
      view.setUint32(nwritten, total, true);
      return 0;
    },
  } });
  assert.equal(own.start(instance), 0);
  assert.equal(seen.join(''), 'hello world\n');
  assert.equal(own.stdout.length, 0, 'nothing reached the WASI object\'s stdout');
});
