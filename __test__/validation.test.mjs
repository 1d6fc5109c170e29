// Validation and error helpers (lib/errors.js, lib/validate.js) against the real
// node:wasi. This file owns the tables of option values and instances that
// `new WASI(options)`, `start()` and `initialize()` must reject, with the exact
// error class, code and message; every row is first checked against Node's own
// `node:wasi` (so the table itself is proven right on the running Node), then
// against our validators. Rows marked `extension` are values Node rejects and
// we accept on purpose (documented in API.md); for those we check that Node
// really rejects them and that we normalize them as documented. The tables are
// exported so the same rows can later be pointed at the public `WASI` class.
// finalizeBindings() (Node 24.4+, absent from the Node 20 these tests run on) has
// its own tables, taken from NODE_WASI.md and Node 24's lib/wasi.js and checked
// against node:wasi only when the running Node has it; the instances start() and
// initialize() accept on the V8 path (plain objects, other vm contexts, modules
// with neither entry point) are run under node:wasi and ours side by side.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import vm from 'node:vm';
import { NodeWASI, fixture } from './helpers.mjs';

const require = createRequire(import.meta.url);
const errors = require('../lib/errors.js');
const {
  validateWasiOptions,
  validateReturnOnExit,
  validateRunOptions,
  validateObject,
  validateFunction,
  validateUndefined,
  validateMemory,
} = require('../lib/validate.js');


// --- helpers -------------------------------------------------------------

const TYPE = 'ERR_INVALID_ARG_TYPE';
const VALUE = 'ERR_INVALID_ARG_VALUE';
const RANGE = 'ERR_OUT_OF_RANGE';
const typeErr = (message) => ({ name: 'TypeError', code: TYPE, message });
const valueErr = (message) => ({ name: 'TypeError', code: VALUE, message });
const rangeErr = (message) => ({ name: 'RangeError', code: RANGE, message });

function numberErr(prop, received) {
  return typeErr(`The "options.${prop}" property must be of type number. Received ${received}`);
}
/** Ours for a stdout/stderr of another type: node:wasi's code, the accepted set in the message. */
function outputTypeErr(prop, received) {
  return typeErr(`The "options.${prop}" property must be of type number (a file descriptor), or one of 'pipe', 'inherit', 'ignore', a function or a Writable. Received ${received}`);
}
function fdRangeErr(prop, received) {
  return rangeErr(`The value of "options.${prop}" is out of range. It must be >= 0 && <= 2147483647. Received ${received}`);
}
function integerErr(prop, received) {
  return rangeErr(`The value of "options.${prop}" is out of range. It must be an integer. Received ${received}`);
}

/**
 * Assert that fn throws exactly `expected` ({ name, code, message }), with
 * Node's error shape: class, own enumerable `code`, and a stack whose first
 * line is `Name [CODE]: message` (`Name: message` for C++-side errors,
 * expected.codeInStack === false).
 */
