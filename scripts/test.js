'use strict';

// `npm test`: every Rust unit test (`cargo test`) and every JS suite (`node --test` over
// __test__/*.test.mjs). Fails on any failure, on zero tests, and on a test file that ran
// no test (a suite that silently does not run is worse than none).

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { hostTriple } = require('./host-triple.js');

const root = path.join(__dirname, '..');

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) throw result.error;
  return result.status;
}

function fail(message) {
  console.error(`npm test: ${message}`);
  process.exit(1);
}

// For napi build's target triple, so that its compiled dependencies are reused (host-triple.js).
if (run('cargo', ['test', '--release', '--quiet', '--target', hostTriple()]) !== 0) fail('cargo test failed');

const testDir = path.join(root, '__test__');
const files = fs.readdirSync(testDir).filter((name) => name.endsWith('.test.mjs')).sort();
if (files.length === 0) fail('no JS test files in __test__/');

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'node-wasmtime-test-'));
const countsFile = path.join(scratch, 'counts.json');
// serialize() signs with a key in the user's node-wasmtime directory: the tests make theirs
// in a scratch XDG_CACHE_HOME, never in the home directory of whoever runs them.
const env = { ...process.env, XDG_CACHE_HOME: path.join(scratch, 'cache') };
delete env.NODE_WASMTIME_COMPILE_CACHE;
// Test files run side by side, one per core: node's default (one fewer than the cores) runs
// them one at a time on 2 cores, where most of their time is spent waiting on child processes.
const concurrency = Math.max(2, os.availableParallelism());
const status = run(process.execPath, [
  '--disable-warning=ExperimentalWarning',
  '--test',
  `--test-concurrency=${concurrency}`,
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  `--test-reporter=${path.join(__dirname, 'count-reporter.mjs')}`, `--test-reporter-destination=${countsFile}`,
  ...files.map((name) => path.join('__test__', name)),
], { env });
if (status !== 0) fail('node --test failed');

const counts = JSON.parse(fs.readFileSync(countsFile, 'utf8'));
const empty = files.filter((name) => !counts[path.join(testDir, name)]);
if (empty.length > 0) fail(`these test files ran no test: ${empty.join(', ')}`);
const total = Object.values(counts).reduce((a, b) => a + b, 0);
if (total === 0) fail('no JS test ran');
console.log(`npm test: ${total} JS tests passed in ${files.length} files`);
