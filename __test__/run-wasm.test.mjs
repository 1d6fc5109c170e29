// `runWasm` / `runWasmSync`: exact output bytes, args/env/stdin/preopens as the guest sees
// them, exit codes, a fresh instance for every run, large outputs, stdio modes ('pipe',
// 'ignore', a host fd), concurrency of async runs, traps (with the output captured so far),
// reactors rejected, and option validation (sync throws, async rejects).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { lib, fixture, fixturePath, tempDir, assertCode, echoReport, errPrefixed } from './helpers.mjs';

const { Module, runWasm, runWasmSync } = lib;

const HELLO = fixture('hello.wasm');
const ECHO = fixture('echo.wasm');
const EXITCODE = fixture('exitcode.wasm');
const COUNTER = fixture('counter.wasm');
const LARGE = fixture('large.wasm');
const TRAP = fixture('trap.wasm');
const REACTOR = fixture('reactor.wasm');

const EMPTY = Buffer.alloc(0);


function assertResult(result, { exitCode = 0, stdout = EMPTY, stderr = EMPTY }) {
  assert.deepEqual(Object.keys(result).sort(), ['exitCode', 'maxMemoryReached', 'stderr', 'stdout']);
  assert.equal(result.exitCode, exitCode);
  assert.equal(result.maxMemoryReached, false, 'no limits.maxMemory here');
  assert.ok(Buffer.isBuffer(result.stdout), 'stdout is a Buffer');
  assert.ok(Buffer.isBuffer(result.stderr), 'stderr is a Buffer');
  assert.deepEqual(result.stdout, Buffer.from(stdout));
  assert.deepEqual(result.stderr, Buffer.from(stderr));
}

// Both entry points, so every behaviour below is checked for the sync and the async path.
const runners = [
  ['runWasmSync', async (wasm, options) => runWasmSync(wasm, options)],
  ['runWasm', (wasm, options) => runWasm(wasm, options)],
];

// --- output and inputs ----------------------------------------------------------------

