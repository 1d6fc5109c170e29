// Resources crossing between JS and a component: a resource an imported interface declares,
// served by a JS class (constructor, methods, statics, [Symbol.dispose] when the guest drops
// its handle), and a resource the component exports, as a JS class whose objects hold the
// guest's handle ([Symbol.dispose] runs the guest's destructor once). Both components are
// component WAT written the way wit-component lays such worlds out.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { lib, assertCode } from './helpers.mjs';

const { WASI, Module, runWasm, runWasmSync } = lib;

// Imports test:host/store with resource counter; exports functions that use it, and a command.
const HOST_RESOURCE_WAT = `(component
  (import "test:host/store" (instance $store
    (export "counter" (type $counter (sub resource)))
    (export "[constructor]counter" (func (param "start" u32) (result (own $counter))))
    (export "[method]counter.bump" (func (param "self" (borrow $counter)) (param "by" u32) (result u32)))
    (export "[static]counter.zero" (func (result (own $counter))))
    (export "total" (func (param "c" (own $counter)) (result u32)))))
  (alias export $store "counter" (type $counter))
  (alias export $store "[constructor]counter" (func $new))
  (alias export $store "[method]counter.bump" (func $bump))
  (alias export $store "[static]counter.zero" (func $zero))
  (alias export $store "total" (func $total))
  (core func $new_l (canon lower (func $new)))
  (core func $bump_l (canon lower (func $bump)))
  (core func $zero_l (canon lower (func $zero)))
  (core func $total_l (canon lower (func $total)))
  (core func $drop_l (canon resource.drop $counter))
  (core module $main
    (import "host" "new" (func $new (param i32) (result i32)))
    (import "host" "bump" (func $bump (param i32 i32) (result i32)))
    (import "host" "zero" (func $zero (result i32)))
    (import "host" "total" (func $total (param i32) (result i32)))
    (import "host" "drop" (func $drop (param i32)))
    (func $use (export "use") (param i32 i32) (result i32) (local $h i32) (local $r i32)
      (local.set $h (call $new (local.get 0)))
      (drop (call $bump (local.get $h) (local.get 1)))
      (local.set $r (call $bump (local.get $h) (local.get 1)))
      (call $drop (local.get $h))
      (local.get $r))
    (func (export "consume") (param i32) (result i32) (call $total (call $new (local.get 0))))
    (func (export "zero-bump") (result i32) (local $h i32) (local $r i32)
      (local.set $h (call $zero))
      (local.set $r (call $bump (local.get $h) (i32.const 1)))
      (call $drop (local.get $h))
      (local.get $r))
    (func (export "make") (param i32) (result i32) (call $new (local.get 0)))
    (func (export "run") (result i32) (i32.ne (call $use (i32.const 10) (i32.const 5)) (i32.const 20))))
  (core instance $i (instantiate $main
    (with "host" (instance (export "new" (func $new_l)) (export "bump" (func $bump_l))
      (export "zero" (func $zero_l)) (export "total" (func $total_l)) (export "drop" (func $drop_l))))))
  (func (export "use") (param "start" u32) (param "by" u32) (result u32) (canon lift (core func $i "use")))
  (func (export "consume") (param "n" u32) (result u32) (canon lift (core func $i "consume")))
  (func (export "zero-bump") (result u32) (canon lift (core func $i "zero-bump")))
  (func (export "make") (param "start" u32) (result (own $counter)) (canon lift (core func $i "make")))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run_instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run_instance)))`;

