// Memories, tables and globals a core module imports from JS (node-wasmtime's `Memory`,
// `Table` and `Global`, mirroring `WebAssembly.Memory`/`Table`/`Global`), and exported
// globals and tables. Behaviour is compared with V8 running the same module with V8's own
// objects; a C program linked with an imported memory is compared with node:wasi.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parse as watToWasm } from '@bytecodealliance/jco';
import { lib, assertCode, fixture, NodeWASI } from './helpers.mjs';

const { WASI, Module, Memory, Global, Table, runWasmSync } = lib;

const ours = { Memory, Global, Table };
const v8 = { Memory: WebAssembly.Memory, Global: WebAssembly.Global, Table: WebAssembly.Table };

// Imports a memory, a mutable and an immutable global and a table; exports accessors.
const EXTERNS = `(module
  (import "env" "memory" (memory 1 4))
  (import "env" "counter" (global $counter (mut i32)))
  (import "env" "big" (global $big i64))
  (import "env" "table" (table 2 funcref))
  (func $seven (result i32) i32.const 7)
  (func $eight (result i32) i32.const 8)
  (elem (i32.const 1) $seven)
  (elem declare func $eight)
  (global (export "sp") (mut i32) (i32.const 1024))
  (global (export "pi") f64 (f64.const 3.5))
  (export "table" (table 0))
  (data (i32.const 16) "hi")
  (func (export "load") (param i32) (result i32) local.get 0 i32.load8_u)
  (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store8)
  (func (export "bump") global.get $counter i32.const 1 i32.add global.set $counter)
  (func (export "counter") (result i32) global.get $counter)
  (func (export "big") (result i64) global.get $big)
  (func (export "readSp") (result i32) global.get 2)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "call") (param i32) (result i32) local.get 0 call_indirect (result i32))
  (func (export "fill") (param i32) local.get 0 ref.func $eight table.set 0))`;
const externsBytes = await watToWasm(EXTERNS);
const externsOurs = new Module(externsBytes);
const externsV8 = new WebAssembly.Module(externsBytes);

function importsWith({ Memory, Global, Table }) {
  return {
    env: {
      memory: new Memory({ initial: 1, maximum: 4 }),
      counter: new Global({ value: 'i32', mutable: true }, 5),
      big: 2n ** 40n,
      table: new Table({ element: 'anyfunc', initial: 2 }),
    },
  };
}

/** The same steps on a V8 instance and on ours, each with its own engine's objects. */
function both(steps) {
  const v8Imports = importsWith(v8);
  const v8Instance = new WebAssembly.Instance(externsV8, v8Imports);
  const ourImports = importsWith(ours);
  const ourInstance = new WASI({ version: 'preview1' }).instantiate(externsOurs, ourImports);
  return [steps(v8Instance.exports, v8Imports.env), steps(ourInstance.exports, ourImports.env)];
}

