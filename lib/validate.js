'use strict';

// Argument validation for node-wasmtime's JavaScript layer. This file owns the
// checks and normalization of `new WASI(options)` (Node's constructor steps
// 1-7 in NODE_WASI.md, same order, same errors, plus our documented
// extensions: `stdin` as BufferSource (also a string for runWasm), `stdout`/`stderr` as 'pipe' or
// 'ignore'), of `returnOnExit` (step 9, checked after native setup), of
// `runWasm(wasm, options)`'s options, and the start()/initialize() checks on
// an instance (`validateObject`, `validateFunction`, `validateUndefined`,
// `validateMemory`). It throws only errors built by ./errors.js, and follows
// Node's lib/wasi.js + lib/internal/validators.js down to the order in which
// option properties are read.

const { isStreamTarget } = require('./stream');
const {
  ERR_INVALID_ARG_TYPE,
  ERR_INVALID_ARG_VALUE,
  ERR_OUT_OF_RANGE,
  codedError,
  describeReceived,
  hideStackFrames,
} = require('./errors');

// --- Node's lib/internal/validators.js -------------------------------------

function validateObject(value, name) {
  if (value === null || Array.isArray(value) || typeof value !== 'object') {
    throw ERR_INVALID_ARG_TYPE(name, 'Object', value);
  }
}

function validateFunction(value, name) {
  if (typeof value !== 'function') {
    throw ERR_INVALID_ARG_TYPE(name, 'Function', value);
  }
}

function validateUndefined(value, name) {
  if (value !== undefined) {
    throw ERR_INVALID_ARG_TYPE(name, 'undefined', value);
  }
}

function validateString(value, name) {
  if (typeof value !== 'string') {
    throw ERR_INVALID_ARG_TYPE(name, 'string', value);
  }
}

function validateArray(value, name) {
  if (!Array.isArray(value)) {
    throw ERR_INVALID_ARG_TYPE(name, 'Array', value);
  }
}

function validateInt32(value, name, min = -2147483648, max = 2147483647) {
  if (typeof value !== 'number') {
    throw ERR_INVALID_ARG_TYPE(name, 'number', value);
  }
  if (!Number.isInteger(value)) {
    throw ERR_OUT_OF_RANGE(name, 'an integer', value);
  }
  if (value < min || value > max) {
    throw ERR_OUT_OF_RANGE(name, `>= ${min} && <= ${max}`, value);
  }
}

// A finite number in [min, max] (ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE), integer if asked.
function validateNumberInRange(value, name, min, max, integer) {
  if (typeof value !== 'number') throw ERR_INVALID_ARG_TYPE(name, 'number', value);
  if (integer && !Number.isInteger(value)) throw ERR_OUT_OF_RANGE(name, 'an integer', value);
  if (!(value >= min && value <= max)) throw ERR_OUT_OF_RANGE(name, `>= ${min} && <= ${max}`, value);
}

// The largest memory a wasm32 guest can have: 65536 pages of 64 KiB.
const kMaxMemoryBytes = 2 ** 32;

// limits.maxStack bounds. A guest on node-wasmtime's threads (runWasm) may have up to 8 MiB
// of wasm stack (those threads have 16 MiB); one on the calling thread (runWasmSync, a WASI
// object's calls) at most 1 MiB, which leaves room on Node's 8 MiB main-thread stack and a
// worker's default 4 MiB.
const kMinStack = 64 * 1024;
const kMaxStackPool = 8 * 1024 * 1024;
const kMaxStackCaller = 1024 * 1024;

/**
 * Extension: `limits: { timeout?, fuel?, maxMemory?, maxStack? }` (undefined: no limits).
 * timeout: milliseconds (> 0, at most 2^31 - 1, like setTimeout's); fuel: an integer budget;
 * maxMemory, maxStack: bytes. `onPool`: the guest runs on node-wasmtime's threads (runWasm).
 */
