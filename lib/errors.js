'use strict';

// Error construction for node-wasmtime. This file owns every coded error the
// JavaScript layer throws: faithful copies of the Node.js internal errors that
// `node:wasi` raises (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE,
// ERR_OUT_OF_RANGE, ERR_WASI_ALREADY_STARTED, ERR_WASI_NOT_STARTED), Node's
// `determineSpecificType` "Received ..." formatting (`describeReceived`), the
// generic `codedError` used for this package's own codes, and
// `hideStackFrames`, which makes validator frames disappear from stack traces
// the way Node's do. Two error shapes exist, both measured on Node 20.20:
// errors Node builds in JavaScript (a prototype whose toString() and whose
// stack header read `TypeError [CODE]: message`) and errors Node throws from
// C++ (plain `new TypeError(message)` plus an own `code`; stack header
// `TypeError: message`). In both, `code` is an own, enumerable, writable,
// configurable data property and `message` an own non-enumerable one.

const { inspect } = require('node:util');

const kTypes = [
  'string', 'function', 'number', 'object',
  // Node accepts 'Function' and 'Object' as alternatives to the lower-cased names.
  'Function', 'Object', 'boolean', 'bigint', 'symbol',
];
const classRegExp = /^([A-Z][a-z0-9]*)+$/;

// Errors created here, mapped to whether their stack header carries the code.
// hideStackFrames() needs it to rebuild the header when it re-captures a stack.
const ownErrors = new WeakMap();

// One subclass per (Base, code), like Node's NodeError: instances inherit a
// toString() that prints `Name [CODE]: message` and keep `name`, `instanceof`
// and `constructor.name` of the base class.
const nodeErrorClasses = new Map();
function nodeErrorClass(Base, code) {
  let byCode = nodeErrorClasses.get(Base);
  if (byCode === undefined) {
    byCode = new Map();
    nodeErrorClasses.set(Base, byCode);
  }
  let Cls = byCode.get(code);
  if (Cls === undefined) {
    Cls = class extends Base {};
    Object.defineProperty(Cls, 'name', { value: Base.name, configurable: true });
    Object.defineProperty(Cls.prototype, 'toString', {
      value: function toString() { return `${this.name} [${code}]: ${this.message}`; },
      enumerable: false,
      writable: true,
      configurable: true,
    });
    byCode.set(code, Cls);
  }
  return Cls;
}

function captureStack(err, stackStartFn, codeInStack) {
  if (codeInStack) {
    // Node's addCodeToName trick: V8 formats the stack header lazily from
    // `name` and `message` on first access, so shadow `name` while reading it.
    Object.defineProperty(err, 'name', {
      value: `${err.name} [${err.code}]`,
      enumerable: false,
      writable: true,
      configurable: true,
    });
    Error.captureStackTrace(err, stackStartFn);
    // eslint-disable-next-line no-unused-expressions
    err.stack;
    delete err.name;
  } else {
    Error.captureStackTrace(err, stackStartFn);
    // eslint-disable-next-line no-unused-expressions
    err.stack;
  }
}

function makeError(Base, code, message, codeInStack, codeFirst, stackStartFn) {
  let err;
  if (codeInStack) {
    const Cls = nodeErrorClass(Base, code);
    if (codeFirst) {
      // Node's errors whose message is computed by a function end up with own
      // keys `stack, code, message`; those with a fixed/format message with
      // `stack, message, code` (measured on Node 20.20).
      err = new Cls();
      err.code = code;
      Object.defineProperty(err, 'message', {
        value: message,
        enumerable: false,
        writable: true,
        configurable: true,
      });
    } else {
      err = new Cls(message);
      err.code = code;
    }
  } else {
    err = new Base(message);
    err.code = code;
  }
  ownErrors.set(err, codeInStack);
  captureStack(err, stackStartFn, codeInStack);
  return err;
}

/**
 * Build an error with a `code` (for this package's own codes).
 * @param {ErrorConstructor} Base  Error, TypeError, RangeError, WebAssembly.RuntimeError, ...
 * @param {string} code
 * @param {string} message
 * @param {{ codeInStack?: boolean, stackStartFn?: Function }} [options]
 *   codeInStack (default true): Node's JS-error shape, `Base [CODE]: message` in
 *   the stack and toString(); false gives Node's C++-error shape (`Base: message`,
 *   prototype directly Base.prototype).
 *   stackStartFn: frames above and including this function are left out
 *   (default: codedError itself, so the stack starts at its caller).
 */
function codedError(Base, code, message, options) {
  const codeInStack = options === undefined || options.codeInStack !== false;
  const stackStartFn = (options !== undefined && options.stackStartFn) || codedError;
  return makeError(Base, code, message, codeInStack, false, stackStartFn);
}

/**
 * Wrap a validator so that, when it throws one of our errors, the stack starts
 * at the validator's caller (Node's hideStackFrames). Foreign errors (a user's
 * throwing toString(), for instance) pass through untouched.
 */
