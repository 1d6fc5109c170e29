// The persistent code cache (enableCompileCache, NODE_WASMTIME_COMPILE_CACHE): each case runs
// fresh processes, since a cache, once on, stays on for its process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { blake3 } from '@noble/hashes/blake3.js';
import { lib, fixturePath, tempDir } from './helpers.mjs';

const LIB = fileURLToPath(new URL('../lib/index.js', import.meta.url));
const { enableCompileCache, compileCacheStatus, getCompileCacheDir } = lib;

// A child that turns the cache on for `dir` (unless `NODE_WASMTIME_COMPILE_CACHE` does), compiles
// `file` and runs it; prints what enableCompileCache returned, the stats and the output.
const CHILD = `
const { enableCompileCache, compileCacheStats, Module, runWasmSync } = require(${JSON.stringify(LIB)});
const [file, dir, maxSize] = process.argv.slice(1);
const enabled = dir ? enableCompileCache(maxSize ? { directory: dir, maxSize: Number(maxSize) } : dir) : undefined;
const module = new Module(require('fs').readFileSync(file));
const { exitCode, stdout } = runWasmSync(module, { stdout: 'pipe' });
console.log(JSON.stringify({ enabled, stats: compileCacheStats(), exitCode, stdout: stdout.toString() }));
`;

function child(file, dir, { maxSize, env } = {}) {
  const args = ['-e', CHILD, file, dir ?? ''];
  if (maxSize !== undefined) args.push(String(maxSize));
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

const HELLO = fixturePath('hello.wasm');
const COMPONENT = fixturePath('components/hello.wasm');
const ECHO = fixturePath('echo.wasm');
const entries = (dir) => fs.readdirSync(dir).filter((name) => name.endsWith('.nwtcode'));

test('a second process loads the code the first compiled: the same output, nothing compiled', () => {
  const dir = path.join(tempDir(), 'cache');
  const first = child(HELLO, dir);
  assert.deepEqual(first.enabled, { status: compileCacheStatus.ENABLED, directory: dir });
  assert.deepEqual(first.stats, { hits: 0, misses: 1, rejected: 0, written: 1, evicted: 0 });
  assert.equal(first.stdout, 'hello world\n');
  assert.equal(entries(dir).length, 1);
  const second = child(HELLO, dir);
  assert.deepEqual(second.stats, { hits: 1, misses: 0, rejected: 0, written: 0, evicted: 0 });
  assert.equal(second.stdout, 'hello world\n');
  // Components too; and through the environment variable.
  const env = { NODE_WASMTIME_COMPILE_CACHE: dir };
  assert.equal(child(COMPONENT, undefined, { env }).stats.written, 1);
  const component = child(COMPONENT, undefined, { env });
  assert.deepEqual(component.stats, { hits: 1, misses: 0, rejected: 0, written: 0, evicted: 0 });
  assert.equal(component.stdout, 'hello world\n');
});

test('the directory and key are owner-only; one others can write is refused', () => {
  const dir = path.join(tempDir(), 'made');
  child(HELLO, dir);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(dir, 'key')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(dir, 'key')).size, 32);
  for (const [target, mode, why] of [[dir, 0o777, /can be written by other users/], [path.join(dir, 'key'), 0o644, /can be read or written by other users/]]) {
    fs.chmodSync(target, mode);
    const refused = child(HELLO, dir);
    assert.equal(refused.enabled.status, compileCacheStatus.FAILED);
    assert.match(refused.enabled.message, why);
    assert.deepEqual(refused.stats, { hits: 0, misses: 0, rejected: 0, written: 0, evicted: 0 }, 'no cache in use');
    assert.equal(refused.stdout, 'hello world\n');
    fs.chmodSync(target, target === dir ? 0o700 : 0o600);
  }
});

