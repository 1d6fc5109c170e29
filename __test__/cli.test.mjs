// The command line, bin/node-wasmtime.js, run as a child process: exact stdout bytes, exit
// codes (guest codes modulo 256, 134 on a trap, 1 on errors, 2 without arguments), --dir
// mappings, --env, guest arguments after FILE, and its error messages.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixturePath, fixturesDir } from './helpers.mjs';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'node-wasmtime.js');

/** Runs the CLI with `args`; stdin is `input` (empty by default). */
function run(args, { input = '', cwd } = {}) {
  const r = spawnSync(process.execPath, [cli, ...args], { input, cwd, timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

test('runs hello.wasm: exact stdout, empty stderr, exit 0', () => {
  const r = run(['run', fixturePath('hello.wasm')]);
  assert.deepEqual(r, { status: 0, stdout: 'hello world\n', stderr: '' });
});

test('the file is executable and runs through its shebang', () => {
  fs.accessSync(cli, fs.constants.X_OK);
  const r = spawnSync(cli, ['run', fixturePath('hello.wasm')]);
  assert.equal(r.status, 0);
  assert.equal(r.stdout.toString(), 'hello world\n');
});

for (const [code, status] of [['0', 0], ['3', 3], ['200', 200], ['-1', 255], ['256', 0]]) {
  test(`exit(${code}) exits ${status}`, () => {
    const r = run(['run', fixturePath('exitcode.wasm'), code]);
    assert.equal(r.status, status);
    assert.equal(r.stdout, `exiting with ${code}\n`);
    assert.equal(r.stderr, '');
  });
}

test('proc_exit and return from main also set the exit code', () => {
  assert.equal(run(['run', fixturePath('exitcode.wasm'), '7', 'proc_exit']).status, 7);
  assert.equal(run(['run', fixturePath('exitcode.wasm'), '9', 'return']).status, 9);
});

test('--dir HOST::GUEST maps a host directory to a guest path', () => {
  const expected = fs.readFileSync(fixturePath('hello.c'), 'utf8');
  for (const dirArgs of [['--dir', `${fixturesDir}::/data`], [`--dir=${fixturesDir}::/data`]]) {
    const r = run(['run', ...dirArgs, fixturePath('fs.wasm'), 'read', '/data/hello.c']);
    assert.deepEqual(r, { status: 0, stdout: expected, stderr: '' });
  }
});

test('a bare --dir HOST maps to the same path in the guest', () => {
  const expected = fs.readFileSync(fixturePath('hello.c'), 'utf8');
  const r = run(['run', '--dir', fixturesDir, fixturePath('fs.wasm'), 'read', fixturePath('hello.c')]);
  assert.deepEqual(r, { status: 0, stdout: expected, stderr: '' });
  const rel = run(['run', '--dir', '.', 'fs.wasm', 'read', 'hello.c'], { cwd: fixturesDir });
  assert.deepEqual(rel, { status: 0, stdout: expected, stderr: '' });
});

test('without --dir the guest cannot open host files', () => {
  const r = run(['run', fixturePath('fs.wasm'), 'read', fixturePath('hello.c')]);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^error errno=\d+/);
});

test('--env reaches the guest, argv[0] is FILE as given, later arguments go to the guest', () => {
  const r = run(['run', '--env', 'A=1', '--env=B=x=y', 'echo.wasm', 'x', '--env', 'C=2', '-h'],
                { cwd: fixturesDir, input: 'in' });
  assert.equal(r.status, 0);
  assert.equal(r.stdout, [
    'argc=5', 'argv[0]=echo.wasm', 'argv[1]=x', 'argv[2]=--env', 'argv[3]=C=2', 'argv[4]=-h',
    'env[0]=A=1', 'env[1]=B=x=y', 'cwd=/', 'stdin.len=2', 'stdin=in', 'done', '',
  ].join('\n'));
  assert.equal(r.stderr, r.stdout.replace(/^(?=.)/gm, 'err:'));
});

test('a bare --env NAME passes the host value through', () => {
  const r = spawnSync(process.execPath, [cli, 'run', '--env', 'NWT_CLI_TEST', fixturePath('echo.wasm')],
                      { env: { ...process.env, NWT_CLI_TEST: 'v a l' }, input: '' });
  assert.equal(r.status, 0);
  assert.match(r.stdout.toString(), /^env\[0\]=NWT_CLI_TEST=v a l$/m);
});

test('`--` ends the options', () => {
  const r = run(['run', '--', fixturePath('exitcode.wasm'), '5']);
  assert.equal(r.status, 5);
});

test('a trap prints the trap with its backtrace and exits 134', () => {
  const r = run(['run', fixturePath('trap.wasm')]);
  assert.equal(r.status, 134);
  assert.equal(r.stdout, 'before trap\n');
  assert.match(r.stderr, /^node-wasmtime: wasm trap: wasm `unreachable` instruction executed\n/);
  assert.match(r.stderr, /crash_here/);
});

test('--help prints the usage to stdout and exits 0; no arguments exits 2', () => {
  for (const args of [['--help'], ['-h'], ['run', '--help']]) {
    const r = run(args);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^Usage: node-wasmtime run \[OPTIONS\] FILE \[ARGS\.\.\.\]\n/);
    assert.equal(r.stderr, '');
  }
  const none = run([]);
  assert.equal(none.status, 2);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /^Usage: node-wasmtime run/);
});

