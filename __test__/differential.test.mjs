// Differential tests: every command fixture runs under Node's own node:wasi and under
// node-wasmtime, and the exit code, stdout, stderr and files on disk must be identical,
// byte for byte, and equal to what the fixture's header says it prints.
//
// The ways a case runs (with returnOnExit: true, the default; one suite below runs the
// two child-process ways with returnOnExit: false and compares the process exit status):
//   node       node:wasi in a child process (support/wasi-child.mjs), guest stdio = the
//              child's fds 0/1/2, stdin fed through the child's stdin pipe
//   runSync    runWasmSync(bytes, { stdin: bytes })        stdout/stderr piped
//   runAsync   await runWasm(bytes, ...)                   stdout/stderr piped
//   class      new WASI({ stdin: bytes, stdout: 'pipe', stderr: 'pipe' }) + instantiate + start
//   ours-fds   our WASI class in a child process with node:wasi's default stdio (fds 0/1/2)
//   v8         our WASI class as a node:wasi drop-in: WebAssembly.instantiate(bytes,
//              wasi.getImportObject()) + start, stdout/stderr piped
//   v8-fds     the same in a child process with the real fds 0/1/2
// `exitCode` is what start() returned / what the run reported (a signed i32); for the two
// child processes the OS exit status must also be exitCode & 0xff.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lib, fixture, fixturePath, tempDir, snapshot } from './helpers.mjs';

const { WASI, Module, runWasm, runWasmSync } = lib;

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'wasi-child.mjs');
const MiB = 1024 * 1024;
// One temp dir (removed at exit) holding every directory and result file of this file.
const scratch = tempDir('nwt-diff-');
const subdir = (prefix) => fs.mkdtempSync(path.join(scratch, prefix));
let resultCounter = 0;

// --- the ways to run ---------------------------------------------------------------

/** Runs a fixture in a child process under `impl` ('node' or 'ours'). */
function runChild(impl, wasmName, { args, env = {}, preopens = {}, stdin = '', returnOnExit = true }) {
  const resultFile = path.join(scratch, `result-${++resultCounter}.json`);
  const config = { impl, wasm: fixturePath(wasmName), args, env, preopens, resultFile, returnOnExit };
  const child = spawnSync(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', CHILD, JSON.stringify(config)],
    { input: stdin, maxBuffer: 256 * MiB },
  );
  if (child.error) throw child.error;
  const result = fs.existsSync(resultFile) ? JSON.parse(fs.readFileSync(resultFile, 'utf8')) : null;
  return { status: child.status, signal: child.signal, stdout: child.stdout, stderr: child.stderr, result };
}

/** A child run that must have returned from start(): its result, checked for consistency. */
function childResult(impl, wasmName, options) {
  const child = runChild(impl, wasmName, options);
  assert.equal(child.signal, null, `${impl}: child killed by a signal; stderr: ${child.stderr}`);
  assert.ok(child.result && 'exitCode' in child.result,
    `${impl}: start() did not return: ${JSON.stringify(child.result)}; stderr: ${child.stderr}`);
  const { exitCode } = child.result;
  assert.equal(child.status, exitCode & 0xff, `${impl}: process status vs start() return ${exitCode}`);
  return { exitCode, stdout: child.stdout, stderr: child.stderr };
}

function runClass(wasmName, { args, env = {}, preopens = {}, stdin = '' }) {
  const wasi = new WASI({
    version: 'preview1', args, env, preopens, stdin: Buffer.from(stdin), stdout: 'pipe', stderr: 'pipe',
  });
  const exitCode = wasi.start(wasi.instantiate(fixture(wasmName)));
  return { exitCode, stdout: wasi.stdout, stderr: wasi.stderr };
}

async function runV8(wasmName, { args, env = {}, preopens = {}, stdin = '' }) {
  const wasi = new WASI({
    version: 'preview1', args, env, preopens, stdin: Buffer.from(stdin), stdout: 'pipe', stderr: 'pipe',
  });
  const { instance } = await WebAssembly.instantiate(fixture(wasmName), wasi.getImportObject());
  const exitCode = wasi.start(instance);
  return { exitCode, stdout: wasi.stdout, stderr: wasi.stderr };
}

function runOptions({ args, env = {}, preopens = {}, stdin = '' }) {
  return { args, env, preopens, stdin: Buffer.from(stdin) };
}

