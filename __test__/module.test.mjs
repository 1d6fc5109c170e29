// The `Module` class: compiling from every accepted input form (Buffer, Uint8Array, an
// offset view into a larger buffer, ArrayBuffer, DataView, WAT text), `kind`, import and
// export descriptors, serialize/deserialize round trips and the rejection of bytes that are
// not intact serialize() output, and compile errors with their codes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { blake3 } from '@noble/hashes/blake3.js';
import { lib, fixture, fixturePath, tempDir } from './helpers.mjs';

const { Module, runWasmSync } = lib;

const HELLO = fixture('hello.wasm');
const HELLO_OUT = Buffer.from('hello world\n');
// serialize() output: 8-byte magic, 1 kind byte, 32-byte BLAKE3 hash of the payload, 32-byte
// MAC (keyed BLAKE3) under the user's key, then wasmtime's payload.
const CHECKSUM_AT = 8 + 1;
const MAC_AT = CHECKSUM_AT + 32;
const HEADER_LEN = MAC_AT + 32;

/** Asserts `mod` is a compiled hello.wasm: shape and a real run. */
function assertIsHello(mod) {
  assert.ok(mod instanceof Module);
  assert.equal(mod.kind, 'module');
  assert.deepEqual(mod.exports(), [
    { name: 'memory', kind: 'memory', type: 'memory (2 pages min)' },
    { name: '_start', kind: 'function', type: 'func () -> ()' },
  ]);
  const result = runWasmSync(mod);
  assert.equal(result.exitCode, 0);
  assert.deepEqual(result.stdout, HELLO_OUT);
  assert.deepEqual(result.stderr, Buffer.alloc(0));
}