describe('imported memory', () => {
  test('data segments, guest stores and JS writes meet in the one memory, as on V8', () => {
    const [a, b] = both((exports, { memory }) => {
      const out = [];
      out.push(new TextDecoder().decode(new Uint8Array(memory.buffer, 16, 2)));
      exports.store(100, 42);
      out.push(new Uint8Array(memory.buffer)[100]);
      new Uint8Array(memory.buffer)[200] = 9;
      out.push(exports.load(200), memory.buffer.byteLength);
      return out;
    });
    assert.deepEqual(b, a);
    assert.deepEqual(b, ['hi', 42, 9, 65536]);
  });

  test('bytes written before instantiation are the guest\'s; the old buffer is detached', () => {
    const memory = new Memory({ initial: 1, maximum: 4 });
    const before = memory.buffer;
    new Uint8Array(before)[300] = 77;
    assert.equal(memory.read(300, 1)[0], 77);
    const instance = new WASI({ version: 'preview1' }).instantiate(externsOurs, {
      env: { ...importsWith(ours).env, memory },
    });
    assert.equal(instance.exports.load(300), 77);
    // The bytes moved into the instance's store (V8 keeps the same buffer here).
    assert.equal(before.byteLength, 0);
    assert.equal(memory.buffer.byteLength, 65536);
    assert.equal(new Uint8Array(memory.buffer)[300], 77);
  });

  test('growth from the guest and from JS detaches the buffer and respects the maximum, as on V8', () => {
    const [a, b] = both((exports, { memory }) => {
      const first = memory.buffer;
      const out = [exports.grow(1), first.byteLength, memory.buffer.byteLength];
      const second = memory.buffer;
      out.push(memory.grow(1), second.byteLength, memory.buffer.byteLength);
      out.push(exports.grow(5)); // past the maximum: -1
      let error;
      try { memory.grow(2); } catch (err) { error = err; }
      out.push(error instanceof RangeError, memory.buffer.byteLength / 65536);
      return out;
    });
    assert.deepEqual(b, a);
    assert.deepEqual(b, [1, 0, 131072, 2, 0, 196608, -1, true, 3]);
  });

  test('an unbound memory grows and reads like a bound one', () => {
    const memory = new Memory({ initial: 0, maximum: 2 });
    assert.equal(memory.byteLength, 0);
    const empty = memory.buffer;
    assert.equal(memory.grow(1), 0);
    assert.equal(empty.byteLength, 0);
    memory.write(10, Buffer.from('abc'));
    assert.equal(memory.read(10, 3).toString(), 'abc');
    assert.equal(memory.grow(1), 1);
    assert.equal(memory.read(10, 3).toString(), 'abc');
    assert.throws(() => memory.grow(1), assertCode('ERR_OUT_OF_RANGE', RangeError));
  });

  test('a C program linked with --import-memory runs as under node:wasi', async () => {
    const bytes = fixture('imported-memory.wasm');
    const run = (wasi, instance, memory) => {
      // The host fills `seed` (its address is the exported global) before the program starts.
      new Uint8Array(memory.buffer).set(Buffer.from('host\0'), instance.exports.seed.value);
      // The program re-exports its memory (node:wasi looks for it there): the same memory.
      assert.equal(instance.exports.memory.buffer, memory.buffer);
      const code = wasi.start(instance);
      const at = instance.exports.report.value;
      const report = Buffer.from(memory.buffer, at, 128);
      return { code, report: report.subarray(0, report.indexOf(0)).toString(), pages: memory.buffer.byteLength / 65536 };
    };
    const nodeWasi = new NodeWASI({ version: 'preview1', args: ['prog', 'a'], returnOnExit: true, stdout: 1 });
    const v8Memory = new WebAssembly.Memory({ initial: 2 });
    const v8Instance = await WebAssembly.instantiate(new WebAssembly.Module(bytes), {
      ...nodeWasi.getImportObject(), env: { memory: v8Memory },
    });
    const expected = run(nodeWasi, v8Instance, v8Memory);

    const wasi = new WASI({ version: 'preview1', args: ['prog', 'a'], returnOnExit: true, stdout: 'pipe' });
    const memory = new Memory({ initial: 2 });
    const instance = wasi.instantiate(new Module(bytes), { env: { memory } });
    assert.deepEqual(run(wasi, instance, memory), expected);
    assert.equal(expected.code, 3);
    assert.equal(expected.report, 'argc=2 seed=host pages=1024');
    assert.equal(wasi.stdout.toString(), 'argc=2 seed=host pages=1024\n');
  });

  test('limits.maxMemory bounds an imported memory too', () => {
    const wasi = new WASI({ version: 'preview1', limits: { maxMemory: 65536 } });
    const memory = new Memory({ initial: 2 });
    assert.throws(
      () => wasi.instantiate(new Module(fixture('imported-memory.wasm')), { env: { memory } }),
      (err) => err.code === 'ERR_WASM_LINK' && /limits\.maxMemory/.test(err.message),
    );
    // Nothing was taken: the memory is still free for another instance.
    assert.equal(memory.buffer.byteLength, 131072);
    const instance = new WASI({ version: 'preview1', returnOnExit: true, stdout: 'pipe' })
      .instantiate(new Module(fixture('imported-memory.wasm')), { env: { memory } });
    assert.equal(typeof instance.exports._start, 'function');
  });
});