const WAYS = {
  node: (wasm, options) => childResult('node', wasm, options),
  runSync: (wasm, options) => runWasmSync(fixture(wasm), runOptions(options)),
  runAsync: (wasm, options) => runWasm(fixture(wasm), runOptions(options)),
  class: (wasm, options) => runClass(wasm, options),
  'ours-fds': (wasm, options) => childResult('ours', wasm, options),
  v8: (wasm, options) => runV8(wasm, options),
  'v8-fds': (wasm, options) => childResult('ours-v8', wasm, options),
};

// --- comparing -------------------------------------------------------------------

// latin1 maps bytes 1:1 to code units, so string equality is byte equality with a readable diff.
const bytes = (buf) => Buffer.from(buf).toString('latin1');

function assertBytes(actual, expected, label) {
  assert.ok(Buffer.isBuffer(actual), `${label}: expected a Buffer, got ${typeof actual}`);
  assert.equal(bytes(actual), bytes(expected), label);
}

/**
 * Runs `wasm` every way and asserts each run's exit code, stdout and stderr equal
 * `expected` (stdout/stderr as Buffer or string) and each other. `prepare(way)` may return
 * per-way options (e.g. a fresh preopen dir); `check(way, result)` adds assertions.
 */
async function differential(wasm, options, expected, { prepare, check } = {}) {
  const results = {};
  for (const [way, run] of Object.entries(WAYS)) {
    const wayOptions = prepare ? prepare(way, options) : options;
    const result = await run(wasm, wayOptions);
    results[way] = result;
    assert.equal(result.exitCode, expected.exitCode, `${way}: exit code`);
    assertBytes(result.stdout, Buffer.from(expected.stdout), `${way}: stdout`);
    assertBytes(result.stderr, Buffer.from(expected.stderr), `${way}: stderr`);
    if (check) check(way, result, wayOptions);
  }
  return results;
}

// --- hello -----------------------------------------------------------------------

test('hello: prints "hello world\\n", exit 0, same under node:wasi', async () => {
  await differential('hello.wasm', { args: ['hello'] }, { exitCode: 0, stdout: 'hello world\n', stderr: '' });
});

// --- echo ------------------------------------------------------------------------

/** The report echo.c prints for these inputs, on stdout and (prefixed "err:") on stderr. */
function echoReport({ args, env = {}, stdin = '', listings = [] }) {
  const lines = [`argc=${args.length}`];
  args.forEach((arg, i) => lines.push(`argv[${i}]=${arg}`));
  Object.entries(env).forEach(([key, value], i) => lines.push(`env[${i}]=${key}=${value}`));
  lines.push('cwd=/');
  const input = Buffer.from(stdin);
  lines.push(`stdin.len=${input.length}`);
  const head = Buffer.from(lines.map((line) => `${line}\n`).join(''));
  const tailLines = [];
  listings.forEach(([guestPath, entries], i) => {
    tailLines.push(`preopen[${3 + i}]=${guestPath}`);
    for (const entry of [...entries].sort()) tailLines.push(`preopen[${3 + i}].entry=${entry}`);
  });
  tailLines.push('done');
  const tail = Buffer.from(tailLines.map((line) => `${line}\n`).join(''));
  const stdout = Buffer.concat([head, Buffer.from('stdin='), input, Buffer.from('\n'), tail]);
  const parts = [];
  let start = 0;
  for (let i = 0; i < stdout.length; i++) {
    if (stdout[i] === 0x0a) {
      parts.push(Buffer.from('err:'), stdout.subarray(start, i + 1));
      start = i + 1;
    }
  }
  assert.equal(start, stdout.length, 'echo report ends with a newline');
  return { exitCode: 0, stdout, stderr: Buffer.concat(parts) };
}

/** A directory with a few entries of every kind, for preopen listings. */
function makeListedDir(prefix) {
  const dir = subdir(prefix);
  fs.writeFileSync(path.join(dir, 'a.txt'), 'a');
  fs.writeFileSync(path.join(dir, 'B.md'), 'b');
  fs.writeFileSync(path.join(dir, 'with space'), '');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'hidden-from-listing'), '');
  fs.symlinkSync('a.txt', path.join(dir, 'link'));
  return { dir, entries: ['B.md', 'a.txt', 'link', 'sub', 'with space'] };
}

const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const bigStdin = crypto.createHash('sha256').update('seed').digest().toString('hex').repeat(10_000); // 640,000 bytes

