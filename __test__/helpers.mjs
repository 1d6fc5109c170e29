// Shared test helpers: fixture paths that fail loudly when missing, temp dirs, Node's own
// node:wasi (for differential tests), error-code assertions and directory snapshots.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
export const lib = require('../lib/index.js');
export const fixturesDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** Absolute path of a committed fixture; throws if it is missing. */
export function fixturePath(name) {
  const file = path.join(fixturesDir, name);
  if (!fs.existsSync(file)) throw new Error(`fixture missing: ${file} (run npm run fixtures)`);
  return file;
}

/** The bytes of a committed fixture; throws if it is missing. */
export function fixture(name) {
  return fs.readFileSync(fixturePath(name));
}

/** A fresh empty directory, removed when the process exits. */
export function tempDir(prefix = 'nwt-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Node's own `node:wasi` WASI class, loaded without its ExperimentalWarning. */
export const NodeWASI = await (async () => {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (warning, ...rest) {
    if (String(warning).startsWith('WASI ')) return undefined;
    return Reflect.apply(emitWarning, this, [warning, ...rest]);
  };
  try {
    return (await import('node:wasi')).WASI;
  } finally {
    process.emitWarning = emitWarning;
  }
})();

/** An `assert.throws` validator: an instance of `Class` whose `code` is `code`. */
export function assertCode(code, Class = Error) {
  return (err) => {
    assert.ok(err instanceof Class, `expected ${Class.name}, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.code, code);
    return true;
  };
}

/** A directory tree as plain data: files (contents as latin1), symlinks (targets), subdirs. */
export function snapshot(dir) {
  const out = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    const stat = fs.lstatSync(full);
    if (stat.isSymbolicLink()) out[name] = { symlink: fs.readlinkSync(full) };
    else if (stat.isDirectory()) out[name] = { dir: snapshot(full) };
    else if (stat.isFile()) out[name] = { file: fs.readFileSync(full, 'latin1') };
    else out[name] = { other: stat.mode };
  }
  return out;
}
