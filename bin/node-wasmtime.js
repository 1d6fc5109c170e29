#!/usr/bin/env node
'use strict';

// node-wasmtime's command line: `node-wasmtime [run] [--dir HOST[::GUEST]] [--env K[=V]]
// [-W KEY=VALUE,...] FILE [ARGS...]` runs a WASI command (a preview1 module or a component)
// with runWasmSync, its stdio being this process's fds 0/1/2, and exits with the guest's exit
// code. Flags are spelled like `wasmtime run`'s (`-W fuel=N,timeout=1s,max-memory-size=N`); as
// there, `run` may be left out and options end at FILE, so everything after it (dashes
// included) goes to the guest. Hand-parsed rather than with util.parseArgs, which cannot stop
// at the first positional.

const fs = require('node:fs');
const path = require('node:path');

const USAGE = `\
Usage: node-wasmtime run [OPTIONS] FILE [ARGS...]
       node-wasmtime [OPTIONS] FILE [ARGS...]
       node-wasmtime --help | --version

Runs the WASI command FILE on wasmtime, with this process's stdin, stdout and
stderr: a core module (WASI preview1, \`_start\`) or a component (\`wasi:cli/run\`),
as a .wasm binary or .wat text. The guest sees argv FILE ARGS... (FILE as given).

Options (they end at FILE; \`--\` also ends them):
  --dir HOST[::GUEST]  Give the guest the host directory HOST at guest path GUEST
                       (default: the same path as HOST). Repeatable.
  --env NAME=VALUE     Set an environment variable in the guest; a bare NAME passes
                       the host's value through. Repeatable.
  -W, --wasm KEY=VALUE[,KEY=VALUE...]
                       Limits, spelled as \`wasmtime run -W\` spells them. Repeatable.
                         fuel=N             stop the guest after N units of fuel
                         timeout=DURATION   stop it after DURATION of running: 1s,
                                            500ms, or a bare number of seconds
                         max-memory-size=N  bytes each linear memory may grow to
                         max-wasm-stack=N   bytes of wasm stack (64 KiB to 1 MiB)
  --cache-dir DIR      Keep compiled code in DIR (default: NODE_WASMTIME_COMPILE_CACHE,
                       else $XDG_CACHE_HOME/node-wasmtime or ~/.cache/node-wasmtime), so
                       the next run of the same FILE does not compile it again.
  --no-cache           Compile FILE every time (no code cache).
  -h, --help           Print this help and exit.
  -V, --version        Print the versions of node-wasmtime and wasmtime and exit.
Options also take the --dir=... / --env=... / --wasm=... / --cache-dir=... / -WKEY=VALUE
forms.

Exit status: the guest's exit code, modulo 256 (proc_exit(-1) exits 255);
134 if the guest traps, runs out of fuel or times out (like wasmtime on Unix; the
reason and the wasm backtrace go to stderr); 1 for any other error (bad option,
unreadable file, compile error); 2 when run without arguments.
`;

// -W keys and the runWasmSync limit each sets.
const WASM_LIMITS = {
  'fuel': ['fuel', parseCount],
  'timeout': ['timeout', parseDuration],
  'max-memory-size': ['maxMemory', parseCount],
  'max-wasm-stack': ['maxStack', parseCount],
};

class UsageError extends Error {}

/** Parses `run`'s arguments (everything after the word `run`, or all of them without it). */
function parseRunArgs(argv) {
  const preopens = {};
  const env = {};
  const limits = {};
  let cacheDir;
  let noCache = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '-h' || arg === '--help') return { help: true };
    if (arg === '-V' || arg === '--version') return { version: true };
    if (!arg.startsWith('-') || arg === '-') break; // FILE: options end here
    if (arg === '--no-cache') {
      noCache = true;
      continue;
    }
    if (arg.startsWith('-W') && arg.length > 2) { // -Wfuel=10
      addLimits(limits, arg.slice(2));
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (!['--dir', '--env', '-W', '--wasm', '--cache-dir'].includes(name)) throw new UsageError(`unknown option '${name}'`);
    let value;
    if (eq !== -1 && name.startsWith('--')) {
      value = arg.slice(eq + 1);
    } else if (i + 1 < argv.length) {
      value = argv[++i];
    } else {
      throw new UsageError(`option '${name}' needs a value`);
    }
    if (name === '--dir') addDir(preopens, value);
    else if (name === '--env') addEnv(env, value);
    else if (name === '--cache-dir') cacheDir = value;
    else addLimits(limits, value);
  }
  if (i >= argv.length) throw new UsageError('missing FILE to run');
  if (noCache && cacheDir !== undefined) throw new UsageError('--no-cache and --cache-dir contradict each other');
  return { file: argv[i], guestArgs: argv.slice(i + 1), preopens, env, limits, cacheDir, noCache };
}

/** `-W fuel=10,timeout=1s`: each KEY=VALUE sets one limit (the last one given wins). */
function addLimits(limits, value) {
  for (const item of value.split(',')) {
    const eq = item.indexOf('=');
    const key = eq === -1 ? item : item.slice(0, eq);
    const known = WASM_LIMITS[key];
    if (known === undefined) {
      throw new UsageError(`unknown -W option '${key}' (known: ${Object.keys(WASM_LIMITS).join(', ')})`);
    }
    if (eq === -1) throw new UsageError(`-W ${key} needs a value (-W ${key}=...)`);
    const [limit, parse] = known;
    const parsed = parse(item.slice(eq + 1));
    if (parsed === undefined) throw new UsageError(`bad value for -W ${item}`);
    limits[limit] = parsed;
  }
}