for (const [name, run] of runners) {
  test(`${name}: hello prints exactly "hello world\\n" and exits 0`, async () => {
    assertResult(await run(HELLO), { stdout: 'hello world\n' });
    assertResult(await run(HELLO, {}), { stdout: 'hello world\n' });
    assertResult(await run(new Module(HELLO)), { stdout: 'hello world\n' });
  });

  test(`${name}: hello from every input form (ArrayBuffer, offset view, DataView)`, async () => {
    const offset = 9;
    const big = new Uint8Array(offset + HELLO.length + 4).fill(0xff);
    big.set(HELLO, offset);
    assertResult(await run(new Uint8Array(big.buffer, offset, HELLO.length)), { stdout: 'hello world\n' });
    assertResult(await run(new DataView(big.buffer, offset, HELLO.length)), { stdout: 'hello world\n' });
    assertResult(await run(big.slice(offset, offset + HELLO.length).buffer), { stdout: 'hello world\n' });
  });

  test(`${name}: echo with no options sees no args, no env, empty stdin, no preopens`, async () => {
    const report = echoReport({ args: [] });
    assertResult(await run(ECHO), { stdout: report, stderr: errPrefixed(report) });
  });

  test(`${name}: echo sees args and env in order`, async () => {
    const args = ['echo', 'two words', '', 'ünïcödé ✓', '--flag=1'];
    const env = { FOO: 'bar', EMPTY: '', 'WITH=EQ': 'x=y', UNI: 'é', SKIPPED: undefined, NUM: 42 };
    const report = echoReport({
      args,
      env: ['FOO=bar', 'EMPTY=', 'WITH=EQ=x=y', 'UNI=é', 'NUM=42'],
    });
    assertResult(await run(ECHO, { args, env }), { stdout: report, stderr: errPrefixed(report) });
  });

  test(`${name}: args elements are converted with String()`, async () => {
    const report = echoReport({ args: ['1', 'true', 'null', 'undefined'] });
    assertResult(await run(ECHO, { args: [1, true, null, undefined] }),
      { stdout: report, stderr: errPrefixed(report) });
  });

  test(`${name}: stdin as a string is fed to the guest as UTF-8`, async () => {
    const stdin = 'line one\nline two ✓\n';
    const report = echoReport({ args: ['echo'], stdin: Buffer.from(stdin, 'utf8') });
    assertResult(await run(ECHO, { args: ['echo'], stdin }), { stdout: report, stderr: errPrefixed(report) });
  });

  test(`${name}: stdin as a Buffer is fed verbatim (NUL and high bytes included)`, async () => {
    const stdin = Buffer.from([0x61, 0x00, 0x62, 0xff, 0x0a, 0x80, 0x7f]);
    const report = echoReport({ args: ['echo'], stdin });
    assertResult(await run(ECHO, { args: ['echo'], stdin }), { stdout: report, stderr: errPrefixed(report) });
  });

  test(`${name}: stdin as an offset Uint8Array view, ArrayBuffer and DataView`, async () => {
    const data = Buffer.from('view bytes');
    const big = new Uint8Array(3 + data.length + 3).fill(0x21);
    big.set(data, 3);
    const report = echoReport({ args: ['echo'], stdin: data });
    const expected = { stdout: report, stderr: errPrefixed(report) };
    assertResult(await run(ECHO, { args: ['echo'], stdin: new Uint8Array(big.buffer, 3, data.length) }), expected);
    assertResult(await run(ECHO, { args: ['echo'], stdin: new DataView(big.buffer, 3, data.length) }), expected);
    assertResult(await run(ECHO, { args: ['echo'], stdin: big.slice(3, 3 + data.length).buffer }), expected);
  });

  test(`${name}: a large stdin (3 MiB) arrives whole`, async () => {
    const stdin = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < stdin.length; i++) stdin[i] = (i * 7) % 256;
    const report = echoReport({ args: ['echo'], stdin });
    const result = await run(ECHO, { args: ['echo'], stdin, stderr: 'ignore', maxBuffer: Infinity });
    assertResult(result, { stdout: report });
  });

  test(`${name}: preopens are listed in order with their entries`, async () => {
    const dir = tempDir();
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    fs.writeFileSync(path.join(a, 'one.txt'), '1');
    fs.writeFileSync(path.join(a, 'two.txt'), '2');
    fs.mkdirSync(path.join(a, 'sub'));
    const report = echoReport({
      args: ['echo'],
      preopens: [
        { fd: 3, name: '/sandbox', entries: ['one.txt', 'sub', 'two.txt'] },
        { fd: 4, name: '/empty', entries: [] },
      ],
    });
    const result = await run(ECHO, { args: ['echo'], preopens: { '/sandbox': a, '/empty': b } });
    assertResult(result, { stdout: report, stderr: errPrefixed(report) });
  });

  test(`${name}: a missing preopen directory fails with UVWASI_ENOENT`, async () => {
    const missing = path.join(tempDir(), 'does-not-exist');
    await assert.rejects(run(ECHO, { preopens: { '/x': missing } }), assertCode('UVWASI_ENOENT'));
  });

  test(`${name}: a preopen that is a file fails with UVWASI_ENOTDIR`, async () => {
    const file = path.join(tempDir(), 'file.txt');
    fs.writeFileSync(file, 'x');
    await assert.rejects(run(ECHO, { preopens: { '/x': file } }), assertCode('UVWASI_ENOTDIR'));
  });
}

// --- exit codes -----------------------------------------------------------------------

for (const [name, run] of runners) {
  test(`${name}: exit codes 0/3/120/200/300/-1 through proc_exit, exit() and return`, async () => {
    for (const mode of ['proc_exit', 'exit', 'return']) {
      for (const code of [0, 3, 120, 200, 300, -1]) {
        const result = await run(EXITCODE, { args: ['exitcode', String(code), mode] });
        assertResult(result, { exitCode: code, stdout: `exiting with ${code}\n` });
      }
    }
  });
}

test('an inline WAT command returning from _start exits 0; proc_exit extremes are returned', () => {
  assertResult(runWasmSync('(module (memory (export "memory") 1) (func (export "_start")))'), {});
  for (const code of [2147483647, -2147483648, 255, 256]) {
    const wat = `(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (call $exit (i32.const ${code}))))`;
    assertResult(runWasmSync(wat), { exitCode: code });
  }
});

// --- fresh instance per run -----------------------------------------------------------

