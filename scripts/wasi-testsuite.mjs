// Runs the official WASI test suite (https://github.com/WebAssembly/wasi-testsuite), its prebuilt
// wasm32-wasip1 (preview1) tests, against node-wasmtime, on two paths:
//
//   wasmtime: new WASI({...}); wasi.start(wasi.instantiate(bytes))      (wasmtime runs the guest)
//   v8:       WebAssembly.instantiate(bytes, wasi.getImportObject()); wasi.start(instance)
//
// Usage: node scripts/wasi-testsuite.mjs <suite-dir> [--path wasmtime|v8|both] [--timeout SECONDS]
//
// <suite-dir> is one suite directory (the one holding manifest.json and the *.wasm/*.json pairs,
// e.g. tests/rust/testsuite/wasm32-wasip1) or any directory above such suites; every suite found
// under it whose manifest says wasm32-wasip1 is run. Exit status 1 if any test failed.
//
// Getting the suite: the prebuilt binaries live on the suite's `prod/testsuite-base` branch
// (`main` has sources only). For example:
//
//   git clone --depth 1 -b prod/testsuite-base https://github.com/WebAssembly/wasi-testsuite /tmp/wts
//   node scripts/wasi-testsuite.mjs /tmp/wts/tests
//
// How a spec maps to a run follows the suite's own runner (test-runner/wasi_test_runner and
// adapters/wasmtime.py on that branch):
//   - no <test>.json: the defaults {args: [], env: {}, root: null, exit_code: 0}.
//   - args: the guest's argv is [<test>.wasm, ...args] (wasmtime puts the module's base name in
//     argv[0]; node:wasi-style WASI objects take argv[0] from the caller).
//   - env: exactly these variables, nothing inherited.
//   - root: <test dir>/<root> is preopened as the guest's "/" (`wasmtime --dir <root>::/`).
//     Older snapshots of the suite used `dirs: [d, ...]` instead: each <test dir>/<d> preopened as
//     the guest path "d" (`--dir <d>::<d>`, run from the test's directory); that is honoured too.
//   - stdout / stderr: the captured stream must begin with this text (the runner reads exactly
//     that many characters and compares); a mismatch ends the test before the exit code is checked.
//   - exit_code: the code the guest exits with. A trap counts as exit code 134 (what the wasmtime
//     CLI exits with on a trap on Unix), so it fails unless the spec expects 134.
//   - *.cleanup files are test output and are removed before a run.
// Each run gets a fresh copy of the test's directory tree (the tests write files) in a temporary
// directory, which is also the run's working directory, and runs in its own Node process (as the
// suite's runner runs each test in its own process) with a timeout (default 5 s, the suite's).
// Only the legacy specs and the operation-based specs made of run/read/wait operations in the
// wasi:cli/command world are supported; any other test is reported as skipped.
//
// No dependencies beyond Node's standard library and ../lib/index.js.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(import.meta.url);
const TRAP_EXIT_CODE = 134; // 128 + SIGABRT: the wasmtime CLI's exit status for a trap on Unix
const CHILD_FLAG = '--run-one';

if (process.argv[2] === CHILD_FLAG) {
  await runOne(JSON.parse(process.argv[3]));
} else {
  main();
}

// ---------------------------------------------------------------------------------------------
// Parent: find the suites, run every test on the chosen paths, report.

function main() {
  const argv = process.argv.slice(2);
  let suiteDir;
  let which = 'both';
  let timeoutSec = 5;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--path') which = argv[++i];
    else if (argv[i] === '--timeout') timeoutSec = Number(argv[++i]);
    else if (suiteDir === undefined) suiteDir = argv[i];
    else usage(`unexpected argument: ${argv[i]}`);
  }
  if (!suiteDir) usage('missing <suite-dir>');
  if (!['wasmtime', 'v8', 'both'].includes(which)) usage(`bad --path: ${which}`);
  if (!(timeoutSec > 0)) usage('bad --timeout');
  const paths = which === 'both' ? ['wasmtime', 'v8'] : [which];

  const root = path.resolve(suiteDir);
  const suites = findSuites(root);
  if (suites.length === 0) {
    console.error(`no wasm32-wasip1 suite (a directory with manifest.json and *.wasm) under ${root}`);
    process.exit(2);
  }

  const totals = Object.fromEntries(paths.map((p) => [p, { passed: 0, total: 0 }]));
  const skipped = [];
  for (const suite of suites) {
    for (const test of listTests(suite, root)) {
      if (test.skip) {
        skipped.push(test);
        console.log(`SKIP ${test.label}: ${test.skip}`);
        continue;
      }
      for (const p of paths) {
        const failure = runTest(test, p, timeoutSec);
        totals[p].total++;
        if (failure === null) totals[p].passed++;
        else console.log(`FAIL [${p}] ${test.label}: ${failure}`);
      }
    }
  }

  console.log('');
  for (const p of paths) console.log(`${p} path: ${totals[p].passed}/${totals[p].total} passed`);
  if (skipped.length) console.log(`skipped: ${skipped.length}`);
  const failed = paths.some((p) => totals[p].passed !== totals[p].total);
  process.exit(failed ? 1 : 0);
}

