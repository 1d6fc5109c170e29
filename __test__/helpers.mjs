// Shared test helpers: fixture paths that fail loudly when missing, temp dirs, and running a
// fixture under Node's own node:wasi for differential tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

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