test('runWasmSync: counter prints "1\\n" on each of 100 runs of one Module', () => {
  const mod = new Module(COUNTER);
  for (let i = 0; i < 100; i++) {
    const result = runWasmSync(mod);
    assert.equal(result.exitCode, 0, `run ${i}`);
    assert.deepEqual(result.stdout, Buffer.from('1\n'), `run ${i}`);
  }
});

test('runWasmSync: counter prints "1\\n" on each of 100 runs given the same bytes', () => {
  for (let i = 0; i < 100; i++) {
    const result = runWasmSync(COUNTER);
    assert.equal(result.exitCode, 0, `run ${i}`);
    assert.deepEqual(result.stdout, Buffer.from('1\n'), `run ${i}`);
  }
  // A fresh copy of the bytes each time, too.
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(runWasmSync(Buffer.from(COUNTER)).stdout, Buffer.from('1\n'), `copy ${i}`);
  }
});

test('runWasm: counter prints "1\\n" on each of 32 concurrent runs of one Module', async () => {
  const mod = new Module(COUNTER);
  const results = await Promise.all(Array.from({ length: 32 }, () => runWasm(mod)));
  for (const result of results) assertResult(result, { stdout: '1\n' });
});

// --- large output ---------------------------------------------------------------------

function largePattern(bytes) {
  const out = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) out[i] = i % 251;
  return out;
}
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

test('runWasmSync: 64 MiB of output arrives byte-exact', () => {
  const size = 64 * 1024 * 1024;
  const expected = sha256(largePattern(size));
  const result = runWasmSync(LARGE, { args: ['large'], maxBuffer: Infinity });
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout.length, size);
  assert.equal(sha256(result.stdout), expected);
  assert.deepEqual(result.stderr, EMPTY);
});

test('runWasm: 64 MiB of output arrives byte-exact', async () => {
  const size = 64 * 1024 * 1024;
  const expected = sha256(largePattern(size));
  const result = await runWasm(LARGE, { args: ['large', '64'], maxBuffer: Infinity });
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout.length, size);
  assert.equal(sha256(result.stdout), expected);
});

test('runWasmSync: a smaller size argument gives exactly that many bytes', () => {
  const result = runWasmSync(LARGE, { args: ['large', '3'], maxBuffer: 3 * 1024 * 1024 });
  assert.equal(result.exitCode, 0);
  assert.deepEqual(result.stdout, largePattern(3 * 1024 * 1024));
  assert.deepEqual(runWasmSync(LARGE, { args: ['large', '0'] }).stdout, EMPTY);
});

// --- stdio modes ----------------------------------------------------------------------

for (const [name, run] of runners) {
  test(`${name}: stdout/stderr 'ignore' give empty Buffers`, async () => {
    const report = echoReport({ args: ['echo'] });
    assertResult(await run(ECHO, { args: ['echo'], stdout: 'ignore' }), { stderr: errPrefixed(report) });
    assertResult(await run(ECHO, { args: ['echo'], stderr: 'ignore' }), { stdout: report });
    assertResult(await run(ECHO, { args: ['echo'], stdout: 'ignore', stderr: 'ignore' }), {});
    assertResult(await run(HELLO, { stdout: 'ignore' }), {});
  });

  test(`${name}: explicit 'pipe' is the default`, async () => {
    const report = echoReport({ args: ['echo'] });
    assertResult(await run(ECHO, { args: ['echo'], stdout: 'pipe', stderr: 'pipe' }),
      { stdout: report, stderr: errPrefixed(report) });
  });

  test(`${name}: stdout and stderr as file descriptors write to the files`, async () => {
    const dir = tempDir();
    const outPath = path.join(dir, 'out.txt');
    const errPath = path.join(dir, 'err.txt');
    const outFd = fs.openSync(outPath, 'w');
    const errFd = fs.openSync(errPath, 'w');
    let result;
    try {
      result = await run(ECHO, { args: ['echo', 'to-file'], stdout: outFd, stderr: errFd });
      // The fd stays usable by the host afterwards (the guest got a duplicate).
      fs.writeSync(outFd, 'host after\n');
    } finally {
      fs.closeSync(outFd);
      fs.closeSync(errFd);
    }
    const report = echoReport({ args: ['echo', 'to-file'] });
    assertResult(result, {});
    assert.deepEqual(fs.readFileSync(outPath), Buffer.concat([report, Buffer.from('host after\n')]));
    assert.deepEqual(fs.readFileSync(errPath), errPrefixed(report));
  });

  test(`${name}: stdin as a file descriptor is read by the guest`, async () => {
    const dir = tempDir();
    const inPath = path.join(dir, 'in.txt');
    const data = Buffer.from('from a file\n\u0000end');
    fs.writeFileSync(inPath, data);
    const fd = fs.openSync(inPath, 'r');
    let result;
    try {
      result = await run(ECHO, { args: ['echo'], stdin: fd, stderr: 'ignore' });
    } finally {
      fs.closeSync(fd);
    }
    assertResult(result, { stdout: echoReport({ args: ['echo'], stdin: data }) });
  });

  test(`${name}: a stdout fd that is not open fails with UVWASI_EBADF`, async () => {
    // The largest valid int32 is far above any descriptor limit, so it is never open.
    await assert.rejects(run(HELLO, { stdout: 2147483647 }), assertCode('UVWASI_EBADF'));
    await assert.rejects(run(HELLO, { stderr: 2147483647 }), assertCode('UVWASI_EBADF'));
    await assert.rejects(run(HELLO, { stdin: 2147483647 }), assertCode('UVWASI_EBADF'));
  });
}

