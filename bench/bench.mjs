// `npm run bench`: the per-run cost of running a tiny WASI command, node-wasmtime vs node:wasi.
//
// What is measured, per run of __test__/fixtures/hello.wasm (prints "hello world\n"):
//   (a) ours:      runWasmSync(module, { stdout: 'pipe' }) on a Module compiled once
//                  (every run gets a fresh store, WASI context and instance).
//   (b) node:wasi: new WASI({ version: 'preview1', returnOnExit: true, stdout: fd of /dev/null })
//                  + new WebAssembly.Instance(module, wasi.getImportObject()) + wasi.start(instance),
//                  on a WebAssembly.Module compiled once, outside the loop.
//   (c) RUST_BACKTRACE=1 vs unset: runWasmSync of exitcode.wasm exiting through proc_exit(3)
//                  (every run creates a Rust error for the exit, which would capture a native
//                  backtrace if library backtraces were on), in two child processes, one with
//                  RUST_BACKTRACE=1 and one without. lib/index.js keeps library backtraces off
//                  unless RUST_LIB_BACKTRACE is set, so the two should match.
// Both outputs are checked once before timing: (a) must capture exactly "hello world\n",
// (b) must write exactly that to a temp file.
//
// Method: warm up each loop (~300 ms), pick N so that one batch of N runs takes ~150 ms,
// then time BATCHES batches of N runs with process.hrtime.bigint(), alternating (a) and (b)
// so that machine-load drift hits both alike. Per-run time of a batch = batch time / N; the
// table shows the median and the min over batches. (c) uses the same method on its own.
//   (d) the V8 path, syscall-heavy: __test__/fixtures/writes.wasm making 100,000 one-byte
//                  fd_write calls, instantiated by V8 with wasi.getImportObject(), ours vs
//                  node:wasi, both writing to an fd of /dev/null; SYSCALL_RUNS alternating runs
//                  each, median per run and per syscall.
//   (e) component: __test__/fixtures/components/hello.wasm (a WASI 0.2 command component,
//                  prints "hello world\n"), ours vs jco, same method as (a)/(b), alternating:
//                  ours: runWasmSync(module) on a Module compiled once (fresh store, WASI context
//                  and instance per run; stdout and stderr captured, the default).
//                  jco: the component transpiled once at bench time by @bytecodealliance/jco
//                  (instantiation: 'sync') and its core modules compiled once; per run,
//                  instantiate(getCoreModule, imports) + run.run(), with the WASI imports of
//                  @bytecodealliance/preview2-shim except stdout and stderr, which are fresh
//                  in-memory output-streams per run (so nothing reaches the terminal).
//                  Both must produce exactly "hello world\n" once before timing.
// (f)-(h) use __test__/fixtures/spin.wasm, a CPU-bound command (`spin N`: N xorshift64 rounds,
// no syscalls; SPIN_N = 1e8 takes ~175 ms here), on a Module compiled once; every run's stdout
// is checked.
//   (f) scaling:   K = max(4, 2 * min(cores, 8)) runs of `spin SPIN_N`, one at a time
//                  (`await runWasm(...)` in a loop) vs all K at once (Promise.all of runWasm);
//                  SCALING_ROUNDS alternating rounds, ratio = median sequential wall time /
//                  median concurrent wall time (cores = os.availableParallelism()).
//   (g) event-loop stall: one runWasm of spin.wasm sized to take ~2 s (from (h)'s fastest run
//                  without a timeout), with perf_hooks.monitorEventLoopDelay({ resolution: 1 })
//                  enabled from just before the runWasm call until its promise settles; the
//                  figure is the histogram's max (the longest gap between 1 ms timer turns,
//                  the 1 ms interval included). For comparison, the same histogram's max over an
//                  idle event loop for as long (host scheduling jitter; no verdict).
//   (h) timeout overhead: runWasmSync(spin, { args }) with no limits vs with
//                  limits: { timeout: 60000 } (the 5 ms epoch clock thread ticks and the store
//                  has a deadline callback), TIMEOUT_ROUNDS rounds of four runs in ABBA order;
//                  ratio = median with / median without.
// (i)-(l) calls across the boundary (bench/calls.mjs, where the method is described): (i) a JS ->
// guest export call add(i32, i32) on our instance vs V8's, (j) a component export call
// add(s32, s32), (k) a guest -> JS host call on the main thread, ours vs V8, (l) a host call
// round trip from a guest on a pool thread.
// (m)-(n) a large real program's first run and steady state (bench/first-run.mjs, where the
// method is described): ruby+stdlib.wasm (30.6 MB, @ruby/3.4-wasm-wasi) in a fresh process on
// node:wasi, on ours with the code cache cold and warm, with Winch and tiered; then run times
// on Cranelift's, tiered's (after tier-up) and Winch's code in one process.
// Targets: (a) median <= 15 us per run; node:wasi median / ours median >= 15x; (d) ours no
// slower than 1.5x node:wasi; (e) ours median <= 50 us per run, jco median / ours >= 50x;
// (f) scaling >= 0.9 * min(cores, 8), i.e. >= 1.8x on 2 cores; (g) max stall < 10 ms;
// (h) with / without timeout < 1.10x; (i) <= 150 ns; (j) <= 300 ns; (k) <= 200 ns; (l) <= 20 us;
// (m) warm-cache first run <= 1.5x node:wasi's, Winch and tiered first runs < 2 s; (n) tiered
// after tier-up <= 1.05x Cranelift-only.
// The last line of output is one JSON object with every figure.
//
// node:wasi is loaded without its ExperimentalWarning (the test helpers' NodeWASI), so the
// output is a clean table.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { NodeWASI } from '../__test__/helpers.mjs';