function hideStackFrames(fn) {
  function hidden(...args) {
    try {
      return Reflect.apply(fn, this, args);
    } catch (err) {
      if (err !== null && typeof err === 'object' && ownErrors.has(err)) {
        captureStack(err, hidden, ownErrors.get(err));
      }
      throw err;
    }
  }
  Object.defineProperty(hidden, 'name', { value: fn.name, configurable: true });
  return hidden;
}

/**
 * Node's `determineSpecificType` (lib/internal/errors.js, Node 22+/24, also
 * what Node 20.20 ships): the text after "Received " in ERR_INVALID_ARG_TYPE.
 */
function determineSpecificType(value) {
  if (value === null) {
    return 'null';
  } else if (value === undefined) {
    return 'undefined';
  }

  const type = typeof value;

  switch (type) {
    case 'bigint':
      return `type bigint (${value}n)`;
    case 'number':
      if (value === 0) {
        return 1 / value === -Infinity ? 'type number (-0)' : 'type number (0)';
      } else if (value !== value) { // eslint-disable-line no-self-compare
        return 'type number (NaN)';
      } else if (value === Infinity) {
        return 'type number (Infinity)';
      } else if (value === -Infinity) {
        return 'type number (-Infinity)';
      }
      return `type number (${value})`;
    case 'boolean':
      return value ? 'type boolean (true)' : 'type boolean (false)';
    case 'symbol':
      return `type symbol (${String(value)})`;
    case 'function':
      return `function ${value.name}`;
    case 'object':
      if (value.constructor && 'name' in value.constructor) {
        return `an instance of ${value.constructor.name}`;
      }
      return `${inspect(value, { depth: -1 })}`;
    case 'string':
      if (value.length > 28) {
        value = `${value.slice(0, 25)}...`;
      }
      if (value.indexOf("'") === -1) {
        return `type string ('${value}')`;
      }
      return `type string (${JSON.stringify(value)})`;
    default:
      value = inspect(value, { colors: false });
      if (value.length > 28) {
        value = `${value.slice(0, 25)}...`;
      }
      return `type ${type} (${value})`;
  }
}

/** The " Received ..." suffix of ERR_INVALID_ARG_TYPE, with its leading space. */
function describeReceived(value) {
  return ` Received ${determineSpecificType(value)}`;
}

function formatList(array, type = 'and') {
  switch (array.length) {
    case 0: return '';
    case 1: return `${array[0]}`;
    case 2: return `${array[0]} ${type} ${array[1]}`;
    case 3: return `${array[0]}, ${array[1]}, ${type} ${array[2]}`;
    default:
      return `${array.slice(0, -1).join(', ')}, ${type} ${array[array.length - 1]}`;
  }
}

/** `'argument'` for a plain name, `'property'` for a dotted one (Node's rule). */
function argOrProperty(name) {
  return name.includes('.') ? 'property' : 'argument';
}

function invalidArgTypeMessage(name, expected, actual) {
  if (typeof name !== 'string') throw new TypeError("'name' must be a string");
  if (!Array.isArray(expected)) expected = [expected];

  let msg = 'The ';
  if (name.endsWith(' argument')) {
    // For cases like 'first argument'.
    msg += `${name} `;
  } else {
    msg += `"${name}" ${argOrProperty(name)} `;
  }
  msg += 'must be ';

  const types = [];
  const instances = [];
  const other = [];

  for (const value of expected) {
    if (typeof value !== 'string') {
      throw new TypeError('All expected entries have to be of type string');
    }
    if (kTypes.includes(value)) {
      types.push(value.toLowerCase());
    } else if (classRegExp.test(value)) {
      instances.push(value);
    } else {
      other.push(value);
    }
  }

  // Special-case `object` when other instances are allowed, to outline the
  // differences between them.
  if (instances.length > 0) {
    const pos = types.indexOf('object');
    if (pos !== -1) {
      types.splice(pos, 1);
      instances.push('Object');
    }
  }

  if (types.length > 0) {
    msg += `${types.length > 1 ? 'one of type' : 'of type'} ${formatList(types, 'or')}`;
    if (instances.length > 0 || other.length > 0) msg += ' or ';
  }

  if (instances.length > 0) {
    msg += `an instance of ${formatList(instances, 'or')}`;
    if (other.length > 0) msg += ' or ';
  }

  if (other.length > 0) {
    if (other.length > 1) {
      msg += `one of ${formatList(other, 'or')}`;
    } else {
      if (other[0].toLowerCase() !== other[0]) msg += 'an ';
      msg += `${other[0]}`;
    }
  }

  msg += `. Received ${determineSpecificType(actual)}`;
  return msg;
}