describe('echo', () => {
  const listed = makeListedDir('echo-');
  const other = makeListedDir('echo2-');
  const empty = subdir('echo-empty-');

  const cases = [
    { name: 'argv[0] only', args: ['echo'] },
    { name: 'arguments with spaces, quotes, unicode, empty', args: ['echo', 'a b', '', '"q"', "it's", '--flag=x=y', 'héllo ☃ 𝄞', '\t tab'] },
    { name: 'environment in insertion order', args: ['echo'], env: { FOO: 'bar', EMPTY: '', 'WITH=EQ': 'x=y', UNICODE: 'é☃', PATH: '/usr/bin' } },
    { name: 'text stdin', args: ['echo'], stdin: 'line one\nline two\n' },
    { name: 'binary stdin (all 256 byte values)', args: ['echo'], stdin: allBytes },
    { name: 'stdin of 640,000 bytes', args: ['echo'], stdin: bigStdin },
    { name: 'one preopen with a listing', args: ['echo'], preopens: { '/guest': listed.dir }, listings: [['/guest', listed.entries]] },
    { name: 'an empty preopen', args: ['echo'], preopens: { '/empty': empty }, listings: [['/empty', []]] },
    {
      name: 'two preopens become fds 3 and 4 in insertion order',
      args: ['echo'],
      preopens: { '/zeta': listed.dir, '/alpha': other.dir },
      listings: [['/zeta', listed.entries], ['/alpha', other.entries]],
    },
    {
      name: 'everything at once',
      args: ['echo', 'one', 'two words'],
      env: { A: '1', B: 'two' },
      stdin: 'some input\0with a NUL',
      preopens: { '/guest': listed.dir },
      listings: [['/guest', listed.entries]],
    },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const { args, env = {}, stdin = '', preopens = {} } = c;
      await differential('echo.wasm', { args, env, stdin, preopens }, echoReport(c));
    });
  }
});

// --- exit codes ------------------------------------------------------------------

describe('exitcode: start() returns N as a signed i32', () => {
  for (const n of [0, 3, 120, 200, 300, -1]) {
    for (const mode of ['exit', 'return', 'proc_exit']) {
      test(`exitcode ${n} ${mode}`, async () => {
        await differential(
          'exitcode.wasm',
          { args: ['exitcode', String(n), mode] },
          { exitCode: n, stdout: `exiting with ${n}\n`, stderr: '' },
        );
      });
    }
  }
});

describe('exitcode with returnOnExit: false: the process exits with N & 0xff, at once', () => {
  for (const n of [0, 3, 300, -1]) {
    for (const mode of ['exit', 'return', 'proc_exit']) {
      test(`exitcode ${n} ${mode}`, () => {
        // exit() and proc_exit always call proc_exit; wasi-libc's _start calls it after
        // main returns only for a non-zero status, so `return 0` returns from start().
        const exits = !(n === 0 && mode === 'return');
        for (const impl of ['node', 'ours', 'ours-v8']) {
          const child = runChild(impl, 'exitcode.wasm', { args: ['exitcode', String(n), mode], returnOnExit: false });
          assert.equal(child.signal, null, `${impl}: signal`);
          assert.equal(child.status, n & 0xff, `${impl}: process status; stderr: ${child.stderr}`);
          assertBytes(child.stdout, `exiting with ${n}\n`, `${impl}: stdout`);
          assertBytes(child.stderr, '', `${impl}: stderr`);
          // proc_exit ends the process before start() returns, so no result file.
          assert.deepEqual(child.result, exits ? null : { exitCode: 0 }, `${impl}: start() returned`);
        }
      });
    }
  }
});

// --- counter ---------------------------------------------------------------------

test('counter: every run is a fresh instance ("1\\n")', async () => {
  await differential('counter.wasm', { args: ['counter'] }, { exitCode: 0, stdout: '1\n', stderr: '' });
  // Repeated runs of one compiled Module and of the same bytes (compilation cache), and
  // several WASI objects instantiating one Module, never share linear memory.
  const module = new Module(fixture('counter.wasm'));
  for (let i = 0; i < 3; i++) {
    assertBytes(runWasmSync(module).stdout, '1\n', `runWasmSync(module) #${i}`);
    assertBytes(runWasmSync(fixture('counter.wasm')).stdout, '1\n', `runWasmSync(bytes) #${i}`);
    assertBytes((await runWasm(module)).stdout, '1\n', `runWasm(module) #${i}`);
    const wasi = new WASI({ version: 'preview1', stdin: '', stdout: 'pipe', stderr: 'pipe' });
    assert.equal(wasi.start(wasi.instantiate(module)), 0);
    assertBytes(wasi.stdout, '1\n', `WASI #${i}`);
  }
});

// --- files through a preopen -------------------------------------------------------