function assertThrowsExactly(fn, expected, label) {
  let err;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, `${label}: expected a throw, got none`);
  const Base = globalThis[expected.name];
  assert.ok(err instanceof Base, `${label}: expected ${expected.name}, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
  assert.equal(err.name, expected.name, `${label}: name`);
  assert.equal(err.code, expected.code, `${label}: code`);
  assert.equal(err.message, expected.message, `${label}: message`);
  assert.deepEqual(Object.getOwnPropertyDescriptor(err, 'code'),
                   { value: expected.code, writable: true, enumerable: true, configurable: true },
                   `${label}: code descriptor`);
  const head = expected.codeInStack === false ?
    `${expected.name}: ${expected.message}` :
    `${expected.name} [${expected.code}]: ${expected.message}`;
  assert.equal(err.stack.split('\n')[0], head.split('\n')[0], `${label}: stack header`);
  return err;
}

function optionsLabel(row) {
  if (!('options' in row)) return 'new WASI()';
  return `new WASI(${util.inspect(row.options, { depth: 3, breakLength: Infinity })})`;
}
const callArgs = (row) => ('options' in row ? [row.options] : []);

// --- the constructor table --------------------------------------------------

const P1 = 'preview1';

const stdioRows = [];
for (const prop of ['stdin', 'stdout', 'stderr']) {
  const bad = [
    ['0', numberErr(prop, "type string ('0')")],
    [-1, fdRangeErr(prop, '-1')],
    [1.5, integerErr(prop, '1.5')],
    [2 ** 31, fdRangeErr(prop, '2147483648')],
    [2 ** 33, fdRangeErr(prop, '8_589_934_592')],
    [-(2 ** 33), fdRangeErr(prop, '-8_589_934_592')],
    [NaN, integerErr(prop, 'NaN')],
    [Infinity, integerErr(prop, 'Infinity')],
    [true, numberErr(prop, 'type boolean (true)')],
    [null, numberErr(prop, 'null')],
    [10n, numberErr(prop, 'type bigint (10n)')],
    [{}, numberErr(prop, 'an instance of Object')],
    [new Number(1), numberErr(prop, 'an instance of Number')],
    ['pipe', numberErr(prop, "type string ('pipe')")],
    ['inherit', numberErr(prop, "type string ('inherit')")],
    [function fd() {}, numberErr(prop, 'function fd')],
  ];
  for (const [value, error] of bad) {
    const row = { title: `${prop}: ${util.inspect(value)}`, options: { version: P1, [prop]: value }, error };
    // Our documented extensions: stdout/stderr 'pipe' | 'ignore' | a function (or a Writable)
    // receiving the stream. (stdin as data takes a BufferSource, never a string, as here.)
    // 'inherit' is this process's own fd, as for runWasm. Any other value of another type
    // fails with node:wasi's code and a message that lists what is accepted.
    if (prop !== 'stdin' && value === 'pipe') {
      row.extension = { [prop]: 'pipe' };
    } else if (prop !== 'stdin' && value === 'inherit') {
      row.extension = { [prop]: prop === 'stdout' ? 1 : 2 };
    } else if (prop !== 'stdin' && typeof value === 'function') {
      row.extension = { [prop]: value };
    } else if (prop !== 'stdin' && typeof value !== 'number') {
      row.extension = {};
      row.extensionError = outputTypeErr(prop, error.message.split(' Received ')[1]);
    }
    stdioRows.push(row);
  }
}

/**
 * Constructor options Node rejects. `error` is what node:wasi throws (checked
 * on the running Node) and what validateWasiOptions throws, unless the row has
 * `extension`: then validateWasiOptions accepts it and the normalized result
 * contains the `extension` fields.
 */
export const WASI_CONSTRUCTOR_ERRORS = [
  // 1. options
  { title: 'no options (defaults to {})', error: typeErr('The "options.version" property must be of type string. Received undefined') },
  { title: 'options undefined', options: undefined, error: typeErr('The "options.version" property must be of type string. Received undefined') },
  { title: 'options null', options: null, error: typeErr('The "options" argument must be of type object. Received null') },
  { title: 'options array', options: [], error: typeErr('The "options" argument must be of type object. Received an instance of Array') },
  { title: 'options function', options: function opts() {}, error: typeErr('The "options" argument must be of type object. Received function opts') },
  { title: 'options number', options: 1, error: typeErr('The "options" argument must be of type object. Received type number (1)') },
  { title: 'options string', options: 'preview1', error: typeErr("The \"options\" argument must be of type object. Received type string ('preview1')") },
  { title: 'options true', options: true, error: typeErr('The "options" argument must be of type object. Received type boolean (true)') },
  // 2. version type
  { title: 'version missing', options: {}, error: typeErr('The "options.version" property must be of type string. Received undefined') },
  { title: 'version number', options: { version: 1 }, error: typeErr('The "options.version" property must be of type string. Received type number (1)') },
  { title: 'version null', options: { version: null }, error: typeErr('The "options.version" property must be of type string. Received null') },
  { title: 'version String object', options: { version: new String('preview1') }, error: typeErr('The "options.version" property must be of type string. Received an instance of String') },
  // 3. version value
  { title: "version 'preview2' (extension: components)", options: { version: 'preview2' }, error: valueErr("The property 'options.version' unsupported WASI version. Received 'preview2'"), extension: { version: 'preview2' } },
  { title: "version ''", options: { version: '' }, error: valueErr("The property 'options.version' unsupported WASI version. Received ''") },
  { title: "version 'Preview1'", options: { version: 'Preview1' }, error: valueErr("The property 'options.version' unsupported WASI version. Received 'Preview1'") },
  { title: 'version long (ERR_INVALID_ARG_VALUE does not truncate below 128)', options: { version: 'v'.repeat(40) }, error: valueErr(`The property 'options.version' unsupported WASI version. Received '${'v'.repeat(40)}'`) },
  { title: 'version with quote', options: { version: "it's" }, error: valueErr('The property \'options.version\' unsupported WASI version. Received "it\'s"') },
  // 4. args
  { title: 'args string', options: { version: P1, args: 'a' }, error: typeErr("The \"options.args\" property must be an instance of Array. Received type string ('a')") },
  { title: 'args object', options: { version: P1, args: {} }, error: typeErr('The "options.args" property must be an instance of Array. Received an instance of Object') },
  { title: 'args array-like', options: { version: P1, args: { length: 0 } }, error: typeErr('The "options.args" property must be an instance of Array. Received an instance of Object') },
  { title: 'args null', options: { version: P1, args: null }, error: typeErr('The "options.args" property must be an instance of Array. Received null') },
  { title: 'args long string (truncated at 25)', options: { version: P1, args: 'x'.repeat(40) }, error: typeErr(`The "options.args" property must be an instance of Array. Received type string ('${'x'.repeat(25)}...')`) },
  { title: 'args 28-char string (not truncated)', options: { version: P1, args: 'y'.repeat(28) }, error: typeErr(`The "options.args" property must be an instance of Array. Received type string ('${'y'.repeat(28)}')`) },
  { title: 'args long string with quote', options: { version: P1, args: "'".repeat(30) }, error: typeErr(`The "options.args" property must be an instance of Array. Received type string ("${"'".repeat(25)}...")`) },
  { title: 'args Set', options: { version: P1, args: new Set() }, error: typeErr('The "options.args" property must be an instance of Array. Received an instance of Set') },
  // 5. env
  { title: 'env null', options: { version: P1, env: null }, error: typeErr('The "options.env" property must be of type object. Received null') },
  { title: 'env array', options: { version: P1, env: [] }, error: typeErr('The "options.env" property must be of type object. Received an instance of Array') },
  { title: 'env string', options: { version: P1, env: 'A=1' }, error: typeErr("The \"options.env\" property must be of type object. Received type string ('A=1')") },
  { title: 'env function', options: { version: P1, env: function env() {} }, error: typeErr('The "options.env" property must be of type object. Received function env') },
  { title: 'env number', options: { version: P1, env: 0 }, error: typeErr('The "options.env" property must be of type object. Received type number (0)') },
  // 6. preopens
  { title: 'preopens null', options: { version: P1, preopens: null }, error: typeErr('The "options.preopens" property must be of type object. Received null') },
  { title: 'preopens string', options: { version: P1, preopens: '/tmp' }, error: typeErr("The \"options.preopens\" property must be of type object. Received type string ('/tmp')") },
  { title: 'preopens array', options: { version: P1, preopens: [] }, error: typeErr('The "options.preopens" property must be of type object. Received an instance of Array') },
  { title: 'preopens symbol', options: { version: P1, preopens: Symbol('p') }, error: typeErr('The "options.preopens" property must be of type object. Received type symbol (Symbol(p))') },
  // 7. stdio
  ...stdioRows,
  { title: 'stdout ignore (extension)', options: { version: P1, stdout: 'ignore' }, error: numberErr('stdout', "type string ('ignore')"), extension: { stdout: 'ignore' } },
  { title: 'stderr ignore (extension)', options: { version: P1, stderr: 'ignore' }, error: numberErr('stderr', "type string ('ignore')"), extension: { stderr: 'ignore' } },
  { title: 'stdin Buffer (extension)', options: { version: P1, stdin: Buffer.from('hi') }, error: numberErr('stdin', 'an instance of Buffer'), extension: { stdin: new Uint8Array([104, 105]) } },
  { title: 'stdin ArrayBuffer (extension)', options: { version: P1, stdin: new Uint8Array([1, 2]).buffer }, error: numberErr('stdin', 'an instance of ArrayBuffer'), extension: { stdin: new Uint8Array([1, 2]) } },
  { title: 'stdin SharedArrayBuffer (not an extension)', options: { version: P1, stdin: new SharedArrayBuffer(2) }, error: numberErr('stdin', 'an instance of SharedArrayBuffer') },
  // order: the first failing step wins
  { title: 'order: bad version before bad args', options: { version: 'x', args: 1 }, error: valueErr("The property 'options.version' unsupported WASI version. Received 'x'") },
  { title: 'order: args before env', options: { version: P1, env: null, args: 'x' }, error: typeErr("The \"options.args\" property must be an instance of Array. Received type string ('x')") },
  { title: 'order: env before preopens', options: { version: P1, preopens: 1, env: null }, error: typeErr('The "options.env" property must be of type object. Received null') },
  { title: 'order: preopens before stdio', options: { version: P1, stdin: -1, preopens: 1 }, error: typeErr('The "options.preopens" property must be of type object. Received type number (1)') },
  { title: 'order: stdin before stdout', options: { version: P1, stderr: 'x', stdout: 'y', stdin: 'z' }, error: numberErr('stdin', "type string ('z')") },
  { title: 'stdin string (data for runWasm only, as node:wasi rejects it)', options: { version: P1, stdin: 'fhqwhgads' }, error: numberErr('stdin', "type string ('fhqwhgads')") },
  { title: 'order: stdout before stderr', options: { version: P1, stderr: 'x', stdout: -1 }, error: fdRangeErr('stdout', '-1') },
  { title: 'order: stdio before returnOnExit', options: { version: P1, returnOnExit: 1, stdin: -1 }, error: fdRangeErr('stdin', '-1') },
];

/**
 * Constructor options accepted by Node and by us, with our normalized result
 * (the fields listed in `expected`). `nodeAccepts: false` marks rows Node's
 * validation passes but its native setup rejects (a missing preopen dir, a
 * closed fd) or, for sparse args, aborts the process: not run against Node.
 */
const TMP = os.tmpdir();
export const WASI_CONSTRUCTOR_ACCEPTS = [
  { title: 'minimal preview1', options: { version: 'preview1' }, expected: { version: 'preview1', args: [], env: [], preopens: [], stdin: 0, stdout: 1, stderr: 2, returnOnExit: undefined } },
  { title: 'minimal unstable', options: { version: 'unstable' }, expected: { version: 'unstable', args: [], env: [], preopens: [], stdin: 0, stdout: 1, stderr: 2, returnOnExit: undefined } },
  { title: 'undefined fields take defaults', options: { version: P1, args: undefined, env: undefined, preopens: undefined, stdin: undefined, stdout: undefined, stderr: undefined }, expected: { args: [], env: [], preopens: [], stdin: 0, stdout: 1, stderr: 2 } },
  { title: 'args through String()', options: { version: P1, args: ['a', 1, true, null, undefined, 1.5, Symbol('s'), { toString() { return 'obj'; } }] }, expected: { args: ['a', '1', 'true', 'null', 'undefined', '1.5', 'Symbol(s)', 'obj'] } },
  // eslint-disable-next-line no-sparse-arrays
  { title: 'sparse args: holes become "undefined" (Node 20.20 aborts in C++)', options: { version: P1, args: [, 'a'] }, expected: { args: ['undefined', 'a'] }, nodeAccepts: false },
  { title: 'env: undefined skipped, others `${k}=${v}`', options: { version: P1, env: { A: '1', B: undefined, C: null, D: 2, E: '', F: 'x=y' } }, expected: { env: ['A=1', 'C=null', 'D=2', 'E=', 'F=x=y'] } },
  { title: 'env: own enumerable string keys only', options: { version: P1, env: Object.create({ inherited: 'x' }, { own: { value: '1', enumerable: true }, hidden: { value: '2', enumerable: false }, [Symbol('s')]: { value: '3', enumerable: true } }) }, expected: { env: ['own=1'] } },
  { title: 'env: property order (integer keys first)', options: { version: P1, env: { b: '1', 2: 'x', a: '2', 1: 'y' } }, expected: { env: ['1=y', '2=x', 'b=1', 'a=2'] } },
  { title: 'env: null-prototype object', options: { version: P1, env: Object.assign(Object.create(null), { K: 'V' }) }, expected: { env: ['K=V'] } },
  { title: 'env: any non-array object (Map has no own entries)', options: { version: P1, env: new Map([['A', '1']]) }, expected: { env: [] } },
  { title: 'preopens: entries in order', options: { version: P1, preopens: { '/sandbox': TMP, '/other': TMP } }, expected: { preopens: [['/sandbox', TMP], ['/other', TMP]] } },
  { title: 'preopens: values through String()', options: { version: P1, preopens: { '/n': 5 } }, expected: { preopens: [['/n', '5']] }, nodeAccepts: false },
  { title: 'stdio: explicit fds, -0 is an integer >= 0', options: { version: P1, stdin: -0, stdout: 2, stderr: 1 }, expected: { stdin: 0, stdout: 2, stderr: 1 } },
  { title: 'stdio: max int32', options: { version: P1, stdin: 2 ** 31 - 1 }, expected: { stdin: 2 ** 31 - 1 }, nodeAccepts: false },
  { title: 'returnOnExit passed through raw', options: { version: P1, returnOnExit: 'yes' }, expected: { returnOnExit: 'yes' }, nodeAccepts: false },
  { title: 'returnOnExit false passed through', options: { version: P1, returnOnExit: false }, expected: { returnOnExit: false } },
];

/** returnOnExit (Node's step 9, after native setup): value -> result or error. */
export const RETURN_ON_EXIT_CASES = [
  { value: undefined, result: true },
  { value: true, result: true },
  { value: false, result: false },
  { value: 1, error: typeErr('The "options.returnOnExit" property must be of type boolean. Received type number (1)') },
  { value: null, error: typeErr('The "options.returnOnExit" property must be of type boolean. Received null') },
  { value: 'true', error: typeErr("The \"options.returnOnExit\" property must be of type boolean. Received type string ('true')") },
  { value: new Boolean(true), error: typeErr('The "options.returnOnExit" property must be of type boolean. Received an instance of Boolean') },
];

// --- start() / initialize() ---------------------------------------------------

const memory = new WebAssembly.Memory({ initial: 1 });
const memoryErr = {
  name: 'TypeError',
  code: TYPE,
  message: '"instance.exports.memory" property must be a WebAssembly.Memory object',
  codeInStack: false, // thrown from C++ in Node: `TypeError: "instance..."`
};

/** Instances start()/initialize() reject before running guest code. */
export const INSTANCE_ERRORS = [
  { method: 'start', title: 'no instance', instance: undefined, error: typeErr('The "instance" argument must be of type object. Received undefined') },
  { method: 'start', title: 'null', instance: null, error: typeErr('The "instance" argument must be of type object. Received null') },
  { method: 'start', title: 'array', instance: [], error: typeErr('The "instance" argument must be of type object. Received an instance of Array') },
  { method: 'start', title: 'function', instance: function inst() {}, error: typeErr('The "instance" argument must be of type object. Received function inst') },
  { method: 'start', title: 'number', instance: 1, error: typeErr('The "instance" argument must be of type object. Received type number (1)') },
  { method: 'start', title: 'exports missing', instance: {}, error: typeErr('The "instance.exports" property must be of type object. Received undefined') },
  { method: 'start', title: 'exports null', instance: { exports: null }, error: typeErr('The "instance.exports" property must be of type object. Received null') },
  { method: 'start', title: 'exports number', instance: { exports: 1 }, error: typeErr('The "instance.exports" property must be of type object. Received type number (1)') },
  { method: 'start', title: 'exports array', instance: { exports: [] }, error: typeErr('The "instance.exports" property must be of type object. Received an instance of Array') },
  { method: 'start', title: 'memory missing', instance: { exports: {} }, error: memoryErr },
  { method: 'start', title: 'memory plain object', instance: { exports: { memory: {} } }, error: memoryErr },
  { method: 'start', title: 'memory ArrayBuffer', instance: { exports: { memory: new ArrayBuffer(8) } }, error: memoryErr },
  { method: 'start', title: 'memory-like object', instance: { exports: { memory: { buffer: new ArrayBuffer(65536), grow() {} } } }, error: memoryErr },
  { method: 'start', title: 'memory checked before _start', instance: { exports: { memory: 1, _start: 1 } }, error: memoryErr },
  { method: 'start', title: '_start missing', instance: { exports: { memory } }, error: typeErr('The "instance.exports._start" property must be of type function. Received undefined') },
  { method: 'start', title: '_start number', instance: { exports: { memory, _start: 1 } }, error: typeErr('The "instance.exports._start" property must be of type function. Received type number (1)') },
  { method: 'start', title: '_initialize present', instance: { exports: { memory, _start() {}, _initialize() {} } }, error: typeErr('The "instance.exports._initialize" property must be undefined. Received function _initialize') },
  { method: 'start', title: '_initialize null', instance: { exports: { memory, _start() {}, _initialize: null } }, error: typeErr('The "instance.exports._initialize" property must be undefined. Received null') },
  { method: 'initialize', title: 'null', instance: null, error: typeErr('The "instance" argument must be of type object. Received null') },
  { method: 'initialize', title: 'memory missing', instance: { exports: {} }, error: memoryErr },
  { method: 'initialize', title: '_start present', instance: { exports: { memory, _start() {} } }, error: typeErr('The "instance.exports._start" property must be undefined. Received function _start') },
  { method: 'initialize', title: '_initialize number', instance: { exports: { memory, _initialize: 1 } }, error: typeErr('The "instance.exports._initialize" property must be of type function. Received type number (1)') },
];

// How start()/initialize() are expected to use the validators (steps 2-4 of
// NODE_WASI.md). Returns normally when every check passes.
function ourInstanceChecks(method, instance) {
  validateObject(instance, 'instance');
  validateObject(instance.exports, 'instance.exports');
  validateMemory(instance.exports.memory);
  const { _start, _initialize } = instance.exports;
  if (method === 'start') {
    validateFunction(_start, 'instance.exports._start');
    validateUndefined(_initialize, 'instance.exports._initialize');
  } else {
    validateUndefined(_start, 'instance.exports._start');
    if (_initialize !== undefined) validateFunction(_initialize, 'instance.exports._initialize');
  }
}

// --- runWasm options ----------------------------------------------------------

/** runWasm(wasm, options) options we reject (no Node counterpart). */
export const RUN_OPTIONS_ERRORS = [
  { title: 'an unknown option', options: { foo: 1 }, error: valueErr("The property 'options.foo' is not an option of runWasmSync; the known ones are args, env, preopens, stdin, stdout, stderr, limits, maxBuffer, imports, signal. Received 1") },
  { title: 'a misspelled limit', options: { limits: { timout: 100 } }, error: valueErr("The property 'options.limits.timout' is not a limit; the known ones are timeout, fuel, maxMemory, maxStack. Received 100") },
  { title: 'options null', options: null, error: typeErr('The "options" argument must be of type object. Received null') },
  { title: 'options string', options: 'x', error: typeErr("The \"options\" argument must be of type object. Received type string ('x')") },
  { title: 'options array', options: [], error: typeErr('The "options" argument must be of type object. Received an instance of Array') },
  { title: 'args string', options: { args: 'a' }, error: typeErr("The \"options.args\" property must be an instance of Array. Received type string ('a')") },
  { title: 'env null', options: { env: null }, error: typeErr('The "options.env" property must be of type object. Received null') },
  { title: 'preopens string', options: { preopens: '/tmp' }, error: typeErr("The \"options.preopens\" property must be of type object. Received type string ('/tmp')") },
  { title: 'stdin true', options: { stdin: true }, error: typeErr('The "options.stdin" property must be one of type number or string or an instance of Buffer, TypedArray, DataView, or ArrayBuffer. Received type boolean (true)') },
  { title: 'stdin null', options: { stdin: null }, error: typeErr('The "options.stdin" property must be one of type number or string or an instance of Buffer, TypedArray, DataView, or ArrayBuffer. Received null') },
  { title: 'stdin object', options: { stdin: {} }, error: typeErr('The "options.stdin" property must be one of type number or string or an instance of Buffer, TypedArray, DataView, or ArrayBuffer. Received an instance of Object') },
  { title: 'stdin -1', options: { stdin: -1 }, error: fdRangeErr('stdin', '-1') },
  { title: 'stdin 1.5', options: { stdin: 1.5 }, error: integerErr('stdin', '1.5') },
  { title: "stdout 'x'", options: { stdout: 'x' }, error: valueErr("The property 'options.stdout' must be one of: 'pipe', 'inherit', 'ignore', or a file descriptor. Received 'x'") },
  { title: "stderr 'PIPE'", options: { stderr: 'PIPE' }, error: valueErr("The property 'options.stderr' must be one of: 'pipe', 'inherit', 'ignore', or a file descriptor. Received 'PIPE'") },
  { title: "stdout ''", options: { stdout: '' }, error: valueErr("The property 'options.stdout' must be one of: 'pipe', 'inherit', 'ignore', or a file descriptor. Received ''") },
  { title: 'stdout true', options: { stdout: true }, error: typeErr('The "options.stdout" property must be one of type string, number, or function or an instance of Writable. Received type boolean (true)') },
  { title: 'stdout null', options: { stdout: null }, error: typeErr('The "options.stdout" property must be one of type string, number, or function or an instance of Writable. Received null') },
  { title: 'stdout -1', options: { stdout: -1 }, error: fdRangeErr('stdout', '-1') },
  { title: 'stderr 2**31', options: { stderr: 2 ** 31 }, error: fdRangeErr('stderr', '2147483648') },
  { title: 'stdout NaN', options: { stdout: NaN }, error: integerErr('stdout', 'NaN') },
  { title: 'order: args before stdout', options: { stdout: 'x', args: 1 }, error: typeErr('The "options.args" property must be an instance of Array. Received type number (1)') },
];

/** runWasm options we accept, with the normalized result. */
export const RUN_OPTIONS_ACCEPTS = [
  { title: 'no options', expected: { args: [], env: [], preopens: [], stdin: undefined, stdout: 'pipe', stderr: 'pipe' } },
  { title: 'empty options', options: {}, expected: { args: [], env: [], preopens: [], stdin: undefined, stdout: 'pipe', stderr: 'pipe' } },
  { title: 'defaults', options: { limits: { timeout: 5 }, signal: null }, expected: { args: [], env: [], preopens: [], stdin: undefined, stdout: 'pipe', stderr: 'pipe' } },
  { title: 'inherit -> fd 1 / fd 2', options: { stdout: 'inherit', stderr: 'inherit' }, expected: { stdout: 1, stderr: 2 } },
  { title: 'pipe / ignore / fd', options: { stdout: 'ignore', stderr: 5 }, expected: { stdout: 'ignore', stderr: 5 } },
  { title: 'explicit pipe', options: { stdout: 'pipe', stderr: 'pipe' }, expected: { stdout: 'pipe', stderr: 'pipe' } },
  { title: 'stdin fd', options: { stdin: 0 }, expected: { stdin: 0 } },
  { title: 'stdin string', options: { stdin: 'héllo' }, expected: { stdin: new Uint8Array(Buffer.from('héllo')) } },
  { title: 'stdin empty string', options: { stdin: '' }, expected: { stdin: new Uint8Array(0) } },
  { title: 'stdin DataView', options: { stdin: new DataView(new Uint8Array([7, 8, 9]).buffer, 1) }, expected: { stdin: new Uint8Array([8, 9]) } },
  { title: 'args/env/preopens as in WASI', options: { args: ['p', 1], env: { A: 1, B: undefined }, preopens: { '/': TMP } }, expected: { args: ['p', '1'], env: ['A=1'], preopens: [['/', TMP]] } },
];

// --- tests ----------------------------------------------------------------------

function pick(obj, keys) {
  const out = {};
  for (const k of keys) out[k] = obj[k];
  return out;
}

test('constructor errors: table matches node:wasi on this Node', () => {
  for (const row of WASI_CONSTRUCTOR_ERRORS) {
    assertThrowsExactly(() => new NodeWASI(...callArgs(row)), row.error, `node:wasi ${row.title}: ${optionsLabel(row)}`);
  }
});

test('constructor errors: validateWasiOptions throws the same, except documented extensions', () => {
  for (const row of WASI_CONSTRUCTOR_ERRORS) {
    const label = `ours ${row.title}: ${optionsLabel(row)}`;
    if (row.extension === undefined) {
      assertThrowsExactly(() => validateWasiOptions(...callArgs(row)), row.error, label);
    } else if (row.extensionError !== undefined) {
      // The extension lets this field pass; a later field still fails like Node.
      assertThrowsExactly(() => validateWasiOptions(...callArgs(row)), row.extensionError, label);
    } else {
      const out = validateWasiOptions(...callArgs(row));
      assert.deepEqual(pick(out, Object.keys(row.extension)), row.extension, label);
    }
  }
});

test('constructor accepts: node:wasi accepts them too', () => {
  for (const row of WASI_CONSTRUCTOR_ACCEPTS) {
    if (row.nodeAccepts === false) continue;
    assert.doesNotThrow(() => new NodeWASI(row.options), `node:wasi ${row.title}`);
  }
});

test('constructor accepts: normalized output', () => {
  for (const row of WASI_CONSTRUCTOR_ACCEPTS) {
    const out = validateWasiOptions(row.options);
    assert.deepEqual(Object.keys(out), ['version', 'args', 'env', 'preopens', 'stdin', 'stdout', 'stderr', 'limits', 'maxBuffer', 'returnOnExit'], row.title);
    assert.deepEqual(pick(out, Object.keys(row.expected)), row.expected, row.title);
  }
});

test('constructor: extension stdin values become Uint8Array views over the same bytes', () => {
  const backing = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]);
  const cases = [
    [Buffer.from(backing.buffer, 2, 3), 2, 3],
    [backing.subarray(1, 4), 1, 3],
    [new Uint16Array(backing.buffer, 2, 2), 2, 4],
    [new DataView(backing.buffer, 5), 5, 3],
    [backing.buffer, 0, 8],
  ];
  for (const [input, byteOffset, byteLength] of cases) {
    const { stdin } = validateWasiOptions({ version: P1, stdin: input });
    assert.equal(Object.getPrototypeOf(stdin), Uint8Array.prototype, util.inspect(input));
    assert.equal(stdin.buffer, backing.buffer);
    assert.equal(stdin.byteOffset, byteOffset);
    assert.equal(stdin.byteLength, byteLength);
  }
  const { stdin } = validateRunOptions({ stdin: 'héllo wörld' });
  assert.equal(Object.getPrototypeOf(stdin), Uint8Array.prototype);
  assert.equal(Buffer.from(stdin).toString('utf8'), 'héllo wörld');
});