// (a) is the baseline, so it runs without RUST_BACKTRACE even if the user's shell exports it.
// (Static imports load lib/index.js first; the children of (c) start without
// RUST_LIB_BACKTRACE, so that what they measure is the library's own default.)
const userEnv = { ...process.env };
delete process.env.RUST_BACKTRACE;

const require = createRequire(import.meta.url);
const { Module, runWasm, runWasmSync } = require('../lib/index.js');

const BATCHES = 15;
const WARMUP_MS = 300;
const TARGET_BATCH_MS = 150;
const TARGET_OURS_US = 15;
const TARGET_RATIO = 15;

const selfPath = fileURLToPath(import.meta.url);
const helloPath = path.join(path.dirname(selfPath), '..', '__test__', 'fixtures', 'hello.wasm');
const helloBytes = fs.readFileSync(helloPath);
const EXPECTED = 'hello world\n';

// --- timing helpers -------------------------------------------------------------------------

// node:wasi leaves each instance's wasm memory reservation to the garbage collector, and
// Node 20.20.2 segfaults after one or two thousand node:wasi instances created in a loop that
// never yields (seen here). So every batch starts with a full GC, outside the timed region,
// and no batch is larger than MAX_BATCH_RUNS. `npm run bench` passes --expose-gc.
const MAX_BATCH_RUNS = 400;
const collectGarbage = globalThis.gc ?? (() => {
  throw new Error('run with node --expose-gc (npm run bench does)');
});

/** Nanoseconds taken by `n` calls of `runOnce`. */
function timeRuns(runOnce, n) {
  collectGarbage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) runOnce();
  return Number(process.hrtime.bigint() - t0);
}

/** Runs `runOnce` for about WARMUP_MS, then returns N such that N runs take ~TARGET_BATCH_MS. */
function warmUpAndSize(runOnce) {
  let n = 1;
  let ns = 0;
  let spent = 0;
  while (spent < WARMUP_MS * 1e6) {
    ns = timeRuns(runOnce, n);
    spent += ns;
    if (ns < 50e6 && n < MAX_BATCH_RUNS) n *= 2;
  }
  const perRun = ns / n;
  return Math.max(1, Math.round((TARGET_BATCH_MS * 1e6) / perRun));
}