test('runWasmSync: the large output to a file descriptor is complete', () => {
  const dir = tempDir();
  const file = path.join(dir, 'large.bin');
  const fd = fs.openSync(file, 'w');
  let result;
  try {
    result = runWasmSync(LARGE, { args: ['large', '8'], stdout: fd });
  } finally {
    fs.closeSync(fd);
  }
  assertResult(result, {});
  const written = fs.readFileSync(file);
  assert.equal(written.length, 8 * 1024 * 1024);
  assert.equal(sha256(written), sha256(largePattern(8 * 1024 * 1024)));
});

// --- concurrency ----------------------------------------------------------------------

test('runWasm: 8 concurrent runs each get their own args, env, stdin and output', async () => {
  const mod = new Module(ECHO);
  const runs = Array.from({ length: 8 }, (_, i) => {
    const options = {
      args: ['echo', `run-${i}`, 'x'.repeat(i * 1000)],
      env: { RUN: String(i) },
      stdin: Buffer.alloc(i * 10000 + 1, 0x41 + i),
    };
    // Alternate a Module and raw bytes to exercise both paths.
    return [options, runWasm(i % 2 ? mod : ECHO, options)];
  });
  const results = await Promise.all(runs.map(([, p]) => p));
  results.forEach((result, i) => {
    const [options] = runs[i];
    const report = echoReport({ args: options.args, env: [`RUN=${i}`], stdin: options.stdin });
    assertResult(result, { stdout: report, stderr: errPrefixed(report) });
  });
});

test('runWasm: 8 concurrent mixed runs (large, exit codes, hello, trap) all correct', async () => {
  const size = 4 * 1024 * 1024;
  const large = largePattern(size);
  const settled = await Promise.allSettled([
    runWasm(LARGE, { args: ['large', '4'], maxBuffer: Infinity }),
    runWasm(EXITCODE, { args: ['exitcode', '3', 'proc_exit'] }),
    runWasm(HELLO),
    runWasm(TRAP),
    runWasm(LARGE, { args: ['large', '4'], maxBuffer: Infinity }),
    runWasm(EXITCODE, { args: ['exitcode', '200'] }),
    runWasm(COUNTER),
    runWasm(HELLO, { stdout: 'ignore' }),
  ]);
  assert.equal(settled[0].status, 'fulfilled');
  assert.equal(settled[0].value.exitCode, 0);
  assert.ok(settled[0].value.stdout.equals(large));
  assertResult(settled[1].value, { exitCode: 3, stdout: 'exiting with 3\n' });
  assertResult(settled[2].value, { stdout: 'hello world\n' });
  assert.equal(settled[3].status, 'rejected');
  assert.equal(settled[3].reason.code, 'ERR_WASM_TRAP');
  assert.ok(settled[4].value.stdout.equals(large));
  assertResult(settled[5].value, { exitCode: 200, stdout: 'exiting with 200\n' });
  assertResult(settled[6].value, { stdout: '1\n' });
  assertResult(settled[7].value, {});
});