function makeFsDir() {
  const dir = subdir('fs-');
  fs.writeFileSync(path.join(dir, 'existing.txt'), '0123456789 a long line that must be truncated\n');
  fs.writeFileSync(path.join(dir, 'to-delete.txt'), 'delete me');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'nested.txt'), 'nested\n');
  return dir;
}

// Run in order, each a separate run, against one directory per way.
const FS_STEPS = [
  { args: ['write', '/guest/new.txt', 'hello file'], exitCode: 0, stdout: 'wrote 10\n' },
  { args: ['read', '/guest/new.txt'], exitCode: 0, stdout: 'hello file' },
  { args: ['write', '/guest/existing.txt', 'short'], exitCode: 0, stdout: 'wrote 5\n' },
  { args: ['read', '/guest/existing.txt'], exitCode: 0, stdout: 'short' },
  { args: ['read', '/guest/sub/nested.txt'], exitCode: 0, stdout: 'nested\n' },
  { args: ['write', 'guest/relative.txt', 'via cwd /'], exitCode: 0, stdout: 'wrote 9\n' },
  { args: ['write', '/guest/unicode-é☃.txt', 'ünïcödé ☃'], exitCode: 0, stdout: `wrote ${Buffer.byteLength('ünïcödé ☃')}\n` },
  { args: ['read', '/guest/missing.txt'], exitCode: 1, stdout: 'error errno=44 (No such file or directory)\n' },
  { args: ['write', '/guest/no-such-dir/x.txt', 'x'], exitCode: 1, stdout: 'error errno=44 (No such file or directory)\n' },
  { args: ['mkdir', '/guest/newdir'], exitCode: 0, stdout: 'ok\n' },
  { args: ['write', '/guest/newdir/inner.txt', 'inner'], exitCode: 0, stdout: 'wrote 5\n' },
  { args: ['mkdir', '/guest/newdir'], exitCode: 0, stdout: 'error errno=20 (File exists)\n' },
  { args: ['unlink', '/guest/to-delete.txt'], exitCode: 0, stdout: 'ok\n' },
  { args: ['unlink', '/guest/to-delete.txt'], exitCode: 0, stdout: 'error errno=44 (No such file or directory)\n' },
  { args: ['symlink', 'new.txt', '/guest/link'], exitCode: 0, stdout: 'ok\n' },
  { args: ['read', '/guest/link'], exitCode: 0, stdout: 'hello file' },
  { args: ['open', '/guest/sub'], exitCode: 0, stdout: 'ok\n' },
  { args: ['open', '/guest/sub/missing'], exitCode: 0, stdout: 'error errno=44 (No such file or directory)\n' },
  { args: ['bogus', 'x'], exitCode: 2, stdout: '', stderr: 'usage error\n' },
];

const FS_EXPECTED_TREE = {
  'existing.txt': { file: 'short' },
  link: { symlink: 'new.txt' },
  'new.txt': { file: 'hello file' },
  newdir: { dir: { 'inner.txt': { file: 'inner' } } },
  'relative.txt': { file: 'via cwd /' },
  sub: { dir: { 'nested.txt': { file: 'nested\n' } } },
  [bytes(Buffer.from('unicode-é☃.txt'))]: { file: bytes(Buffer.from('ünïcödé ☃')) },
};

describe('fs: write and read through a preopen', () => {
  const dirs = {};
  const runs = {};

  before(async () => {
    for (const [way, run] of Object.entries(WAYS)) {
      dirs[way] = makeFsDir();
      runs[way] = [];
      for (const step of FS_STEPS) {
        runs[way].push(await run('fs.wasm', { args: ['fs', ...step.args], preopens: { '/guest': dirs[way] } }));
      }
    }
  });

  FS_STEPS.forEach((step, i) => {
    test(`step ${i + 1}: fs ${step.args.join(' ')}`, () => {
      for (const way of Object.keys(WAYS)) {
        const result = runs[way][i];
        assert.equal(result.exitCode, step.exitCode, `${way}: exit code`);
        assertBytes(result.stdout, Buffer.from(step.stdout), `${way}: stdout`);
        assertBytes(result.stderr, Buffer.from(step.stderr ?? ''), `${way}: stderr`);
      }
    });
  });

  test('the files on disk afterwards are the same for every way', () => {
    for (const way of Object.keys(WAYS)) {
      // fs.readdirSync gives names as UTF-8 strings; compare them as bytes like the contents.
      const tree = snapshot(dirs[way]);
      const byteNames = Object.fromEntries(Object.entries(tree).map(([k, v]) => [bytes(Buffer.from(k)), v]));
      assert.deepEqual(byteNames, FS_EXPECTED_TREE, `${way}: directory contents`);
    }
  });
});

