'use strict';

// The persistent code cache, opt-in as Node's own compile cache is and shaped after
// `node:module`'s enableCompileCache(): wasmtime's compiled code kept on disk, authenticated
// with a key private to the user (src/code_cache.rs), so that a later process loads a large
// program's code instead of compiling it again.

const path = require('node:path');
const {
  compileCacheEnable, compileCacheDirectory, compileCacheStats: nativeStats, userDirectory,
} = require('../index.js');
const { validateObject, validateString, validateNumberInRange } = require('./validate');

/** `enableCompileCache()`'s outcomes, with node:module's values. */
const compileCacheStatus = Object.freeze({ FAILED: 0, ENABLED: 1, ALREADY_ENABLED: 2, DISABLED: 3 });

/** The size bound when none is given: 1 GiB (a 30 MB language runtime's entry is about 70 MB). */
const kDefaultMaxSize = 2 ** 30;

/**
 * `$XDG_CACHE_HOME/node-wasmtime` (an absolute XDG_CACHE_HOME), else `~/.cache/node-wasmtime`;
 * undefined without a home directory. Also where the key of `serialize()` output lives.
 */
function defaultCacheDir() {
  return userDirectory() ?? undefined;
}

/**
 * Turns the cache on for this process: `directory` (default `NODE_WASMTIME_COMPILE_CACHE`,
 * else `defaultCacheDir()`), or `{ directory?, maxSize? }`. Returns `{ status, message?,
 * directory? }` as node:module's does: FAILED (with why) for a directory or key file that
 * cannot be used or that other users can write; ALREADY_ENABLED (with the directory in use)
 * after a first call; DISABLED when `NODE_WASMTIME_DISABLE_COMPILE_CACHE` is set.
 */
function enableCompileCache(options = undefined) {
  let directory;
  let maxSize = kDefaultMaxSize;
  if (typeof options === 'string') {
    directory = options;
  } else if (options !== undefined) {
    validateObject(options, 'options');
    if (options.directory !== undefined) {
      validateString(options.directory, 'options.directory');
      directory = options.directory;
    }
    if (options.maxSize !== undefined) {
      validateNumberInRange(options.maxSize, 'options.maxSize', 0, Number.MAX_SAFE_INTEGER, true);
      maxSize = options.maxSize;
    }
  }
  if (process.env.NODE_WASMTIME_DISABLE_COMPILE_CACHE) {
    return { status: compileCacheStatus.DISABLED, message: 'Disabled by NODE_WASMTIME_DISABLE_COMPILE_CACHE' };
  }
  const inUse = compileCacheDirectory();
  if (inUse !== null && inUse !== undefined) {
    return { status: compileCacheStatus.ALREADY_ENABLED, directory: inUse };
  }
  directory = directory || process.env.NODE_WASMTIME_COMPILE_CACHE || defaultCacheDir();
  if (directory === undefined) {
    return { status: compileCacheStatus.FAILED, message: 'There is no home directory: set XDG_CACHE_HOME or HOME, or pass a directory' };
  }
  directory = path.resolve(directory);
  try {
    compileCacheEnable(directory, maxSize);
  } catch (err) {
    return { status: compileCacheStatus.FAILED, message: err.message };
  }
  return { status: compileCacheStatus.ENABLED, directory };
}

/** The directory of the cache in use, or undefined. */
function getCompileCacheDir() {
  return compileCacheDirectory() ?? undefined;
}

/** What the cache did in this process: `{ hits, misses, rejected, written, evicted }`. */
function compileCacheStats() {
  return nativeStats();
}

// NODE_WASMTIME_COMPILE_CACHE=dir turns it on for the process, as NODE_COMPILE_CACHE does.
if (process.env.NODE_WASMTIME_COMPILE_CACHE) {
  const { status, message } = enableCompileCache();
  if (status === compileCacheStatus.FAILED) {
    process.emitWarning(`NODE_WASMTIME_COMPILE_CACHE is not used: ${message}`, { code: 'NODE_WASMTIME_COMPILE_CACHE' });
  }
}

module.exports = {
  enableCompileCache, getCompileCacheDir, compileCacheStats, compileCacheStatus, defaultCacheDir,
};