test('runWasm returns a Promise resolving with the result', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'out.txt');
  const fd = fs.openSync(file, 'w');
  try {
    const promise = runWasm(LARGE, { args: ['large', '1'], stdout: fd });
    assert.ok(promise instanceof Promise);
    const result = await promise;
    assertResult(result, {});
  } finally {
    fs.closeSync(fd);
  }
  assert.equal(fs.statSync(file).size, 1024 * 1024);
});

test('runWasm: mutating the stdin Buffer after the call does not change what the guest reads', async () => {
  const stdin = Buffer.alloc(256 * 1024, 0x61);
  const original = Buffer.from(stdin);
  const promise = runWasm(ECHO, { args: ['echo'], stdin, stderr: 'ignore' });
  stdin.fill(0x7a);
  assertResult(await promise, { stdout: echoReport({ args: ['echo'], stdin: original }) });
});

test('runWasm: mutating the wasm bytes after the call does not change what runs', async () => {
  const bytes = Buffer.from(HELLO);
  const promise = runWasm(bytes);
  bytes.fill(0);
  assertResult(await promise, { stdout: 'hello world\n' });
});

// --- traps ----------------------------------------------------------------------------

function assertTrap(err) {
  assert.ok(err instanceof WebAssembly.RuntimeError, `expected RuntimeError, got ${err && err.constructor && err.constructor.name}`);
  assert.equal(err.code, 'ERR_WASM_TRAP');
  assert.equal(err.trapCode, 'unreachable');
  assert.ok(err.message.includes('crash_here'), `backtrace lacks crash_here: ${err.message}`);
  assert.ok(Buffer.isBuffer(err.stdout));
  assert.deepEqual(err.stdout, Buffer.from('before trap\n'));
  assert.deepEqual(err.stderr, EMPTY);
  return true;
}

test('runWasmSync: a trap throws RuntimeError ERR_WASM_TRAP with output so far', () => {
  assert.throws(() => runWasmSync(TRAP), assertTrap);
  assert.throws(() => runWasmSync(new Module(TRAP)), assertTrap);
});

test('runWasm: a trap rejects with RuntimeError ERR_WASM_TRAP with output so far', async () => {
  await assert.rejects(runWasm(TRAP), assertTrap);
  await assert.rejects(runWasm(new Module(TRAP)), assertTrap);
});

test('a trap does not poison the module: later runs still work', async () => {
  const mod = new Module(TRAP);
  assert.throws(() => runWasmSync(mod), assertTrap);
  assert.throws(() => runWasmSync(mod), assertTrap);
  assertResult(runWasmSync(HELLO), { stdout: 'hello world\n' });
  assertResult(await runWasm(HELLO), { stdout: 'hello world\n' });
});

test("a trapping run with stdout 'ignore' has an empty err.stdout", () => {
  assert.throws(() => runWasmSync(TRAP, { stdout: 'ignore' }), (err) => {
    assert.equal(err.code, 'ERR_WASM_TRAP');
    assert.deepEqual(err.stdout, EMPTY);
    return true;
  });
});

// --- not a command --------------------------------------------------------------------

test('runWasmSync: a reactor fails with ERR_INVALID_ARG_VALUE', () => {
  assert.throws(() => runWasmSync(REACTOR), (err) => {
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'ERR_INVALID_ARG_VALUE');
    return true;
  });
  assert.throws(() => runWasmSync(new Module(REACTOR)), (err) => err.code === 'ERR_INVALID_ARG_VALUE');
});

test('runWasm: a reactor rejects with ERR_INVALID_ARG_VALUE', async () => {
  await assert.rejects(runWasm(REACTOR), (err) => err.code === 'ERR_INVALID_ARG_VALUE');
});

test('ERR_INVALID_ARG_VALUE for a reactor is a TypeError, as Node builds that code', () => {
  // API.md's error table: ERR_INVALID_ARG_VALUE is a TypeError (Node's class for the code).
  assert.throws(() => runWasmSync(REACTOR), assertCode('ERR_INVALID_ARG_VALUE', TypeError));
});

