#!/usr/bin/env node
'use strict';

// node-wasmtime's command line: `node-wasmtime run [--dir HOST[::GUEST]] [--env K[=V]] FILE [ARGS...]`
// runs a WASI preview1 command with runWasmSync, its stdio being this process's fds 0/1/2,
// and exits with the guest's exit code. Flags are spelled like `wasmtime run`'s; as there,
// options end at FILE, so everything after it (dashes included) goes to the guest.
// Hand-parsed rather than with util.parseArgs, which cannot stop at the first positional.

const fs = require('node:fs');
const path = require('node:path');

const USAGE = `\
Usage: node-wasmtime run [OPTIONS] FILE [ARGS...]
       node-wasmtime --help

Runs the WASI preview1 command FILE (.wasm, or .wat text) on wasmtime, with this
process's stdin, stdout and stderr. The guest sees argv FILE ARGS... (FILE as given).

Options (they end at FILE; \`--\` also ends them):
  --dir HOST[::GUEST]  Give the guest the host directory HOST at guest path GUEST
                       (default: the same path as HOST). Repeatable.
  --env NAME=VALUE     Set an environment variable in the guest; a bare NAME passes
                       the host's value through. Repeatable.
  -h, --help           Print this help and exit.
Both options also take the --dir=... / --env=... form.

Exit status: the guest's exit code, modulo 256 (proc_exit(-1) exits 255);
134 if the guest traps (like wasmtime on Unix; the trap and its wasm backtrace
go to stderr); 1 for any other error (bad option, unreadable file, compile error);
2 when run without arguments.
`;

class UsageError extends Error {}

/** Parses `run`'s arguments (everything after the word `run`). */
function parseRunArgs(argv) {
  const preopens = {};
  const env = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '-h' || arg === '--help') return { help: true };
    if (!arg.startsWith('-') || arg === '-') break; // FILE: options end here
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (name !== '--dir' && name !== '--env') throw new UsageError(`unknown option '${name}'`);
    let value;
    if (eq !== -1) {
      value = arg.slice(eq + 1);
    } else if (i + 1 < argv.length) {
      value = argv[++i];
    } else {
      throw new UsageError(`option '${name}' needs a value`);
    }
    if (name === '--dir') addDir(preopens, value);
    else addEnv(env, value);
  }
  if (i >= argv.length) throw new UsageError('missing FILE to run');
  return { file: argv[i], guestArgs: argv.slice(i + 1), preopens, env };
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

function main(argv) {
  if (argv.length === 0) {
    process.stderr.write(USAGE);
    process.exitCode = 2;
    return;
  }
  if (argv[0] === '-h' || argv[0] === '--help' || argv[0] === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (argv[0] !== 'run') {
    fail(`unknown command '${argv[0]}' (try: node-wasmtime run FILE, or node-wasmtime --help)`);
    return;
  }

  let opts;
  try {
    opts = parseRunArgs(argv.slice(1));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    fail(`${err.message} (see node-wasmtime --help)`);
    return;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return;
  }

  const { Module, runWasmSync } = require(path.join(__dirname, '..', 'lib', 'index.js'));

  let bytes;
  try {
    bytes = fs.readFileSync(opts.file);
  } catch (err) {
    fail(`cannot read ${opts.file}: ${err.message}`);
    return;
  }
  let module;
  try {
    module = new Module(bytes);
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
    });
    process.exitCode = exitCode & 0xff; // like a shell: -1 -> 255, 256 -> 0
  } catch (err) {
    if (err && err.code === 'ERR_WASM_TRAP') fail(err.message, 134);
    else fail(err && err.message !== undefined ? err.message : String(err));
  }
}

main(process.argv.slice(2));