test('constructor: property reads happen in Node\'s order and number', () => {
  const record = () => {
    const log = [];
    const target = { version: P1, args: ['a'], env: { A: '1' }, preopens: {} };
    return { log, proxy: new Proxy(target, { get(t, k) { log.push(String(k)); return t[k]; } }) };
  };
  const node = record();
  new NodeWASI(node.proxy);
  const ours = record();
  validateWasiOptions(ours.proxy);
  // Node reads returnOnExit a second time only when it is defined (after native setup).
  // Our extra reads are the `limits` and `maxBuffer` extensions, once each, after node:wasi's
  // own options.
  const extensions = ['limits', 'maxBuffer'];
  assert.deepEqual(ours.log.filter((key) => !extensions.includes(key)), node.log);
  for (const key of extensions) assert.equal(ours.log.filter((k) => k === key).length, 1, key);
});

test('constructor: errors from user values propagate unchanged, as in Node', () => {
  const boom = { toString() { throw new Error('boom'); } };
  assert.throws(() => new NodeWASI({ version: P1, args: [boom] }), { message: 'boom' });
  assert.throws(() => validateWasiOptions({ version: P1, args: [boom] }), { message: 'boom' });
  const sym = { version: P1, env: { A: Symbol('s') } };
  assert.throws(() => new NodeWASI(sym), { name: 'TypeError', message: 'Cannot convert a Symbol value to a string' });
  assert.throws(() => validateWasiOptions(sym), { name: 'TypeError', message: 'Cannot convert a Symbol value to a string' });
});