test('a module with _start of the wrong type is not a command: ERR_INVALID_ARG_VALUE', () => {
  assert.throws(() => runWasmSync('(module (func (export "_start") (param i32)))'),
    (err) => err.code === 'ERR_INVALID_ARG_VALUE');
});

// --- option validation ----------------------------------------------------------------

const badOptions = [
  // [label, wasm, options, code]
  ['options a string', HELLO, 'x', 'ERR_INVALID_ARG_TYPE'],
  ['options null', HELLO, null, 'ERR_INVALID_ARG_TYPE'],
  ['options an array', HELLO, [], 'ERR_INVALID_ARG_TYPE'],
  ['options a number', HELLO, 1, 'ERR_INVALID_ARG_TYPE'],
  ['args a string', HELLO, { args: 'echo' }, 'ERR_INVALID_ARG_TYPE'],
  ['args an object', HELLO, { args: { 0: 'a', length: 1 } }, 'ERR_INVALID_ARG_TYPE'],
  ['args null', HELLO, { args: null }, 'ERR_INVALID_ARG_TYPE'],
  ['env a string', HELLO, { env: 'A=1' }, 'ERR_INVALID_ARG_TYPE'],
  ['env an array', HELLO, { env: ['A=1'] }, 'ERR_INVALID_ARG_TYPE'],
  ['env null', HELLO, { env: null }, 'ERR_INVALID_ARG_TYPE'],
  ['preopens a string', HELLO, { preopens: '/tmp' }, 'ERR_INVALID_ARG_TYPE'],
  ['preopens an array', HELLO, { preopens: ['/tmp'] }, 'ERR_INVALID_ARG_TYPE'],
  ['stdin an object', HELLO, { stdin: {} }, 'ERR_INVALID_ARG_TYPE'],
  ['stdin a boolean', HELLO, { stdin: true }, 'ERR_INVALID_ARG_TYPE'],
  ['stdin null', HELLO, { stdin: null }, 'ERR_INVALID_ARG_TYPE'],
  ['stdin -1', HELLO, { stdin: -1 }, 'ERR_OUT_OF_RANGE'],
  ['stdin 1.5', HELLO, { stdin: 1.5 }, 'ERR_OUT_OF_RANGE'],
  ['stdout an unknown string', HELLO, { stdout: 'bogus' }, 'ERR_INVALID_ARG_VALUE'],
  ['stdout an empty string', HELLO, { stdout: '' }, 'ERR_INVALID_ARG_VALUE'],
  ['stdout "PIPE"', HELLO, { stdout: 'PIPE' }, 'ERR_INVALID_ARG_VALUE'],
  ['stdout a boolean', HELLO, { stdout: true }, 'ERR_INVALID_ARG_TYPE'],
  ['stdout null', HELLO, { stdout: null }, 'ERR_INVALID_ARG_TYPE'],
  ['stdout an object', HELLO, { stdout: {} }, 'ERR_INVALID_ARG_TYPE'],
  ['stdout -1', HELLO, { stdout: -1 }, 'ERR_OUT_OF_RANGE'],
  ['stdout 1.5', HELLO, { stdout: 1.5 }, 'ERR_OUT_OF_RANGE'],
  ['stdout NaN', HELLO, { stdout: NaN }, 'ERR_OUT_OF_RANGE'],
  ['stdout 2**31', HELLO, { stdout: 2 ** 31 }, 'ERR_OUT_OF_RANGE'],
  ['stdout Infinity', HELLO, { stdout: Infinity }, 'ERR_OUT_OF_RANGE'],
  ['stderr an unknown string', HELLO, { stderr: 'stdout' }, 'ERR_INVALID_ARG_VALUE'],
  ['stderr a bigint', HELLO, { stderr: 2n }, 'ERR_INVALID_ARG_TYPE'],
  ['stderr -5', HELLO, { stderr: -5 }, 'ERR_OUT_OF_RANGE'],
  ['wasm a number', 42, undefined, 'ERR_INVALID_ARG_TYPE'],
  ['wasm undefined', undefined, undefined, 'ERR_INVALID_ARG_TYPE'],
  ['wasm null', null, undefined, 'ERR_INVALID_ARG_TYPE'],
  ['wasm a plain object', {}, undefined, 'ERR_INVALID_ARG_TYPE'],
  ['wasm that does not compile', Buffer.from('\0asm\x02\0\0\0'), undefined, 'ERR_WASM_COMPILE'],
  ['wasm WAT that does not parse', '(module', undefined, 'ERR_WASM_COMPILE'],
];