function validateLimits(limits, name, onPool = false) {
  if (limits === undefined) return undefined;
  validateObject(limits, name);
  // A misspelled limit would otherwise mean no limit at all.
  rejectUnknownKeys(limits, name, kLimitNames, 'a limit');
  const { timeout, fuel, maxMemory, maxStack } = limits;
  if (maxStack !== undefined) {
    if (typeof maxStack !== 'number') throw ERR_INVALID_ARG_TYPE(`${name}.maxStack`, 'number', maxStack);
    const max = onPool ? kMaxStackPool : kMaxStackCaller;
    if (!Number.isInteger(maxStack)) throw ERR_OUT_OF_RANGE(`${name}.maxStack`, 'an integer', maxStack);
    if (maxStack < kMinStack || maxStack > max) {
      const why = onPool ? '' : ` (runWasm allows up to ${kMaxStackPool}: its threads have deeper stacks)`;
      throw ERR_OUT_OF_RANGE(`${name}.maxStack`, `>= ${kMinStack} && <= ${max}${why}`, maxStack);
    }
  }
  if (timeout !== undefined) validateNumberInRange(timeout, `${name}.timeout`, 1, 2 ** 31 - 1, false);
  if (fuel !== undefined) validateNumberInRange(fuel, `${name}.fuel`, 0, Number.MAX_SAFE_INTEGER, true);
  if (maxMemory !== undefined) {
    validateNumberInRange(maxMemory, `${name}.maxMemory`, 0, kMaxMemoryBytes, true);
  }
  return { timeout, fuel, maxMemory, maxStack };
}

const kLimitNames = ['timeout', 'fuel', 'maxMemory', 'maxStack'];
const kRunOptionNames =
  ['args', 'env', 'preopens', 'stdin', 'stdout', 'stderr', 'limits', 'maxBuffer', 'imports', 'signal'];

/**
 * Throws ERR_INVALID_ARG_VALUE for the first own enumerable key of `object` that is not in
 * `known`, naming it and the known ones (`what`: 'a limit', 'an option of runWasm', ...).
 */
function rejectUnknownKeys(object, name, known, what) {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) {
      throw ERR_INVALID_ARG_VALUE(`${name}.${key}`, object[key],
                                  `is not ${what}; the known ones are ${known.join(', ')}`);
    }
  }
}

// --- shared pieces of WASI and runWasm options ------------------------------

// `args` elements go through String(), like Node. Node uses Array.prototype.map,
// which keeps holes and then aborts the process in C++ (`arg->IsString()`
// assertion, Node 20.20); a plain loop turns a hole into 'undefined' instead.
function normalizeArgs(args) {
  const out = new Array(args.length);
  for (let i = 0; i < args.length; i++) out[i] = String(args[i]);
  return out;
}

// Own enumerable string keys in order (Object.entries); undefined values
// skipped; `${key}=${value}` (a template literal, so a Symbol value throws
// V8's TypeError "Cannot convert a Symbol value to a string", as in Node).
function normalizeEnv(env) {
  const out = [];
  for (const { 0: key, 1: value } of Object.entries(env)) {
    if (value !== undefined) out.push(`${key}=${value}`);
  }
  return out;
}

// Entries in insertion order; key and value through String() (Node does the
// same, so `{ '/a': 1 }` maps to host path '1').
function normalizePreopens(preopens) {
  const out = [];
  for (const { 0: key, 1: value } of Object.entries(preopens)) {
    out.push([String(key), String(value)]);
  }
  return out;
}

function isArrayBuffer(value) {
  // Brand check that also works across realms (vm contexts).
  try {
    Reflect.apply(arrayBufferByteLength, value, []);
    return true;
  } catch {
    return false;
  }
}
const arrayBufferByteLength =
  Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength').get;