// Exports test:guest/blobs with resource blob (rep: its size; the destructor counts drops).
const GUEST_RESOURCE_WAT = `(component
  (core module $state
    (global $drops (export "drops") (mut i32) (i32.const 0))
    (func (export "dtor") (param i32) (global.set $drops (i32.add (global.get $drops) (i32.const 1)))))
  (core instance $s (instantiate $state))
  (type $blob (resource (rep i32) (dtor (core func $s "dtor"))))
  (core func $blob_new (canon resource.new $blob))
  (core func $blob_rep (canon resource.rep $blob))
  (core func $blob_drop (canon resource.drop $blob))
  (core module $main
    (import "res" "new" (func $new (param i32) (result i32)))
    (import "res" "rep" (func $rep (param i32) (result i32)))
    (import "res" "drop" (func $drop (param i32)))
    (import "state" "drops" (global $drops (mut i32)))
    (func (export "ctor") (param i32) (result i32) (call $new (local.get 0)))
    (func (export "size") (param i32) (result i32) (local.get 0))
    (func (export "grow") (param i32 i32) (result i32) (call $new (i32.add (local.get 0) (local.get 1))))
    (func (export "empty") (result i32) (call $new (i32.const 0)))
    (func (export "consume") (param i32) (result i32) (local $r i32)
      (local.set $r (call $rep (local.get 0)))
      (call $drop (local.get 0))
      (local.get $r))
    (func (export "drops") (result i32) (global.get $drops)))
  (core instance $i (instantiate $main
    (with "res" (instance (export "new" (func $blob_new)) (export "rep" (func $blob_rep)) (export "drop" (func $blob_drop))))
    (with "state" (instance $s))))
  (func $ctor (param "size" u32) (result (own $blob)) (canon lift (core func $i "ctor")))
  (func $size (param "self" (borrow $blob)) (result u32) (canon lift (core func $i "size")))
  (func $grow (param "self" (borrow $blob)) (param "by" u32) (result (own $blob)) (canon lift (core func $i "grow")))
  (func $empty (result (own $blob)) (canon lift (core func $i "empty")))
  (func $consume (param "b" (own $blob)) (result u32) (canon lift (core func $i "consume")))
  (func $drops (result u32) (canon lift (core func $i "drops")))
  (component $shim
    (import "blob" (type $b (sub resource)))
    (import "ctor" (func $c (param "size" u32) (result (own $b))))
    (import "size" (func $s (param "self" (borrow $b)) (result u32)))
    (import "grow" (func $g (param "self" (borrow $b)) (param "by" u32) (result (own $b))))
    (import "empty" (func $e (result (own $b))))
    (import "consume" (func $k (param "b" (own $b)) (result u32)))
    (import "drops" (func $d (result u32)))
    (export $be "blob" (type $b))
    (export "[constructor]blob" (func $c) (func (param "size" u32) (result (own $be))))
    (export "[method]blob.size" (func $s) (func (param "self" (borrow $be)) (result u32)))
    (export "[method]blob.grow" (func $g) (func (param "self" (borrow $be)) (param "by" u32) (result (own $be))))
    (export "[static]blob.empty" (func $e) (func (result (own $be))))
    (export "consume" (func $k) (func (param "b" (own $be)) (result u32)))
    (export "drops" (func $d)))
  (instance $blobs (instantiate $shim
    (with "blob" (type $blob)) (with "ctor" (func $ctor)) (with "size" (func $size)) (with "grow" (func $grow))
    (with "empty" (func $empty)) (with "consume" (func $consume)) (with "drops" (func $drops))))
  (export "test:guest/blobs" (instance $blobs)))`;

const hostComponent = new Module(HOST_RESOURCE_WAT);
const guestComponent = new Module(GUEST_RESOURCE_WAT);

/** A JS class serving `counter`, logging what the guest does with its objects. */
function counterClass(log) {
  return class Counter {
    constructor(start) { this.n = start; log.push(`new ${start}`); }
    bump(by) { this.n += by; return this.n; }
    static zero() { return new Counter(0); }
    [Symbol.dispose]() { log.push(`dispose ${this.n}`); }
  };
}

function hostImports(log, overrides = {}) {
  const Counter = counterClass(log);
  return {
    Counter,
    imports: {
      'test:host/store': {
        counter: Counter,
        total: (c) => { log.push(`total ${c instanceof Counter} ${c.n}`); return c.n; },
        ...overrides,
      },
    },
  };
}

