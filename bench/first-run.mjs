// The first run of a large real program, and its runs once warm (part of `npm run bench`; also
// runnable alone: `node bench/first-run.mjs`).
//
// The program: ruby+stdlib.wasm of the devDependency @ruby/3.4-wasm-wasi (CRuby 3.4 and its
// standard library in a 30.6 MB WASI reactor, as ruby.wasm publishes it). One run is what the
// package's own JS does for a user: instantiate with WASI (its non-WASI imports, the JS interop
// it does not use here, are functions that throw; its three canonical-ABI resource imports a
// table), `_initialize`, `ruby-init` with the package's default arguments (`-EUTF-8 -e_=0`,
// RubyGems on), then `rb-eval-string-protect` of a script that prints through fd_write to a
// file; the output of every run is checked byte for byte against node:wasi's.
//   (m) first run, each in a fresh process (`node --no-warnings bench/first-run.mjs --child
//       MODE`), timed from spawn to exit, median of FIRST_RUN_ROUNDS rounds that alternate:
//       node:wasi (`WebAssembly.compile` + `new WASI` + instantiate); ours with the persistent
//       code cache cold (`NODE_WASMTIME_COMPILE_CACHE` an empty directory: Cranelift compiles
//       and writes the entry) and warm (the next process, same directory: it loads the entry);
//       ours with `compiler: 'winch'` and `compiler: 'tiered'`, no cache. Every child runs
//       with XDG_CACHE_HOME a scratch directory (the user's key and cache are not touched).
//       Each child also reports its compile time and its RSS growth over `new Module` (the
//       code, plus the 30.6 MB source a module keeps for fuel metering and tier-up).
//   (n) steady state: in one fresh process, modules compiled with Cranelift, tiered (after
//       `module.compiler` reads 'cranelift', i.e. its tier-up finished) and Winch; then
//       STEADY_ROUNDS rounds of one run each, in that order, of a CPU-bound script on a fresh
//       instance; median run time of each, and of the script's eval alone.
// Targets: warm-cache first run <= 1.5x node:wasi's; Winch and tiered first runs < 2 s;
// tiered steady-state run <= 1.05x Cranelift-only's (medians).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const self = fileURLToPath(import.meta.url);

export const PROGRAM = require.resolve('@ruby/3.4-wasm-wasi/dist/ruby+stdlib.wasm');
const FIRST_RUN_ROUNDS = 3;
const STEADY_ROUNDS = 5;
export const TARGETS = { warmRatio: 1.5, baselineFirstRunMs: 2000, tieredSteadyRatio: 1.05 };

const FIRST_SCRIPT = "require 'json'; puts RUBY_VERSION; " +
  'puts JSON.generate({ sum: (1..100).sum, words: %w[a b c].map(&:upcase) }); $stdout.flush';
const STEADY_SCRIPT = 'x = 0; 1_000_000.times { |i| x += i * 2 }; ' +
  "h = {}; 50_000.times { |i| h[\"k#{i}\"] = i.to_s * 2 }; puts x, h.size; $stdout.flush";
const INIT_ARGS = ['ruby.wasm', '-EUTF-8', '-e_=0'];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The imports ruby+stdlib.wasm needs besides WASI, from its import list: resource tables for
 * `canonical_abi`, and a throwing function for each JS-interop import (`rb-js-abi-host`).
 */
function rubyImports(importList) {
  const reps = [undefined];
  const canonical = {
    'resource_new_rb-abi-value': (rep) => reps.push(rep) - 1,
    'resource_get_rb-abi-value': (handle) => reps[handle],
    'resource_drop_js-abi-value': () => {},
  };
  const imports = {};
  for (const { module, name, kind } of importList) {
    if (module === 'wasi_snapshot_preview1' || kind !== 'function') continue;
    imports[module] ??= {};
    imports[module][name] = canonical[name] ?? (() => {
      throw new Error(`ruby.wasm called ${module}.${name}, which this bench does not provide`);
    });
  }
  return imports;
}

/** `ruby-init` and one `rb-eval-string-protect` of `script`, through the canonical ABI. */
function runRuby(exports, memory, script) {
  const encoder = new TextEncoder();
  const string = (text) => {
    const bytes = encoder.encode(text);
    const ptr = exports.cabi_realloc(0, 0, 1, bytes.length);
    new Uint8Array(memory.buffer, ptr, bytes.length).set(bytes);
    return [ptr, bytes.length];
  };
  const args = INIT_ARGS.map((arg) => string(`${arg}\0`));
  const list = exports.cabi_realloc(0, 0, 4, args.length * 8);
  const view = new DataView(memory.buffer);
  args.forEach(([ptr, len], i) => {
    view.setUint32(list + i * 8, ptr, true);
    view.setUint32(list + i * 8 + 4, len, true);
  });
  exports['ruby-init: func(args: list<string>) -> ()'](list, args.length);
  const evalStart = performance.now();
  const ret = exports['rb-eval-string-protect: func(str: string) -> tuple<handle<rb-abi-value>, s32>'](...string(script));
  const evalMs = performance.now() - evalStart;
  const status = new DataView(memory.buffer).getInt32(ret + 4, true);
  if (status !== 0) throw new Error(`ruby: the script raised (rb-eval-string-protect status ${status})`);
  return evalMs;
}