function assertCode(code, Class = Error) {
  return (err) => {
    assert.ok(err instanceof Class, `expected ${Class.name}, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.code, code);
    return true;
  };
}

// --- compiling from every input form ------------------------------------------------

test('compiles from a Buffer', () => {
  assertIsHello(new Module(HELLO));
});

test('compiles from a Uint8Array', () => {
  const bytes = new Uint8Array(HELLO.length);
  bytes.set(HELLO);
  assertIsHello(new Module(bytes));
});

test('compiles from a Uint8Array view with a nonzero byteOffset into a bigger buffer', () => {
  const offset = 13;
  // Surround the module with bytes that would not compile if they were read.
  const big = new Uint8Array(offset + HELLO.length + 29).fill(0xff);
  big.set(HELLO, offset);
  const view = new Uint8Array(big.buffer, offset, HELLO.length);
  assert.notEqual(view.byteOffset, 0);
  assert.ok(view.buffer.byteLength > view.byteLength);
  assertIsHello(new Module(view));
});

test('compiles from a Buffer slice that shares a pooled ArrayBuffer', () => {
  const big = Buffer.alloc(7 + HELLO.length + 5, 0xee);
  HELLO.copy(big, 7);
  assertIsHello(new Module(big.subarray(7, 7 + HELLO.length)));
});

test('compiles from an ArrayBuffer', () => {
  const ab = new ArrayBuffer(HELLO.length);
  new Uint8Array(ab).set(HELLO);
  assertIsHello(new Module(ab));
});

test('compiles from a DataView (with and without offset)', () => {
  const ab = new ArrayBuffer(HELLO.length);
  new Uint8Array(ab).set(HELLO);
  assertIsHello(new Module(new DataView(ab)));

  const offset = 5;
  const big = new ArrayBuffer(offset + HELLO.length + 3);
  new Uint8Array(big).fill(0xff);
  new Uint8Array(big, offset).set(HELLO);
  assertIsHello(new Module(new DataView(big, offset, HELLO.length)));
});

// hello.wasm followed by an empty-named custom section sized so the total length is a
// multiple of 8, so any TypedArray can view it exactly.
function helloPaddedTo8() {
  const k = (8 - ((HELLO.length + 3) % 8)) % 8; // payload bytes of the custom section
  const section = Buffer.from([0x00, 1 + k, 0x00, ...new Array(k).fill(0x2a)]);
  const bytes = Buffer.concat([HELLO, section]);
  assert.equal(bytes.length % 8, 0);
  return bytes;
}

test('compiles from wider TypedArrays, reading byteLength bytes, not length', () => {
  const padded = helloPaddedTo8();
  for (const Ctor of [Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array,
    Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array]) {
    const offset = 16; // a multiple of every element size
    const ab = new ArrayBuffer(offset + padded.length + 16);
    new Uint8Array(ab).fill(0xff);
    new Uint8Array(ab, offset).set(padded);
    const view = new Ctor(ab, offset, padded.length / Ctor.BYTES_PER_ELEMENT);
    assertIsHello(new Module(view));
  }
});

test('compiles from WAT text', () => {
  const mod = new Module(`
    (module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (call $exit (i32.const 7))))`);
  assert.equal(mod.kind, 'module');
  assert.deepEqual(mod.imports(), [
    { module: 'wasi_snapshot_preview1', name: 'proc_exit', kind: 'function', type: 'func (i32) -> ()' },
  ]);
  assert.deepEqual(mod.exports(), [
    { name: 'memory', kind: 'memory', type: 'memory (1 pages min)' },
    { name: '_start', kind: 'function', type: 'func () -> ()' },
  ]);
  const result = runWasmSync(mod);
  assert.equal(result.exitCode, 7);
});

// --- kind, imports, exports -----------------------------------------------------------

test("kind is 'module' for a core module and 'component' for a component", () => {
  assert.equal(new Module(HELLO).kind, 'module');
  assert.equal(new Module('(module)').kind, 'module');
  assert.equal(new Module('(component)').kind, 'component');
});

test("imports() of hello.wasm lists wasi_snapshot_preview1 functions", () => {
  const imports = new Module(HELLO).imports();
  assert.ok(Array.isArray(imports));
  assert.ok(imports.length > 0);
  for (const imp of imports) {
    assert.deepEqual(Object.keys(imp).sort(), ['kind', 'module', 'name', 'type']);
    assert.match(imp.type, /^func \(/);
    assert.equal(imp.module, 'wasi_snapshot_preview1');
    assert.equal(imp.kind, 'function');
    assert.equal(typeof imp.name, 'string');
    assert.ok(imp.name.length > 0);
  }
  const names = imports.map((imp) => imp.name);
  // hello.c writes to stdout and returns from main: fd_write and proc_exit are needed.
  assert.ok(names.includes('fd_write'), `imports: ${names}`);
  assert.ok(names.includes('proc_exit'), `imports: ${names}`);
  assert.equal(new Set(names).size, names.length);
});

test('exports() of hello.wasm lists memory and _start with their kinds and types', () => {
  assert.deepEqual(new Module(HELLO).exports(), [
    { name: 'memory', kind: 'memory', type: 'memory (2 pages min)' },
    { name: '_start', kind: 'function', type: 'func () -> ()' },
  ]);
});

test('imports() and exports() report every core extern kind, in declaration order', () => {
  const mod = new Module(`
    (module
      (import "env" "f" (func))
      (import "env" "m" (memory 1))
      (import "env" "t" (table 1 funcref))
      (import "env" "g" (global i32))
      (global $h (mut i32) (i32.const 0))
      (table $u 2 funcref)
      (func $k)
      (export "k" (func $k))
      (export "mem" (memory 0))
      (export "tab" (table $u))
      (export "glob" (global $h)))`);
  assert.deepEqual(mod.imports(), [
    { module: 'env', name: 'f', kind: 'function', type: 'func () -> ()' },
    { module: 'env', name: 'm', kind: 'memory', type: 'memory (1 pages min)' },
    { module: 'env', name: 't', kind: 'table', type: 'table of (ref null func)' },
    { module: 'env', name: 'g', kind: 'global', type: 'global i32' },
  ]);
  assert.deepEqual(mod.exports(), [
    { name: 'k', kind: 'function', type: 'func () -> ()' },
    { name: 'mem', kind: 'memory', type: 'memory (1 pages min)' },
    { name: 'tab', kind: 'table', type: 'table of (ref null func)' },
    { name: 'glob', kind: 'global', type: 'global (mut i32)' },
  ]);
});

test('an empty module has no imports and no exports', () => {
  const mod = new Module('(module)');
  assert.deepEqual(mod.imports(), []);
  assert.deepEqual(mod.exports(), []);
});

// --- serialize / deserialize ----------------------------------------------------------

test('serialize -> deserialize round trip gives a module that runs', () => {
  const original = new Module(HELLO);
  const bytes = original.serialize();
  assert.ok(Buffer.isBuffer(bytes));
  assert.ok(bytes.length > HEADER_LEN);
  const loaded = Module.deserialize(bytes);
  assertIsHello(loaded);
  assert.deepEqual(loaded.imports(), original.imports());
  assert.deepEqual(loaded.exports(), original.exports());
});

test('deserialize accepts every BufferSource form, including offset views', () => {
  const bytes = new Module(HELLO).serialize();
  const offset = 11;
  const big = new Uint8Array(offset + bytes.length + 7).fill(0xab);
  big.set(bytes, offset);
  assertIsHello(Module.deserialize(new Uint8Array(big.buffer, offset, bytes.length)));
  assertIsHello(Module.deserialize(new DataView(big.buffer, offset, bytes.length)));
  const ab = new ArrayBuffer(bytes.length);
  new Uint8Array(ab).set(bytes);
  assertIsHello(Module.deserialize(ab));
});

test('a serialized component round-trips and keeps its kind', () => {
  const bytes = new Module('(component)').serialize();
  const loaded = Module.deserialize(bytes);
  assert.equal(loaded.kind, 'component');
});

test('deserialize rejects random bytes with ERR_WASM_DESERIALIZE', () => {
  for (const size of [0, 1, 40, 41, 4096]) {
    const bytes = crypto.randomBytes(size);
    assert.throws(() => Module.deserialize(bytes), assertCode('ERR_WASM_DESERIALIZE'), `size ${size}`);
  }
});

test('deserialize rejects a truncated serialize() output', () => {
  const bytes = new Module(HELLO).serialize();
  for (const length of [0, 8, 9, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 1,
    Math.floor(bytes.length / 2), bytes.length - 1]) {
    assert.throws(() => Module.deserialize(bytes.subarray(0, length)),
      assertCode('ERR_WASM_DESERIALIZE'), `truncated to ${length} of ${bytes.length}`);
  }
});

test('deserialize rejects serialize() output with one flipped byte in the payload', () => {
  const bytes = new Module(HELLO).serialize();
  for (const at of [HEADER_LEN, Math.floor((HEADER_LEN + bytes.length) / 2), bytes.length - 1]) {
    const corrupt = Buffer.from(bytes);
    corrupt[at] ^= 0x01;
    assert.throws(() => Module.deserialize(corrupt), assertCode('ERR_WASM_DESERIALIZE'), `flipped byte ${at}`);
  }
  // The original still loads: the copies above did not touch it.
  assertIsHello(Module.deserialize(bytes));
});

test('deserialize rejects a flipped byte in the kind byte, the checksum or the MAC', () => {
  const bytes = new Module(HELLO).serialize();
  for (const at of [8, CHECKSUM_AT, MAC_AT - 1, MAC_AT, HEADER_LEN - 1]) {
    const corrupt = Buffer.from(bytes);
    corrupt[at] ^= 0x80;
    assert.throws(() => Module.deserialize(corrupt), assertCode('ERR_WASM_DESERIALIZE'), `flipped byte ${at}`);
  }
});

test('deserialize rejects a raw .wasm file', () => {
  assert.throws(() => Module.deserialize(HELLO), assertCode('ERR_WASM_DESERIALIZE'));
});

/** Runs `script` (ESM) in a child process whose XDG_CACHE_HOME is `cacheHome`. */
function inProcess(script, cacheHome) {
  const env = { ...process.env, XDG_CACHE_HOME: cacheHome };
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const LIB_URL = new URL('../lib/index.js', import.meta.url).href;

test('deserialize refuses forged bytes: a changed payload with its hash recomputed', () => {
  const bytes = new Module(HELLO).serialize();
  const forged = Buffer.from(bytes);
  forged[forged.length - 1] ^= 0x01;
  Buffer.from(blake3(forged.subarray(HEADER_LEN))).copy(forged, CHECKSUM_AT);
  assert.throws(() => Module.deserialize(forged), (err) => {
    assert.equal(err.code, 'ERR_WASM_DESERIALIZE');
    assert.match(err.message, /^cannot deserialize module: the bytes are not signed by this user's key: .*Pass \{ trusted: true \} only for bytes whose origin you vouch for/);
    return true;
  });
});

test("bytes serialized under another user's key are refused, and load with { trusted: true }", () => {
  const out = path.join(tempDir(), 'hello.cwasm');
  const made = inProcess(`
    import fs from 'node:fs';
    import lib from ${JSON.stringify(LIB_URL)};
    fs.writeFileSync(${JSON.stringify(out)}, new lib.Module(fs.readFileSync(${JSON.stringify(fixturePath('hello.wasm'))})).serialize());
  `, tempDir());
  assert.deepEqual(made, { status: 0, stdout: '', stderr: '' });
  const foreign = fs.readFileSync(out);
  assert.throws(() => Module.deserialize(foreign), /not signed by this user's key/);
  assert.throws(() => Module.deserialize(foreign, {}), /not signed by this user's key/);
  assert.throws(() => Module.deserialize(foreign, { trusted: false }), /not signed by this user's key/);
  assertIsHello(Module.deserialize(foreign, { trusted: true }));
  // Trusted skips the signature, never the checksum.
  const corrupt = Buffer.from(foreign);
  corrupt[corrupt.length - 1] ^= 0x01;
  assert.throws(() => Module.deserialize(corrupt, { trusted: true }), /checksum mismatch/);
});

test('serialize() makes the key owner-only in the user directory and refuses one others can write', () => {
  const home = tempDir();
  const script = `
    import lib from ${JSON.stringify(LIB_URL)};
    try { lib.Module.deserialize(new lib.Module('(module)').serialize()); console.log('ok'); }
    catch (err) { console.log(err.code + ': ' + err.message); }
  `;
  assert.deepEqual(inProcess(script, home), { status: 0, stdout: 'ok\n', stderr: '' });
  const dir = path.join(home, 'node-wasmtime');
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(dir, 'key')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(dir, 'key')).size, 32);
  fs.chmodSync(dir, 0o777);
  const refused = inProcess(script, home);
  assert.equal(refused.status, 0);
  assert.match(refused.stdout, /^ERR_WASM_SERIALIZE: cannot sign the compiled code: .*node-wasmtime can be written by other users \(mode 777\)/);
});

test('deserialize validates its options and names output of the unsigned format', () => {
  const bytes = new Module(HELLO).serialize();
  for (const options of ['yes', 1, null, true]) {
    assert.throws(() => Module.deserialize(bytes, options), assertCode('ERR_INVALID_ARG_TYPE', TypeError), String(options));
  }
  for (const trusted of [1, 'true', null]) {
    assert.throws(() => Module.deserialize(bytes, { trusted }), (err) => {
      assert.equal(err.code, 'ERR_INVALID_ARG_TYPE');
      assert.match(err.message, /^The "options.trusted" property must be of type boolean\. Received /);
      return true;
    });
  }
  assertIsHello(Module.deserialize(bytes, undefined));
  const old = Buffer.concat([Buffer.from('NWASMTM\x01', 'latin1'), bytes.subarray(8, 9), bytes.subarray(MAC_AT)]);
  assert.throws(() => Module.deserialize(old, { trusted: true }), /made by an older node-wasmtime .*serialize\(\) it again/);
});

test('deserialize rejects a non-buffer argument with ERR_INVALID_ARG_TYPE', () => {
  const wat = '(module)';
  for (const value of [undefined, null, 42, wat, {}, [1, 2, 3], true, () => {}]) {
    assert.throws(() => Module.deserialize(value), assertCode('ERR_INVALID_ARG_TYPE', TypeError),
      `deserialize(${String(value)})`);
  }
  assert.throws(() => Module.deserialize(), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
});

// --- compile errors -------------------------------------------------------------------

test('bad wasm bytes throw ERR_WASM_COMPILE carrying the reason', () => {
  const cases = [
    [Buffer.from('\0asm\x02\0\0\0'), 'unknown binary version'],
    [Buffer.from('\0asm\x01\0\0\0\x05\x03\x01'), 'unexpected end-of-file'],
  ];
  for (const [bytes, reason] of cases) {
    assert.throws(() => new Module(bytes), (err) => {
      assertCode('ERR_WASM_COMPILE')(err);
      assert.ok(err.message.includes(reason), `message ${JSON.stringify(err.message)} lacks ${reason}`);
      return true;
    });
  }
});

test('a module that fails validation throws ERR_WASM_COMPILE carrying the reason', () => {
  assert.throws(() => new Module('(module (func (result i32) i64.const 0))'), (err) => {
    assertCode('ERR_WASM_COMPILE')(err);
    assert.ok(err.message.includes('type mismatch'), err.message);
    return true;
  });
});

test('bad WAT throws ERR_WASM_COMPILE carrying the parser reason', () => {
  assert.throws(() => new Module('(module (func'), (err) => {
    assertCode('ERR_WASM_COMPILE')(err);
    assert.ok(err.message.includes('expected `)`'), err.message);
    return true;
  });
  assert.throws(() => new Module('(module (func (i32.bogus)))'), assertCode('ERR_WASM_COMPILE'));
  assert.throws(() => new Module('this is not wasm'), assertCode('ERR_WASM_COMPILE'));
  assert.throws(() => new Module(''), assertCode('ERR_WASM_COMPILE'));
});

test('empty bytes throw ERR_WASM_COMPILE', () => {
  assert.throws(() => new Module(new Uint8Array(0)), assertCode('ERR_WASM_COMPILE'));
  assert.throws(() => new Module(new ArrayBuffer(0)), assertCode('ERR_WASM_COMPILE'));
});

test('new Module(42) and new Module() throw TypeError ERR_INVALID_ARG_TYPE', () => {
  assert.throws(() => new Module(42), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
  assert.throws(() => new Module(), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
  for (const value of [null, undefined, true, {}, [0, 97, 115, 109], 1n, () => {}]) {
    assert.throws(() => new Module(value), assertCode('ERR_INVALID_ARG_TYPE', TypeError), `new Module(${String(value)})`);
  }
});

test('a Symbol source or serialized input throws TypeError ERR_INVALID_ARG_TYPE', () => {
  assert.throws(() => new Module(Symbol('x')), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
  assert.throws(() => Module.deserialize(Symbol('x')), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
});

// --- Module.compile: off the main thread ----------------------------------------------

test('Module.compile resolves to a Module for bytes, text and components', async () => {
  const pending = Module.compile(HELLO);
  assert.ok(pending instanceof Promise);
  assertIsHello(await pending);
  assert.equal((await Module.compile('(module)')).kind, 'module');
  const component = await Module.compile(fixture('components/hello.wasm'));
  assert.equal(component.kind, 'component');
  assert.deepEqual(runWasmSync(component).stdout, HELLO_OUT);
});

test('Module.compile copies the bytes first: the caller may reuse its buffer at once', async () => {
  const bytes = Buffer.from(HELLO);
  const pending = Module.compile(bytes);
  bytes.fill(0);
  assertIsHello(await pending);
});

test('Module.compile rejects (never throws) on bad input', async () => {
  await assert.rejects(Module.compile(Buffer.from('\0asm\x01\0\0\0garbage')), assertCode('ERR_WASM_COMPILE'));
  await assert.rejects(Module.compile('(module (func (result i32)))'), assertCode('ERR_WASM_COMPILE'));
  let pending;
  assert.doesNotThrow(() => { pending = Module.compile(42); });
  await assert.rejects(pending, assertCode('ERR_INVALID_ARG_TYPE', TypeError));
});

test('runWasm compiles bytes off the main thread and reuses the compilation', async () => {
  const bytes = Buffer.from('(module (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32))) (memory (export "memory") 1) (data (i32.const 8) "\\10\\00\\00\\00\\03\\00\\00\\00") (data (i32.const 16) "abc") (func (export "_start") (drop (call $w (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 0)))))');
  const [a, b] = await Promise.all([lib.runWasm(bytes), lib.runWasm(bytes)]);
  assert.deepEqual(a.stdout, Buffer.from('abc'));
  assert.deepEqual(b.stdout, Buffer.from('abc'));
  assert.deepEqual((await lib.runWasm(bytes)).stdout, Buffer.from('abc'));
  await assert.rejects(lib.runWasm(Buffer.from('nope')), assertCode('ERR_WASM_COMPILE'));
});
