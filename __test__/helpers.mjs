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

/** The lines node:wasi (and the first `new WASI` here) print to stderr, as a RegExp source. */
export const EXPERIMENTAL_WARNING = String.raw`\(node:\d+\) ExperimentalWarning: WASI is an experimental feature and might change at any time\n\(Use \`node --trace-warnings \.\.\.\` to show where the warning was created\)\n`;

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

const EMPTY = Buffer.alloc(0);

/** The report echo.c writes to stdout, built from its documented line format. */
export function echoReport({ args, env = [], stdin = EMPTY, preopens = [] }) {
  const lines = [`argc=${args.length}\n`];
  args.forEach((a, i) => lines.push(`argv[${i}]=${a}\n`));
  env.forEach((e, i) => lines.push(`env[${i}]=${e}\n`));
  lines.push('cwd=/\n');
  const stdinBytes = Buffer.from(stdin);
  const head = Buffer.from(lines.join('') + `stdin.len=${stdinBytes.length}\nstdin=`);
  const tail = [];
  tail.push('\n');
  preopens.forEach(({ fd, name, entries }) => {
    tail.push(`preopen[${fd}]=${name}\n`);
    for (const e of entries) tail.push(`preopen[${fd}].entry=${e}\n`);
  });
  tail.push('done\n');
  return Buffer.concat([head, stdinBytes, Buffer.from(tail.join(''))]);
}

/** echo.c's stderr: its report with every line prefixed "err:". */
export function errPrefixed(report) {
  const parts = [];
  let start = 0;
  for (let i = 0; i < report.length; i++) {
    if (report[i] === 0x0a) {
      parts.push(Buffer.from('err:'), report.subarray(start, i + 1));
      start = i + 1;
    }
  }
  if (start < report.length) parts.push(Buffer.from('err:'), report.subarray(start));
  return Buffer.concat(parts);
}

/**
 * Core WAT fields of a memory `mem` and a bump allocator `realloc` (canonical ABI signature),
 * for component WAT: inside a core module whose strings and lists a component lifts or lowers.
 */
export const MEMORY_AND_REALLOC_WAT = `
    (memory (export "mem") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (local.get $p))`;

/** WAT of a command that writes "start\n" to stdout, then loops forever (for timeouts and aborts). */
export const ENDLESS_WAT = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 8) "\\10\\00\\00\\00\\06\\00\\00\\00")
  (data (i32.const 16) "start\\n")
  (func (export "peek") (result i32) (i32.const 7))
  (func (export "_start")
    (drop (call $write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 0)))
    (loop $forever (br $forever))))`;