// string (utf-8) | Buffer | TypedArray | DataView | ArrayBuffer -> Uint8Array
// viewing the same bytes; anything else -> undefined.
function toBytes(value) {
  if (typeof value === 'string') {
    const buf = Buffer.from(value, 'utf8');
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (value !== null && typeof value === 'object' && isArrayBuffer(value)) {
    return new Uint8Array(value);
  }
  return undefined;
}

// --- maxBuffer ----------------------------------------------------------------

/**
 * Bytes a captured ('pipe') stdout or stderr keeps before the guest is stopped with
 * ERR_WASI_STDIO_MAXBUFFER: 1 MiB, child_process's default for the same option.
 */
const kDefaultMaxBuffer = 1024 * 1024;

/** Node's `validateMaxBuffer` (child_process): undefined or null is the default. */
function validateMaxBuffer(value) {
  if (value === undefined || value === null) return kDefaultMaxBuffer;
  if (!(typeof value === 'number' && value >= 0)) {
    throw ERR_OUT_OF_RANGE('options.maxBuffer', 'a positive number', value);
  }
  return value;
}

// --- new WASI(options) -------------------------------------------------------

/**
 * Node's `new WASI(options)` checks 1-7, in Node's order with Node's errors,
 * reading the option properties in the same order and as often as Node does.
 * @returns {{ version: 'preview1'|'unstable'|'preview2', args: string[], env: string[],
 *   preopens: Array<[string, string]>, stdin: number|Uint8Array,
 *   stdout: number|'pipe'|'ignore', stderr: number|'pipe'|'ignore',
 *   maxBuffer: number, returnOnExit: unknown }}
 */
function validateWasiOptions(options) {
  // Node: `constructor(options = kEmptyObject)`, so `new WASI()` reaches the
  // version check ("options.version" ... Received undefined).
  if (options === undefined) options = {};
  validateObject(options, 'options');

  validateString(options.version, 'options.version');
  const version = options.version;
  // Extension: 'preview2' (WASI 0.2) is for components only; see WASI#instantiate.
  if (version !== 'unstable' && version !== 'preview1' && version !== 'preview2') {
    throw ERR_INVALID_ARG_VALUE('options.version', version, 'unsupported WASI version');
  }

  if (options.args !== undefined) validateArray(options.args, 'options.args');
  const args = normalizeArgs(options.args || []);

  let env = [];
  if (options.env !== undefined) {
    validateObject(options.env, 'options.env');
    env = normalizeEnv(options.env);
  }

  let preopens = [];
  if (options.preopens !== undefined) {
    validateObject(options.preopens, 'options.preopens');
    preopens = normalizePreopens(options.preopens);
  }

  let { stdin = 0, stdout = 1, stderr = 2 } = options;
  // -0 passes Node's int32 check; hand the native side a plain 0.
  if (stdin === 0) stdin = 0;
  if (stdout === 0) stdout = 0;
  if (stderr === 0) stderr = 0;
  // Extension: stdin may be data (a BufferSource) fed to the guest. A string is not data
  // here: node:wasi rejects it (its own tests pass one), so it gets node:wasi's error.
  const stdinBytes = typeof stdin === 'string' ? undefined : toBytes(stdin);
  if (stdinBytes !== undefined) {
    stdin = stdinBytes;
  } else {
    validateInt32(stdin, 'options.stdin', 0);
  }
  stdout = validateWasiOutput(stdout, 'options.stdout', 1);
  stderr = validateWasiOutput(stderr, 'options.stderr', 2);

  // Extensions, checked after all of node:wasi's own checks.
  const limits = validateLimits(options.limits, 'options.limits');
  const maxBuffer = validateMaxBuffer(options.maxBuffer);

  return {
    version,
    args,
    env,
    preopens,
    stdin,
    stdout,
    stderr,
    limits,
    maxBuffer,
    // Raw: Node validates it only after native setup (step 9).
    returnOnExit: options.returnOnExit,
  };
}

/**
 * The stdout/stderr modes both option bags take beside a descriptor: 'pipe', 'ignore', a
 * function or Writable (as given), and 'inherit' (`inheritFd`); undefined for anything else.
 */
function outputMode(value, inheritFd) {
  if (value === 'pipe' || value === 'ignore' || isStreamTarget(value)) return value;
  if (value === 'inherit') return inheritFd;
  return undefined;
}

/**
 * node:wasi's stdout/stderr check (an int32 fd >= 0, with its messages), plus the extensions
 * runWasm takes too: 'pipe' (captured), 'ignore', 'inherit' (this process's fd 1 or 2:
 * `inheritFd`), or a function or Writable the stream goes to. A value of another type is
 * still node:wasi's ERR_INVALID_ARG_TYPE, its message listing what is accepted.
 */
function validateWasiOutput(value, name, inheritFd) {
  const mode = outputMode(value, inheritFd);
  if (mode !== undefined) return mode;
  if (typeof value !== 'number') {
    throw ERR_INVALID_ARG_TYPE.withMessage(
      `The "${name}" property must be of type number (a file descriptor), or one of ` +
      `'pipe', 'inherit', 'ignore', a function or a Writable.${describeReceived(value)}`);
  }
  validateInt32(value, name, 0);
  return value;
}

/** Node's step 9: undefined -> true; otherwise must be a boolean. */
function validateReturnOnExit(value) {
  if (value === undefined) return true;
  if (typeof value !== 'boolean') {
    throw ERR_INVALID_ARG_TYPE('options.returnOnExit', 'boolean', value);
  }
  return value;
}

// --- runWasm(wasm, options) ---------------------------------------------------

const kStdioModes = "'pipe', 'inherit', 'ignore', or a file descriptor";

function validateRunStdio(value, name, inheritFd) {
  if (value === undefined) return 'pipe';
  const mode = outputMode(value, inheritFd);
  if (mode !== undefined) return mode;
  if (typeof value === 'string') {
    throw ERR_INVALID_ARG_VALUE(name, value, `must be one of: ${kStdioModes}`);
  }
  if (typeof value !== 'number') {
    throw ERR_INVALID_ARG_TYPE(name, ['string', 'number', 'function', 'Writable'], value);
  }
  validateInt32(value, name, 0);
  return value === 0 ? 0 : value; // -0 -> 0
}

/**
 * Options of our own `runWasm(wasm, options)` / `runWasmSync`. Unknown keys are
 * refused (ERR_INVALID_ARG_VALUE). stdout/stderr default to 'pipe'; 'inherit' becomes fd 1 / fd 2.
 * @returns {{ args: string[], env: string[], preopens: Array<[string, string]>,
 *   stdin: undefined|number|Uint8Array, stdout: 'pipe'|'ignore'|number,
 *   stderr: 'pipe'|'ignore'|number, maxBuffer: number }}
 */
function validateRunOptions(options, onPool = false) {
  if (options === undefined) options = {};
  validateObject(options, 'options');

  if (options.args !== undefined) validateArray(options.args, 'options.args');
  const args = normalizeArgs(options.args || []);

  let env = [];
  if (options.env !== undefined) {
    validateObject(options.env, 'options.env');
    env = normalizeEnv(options.env);
  }

  let preopens = [];
  if (options.preopens !== undefined) {
    validateObject(options.preopens, 'options.preopens');
    preopens = normalizePreopens(options.preopens);
  }

  let stdin = options.stdin;
  if (stdin !== undefined) {
    const bytes = toBytes(stdin);
    if (bytes !== undefined) {
      stdin = bytes;
    } else if (typeof stdin === 'number') {
      validateInt32(stdin, 'options.stdin', 0);
      if (stdin === 0) stdin = 0; // -0 -> 0
    } else {
      throw ERR_INVALID_ARG_TYPE(
        'options.stdin',
        ['number', 'string', 'Buffer', 'TypedArray', 'DataView', 'ArrayBuffer'],
        stdin);
    }
  }

  const stdout = validateRunStdio(options.stdout, 'options.stdout', 1);
  const stderr = validateRunStdio(options.stderr, 'options.stderr', 2);
  const limits = validateLimits(options.limits, 'options.limits', onPool);
  const maxBuffer = validateMaxBuffer(options.maxBuffer);
  // Our own API, so unlike new WASI (which keeps node:wasi's tolerance) a key it does not
  // know is refused: a misspelled option must not be silently ignored.
  rejectUnknownKeys(options, 'options', kRunOptionNames,
                    `an option of ${onPool ? 'runWasm' : 'runWasmSync'}`);

  return { args, env, preopens, stdin, stdout, stderr, limits, maxBuffer };
}

// --- start() / initialize() --------------------------------------------------

const memoryBufferGetter =
  Object.getOwnPropertyDescriptor(WebAssembly.Memory.prototype, 'buffer').get;

function isWasmMemory(value) {
  if (value === null || typeof value !== 'object') return false;
  // Node checks in C++ (IsWasmMemoryObject): a brand check, not instanceof, so
  // a memory from another realm passes and Object.create(Memory.prototype)
  // fails. The `buffer` getter performs the same brand check.
  try {
    Reflect.apply(memoryBufferGetter, value, []);
    return true;
  } catch {
    return false;
  }
}

/**
 * `instance.exports.memory` must be a WebAssembly.Memory (or, when given, an
 * instance of `extraClass`, e.g. our own Memory). Node's message is irregular
 * because it comes from C++: TypeError ERR_INVALID_ARG_TYPE
 * `"instance.exports.memory" property must be a WebAssembly.Memory object`,
 * with a plain `TypeError: ...` stack header.
 */
function validateMemory(value, extraClass) {
  if (isWasmMemory(value)) return;
  if (typeof extraClass === 'function' && value instanceof extraClass) return;
  throw codedError(
    TypeError, 'ERR_INVALID_ARG_TYPE',
    '"instance.exports.memory" property must be a WebAssembly.Memory object',
    { codeInStack: false, stackStartFn: validateMemory });
}

module.exports = {
  validateWasiOptions: hideStackFrames(validateWasiOptions),
  validateReturnOnExit: hideStackFrames(validateReturnOnExit),
  validateRunOptions: hideStackFrames(validateRunOptions),
  validateObject: hideStackFrames(validateObject),
  validateFunction: hideStackFrames(validateFunction),
  validateUndefined: hideStackFrames(validateUndefined),
  validateInt32: hideStackFrames(validateInt32),
  validateString: hideStackFrames(validateString),
  validateNumberInRange: hideStackFrames(validateNumberInRange),
  validateMemory: hideStackFrames(validateMemory),
  kDefaultMaxBuffer,
};