describe('globals', () => {
  test('a mutable imported global is shared between JS and the guest, as on V8', () => {
    const [a, b] = both((exports, { counter }) => {
      const out = [counter.value, exports.counter()];
      exports.bump();
      out.push(counter.value);
      counter.value = 100;
      exports.bump();
      out.push(exports.counter(), counter.valueOf());
      return out;
    });
    assert.deepEqual(b, a);
    assert.deepEqual(b, [5, 5, 6, 101, 101]);
  });

  test('an immutable global takes a BigInt, a number or a Global', () => {
    const [a, b] = both((exports) => exports.big());
    assert.equal(b, a);
    assert.equal(b, 2n ** 40n);
    const instance = new WASI({ version: 'preview1' }).instantiate(externsOurs, {
      env: { ...importsWith(ours).env, big: new Global({ value: 'i64' }, -3n) },
    });
    assert.equal(instance.exports.big(), -3n);
  });

  test('exported globals read and write, and immutable ones refuse writes, as on V8', () => {
    const [a, b] = both((exports) => {
      const out = [exports.sp.value, exports.pi.value];
      exports.sp.value = 2048;
      out.push(exports.sp.value, exports.readSp());
      let error;
      try { exports.pi.value = 1; } catch (err) { error = err; }
      out.push(error instanceof TypeError, exports.pi.value);
      return out;
    });
    assert.deepEqual(b, a);
    assert.deepEqual(b, [1024, 3.5, 2048, 2048, true, 3.5]);
    assert.ok(both((exports) => exports.sp)[1] instanceof Global);
  });

  test('values convert as the WebAssembly JS API converts them', () => {
    const cases = [
      [{ value: 'i32', mutable: true }, 2 ** 32 + 5],
      [{ value: 'i32' }, '12'],
      [{ value: 'f32' }, 1.1],
      [{ value: 'f64' }, undefined],
      [{ value: 'i64' }, undefined],
      [{ value: 'i64' }, '77'],
    ];
    for (const [descriptor, value] of cases) {
      assert.equal(new Global(descriptor, value).value, new WebAssembly.Global(descriptor, value).value);
    }
    assert.throws(() => new Global({ value: 'i64' }, 1), TypeError);
    assert.throws(() => new WebAssembly.Global({ value: 'i64' }, 1), TypeError);
    assert.throws(() => { new Global({ value: 'i32' }, 1).value = 2; }, TypeError);
  });
});

describe('tables', () => {
  test('elements, get, growth and the guest\'s own table.set, as on V8', () => {
    const [a, b] = both((exports, { table }) => {
      const out = [table.length, table.get(0), table.get(1)(), exports.call(1)];
      exports.fill(0);
      out.push(table.get(0)(), exports.call(0), table.grow(3), table.length, table.get(4));
      table.set(1, null);
      out.push(table.get(1));
      let error;
      try { table.get(5); } catch (err) { error = err; }
      out.push(error instanceof RangeError);
      return out;
    });
    assert.deepEqual(b, a);
    assert.deepEqual(b, [2, null, 7, 7, 8, 8, 2, 5, null, null, true]);
    assert.ok(both((exports) => exports.table)[1] instanceof Table);
  });
});