describe('a resource the host defines, served by a JS class', () => {
  test('module.imports() names the resource in the WIT types', () => {
    assert.deepEqual(hostComponent.imports(), [{
      module: '', name: 'test:host/store', kind: 'instance',
      type: 'instance { counter: resource; [constructor]counter: func(start: u32) -> own<counter>; ' +
        '[method]counter.bump: func(self: borrow<counter>, by: u32) -> u32; ' +
        '[static]counter.zero: func() -> own<counter>; total: func(c: own<counter>) -> u32 }',
    }]);
  });

  test('constructor, methods and statics run on the JS object; a dropped handle disposes it once', () => {
    const log = [];
    const { imports } = hostImports(log);
    const { exports } = new WASI({ version: 'preview2' }).instantiate(hostComponent, imports);
    assert.equal(exports.use(10, 5), 20);
    assert.deepEqual(log.splice(0), ['new 10', 'dispose 20']);
    assert.equal(exports['zero-bump'](), 1);
    assert.deepEqual(log.splice(0), ['new 0', 'dispose 1']);
  });

  test('an own handle given to the host is the same object, and is not disposed', () => {
    const log = [];
    const { imports, Counter } = hostImports(log);
    const { exports } = new WASI({ version: 'preview2' }).instantiate(hostComponent, imports);
    assert.equal(exports.consume(7), 7);
    assert.deepEqual(log.splice(0), ['new 7', 'total true 7']);
    // A guest export returning its own<counter> gives JS the object the constructor made.
    const made = exports.make(3);
    assert.ok(made instanceof Counter);
    assert.equal(made.bump(1), 4);
    assert.deepEqual(log.splice(0), ['new 3']);
  });

  test('thousands of handles come and go without keeping their objects', () => {
    const log = [];
    const { imports } = hostImports(log);
    const { exports } = new WASI({ version: 'preview2' }).instantiate(hostComponent, imports);
    for (let i = 0; i < 5000; i++) assert.equal(exports.use(i, 1), i + 2);
    assert.equal(log.length, 10000);
    assert.equal(log.filter((line) => line.startsWith('dispose')).length, 5000);
  });

  test('a throw from a method, the constructor or [Symbol.dispose] reaches the caller as the same value', () => {
    const error = new Error('host method failure');
    const log = [];
    const { Counter } = hostImports(log);
    const failing = class extends Counter { bump() { throw error; } };
    const { exports } = new WASI({ version: 'preview2' }).instantiate(hostComponent, {
      'test:host/store': { counter: failing, total: () => 0 },
    });
    assert.throws(() => exports.use(1, 1), (err) => err === error);
    const refusing = class { constructor() { throw error; } static zero() { return {}; } };
    const second = new WASI({ version: 'preview2' }).instantiate(hostComponent, {
      'test:host/store': { counter: refusing, total: () => 0 },
    });
    assert.throws(() => second.exports.consume(1), (err) => err === error);
    const disposing = class extends Counter { [Symbol.dispose]() { throw error; } };
    const third = new WASI({ version: 'preview2' }).instantiate(hostComponent, {
      'test:host/store': { counter: disposing, total: () => 0 },
    });
    assert.throws(() => third.exports.use(1, 1), (err) => err === error);
  });

  test('a static that returns no object, or a method that is missing, is a TypeError', () => {
    // (A trap leaves a component instance unusable, so each case gets its own.)
    const make = () => new WASI({ version: 'preview2' }).instantiate(hostComponent, {
      'test:host/store': { counter: class { static zero() { return 5; } }, total: () => 0 },
    }).exports;
    assert.throws(() => make()['zero-bump'](), (err) => err instanceof TypeError && /must be an object/.test(err.message));
    assert.throws(() => make().use(1, 1), (err) => err instanceof TypeError && /no method bump/.test(err.message));
  });

  test('a missing class, or a missing static, is ERR_WASM_LINK naming it', () => {
    const wasi = new WASI({ version: 'preview2' });
    assert.throws(() => wasi.instantiate(hostComponent, { 'test:host/store': { total: () => 1 } }),
      (err) => assertCode('ERR_WASM_LINK')(err) &&
        /imports\['test:host\/store'\]\['counter'\] must be the JS class that serves it/.test(err.message));
    assert.throws(() => wasi.instantiate(hostComponent, { 'test:host/store': { counter: class {}, total: () => 1 } }),
      (err) => assertCode('ERR_WASM_LINK')(err) && /with a static function zero/.test(err.message));
  });

  test('a host function that calls back into its own component gets ERR_WASI_BUSY, not a hang', () => {
    let instance;
    let inner;
    const { Counter } = hostImports([]);
    instance = new WASI({ version: 'preview2' }).instantiate(hostComponent, {
      'test:host/store': {
        counter: Counter,
        total: (c) => {
          try { instance.exports.make(1); } catch (err) { inner = err; }
          return c.n;
        },
      },
    });
    assert.equal(instance.exports.consume(4), 4);
    assertCode('ERR_WASI_BUSY')(inner);
    assert.match(inner.message, /forbids re-entering an instance/);
    assert.ok(instance.exports.make(2) instanceof Counter);
  });

  test('runWasmSync, and on node-wasmtime\'s threads runWasm and startAsync, with async methods', async () => {
    const log = [];
    assert.equal(runWasmSync(hostComponent, { imports: hostImports(log).imports }).exitCode, 0);
    assert.deepEqual(log.splice(0), ['new 10', 'dispose 20']);
    // On the pool, a method may return a Promise: the guest waits for it.
    const { Counter } = hostImports(log);
    const Slow = class extends Counter {
      async bump(by) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        return super.bump(by);
      }
    };
    const imports = { 'test:host/store': { counter: Slow, total: (c) => c.n } };
    assert.equal((await runWasm(hostComponent, { imports })).exitCode, 0);
    assert.deepEqual(log.splice(0), ['new 10', 'dispose 20']);
    const wasi = new WASI({ version: 'preview2' });
    const instance = wasi.instantiate(hostComponent, imports);
    assert.equal(await wasi.startAsync(instance), 0);
    assert.deepEqual(log.splice(0), ['new 10', 'dispose 20']);
  });

  test('on the pool, a throw from [Symbol.dispose] rejects the run with the same value', async () => {
    const error = new Error('dispose failure on the pool');
    const { Counter } = hostImports([]);
    const Failing = class extends Counter { [Symbol.dispose]() { throw error; } };
    await assert.rejects(runWasm(hostComponent, { imports: { 'test:host/store': { counter: Failing, total: () => 0 } } }),
      (err) => err === error);
  });
});