/** A non-negative integer in decimal, or undefined. */
function parseCount(text) {
  return /^\d+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined;
}

/** `timeout`'s DURATION as wasmtime reads it (a bare number is seconds), in milliseconds. */
function parseDuration(text) {
  const match = /^(\d+)(ms|s)?$/.exec(text);
  if (match === null) return undefined;
  const ms = Number(match[1]) * (match[2] === 'ms' ? 1 : 1000);
  return ms >= 1 && ms <= 2 ** 31 - 1 ? ms : undefined;
}

function printVersion() {
  const { versions } = require(path.join(__dirname, '..', 'lib', 'index.js'));
  process.stdout.write(`node-wasmtime ${versions.nodeWasmtime} (wasmtime ${versions.wasmtime})\n`);
}

function addDir(preopens, value) {
  const sep = value.indexOf('::');
  const host = sep === -1 ? value : value.slice(0, sep);
  const guest = sep === -1 ? value : value.slice(sep + 2);
  if (host === '' || guest === '') throw new UsageError(`bad --dir '${value}': expected HOST[::GUEST]`);
  if (Object.hasOwn(preopens, guest)) throw new UsageError(`guest path '${guest}' given by two --dir options`);
  preopens[guest] = host;
}

function addEnv(env, value) {
  const eq = value.indexOf('=');
  if (eq === 0 || value === '') throw new UsageError(`bad --env '${value}': expected NAME=VALUE or NAME`);
  if (eq === -1) {
    if (process.env[value] !== undefined) env[value] = process.env[value];
  } else {
    env[value.slice(0, eq)] = value.slice(eq + 1);
  }
}

/** fd 0 if it is open, else no input (wasmtime would fail on a closed fd 0; we read EOF). */
function hostStdin() {
  try {
    fs.fstatSync(0);
    return 0;
  } catch {
    return '';
  }
}

function fail(message, status = 1) {
  process.stderr.write(`node-wasmtime: ${message}\n`);
  process.exitCode = status;
}

/** How long a compile runs before the CLI says, on a terminal, what it is doing. */
const COMPILE_NOTICE_MS = 1000;

/**
 * FILE's bytes compiled off the main thread (from the code cache when it holds them). A
 * compile that is still running after COMPILE_NOTICE_MS prints one line, when stderr is a
 * terminal (never into a pipe or a file, where it would mix with the guest's output).
 */
async function compile(Module, bytes, file, cacheOn) {
  const notice = process.stderr.isTTY
    ? setTimeout(() => {
      const mb = (bytes.length / 1e6).toFixed(1);
      process.stderr.write(`node-wasmtime: compiling ${file} (${mb} MB)` +
        (cacheOn ? '; later runs load it from the code cache' : '') + '...\n');
    }, COMPILE_NOTICE_MS)
    : undefined;
  try {
    return await Module.compile(bytes);
  } finally {
    clearTimeout(notice);
  }
}

async function main(argv) {
  if (argv.length === 0) {
    process.stderr.write(USAGE);
    process.exitCode = 2;
    return;
  }
  if (argv[0] === '-h' || argv[0] === '--help' || argv[0] === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (argv[0] === '-V' || argv[0] === '--version') {
    printVersion();
    return;
  }
  // As with `wasmtime`, `run` may be left out: `node-wasmtime x.wasm` runs x.wasm.
  const runArgs = argv[0] === 'run' ? argv.slice(1) : argv;

  let opts;
  try {
    opts = parseRunArgs(runArgs);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    fail(`${err.message} (see node-wasmtime --help)`);
    return;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (opts.version) {
    printVersion();
    return;
  }

  const { Module, runWasmSync, enableCompileCache, compileCacheStatus } = require(path.join(__dirname, '..', 'lib', 'index.js'));
  // On by default, as `wasmtime run` caches: a large program compiles once, not every run.
  let cacheOn = false;
  if (!opts.noCache) {
    const { status, message } = enableCompileCache(opts.cacheDir);
    if (status === compileCacheStatus.FAILED && opts.cacheDir !== undefined) {
      fail(`cannot use --cache-dir ${opts.cacheDir}: ${message}`);
      return;
    }
    cacheOn = status === compileCacheStatus.ENABLED || status === compileCacheStatus.ALREADY_ENABLED;
  }

  let bytes;
  try {
    bytes = fs.readFileSync(opts.file);
  } catch (err) {
    fail(`cannot read ${opts.file}: ${err.message}`);
    return;
  }
  let module;
  try {
    module = await compile(Module, bytes, opts.file, cacheOn);
  } catch (err) {
    fail(`cannot compile ${opts.file}: ${err.message}`);
    return;
  }

  try {
    const { exitCode } = runWasmSync(module, {
      args: [opts.file, ...opts.guestArgs],
      env: opts.env,
      preopens: opts.preopens,
      stdin: hostStdin(),
      stdout: 'inherit',
      stderr: 'inherit',
      limits: opts.limits,
    });
    process.exitCode = exitCode & 0xff; // like a shell: -1 -> 255, 256 -> 0
  } catch (err) {
    // A trap, fuel running out (a trap too) and a timeout exit as wasmtime's traps do.
    if (err && (err.code === 'ERR_WASM_TRAP' || err.code === 'ERR_WASI_TIMEOUT')) fail(err.message, 134);
    else fail(err && err.message !== undefined ? err.message : String(err));
  }
}

main(process.argv.slice(2));