/** One run on node:wasi, its output written to `fd`. */
async function runNodeWasi(module, fd, script) {
  const { WASI } = await import('node:wasi');
  const wasi = new WASI({ version: 'preview1', args: ['ruby'], env: {}, returnOnExit: true, stdout: fd });
  const instance = await WebAssembly.instantiate(module, {
    ...wasi.getImportObject(), ...rubyImports(WebAssembly.Module.imports(module)),
  });
  wasi.initialize(instance);
  return runRuby(instance.exports, instance.exports.memory, script);
}

/** One run on node-wasmtime on a fresh instance, its output written to `fd`. */
function runOurs(lib, module, fd, script) {
  const wasi = new lib.WASI({ version: 'preview1', args: ['ruby'], env: {}, returnOnExit: true, stdout: fd });
  const instance = wasi.instantiate(module, rubyImports(module.imports()));
  try {
    wasi.initialize(instance);
    return runRuby(instance.exports, instance.exports.memory, script);
  } finally {
    instance.dispose();
  }
}

/** A child process's work: MODE is node-wasi, cranelift, winch, tiered or steady. */
async function child(mode) {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nwt-first-run-')), 'stdout');
  const fd = fs.openSync(out, 'w');
  const bytes = fs.readFileSync(PROGRAM);
  const report = { mode };
  if (mode === 'node-wasi') {
    const start = performance.now();
    const module = await WebAssembly.compile(bytes);
    report.compileMs = performance.now() - start;
    await runNodeWasi(module, fd, FIRST_SCRIPT);
  } else {
    const lib = require('../lib/index.js');
    if (mode === 'steady') {
      report.steady = await steady(lib, bytes, fd);
    } else {
      const rss = process.memoryUsage.rss();
      const start = performance.now();
      const module = new lib.Module(bytes, { compiler: mode });
      report.compileMs = performance.now() - start;
      report.moduleRssBytes = process.memoryUsage.rss() - rss;
      report.compiler = module.compiler;
      report.cacheStats = lib.compileCacheStats();
      runOurs(lib, module, fd, FIRST_SCRIPT);
    }
  }
  fs.closeSync(fd);
  report.stdout = fs.readFileSync(out, 'utf8');
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

/** (n), in the child: per-run and eval medians of Cranelift, tiered after tier-up, and Winch. */
async function steady(lib, bytes, fd) {
  const tiered = new lib.Module(bytes, { compiler: 'tiered' });
  const winch = new lib.Module(bytes, { compiler: 'winch' });
  const cranelift = new lib.Module(bytes);
  const deadline = Date.now() + 300_000;
  while (tiered.compiler !== 'cranelift') {
    if (Date.now() > deadline) throw new Error('tiered module: no Cranelift code after 300 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const modules = { cranelift, tiered, winch };
  const runs = Object.fromEntries(Object.keys(modules).map((name) => [name, { runMs: [], evalMs: [] }]));
  for (let round = 0; round < STEADY_ROUNDS; round++) {
    for (const [name, module] of Object.entries(modules)) {
      const start = performance.now();
      const evalMs = runOurs(lib, module, fd, STEADY_SCRIPT);
      runs[name].runMs.push(performance.now() - start);
      runs[name].evalMs.push(evalMs);
    }
  }
  return Object.fromEntries(Object.entries(runs).map(([name, { runMs, evalMs }]) =>
    [name, { runMs: median(runMs), evalMs: median(evalMs) }]));
}

/** Runs `--child mode` in a fresh process with `env`; its report, and the wall time. */
function spawnChild(mode, env) {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, ['--no-warnings', self, '--child', mode], {
    env, encoding: 'utf8', maxBuffer: 64 << 20,
  });
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) {
    throw new Error(`first-run child ${mode}: exit ${result.status} ${result.signal ?? ''}\n${result.stderr}`);
  }
  const lines = result.stdout.trim().split('\n');
  return { ...JSON.parse(lines[lines.length - 1]), wallMs };
}

/** (m) and (n): the figures, every child's output checked against node:wasi's. */
export function benchFirstRun() {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'nwt-first-run-'));
  try {
    const env = { ...process.env, XDG_CACHE_HOME: path.join(scratch, 'xdg') };
    delete env.NODE_WASMTIME_COMPILE_CACHE;
    const modes = ['node-wasi', 'cold', 'warm', 'winch', 'tiered'];
    const runs = Object.fromEntries(modes.map((mode) => [mode, []]));
    let expected;
    let entryBytes = 0;
    for (let round = 0; round < FIRST_RUN_ROUNDS; round++) {
      const cacheDir = path.join(scratch, `cache-${round}`);
      for (const mode of modes) {
        const cached = mode === 'cold' || mode === 'warm';
        const report = spawnChild(cached ? 'cranelift' : mode,
          cached ? { ...env, NODE_WASMTIME_COMPILE_CACHE: cacheDir } : env);
        expected ??= report.stdout;
        if (report.stdout !== expected || !/^3\.4\.\d+\n\{"sum":5050,"words":\["A","B","C"\]\}\n$/.test(expected)) {
          throw new Error(`first-run ${mode}: stdout ${JSON.stringify(report.stdout)}, node:wasi's ${JSON.stringify(expected)}`);
        }
        if (mode === 'warm' && report.cacheStats.hits !== 1) {
          throw new Error(`first-run warm: the cache did not hit (${JSON.stringify(report.cacheStats)})`);
        }
        if (mode === 'cold') {
          entryBytes = fs.readdirSync(cacheDir, { recursive: true })
            .map((name) => fs.statSync(path.join(cacheDir, name)))
            .filter((stat) => stat.isFile())
            .reduce((sum, stat) => sum + stat.size, 0);
        }
        runs[mode].push(report);
      }
    }
    const firstRun = Object.fromEntries(modes.map((mode) => {
      const reports = runs[mode];
      const pick = (key) => (reports[0][key] === undefined ? undefined : median(reports.map((r) => r[key])));
      return [mode, { wallMs: pick('wallMs'), compileMs: pick('compileMs'), moduleRssBytes: pick('moduleRssBytes') }];
    }));
    const { steady } = spawnChild('steady', env);
    return {
      program: path.relative(path.join(path.dirname(self), '..'), PROGRAM),
      programBytes: fs.statSync(PROGRAM).size,
      rounds: FIRST_RUN_ROUNDS,
      steadyRounds: STEADY_ROUNDS,
      firstRun,
      cacheEntryBytes: entryBytes,
      warmRatio: firstRun.warm.wallMs / firstRun['node-wasi'].wallMs,
      steady,
      tieredSteadyRatio: steady.tiered.runMs / steady.cranelift.runMs,
    };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** The table (m)-(n) print in `npm run bench`. */
export function printFirstRun(figures, verdict) {
  const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;
  const s = (ms) => `${(ms / 1000).toFixed(2).padStart(7)} s`;
  const { firstRun: f, steady } = figures;
  console.log(`${figures.program} (${mb(figures.programBytes)}), first run in a fresh process, ` +
              `median of ${figures.rounds} (bench/first-run.mjs)`);
  const line = (label, run, note = '') => console.log(`${label.padEnd(46)}${s(run.wallMs)}` +
    (run.compileMs === undefined ? '' : `  compile ${s(run.compileMs).trim()}`) +
    (run.moduleRssBytes === undefined ? '' : `, module RSS +${mb(run.moduleRssBytes)}`) + note);
  line('(m) node:wasi', f['node-wasi']);
  line('(m) ours, cache cold (Cranelift)', f.cold, `, entry ${mb(figures.cacheEntryBytes)}`);
  line('(m) ours, cache warm', f.warm, `; ${figures.warmRatio.toFixed(2)}x node:wasi, target <= ` +
       `${TARGETS.warmRatio}x: ${verdict(figures.warmRatio <= TARGETS.warmRatio)}`);
  line("(m) ours, compiler: 'winch'", f.winch,
       `; target < 2 s: ${verdict(f.winch.wallMs < TARGETS.baselineFirstRunMs)}`);
  line("(m) ours, compiler: 'tiered'", f.tiered,
       `; target < 2 s: ${verdict(f.tiered.wallMs < TARGETS.baselineFirstRunMs)}`);
  console.log(`steady state, a CPU-bound script on a fresh instance per run, median of ${figures.steadyRounds}`);
  for (const [name, label] of [['cranelift', 'Cranelift only'], ['tiered', 'tiered, after tier-up'], ['winch', 'Winch']]) {
    console.log(`${`(n) ${label}`.padEnd(46)}${s(steady[name].runMs)}  (eval ${s(steady[name].evalMs).trim()})`);
  }
  console.log(`ratio tiered / Cranelift (runs): ${figures.tieredSteadyRatio.toFixed(3)}x; target <= ` +
              `${TARGETS.tieredSteadyRatio}x: ${verdict(figures.tieredSteadyRatio <= TARGETS.tieredSteadyRatio)}`);
}

if (process.argv[2] === '--child') {
  await child(process.argv[3]);
} else if (process.argv[1] === self) {
  const figures = benchFirstRun();
  printFirstRun(figures, (ok) => (ok ? 'met' : 'NOT MET'));
  console.log(JSON.stringify(figures));
}
