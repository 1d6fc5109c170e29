// Sandbox tests: a guest given one preopened directory cannot reach anything outside it,
// whether by `..`, absolute paths, or symlinks planted inside it, for reading or writing,
// and preopens that cannot be opened fail like node:wasi's (`UVWASI_*` codes).
//
// Layout of every tree (a fresh one per test):
//   ROOT/outside/secret.txt            "TOP SECRET\n"; must never be read, changed or removed
//   ROOT/sandbox/                      preopened as /sandbox
//     inside.txt                       "inside\n"
//     link-ok -> inside.txt            stays inside
//     sub/link-in -> ../inside.txt     stays inside
//     link-rel -> ../outside/secret.txt
//     link-abs -> ROOT/outside/secret.txt
//     sub/link-up -> ../../outside/secret.txt
//     link-outside-dir -> ../outside
//     link-root -> /
//     dangle-rel -> ../outside/created-rel.txt   (missing; writing must not create it)
//     dangle-abs -> ROOT/outside/created-abs.txt
// Every escape must fail with a capability refusal: 76 ENOTCAPABLE (what WASI, uvwasi and
// wasi-libc use) or 63 EPERM (what wasmtime reports for a path that would leave the
// directory) -- not 44 ENOENT, which would also be the answer for a missing file.
// Each escape also runs under node:wasi, whose outcome is printed as a test diagnostic and
// not asserted: node:wasi is no sandbox (it follows symlinks to outside directories).
// Every test runs through both runWasmSync and the WASI class, each on its own tree.
//
// Not tested: guest fd_close(1) closing the host's stdout (needs a fixture that does it).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lib, fixture, fixturePath, tempDir, NodeWASI, snapshot } from './helpers.mjs';

const { WASI, runWasm, runWasmSync } = lib;


const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'wasi-child.mjs');
const SECRET = 'TOP SECRET\n';
const REFUSALS = new Map([[63, 'EPERM'], [76, 'ENOTCAPABLE']]);
// One temp dir (removed at exit) holding every tree and result file of this file.
const scratch = tempDir('nwt-sandbox-');
let resultCounter = 0;