// --- large output ------------------------------------------------------------------

/** The stream large.c writes: byte i is i % 251. */
function largeExpected(mib) {
  const out = Buffer.allocUnsafe(mib * MiB);
  for (let i = 0; i < out.length; i++) out[i] = i % 251;
  return out;
}

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

describe('large: stdout of many MiB arrives complete and in order', () => {
  for (const mib of [1, 64]) {
    test(`large ${mib}`, async () => {
      const expected = largeExpected(mib);
      const expectedSha = sha256(expected);
      for (const [way, run] of Object.entries(WAYS)) {
        const result = await run('large.wasm', { args: ['large', String(mib)] });
        assert.equal(result.exitCode, 0, `${way}: exit code`);
        assert.ok(Buffer.isBuffer(result.stdout), `${way}: stdout is a Buffer`);
        assert.equal(result.stdout.length, expected.length, `${way}: stdout length`);
        assert.equal(sha256(result.stdout), expectedSha, `${way}: stdout sha256`);
        assertBytes(result.stderr, '', `${way}: stderr`);
      }
    });
  }
});

// --- trap --------------------------------------------------------------------------

test('trap: all ways throw a RuntimeError after "before trap\\n" was written', async () => {
  const node = runChild('node', 'trap.wasm', { args: ['trap'] });
  assert.equal(node.status, 70, `node: start() threw; stderr: ${node.stderr}`);
  assert.equal(node.result.trap.isRuntimeError, true, 'node: WebAssembly.RuntimeError');
  assertBytes(node.stdout, 'before trap\n', 'node: stdout');
  assertBytes(node.stderr, '', 'node: stderr');

  const ourTrap = (err) => {
    assert.ok(err instanceof WebAssembly.RuntimeError, `a WebAssembly.RuntimeError, got ${err}`);
    assert.equal(err.code, 'ERR_WASM_TRAP');
    assert.equal(err.trapCode, 'unreachable');
    return true;
  };

  for (const [way, run] of [['runSync', runWasmSync], ['runAsync', runWasm]]) {
    let err;
    try {
      await run(fixture('trap.wasm'), { args: ['trap'], stdin: '' });
    } catch (e) {
      err = e;
    }
    assert.ok(err, `${way}: expected a throw`);
    ourTrap(err);
    assertBytes(err.stdout, 'before trap\n', `${way}: err.stdout`);
    assertBytes(err.stderr, '', `${way}: err.stderr`);
  }

  const wasi = new WASI({ version: 'preview1', args: ['trap'], stdin: '', stdout: 'pipe', stderr: 'pipe' });
  const instance = wasi.instantiate(fixture('trap.wasm'));
  assert.throws(() => wasi.start(instance), ourTrap);
  assertBytes(wasi.stdout, 'before trap\n', 'class: wasi.stdout');
  assertBytes(wasi.stderr, '', 'class: wasi.stderr');

  const ours = runChild('ours', 'trap.wasm', { args: ['trap'] });
  assert.equal(ours.status, 70, `ours-fds: start() threw; stderr: ${ours.stderr}`);
  assert.deepEqual(ours.result.trap, { name: 'RuntimeError', code: 'ERR_WASM_TRAP', trapCode: 'unreachable', isRuntimeError: true });
  assertBytes(ours.stdout, 'before trap\n', 'ours-fds: stdout');
  assertBytes(ours.stderr, '', 'ours-fds: stderr');

  // On the V8 path V8 runs the guest, so the trap is V8's own RuntimeError, as with node:wasi.
  const v8 = new WASI({ version: 'preview1', args: ['trap'], stdin: '', stdout: 'pipe', stderr: 'pipe' });
  const { instance: v8Instance } = await WebAssembly.instantiate(fixture('trap.wasm'), v8.getImportObject());
  assert.throws(() => v8.start(v8Instance), WebAssembly.RuntimeError);
  assertBytes(v8.stdout, 'before trap\n', 'v8: wasi.stdout');
  const v8Child = runChild('ours-v8', 'trap.wasm', { args: ['trap'] });
  assert.equal(v8Child.status, 70, `v8-fds: start() threw; stderr: ${v8Child.stderr}`);
  assert.equal(v8Child.result.trap.isRuntimeError, true, 'v8-fds: WebAssembly.RuntimeError');
  assertBytes(v8Child.stdout, 'before trap\n', 'v8-fds: stdout');
});
