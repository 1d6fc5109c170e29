// A component's exports called from JS: every supported WIT type goes through an identity
// function (JS -> component -> JS), checked value by value, plus the errors for wrong
// types, out-of-range numbers and missing arguments, and a trap from an export.
//
// The test component is WAT generated below: one core module whose identity functions
// return their flat arguments as they came (one core value directly; several through memory,
// in the canonical ABI's layout, which for the types used here is consecutive i32s).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lib, assertCode, MEMORY_AND_REALLOC_WAT } from './helpers.mjs';

const { WASI, Module } = lib;

// name -> [WIT type (component WAT), core function that implements the identity]
const CASES = {
  bool: ['bool', 'id-i32'],
  u8: ['u8', 'id-i32'],
  s8: ['s8', 'id-i32'],
  u16: ['u16', 'id-i32'],
  s16: ['s16', 'id-i32'],
  u32: ['u32', 'id-i32'],
  s32: ['s32', 'id-i32'],
  u64: ['u64', 'id-i64'],
  s64: ['s64', 'id-i64'],
  f32: ['f32', 'id-f32'],
  f64: ['f64', 'id-f64'],
  char: ['char', 'id-i32'],
  string: ['string', 'id-2'],
  color: ['$color', 'id-i32'],
  perms: ['$perms', 'id-i32'],
  bytes: ['(list u8)', 'id-2'],
  words: ['(list u32)', 'id-2'],
  strings: ['(list string)', 'id-2'],
  point: ['$point', 'id-3'],
  pair: ['(tuple u32 string)', 'id-3'],
  'maybe-u32': ['(option u32)', 'id-2'],
  'maybe-string': ['(option string)', 'id-3'],
  outcome: ['(result u32 (error string))', 'id-3'],
  shape: ['$shape', 'id-3'],
};

function storeParams(n) {
  const body = [];
  for (let i = 0; i < n; i++) body.push(`(i32.store (i32.const ${16 + 4 * i}) (local.get ${i}))`);
  return `(func (export "id-${n}") (param ${'i32 '.repeat(n)}) (result i32) ${body.join(' ')} (i32.const 16))`;
}