test('returnOnExit: node:wasi and validateReturnOnExit agree', () => {
  for (const row of RETURN_ON_EXIT_CASES) {
    const label = `returnOnExit ${util.inspect(row.value)}`;
    if (row.error) {
      assertThrowsExactly(() => new NodeWASI({ version: P1, returnOnExit: row.value }), row.error, `node:wasi ${label}`);
      assertThrowsExactly(() => validateReturnOnExit(row.value), row.error, `ours ${label}`);
    } else {
      assert.doesNotThrow(() => new NodeWASI({ version: P1, returnOnExit: row.value }), label);
      assert.equal(validateReturnOnExit(row.value), row.result, label);
    }
  }
});

test('start()/initialize() instance errors: table matches node:wasi', () => {
  for (const row of INSTANCE_ERRORS) {
    const wasi = new NodeWASI({ version: P1 });
    assertThrowsExactly(() => wasi[row.method](row.instance), row.error, `node:wasi ${row.method} ${row.title}`);
  }
});

test('start()/initialize() instance errors: our validators throw the same', () => {
  for (const row of INSTANCE_ERRORS) {
    assertThrowsExactly(() => ourInstanceChecks(row.method, row.instance), row.error, `ours ${row.method} ${row.title}`);
  }
  // And they pass what Node passes.
  ourInstanceChecks('start', { exports: { memory, _start() {} } });
  ourInstanceChecks('initialize', { exports: { memory } });
  ourInstanceChecks('initialize', { exports: { memory, _initialize() {} } });
});