function median(values) {
  const s = [...values].sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function summarize(n, batchNs) {
  const perRunUs = batchNs.map((ns) => ns / n / 1e3);
  return { n, batches: perRunUs.length, medianUs: median(perRunUs), minUs: Math.min(...perRunUs), perRunUs };
}

// --- (a) ours -------------------------------------------------------------------------------

const oursModule = new Module(helloBytes);
const oursOptions = { stdout: 'pipe' };
function runOurs() {
  runWasmSync(oursModule, oursOptions);
}

function checkOurs() {
  const { exitCode, stdout } = runWasmSync(oursModule, oursOptions);
  if (exitCode !== 0 || stdout.toString() !== EXPECTED) {
    throw new Error(`runWasmSync: exit ${exitCode}, stdout ${JSON.stringify(stdout.toString())}`);
  }
}

// Child mode for (c): measure only the proc_exit loop, print one JSON line.
if (process.argv[2] === '--child') {
  const exitModule = new Module(fs.readFileSync(path.join(path.dirname(helloPath), 'exitcode.wasm')));
  const exitOptions = { args: ['exitcode', '3', 'proc_exit'], stdout: 'pipe' };
  const runExit = () => runWasmSync(exitModule, exitOptions);
  if (runExit().exitCode !== 3) throw new Error('exitcode.wasm did not exit with 3');
  const n = warmUpAndSize(runExit);
  const batchNs = [];
  for (let b = 0; b < BATCHES; b++) batchNs.push(timeRuns(runExit, n));
  process.stdout.write(`${JSON.stringify(summarize(n, batchNs))}\n`);
  process.exit(0);
}

// --- (b) node:wasi --------------------------------------------------------------------------


const wasmModule = new WebAssembly.Module(helloBytes);

function runNodeWasi(stdoutFd) {
  const wasi = new NodeWASI({ version: 'preview1', returnOnExit: true, stdout: stdoutFd });
  const instance = new WebAssembly.Instance(wasmModule, wasi.getImportObject());
  return wasi.start(instance);
}

function checkNodeWasi() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nwt-bench-'));
  try {
    const file = path.join(dir, 'stdout');
    const fd = fs.openSync(file, 'w');
    let exitCode;
    try {
      exitCode = runNodeWasi(fd);
    } finally {
      fs.closeSync(fd);
    }
    const out = fs.readFileSync(file, 'utf8');
    if (exitCode !== 0 || out !== EXPECTED) {
      throw new Error(`node:wasi: exit ${exitCode}, stdout ${JSON.stringify(out)}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// --- (c) proc_exit runs in children with and without RUST_BACKTRACE=1 -----------------------------

function runChild(rustBacktrace) {
  const env = { ...userEnv };
  delete env.RUST_BACKTRACE;
  delete env.RUST_LIB_BACKTRACE;
  if (rustBacktrace) env.RUST_BACKTRACE = '1';
  const r = spawnSync(process.execPath, ['--expose-gc', selfPath, '--child'], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench child failed (status ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// --- main -----------------------------------------------------------------------------------

checkOurs();
checkNodeWasi();

const devNull = fs.openSync('/dev/null', 'w');
const runNode = () => runNodeWasi(devNull);

const nOurs = warmUpAndSize(runOurs);
const nNode = Math.min(MAX_BATCH_RUNS, warmUpAndSize(runNode));
const oursNs = [];
const nodeNs = [];
for (let b = 0; b < BATCHES; b++) {
  oursNs.push(timeRuns(runOurs, nOurs));
  nodeNs.push(timeRuns(runNode, nNode));
}

// --- (d) the V8 path, 100k fd_writes ---------------------------------------------------------

const SYSCALLS = 100000;
const SYSCALL_RUNS = 9;
const TARGET_SYSCALL_RATIO = 1.5;
const { WASI: OurWASI } = require('../lib/index.js');
const writesModule = new WebAssembly.Module(
  fs.readFileSync(path.join(path.dirname(helloPath), 'writes.wasm')));

/** Milliseconds one V8-instantiated run of writes.wasm takes under `W`. */
function timeWrites(W) {
  collectGarbage();
  const wasi = new W({ version: 'preview1', args: ['writes', String(SYSCALLS)], stdout: devNull });
  const instance = new WebAssembly.Instance(writesModule, wasi.getImportObject());
  const t0 = process.hrtime.bigint();
  const exitCode = wasi.start(instance);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (exitCode !== 0) throw new Error(`writes.wasm exited with ${exitCode}`);
  return ms;
}

timeWrites(OurWASI);
timeWrites(NodeWASI);
const oursWritesMs = [];
const nodeWritesMs = [];
for (let i = 0; i < SYSCALL_RUNS; i++) {
  oursWritesMs.push(timeWrites(OurWASI));
  nodeWritesMs.push(timeWrites(NodeWASI));
}
fs.closeSync(devNull);

// --- (e) component hello: runWasmSync vs jco ------------------------------------------------
// jco and preview2-shim are loaded here, after (a), (b) and (d) have been timed, so that their
// loading, transpiling and worker thread stay out of those figures.

const TARGET_COMPONENT_US = 50;
const TARGET_COMPONENT_RATIO = 50;
const componentBytes = fs.readFileSync(
  path.join(path.dirname(helloPath), 'components', 'hello.wasm'));

const componentModule = new Module(componentBytes);
function runOursComponent() {
  return runWasmSync(componentModule);
}

const { transpile } = await import('@bytecodealliance/jco');
const { io } = await import('@bytecodealliance/preview2-shim');
const { WASIShim } = await import('@bytecodealliance/preview2-shim/instantiation');
const jcoVersion = JSON.parse(fs.readFileSync(
  new URL('../package.json', import.meta.resolve('@bytecodealliance/jco')))).version;

// Transpile once; import the generated JS from a temp dir; compile the core modules once.
const { files } = await transpile(componentBytes, { name: 'hello', instantiation: 'sync' });
const jcoDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nwt-bench-jco-'));
let instantiate;
try {
  const jsPath = path.join(jcoDir, 'hello.mjs');
  fs.writeFileSync(jsPath, files['hello.js']);
  ({ instantiate } = await import(pathToFileURL(jsPath).href));
} finally {
  fs.rmSync(jcoDir, { recursive: true, force: true });
}
const coreModules = new Map();
for (const [name, bytes] of Object.entries(files)) {
  if (name.endsWith('.wasm')) coreModules.set(name, new WebAssembly.Module(bytes));
}
const getCoreModule = (name) => coreModules.get(name);

// An output-stream that keeps what the guest writes. It must be an instance of preview2-shim's
// OutputStream (the generated code checks), hence the subclass.
class CaptureStream extends io.streams.OutputStream {
  chunks = [];
  checkWrite() { return 1n << 20n; }
  write(buf) { this.chunks.push(Buffer.from(buf)); }
  blockingWriteAndFlush(buf) { this.chunks.push(Buffer.from(buf)); }
  flush() {}
  blockingFlush() {}
  text() { return Buffer.concat(this.chunks).toString(); }
}
let jcoStdout;
let jcoStderr;
const jcoImports = {
  ...new WASIShim().getImportObject(),
  'wasi:cli/stdout': { getStdout: () => jcoStdout },
  'wasi:cli/stderr': { getStderr: () => jcoStderr },
  // preview2-shim's exit calls process.exit(), which would end the bench silently.
  'wasi:cli/exit': {
    exit(status) { throw new Error(`jco: guest called exit(${JSON.stringify(status)})`); },
    exitWithCode(code) { throw new Error(`jco: guest called exit-with-code(${code})`); },
  },
};
function runJco() {
  jcoStdout = new CaptureStream();
  jcoStderr = new CaptureStream();
  const instance = instantiate(getCoreModule, jcoImports);
  instance.run.run();
}

function checkComponent() {
  const { exitCode, stdout } = runOursComponent();
  if (exitCode !== 0 || stdout.toString() !== EXPECTED) {
    throw new Error(`runWasmSync(component): exit ${exitCode}, stdout ${JSON.stringify(stdout.toString())}`);
  }
  jcoStdout = new CaptureStream();
  jcoStderr = new CaptureStream();
  const instance = instantiate(getCoreModule, jcoImports);
  if (instance instanceof Promise) throw new Error('jco: instantiate did not return synchronously');
  instance.run.run();
  if (jcoStdout.text() !== EXPECTED || jcoStderr.text() !== '') {
    throw new Error(`jco: stdout ${JSON.stringify(jcoStdout.text())}, stderr ${JSON.stringify(jcoStderr.text())}`);
  }
}

checkComponent();
// Each jco run leaves wasm instances (and their memories) to the GC, like node:wasi: same cap.
const nOursComponent = warmUpAndSize(runOursComponent);
const nJco = Math.min(MAX_BATCH_RUNS, warmUpAndSize(runJco));
const oursComponentNs = [];
const jcoNs = [];
for (let b = 0; b < BATCHES; b++) {
  oursComponentNs.push(timeRuns(runOursComponent, nOursComponent));
  jcoNs.push(timeRuns(runJco, nJco));
}

// --- (f)-(h) CPU-bound guest: spin.wasm --------------------------------------------------------

const SPIN_N = 100_000_000;
const SPIN_EXPECTED = 'spin 100000000 -> 4060936401901413785\n';
const TIMEOUT_ROUNDS = 6;
const SCALING_ROUNDS = 5;
const STALL_GUEST_MS = 2000;
const TARGET_STALL_MS = 10;
const TARGET_TIMEOUT_RATIO = 1.1;
const cores = os.availableParallelism();
const scalingCores = Math.min(cores, 8);
const TARGET_SCALING = 0.9 * scalingCores;
const SCALING_K = Math.max(4, 2 * scalingCores);
const spinModule = new Module(fs.readFileSync(path.join(path.dirname(helloPath), 'spin.wasm')));
const spinOptions = { args: ['spin', String(SPIN_N)] };
const spinTimeoutOptions = { ...spinOptions, limits: { timeout: 60_000 } };

function checkSpin(result, expected = SPIN_EXPECTED) {
  const out = result.stdout.toString();
  if (result.exitCode !== 0 || out !== expected) {
    throw new Error(`spin.wasm: exit ${result.exitCode}, stdout ${JSON.stringify(out)}`);
  }
}
const msSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

// (h) first: runWasmSync with and without limits.timeout, ABBA order.
/** Milliseconds of one checked runWasmSync of spin.wasm. */
function timeSpinSync(options) {
  const t0 = process.hrtime.bigint();
  const result = runWasmSync(spinModule, options);
  const ms = msSince(t0);
  checkSpin(result);
  return ms;
}
timeSpinSync(spinOptions);
timeSpinSync(spinTimeoutOptions);
const spinPlainMs = [];
const spinTimeoutMs = [];
for (let r = 0; r < TIMEOUT_ROUNDS; r++) {
  spinPlainMs.push(timeSpinSync(spinOptions));
  spinTimeoutMs.push(timeSpinSync(spinTimeoutOptions));
  spinTimeoutMs.push(timeSpinSync(spinTimeoutOptions));
  spinPlainMs.push(timeSpinSync(spinOptions));
}

// (f) K runs one at a time vs all at once on runWasm's pool, alternating rounds.
async function timeSequential() {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < SCALING_K; k++) checkSpin(await runWasm(spinModule, spinOptions));
  return msSince(t0);
}
async function timeConcurrent() {
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(
    Array.from({ length: SCALING_K }, () => runWasm(spinModule, spinOptions)));
  const ms = msSince(t0);
  results.forEach((result) => checkSpin(result));
  return ms;
}
await timeConcurrent(); // warm-up: starts the pool threads
const sequentialMs = [];
const concurrentMs = [];
for (let r = 0; r < SCALING_ROUNDS; r++) {
  sequentialMs.push(await timeSequential());
  concurrentMs.push(await timeConcurrent());
}

// (g) the longest event-loop stall while one ~2 s runWasm runs.
const stallSpinN = Math.round((SPIN_N * STALL_GUEST_MS) / Math.min(...spinPlainMs));
const stallHistogram = monitorEventLoopDelay({ resolution: 1 });
stallHistogram.enable();
const stallT0 = process.hrtime.bigint();
const stallResult = await runWasm(spinModule, { args: ['spin', String(stallSpinN)] });
const stallGuestMs = msSince(stallT0);
stallHistogram.disable();
if (stallResult.exitCode !== 0 || !stallResult.stdout.toString().startsWith(`spin ${stallSpinN} -> `)) {
  throw new Error(`spin.wasm (stall run): exit ${stallResult.exitCode}, stdout ${JSON.stringify(stallResult.stdout.toString())}`);
}
const stallMaxMs = stallHistogram.max / 1e6;
const stallP99Ms = stallHistogram.percentile(99) / 1e6;
const stallTurns = stallHistogram.count;
// Baseline: the same histogram over an idle event loop for as long, nothing running. On a VM
// the host's scheduling alone can stall a turn by 5-20 ms now and then (seen here), so a
// stall figure near the baseline's says nothing about runWasm.
const idleHistogram = monitorEventLoopDelay({ resolution: 1 });
idleHistogram.enable();
await new Promise((resolve) => setTimeout(resolve, stallGuestMs));
idleHistogram.disable();
const idleMaxMs = idleHistogram.max / 1e6;

const ours = summarize(nOurs, oursNs);
const node = summarize(nNode, nodeNs);
const childPlain = runChild(false);
const child = runChild(true);

const ratio = node.medianUs / ours.medianUs;
const childVsOurs = child.medianUs / childPlain.medianUs;
const oursOk = ours.medianUs <= TARGET_OURS_US;
const ratioOk = ratio >= TARGET_RATIO;

const us = (x) => x.toFixed(2).padStart(10);
const row = (label, s, note = '') =>
  `${label.padEnd(38)}${String(s.n).padStart(8)}${us(s.medianUs)}${us(s.minUs)}  ${note}`;
const verdict = (ok) => (ok ? 'met' : 'NOT MET');

if (userEnv.RUST_BACKTRACE !== undefined) {
  console.log(`(RUST_BACKTRACE=${userEnv.RUST_BACKTRACE} in the environment: unset for (a) and (b))`);
}
console.log(`hello.wasm, ${BATCHES} batches of N runs each; Node ${process.version}, ` +
            `${os.cpus()[0]?.model ?? 'unknown CPU'} x${os.cpus().length}`);
console.log(`${'per run, microseconds'.padEnd(38)}${'N'.padStart(8)}${'median'.padStart(10)}${'min'.padStart(10)}`);
console.log(row('(a) ours: runWasmSync(Module)', ours,
                `target <= ${TARGET_OURS_US} us: ${verdict(oursOk)}`));
console.log(row('(b) node:wasi: new WASI+Instance+start', node));
console.log(row('(c) proc_exit run, RUST_BACKTRACE unset', childPlain));
console.log(row('(c) proc_exit run, RUST_BACKTRACE=1', child,
                `${childVsOurs.toFixed(2)}x unset`));
console.log(`ratio node:wasi / ours (medians): ${ratio.toFixed(1)}x ` +
            `(min/min ${(node.minUs / ours.minUs).toFixed(1)}x); ` +
            `target >= ${TARGET_RATIO}x: ${verdict(ratioOk)}`);

const round = (x) => Math.round(x * 100) / 100;
const brief = (s) => ({ n: s.n, medianUs: round(s.medianUs), minUs: round(s.minUs) });
const oursWrites = median(oursWritesMs);
const nodeWrites = median(nodeWritesMs);
const syscallRatio = oursWrites / nodeWrites;
const perCall = (ms) => ((ms * 1e3) / SYSCALLS).toFixed(3);
console.log(`V8 path, writes.wasm: ${SYSCALLS} fd_writes per run, median of ${SYSCALL_RUNS} runs`);
console.log(`(d) ours: wasiImport (stdio fd_write lane)${oursWrites.toFixed(1).padStart(8)} ms  ${perCall(oursWrites)} us/syscall`);
console.log(`(d) node:wasi                             ${nodeWrites.toFixed(1).padStart(8)} ms  ${perCall(nodeWrites)} us/syscall`);
console.log(`ratio ours / node:wasi: ${syscallRatio.toFixed(2)}x; target <= ${TARGET_SYSCALL_RATIO}x: ` +
            `${verdict(syscallRatio <= TARGET_SYSCALL_RATIO)}`);

const oursComponent = summarize(nOursComponent, oursComponentNs);
const jco = summarize(nJco, jcoNs);
const componentRatio = jco.medianUs / oursComponent.medianUs;
const componentOk = oursComponent.medianUs <= TARGET_COMPONENT_US;
const componentRatioOk = componentRatio >= TARGET_COMPONENT_RATIO;
console.log(`components/hello.wasm (WASI 0.2 command), ${BATCHES} batches of N runs each; ` +
            `jco ${jcoVersion}, instantiation 'sync'`);
console.log(`${'per run, microseconds'.padEnd(38)}${'N'.padStart(8)}${'median'.padStart(10)}${'min'.padStart(10)}`);
console.log(row('(e) ours: runWasmSync(component)', oursComponent,
                `target <= ${TARGET_COMPONENT_US} us: ${verdict(componentOk)}`));
console.log(row('(e) jco: instantiate + run.run()', jco));
console.log(`ratio jco / ours (medians): ${componentRatio.toFixed(1)}x ` +
            `(min/min ${(jco.minUs / oursComponent.minUs).toFixed(1)}x); ` +
            `target >= ${TARGET_COMPONENT_RATIO}x: ${verdict(componentRatioOk)}`);

const spinPlain = median(spinPlainMs);
const spinTimeout = median(spinTimeoutMs);
const timeoutRatio = spinTimeout / spinPlain;
const timeoutOk = timeoutRatio < TARGET_TIMEOUT_RATIO;
const sequential = median(sequentialMs);
const concurrent = median(concurrentMs);
const scaling = sequential / concurrent;
const scalingOk = scaling >= TARGET_SCALING;
const scaling2CoresOk = scaling >= 1.8;
const stallOk = stallMaxMs < TARGET_STALL_MS;
const ms = (x) => `${x.toFixed(1).padStart(8)} ms`;
console.log(`spin.wasm (CPU-bound, \`spin ${SPIN_N}\`), Module compiled once; ` +
            `${cores} cores (os.availableParallelism())`);
console.log(`(f) ${SCALING_K} runs one at a time (await runWasm)`.padEnd(46) +
            `${ms(sequential)}  median of ${SCALING_ROUNDS} rounds (min ${Math.min(...sequentialMs).toFixed(1)})`);
console.log(`(f) ${SCALING_K} runs at once (Promise.all of runWasm)`.padEnd(46) +
            `${ms(concurrent)}  median of ${SCALING_ROUNDS} rounds (min ${Math.min(...concurrentMs).toFixed(1)})`);
console.log(`scaling sequential / concurrent: ${scaling.toFixed(2)}x; target >= ${TARGET_SCALING.toFixed(1)}x ` +
            `(0.9 x ${scalingCores} cores): ${verdict(scalingOk)}` +
            (scalingCores === 2 ? '' : `; issue's >= 1.8x (2 cores): ${verdict(scaling2CoresOk)}`));
console.log(`(g) one runWasm of \`spin ${stallSpinN}\` took ${stallGuestMs.toFixed(0)} ms; longest event-loop ` +
            `stall ${stallMaxMs.toFixed(2)} ms (p99 ${stallP99Ms.toFixed(2)} ms, ${stallTurns} turns of a 1 ms timer; ` +
            `idle loop, as long: max ${idleMaxMs.toFixed(2)} ms); target < ${TARGET_STALL_MS} ms: ${verdict(stallOk)}`);
console.log(`${'(h) runWasmSync, no limits'.padEnd(46)}${ms(spinPlain)}  median of ${spinPlainMs.length} runs ` +
            `(min ${Math.min(...spinPlainMs).toFixed(1)})`);
console.log(`${'(h) runWasmSync, limits: { timeout: 60000 }'.padEnd(46)}${ms(spinTimeout)}  median of ${spinTimeoutMs.length} runs ` +
            `(min ${Math.min(...spinTimeoutMs).toFixed(1)})`);
console.log(`ratio with / without timeout (medians): ${timeoutRatio.toFixed(3)}x; ` +
            `target < ${TARGET_TIMEOUT_RATIO.toFixed(2)}x: ${verdict(timeoutOk)}`);

const { benchCalls, TARGETS: CALL_TARGETS } = await import('./calls.mjs');
const calls = await benchCalls();
const ns = (x) => `${x.toFixed(1).padStart(8)} ns`;
console.log(`calls across the boundary (bench/calls.mjs), median of 15 batches (min)`);
console.log(`${'(i) JS -> export add(i32, i32), ours'.padEnd(46)}${ns(calls.exportCall.ours.medianNs)}  (min ${calls.exportCall.ours.minNs.toFixed(1)}); ` +
            `target <= ${CALL_TARGETS.exportNs} ns: ${verdict(calls.exportCall.ours.medianNs <= CALL_TARGETS.exportNs)}`);
console.log(`${'(i) the same on V8'.padEnd(46)}${ns(calls.exportCall.v8.medianNs)}  (min ${calls.exportCall.v8.minNs.toFixed(1)})`);
console.log(`${'(j) JS -> component export add(s32, s32)'.padEnd(46)}${ns(calls.componentExportCall.medianNs)}  (min ${calls.componentExportCall.minNs.toFixed(1)}); ` +
            `target <= ${CALL_TARGETS.componentExportNs} ns: ${verdict(calls.componentExportCall.medianNs <= CALL_TARGETS.componentExportNs)}`);
console.log(`${'(k) guest -> JS host call, main thread, ours'.padEnd(46)}${ns(calls.hostCall.ours.medianNs)}  (min ${calls.hostCall.ours.minNs.toFixed(1)}); ` +
            `target <= ${CALL_TARGETS.hostCallNs} ns: ${verdict(calls.hostCall.ours.medianNs <= CALL_TARGETS.hostCallNs)}`);
console.log(`${'(k) the same on V8'.padEnd(46)}${ns(calls.hostCall.v8.medianNs)}  (min ${calls.hostCall.v8.minNs.toFixed(1)})`);
console.log(`${'(l) host call round trip from a pool thread'.padEnd(46)}${calls.poolRoundTrip.perCallUs.toFixed(2).padStart(8)} us  ` +
            `(${calls.poolRoundTrip.roundTrips} calls: ${(calls.poolRoundTrip.withMedianUs / 1e3).toFixed(1)} ms vs ` +
            `${(calls.poolRoundTrip.withoutMedianUs / 1e3).toFixed(1)} ms without); target <= ${CALL_TARGETS.roundTripUs} us: ` +
            `${verdict(calls.poolRoundTrip.perCallUs <= CALL_TARGETS.roundTripUs)}`);

const { benchFirstRun, printFirstRun } = await import('./first-run.mjs');
const firstRun = benchFirstRun();
printFirstRun(firstRun, verdict);

console.log(JSON.stringify({
  bench: 'hello.wasm per-run',
  calls,
  firstRun,
  node: process.version,
  batches: BATCHES,
  ours: brief(ours),
  nodeWasi: brief(node),
  procExitRun: brief(childPlain),
  procExitRunRustBacktrace: brief(child),
  ratio: round(ratio),
  rustBacktraceVsUnset: round(childVsOurs),
  v8Writes: { syscalls: SYSCALLS, runs: SYSCALL_RUNS, oursMs: round(oursWrites), nodeWasiMs: round(nodeWrites), ratio: round(syscallRatio) },
  component: { jcoVersion, ours: brief(oursComponent), jco: brief(jco), ratio: round(componentRatio) },
  spin: { n: SPIN_N, cores,
          scaling: { k: SCALING_K, rounds: SCALING_ROUNDS, sequentialMs: round(sequential),
                     concurrentMs: round(concurrent), ratio: round(scaling) },
          stall: { n: stallSpinN, guestMs: round(stallGuestMs), maxMs: round(stallMaxMs), p99Ms: round(stallP99Ms),
                   idleMaxMs: round(idleMaxMs) },
          timeout: { runs: spinPlainMs.length, plainMs: round(spinPlain), timeoutMs: round(spinTimeout),
                     ratio: Math.round(timeoutRatio * 1000) / 1000 } },
  targets: { oursMedianUs: TARGET_OURS_US, ratio: TARGET_RATIO, oursMet: oursOk, ratioMet: ratioOk,
             componentOursMedianUs: TARGET_COMPONENT_US, componentRatio: TARGET_COMPONENT_RATIO,
             componentOursMet: componentOk, componentRatioMet: componentRatioOk,
             scaling: round(TARGET_SCALING), scalingMet: scalingOk, scaling2CoresMet: scaling2CoresOk,
             stallMs: TARGET_STALL_MS, stallMet: stallOk,
             timeoutRatio: TARGET_TIMEOUT_RATIO, timeoutMet: timeoutOk },
}));
