// `maxBuffer`: a captured ('pipe') stdout or stderr keeps at most that many bytes (1 MiB by
// default, as child_process); a guest writing more is stopped with a RangeError
// ERR_WASI_STDIO_MAXBUFFER and exactly the first maxBuffer bytes are kept. Every path:
// runWasmSync, runWasm, new WASI + instantiate() + start(), the V8 path (wasiImport), and a
// component. large.wasm writes N MiB whose byte i is i % 251, so truncation is checked byte
// for byte.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lib, fixture } from './helpers.mjs';

const { WASI, Module, runWasm, runWasmSync } = lib;
const MiB = 1024 * 1024;

const large = new Module(fixture('large.wasm'));
const largeBytes = fixture('large.wasm');
const writesComponent = new Module(fixture('components/writes.wasm'));

/** The first `n` bytes large.wasm writes. */
function pattern(n) {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = i % 251;
  return out;
}

/** A module writing `count` copies of `text` to fd `fd`, one fd_write each. */
function writer(fd, text, count) {
  return new Module(`(module
    (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "${text}")
    (func (export "_start") (local $i i32)
      (i32.store (i32.const 0) (i32.const 100))
      (i32.store (i32.const 4) (i32.const ${text.length}))
      (loop $l
        (drop (call $w (i32.const ${fd}) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const ${count}))))))`);
}

function assertMaxBuffer(error, stream, limit) {
  assert.ok(error instanceof RangeError, `a RangeError, got ${error}`);
  assert.equal(error.code, 'ERR_WASI_STDIO_MAXBUFFER');
  assert.match(error.message, new RegExp(`^${stream} maxBuffer length exceeded`));
  assert.match(error.message, new RegExp(`more than ${limit} bytes`));
  return true;
}

test('runWasmSync: the default keeps 1 MiB of a 2 MiB stdout, exactly', () => {
  let caught;
  assert.throws(() => runWasmSync(large, { args: ['large', '2'] }), (error) => {
    caught = error;
    return assertMaxBuffer(error, 'stdout', MiB);
  });
  assert.ok(caught.stdout.equals(pattern(MiB)));
  assert.equal(caught.stderr.length, 0);
});

test('runWasmSync: output of exactly maxBuffer bytes is not an error', () => {
  const result = runWasmSync(large, { args: ['large', '1'] });
  assert.equal(result.exitCode, 0);
  assert.ok(result.stdout.equals(pattern(MiB)));
  const small = runWasmSync(writer(1, 'abcde', 4), { maxBuffer: 20 });
  assert.equal(small.stdout.toString(), 'abcde'.repeat(4));
});

test('runWasmSync: a write that crosses the cap keeps the part that fits', () => {
  assert.throws(() => runWasmSync(writer(1, 'abcde', 4), { maxBuffer: 13 }), (error) => {
    assertMaxBuffer(error, 'stdout', 13);
    assert.equal(error.stdout.toString(), 'abcdeabcdeabc');
    return true;
  });
  assert.throws(() => runWasmSync(writer(1, 'abcde', 1), { maxBuffer: 0 }), (error) => {
    assertMaxBuffer(error, 'stdout', 0);
    assert.equal(error.stdout.length, 0);
    return true;
  });
});

test('runWasmSync: stderr has its own cap and its own message', () => {
  assert.throws(() => runWasmSync(writer(2, 'err!', 10), { maxBuffer: 10 }), (error) => {
    assertMaxBuffer(error, 'stderr', 10);
    assert.equal(error.stderr.toString(), 'err!err!er');
    assert.equal(error.stdout.length, 0);
    return true;
  });
});

test('maxBuffer: Infinity lifts the cap; streams that are not piped are not capped', () => {
  const result = runWasmSync(large, { args: ['large', '3'], maxBuffer: Infinity });
  assert.equal(result.stdout.length, 3 * MiB);
  assert.ok(result.stdout.equals(pattern(3 * MiB)));
  const ignored = runWasmSync(large, { args: ['large', '2'], stdout: 'ignore', maxBuffer: 1 });
  assert.equal(ignored.exitCode, 0);
});

