'use strict';

// Streamed stdout/stderr: a function `(chunk: Buffer) => void` or a Node Writable receives
// what the guest writes, chunk by chunk, in order. The native OutputChannel queues chunks and
// wakes us to take them; each chunk is acknowledged once the target is done with it (a
// function: when it returns; a Writable: in its write callback), which is what lets a guest
// on a pool thread wait for a slow Writable instead of filling memory. A Writable gets chunks
// only while it wants more (`write()` returned true, or it drained): the rest wait here, and
// are dropped (`discard`) when the run is stopped, so nothing more reaches the Writable after
// a timeout or an abort than it had already accepted.

const { OutputChannel } = require('../index.js');

/** Whether `value` is a streamed-output target: a function or a Writable-like object. */
function isStreamTarget(value) {
  return typeof value === 'function' ||
    (typeof value === 'object' && value !== null && typeof value.write === 'function');
}

class StreamedOutput {
  #target;
  #channel;
  /** The first error the target threw; later chunks are dropped (and acknowledged). */
  error = undefined;
  /** Chunks taken from the channel, waiting for the Writable to drain. */
  #held = [];
  /** The Writable said it is full: wait for 'drain' (or 'close') before writing more. */
  #waiting = false;

  constructor(target) {
    this.#target = target;
    this.#channel = new OutputChannel(() => this.deliver());
  }

  get channel() {
    return this.#channel;
  }

  /** Hands the chunks waiting in the channel to the target, oldest first. */
  deliver() {
    const chunks = this.#channel.take();
    if (this.#held.length > 0 || this.#waiting) {
      for (const chunk of chunks) this.#held.push(chunk);
      this.#writeHeld();
      return;
    }
    for (let i = 0; i < chunks.length; i++) {
      if (this.#waiting) {
        for (; i < chunks.length; i++) this.#held.push(chunks[i]);
        return;
      }
      this.#hand(chunks[i]);
    }
  }

  /** Drops the chunks not yet handed to the target (the run was stopped). */
  discard() {
    for (const chunk of this.#channel.take()) this.#channel.ack(chunk.length);
    for (const chunk of this.#held) this.#channel.ack(chunk.length);
    this.#held = [];
  }

  #writeHeld() {
    let i = 0;
    while (i < this.#held.length && !this.#waiting) this.#hand(this.#held[i++]);
    this.#held.splice(0, i);
  }

  #hand(chunk) {
    const size = chunk.length;
    if (this.error !== undefined) {
      this.#channel.ack(size);
      return;
    }
    const target = this.#target;
    try {
      if (typeof target === 'function') {
        target(chunk);
        this.#channel.ack(size);
      } else if (target.write(chunk, () => this.#channel.ack(size)) === false &&
                 typeof target.once === 'function' && !target.destroyed) {
        this.#waitForDrain(target);
      }
    } catch (err) {
      this.error = err;
      this.#channel.ack(size);
    }
  }

  #waitForDrain(target) {
    this.#waiting = true;
    const resume = () => {
      target.removeListener('drain', resume);
      target.removeListener('close', resume);
      this.#waiting = false;
      this.#writeHeld();
    };
    target.once('drain', resume);
    target.once('close', resume);
  }
}

/**
 * Replaces function/Writable `stdout`/`stderr` in a validated config with 'stream' and
 * returns the StreamedOutputs (undefined where the output is not streamed).
 */
function attachStreams(config) {
  const streams = {};
  for (const name of ['stdout', 'stderr']) {
    if (isStreamTarget(config[name])) {
      streams[name] = new StreamedOutput(config[name]);
      config[name] = 'stream';
    }
  }
  return streams;
}

/** Delivers what is waiting now (after a call that ran the guest on this thread). */
function deliverNow(streams) {
  streams.stdout?.deliver();
  streams.stderr?.deliver();
}

/** Drops what a stopped run wrote and no target has been handed yet. */
function discard(streams) {
  streams.stdout?.discard();
  streams.stderr?.discard();
}

/** Whether `error` means the guest was stopped from outside (timeout, abort). */
function isStop(error) {
  return error?.code === 'ERR_WASI_TIMEOUT' || error?.code === 'ABORT_ERR';
}

/** The first error a target threw, if any. */
function streamError(streams) {
  return streams.stdout?.error ?? streams.stderr?.error;
}

module.exports = { isStreamTarget, attachStreams, deliverNow, discard, isStop, streamError };
