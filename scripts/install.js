'use strict';

// `npm install` of the published package: nothing to do when the prebuilt binary for this
// platform loads (its package, `node-wasmtime-<platform>`, is one of the optionalDependencies
// npm picks by os, cpu and libc, as napi-rs packages do). Otherwise it builds the addon from
// the Rust sources the package carries, when `cargo` is on PATH, and else fails with one
// message that names the platform and what to install. In a clone of the repository it does
// nothing: there `prepare` builds (napi build).

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { hostTriple } = require('./host-triple.js');

const root = path.join(__dirname, '..');
const { napi } = require(path.join(root, 'package.json'));

/** napi-rs's name for this platform, as index.js looks for it: linux-x64-gnu, darwin-arm64, ... */
function platformName() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const glibc = process.report.getReport().header.glibcVersionRuntime;
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** The platforms a prebuilt package exists for, from package.json's napi.targets. */
function prebuiltPlatforms() {
  const names = { 'x86_64': 'x64', aarch64: 'arm64' };
  return napi.targets.map((triple) => {
    const [cpu, , os, abi] = triple.split('-');
    const arch = names[cpu] ?? cpu;
    if (os === 'darwin') return `darwin-${arch}`;
    if (os === 'windows') return `win32-${arch}-msvc`;
    return `linux-${arch}-${abi}`;
  });
}

/** Why the binding does not load in a fresh process, or null when it does. */
function bindingLoadError() {
  const result = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(root, 'index.js'))})`], {
    encoding: 'utf8',
  });
  if (result.status === 0) return null;
  const lines = `${result.stderr}`.split('\n');
  return lines.find((line) => /^\s*(Error|cause):/.test(line))?.trim() ?? `exit ${result.status}`;
}

function cargoVersion() {
  const result = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : null;
}

function fail(message) {
  console.error(`node-wasmtime: ${message}`);
  process.exit(1);
}

/**
 * `cargo build --release` of the addon, for the host triple as napi build builds it (so that
 * a CARGO_TARGET_DIR shared with a napi build reuses its compiled dependencies), copied to
 * where index.js looks first. A target directory made here (no CARGO_TARGET_DIR) is removed
 * afterwards: it holds gigabytes nobody needs once the addon is copied out.
 */
function buildFromSource(platform) {
  const ownTargetDir = process.env.CARGO_TARGET_DIR === undefined;
  const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(root, 'target');
  let triple;
  try {
    triple = hostTriple();
  } catch (err) {
    fail(err.message);
  }
  const built = spawnSync('cargo', ['build', '--release', '--lib', '--locked', '--target', triple], {
    cwd: root, stdio: 'inherit', env: { ...process.env, CARGO_TARGET_DIR: targetDir },
  });
  const library = { win32: 'node_wasmtime.dll', darwin: 'libnode_wasmtime.dylib' }[process.platform] ?? 'libnode_wasmtime.so';
  const ok = !built.error && built.status === 0;
  if (ok) fs.copyFileSync(path.join(targetDir, triple, 'release', library), path.join(root, `${napi.binaryName}.${platform}.node`));
  if (ownTargetDir) fs.rmSync(targetDir, { recursive: true, force: true });
  if (!ok) fail(`cargo build failed (${built.error?.message ?? `exit ${built.status}`}); see its output above`);
}

function main() {
  // A clone (or a package being developed in place): `prepare` builds with napi build.
  if (fs.existsSync(path.join(root, '.git')) || process.env.INIT_CWD === root) return;
  const loadError = bindingLoadError();
  if (loadError === null) return;
  const platform = platformName();
  const cargo = cargoVersion();
  const prebuilt = prebuiltPlatforms();
  const why = prebuilt.includes(platform)
    ? `the prebuilt package node-wasmtime-${platform} is not installed or does not load (${loadError})`
    : `there is no prebuilt package for ${platform} (there are for ${prebuilt.join(', ')})`;
  if (!cargo) {
    fail(`${why}, and cargo is not on PATH to build the addon from source. Install Rust ` +
         '(https://rustup.rs), then install node-wasmtime again' +
         (prebuilt.includes(platform) ? '; or install it without omitting optional dependencies ' +
          '(no --no-optional or --omit=optional), which is how npm gets the prebuilt package.' : '.'));
  }
  console.error(`node-wasmtime: ${why}; building it from source with ${cargo} (a clean build of wasmtime takes 10-15 minutes)`);
  buildFromSource(platform);
  const afterBuild = bindingLoadError();
  if (afterBuild !== null) fail(`the addon built from source does not load: ${afterBuild}`);
}

main();