/**
 * TypeError ERR_INVALID_ARG_TYPE. `expected` is one entry or a list: primitive
 * type names ('object', 'string', 'number', 'boolean', 'function', 'bigint',
 * 'symbol'), class names ('Array', 'Buffer', ...), or anything else verbatim
 * ('undefined', 'WebAssembly.Memory', ...). Usable with or without `new`.
 */
function ERR_INVALID_ARG_TYPE(name, expected, actual) {
  return makeError(TypeError, 'ERR_INVALID_ARG_TYPE',
                   invalidArgTypeMessage(name, expected, actual),
                   true, true, ERR_INVALID_ARG_TYPE);
}

/** ERR_INVALID_ARG_TYPE with a message of its own, in Node's shape (for our extended options). */
ERR_INVALID_ARG_TYPE.withMessage = function InvalidArgTypeWithMessage(message) {
  return makeError(TypeError, 'ERR_INVALID_ARG_TYPE', message, true, true, InvalidArgTypeWithMessage);
};

function invalidArgValueMessage(name, value, reason = 'is invalid') {
  let inspected = inspect(value);
  if (inspected.length > 128) {
    inspected = `${inspected.slice(0, 128)}...`;
  }
  return `The ${argOrProperty(name)} '${name}' ${reason}. Received ${inspected}`;
}

/** TypeError ERR_INVALID_ARG_VALUE: `The property 'a.b' <reason>. Received <inspect(value)>`. */
function ERR_INVALID_ARG_VALUE(name, value, reason) {
  return makeError(TypeError, 'ERR_INVALID_ARG_VALUE',
                   invalidArgValueMessage(name, value, reason),
                   true, true, ERR_INVALID_ARG_VALUE);
}
/** The RangeError flavour Node also registers for ERR_INVALID_ARG_VALUE. */
ERR_INVALID_ARG_VALUE.RangeError = function RangeErrorInvalidArgValue(name, value, reason) {
  return makeError(RangeError, 'ERR_INVALID_ARG_VALUE',
                   invalidArgValueMessage(name, value, reason),
                   true, true, RangeErrorInvalidArgValue);
};

function addNumericalSeparator(val) {
  let res = '';
  let i = val.length;
  const start = val[0] === '-' ? 1 : 0;
  for (; i >= start + 4; i -= 3) {
    res = `_${val.slice(i - 3, i)}${res}`;
  }
  return `${val.slice(0, i)}${res}`;
}

/**
 * RangeError ERR_OUT_OF_RANGE: `The value of "name" is out of range. It must be
 * <range>. Received <received>`, with Node's formatting of `received`
 * (numeric separators above 2**32, `n` suffix for bigints, inspect otherwise).
 */
function ERR_OUT_OF_RANGE(str, range, input, replaceDefaultBoolean = false) {
  if (!range) throw new TypeError('Missing "range" argument');
  let msg = replaceDefaultBoolean ? str : `The value of "${str}" is out of range.`;
  let received;
  if (Number.isInteger(input) && Math.abs(input) > 2 ** 32) {
    received = addNumericalSeparator(String(input));
  } else if (typeof input === 'bigint') {
    received = String(input);
    if (input > 2n ** 32n || input < -(2n ** 32n)) {
      received = addNumericalSeparator(received);
    }
    received += 'n';
  } else {
    received = inspect(input);
  }
  msg += ` It must be ${range}. Received ${received}`;
  return makeError(RangeError, 'ERR_OUT_OF_RANGE', msg, true, true, ERR_OUT_OF_RANGE);
}

/** Error ERR_WASI_ALREADY_STARTED (a JS-side error in Node). */
function ERR_WASI_ALREADY_STARTED() {
  return makeError(Error, 'ERR_WASI_ALREADY_STARTED', 'WASI instance has already started',
                   true, false, ERR_WASI_ALREADY_STARTED);
}

/**
 * Error ERR_WASI_NOT_STARTED. Node throws it from C++, so it has the C++
 * shape: stack header `Error: wasi.start() has not been called`, no code there.
 */
function ERR_WASI_NOT_STARTED() {
  return makeError(Error, 'ERR_WASI_NOT_STARTED', 'wasi.start() has not been called',
                   false, false, ERR_WASI_NOT_STARTED);
}

/**
 * Node's own AbortError (what fs/promises, timers/promises and stream APIs reject with when
 * their signal aborts): name 'AbortError', code 'ABORT_ERR', the signal's reason as `cause`.
 */
class AbortError extends Error {
  constructor(message = 'The operation was aborted', options = undefined) {
    super(message, options);
    this.code = 'ABORT_ERR';
    this.name = 'AbortError';
  }
}

module.exports = {
  AbortError,
  codedError,
  describeReceived,
  determineSpecificType,
  hideStackFrames,
  ERR_INVALID_ARG_TYPE,
  ERR_INVALID_ARG_VALUE,
  ERR_OUT_OF_RANGE,
  ERR_WASI_ALREADY_STARTED,
  ERR_WASI_NOT_STARTED,
};
