// `npm run package-test` (run by .ci/run after `npm test`): the packages a user installs, as
// the release workflow publishes them, installed from their tarballs into empty projects.
//   1. The main package, `npm pack`ed with the optionalDependencies `napi prepublish` adds
//      (one `node-wasmtime-<platform>` per napi.targets entry), holds no binary; the
//      linux-x64-gnu package (npm/linux-x64-gnu/ with the release addon, as `napi artifacts`
//      fills it) holds exactly one.
//   2. Both installed into an empty project with a PATH that has no cargo: `require` and ESM
//      `import` of every public name, a guest run, the CLI through the package's bin, and
//      `tsc --strict` over a TypeScript consumer; nothing was built.
//   3. The source fallback: the main tarball alone with cargo on PATH builds the addon, which
//      then runs a guest; without cargo the same install fails with its one message.
// Needs the release addon built (`npm install`) and this platform to be linux-x64-gnu.
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const PLATFORM = 'linux-x64-gnu';
const ADDON = `${pkg.napi.binaryName}.${PLATFORM}.node`;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'nwt-package-test-'));

/** A PATH with node and npm but no cargo (nor rustc). */
function pathWithoutCargo() {
  const dirs = [...new Set([path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'])];
  const kept = dirs.filter((dir) => !fs.existsSync(path.join(dir, 'cargo')) && !fs.existsSync(path.join(dir, 'rustc')));
  assert.ok(kept.includes(path.dirname(process.execPath)), `node's own directory holds cargo: ${process.execPath}`);
  return kept.join(path.delimiter);
}

function run(command, args, { cwd = scratch, env = process.env, ok = true } = {}) {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.error) throw result.error;
  if (ok && result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}): exit ${result.status}\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

const npm = (args, options) => run('npm', ['--no-audit', '--no-fund', '--loglevel=error', ...args], options);
const tarList = (tarball) => run('tar', ['tzf', tarball]).stdout.trim().split('\n');

/** `npm pack` of `dir` into the scratch directory; the tarball's path. */
function pack(dir) {
  const [{ filename }] = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], { cwd: dir }).stdout);
  return path.join(scratch, filename);
}

/** The main package as the release workflow publishes it: with its optionalDependencies. */
function packMain() {
  const plain = pack(root);
  const staged = path.join(scratch, 'main');
  fs.mkdirSync(staged);
  run('tar', ['xzf', plain, '-C', staged]);
  fs.rmSync(plain);
  const dir = path.join(staged, 'package');
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  manifest.optionalDependencies = Object.fromEntries(fs.readdirSync(path.join(root, 'npm')).sort()
    .map((platform) => [`${pkg.name}-${platform}`, pkg.version]));
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return pack(dir);
}

/** npm/linux-x64-gnu with the release addon in it. */
function packPlatform() {
  const staged = path.join(scratch, PLATFORM);
  fs.cpSync(path.join(root, 'npm', PLATFORM), staged, { recursive: true });
  fs.copyFileSync(path.join(root, ADDON), path.join(staged, ADDON));
  return pack(staged);
}