const classOf = {
  ERR_INVALID_ARG_TYPE: TypeError,
  ERR_INVALID_ARG_VALUE: TypeError,
  ERR_OUT_OF_RANGE: RangeError,
  ERR_WASM_COMPILE: Error,
};

test('runWasmSync: invalid options and inputs throw with the right code and class', () => {
  for (const [label, wasm, options, code] of badOptions) {
    assert.throws(() => runWasmSync(wasm, options), (err) => {
      assert.equal(err.code, code, label);
      assert.ok(err instanceof classOf[code], `${label}: class ${err.constructor.name}`);
      return true;
    }, label);
  }
});

test('runWasm: invalid options and inputs reject (never throw synchronously)', async () => {
  for (const [label, wasm, options, code] of badOptions) {
    let promise;
    assert.doesNotThrow(() => { promise = runWasm(wasm, options); }, label);
    assert.ok(promise instanceof Promise, label);
    await assert.rejects(promise, (err) => {
      assert.equal(err.code, code, label);
      assert.ok(err instanceof classOf[code], `${label}: class ${err.constructor.name}`);
      return true;
    }, label);
  }
});

test('valid edge values are accepted: fd 0 stdin, -0 fds; unknown keys and misspelled limits are refused', async () => {
  // stdin -0 is fd 0 (normalized); with no data on fd 0 we cannot read it in a test
  // runner, so only check that hello (which never reads stdin) runs with it.
  assertResult(runWasmSync(HELLO, { stdin: -0 }), { stdout: 'hello world\n' });
  // A misspelled limit or option must not mean "no limit": both are refused, naming the key.
  for (const run of [runWasmSync, runWasm]) {
    await assert.rejects(async () => run(HELLO, { limits: { timout: 100 } }),
                         { code: 'ERR_INVALID_ARG_VALUE', message: /'options\.limits\.timout' is not a limit; the known ones are timeout, fuel/ });
    await assert.rejects(async () => run(HELLO, { limit: { timeout: 100 } }),
                         { code: 'ERR_INVALID_ARG_VALUE', message: /'options\.limit' is not an option of runWasm/ });
  }
  assert.throws(() => new lib.WASI({ version: 'preview1', limits: { maxmemory: 1 } }),
                { code: 'ERR_INVALID_ARG_VALUE', message: /'options\.limits\.maxmemory' is not a limit/ });
  // new WASI keeps node:wasi's tolerance for unknown top-level keys.
  assert.doesNotThrow(() => new lib.WASI({ version: 'preview1', unknownOption: true }));
  assertResult(await runWasm(HELLO, { stdin: 0, args: [], env: {}, preopens: {} }), { stdout: 'hello world\n' });
});

test('runWasm: mutating the stdin Buffer while new bytes compile does not change what the guest reads', async () => {
  const stdin = Buffer.alloc(4096, 0x61);
  const original = Buffer.from(stdin);
  // Bytes never seen before, so runWasm has to compile them first.
  const echo = Buffer.concat([ECHO, Buffer.from([0, 6, 4, 0x6e, 0x6f, 0x6e, 0x65, Date.now() % 256])]);
  const promise = runWasm(echo, { args: ['echo'], stdin, stderr: 'ignore' });
  stdin.fill(0x7a);
  assertResult(await promise, { stdout: echoReport({ args: ['echo'], stdin: original }) });
});

