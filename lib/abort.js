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
 * settles like its promise, an ABORT_ERR rejection turned into an AbortError. With
 * `settleQueued` (runWasm: a fresh store nothing else uses), a run aborted while it still
 * waits in the pool's queue rejects at once; it is dropped, unrun, when it reaches a thread.
 */
async function withSignal(signal, start, { settleQueued = false } = {}) {
  if (signal === undefined) return start(undefined);
  const token = new CancelToken();
  let rejectQueued;
  const queuedAbort = new Promise((resolve, reject) => { rejectQueued = reject; });
  const cancel = () => {
    if (token.cancel() && settleQueued) rejectQueued(new AbortError(undefined, { cause: signal.reason }));
  };
  signal.addEventListener('abort', cancel, { once: true });
  try {
    const running = start(token);
    if (!settleQueued) return await running;
    running.catch(() => {}); // settled by queuedAbort instead when it was aborted while queued
    return await Promise.race([running, queuedAbort]);
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