/** An empty project with `tarballs` installed; its directory. */
function project(name, tarballs, env, { ok = true } = {}) {
  const dir = path.join(scratch, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  const result = npm(['install', ...tarballs], { cwd: dir, env, ok });
  return { dir, result };
}

const CONSUMER_CJS = `
const assert = require('node:assert/strict');
const lib = require('node-wasmtime');
const names = JSON.parse(process.argv[1]);
for (const name of names) assert.notEqual(lib[name], undefined, name);
const { exitCode, stdout } = lib.runWasmSync(require('fs').readFileSync('hello.wasm'), { stdout: 'pipe' });
assert.equal(exitCode, 0);
process.stdout.write(stdout);
`;

const CONSUMER_ESM = `
import assert from 'node:assert/strict';
import * as lib from 'node-wasmtime';
import { Module, runWasm } from 'node-wasmtime';
const names = JSON.parse(process.argv[2]);
for (const name of names) assert.notEqual(lib[name], undefined, name);
const { exitCode, stdout } = await runWasm(new Module(await import('node:fs').then((fs) => fs.readFileSync('hello.wasm'))), { stdout: 'pipe' });
assert.equal(exitCode, 0);
process.stdout.write(stdout);
`;

const CONSUMER_TS = `
import { WASI, Module, runWasmSync, enableCompileCache, isWasmtimeError, type RunResult } from 'node-wasmtime';
import { readFileSync } from 'node:fs';
const module: Module = new Module(readFileSync('hello.wasm'), { compiler: 'cranelift' });
const result: RunResult = runWasmSync(module, { stdout: 'pipe', limits: { timeout: 1000 } });
const code: number = result.exitCode;
const wasi = new WASI({ version: 'preview1', args: ['hello'], returnOnExit: true });
const status: { status: number } = enableCompileCache();
try { new Module('(module'); } catch (err) { if (isWasmtimeError(err, 'ERR_WASM_COMPILE')) console.log(err.code); }
console.log(code, wasi, status);
`;

function main() {
  // 1. The tarballs.
  const main = packMain();
  const platform = packPlatform();
  const mainFiles = tarList(main);
  assert.deepEqual(mainFiles.filter((file) => file.endsWith('.node')), [], 'the main tarball holds no binary');
  for (const file of ['package/index.js', 'package/lib/index.js', 'package/bin/node-wasmtime.js', 'package/scripts/install.js',
    'package/Cargo.toml', 'package/Cargo.lock', 'package/src/lib.rs']) {
    assert.ok(mainFiles.includes(file), `the main tarball holds ${file}`);
  }
  assert.deepEqual(tarList(platform).filter((file) => file.endsWith('.node')), [`package/${ADDON}`],
    'the platform tarball holds exactly one binary');
  const sizes = [main, platform].map((file) => `${path.basename(file)} ${(fs.statSync(file).size / 1e6).toFixed(1)} MB`);
  console.log(`packed: ${sizes.join(', ')}`);

  // 2. Installed from the tarballs, no cargo on PATH.
  const noCargo = { ...process.env, PATH: pathWithoutCargo() };
  delete noCargo.CARGO_TARGET_DIR;
  const { dir } = project('consumer', [main, platform], noCargo);
  const installed = path.join(dir, 'node_modules', 'node-wasmtime');
  assert.ok(!fs.existsSync(path.join(installed, 'target')), 'nothing was built');
  assert.deepEqual(fs.readdirSync(installed).filter((file) => file.endsWith('.node')), [], 'the binary is the platform package\'s');
  fs.copyFileSync(path.join(root, '__test__', 'fixtures', 'hello.wasm'), path.join(dir, 'hello.wasm'));
  const names = Object.keys(require(path.join(root, 'lib', 'index.js')));
  assert.equal(run(process.execPath, ['-e', CONSUMER_CJS, JSON.stringify(names)], { cwd: dir, env: noCargo }).stdout, 'hello world\n');
  fs.writeFileSync(path.join(dir, 'consumer.mjs'), CONSUMER_ESM);
  assert.equal(run(process.execPath, ['consumer.mjs', JSON.stringify(names)], { cwd: dir, env: noCargo }).stdout, 'hello world\n');
  const cli = run(path.join(dir, 'node_modules', '.bin', 'node-wasmtime'), ['run', '--no-cache', 'hello.wasm'], { cwd: dir, env: noCargo });
  assert.deepEqual([cli.stdout, cli.stderr], ['hello world\n', '']);
  fs.writeFileSync(path.join(dir, 'consumer.ts'), CONSUMER_TS);
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022',
      types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')],
    },
    files: ['consumer.ts'],
  }));
  run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: dir, env: noCargo });
  console.log('installed with the prebuilt package, no cargo: require, import, a run, the CLI, tsc --strict: ok');

  // 3. The source fallback, from the main tarball alone.
  const refused = project('no-cargo', [main], noCargo, { ok: false }).result;
  assert.notEqual(refused.status, 0, 'no prebuilt package and no cargo: the install fails');
  assert.match(refused.stderr, new RegExp(`node-wasmtime: the prebuilt package node-wasmtime-${PLATFORM} is not installed or does ` +
    'not load \\(.*\\), and cargo is not on PATH to build the addon from source\\. Install Rust \\(https://rustup\\.rs\\)'));
  const source = project('from-source', [main], process.env);
  const built = path.join(source.dir, 'node_modules', 'node-wasmtime', ADDON);
  assert.ok(fs.existsSync(built), `the install built ${ADDON}`);
  assert.ok(!fs.existsSync(path.join(source.dir, 'node_modules', 'node-wasmtime', 'target')), 'and left no target directory');
  fs.copyFileSync(path.join(root, '__test__', 'fixtures', 'hello.wasm'), path.join(source.dir, 'hello.wasm'));
  assert.equal(run(process.execPath, ['-e', CONSUMER_CJS, JSON.stringify(names)], { cwd: source.dir }).stdout, 'hello world\n');
  console.log('installed from the main tarball alone: built from source with cargo, runs; without cargo, one clear error: ok');
}

try {
  main();
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}
