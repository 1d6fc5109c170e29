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
// wasi-libc use, and Node's own WASI tests expect; node-wasmtime turns wasmtime-wasi's EPERM
// for a path that would leave the directory into it) -- not 44 ENOENT, which would also be
// the answer for a missing file.
// Each escape also runs under node:wasi, whose outcome is printed as a test diagnostic and
// not asserted: node:wasi is no sandbox (it follows symlinks to outside directories).
// Every test runs three ways, each on its own tree: runWasmSync and the WASI class (wasmtime
// runs the guest), and the V8 path, the node:wasi drop-in (`WebAssembly.instantiate(bytes,
// wasi.getImportObject())` + `wasi.start(instance)`: V8 runs the guest, wasmtime-wasi serves
// its syscalls); all three must give the same answer. On the V8 path the tests also call the
// imports by hand with raw paths, so the host's refusal is tested without wasi-libc's own
// preopen matching in between. Bad preopens fail in `new WASI`, which both WASI-class paths
// share.
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
const REFUSALS = new Map([[76, 'ENOTCAPABLE']]);
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
  async runWasmSync(args, preopens) {
    const { exitCode, stdout, stderr } = runWasmSync(fixture('fs.wasm'), { args: ['fs', ...args], preopens });
    return { exitCode, stdout: stdout.toString('latin1'), stderr: stderr.toString('latin1') };
  },
  async 'WASI class'(args, preopens) {
    const wasi = new WASI({
      version: 'preview1', args: ['fs', ...args], preopens, stdin: Buffer.alloc(0), stdout: 'pipe', stderr: 'pipe',
    });
    const exitCode = wasi.start(wasi.instantiate(fixture('fs.wasm')));
    return { exitCode, stdout: wasi.stdout.toString('latin1'), stderr: wasi.stderr.toString('latin1') };
  },
  async 'V8 path'(args, preopens) {
    const wasi = new WASI({
      version: 'preview1', args: ['fs', ...args], preopens, stdin: Buffer.alloc(0), stdout: 'pipe', stderr: 'pipe',
    });
    const { instance } = await WebAssembly.instantiate(fixture('fs.wasm'), wasi.getImportObject());
    assert.ok(instance instanceof WebAssembly.Instance, 'V8 runs the guest');
    const exitCode = wasi.start(instance);
    return { exitCode, stdout: wasi.stdout.toString('latin1'), stderr: wasi.stderr.toString('latin1') };
  },
};
const WAYS = Object.keys(OUR_WAYS);