test('runWasm: the cap stops the guest and the rejection keeps the bytes', async () => {
  await assert.rejects(runWasm(large, { args: ['large', '2'], maxBuffer: 100_000 }), (error) => {
    assertMaxBuffer(error, 'stdout', 100_000);
    assert.ok(error.stdout.equals(pattern(100_000)));
    return true;
  });
  // Bytes compiled on the pool, too.
  await assert.rejects(runWasm(largeBytes, { args: ['large', '1'], maxBuffer: 65_537 }), (error) => {
    assertMaxBuffer(error, 'stdout', 65_537);
    assert.ok(error.stdout.equals(pattern(65_537)));
    return true;
  });
});

test('new WASI + instantiate() + start(): start() throws and wasi.stdout holds the cap', async () => {
  const wasi = new WASI({ version: 'preview1', args: ['large', '2'], stdout: 'pipe', maxBuffer: 4096 });
  const instance = await wasi.instantiate(large);
  assert.throws(() => wasi.start(instance), (error) => assertMaxBuffer(error, 'stdout', 4096));
  assert.ok(wasi.stdout.equals(pattern(4096)));
});

test('new WASI defaults to 1 MiB too', async () => {
  const wasi = new WASI({ version: 'preview1', args: ['large', '2'], stdout: 'pipe' });
  assert.throws(() => wasi.start(wasi.instantiate(large)), (error) => assertMaxBuffer(error, 'stdout', MiB));
  assert.ok(wasi.stdout.equals(pattern(MiB)));
});

test('the V8 path: start() throws and wasi.stdout holds the cap', async () => {
  const wasi = new WASI({ version: 'preview1', args: ['large', '2'], stdout: 'pipe', maxBuffer: 70_000 });
  const { instance } = await WebAssembly.instantiate(largeBytes, wasi.getImportObject());
  assert.throws(() => wasi.start(instance), (error) => assertMaxBuffer(error, 'stdout', 70_000));
  assert.ok(wasi.stdout.equals(pattern(70_000)));
});

test('a component command: the cap stops it on every run path', async () => {
  // components/writes.wasm: N one-byte writes of 'x' (argv[1]).
  const options = { args: ['writes', '500'], maxBuffer: 123 };
  assert.throws(() => runWasmSync(writesComponent, options), (error) => {
    assertMaxBuffer(error, 'stdout', 123);
    assert.equal(error.stdout.toString(), 'x'.repeat(123));
    return true;
  });
  await assert.rejects(runWasm(writesComponent, options), (error) => {
    assertMaxBuffer(error, 'stdout', 123);
    assert.equal(error.stdout.toString(), 'x'.repeat(123));
    return true;
  });
  const wasi = new WASI({ version: 'preview2', ...options, stdout: 'pipe' });
  assert.throws(() => wasi.start(wasi.instantiate(writesComponent)),
                (error) => assertMaxBuffer(error, 'stdout', 123));
  assert.equal(wasi.stdout.toString(), 'x'.repeat(123));
});

test('maxBuffer is validated as child_process validates it', () => {
  for (const bad of [-1, NaN, '10', 10n, {}, true]) {
    assert.throws(() => runWasmSync(large, { maxBuffer: bad }), (error) => {
      assert.ok(error instanceof RangeError);
      assert.equal(error.code, 'ERR_OUT_OF_RANGE');
      assert.match(error.message, /"options\.maxBuffer" is out of range\. It must be a positive number/);
      return true;
    });
    assert.throws(() => new WASI({ version: 'preview1', maxBuffer: bad }), { code: 'ERR_OUT_OF_RANGE' });
  }
  // null and undefined are the default, as in child_process.
  assert.throws(() => runWasmSync(large, { args: ['large', '2'], maxBuffer: null }),
                (error) => assertMaxBuffer(error, 'stdout', MiB));
});