test('under an address-space limit (ulimit -v) one-shot runs allocate on demand instead of failing', async () => {
  // The pooling allocator reserves about 4 TiB up front; a 16 GB limit refuses it.
  const { spawnSync } = await import('node:child_process');
  const script = `
    const { runWasm, runWasmSync, Module } = require(${JSON.stringify(new URL('../lib/index.js', import.meta.url).pathname)});
    const hello = require('node:fs').readFileSync(${JSON.stringify(fixturePath('hello.wasm'))});
    const component = require('node:fs').readFileSync(${JSON.stringify(fixturePath('components/hello.wasm'))});
    const outputs = [];
    for (let i = 0; i < 50; i++) outputs.push(String(runWasmSync(hello, { stdout: 'pipe' }).stdout));
    outputs.push(String(runWasmSync(new Module(component), { stdout: 'pipe' }).stdout));
    runWasm(hello, { stdout: 'pipe' }).then((r) => {
      outputs.push(String(r.stdout));
      process.stdout.write(JSON.stringify([...new Set(outputs)]) + ' ' + outputs.length);
    });`;
  const child = spawnSync('bash', ['-c', 'ulimit -v 16000000 && exec "$0" -e "$1"', process.execPath, script],
                          { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout, '["hello world\\n"] 52');
});

test('NODE_WASMTIME_THREADS sizes the pool (default: one thread per core); a bad value fails at require', async () => {
  const { spawnSync } = await import('node:child_process');
  const os = await import('node:os');
  const libPath = JSON.stringify(new URL('../lib/index.js', import.meta.url).pathname);
  // Counts the pool's threads (named node-wasmtime-run-N; the kernel keeps 15 characters).
  // A run starts the epoch clock thread from a pool thread, and a new thread carries its
  // parent's name until it sets its own: count once the clock has its name.
  const script = `require(${libPath}).runWasm('(module (memory (export "memory") 1) (func (export "_start")))').then(() => {
    const fs = require('fs');
    const count = (tries) => {
      const names = fs.readdirSync('/proc/self/task').map((t) => fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim());
      if (!names.includes('node-wasmtime-c') && tries > 0) return setTimeout(count, 10, tries - 1);
      console.log(names.filter((n) => n.startsWith('node-wasmtime-r')).length);
    };
    count(200);
  });`;
  const threads = (value) => {
    const env = { ...process.env };
    delete env.NODE_WASMTIME_THREADS;
    if (value !== undefined) env.NODE_WASMTIME_THREADS = value;
    return spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
  };
  // Rust counts cores as Node does, but also honours a cgroup CPU quota: at most Node's count.
  const byDefault = Number(threads(undefined).stdout);
  assert.ok(byDefault >= 1 && byDefault <= os.availableParallelism(), `default ${byDefault}`);
  assert.equal(threads('3').stdout, '3\n');
  assert.equal(threads('1').stdout, '1\n');
  for (const bad of ['0', '-1', 'two', '1.5', '', '1025']) {
    const child = threads(bad);
    assert.equal(child.status, 1, bad);
    assert.match(child.stderr, /RangeError \[ERR_OUT_OF_RANGE\]: The value of "process\.env\.NODE_WASMTIME_THREADS" is out of range\. It must be an integer >= 1 && <= 1024/, bad);
    assert.ok(child.stderr.includes(`Received '${bad}'`), bad);
  }
});

test('limits.timeout counts running time, not the queue; a signal also stops a queued run', async () => {
  const { spawnSync } = await import('node:child_process');
  const libPath = JSON.stringify(new URL('../lib/index.js', import.meta.url).pathname);
  // One pool thread, held by an endless guest for 1.5 s: a trivial run queued behind it with
  // a 100 ms timeout still completes (the timeout starts when it runs); one with
  // AbortSignal.timeout(100) is stopped while it waits, long before the thread frees up.
  const script = `const { runWasm } = require(${libPath});
    const endless = '(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))';
    const trivial = '(module (memory (export "memory") 1) (func (export "_start")))';
    const began = Date.now();
    const holder = runWasm(endless, { limits: { timeout: 1500 } }).catch((e) => e.code);
    const timed = runWasm(trivial, { limits: { timeout: 100 } }).then((r) => 'exit ' + r.exitCode);
    const signalled = runWasm(trivial, { signal: AbortSignal.timeout(100) })
      .catch((e) => e.name + ' after ' + (Date.now() - began < 1000 ? 'less' : 'more') + ' than 1 s');
    Promise.all([holder, timed, signalled]).then((r) => console.log(JSON.stringify(r)));`;
  const env = { ...process.env, NODE_WASMTIME_THREADS: '1' };
  const child = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
  assert.equal(child.stderr, '');
  assert.deepEqual(JSON.parse(child.stdout), ['ERR_WASI_TIMEOUT', 'exit 0', 'AbortError after less than 1 s']);
});
