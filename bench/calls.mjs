// Calls across the boundary, node-wasmtime vs V8 side by side (part of `npm run bench`; also
// runnable alone: `node --expose-gc bench/calls.mjs`).
//   (i)  JS -> guest export `add(i32, i32) -> i32` on a core instance: ours
//        (`wasi.instantiate()` + `instance.exports.add`) vs V8 (`new WebAssembly.Instance`).
//   (j)  JS -> component export `add(s32, s32) -> s32` (components/no-run.wasm, the only
//        component export fixture), ours; no V8 counterpart.
//   (k)  guest -> JS host call on the main thread: a guest loop calling `env.step(i32) -> i32`
//        CALLS times per export call, ours vs V8 with the same import; per call = time / CALLS.
//   (l)  host call round trip from a pool-thread guest: runWasm of a guest calling
//        `env.step` ROUND_TRIPS times vs the same guest calling it 0 times; per call =
//        (median with - median without) / ROUND_TRIPS.
// Method: BATCHES batches, alternating ours and V8 within each batch, median (and min) of the
// per-call time of each batch.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { parse as watToWasm } from '@bytecodealliance/jco';

const require = createRequire(import.meta.url);
const { WASI, Module, runWasm } = require('../lib/index.js');
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '__test__', 'fixtures');

const BATCHES = 15;
const EXPORT_CALLS = 200000;
const HOST_CALLS = 200000;
const ROUND_TRIPS = 2000;
export const TARGETS = { exportNs: 150, componentExportNs: 300, hostCallNs: 200, roundTripUs: 20 };

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const nsPer = (fn, n) => {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / n;
};

const LOOP_WAT = `(module
  (import "env" "step" (func $step (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func $loop (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (block $done (loop $again
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $acc (call $step (local.get $acc)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $again)))
    local.get $acc)
  (func (export "loop") (param i32) (result i32) local.get 0 call $loop)
  (func (export "_start") (call $exit (i32.and (call $loop (global.get $n)) (i32.const 1))))
  (global $n (export "n") (mut i32) (i32.const ${ROUND_TRIPS})))`;

export async function benchCalls() {
  const bytes = await watToWasm(LOOP_WAT);
  const imports = { env: { step: (x) => x + 1 } };
  const ours = new WASI({ version: 'preview1' }).instantiate(new Module(bytes), imports);
  const v8 = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
    ...imports, wasi_snapshot_preview1: { proc_exit() {} },
  });
  const component = new Module(fs.readFileSync(path.join(fixtures, 'components', 'no-run.wasm')));
  const componentWasi = new WASI({ version: 'preview2' });
  const componentInstance = componentWasi.instantiate(component);
  componentWasi.initialize(componentInstance);

  const { add: oursAdd, loop: oursLoop } = ours.exports;
  const { add: v8Add, loop: v8Loop } = v8.exports;
  const { add: componentAdd } = componentInstance.exports;
  if (oursAdd(2, 3) !== 5 || v8Add(2, 3) !== 5 || componentAdd(2, 3) !== 5) throw new Error('add is wrong');
  if (oursLoop(10) !== 10 || v8Loop(10) !== 10) throw new Error('loop is wrong');
  // One loop function per callee: closures of one literal share their call-site feedback,
  // which would make the `add(i, 1)` site megamorphic across the three callees and slow
  // every one of them, unlike a program calling one export in its own loop.
  const loops = new Map([
    [oursAdd, () => { for (let i = 0; i < EXPORT_CALLS; i++) oursAdd(i, 1); }],
    [v8Add, () => { for (let i = 0; i < EXPORT_CALLS; i++) v8Add(i, 1); }],
    [componentAdd, () => { for (let i = 0; i < EXPORT_CALLS; i++) componentAdd(i, 1); }],
  ]);
  const exportLoop = (add) => loops.get(add);
  const figures = { exportOurs: [], exportV8: [], componentExport: [], hostOurs: [], hostV8: [] };
  for (let warm = 0; warm < 2; warm++) {
    exportLoop(oursAdd)(); exportLoop(v8Add)(); exportLoop(componentAdd)();
    oursLoop(HOST_CALLS); v8Loop(HOST_CALLS);
  }
  for (let b = 0; b < BATCHES; b++) {
    figures.exportOurs.push(nsPer(exportLoop(oursAdd), EXPORT_CALLS));
    figures.exportV8.push(nsPer(exportLoop(v8Add), EXPORT_CALLS));
    figures.componentExport.push(nsPer(exportLoop(componentAdd), EXPORT_CALLS));
    figures.hostOurs.push(nsPer(() => oursLoop(HOST_CALLS), HOST_CALLS));
    figures.hostV8.push(nsPer(() => v8Loop(HOST_CALLS), HOST_CALLS));
  }

  // (l): the same command with ROUND_TRIPS host calls and with none (set through its global).
  const withCalls = new Module(bytes);
  const without = new Module(await watToWasm(LOOP_WAT.replace(`(i32.const ${ROUND_TRIPS})))`, '(i32.const 0)))')));
  const run = async (module) => {
    const start = process.hrtime.bigint();
    await runWasm(module, { imports });
    return Number(process.hrtime.bigint() - start) / 1e3;
  };
  for (let warm = 0; warm < 3; warm++) { await run(withCalls); await run(without); }
  const withUs = [];
  const withoutUs = [];
  for (let b = 0; b < BATCHES; b++) {
    withUs.push(await run(withCalls));
    withoutUs.push(await run(without));
  }
  const roundTripUs = (median(withUs) - median(withoutUs)) / ROUND_TRIPS;
  const summary = (xs) => ({ medianNs: median(xs), minNs: Math.min(...xs) });
  return {
    exportCall: { ours: summary(figures.exportOurs), v8: summary(figures.exportV8) },
    componentExportCall: summary(figures.componentExport),
    hostCall: { ours: summary(figures.hostOurs), v8: summary(figures.hostV8) },
    poolRoundTrip: { roundTrips: ROUND_TRIPS, withMedianUs: median(withUs), withoutMedianUs: median(withoutUs), perCallUs: roundTripUs },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(await benchCalls(), null, 1));
}