test('bad usage exits 1 with a message', () => {
  const cases = [
    [['run', '--bogus', fixturePath('hello.wasm')], /unknown option '--bogus'/],
    [['run', '--dir'], /option '--dir' needs a value/],
    [['run', '--dir', '::/x', fixturePath('hello.wasm')], /bad --dir '::\/x'/],
    [['run', '--dir', '/tmp::/x', '--dir', '/::/x', fixturePath('hello.wasm')], /guest path '\/x' given by two/],
    [['run', '--env', '=v', fixturePath('hello.wasm')], /bad --env '=v'/],
    [['run'], /missing FILE/],
    [['frob'], /unknown command 'frob'/],
  ];
  for (const [args, message] of cases) {
    const r = run(args);
    assert.equal(r.status, 1, `${args.join(' ')}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^node-wasmtime: /);
    assert.match(r.stderr, message);
  }
});

test('a missing file, a file that does not compile, a missing --dir host and a reactor exit 1', () => {
  const cases = [
    [['run', path.join(fixturesDir, 'no-such.wasm')], /^node-wasmtime: cannot read .*no-such\.wasm: ENOENT/],
    [['run', fixturePath('hello.c')], /^node-wasmtime: cannot compile .*hello\.c: /],
    [['run', '--dir', '/no/such/dir::/d', fixturePath('hello.wasm')], /^node-wasmtime: UVWASI_ENOENT/],
    [['run', fixturePath('reactor.wasm')], /^node-wasmtime: .*no `_start` export/],
  ];
  for (const [args, message] of cases) {
    const r = run(args);
    assert.equal(r.status, 1, `${args.join(' ')}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, message);
  }
});

test('runs components: output, exit-with-code status, --dir', () => {
  assert.deepEqual(run(['run', fixturePath('components/hello.wasm')]), { status: 0, stdout: 'hello world\n', stderr: '' });
  assert.deepEqual(run(['run', fixturePath('components/exit-with-code.wasm'), '9']),
                   { status: 9, stdout: 'exiting with code 9\n', stderr: '' });
  const r = run(['run', '--dir', `${fixturesDir}::/data`, fixturePath('components/fs.wasm'), 'read', '/data/hello.c']);
  assert.equal(r.status, 0);
  assert.equal(r.stdout, fs.readFileSync(fixturePath('hello.c'), 'utf8'));
});
