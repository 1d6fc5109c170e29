// The command line, bin/node-wasmtime.js, run as a child process: exact stdout bytes, exit
// codes (guest codes modulo 256, 134 on a trap, 1 on errors, 2 without arguments), --dir
// mappings, --env, guest arguments after FILE, and its error messages.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixturePath, fixturesDir, tempDir } from './helpers.mjs';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'node-wasmtime.js');

// The CLI caches compiled code by default (under $XDG_CACHE_HOME): here, in a directory of
// the test's own.
const cacheHome = tempDir();

/** Runs the CLI with `args`; stdin is `input` (empty by default); `cacheHome` is its XDG_CACHE_HOME. */
function run(args, { input = '', cwd, cacheHome: home = cacheHome } = {}) {
  const env = { ...process.env, XDG_CACHE_HOME: home };
  delete env.NODE_WASMTIME_COMPILE_CACHE;
  const r = spawnSync(process.execPath, [cli, ...args], { input, cwd, env, timeout: 30_000 });
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

test('run may be left out; --version prints both versions; --help names components', () => {
  assert.deepEqual(run([fixturePath('hello.wasm')]), { status: 0, stdout: 'hello world\n', stderr: '' });
  assert.deepEqual(run(['--dir', `${fixturesDir}::/data`, fixturePath('fs.wasm'), 'read', '/data/hello.c']).status, 0);
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const pinned = /^wasmtime = \{ version = "=([\d.]+)"/m.exec(fs.readFileSync(new URL('../Cargo.toml', import.meta.url), 'utf8'))[1];
  for (const args of [['--version'], ['-V'], ['run', '--version']]) {
    assert.deepEqual(run(args), { status: 0, stdout: `node-wasmtime ${pkg.version} (wasmtime ${pinned})\n`, stderr: '' }, args.join(' '));
  }
  const help = run(['--help']).stdout;
  assert.match(help, /a core module \(WASI preview1, `_start`\) or a component \(`wasi:cli\/run`\)/);
  assert.doesNotMatch(help, /WASI preview1 command/);
  // A misspelt command is now a file that cannot be read.
  assert.match(run(['frob']).stderr, /^node-wasmtime: cannot read frob: ENOENT/);
});

test('-W limits as wasmtime run spells them: fuel, timeout, max-memory-size; exits 134 when one stops the guest', () => {
  const spin = fixturePath('spin.wasm');
  const forever = '100000000000000'; // rounds: far more than any limit here lets it run
  const fuel = run(['-W', 'fuel=100000', spin, forever]);
  assert.equal(fuel.status, 134, fuel.stderr);
  assert.match(fuel.stderr, /^node-wasmtime: .*fuel/);
  for (const flag of [['-W', 'timeout=200ms'], ['-Wtimeout=200ms'], ['--wasm', 'timeout=1'], ['--wasm=timeout=1s']]) {
    const began = Date.now();
    const r = run(['run', ...flag, spin, forever]);
    assert.equal(r.status, 134, `${flag.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^node-wasmtime: .*(timeout|time limit)/i, flag.join(' '));
    assert.ok(Date.now() - began < 10_000, flag.join(' '));
  }
  // Enough fuel and time: the guest runs as without them.
  assert.deepEqual(run(['-W', 'fuel=100000000,timeout=10s,max-wasm-stack=1048576', fixturePath('hello.wasm')]),
                   { status: 0, stdout: 'hello world\n', stderr: '' });
  // A memory cap below the module's declared minimum: instantiation fails, naming the limit.
  const alloc = run(['-W', 'max-memory-size=65536', fixturePath('hello.wasm')]);
  assert.equal(alloc.status, 1, 'a cap below the module\'s declared memory fails to instantiate');
  assert.match(alloc.stderr, /declares a minimum of 2 pages \(131072 bytes\), more than limits\.maxMemory allows/);
});

test('-W: unknown keys, missing and bad values are usage errors (exit 1)', () => {
  const hello = fixturePath('hello.wasm');
  const cases = [
    [['-W', 'fule=10', hello], /unknown -W option 'fule' \(known: fuel, timeout, max-memory-size, max-wasm-stack\)/],
    [['-W', 'fuel', hello], /-W fuel needs a value/],
    [['-W', 'fuel=-1', hello], /bad value for -W fuel=-1/],
    [['-W', 'timeout=1h', hello], /bad value for -W timeout=1h/],
    [['-W', 'timeout=0', hello], /bad value for -W timeout=0/],
    [['-W'], /option '-W' needs a value/],
  ];
  for (const [args, message] of cases) {
    const r = run(args);
    assert.equal(r.status, 1, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, message, args.join(' '));
  }
});

test('compiled code is cached by default, in --cache-dir if given, not at all with --no-cache', () => {
  const entries = (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.endsWith('.nwtcode')) : []);
  const hello = fixturePath('hello.wasm');
  const ok = { status: 0, stdout: 'hello world\n', stderr: '' };
  const home = tempDir(); // a cache of this test's own: earlier tests filled the shared one
  const defaultDir = path.join(home, 'node-wasmtime');
  assert.deepEqual(run(['run', hello], { cacheHome: home }), ok);
  assert.equal(entries(defaultDir).length, 1, 'the default directory');
  const dir = path.join(tempDir(), 'cache');
  assert.deepEqual(run(['run', '--cache-dir', dir, hello]), ok);
  const [entry] = entries(dir);
  const written = fs.statSync(path.join(dir, entry)).mtimeMs;
  assert.deepEqual(run(['run', `--cache-dir=${dir}`, hello]), ok, 'a cached run: the same bytes');
  assert.equal(fs.statSync(path.join(dir, entry)).mtimeMs >= written, true);
  assert.deepEqual(entries(dir), [entry]);
  const before = entries(defaultDir);
  const exitcode = fixturePath('exitcode.wasm');
  assert.equal(run(['run', '--no-cache', exitcode], { cacheHome: home }).stdout, 'exiting with 0\n');
  assert.deepEqual(entries(defaultDir), before, '--no-cache writes nothing');
  assert.equal(run(['run', exitcode], { cacheHome: home }).status, 0);
  assert.equal(entries(defaultDir).length, before.length + 1, 'without it, one entry more');
  fs.chmodSync(dir, 0o777);
  const refused = run(['run', '--cache-dir', dir, hello]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /cannot use --cache-dir .*can be written by other users/);
  assert.equal(run(['--no-cache', '--cache-dir', dir, hello]).status, 1);
});

/**
 * A core module that takes Cranelift a few seconds to compile here (4,500 functions of 300
 * arithmetic steps each, 13.5 MB): a `_start` that calls the last one and exits 0.
 */
function slowToCompileModule() {
  const FUNCS = 4500;
  const STEPS = 300;
  const leb = (n) => {
    const out = [];
    do {
      out.push((n & 0x7f) | (n >>> 7 ? 0x80 : 0));
      n >>>= 7;
    } while (n);
    return out;
  };
  const name = (s) => [...leb(s.length), ...Buffer.from(s)];
  const section = (id, bytes) => Buffer.from([id, ...leb(bytes.length), ...bytes]);
  const step = [0x20, 0, 0x41, 7, 0x6c, 0x41, 13, 0x73, 0x21, 0]; // x = (x * 7) ^ 13
  const body = [0, ...Array(STEPS).fill(step).flat(), 0x20, 0, 0x0b]; // no locals; x; end
  const start = [0, 0x41, 1, 0x10, ...leb(FUNCS), 0x41, 0, 0x71, 0x10, 0, 0x0b]; // exit(f(1) & 0)
  const code = Buffer.concat([
    Buffer.from(leb(FUNCS + 1)),
    ...Array(FUNCS).fill(Buffer.from([...leb(body.length), ...body])),
    Buffer.from([...leb(start.length), ...start]),
  ]);
  return Buffer.concat([
    Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]),
    // types: (i32) -> (), (i32) -> i32, () -> ()
    section(1, [3, 0x60, 1, 0x7f, 0, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 0, 0]),
    section(2, [1, ...name('wasi_snapshot_preview1'), ...name('proc_exit'), 0, 0]),
    section(3, [...leb(FUNCS + 1), ...Array(FUNCS).fill(1), 2]),
    section(5, [1, 0, 1]),
    section(7, [2, ...name('_start'), 0, ...leb(FUNCS + 1), ...name('memory'), 2, 0]),
    Buffer.from([0x0a, ...leb(code.length)]),
    code,
  ]);
}

test('a compile over a second prints one notice when stderr is a terminal, none into a pipe or from the cache', () => {
  const file = path.join(tempDir(), 'slow.wasm');
  fs.writeFileSync(file, slowToCompileModule());
  const home = tempDir();
  // On a terminal: util-linux's script(1) gives the CLI a pseudo-terminal (stdout and stderr
  // both, so the terminal's \r\n line ends).
  const onTerminal = (args) => {
    const env = { ...process.env, XDG_CACHE_HOME: home };
    delete env.NODE_WASMTIME_COMPILE_CACHE;
    const command = [process.execPath, cli, ...args].map((arg) => `'${arg}'`).join(' ');
    const r = spawnSync('script', ['-qec', command, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    if (r.error) throw r.error;
    return { status: r.status, output: r.stdout.toString() };
  };
  const size = (fs.statSync(file).size / 1e6).toFixed(1);
  assert.deepEqual(onTerminal(['run', file]), {
    status: 0,
    output: `node-wasmtime: compiling ${file} (${size} MB); later runs load it from the code cache...\r\n`,
  });
  assert.deepEqual(onTerminal(['run', file]), { status: 0, output: '' }, 'loaded from the cache: no notice');
  assert.deepEqual(onTerminal(['run', '--no-cache', file]), {
    status: 0, output: `node-wasmtime: compiling ${file} (${size} MB)...\r\n`,
  });
  assert.deepEqual(run(['run', '--no-cache', file]), { status: 0, stdout: '', stderr: '' }, 'stderr a pipe: no notice');
});