test('validateMemory: WebAssembly.Memory (any realm) or the extra class', () => {
  class OurMemory {}
  validateMemory(memory);
  validateMemory(new WebAssembly.Memory({ initial: 0, maximum: 1, shared: true }));
  validateMemory(vm.runInNewContext('new WebAssembly.Memory({ initial: 1 })'));
  validateMemory(new OurMemory(), OurMemory);
  assertThrowsExactly(() => validateMemory(new OurMemory()), memoryErr, 'no extra class');
  assertThrowsExactly(() => validateMemory({}, OurMemory), memoryErr, 'not an OurMemory');
  assertThrowsExactly(() => validateMemory(Object.create(WebAssembly.Memory.prototype)), memoryErr, 'fake prototype');
  // Node (C++ brand check) agrees on the cross-realm and fake-prototype cases.
  const wasi = new NodeWASI({ version: P1 });
  assertThrowsExactly(() => wasi.start({ exports: { memory: Object.create(WebAssembly.Memory.prototype), _start() {} } }), memoryErr, 'node fake prototype');
  new NodeWASI({ version: P1 }).start({ exports: { memory: vm.runInNewContext('new WebAssembly.Memory({ initial: 1 })'), _start() {} } });
});

test('validateObject / validateFunction / validateUndefined: Node\'s argument vs property wording', () => {
  assertThrowsExactly(() => validateObject(1, 'x'), typeErr('The "x" argument must be of type object. Received type number (1)'), 'plain name');
  assertThrowsExactly(() => validateObject(1, 'x.y'), typeErr('The "x.y" property must be of type object. Received type number (1)'), 'dotted name');
  assertThrowsExactly(() => validateFunction({}, 'cb'), typeErr('The "cb" argument must be of type function. Received an instance of Object'), 'function');
  assertThrowsExactly(() => validateUndefined(0, 'u'), typeErr('The "u" argument must be undefined. Received type number (0)'), 'undefined');
  validateObject({}, 'x');
  validateObject(Object.create(null), 'x');
  validateFunction(() => {}, 'x');
  validateUndefined(undefined, 'x');
});

test('runWasm options: errors', () => {
  for (const row of RUN_OPTIONS_ERRORS) {
    assertThrowsExactly(() => validateRunOptions(row.options), row.error, `runWasm ${row.title}`);
  }
});

test('runWasm options: normalized output', () => {
  for (const row of RUN_OPTIONS_ACCEPTS) {
    const out = validateRunOptions(...callArgs(row));
    assert.deepEqual(Object.keys(out), ['args', 'env', 'preopens', 'stdin', 'stdout', 'stderr', 'limits', 'maxBuffer'], row.title);
    assert.deepEqual(pick(out, Object.keys(row.expected)), row.expected, row.title);
  }
});

// --- errors.js against Node's own formatting ---------------------------------------

test('describeReceived matches Node\'s determineSpecificType', () => {
  class Klass {}
  const values = [
    null, '', 'x', 'a'.repeat(28), 'a'.repeat(29), 'b'.repeat(40), "it's", `it's "q"`, "'".repeat(40), 'line\nbreak',
    true, false, 10n, 2n ** 100n, -5n, Symbol('s'), Symbol(), Symbol('z'.repeat(40)),
    function named() {}, () => {}, (() => () => {})(), Klass, async function af() {},
    {}, [], [1, 2], Object.create(null), new Date(0), Buffer.from('a'), new Uint8Array(1), /re/, new Map(),
    new Number(1), new Klass(), Object.create({ constructor: {} }), Object.create({ constructor: { name: '' } }),
  ];
  for (const value of values) {
    let nodeMessage;
    try {
      new NodeWASI({ version: P1, stderr: value });
    } catch (e) {
      nodeMessage = e.message;
    }
    assert.equal(
      'The "options.stderr" property must be of type number.' + errors.describeReceived(value),
      nodeMessage,
      util.inspect(value));
  }
  assert.equal(errors.describeReceived(undefined), ' Received undefined');
  assert.equal(errors.describeReceived(1), ' Received type number (1)');
  assert.equal(errors.describeReceived(-0), ' Received type number (-0)');
});

test('ERR_OUT_OF_RANGE formats numbers like Node', () => {
  const values = [-1, 1.5, -1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 33, -(2 ** 33), 2 ** 53, 1e21, 1.2345678901234568e+29, 0.1 + 0.2, -2147483649];
  for (const value of values) {
    let nodeMessage;
    try {
      new NodeWASI({ version: P1, stdin: value });
    } catch (e) {
      nodeMessage = e.message;
    }
    const range = Number.isInteger(value) ? '>= 0 && <= 2147483647' : 'an integer';
    assert.equal(errors.ERR_OUT_OF_RANGE('options.stdin', range, value).message, nodeMessage, String(value));
  }
  assert.equal(errors.ERR_OUT_OF_RANGE('x', 'a bigint', 2n ** 40n).message,
               'The value of "x" is out of range. It must be a bigint. Received 1_099_511_627_776n');
  assert.equal(errors.ERR_OUT_OF_RANGE('Custom text.', 'ok', 1, true).message, 'Custom text. It must be ok. Received 1');
});

test('ERR_INVALID_ARG_TYPE expected-list wording', () => {
  const msg = (expected) => errors.ERR_INVALID_ARG_TYPE('a', expected, 1).message;
  assert.equal(msg('object'), 'The "a" argument must be of type object. Received type number (1)');
  assert.equal(msg('Object'), 'The "a" argument must be of type object. Received type number (1)');
  assert.equal(msg('Array'), 'The "a" argument must be an instance of Array. Received type number (1)');
  assert.equal(msg(['string', 'number']), 'The "a" argument must be one of type string or number. Received type number (1)');
  assert.equal(msg(['string', 'number', 'boolean']), 'The "a" argument must be one of type string, number, or boolean. Received type number (1)');
  assert.equal(msg(['string', 'Buffer', 'TypedArray', 'DataView']), 'The "a" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received type number (1)');
  assert.equal(msg(['object', 'Array']), 'The "a" argument must be an instance of Array or Object. Received type number (1)');
  assert.equal(msg('undefined'), 'The "a" argument must be undefined. Received type number (1)');
  assert.equal(msg('WebAssembly.Memory'), 'The "a" argument must be an WebAssembly.Memory. Received type number (1)');
  assert.equal(msg(['null', 'undefined']), 'The "a" argument must be one of null or undefined. Received type number (1)');
  assert.equal(errors.ERR_INVALID_ARG_TYPE('first argument', 'string', 1).message, 'The first argument must be of type string. Received type number (1)');
});

test('error shapes match Node: JS-side errors and C++-side errors', () => {
  const catchIt = (fn) => { try { fn(); } catch (e) { return e; } assert.fail('no throw'); };
  const shape = (e) => ({
    keys: Reflect.ownKeys(e),
    descriptors: Object.fromEntries(['code', 'message'].map((k) => [k, Object.getOwnPropertyDescriptor(e, k)])),
    name: e.name,
    ctorName: e.constructor.name,
    string: String(e),
    head: e.stack.split('\n')[0],
    directProto: [Error.prototype, TypeError.prototype, RangeError.prototype].includes(Object.getPrototypeOf(e)),
    inspected: util.inspect(e).split('\n')[0],
    codeTail: util.inspect(e).split('\n').slice(-2).join('\n'),
  });
  // JS-side (TypeError / RangeError / Error with `[CODE]` in the stack header).
  assert.deepEqual(shape(catchIt(() => validateWasiOptions(null))), shape(catchIt(() => new NodeWASI(null))));
  assert.deepEqual(shape(catchIt(() => validateWasiOptions({ version: P1, stdin: -1 }))), shape(catchIt(() => new NodeWASI({ version: P1, stdin: -1 }))));
  assert.deepEqual(shape(catchIt(() => validateWasiOptions({ version: 'x' }))), shape(catchIt(() => new NodeWASI({ version: 'x' }))));
  const started = new NodeWASI({ version: P1 });
  started.start({ exports: { memory, _start() {} } });
  const nodeAlready = catchIt(() => started.start({ exports: { memory, _start() {} } }));
  assert.deepEqual(shape(errors.ERR_WASI_ALREADY_STARTED()), shape(nodeAlready));
  assert.equal(nodeAlready.message, 'WASI instance has already started');
  // C++-side (plain `TypeError: ...` / `Error: ...` header, code added after).
  assert.deepEqual(shape(catchIt(() => validateMemory(undefined))), shape(catchIt(() => new NodeWASI({ version: P1 }).start({ exports: {} }))));
  const nodeNotStarted = catchIt(() => new NodeWASI({ version: P1 }).wasiImport.fd_write(1, 0, 0, 0));
  assert.deepEqual(shape(errors.ERR_WASI_NOT_STARTED()), shape(nodeNotStarted));
  assert.equal(nodeNotStarted.message, 'wasi.start() has not been called');
});