describe('a resource the component exports, as a JS class', () => {
  const blobs = () => new WASI({ version: 'preview2' }).instantiate(guestComponent).exports['test:guest/blobs'];

  test('module.exports() names the resource in the WIT types', () => {
    assert.match(guestComponent.exports()[0].type, /\[constructor\]blob: func\(size: u32\) -> own<blob>; \[method\]blob\.size: func\(self: borrow<blob>\) -> u32/);
  });

  test('constructor, methods and statics call the guest; objects are instances of the class', () => {
    const api = blobs();
    assert.deepEqual(Object.keys(api).sort(), ['blob', 'consume', 'drops']);
    const blob = new api.blob(5);
    assert.ok(blob instanceof api.blob);
    assert.equal(blob.size(), 5);
    const grown = blob.grow(3);
    assert.ok(grown instanceof api.blob);
    assert.notEqual(grown, blob);
    assert.equal(grown.size(), 8);
    assert.equal(api.blob.empty().size(), 0);
    assert.equal(typeof api.blob.prototype[Symbol.dispose], 'function');
  });

  test('[Symbol.dispose]() runs the guest\'s destructor exactly once; the object is then unusable', () => {
    const api = blobs();
    const blob = new api.blob(5);
    assert.equal(api.drops(), 0);
    blob[Symbol.dispose]();
    blob[Symbol.dispose]();
    assert.equal(api.drops(), 1);
    assert.throws(() => blob.size(), (err) => assertCode('ERR_INVALID_ARG_VALUE')(err) && /disposed of or given to the guest/.test(err.message));
  });

  test('an object given to the guest as own moves there (the guest drops it); borrows do not', () => {
    const api = blobs();
    const blob = new api.blob(9);
    assert.equal(blob.size(), 9);
    assert.equal(blob.size(), 9);
    assert.equal(api.consume(blob), 9);
    assert.equal(api.drops(), 1);
    assert.throws(() => blob.size(), assertCode('ERR_INVALID_ARG_VALUE'));
    blob[Symbol.dispose](); // nothing left to drop
    assert.equal(api.drops(), 1);
  });

  test('only objects of the class pass for it', () => {
    const api = blobs();
    assert.throws(() => api.consume({}), (err) => assertCode('ERR_INVALID_ARG_TYPE', TypeError)(err) && /must be a blob/.test(err.message));
    assert.throws(() => api.blob.prototype.size.call({}), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
    const other = blobs();
    assert.throws(() => api.consume(new other.blob(1)), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
  });

  test('many objects made and disposed in a loop', () => {
    const api = blobs();
    for (let i = 0; i < 5000; i++) {
      const blob = new api.blob(i);
      assert.equal(blob.size(), i);
      blob[Symbol.dispose]();
    }
    assert.equal(api.drops(), 5000);
  });
});