function makeTree() {
  const root = fs.mkdtempSync(path.join(scratch, 'tree-'));
  const sandbox = path.join(root, 'sandbox');
  const outside = path.join(root, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.txt'), SECRET);
  fs.mkdirSync(sandbox);
  fs.writeFileSync(path.join(sandbox, 'inside.txt'), 'inside\n');
  fs.mkdirSync(path.join(sandbox, 'sub'));
  const links = {
    'link-ok': 'inside.txt',
    'sub/link-in': '../inside.txt',
    'link-rel': '../outside/secret.txt',
    'link-abs': path.join(outside, 'secret.txt'),
    'sub/link-up': '../../outside/secret.txt',
    'link-outside-dir': '../outside',
    'link-root': '/',
    'dangle-rel': '../outside/created-rel.txt',
    'dangle-abs': path.join(outside, 'created-abs.txt'),
  };
  for (const [name, target] of Object.entries(links)) fs.symlinkSync(target, path.join(sandbox, name));
  return { root, sandbox, outside, secretPath: path.join(outside, 'secret.txt') };
}


/** Asserts nothing outside the sandbox changed: ROOT holds only the two dirs, outside only the secret. */
function assertOutsideUntouched(tree, label) {
  assert.deepEqual(fs.readdirSync(tree.root).sort(), ['outside', 'sandbox'], `${label}: ROOT entries`);
  assert.deepEqual(snapshot(tree.outside), { 'secret.txt': { file: SECRET } }, `${label}: outside/`);
}

/** fs.wasm run by one of our entry points; stdout/stderr as latin1 strings (byte-exact). */
const OUR_WAYS = {
  runWasmSync(args, preopens) {
    const { exitCode, stdout, stderr } = runWasmSync(fixture('fs.wasm'), { args: ['fs', ...args], preopens });
    return { exitCode, stdout: stdout.toString('latin1'), stderr: stderr.toString('latin1') };
  },
  'WASI class'(args, preopens) {
    const wasi = new WASI({
      version: 'preview1', args: ['fs', ...args], preopens, stdin: '', stdout: 'pipe', stderr: 'pipe',
    });
    const exitCode = wasi.start(wasi.instantiate(fixture('fs.wasm')));
    return { exitCode, stdout: wasi.stdout.toString('latin1'), stderr: wasi.stderr.toString('latin1') };
  },
};

/** fs.wasm under node:wasi in a child process (for the record: node:wasi is no sandbox). */
function runNode(args, preopens) {
  const resultFile = path.join(scratch, `result-${++resultCounter}.json`);
  const config = { impl: 'node', wasm: fixturePath('fs.wasm'), args: ['fs', ...args], env: {}, preopens, resultFile };
  const child = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', CHILD, JSON.stringify(config)], { input: '' });
  if (child.error) throw child.error;
  return { status: child.status, stdout: child.stdout.toString('latin1'), stderr: child.stderr.toString('latin1') };
}

/** The errno fs.wasm reported, or null when it printed something else (e.g. "ok"). */
function errnoOf(stdout) {
  const match = /^error errno=(\d+) \(.*\)\n$/.exec(stdout);
  return match ? Number(match[1]) : null;
}

function assertRefused(result, label) {
  const errno = errnoOf(result.stdout);
  assert.ok(errno !== null, `${label}: expected an error line, got ${JSON.stringify(result.stdout)}`);
  assert.ok(REFUSALS.has(errno), `${label}: errno ${errno} is not a capability refusal (${[...REFUSALS].map(([n, s]) => `${n} ${s}`).join(', ')})`);
  assert.equal(result.stderr, '', `${label}: stderr`);
  assert.ok(!result.stdout.includes('SECRET'), `${label}: the secret leaked`);
  return errno;
}

function diagnoseNode(t, args, preopens, ourErrno) {
  const node = runNode(args, preopens);
  const nodeErrno = errnoOf(node.stdout);
  t.diagnostic(`errno ours=${ourErrno} node:wasi=${nodeErrno ?? JSON.stringify(node.stdout)}`);
}

// --- controls: what is allowed works, so refusals below are not the fixture failing ----

describe('controls', () => {
  for (const [way, run] of Object.entries(OUR_WAYS)) {
    test(`${way}: files and symlinks that stay inside the sandbox can be read`, () => {
      const tree = makeTree();
      const preopens = { '/sandbox': tree.sandbox };
      for (const p of ['/sandbox/inside.txt', '/sandbox/link-ok', '/sandbox/sub/link-in', '/sandbox/sub/../inside.txt', 'sandbox/inside.txt']) {
        assert.deepEqual(run(['open', p], preopens), { exitCode: 0, stdout: 'ok\n', stderr: '' }, `open ${p}`);
        assert.deepEqual(run(['read', p], preopens), { exitCode: 0, stdout: 'inside\n', stderr: '' }, `read ${p}`);
      }
      assert.deepEqual(run(['open', '/sandbox/missing.txt'], preopens),
        { exitCode: 0, stdout: 'error errno=44 (No such file or directory)\n', stderr: '' }, 'a missing file is ENOENT');
      assert.deepEqual(run(['write', '/sandbox/new.txt', 'fine'], preopens),
        { exitCode: 0, stdout: 'wrote 4\n', stderr: '' }, 'writing inside');
      assert.equal(fs.readFileSync(path.join(tree.sandbox, 'new.txt'), 'latin1'), 'fine');
      assertOutsideUntouched(tree, 'controls');
    });

    test(`${way}: the secret is readable when its directory is preopened`, () => {
      const tree = makeTree();
      assert.deepEqual(run(['read', '/outside/secret.txt'], { '/outside': tree.outside }),
        { exitCode: 0, stdout: SECRET, stderr: '' });
    });
  }
});

// --- reading out of the sandbox ---------------------------------------------------------

// [path, where the refusal happens]: 'host' paths reach wasmtime through the /sandbox
// preopen; 'guest' paths match no preopen, so wasi-libc refuses them itself.
const READ_ESCAPES = [
  ['/sandbox/../outside/secret.txt', 'host'],
  ['sandbox/../outside/secret.txt', 'host'],
  ['/sandbox/sub/../../outside/secret.txt', 'host'],
  ['/sandbox/../../../../../../../../etc/passwd', 'host'],
  ['/sandbox/link-rel', 'host'],
  ['/sandbox/link-abs', 'host'],
  ['/sandbox/sub/link-up', 'host'],
  ['/sandbox/link-outside-dir/secret.txt', 'host'],
  ['/sandbox/link-root/etc/passwd', 'host'],
  ['../outside/secret.txt', 'guest'],
  [(tree) => tree.secretPath, 'guest'],
  ['/etc/passwd', 'guest'],
  ['/outside/secret.txt', 'guest'],
];

describe('reading outside the sandbox is refused', () => {
  for (const [p, where] of READ_ESCAPES) {
    const label = typeof p === 'function' ? '<absolute host path of the secret>' : p;
    test(`open and read ${label} (${where})`, (t) => {
      const errnos = {};
      for (const [way, run] of Object.entries(OUR_WAYS)) {
        const tree = makeTree();
        const guestPath = typeof p === 'function' ? p(tree) : p;
        const preopens = { '/sandbox': tree.sandbox };
        const open = run(['open', guestPath], preopens);
        assert.equal(open.exitCode, 0, `${way}: open: exit code`);
        errnos[way] = assertRefused(open, `${way}: open ${guestPath}`);
        const read = run(['read', guestPath], preopens);
        assert.equal(read.exitCode, 1, `${way}: read: exit code`);
        assert.equal(assertRefused(read, `${way}: read ${guestPath}`), errnos[way], `${way}: read and open errnos`);
        assertOutsideUntouched(tree, `${way}: ${guestPath}`);
      }
      assert.equal(errnos['WASI class'], errnos.runWasmSync, 'same errno from both entry points');
      const nodeTree = makeTree();
      const nodePath = typeof p === 'function' ? p(nodeTree) : p;
      diagnoseNode(t, ['open', nodePath], { '/sandbox': nodeTree.sandbox }, errnos.runWasmSync);
    });
  }
});

// --- writing out of the sandbox ---------------------------------------------------------

// [fs.wasm arguments, exit code of a refused attempt]
const WRITE_ESCAPES = [
  [['write', '/sandbox/../outside/new.txt', 'pwned'], 1],
  [['write', '/sandbox/../outside/secret.txt', 'pwned'], 1],
  [['write', '/sandbox/link-rel', 'pwned'], 1],
  [['write', '/sandbox/link-abs', 'pwned'], 1],
  [['write', '/sandbox/sub/link-up', 'pwned'], 1],
  [['write', '/sandbox/dangle-rel', 'pwned'], 1],
  [['write', '/sandbox/dangle-abs', 'pwned'], 1],
  [['write', '/sandbox/link-outside-dir/new.txt', 'pwned'], 1],
  [['write', (tree) => path.join(tree.outside, 'new.txt'), 'pwned'], 1],
  [['mkdir', '/sandbox/../outside/newdir'], 0],
  [['mkdir', '/sandbox/link-outside-dir/newdir'], 0],
  [['unlink', '/sandbox/../outside/secret.txt'], 0],
  [['unlink', '/sandbox/link-outside-dir/secret.txt'], 0],
  [['symlink', 'pwned', '/sandbox/../outside/planted'], 0],
];

const fill = (template, tree) => template.map((a) => (typeof a === 'function' ? a(tree) : a));

describe('writing outside the sandbox is refused and changes nothing on disk', () => {
  for (const [template, exitCode] of WRITE_ESCAPES) {
    const label = template.map((a) => (typeof a === 'function' ? '<host path in outside/>' : a)).join(' ');
    test(label, (t) => {
      const errnos = {};
      for (const [way, run] of Object.entries(OUR_WAYS)) {
        const tree = makeTree();
        const args = fill(template, tree);
        const before = snapshot(tree.sandbox);
        const result = run(args, { '/sandbox': tree.sandbox });
        assert.equal(result.exitCode, exitCode, `${way}: exit code`);
        errnos[way] = assertRefused(result, `${way}: ${args.join(' ')}`);
        assertOutsideUntouched(tree, `${way}: ${args.join(' ')}`);
        assert.deepEqual(snapshot(tree.sandbox), before, `${way}: the sandbox is unchanged too`);
      }
      assert.equal(errnos['WASI class'], errnos.runWasmSync, 'same errno from both entry points');
      // node:wasi writes into its own tree.
      const nodeTree = makeTree();
      diagnoseNode(t, fill(template, nodeTree), { '/sandbox': nodeTree.sandbox }, errnos.runWasmSync);
    });
  }
});

describe('a symlink the guest plants inside cannot be followed out', () => {
  const targets = [
    ['relative target', () => '../outside/secret.txt'],
    ['absolute host target', (tree) => tree.secretPath],
    ['target under link-outside-dir', () => 'link-outside-dir/secret.txt'],
  ];
  for (const [name, target] of targets) {
    test(name, (t) => {
      const seen = {};
      for (const [way, run] of Object.entries(OUR_WAYS)) {
        const tree = makeTree();
        const preopens = { '/sandbox': tree.sandbox };
        const made = run(['symlink', target(tree), '/sandbox/planted'], preopens);
        assert.equal(made.exitCode, 0, `${way}: symlink: exit code`);
        // Making the link may itself be refused; if it is made, it must point where asked.
        let madeErrno = null;
        if (made.stdout === 'ok\n') {
          assert.equal(fs.readlinkSync(path.join(tree.sandbox, 'planted')), target(tree), `${way}: link target`);
        } else {
          madeErrno = assertRefused(made, `${way}: symlink`);
        }
        const open = run(['open', '/sandbox/planted'], preopens);
        const read = run(['read', '/sandbox/planted'], preopens);
        assert.equal(read.exitCode, 1, `${way}: read: exit code`);
        if (madeErrno === null) {
          assertRefused(open, `${way}: open through the planted link`);
          assertRefused(read, `${way}: read through the planted link`);
          const write = run(['write', '/sandbox/planted', 'pwned'], preopens);
          assert.equal(write.exitCode, 1, `${way}: write: exit code`);
          assertRefused(write, `${way}: write through the planted link`);
        } else {
          // No link was made: there is nothing to open.
          assert.equal(errnoOf(open.stdout), 44, `${way}: open of the link that was not made`);
          assert.equal(errnoOf(read.stdout), 44, `${way}: read of the link that was not made`);
        }
        assertOutsideUntouched(tree, `${way}: ${name}`);
        seen[way] = `symlink ${madeErrno ?? 'ok'}, open ${errnoOf(open.stdout)}`;
      }
      assert.equal(seen['WASI class'], seen.runWasmSync, 'same outcome from both entry points');
      const nodeTree = makeTree();
      const nodePreopens = { '/sandbox': nodeTree.sandbox };
      const nodeMade = runNode(['symlink', target(nodeTree), '/sandbox/planted'], nodePreopens);
      const nodeOpen = runNode(['open', '/sandbox/planted'], nodePreopens);
      const show = (out) => errnoOf(out) ?? JSON.stringify(out);
      t.diagnostic(`ours: ${seen.runWasmSync}; node:wasi: symlink ${show(nodeMade.stdout)}, open ${show(nodeOpen.stdout)}`);
    });
  }
});

// --- preopens that cannot be opened ---------------------------------------------------

// [name, make(dir) -> host path, expected code]; every row is first checked against node:wasi.
const BAD_PREOPENS = [
  ['a missing directory', (dir) => path.join(dir, 'missing'), 'UVWASI_ENOENT'],
  ['a path under a missing directory', (dir) => path.join(dir, 'missing', 'sub'), 'UVWASI_ENOENT'],
  ['the empty string', () => '', 'UVWASI_ENOENT'],
  ['a dangling symlink', (dir) => path.join(dir, 'dangling'), 'UVWASI_ENOENT'],
  ['a regular file', (dir) => path.join(dir, 'file.txt'), 'UVWASI_ENOTDIR'],
  ['a symlink to a regular file', (dir) => path.join(dir, 'link-to-file'), 'UVWASI_ENOTDIR'],
  ['a character device (/dev/null)', () => '/dev/null', 'UVWASI_ENOTDIR'],
  ['a regular file with a trailing slash', (dir) => path.join(dir, 'file.txt') + '/', 'UVWASI_ENOTDIR'],
  ['a path under a regular file', (dir) => path.join(dir, 'file.txt', 'sub'), 'UVWASI_ENOTDIR'],
  ['a symlink loop', (dir) => path.join(dir, 'loop1'), 'UVWASI_ELOOP'],
];

function makeBadPreopenDir() {
  const dir = fs.mkdtempSync(path.join(scratch, 'preopen-'));
  fs.writeFileSync(path.join(dir, 'file.txt'), 'x');
  fs.symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
  fs.symlinkSync(path.join(dir, 'file.txt'), path.join(dir, 'link-to-file'));
  fs.symlinkSync('loop2', path.join(dir, 'loop1'));
  fs.symlinkSync('loop1', path.join(dir, 'loop2'));
  fs.mkdirSync(path.join(dir, 'ok'));
  return dir;
}

function thrown(fn) {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected a throw');
}

async function rejected(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected a rejection');
}

describe('a preopen that cannot be opened fails like node:wasi', () => {
  for (const [name, make, code] of BAD_PREOPENS) {
    test(name, async () => {
      const dir = makeBadPreopenDir();
      const hostPath = make(dir);
      const preopens = { '/ok': path.join(dir, 'ok'), '/bad': hostPath };

      const nodeErr = thrown(() => new NodeWASI({ version: 'preview1', preopens }));
      assert.equal(nodeErr.code, code, `node:wasi's own code for ${JSON.stringify(hostPath)} (the table is wrong)`);
      assert.equal(nodeErr.syscall, 'uvwasi_init');

      const ours = {
        'new WASI': thrown(() => new WASI({ version: 'preview1', preopens })),
        runWasmSync: thrown(() => runWasmSync(fixture('hello.wasm'), { preopens })),
        runWasm: await rejected(runWasm(fixture('hello.wasm'), { preopens })),
      };
      for (const [way, err] of Object.entries(ours)) {
        assert.ok(err instanceof Error, `${way}: an Error, got ${err}`);
        assert.equal(err.code, code, `${way}: code (message: ${err.message})`);
        assert.ok(err.message.startsWith(`${code}, uvwasi_init`), `${way}: message ${JSON.stringify(err.message)}`);
        assert.ok(err.message.includes(hostPath), `${way}: message names the host path`);
      }
      for (const way of Object.keys(ours)) {
        assert.equal(ours[way].errno, nodeErr.errno, `${way}: errno`);
        assert.equal(ours[way].syscall, 'uvwasi_init', `${way}: syscall`);
      }
    });
  }
});