function usage(msg) {
  console.error(`${msg}\nusage: node scripts/wasi-testsuite.mjs <suite-dir> [--path wasmtime|v8|both] [--timeout SECONDS]`);
  process.exit(2);
}

// Every directory at or under `dir` with a manifest.json and *.wasm files, whose WASI version
// (the manifest's "version", else the directory's name, else wasm32-wasip1, as the suite's
// runner decides) is wasm32-wasip1.
function findSuites(dir) {
  const found = [];
  const walk = (d) => {
    const entries = fs.readdirSync(d, { withFileTypes: true });
    const names = entries.map((e) => e.name);
    if (names.includes('manifest.json') && names.some((n) => n.endsWith('.wasm'))) {
      const manifest = JSON.parse(fs.readFileSync(path.join(d, 'manifest.json'), 'utf8'));
      const base = path.basename(d);
      const version = manifest.version ?? (base.startsWith('wasm32-wasip') ? base : 'wasm32-wasip1');
      if (version === 'wasm32-wasip1') found.push(d);
      return;
    }
    for (const e of entries) {
      if (e.isDirectory() && !e.name.startsWith('.')) walk(path.join(d, e.name));
    }
  };
  walk(dir);
  return found.sort();
}

// The tests of one suite, each with its spec turned into { args, env, root | dirs, checks }.
function listTests(suite, root) {
  const prefix = path.relative(root, suite).split(path.sep)
    .filter((part) => part !== 'tests' && part !== 'testsuite').join('/');
  return fs.readdirSync(suite).filter((n) => n.endsWith('.wasm')).sort().map((file) => {
    const name = file.slice(0, -'.wasm'.length);
    const test = { dir: suite, file, name, label: prefix ? `${prefix}/${name}` : name };
    const specPath = path.join(suite, `${name}.json`);
    const spec = fs.existsSync(specPath) ? JSON.parse(fs.readFileSync(specPath, 'utf8')) : {};
    return Object.assign(test, parseSpec(spec));
  });
}

// A spec is either legacy ({args, env, root|dirs, stdout, stderr, exit_code}) or operation-based
// ({operations: [{type: 'run', args, env, root}, {type: 'read', id, payload}, {type: 'wait',
// exit_code}], proposals, world}); both become one run and the checks that follow it.
function parseSpec(spec) {
  if (spec.operations === undefined) {
    const checks = [];
    if (spec.stdout != null) checks.push({ type: 'read', id: 'stdout', payload: spec.stdout });
    if (spec.stderr != null) checks.push({ type: 'read', id: 'stderr', payload: spec.stderr });
    checks.push({ type: 'wait', exit_code: spec.exit_code ?? 0 });
    return { run: runOf(spec), checks };
  }
  if ((spec.proposals ?? []).length) return { skip: `needs proposals ${spec.proposals.join(', ')}` };
  if ((spec.world ?? 'wasi:cli/command') !== 'wasi:cli/command') return { skip: `world ${spec.world}` };
  const ops = spec.operations;
  if (ops.length === 0 || ops[0].type !== 'run' || ops.filter((o) => o.type === 'run').length !== 1) {
    return { skip: 'not a single run' };
  }
  const other = ops.find((o) => o.type !== 'run' && o.type !== 'read' && o.type !== 'wait');
  if (other) return { skip: `unsupported operation ${other.type}` };
  const checks = ops.slice(1).map((o) => (o.type === 'read' ?
    { type: 'read', id: o.id ?? 'stdout', payload: o.payload ?? '' } :
    { type: 'wait', exit_code: o.exit_code ?? 0 }));
  return { run: runOf(ops[0]), checks };
}

function runOf(o) {
  return { args: o.args ?? [], env: o.env ?? {}, root: o.root ?? null, dirs: o.dirs ?? [] };
}