test('corrupt, truncated and forged entries are refused, deleted and replaced by a fresh compile', () => {
  const dir = path.join(tempDir(), 'cache');
  child(HELLO, dir);
  const [name] = entries(dir);
  const entry = path.join(dir, name);
  const good = fs.readFileSync(entry);
  // Forged: a well-formed entry for the same input made under another key (as anyone can
  // make one: the format and the payload are no secret, the key is).
  const other = path.join(tempDir(), 'other');
  child(HELLO, other);
  const forged = fs.readFileSync(path.join(other, name));
  // An entry: wasmtime's code, a 32-byte MAC (keyed BLAKE3 of the name, a NUL and the
  // code), an 8-byte magic.
  const mac = (bytes) => bytes.subarray(bytes.length - 40, bytes.length - 8);
  assert.notDeepEqual(mac(forged), mac(good), 'another key, another MAC');
  const flipped = Buffer.from(good);
  flipped[flipped.length - 100] ^= 0xff;
  // Authentic but not loadable, as an entry of another wasmtime build would be: signed with
  // the right key (read here from the directory), its code is not wasmtime's.
  const code = Buffer.from(good.subarray(0, good.length - 40));
  code[0] ^= 0xff;
  const key = fs.readFileSync(path.join(dir, 'key'));
  const signed = Buffer.concat([code, blake3(Buffer.concat([Buffer.from(`${name}\0`), code]), { key }), good.subarray(good.length - 8)]);
  const cases = [['corrupt', flipped], ['truncated', good.subarray(0, good.length >> 1)], ['forged', forged],
    ['empty', Buffer.alloc(0)], ['unloadable', signed]];
  for (const [what, bytes] of cases) {
    fs.writeFileSync(entry, bytes);
    const run = child(HELLO, dir);
    assert.deepEqual(run.stats, { hits: 0, misses: 1, rejected: 1, written: 1, evicted: 0 }, what);
    assert.equal(run.stdout, 'hello world\n', what);
    assert.deepEqual(fs.readFileSync(entry), good, `${what}: replaced by an authentic entry`);
  }
  assert.equal(child(HELLO, dir).stats.hits, 1);
});

test('past maxSize the least recently used entries go', () => {
  const EXIT = fixturePath('exitcode.wasm');
  const size = {};
  for (const file of [HELLO, ECHO, EXIT]) {
    const scratch = path.join(tempDir(), 'sizes');
    child(file, scratch);
    size[file] = fs.statSync(path.join(scratch, entries(scratch)[0])).size;
  }
  const dir = path.join(tempDir(), 'bounded');
  const roomy = { maxSize: 10 * (size[HELLO] + size[ECHO] + size[EXIT]) };
  child(HELLO, dir, roomy);
  const [hello] = entries(dir);
  child(ECHO, dir, roomy);
  const echo = entries(dir).find((name) => name !== hello);
  // hello written first; then used (a hit), which makes echo the least recently used.
  const past = Date.now() / 1000 - 60;
  fs.utimesSync(path.join(dir, hello), past, past);
  fs.utimesSync(path.join(dir, echo), past + 10, past + 10);
  assert.equal(child(HELLO, dir, roomy).stats.hits, 1);
  const third = child(EXIT, dir, { maxSize: size[HELLO] + size[EXIT] + 100 });
  assert.equal(third.stats.evicted, 1);
  assert.equal(third.stdout, 'exiting with 0\n');
  assert.ok(!entries(dir).includes(echo), 'echo, used least recently, went');
  assert.ok(entries(dir).includes(hello));
  assert.equal(entries(dir).length, 2);
});

test('a directory that cannot be written degrades to compiling, with no error', () => {
  const dir = path.join(tempDir(), 'cache');
  // (Tests may run as root, who can write a read-only directory: the directory vanishes
  // instead, under a process that already uses it.)
  const script = `
    const { enableCompileCache, compileCacheStats, runWasmSync } = require(${JSON.stringify(LIB)});
    const fs = require('fs');
    const dir = ${JSON.stringify(dir)};
    enableCompileCache(dir);
    fs.rmSync(dir, { recursive: true });
    fs.writeFileSync(dir, 'not a directory');
    const { stdout } = runWasmSync(fs.readFileSync(${JSON.stringify(HELLO)}), { stdout: 'pipe' });
    console.log(JSON.stringify({ stats: compileCacheStats(), stdout: stdout.toString() }));`;
  const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr, '');
  assert.deepEqual(JSON.parse(result.stdout), {
    stats: { hits: 0, misses: 1, rejected: 0, written: 0, evicted: 0 }, stdout: 'hello world\n',
  });
});

