'use strict';

// AbortSignal plumbing shared by runWasm and wasi.startAsync: Node's checks on `signal`, and
// a native CancelToken set when the signal aborts, whose ABORT_ERR rejection becomes Node's
// AbortError with the signal's reason as `cause` (and the guest's output so far).

const { CancelToken } = require('../index.js');
const { AbortError, ERR_INVALID_ARG_TYPE } = require('./errors');

/** Node's validateAbortSignal: undefined, or an object with `aborted`. */
function validateAbortSignal(signal, name) {
  if (signal !== undefined &&
      (signal === null || typeof signal !== 'object' || !('aborted' in signal))) {
    throw ERR_INVALID_ARG_TYPE(name, 'AbortSignal', signal);
  }
}

function throwIfAborted(signal) {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
}

/**
 * Calls `start(token)` at once (synchronously) with a CancelToken that `signal` cancels, and
 * settles like its promise, an ABORT_ERR rejection turned into an AbortError.
 */
async function withSignal(signal, start) {
  if (signal === undefined) return start(undefined);
  const token = new CancelToken();
  const cancel = () => token.cancel();
  signal.addEventListener('abort', cancel, { once: true });
  try {
    return await start(token);
  } catch (err) {
    if (err?.code !== 'ABORT_ERR') throw err;
    const aborted = new AbortError(undefined, { cause: signal.reason });
    if (err.stdout !== undefined) {
      aborted.stdout = err.stdout;
      aborted.stderr = err.stderr;
    }
    throw aborted;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

module.exports = { validateAbortSignal, throwIfAborted, withSignal };