// Runs one test on one path in its own process; returns null if it passed, else the reason.
function runTest(test, which, timeoutSec) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wasi-testsuite-'));
  try {
    copyTree(test.dir, work);
    // Preopens: root -> "/", legacy dirs -> their own relative names.
    const preopens = {};
    if (test.run.root) preopens['/'] = path.join(work, test.run.root);
    for (const d of test.run.dirs) preopens[d] = path.join(work, d);
    const job = {
      which,
      wasm: path.join(test.dir, test.file),
      args: [test.file, ...test.run.args],
      env: test.run.env,
      preopens,
    };
    const child = spawnSync(process.execPath, [SCRIPT, CHILD_FLAG, JSON.stringify(job)], {
      cwd: work,
      stdio: ['pipe', 'pipe', 'pipe'], // stdin: an empty pipe, closed at once
      timeout: timeoutSec * 1000,
      maxBuffer: 1 << 30,
      env: { ...process.env, RUST_BACKTRACE: '0' },
    });
    if (child.error?.code === 'ETIMEDOUT') return `timeout expired after ${timeoutSec} s`;
    if (child.error) return `could not run: ${child.error.message}`;
    const line = child.stdout.toString().trimEnd().split('\n').pop();
    let result;
    try {
      result = JSON.parse(line);
    } catch {
      return `runner process died (status ${child.status}, signal ${child.signal}): ${oneLine(child.stderr.toString())}`;
    }
    return check(test, result);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

// The test's directory tree without the suite's own programs and specs (top-level *.wasm and
// *.json, which the guest never sees) and without *.cleanup output of earlier runs.
function copyTree(from, to) {
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    if (e.isFile() && (e.name.endsWith('.wasm') || e.name.endsWith('.json'))) continue;
    fs.cpSync(path.join(from, e.name), path.join(to, e.name), {
      recursive: true,
      verbatimSymlinks: true,
      filter: (src) => !path.basename(src).endsWith('.cleanup'),
    });
  }
}

// The suite's checks, in order, stopping at the first failure as its runner does.
function check(test, result) {
  const streams = {
    stdout: universalNewlines(Buffer.from(result.stdout, 'base64').toString('utf8')),
    stderr: universalNewlines(Buffer.from(result.stderr, 'base64').toString('utf8')),
  };
  let exitCode = result.exitCode;
  let thrown = '';
  if (result.error) {
    if (!result.error.trap) return `threw ${result.error.text}${tail(streams)}`;
    exitCode = TRAP_EXIT_CODE;
    thrown = ` (trap: ${result.error.text})`;
  }
  for (const c of test.checks) {
    if (c.type === 'read') {
      const got = streams[c.id].slice(0, c.payload.length);
      if (got !== c.payload) {
        return `expected ${c.id} ${JSON.stringify(c.payload)}, got ${JSON.stringify(got)}${thrown}${tail(streams)}`;
      }
    } else if (c.type === 'wait') {
      // A process's exit status keeps the low 8 bits of the code.
      const status = exitCode & 0xff;
      if (status !== c.exit_code) {
        return `expected exit code ${c.exit_code}, got ${status}${thrown}${tail(streams)}`;
      }
    }
  }
  return null;
}

function universalNewlines(s) {
  return s.replace(/\r\n?/g, '\n'); // Python's text mode, which the suite's runner reads in
}

function tail({ stdout, stderr }) {
  let s = '';
  if (stderr.trim()) s += `; stderr: ${oneLine(stderr)}`;
  if (stdout.trim()) s += `; stdout: ${oneLine(stdout)}`;
  return s;
}

function oneLine(s, max = 600) {
  s = s.trim().replace(/\s*\n\s*/g, ' | ');
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

// ---------------------------------------------------------------------------------------------
// Child: run one test on one path and print the outcome as one JSON line.

async function runOne(job) {
  const require = createRequire(import.meta.url);
  const { WASI } = require('../lib/index.js');
  const bytes = fs.readFileSync(job.wasm);
  const out = { exitCode: null, stdout: '', stderr: '', error: null };
  let wasi;
  try {
    wasi = new WASI({
      version: 'preview1',
      args: job.args,
      env: job.env,
      preopens: job.preopens,
      stdout: 'pipe',
      stderr: 'pipe',
      returnOnExit: true,
      maxBuffer: Infinity,
    });
    if (job.which === 'wasmtime') {
      out.exitCode = wasi.start(wasi.instantiate(bytes));
    } else {
      const { instance } = await WebAssembly.instantiate(bytes, wasi.getImportObject());
      out.exitCode = wasi.start(instance);
    }
  } catch (err) {
    // A trap: wasmtime's ERR_WASM_TRAP, or V8's own WebAssembly.RuntimeError.
    const trap = err?.code === 'ERR_WASM_TRAP' || err instanceof WebAssembly.RuntimeError;
    const text = `${err?.name ?? 'Error'}${err?.code ? ` [${err.code}]` : ''}: ${err?.message ?? err}`;
    out.error = { trap, text: oneLine(text, 300) };
  }
  out.stdout = (wasi?.stdout ?? Buffer.alloc(0)).toString('base64');
  out.stderr = (wasi?.stderr ?? Buffer.alloc(0)).toString('base64');
  process.stdout.write(`\n${JSON.stringify(out)}\n`);
}