test('concurrent processes writing the same entry: every one runs, the entry stays authentic', async () => {
  const dir = path.join(tempDir(), 'cache');
  const runs = await Promise.all(Array.from({ length: 4 }, () => new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['-e', CHILD, HELLO, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (chunk) => { out += chunk; });
    proc.stderr.on('data', (chunk) => { err += chunk; });
    proc.on('error', reject);
    proc.on('close', (status) => (status === 0 ? resolve(JSON.parse(out)) : reject(new Error(err))));
  })));
  for (const run of runs) assert.equal(run.stdout, 'hello world\n');
  assert.equal(entries(dir).length, 1);
  assert.deepEqual(fs.readdirSync(dir).filter((name) => name.endsWith('.tmp')), [], 'no temporary file left');
  assert.equal(child(HELLO, dir).stats.hits, 1);
});

test('enableCompileCache: arguments, ALREADY_ENABLED, DISABLED', () => {
  assert.throws(() => enableCompileCache(42), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => enableCompileCache({ directory: 1 }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => enableCompileCache({ maxSize: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.equal(getCompileCacheDir(), undefined, 'off unless asked for');
  const dir = path.join(tempDir(), 'cache');
  const script = `
    const { enableCompileCache, getCompileCacheDir } = require(${JSON.stringify(LIB)});
    console.log(JSON.stringify([enableCompileCache(${JSON.stringify(dir)}), enableCompileCache('/elsewhere'), getCompileCacheDir()]));`;
  const twice = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(twice.stdout), [
    { status: compileCacheStatus.ENABLED, directory: dir },
    { status: compileCacheStatus.ALREADY_ENABLED, directory: dir },
    dir,
  ]);
  const disabled = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8', env: { ...process.env, NODE_WASMTIME_DISABLE_COMPILE_CACHE: '1' },
  });
  const [first, , inUse] = JSON.parse(disabled.stdout);
  assert.equal(first.status, compileCacheStatus.DISABLED);
  assert.equal(inUse, null, 'undefined, through JSON');
});

test("a tiered module whose Cranelift code the cache holds starts on it; without it, on Winch's", () => {
  const dir = path.join(tempDir(), 'cache');
  const tiered = (file) => {
    const script = `
      const { enableCompileCache, compileCacheStats, Module, runWasmSync } = require(${JSON.stringify(LIB)});
      enableCompileCache(process.argv[2]);
      const module = new Module(require('fs').readFileSync(process.argv[1]), { compiler: 'tiered' });
      const compiler = module.compiler;
      const { exitCode, stdout } = runWasmSync(module, { stdout: 'pipe' });
      console.log(JSON.stringify({ compiler, stats: compileCacheStats(), exitCode, stdout: stdout.toString() }));
      process.exit(0); // not waiting for a tier-up compile
    `;
    const result = spawnSync(process.execPath, ['-e', script, file, dir], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout);
  };
  const onWinch = tiered(ECHO);
  assert.equal(onWinch.compiler, 'winch', 'no Cranelift entry: Winch code first');
  assert.equal(onWinch.exitCode, 0);
  child(HELLO, dir); // a Cranelift compile writes its entry
  const warm = tiered(HELLO);
  assert.deepEqual(warm, {
    compiler: 'cranelift',
    stats: { hits: 1, misses: 0, rejected: 0, written: 0, evicted: 0 },
    exitCode: 0,
    stdout: 'hello world\n',
  });
});