test('stack traces start at the caller of the validator, as Node hides its validators', () => {
  function callerFrame() { return validateWasiOptions({ version: P1, args: 1 }); }
  let err;
  try { callerFrame(); } catch (e) { err = e; }
  const firstFrame = err.stack.split('\n')[1];
  assert.match(firstFrame, /at callerFrame /);
  assert.doesNotMatch(err.stack, /lib[\\/](validate|errors)\.js/);
  try { validateMemory(1); } catch (e) { err = e; }
  assert.doesNotMatch(err.stack, /lib[\\/](validate|errors)\.js/);
});

test('codedError: our own codes, both shapes', () => {
  const e = errors.codedError(Error, 'ERR_WASM_COMPILE', 'bad magic');
  assert.equal(e.code, 'ERR_WASM_COMPILE');
  assert.equal(e.message, 'bad magic');
  assert.equal(e.name, 'Error');
  assert.ok(e instanceof Error);
  assert.equal(String(e), 'Error [ERR_WASM_COMPILE]: bad magic');
  assert.equal(e.stack.split('\n')[0], 'Error [ERR_WASM_COMPILE]: bad magic');
  // Like Node's fixed-message errors (ERR_WASI_ALREADY_STARTED, ERR_UNKNOWN_ENCODING).
  assert.deepEqual(Reflect.ownKeys(e), ['stack', 'message', 'code']);
  const t = errors.codedError(WebAssembly.RuntimeError, 'ERR_WASM_TRAP', 'unreachable');
  assert.ok(t instanceof WebAssembly.RuntimeError);
  assert.equal(t.name, 'RuntimeError');
  assert.equal(t.stack.split('\n')[0], 'RuntimeError [ERR_WASM_TRAP]: unreachable');
  const plain = errors.codedError(TypeError, 'ERR_X', 'plain', { codeInStack: false });
  assert.equal(Object.getPrototypeOf(plain), TypeError.prototype);
  assert.equal(plain.stack.split('\n')[0], 'TypeError: plain');
  assert.deepEqual(Reflect.ownKeys(plain), ['stack', 'message', 'code']);
  // `new` works too, like Node's error constructors.
  const viaNew = new errors.ERR_INVALID_ARG_VALUE('x', 1, 'is bad');
  assert.equal(viaNew.message, "The argument 'x' is bad. Received 1");
  const asRange = errors.ERR_INVALID_ARG_VALUE.RangeError('a.b', 'v');
  assert.ok(asRange instanceof RangeError);
  assert.equal(asRange.message, "The property 'a.b' is invalid. Received 'v'");
  assert.equal(asRange.code, 'ERR_INVALID_ARG_VALUE');
});

// --- the same tables against the public WASI class ------------------------------

const { WASI } = require('../lib/index.js');

test('public WASI: constructor rejects exactly what node:wasi rejects (extensions aside)', () => {
  for (const row of WASI_CONSTRUCTOR_ERRORS) {
    const label = `WASI ${row.title}: ${optionsLabel(row)}`;
    if (row.extension === undefined) {
      assertThrowsExactly(() => new WASI(...callArgs(row)), row.error, label);
    } else if (row.extensionError !== undefined) {
      assertThrowsExactly(() => new WASI(...callArgs(row)), row.extensionError, label);
    }
  }
});

test('public WASI: returnOnExit is checked like node:wasi', () => {
  for (const row of RETURN_ON_EXIT_CASES) {
    const label = `returnOnExit ${util.inspect(row.value)}`;
    if (row.error) {
      assertThrowsExactly(() => new WASI({ version: P1, returnOnExit: row.value }), row.error, label);
    } else {
      assert.doesNotThrow(() => new WASI({ version: P1, returnOnExit: row.value }), label);
    }
  }
});

test('public WASI: start()/initialize() reject every bad instance exactly as node:wasi does', () => {
  for (const row of INSTANCE_ERRORS) {
    const wasi = new WASI({ version: P1 });
    assertThrowsExactly(() => wasi[row.method](row.instance), row.error, `WASI ${row.method} ${row.title}`);
  }
});

test('public WASI: failures before the memory is bound leave the object unstarted (Node 24+)', () => {
  const early = INSTANCE_ERRORS.filter((row) => row.error === memoryErr || !row.error.message.includes('instance.exports._'));
  assert.ok(early.length >= 10);
  for (const row of early) {
    const wasi = new WASI({ version: P1 });
    assert.throws(() => wasi[row.method](row.instance), { code: row.error.code });
    // Still not started: a second bad call fails the same way, not with ALREADY_STARTED.
    assertThrowsExactly(() => wasi[row.method](row.instance), row.error, `WASI ${row.method} ${row.title} again`);
  }
  // Failures after it (the _start/_initialize checks) leave it started, as in Node.
  const late = INSTANCE_ERRORS.filter((row) => !early.includes(row));
  assert.ok(late.length >= 4);
  for (const row of late) {
    const wasi = new WASI({ version: P1 });
    assert.throws(() => wasi[row.method](row.instance), { code: row.error.code });
    assert.throws(() => wasi.start({ exports: { memory, _start() {} } }), { code: 'ERR_WASI_ALREADY_STARTED' }, row.title);
  }
});

test('public WASI: the native setup fails like node:wasi for missing preopens and closed fds', () => {
  const missing = `${TMP}/node-wasmtime-does-not-exist-${process.pid}`;
  for (const W of [NodeWASI, WASI]) {
    assert.throws(() => new W({ version: P1, preopens: { '/x': missing } }), { code: 'UVWASI_ENOENT', errno: 44, syscall: 'uvwasi_init' });
    assert.throws(() => new W({ version: P1, stdout: 1234567 }), { code: 'UVWASI_EBADF' });
  }
  // Native setup happens before returnOnExit is checked (Node's step 8 before step 9).
  for (const W of [NodeWASI, WASI]) {
    assert.throws(() => new W({ version: P1, preopens: { '/x': missing }, returnOnExit: 1 }), { code: 'UVWASI_ENOENT' });
  }
});

// --- finalizeBindings(instance, { memory }) ----------------------------------------
//
// Node 20 (the Node on these machines) has no finalizeBindings (Node 24.4+), so these rows
// come from NODE_WASI.md and Node 24's lib/wasi.js:
//
//   finalizeBindings(instance, { memory = instance?.exports?.memory } = {}) {
//     if (this[kStarted]) throw new ERR_WASI_ALREADY_STARTED();
//     validateObject(instance, 'instance');
//     validateObject(instance.exports, 'instance.exports');
//     this[kSetMemory](memory);   // C++ brand check: memoryErr
//     this[kInstance] = instance;
//     this[kStarted] = true;
//   }
//
// The started check comes first; failures after it do not mark the object started.
// finalizeBindings does not look at _start/_initialize. When the running Node has
// finalizeBindings, every row is also checked against node:wasi.

const nodeHasFinalizeBindings = typeof NodeWASI.prototype.finalizeBindings === 'function';
const memory2 = () => new WebAssembly.Memory({ initial: 2 });
const alreadyStarted = { name: 'Error', code: 'ERR_WASI_ALREADY_STARTED', message: 'WASI instance has already started' };
const instanceErr = (received) => typeErr(`The "instance" argument must be of type object. Received ${received}`);
const exportsErr = (received) => typeErr(`The "instance.exports" property must be of type object. Received ${received}`);

// `(module (memory (export "memory") 1))`: a real instance with neither _start nor _initialize.
const MEMORY_ONLY = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 5, 3, 1, 0, 1, 7, 10, 1, 6, 109, 101, 109, 111, 114, 121, 2, 0,
]);
const memoryOnlyInstance = () => new WebAssembly.Instance(new WebAssembly.Module(MEMORY_ONLY), {});