const WAT = `(component
  (core module $m
    ${MEMORY_AND_REALLOC_WAT}
    (func (export "id-i32") (param i32) (result i32) (local.get 0))
    (func (export "id-i64") (param i64) (result i64) (local.get 0))
    (func (export "id-f32") (param f32) (result f32) (local.get 0))
    (func (export "id-f64") (param f64) (result f64) (local.get 0))
    ${storeParams(2)}
    ${storeParams(3)}
    (func (export "first") (param i32 i32 i32) (result i32) (local.get 0))
    (func (export "boom") unreachable))
  (core instance $i (instantiate $m))
  (type $color' (enum "red" "green" "blue"))
  (export $color "color" (type $color'))
  (type $perms' (flags "read" "write" "exec"))
  (export $perms "perms" (type $perms'))
  (type $point' (record (field "x" u32) (field "label" string)))
  (export $point "point" (type $point'))
  (type $shape' (variant (case "num" u32) (case "text" string) (case "empty")))
  (export $shape "shape" (type $shape'))
  ${Object.entries(CASES).map(([name, [ty, core]]) => `
  (func $${name} (param "value" ${ty}) (result ${ty})
    (canon lift (core func $i "${core}") (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))`).join('')}
  (func $boom (canon lift (core func $i "boom")))
  (func $first (param "a" u32) (param "b" (option u32)) (result u32)
    (canon lift (core func $i "first")))
  (instance $api
    ${Object.keys(CASES).map((name) => `(export "${name}" (func $${name}))`).join('\n    ')})
  (export "test:values/identity" (instance $api))
  (export "boom" (func $boom))
  (export "first" (func $first)))`;

function instantiate() {
  const wasi = new WASI({ version: 'preview2' });
  const instance = wasi.instantiate(new Module(WAT));
  wasi.initialize(instance);
  return instance;
}

const ROUND_TRIPS = [
  ['bool', true], ['bool', false],
  ['u8', 0], ['u8', 255], ['s8', -128], ['s8', 127], ['u16', 65535], ['s16', -32768],
  ['u32', 4294967295], ['s32', -2147483648], ['s32', 2147483647],
  ['f32', -0], ['f32', NaN], ['f64', NaN], ['f64', -Infinity], ['f32', 3.4028234663852886e38],
  ['u64', 2n ** 64n - 1n], ['s64', -(2n ** 63n)], ['s64', 0n],
  ['f32', 1.5], ['f64', Math.PI], ['f64', -0], ['f64', Infinity],
  ['char', 'a'], ['char', 'é'], ['char', '🎉'],
  ['string', ''], ['string', 'héllo 🎉 wörld\0end'],
  ['color', 'green'],
  ['perms', { read: true, write: false, exec: true }],
  ['bytes', new Uint8Array([0, 1, 255])], ['bytes', new Uint8Array(0)],
  ['words', [1, 2, 4294967295]], ['words', []],
  ['strings', ['a', '', 'ünï']],
  ['point', { x: 7, label: 'seven' }],
  ['pair', [3, 'three']],
  ['maybe-u32', 5], ['maybe-u32', undefined], ['maybe-u32', 0],
  ['maybe-string', 'some'], ['maybe-string', undefined],
  ['outcome', { tag: 'ok', val: 3 }], ['outcome', { tag: 'err', val: 'bad' }],
  ['shape', { tag: 'num', val: 9 }], ['shape', { tag: 'text', val: 'txt' }], ['shape', { tag: 'empty', val: undefined }],
];

test('exports: interfaces are objects of functions, top-level functions are functions', () => {
  const { exports } = instantiate();
  assert.deepEqual(Object.keys(exports), ['test:values/identity', 'boom', 'first']);
  assert.deepEqual(Object.keys(exports['test:values/identity']), Object.keys(CASES));
  assert.equal(typeof exports.boom, 'function');
  assert.equal(exports['test:values/identity'].string.name, 'test:values/identity#string');
});

test('every supported WIT type round-trips through JS unchanged', () => {
  const api = instantiate().exports['test:values/identity'];
  for (const [name, value] of ROUND_TRIPS) {
    const label = `${name}(${typeof value === 'bigint' ? `${value}n` : JSON.stringify(value)})`;
    const out = api[name](value);
    if (value instanceof Uint8Array) {
      assert.ok(out instanceof Uint8Array, label);
      assert.deepEqual([...out], [...value], label);
    } else if (Object.is(value, -0)) {
      assert.ok(Object.is(out, -0), label);
    } else {
      assert.deepEqual(out, value, label);
    }
  }
});

test('conversions on the way in: Math.fround for f32, arrays for list<u8>, null for none, unset flags', () => {
  const api = instantiate().exports['test:values/identity'];
  assert.equal(api.f32(0.1), Math.fround(0.1));
  assert.ok(Object.is(api.u32(-0), 0) && Object.is(api.s8(-0), 0), 'an integer type takes -0 as 0');
  assert.deepEqual([...api.bytes([1, 2, 3])], [1, 2, 3]);
  assert.ok(api.bytes([1, 2, 3]) instanceof Uint8Array);
  assert.equal(api['maybe-u32'](null), undefined);
  assert.equal(api['maybe-u32'](), undefined, 'a missing option argument is none');
  assert.deepEqual(api.perms({ write: true }), { read: false, write: true, exec: false });
  assert.deepEqual(api.outcome({ tag: 'ok', val: 1, extra: 'ignored' }), { tag: 'ok', val: 1 });
});

test('wrong types are ERR_INVALID_ARG_TYPE, out-of-range values ERR_OUT_OF_RANGE, naming the argument', () => {
  const instance = instantiate();
  const api = instance.exports['test:values/identity'];
  const typeErrors = [
    ['bool', 1], ['u32', '1'], ['u32', 1n], ['s64', 1], ['string', 5], ['bytes', 'abc'],
    ['point', [1, 'x']], ['point', { x: 1 }], ['words', [1, 'two']], ['shape', 'num'],
    ['shape', { val: 1 }], ['pair', [1]], ['perms', { read: 1 }], ['f64', '1.5'],
  ];
  for (const [name, value] of typeErrors) {
    assert.throws(() => api[name](value), (err) => {
      assert.ok(err instanceof TypeError, `${name}: ${err}`);
      assert.equal(err.code, 'ERR_INVALID_ARG_TYPE', `${name}: ${err.message}`);
      assert.match(err.message, new RegExp(`^test:values/identity#${name}: argument 0 \\(value\\)`));
      return true;
    });
  }
  const rangeErrors = [
    ['u8', 256], ['u8', -1], ['s8', 128], ['u32', 1.5], ['u32', NaN], ['s64', 2n ** 63n],
    ['s32', 2 ** 31], ['s32', -(2 ** 31) - 1], ['s32', 0.5], ['u32', 2 ** 32], ['u32', -1],
    ['u16', Infinity], ['s16', -Infinity], ['s32', Number.MIN_VALUE],
    ['u64', -1n], ['char', 'ab'], ['char', ''], ['color', 'pink'], ['shape', { tag: 'nope' }],
    ['outcome', { tag: 'maybe', val: 1 }],
  ];
  for (const [name, value] of rangeErrors) {
    assert.throws(() => api[name](value), (err) => {
      assert.ok(err instanceof RangeError, `${name}: ${err}`);
      assert.equal(err.code, 'ERR_OUT_OF_RANGE', `${name}: ${err.message}`);
      return true;
    });
  }
  assert.throws(() => api.u32(), assertCode('ERR_INVALID_ARG_TYPE', TypeError));
  assert.equal(instance.exports.first(5), 5, 'extra option parameters may be left out');
  // Nothing above reached the guest: the instance still works.
  assert.equal(api.u32(1), 1);
});

test('a trap in an export is a WebAssembly.RuntimeError with ERR_WASM_TRAP', () => {
  const { exports } = instantiate();
  assert.throws(() => exports.boom(), (err) => {
    assert.ok(err instanceof WebAssembly.RuntimeError);
    assert.equal(err.code, 'ERR_WASM_TRAP');
    assert.equal(err.trapCode, 'unreachable');
    return true;
  });
});

// The same types through an import: a component that imports `test:values/host` (the identity
// functions, served by JS) and exports `test:values/through`, whose functions pass their
// argument to the import and return what it returned (JS -> guest -> JS -> guest -> JS).
const CORE_SIGNATURES = {
  'id-i32': { params: ['i32'], results: ['i32'] },
  'id-i64': { params: ['i64'], results: ['i64'] },
  'id-f32': { params: ['f32'], results: ['f32'] },
  'id-f64': { params: ['f64'], results: ['f64'] },
  'id-2': { params: ['i32', 'i32'], results: ['i32', 'i32'] },
  'id-3': { params: ['i32', 'i32', 'i32'], results: ['i32', 'i32', 'i32'] },
};

function throughFunction(name, core) {
  const { params, results } = CORE_SIGNATURES[core];
  const args = params.map((_, i) => `(local.get ${i})`).join(' ');
  // One flat result comes back directly; more come back in memory at a return pointer, in
  // the layout lifting the export's result reads from that same pointer.
  if (results.length === 1) {
    return `(func (export "call-${name}") (param ${params.join(' ')}) (result ${results[0]}) (call $${name} ${args}))`;
  }
  return `(func (export "call-${name}") (param ${params.join(' ')}) (result i32) (call $${name} ${args} (i32.const 16)) (i32.const 16))`;
}

function lowered(core) {
  const { params, results } = CORE_SIGNATURES[core];
  return results.length === 1 ?
    `(param ${params.join(' ')}) (result ${results[0]})` :
    `(param ${params.join(' ')} i32)`;
}

const THROUGH_WAT = `(component
  (import "test:values/host" (instance $host
    (type $color' (enum "red" "green" "blue"))
    (export "color-type" (type $color (eq $color')))
    (type $perms' (flags "read" "write" "exec"))
    (export "perms-type" (type $perms (eq $perms')))
    (type $point' (record (field "x" u32) (field "label" string)))
    (export "point-type" (type $point (eq $point')))
    (type $shape' (variant (case "num" u32) (case "text" string) (case "empty")))
    (export "shape-type" (type $shape (eq $shape')))
    ${Object.entries(CASES).map(([name, [ty]]) => `(export "${name}" (func (param "value" ${ty}) (result ${ty})))`).join('\n    ')}))
  (alias export $host "color-type" (type $color))
  (alias export $host "perms-type" (type $perms))
  (alias export $host "point-type" (type $point))
  (alias export $host "shape-type" (type $shape))
  (core module $mem
    ${MEMORY_AND_REALLOC_WAT})
  (core instance $m (instantiate $mem))
  ${Object.keys(CASES).map((name) => `(alias export $host "${name}" (func $host-${name}))
  (core func $low-${name} (canon lower (func $host-${name}) (memory (core memory $m "mem")) (realloc (core func $m "realloc"))))`).join('\n  ')}
  (core module $main
    ${Object.entries(CASES).map(([name, [, core]]) => `(import "host" "${name}" (func $${name} ${lowered(core)}))`).join('\n    ')}
    ${Object.entries(CASES).map(([name, [, core]]) => throughFunction(name, core)).join('\n    ')})
  (core instance $i (instantiate $main
    (with "host" (instance ${Object.keys(CASES).map((name) => `(export "${name}" (func $low-${name}))`).join(' ')}))))
  ${Object.entries(CASES).map(([name, [ty]]) => `(func $${name} (param "value" ${ty}) (result ${ty})
    (canon lift (core func $i "call-${name}") (memory (core memory $m "mem")) (realloc (core func $m "realloc"))))`).join('\n  ')}
  (instance $through
    ${Object.keys(CASES).map((name) => `(export "${name}" (func $${name}))`).join('\n    ')})
  (export "test:values/through" (instance $through)))`;

test('every supported WIT type round-trips through an import served by JS, both ways unchanged', () => {
  const seen = [];
  const host = Object.fromEntries(Object.keys(CASES).map((name) => [name, (value) => {
    seen.push([name, value]);
    return value;
  }]));
  const wasi = new WASI({ version: 'preview2' });
  const instance = wasi.instantiate(new Module(THROUGH_WAT), { 'test:values/host': host });
  const api = instance.exports['test:values/through'];
  for (const [name, value] of ROUND_TRIPS) {
    const label = `${name}(${typeof value === 'bigint' ? `${value}n` : JSON.stringify(value)})`;
    const out = api[name](value);
    const [seenName, received] = seen.pop();
    assert.equal(seenName, name, label);
    for (const [what, got] of [['the host received', received], ['JS got back', out]]) {
      if (value instanceof Uint8Array) {
        assert.ok(got instanceof Uint8Array, `${label}: ${what}`);
        assert.deepEqual([...got], [...value], `${label}: ${what}`);
      } else if (Object.is(value, -0)) {
        assert.ok(Object.is(got, -0), `${label}: ${what}`);
      } else {
        assert.deepEqual(got, value, `${label}: ${what}`);
      }
    }
  }
  // A host result of the wrong type is a TypeError in the guest, naming the import.
  const wrong = new WASI({ version: 'preview2' }).instantiate(new Module(THROUGH_WAT), {
    'test:values/host': { ...host, point: () => ({ x: 'seven', label: 'x' }) },
  });
  assert.throws(() => wrong.exports['test:values/through'].point({ x: 1, label: 'a' }),
    (err) => err instanceof TypeError && /test:values\/host#point: result\.x must be a number/.test(err.message));
});

test('an argument whose getter or Proxy trap calls the same instance does not deadlock', () => {
  const api = instantiate().exports['test:values/identity'];
  // The store is taken only after every argument is converted, so these calls get it first.
  const point = { get x() { return api.u32(7); }, get label() { return api.string('via getter'); } };
  assert.deepEqual(api.point(point), { x: 7, label: 'via getter' });
  const proxied = new Proxy({}, {
    get(_target, key) {
      if (key === 'x') return api.u32(9);
      if (key === 'label') return api.point({ x: 1, label: 'inner' }).label;
      return undefined;
    },
  });
  assert.deepEqual(api.point(proxied), { x: 9, label: 'inner' });
  const list = [1, 2];
  Object.defineProperty(list, 0, { get: () => api.u32(41) });
  assert.deepEqual(api.words(list), [41, 2]);
});