describe('link errors', () => {
  const base = () => importsWith(ours).env;
  const link = (env) => () => new WASI({ version: 'preview1' }).instantiate(externsOurs, { env });
  const linkError = (pattern) => (err) => {
    assertCode('ERR_WASM_LINK')(err);
    assert.match(err.message, pattern);
    return true;
  };

  test('a missing memory, table or global names the import and what to supply', () => {
    assert.throws(link({ ...base(), memory: undefined }), linkError(/env\.memory, a memory of at least 1 pages, but imports\.env\.memory is undefined\. Supply a Memory/));
    assert.throws(link({ ...base(), table: undefined }), linkError(/imports\.env\.table is undefined\. Supply a Table/));
    assert.throws(link({ ...base(), counter: undefined }), linkError(/imports\.env\.counter is undefined\. Supply a Global/));
  });

  test('V8\'s objects are refused with the reason', () => {
    assert.throws(link({ ...base(), memory: new WebAssembly.Memory({ initial: 1, maximum: 4 }) }),
      linkError(/must be a node-wasmtime Memory .*a WebAssembly\.Memory: V8's/));
    assert.throws(link({ ...base(), table: new WebAssembly.Table({ element: 'anyfunc', initial: 2 }) }),
      linkError(/must be a node-wasmtime Table .*a WebAssembly\.Table: V8's/));
  });

  test('sizes and types must match the import', () => {
    assert.throws(link({ ...base(), memory: new Memory({ initial: 1 }) }), linkError(/a Memory with no maximum, but the module imports one with a maximum of at most 4 pages/));
    assert.throws(link({ ...base(), memory: new Memory({ initial: 0, maximum: 4 }) }), linkError(/a Memory of 0 pages, but the module imports one of at least 1 pages/));
    assert.throws(link({ ...base(), table: new Table({ element: 'anyfunc', initial: 1 }) }), linkError(/a Table of 1 elements/));
    assert.throws(link({ ...base(), counter: new Global({ value: 'i64', mutable: true }) }), linkError(/is a Global \{ value: 'i64', mutable: true \}, but the module imports a global of type i32/));
    assert.throws(link({ ...base(), counter: new Global({ value: 'i32' }) }), linkError(/mutable: false/));
    assert.throws(link({ ...base(), counter: 5 }), linkError(/must be a Global \{ value: 'i32', mutable: true \}/));
    assert.throws(link({ ...base(), big: 5 }), linkError(/imports\.env\.big must be a Global \{ value: 'i64', mutable: false \} or a BigInt/));
  });

  test('a memory, table or mutable global serves one instance', () => {
    const env = base();
    new WASI({ version: 'preview1' }).instantiate(externsOurs, { env });
    for (const key of ['memory', 'table', 'counter']) {
      assert.throws(link({ ...base(), [key]: env[key] }), linkError(/already belongs to an instance/));
    }
    // An instance's exported memory cannot be imported by another instance either.
    const exported = new WASI({ version: 'preview1' }).instantiate(
      new Module('(module (memory (export "m") 1 4))'), {}).exports.m;
    assert.throws(link({ ...base(), memory: exported }), linkError(/already belongs to an instance/));
  });

  test('one-shot runs take constant globals but not memories', () => {
    const command = new Module(`(module
      (import "env" "code" (global $code i32))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") global.get $code call $exit))`);
    assert.equal(runWasmSync(command, { imports: { env: { code: 42 } } }).exitCode, 42);
    assert.equal(runWasmSync(command, { imports: { env: { code: new Global({ value: 'i32' }, 7) } } }).exitCode, 7);
    const importsMemory = new Module(fixture('imported-memory.wasm'));
    assert.throws(() => runWasmSync(importsMemory, { imports: { env: { memory: new Memory({ initial: 2 }) } } }),
      linkError(/a one-shot run \(runWasm, runWasmSync\) makes a store of its own/));
  });

  test('descriptors are validated with codes', () => {
    assert.throws(() => new Memory(), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
    assert.throws(() => new Memory({}), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
    assert.throws(() => new Memory({ initial: -1 }), assertCode('ERR_OUT_OF_RANGE', RangeError));
    assert.throws(() => new Memory({ initial: 65537 }), assertCode('ERR_OUT_OF_RANGE', RangeError));
    assert.throws(() => new Memory({ initial: 2, maximum: 1 }), assertCode('ERR_OUT_OF_RANGE', RangeError));
    assert.throws(() => new Global({ value: 'v128' }), assertCode('ERR_INVALID_ARG_VALUE', TypeError));
    assert.throws(() => new Global(null), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
    assert.throws(() => new Table({ element: 'externref', initial: 1 }), assertCode('ERR_INVALID_ARG_VALUE', TypeError));
    assert.throws(() => new Table({ element: 'anyfunc' }), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
    assert.throws(() => new Table({ element: 'anyfunc', initial: 1 }).set(0, () => 1), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
  });
});
