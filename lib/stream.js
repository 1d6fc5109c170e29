'use strict';

// Streamed stdout/stderr: a function `(chunk: Buffer) => void` or a Node Writable receives
// what the guest writes, chunk by chunk, in order. The native OutputChannel queues chunks and
// wakes us to take them; each chunk is acknowledged once the target is done with it (a
// function: when it returns; a Writable: in its write callback), which is what lets a guest
// on a pool thread wait for a slow Writable instead of filling memory.

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

  constructor(target) {
    this.#target = target;
    this.#channel = new OutputChannel(() => this.deliver());
  }

  get channel() {
    return this.#channel;
  }

  /** Hands every chunk waiting in the channel to the target, oldest first. */
  deliver() {
    for (const chunk of this.#channel.take()) {
      const size = chunk.length;
      if (this.error !== undefined) {
        this.#channel.ack(size);
        continue;
      }
      try {
        if (typeof this.#target === 'function') {
          this.#target(chunk);
          this.#channel.ack(size);
        } else {
          this.#target.write(chunk, () => this.#channel.ack(size));
        }
      } catch (err) {
        this.error = err;
        this.#channel.ack(size);
      }
    }
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

/** The first error a target threw, if any. */
function streamError(streams) {
  return streams.stdout?.error ?? streams.stderr?.error;
}

module.exports = { isStreamTarget, attachStreams, deliverNow, streamError };