/** finalizeBindings(...args) on an unstarted object: what it must throw. */
export const FINALIZE_BINDINGS_ERRORS = [
  // instance
  { title: 'no arguments', args: [], error: instanceErr('undefined') },
  { title: 'instance undefined', args: [undefined], error: instanceErr('undefined') },
  { title: 'instance null', args: [null], error: instanceErr('null') },
  { title: 'instance array', args: [[]], error: instanceErr('an instance of Array') },
  { title: 'instance function', args: [function inst() {}], error: instanceErr('function inst') },
  { title: 'instance number', args: [1], error: instanceErr('type number (1)') },
  { title: 'instance string', args: ['x'], error: instanceErr("type string ('x')") },
  { title: 'instance null with a good memory option', args: [null, { memory }], error: instanceErr('null') },
  // instance.exports
  { title: 'exports missing', args: [{}], error: exportsErr('undefined') },
  { title: 'exports null', args: [{ exports: null }], error: exportsErr('null') },
  { title: 'exports number', args: [{ exports: 1 }], error: exportsErr('type number (1)') },
  { title: 'exports array', args: [{ exports: [] }], error: exportsErr('an instance of Array') },
  { title: 'exports function', args: [{ exports: function exp() {} }], error: exportsErr('function exp') },
  { title: 'exports missing with a good memory option', args: [{}, { memory }], error: exportsErr('undefined') },
  // memory (default instance.exports.memory)
  { title: 'exports.memory missing', args: [{ exports: {} }], error: memoryErr },
  { title: 'exports.memory plain object', args: [{ exports: { memory: {} } }], error: memoryErr },
  { title: 'exports.memory ArrayBuffer', args: [{ exports: { memory: new ArrayBuffer(8) } }], error: memoryErr },
  { title: 'exports.memory memory-like object', args: [{ exports: { memory: { buffer: new ArrayBuffer(65536), grow() {} } } }], error: memoryErr },
  { title: 'exports.memory with a Memory prototype but no brand', args: [{ exports: { memory: Object.create(WebAssembly.Memory.prototype) } }], error: memoryErr },
  { title: 'options {}: the default is used', args: [{ exports: {} }, {}], error: memoryErr },
  { title: 'options { memory: undefined }: the default is used', args: [{ exports: { memory: {} } }, { memory: undefined }], error: memoryErr },
  { title: 'options primitive: the default is used', args: [{ exports: { memory: 1 } }, 1], error: memoryErr },
  // options.memory given: it replaces exports.memory, even a good one
  { title: 'options { memory: null } (null is no default)', args: [{ exports: { memory } }, { memory: null }], error: memoryErr },
  { title: 'options { memory: {} } over a good exports.memory', args: [{ exports: { memory } }, { memory: {} }], error: memoryErr },
  { title: 'options { memory: ArrayBuffer }', args: [{ exports: {} }, { memory: new ArrayBuffer(8) }], error: memoryErr },
  { title: 'options { memory: its buffer }', args: [{ exports: {} }, { memory: memory.buffer }], error: memoryErr },
  { title: 'options { memory: the instance }', args: [{ exports: { memory } }, { memory: memoryOnlyInstance() }], error: memoryErr },
  // _start / _initialize are not checked, so they cannot come first
  { title: 'memory checked, not _start', args: [{ exports: { memory: 1, _start: 1, _initialize: 1 } }], error: memoryErr },
];

/** An instance whose JS `_start` writes "hi\n" to fd 1 with fd_write over `memory`. */
function writingInstance(wasi, log, memory) {
  return {
    exports: {
      memory,
      _start() {
        // iovec { buf: 16, len: 3 } at 0, "hi\n" at 16, nwritten at 32.
        const view = new DataView(memory.buffer);
        view.setUint32(0, 16, true);
        view.setUint32(4, 3, true);
        new Uint8Array(memory.buffer).set(Buffer.from('hi\n'), 16);
        log.push(wasi.wasiImport.fd_write(1, 0, 1, 32), view.getUint32(32, true));
      },
    },
  };
}

/**
 * finalizeBindings(...args) calls that succeed; `bound` is the memory that must then serve
 * the imports (random_get writes into it).
 */

export const FINALIZE_BINDINGS_ACCEPTS = (() => {
  const rows = [];
  const add = (title, make) => rows.push({ title, make });
  add('exports.memory (the default)', () => { const m = memory2(); return { args: [{ exports: { memory: m } }], bound: m }; });
  add('options {} (the default)', () => { const m = memory2(); return { args: [{ exports: { memory: m } }, {}], bound: m }; });
  add('options { memory: undefined } (the default)', () => { const m = memory2(); return { args: [{ exports: { memory: m } }, { memory: undefined }], bound: m }; });
  add('options primitive (the default)', () => { const m = memory2(); return { args: [{ exports: { memory: m } }, 1], bound: m }; });
  add('options.memory with empty exports', () => { const m = memory2(); return { args: [{ exports: {} }, { memory: m }], bound: m }; });
  add('options.memory wins over a bad exports.memory', () => { const m = memory2(); return { args: [{ exports: { memory: 'nope' } }, { memory: m }], bound: m }; });
  add('options.memory wins over a good exports.memory', () => { const m = memory2(); return { args: [{ exports: { memory: new WebAssembly.Memory({ initial: 2 }) } }, { memory: m }], bound: m }; });
  add('_start and _initialize are not looked at', () => { const m = memory2(); return { args: [{ exports: { memory: m, _start: 1, _initialize: 1 } }], bound: m }; });
  add('null-prototype exports', () => { const m = memory2(); return { args: [{ exports: Object.assign(Object.create(null), { memory: m }) }], bound: m }; });
  add('a shared memory', () => { const m = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true }); return { args: [{ exports: {} }, { memory: m }], bound: m }; });
  add('a memory from another vm context', () => { const m = vm.runInNewContext('new WebAssembly.Memory({ initial: 2 })'); return { args: [{ exports: { memory: m } }], bound: m }; });
  add('an object from another vm context', () => {
    const instance = vm.runInNewContext('({ exports: { memory: new WebAssembly.Memory({ initial: 2 }) } })');
    return { args: [instance], bound: instance.exports.memory };
  });
  add('a real WebAssembly.Instance', () => { const instance = memoryOnlyInstance(); return { args: [instance], bound: instance.exports.memory }; });
  return rows;
})();

/** After fn() made `wasi` started: every entry point throws ALREADY_STARTED before anything else. */
function assertStartedEverywhere(wasi, label) {
  let ran = false;
  const good = { exports: { memory, _start() { ran = true; } } };
  const goodReactor = { exports: { memory, _initialize() { ran = true; } } };
  assertThrowsExactly(() => wasi.start(good), alreadyStarted, `${label}: start()`);
  assertThrowsExactly(() => wasi.initialize(goodReactor), alreadyStarted, `${label}: initialize()`);
  assertThrowsExactly(() => wasi.finalizeBindings(good), alreadyStarted, `${label}: finalizeBindings()`);
  // The started check comes before the instance checks.
  assertThrowsExactly(() => wasi.start(null), alreadyStarted, `${label}: start(null)`);
  assertThrowsExactly(() => wasi.initialize(null), alreadyStarted, `${label}: initialize(null)`);
  assertThrowsExactly(() => wasi.finalizeBindings(null), alreadyStarted, `${label}: finalizeBindings(null)`);
  assertThrowsExactly(() => wasi.finalizeBindings({ exports: {} }, { memory: {} }), alreadyStarted, `${label}: finalizeBindings(bad memory)`);
  assert.equal(ran, false, `${label}: no entry point ran`);
}

/**
 * The imports serve `bound`: random_get fills its last 16 bytes (in page 2 for the 2-page
 * memories, which no other memory here has) and they land in `bound`.
 */
function assertBoundTo(wasi, bound, label) {
  const at = bound.buffer.byteLength - 16;
  assert.equal(wasi.wasiImport.random_get(at, 16), 0, `${label}: random_get`);
  assert.notDeepEqual([...new Uint8Array(bound.buffer, at, 16)], new Array(16).fill(0), `${label}: the bytes landed in the bound memory`);
}

test('finalizeBindings: the running node:wasi agrees with the table (Node 24.4+ only)', (t) => {
  if (!nodeHasFinalizeBindings) {
    t.skip(`node:wasi on Node ${process.versions.node} has no finalizeBindings; the table follows NODE_WASI.md and Node 24's lib/wasi.js`);
    return;
  }
  for (const row of FINALIZE_BINDINGS_ERRORS) {
    assertThrowsExactly(() => new NodeWASI({ version: P1 }).finalizeBindings(...row.args), row.error, `node:wasi ${row.title}`);
  }
  for (const { title, make } of FINALIZE_BINDINGS_ACCEPTS) {
    const { args } = make();
    assert.equal(new NodeWASI({ version: P1 }).finalizeBindings(...args), undefined, `node:wasi ${title}`);
  }
});

test('public WASI: finalizeBindings rejects exactly as Node 24 does, and a failure leaves it unstarted', () => {
  for (const row of FINALIZE_BINDINGS_ERRORS) {
    const wasi = new WASI({ version: P1 });
    const label = `WASI finalizeBindings ${row.title}`;
    assertThrowsExactly(() => wasi.finalizeBindings(...row.args), row.error, label);
    // Not started: the same call fails the same way, the imports are still unbound...
    assertThrowsExactly(() => wasi.finalizeBindings(...row.args), row.error, `${label} (again)`);
    assertThrowsExactly(() => wasi.wasiImport.random_get(0, 8),
                        { name: 'Error', code: 'ERR_WASI_NOT_STARTED', message: 'wasi.start() has not been called', codeInStack: false },
                        `${label}: imports still unbound`);
    // ...and a good call then succeeds.
    const m = memory2();
    assert.equal(wasi.finalizeBindings({ exports: { memory: m } }), undefined, `${label}: then a good call`);
    assertBoundTo(wasi, m, `${label}: then a good call`);
  }
});