/** Every way gave the same `seen[way]` as runWasmSync. */
function assertSameEverywhere(seen, what) {
  assert.deepEqual(Object.keys(seen), WAYS, `${what}: every way ran`);
  for (const way of WAYS) assert.deepEqual(seen[way], seen.runWasmSync, `${what}: ${way} vs runWasmSync`);
}

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
    test(`${way}: files and symlinks that stay inside the sandbox can be read`, async () => {
      const tree = makeTree();
      const preopens = { '/sandbox': tree.sandbox };
      for (const p of ['/sandbox/inside.txt', '/sandbox/link-ok', '/sandbox/sub/link-in', '/sandbox/sub/../inside.txt', 'sandbox/inside.txt']) {
        assert.deepEqual(await run(['open', p], preopens), { exitCode: 0, stdout: 'ok\n', stderr: '' }, `open ${p}`);
        assert.deepEqual(await run(['read', p], preopens), { exitCode: 0, stdout: 'inside\n', stderr: '' }, `read ${p}`);
      }
      assert.deepEqual(await run(['open', '/sandbox/missing.txt'], preopens),
        { exitCode: 0, stdout: 'error errno=44 (No such file or directory)\n', stderr: '' }, 'a missing file is ENOENT');
      assert.deepEqual(await run(['write', '/sandbox/new.txt', 'fine'], preopens),
        { exitCode: 0, stdout: 'wrote 4\n', stderr: '' }, 'writing inside');
      assert.equal(fs.readFileSync(path.join(tree.sandbox, 'new.txt'), 'latin1'), 'fine');
      assertOutsideUntouched(tree, 'controls');
    });

    test(`${way}: the secret is readable when its directory is preopened`, async () => {
      const tree = makeTree();
      assert.deepEqual(await run(['read', '/outside/secret.txt'], { '/outside': tree.outside }),
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
    test(`open and read ${label} (${where})`, async (t) => {
      const errnos = {};
      for (const [way, run] of Object.entries(OUR_WAYS)) {
        const tree = makeTree();
        const guestPath = typeof p === 'function' ? p(tree) : p;
        const preopens = { '/sandbox': tree.sandbox };
        const open = await run(['open', guestPath], preopens);
        assert.equal(open.exitCode, 0, `${way}: open: exit code`);
        errnos[way] = assertRefused(open, `${way}: open ${guestPath}`);
        const read = await run(['read', guestPath], preopens);
        assert.equal(read.exitCode, 1, `${way}: read: exit code`);
        assert.equal(assertRefused(read, `${way}: read ${guestPath}`), errnos[way], `${way}: read and open errnos`);
        assertOutsideUntouched(tree, `${way}: ${guestPath}`);
      }
      assertSameEverywhere(errnos, 'errno');
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
    test(label, async (t) => {
      const errnos = {};
      for (const [way, run] of Object.entries(OUR_WAYS)) {
        const tree = makeTree();
        const args = fill(template, tree);
        const before = snapshot(tree.sandbox);
        const result = await run(args, { '/sandbox': tree.sandbox });
        assert.equal(result.exitCode, exitCode, `${way}: exit code`);
        errnos[way] = assertRefused(result, `${way}: ${args.join(' ')}`);
        assertOutsideUntouched(tree, `${way}: ${args.join(' ')}`);
        assert.deepEqual(snapshot(tree.sandbox), before, `${way}: the sandbox is unchanged too`);
      }
      assertSameEverywhere(errnos, 'errno');
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
    test(name, async (t) => {
      const seen = {};
      for (const [way, run] of Object.entries(OUR_WAYS)) {
        const tree = makeTree();
        const preopens = { '/sandbox': tree.sandbox };
        const made = await run(['symlink', target(tree), '/sandbox/planted'], preopens);
        assert.equal(made.exitCode, 0, `${way}: symlink: exit code`);
        // Making the link may itself be refused; if it is made, it must point where asked.
        let madeErrno = null;
        if (made.stdout === 'ok\n') {
          assert.equal(fs.readlinkSync(path.join(tree.sandbox, 'planted')), target(tree), `${way}: link target`);
        } else {
          madeErrno = assertRefused(made, `${way}: symlink`);
        }
        const open = await run(['open', '/sandbox/planted'], preopens);
        const read = await run(['read', '/sandbox/planted'], preopens);
        assert.equal(read.exitCode, 1, `${way}: read: exit code`);
        if (madeErrno === null) {
          assertRefused(open, `${way}: open through the planted link`);
          assertRefused(read, `${way}: read through the planted link`);
          const write = await run(['write', '/sandbox/planted', 'pwned'], preopens);
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
      assertSameEverywhere(seen, 'outcome');
      const nodeTree = makeTree();
      const nodePreopens = { '/sandbox': nodeTree.sandbox };
      const nodeMade = runNode(['symlink', target(nodeTree), '/sandbox/planted'], nodePreopens);
      const nodeOpen = runNode(['open', '/sandbox/planted'], nodePreopens);
      const show = (out) => errnoOf(out) ?? JSON.stringify(out);
      t.diagnostic(`ours: ${seen.runWasmSync}; node:wasi: symlink ${show(nodeMade.stdout)}, open ${show(nodeOpen.stdout)}`);
    });
  }
});

// --- raw syscalls on the V8 path ---------------------------------------------------------

// On the V8 path wasiImport is a plain object any JS code can call, not only wasi-libc: a
// path wasi-libc refuses itself ('guest' rows above: absolute paths, `..` above the preopen)
// reaches wasmtime-wasi unfiltered when the imports are called by hand. Every row below is a
// call relative to the preopen's fd (3), on a memory bound with finalizeBindings.

const PREOPEN_FD = 3;
const LOOKUP_FOLLOW = 1; // lookupflags: follow a final symlink
const LOOKUP_NOFOLLOW = 0;
const O_CREAT = 1;
const O_DIRECTORY = 2;
const RIGHT_FD_READ = 2n;
const RIGHT_FD_WRITE = 64n;
const EBADF = 8;
const OUT = 32; // scratch words for results (opened fd, nread, filestat...)

/**
 * A WASI object of class `W` with /sandbox preopened at fd 3 and a fresh memory bound:
 * finalizeBindings for ours, initialize({ exports: { memory } }) for node:wasi (Node 20 has
 * no finalizeBindings). `str(s)` copies s into memory and returns [ptr, len].
 */
function rawGuest(W, tree) {
  const wasi = new W({ version: 'preview1', preopens: { '/sandbox': tree.sandbox } });
  const memory = new WebAssembly.Memory({ initial: 1 });
  if (W === WASI) wasi.finalizeBindings({ exports: {} }, { memory });
  else wasi.initialize({ exports: { memory } });
  let next = 1024;
  const str = (s) => {
    const bytes = Buffer.from(s);
    const ptr = next;
    new Uint8Array(memory.buffer).set(bytes, ptr);
    next += bytes.length + 8;
    return [ptr, bytes.length];
  };
  return { w: wasi.wasiImport, str, memory };
}

// path_open(fd, dirflags, path, path_len, oflags, rights_base, rights_inheriting, fdflags, &fd)
const openRead = (p, dirflags = LOOKUP_FOLLOW) => ({ w, str }, tree) =>
  w.path_open(PREOPEN_FD, dirflags, ...str(typeof p === 'function' ? p(tree) : p), 0, RIGHT_FD_READ, 0n, 0, OUT);
const openCreate = (p) => ({ w, str }, tree) =>
  w.path_open(PREOPEN_FD, LOOKUP_FOLLOW, ...str(typeof p === 'function' ? p(tree) : p), O_CREAT, RIGHT_FD_WRITE, 0n, 0, OUT);
const openDir = (p) => ({ w, str }) =>
  w.path_open(PREOPEN_FD, LOOKUP_FOLLOW, ...str(p), O_DIRECTORY, 0n, 0n, 0, OUT);

/** [title, (guest, tree) => errno]; every call must be refused and change nothing. */
const RAW_ESCAPES = [
  ['path_open ../outside/secret.txt', openRead('../outside/secret.txt')],
  ['path_open sub/../../outside/secret.txt', openRead('sub/../../outside/secret.txt')],
  ['path_open ../../../../../../../../etc/passwd', openRead('../../../../../../../../etc/passwd')],
  ['path_open /etc/passwd', openRead('/etc/passwd')],
  ['path_open <absolute host path of the secret>', openRead((tree) => tree.secretPath)],
  ['path_open /sandbox/inside.txt (the guest name is no path under fd 3)', openRead('/sandbox/inside.txt')],
  ['path_open link-rel (follow)', openRead('link-rel')],
  ['path_open link-abs (follow)', openRead('link-abs')],
  ['path_open sub/link-up (follow)', openRead('sub/link-up')],
  ['path_open link-outside-dir/secret.txt (nofollow: only the last component is not followed)', openRead('link-outside-dir/secret.txt', LOOKUP_NOFOLLOW)],
  ['path_open link-root/etc/passwd', openRead('link-root/etc/passwd')],
  ['path_open .. as a directory', openDir('..')],
  ['path_open / as a directory', openDir('/')],
  ['path_open link-outside-dir as a directory', openDir('link-outside-dir')],
  ['path_open O_CREAT ../outside/new.txt', openCreate('../outside/new.txt')],
  ['path_open O_CREAT <absolute host path in outside/>', openCreate((tree) => path.join(tree.outside, 'new.txt'))],
  ['path_open O_CREAT dangle-rel', openCreate('dangle-rel')],
  ['path_open O_CREAT dangle-abs', openCreate('dangle-abs')],
  ['path_open O_CREAT link-outside-dir/new.txt', openCreate('link-outside-dir/new.txt')],
  ['path_create_directory ../outside/newdir', ({ w, str }) => w.path_create_directory(PREOPEN_FD, ...str('../outside/newdir'))],
  ['path_create_directory <absolute host path>', ({ w, str }, tree) => w.path_create_directory(PREOPEN_FD, ...str(path.join(tree.outside, 'newdir')))],
  ['path_create_directory link-outside-dir/newdir', ({ w, str }) => w.path_create_directory(PREOPEN_FD, ...str('link-outside-dir/newdir'))],
  ['path_remove_directory ../outside', ({ w, str }) => w.path_remove_directory(PREOPEN_FD, ...str('../outside'))],
  ['path_unlink_file ../outside/secret.txt', ({ w, str }) => w.path_unlink_file(PREOPEN_FD, ...str('../outside/secret.txt'))],
  ['path_unlink_file <absolute host path of the secret>', ({ w, str }, tree) => w.path_unlink_file(PREOPEN_FD, ...str(tree.secretPath))],
  ['path_unlink_file link-outside-dir/secret.txt', ({ w, str }) => w.path_unlink_file(PREOPEN_FD, ...str('link-outside-dir/secret.txt'))],
  ['path_symlink x -> ../outside/planted', ({ w, str }) => w.path_symlink(...str('x'), PREOPEN_FD, ...str('../outside/planted'))],
  ['path_rename inside.txt -> ../outside/moved', ({ w, str }) => w.path_rename(PREOPEN_FD, ...str('inside.txt'), PREOPEN_FD, ...str('../outside/moved'))],
  ['path_rename ../outside/secret.txt -> stolen', ({ w, str }) => w.path_rename(PREOPEN_FD, ...str('../outside/secret.txt'), PREOPEN_FD, ...str('stolen'))],
  ['path_rename link-outside-dir/secret.txt -> stolen', ({ w, str }) => w.path_rename(PREOPEN_FD, ...str('link-outside-dir/secret.txt'), PREOPEN_FD, ...str('stolen'))],
  ['path_link ../outside/secret.txt -> hard', ({ w, str }) => w.path_link(PREOPEN_FD, LOOKUP_NOFOLLOW, ...str('../outside/secret.txt'), PREOPEN_FD, ...str('hard'))],
  ['path_link inside.txt -> ../outside/hard', ({ w, str }) => w.path_link(PREOPEN_FD, LOOKUP_NOFOLLOW, ...str('inside.txt'), PREOPEN_FD, ...str('../outside/hard'))],
  ['path_filestat_get ../outside/secret.txt', ({ w, str }) => w.path_filestat_get(PREOPEN_FD, LOOKUP_FOLLOW, ...str('../outside/secret.txt'), OUT)],
  ['path_filestat_get link-rel (follow)', ({ w, str }) => w.path_filestat_get(PREOPEN_FD, LOOKUP_FOLLOW, ...str('link-rel'), OUT)],
  ['path_filestat_get /etc/passwd', ({ w, str }) => w.path_filestat_get(PREOPEN_FD, LOOKUP_FOLLOW, ...str('/etc/passwd'), OUT)],
  // fst_flags 10 = ATIM | MTIM: set both to the epoch.
  ['path_filestat_set_times ../outside/secret.txt', ({ w, str }) => w.path_filestat_set_times(PREOPEN_FD, LOOKUP_FOLLOW, ...str('../outside/secret.txt'), 0n, 0n, 10)],
  ['path_filestat_set_times link-rel (follow)', ({ w, str }) => w.path_filestat_set_times(PREOPEN_FD, LOOKUP_FOLLOW, ...str('link-rel'), 0n, 0n, 10)],
];

describe('V8 path: imports called by hand with raw paths are refused and change nothing', () => {
  test('controls: the same calls inside the sandbox work', () => {
    const tree = makeTree();
    const guest = rawGuest(WASI, tree);
    const { w, str, memory } = guest;
    const view = () => new DataView(memory.buffer);
    for (const p of ['inside.txt', 'sub/../inside.txt', 'link-ok', 'sub/link-in']) {
      assert.equal(openRead(p)(guest, tree), 0, `path_open ${p}`);
      const fd = view().getUint32(OUT, true);
      // The fd the escape rows check is not handed out: it is the one an open gets.
      assert.equal(fd, PREOPEN_FD + 1, `fd of ${p}`);
      assert.equal(w.fd_fdstat_get(fd, OUT), 0, `fd_fdstat_get of ${p}`);
      // iovec { buf: 512, len: 64 } at 256; nread at 264.
      view().setUint32(256, 512, true);
      view().setUint32(260, 64, true);
      assert.equal(w.fd_read(fd, 256, 1, 264), 0, `fd_read ${p}`);
      const nread = view().getUint32(264, true);
      assert.equal(Buffer.from(memory.buffer, 512, nread).toString('latin1'), 'inside\n', `contents of ${p}`);
      assert.equal(w.fd_close(fd), 0);
    }
    assert.equal(openRead('missing.txt')(guest, tree), 44, 'a missing file is ENOENT');
    assert.equal(openDir('sub')(guest, tree), 0, 'path_open sub as a directory');
    assert.equal(w.fd_close(view().getUint32(OUT, true)), 0);
    assert.equal(openCreate('new.txt')(guest, tree), 0, 'path_open O_CREAT new.txt');
    assert.equal(w.fd_close(view().getUint32(OUT, true)), 0);
    assert.equal(w.path_create_directory(PREOPEN_FD, ...str('newdir')), 0, 'path_create_directory');
    assert.equal(w.path_rename(PREOPEN_FD, ...str('new.txt'), PREOPEN_FD, ...str('newdir/moved.txt')), 0, 'path_rename');
    assert.equal(w.path_filestat_get(PREOPEN_FD, LOOKUP_FOLLOW, ...str('link-ok'), OUT), 0, 'path_filestat_get');
    assert.equal(view().getBigUint64(OUT + 32, true), 7n, 'filestat size of inside.txt through link-ok');
    assert.deepEqual(fs.readdirSync(path.join(tree.sandbox, 'newdir')), ['moved.txt']);
    assertOutsideUntouched(tree, 'raw controls');
  });

  for (const [title, call] of RAW_ESCAPES) {
    test(title, (t) => {
      const tree = makeTree();
      const before = snapshot(tree.sandbox);
      // Times and link count of the secret, taken before anything of ours reads it (a read
      // moves a fresh file's atime under relatime), so a guest read or utimes shows up.
      const times = (st) => ({ atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, nlink: st.nlink });
      const secretBefore = times(fs.statSync(tree.secretPath));
      const guest = rawGuest(WASI, tree);
      const errno = call(guest, tree);
      assert.deepEqual(times(fs.statSync(tree.secretPath)), secretBefore, 'the secret\'s times and link count');
      assert.ok(REFUSALS.has(errno), `errno ${errno} is not a capability refusal (${[...REFUSALS].map(([n, s]) => `${n} ${s}`).join(', ')})`);
      // No fd was handed out: the preopen is still the last one.
      assert.equal(guest.w.fd_fdstat_get(PREOPEN_FD + 1, OUT), EBADF, 'no new fd');
      assertOutsideUntouched(tree, title);
      assert.deepEqual(snapshot(tree.sandbox), before, 'the sandbox is unchanged too');
      // The same call under node:wasi, on its own tree, for the record.
      const nodeTree = makeTree();
      let nodeErrno;
      try {
        nodeErrno = call(rawGuest(NodeWASI, nodeTree), nodeTree);
      } catch (err) {
        nodeErrno = `threw ${err.code ?? err.message}`;
      }
      t.diagnostic(`errno ours=${errno} node:wasi=${nodeErrno}`);
    });
  }
});

// --- the OS's own EPERM is not an escape --------------------------------------------------

// A hard link to a directory is refused by the OS itself (link(2) says EPERM): that is no
// escape, so it stays EPERM (63), as under node:wasi, while an escaping link reads 76. The
// guest is a few lines of WAT that calls path_link on the preopen (fd 3) and exits with its
// errno, run by wasmtime (runWasmSync, the WASI class); the V8 path calls the import by hand.
const EPERM = 63;
const linkGuest = (from, to) => `(module
  (import "wasi_snapshot_preview1" "path_link" (func $link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "${from}")
  (data (i32.const 256) "${to}")
  (func (export "_start")
    (call $exit (call $link (i32.const 3) (i32.const 0) (i32.const 16) (i32.const ${from.length})
                            (i32.const 3) (i32.const 256) (i32.const ${to.length})))))`;

describe('a hard link to a directory is the OS\'s refusal (EPERM), not an escape', () => {
  const cases = [['sub', 'hard', EPERM], ['../outside/secret.txt', 'hard', 76], ['inside.txt', '../outside/hard', 76]];
  for (const [from, to, expected] of cases) {
    test(`path_link ${from} -> ${to}: ${expected}`, () => {
      const seen = {};
      let tree = makeTree();
      seen.runWasmSync = runWasmSync(linkGuest(from, to), { preopens: { '/sandbox': tree.sandbox } }).exitCode;
      assertOutsideUntouched(tree, 'runWasmSync');
      tree = makeTree();
      const wasi = new WASI({ version: 'preview1', preopens: { '/sandbox': tree.sandbox }, returnOnExit: true });
      seen['WASI class'] = wasi.start(wasi.instantiate(linkGuest(from, to)));
      tree = makeTree();
      const { w, str } = rawGuest(WASI, tree);
      seen['V8 path'] = w.path_link(PREOPEN_FD, LOOKUP_NOFOLLOW, ...str(from), PREOPEN_FD, ...str(to));
      assert.deepEqual(seen, { runWasmSync: expected, 'WASI class': expected, 'V8 path': expected });
      assert.equal(fs.existsSync(path.join(tree.sandbox, 'hard')), false, 'no link was made');
      if (expected === EPERM) {
        const nodeTree = makeTree();
        const node = rawGuest(NodeWASI, nodeTree);
        assert.equal(node.w.path_link(PREOPEN_FD, LOOKUP_NOFOLLOW, ...node.str(from), PREOPEN_FD, ...node.str(to)), EPERM, 'node:wasi');
      }
    });
  }
});

test('a wasi_unstable guest\'s escape is ENOTCAPABLE too, and its hard link to a directory EPERM', () => {
  // path_open(3, follow, path, len, oflags 0, rights fd_read, 0, fdflags 0, &fd at 512) under
  // the older ABI (same arguments as preview1's); the guest exits with the errno.
  const open = (p) => `(module
    (import "wasi_unstable" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
    (import "wasi_unstable" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "${p}")
    (func (export "_start")
      (call $exit (call $open (i32.const 3) (i32.const 1) (i32.const 16) (i32.const ${p.length})
                              (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 512)))))`;
  const tree = makeTree();
  const preopens = { '/sandbox': tree.sandbox };
  for (const escape of ['../outside/secret.txt', 'link-rel', 'link-outside-dir/secret.txt']) {
    assert.equal(runWasmSync(open(escape), { preopens }).exitCode, 76, escape);
  }
  assert.equal(runWasmSync(open('inside.txt'), { preopens }).exitCode, 0, 'inside is fine');
  const unstableLink = linkGuest('sub', 'hard').replaceAll('wasi_snapshot_preview1', 'wasi_unstable');
  assert.equal(runWasmSync(unstableLink, { preopens }).exitCode, EPERM);
  const wasi = new WASI({ version: 'unstable', preopens });
  assert.equal(wasi.start(wasi.instantiate(open('../outside/secret.txt'))), 76, 'the WASI class');
  assertOutsideUntouched(tree, 'wasi_unstable');
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