test('public WASI: finalizeBindings with a null options object throws V8\'s destructuring TypeError, like Node 24', () => {
  // Node 24's parameter list, run on this V8: the expected error.
  function reference(instance, { memory: m = instance?.exports?.memory } = {}) { return m; }
  let expected;
  try { reference({ exports: { memory } }, null); } catch (e) { expected = e; }
  assert.ok(expected instanceof TypeError);
  const wasi = new WASI({ version: P1 });
  assert.throws(() => wasi.finalizeBindings({ exports: { memory } }, null), { name: 'TypeError', message: expected.message });
  assert.equal(wasi.finalizeBindings({ exports: { memory } }), undefined, 'not started by the failure');
});

test('public WASI: finalizeBindings accepts what Node 24 accepts, binds that memory, and marks the object started', async (t) => {
  for (const { title, make } of FINALIZE_BINDINGS_ACCEPTS) {
    await t.test(title, () => {
      const { args, bound } = make();
      const wasi = new WASI({ version: P1 });
      const label = `WASI finalizeBindings ${title}`;
      assert.equal(wasi.finalizeBindings(...args), undefined, label);
      assertBoundTo(wasi, bound, label);
      assertStartedEverywhere(wasi, label);
    });
  }
});

test('public WASI: finalizeBindings reads instance.exports and .memory as Node 24 does, even when already started', () => {
  // The default parameter reads instance.exports.memory at call time, before any check.
  const record = (m) => {
    const log = [];
    const exportsObj = new Proxy({ memory: m }, { get(tgt, k) { log.push(`exports.${String(k)}`); return tgt[k]; } });
    const instance = new Proxy({ exports: exportsObj }, { get(tgt, k) { log.push(`instance.${String(k)}`); return tgt[k]; } });
    return { log, instance };
  };
  const plain = record(memory2());
  new WASI({ version: P1 }).finalizeBindings(plain.instance);
  assert.deepEqual(plain.log, ['instance.exports', 'exports.memory', 'instance.exports']);
  const given = record(undefined);
  new WASI({ version: P1 }).finalizeBindings(given.instance, { memory: memory2() });
  assert.deepEqual(given.log, ['instance.exports']);
  const started = new WASI({ version: P1 });
  started.finalizeBindings({ exports: { memory } });
  const late = record(memory2());
  assertThrowsExactly(() => started.finalizeBindings(late.instance), alreadyStarted, 'started');
  assert.deepEqual(late.log, ['instance.exports', 'exports.memory']);
});

test('public WASI: after start() or initialize(), finalizeBindings throws ERR_WASI_ALREADY_STARTED', () => {
  const afterStart = new WASI({ version: P1 });
  assert.equal(afterStart.start({ exports: { memory, _start() {} } }), 0);
  assertStartedEverywhere(afterStart, 'after start()');
  const afterInitialize = new WASI({ version: P1 });
  assert.equal(afterInitialize.initialize({ exports: { memory } }), undefined);
  assertStartedEverywhere(afterInitialize, 'after initialize()');
  // node:wasi agrees for start()/initialize() (Node 20 has no finalizeBindings to try).
  const node = new NodeWASI({ version: P1 });
  node.start({ exports: { memory, _start() {} } });
  for (const method of ['start', 'initialize']) {
    assertThrowsExactly(() => node[method](null), alreadyStarted, `node:wasi ${method}(null) after start()`);
  }
});

// --- start() / initialize() accept what Node accepts, on the V8 path ----------------

/**
 * start()/initialize() calls node:wasi accepts. `make(W, wasi)` builds the instance for a WASI
 * object `wasi` of class W (so a JS _start can call its imports); `result` is what the call
 * returns; `output` what the guest wrote to stdout (a temp file fd, for both classes).
 */
const INSTANCE_ACCEPTS = [
  {
    method: 'start', title: 'a plain object with a JS _start',
    make: (wasi, log) => ({ exports: { memory: new WebAssembly.Memory({ initial: 1 }), _start() { log.push('ran'); } } }),
    result: 0, log: ['ran'],
  },
  {
    method: 'start', title: 'a JS _start that calls proc_exit(7)',
    make: (wasi, log) => ({ exports: { memory: new WebAssembly.Memory({ initial: 1 }), _start() { log.push('ran'); wasi.wasiImport.proc_exit(7); log.push('not reached'); } } }),
    result: 7, log: ['ran'],
  },
  {
    method: 'start', title: 'a JS _start that writes through fd_write on its memory',
    make: (wasi, log) => writingInstance(wasi, log, new WebAssembly.Memory({ initial: 1 })),
    result: 0, log: [0, 3], output: 'hi\n',
  },
  {
    // What finalizeBindings exists for: wasi-threads guests, whose memory is shared.
    method: 'start', title: 'a JS _start that writes through fd_write on a shared memory',
    make: (wasi, log) => writingInstance(wasi, log, new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true })),
    result: 0, log: [0, 3], output: 'hi\n',
  },
  {
    method: 'start', title: '_initialize explicitly undefined',
    make: (wasi, log) => ({ exports: { memory, _start() { log.push('ran'); }, _initialize: undefined } }),
    result: 0, log: ['ran'],
  },
  {
    method: 'start', title: 'a plain object from another vm context',
    make: (wasi, log) => {
      const instance = vm.runInNewContext('({ exports: { memory: new WebAssembly.Memory({ initial: 1 }), _start() { log.push("ran"); } } })', { log });
      assert.equal(instance instanceof Object, false);
      return instance;
    },
    result: 0, log: ['ran'],
  },
  {
    method: 'start', title: 'hello.wasm instantiated in another vm context',
    make: (wasi) => {
      const instance = vm.runInNewContext('new WebAssembly.Instance(new WebAssembly.Module(bytes), imports)',
                                          { bytes: fixture('hello.wasm'), imports: wasi.getImportObject() });
      assert.equal(instance instanceof WebAssembly.Instance, false);
      return instance;
    },
    result: 0, output: 'hello world\n',
  },
  {
    method: 'initialize', title: 'a plain object with neither _start nor _initialize',
    make: () => ({ exports: { memory: new WebAssembly.Memory({ initial: 1 }) } }),
    result: undefined,
  },
  {
    method: 'initialize', title: 'a real module with neither _start nor _initialize',
    make: () => memoryOnlyInstance(),
    result: undefined,
  },
  {
    method: 'initialize', title: 'the same module instantiated in another vm context',
    make: () => vm.runInNewContext('new WebAssembly.Instance(new WebAssembly.Module(bytes), {})', { bytes: MEMORY_ONLY }),
    result: undefined,
  },
  {
    method: 'initialize', title: 'a JS _initialize',
    make: (wasi, log) => ({ exports: { memory, _initialize() { log.push('ran'); } } }),
    result: undefined, log: ['ran'],
  },
  {
    method: 'initialize', title: '_start explicitly undefined',
    make: (wasi, log) => ({ exports: { memory, _start: undefined, _initialize() { log.push('ran'); } } }),
    result: undefined, log: ['ran'],
  },
  {
    method: 'initialize', title: 'reactor.wasm (a real _initialize)',
    make: (wasi) => new WebAssembly.Instance(new WebAssembly.Module(fixture('reactor.wasm')), wasi.getImportObject()),
    result: undefined, after: (instance) => assert.equal(instance.exports.get_initialized(), 42),
  },
];

test('start()/initialize() accept what node:wasi accepts: same result, output and side effects', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nwt-validation-'));
  try {
    for (const row of INSTANCE_ACCEPTS) {
      await t.test(`${row.method}: ${row.title}`, () => {
        for (const W of [NodeWASI, WASI]) {
          const label = `${W === WASI ? 'WASI' : 'node:wasi'} ${row.method} ${row.title}`;
          const outFile = path.join(dir, `out-${W === WASI ? 'ours' : 'node'}.txt`);
          const fd = fs.openSync(outFile, 'w');
          try {
            const wasi = new W({ version: P1, stdout: fd });
            const log = [];
            const instance = row.make(wasi, log);
            assert.equal(wasi[row.method](instance), row.result, label);
            assert.deepEqual(log, row.log ?? [], `${label}: log`);
            row.after?.(instance);
            assert.equal(fs.readFileSync(outFile, 'latin1'), row.output ?? '', `${label}: stdout`);
            // The imports are bound now, and the object is started.
            assert.equal(wasi.wasiImport.random_get(0, 8), 0, `${label}: imports bound`);
            assertThrowsExactly(() => wasi[row.method](instance), alreadyStarted, `${label}: second call`);
          } finally {
            fs.closeSync(fd);
          }
        }
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
