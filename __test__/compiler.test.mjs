// The compiler choice of new Module(source, { compiler }): Winch's and the tiered mode's runs
// give the bytes Cranelift's give; a module Winch cannot compile falls back to Cranelift; a
// tiered module moves to Cranelift's code; serialize() keeps the compiler; bad options throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lib, fixture } from './helpers.mjs';

const { Module, WASI, runWasmSync } = lib;

// Programs with args, env, exit codes, allocation; components too.
const CASES = [
  ['hello.wasm', {}],
  ['echo.wasm', { args: ['echo', 'a', 'b c'], env: { K: 'v' } }],
  ['exitcode.wasm', { args: ['exitcode', '7'] }],
  ['alloc.wasm', {}],
  ['counter.wasm', {}],
  ['components/hello.wasm', {}],
  ['components/echo.wasm', { args: ['echo', 'x'] }],
  ['components/exit-with-code.wasm', { args: ['exit-with-code', '3'] }],
];

function outcome(module, options) {
  const r = runWasmSync(module, { ...options, stdout: 'pipe', stderr: 'pipe' });
  return { exitCode: r.exitCode, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') };
}

async function tieredUp(module) {
  const deadline = Date.now() + 60_000;
  while (module.compiler === 'winch' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return module.compiler;
}

test("Winch's and the tiered mode's runs give the same exit codes and bytes as Cranelift's", async () => {
  for (const [file, options] of CASES) {
    const bytes = fixture(file);
    const cranelift = new Module(bytes);
    assert.equal(cranelift.compiler, 'cranelift');
    const expected = outcome(cranelift, options);
    const winch = new Module(bytes, { compiler: 'winch' });
    assert.equal(winch.compiler, 'winch', file);
    assert.deepEqual(outcome(winch, options), expected, `${file} with Winch`);
    const tiered = new Module(bytes, { compiler: 'tiered' });
    assert.deepEqual(outcome(tiered, options), expected, `${file} tiered, first run`);
    assert.equal(await tieredUp(tiered), 'cranelift', `${file}: tiered up`);
    assert.deepEqual(outcome(tiered, options), expected, `${file} tiered, on Cranelift's code`);
    const compiled = await Module.compile(bytes, { compiler: 'winch' });
    assert.equal(compiled.compiler, 'winch');
    assert.deepEqual(outcome(compiled, options), expected, `${file} Module.compile with Winch`);
  }
});

test('an instance made on Winch code keeps working after its module tiers up; new ones use Cranelift', async () => {
  const module = new Module(fixture('reactor.wasm'), { compiler: 'tiered' });
  const before = new WASI({ version: 'preview1', returnOnExit: true });
  const early = before.instantiate(module);
  before.initialize(early);
  assert.equal(await tieredUp(module), 'cranelift');
  const after = new WASI({ version: 'preview1', returnOnExit: true });
  const late = after.instantiate(module);
  after.initialize(late);
  for (const { exports } of [early, late]) {
    assert.equal(exports.get_initialized(), 42);
    assert.equal(exports.add(2, 40), 42);
    assert.equal(exports.mul64(3n, 1n << 40n), 3n << 40n);
    assert.equal(exports.fadd(0.5, 0.25), 0.75);
    const ptr = exports.alloc(16);
    exports.fill(ptr, 16, 3);
    assert.equal(exports.sum_bytes(ptr, 16), 48);
  }
});

test('a module Winch cannot compile (tail calls) falls back to Cranelift', () => {
  const wat = `(module
    (func $count (param i32) (result i32)
      (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 42))
        (else (return_call $count (i32.sub (local.get 0) (i32.const 1))))))
    (export "count" (func $count)))`;
  for (const compiler of ['winch', 'tiered']) {
    const module = new Module(wat, { compiler });
    assert.equal(module.compiler, 'cranelift', compiler);
    const wasi = new WASI({ version: 'preview1', returnOnExit: true });
    assert.equal(wasi.instantiate(module).exports.count(1_000_000), 42, 'a million tail calls, no stack overflow');
  }
  // What neither compiler accepts is Cranelift's error.
  assert.throws(() => new Module('(module (func (i32.add)))', { compiler: 'winch' }), (err) => {
    assert.equal(err.code, 'ERR_WASM_COMPILE');
    return true;
  });
});

test('serialize() keeps the compiler: Winch code deserializes as Winch code and runs', () => {
  const winch = Module.deserialize(new Module(fixture('hello.wasm'), { compiler: 'winch' }).serialize());
  assert.equal(winch.compiler, 'winch');
  assert.equal(outcome(winch, {}).stdout, 'hello world\n');
  const component = Module.deserialize(new Module(fixture('components/hello.wasm'), { compiler: 'winch' }).serialize());
  assert.equal(component.compiler, 'winch');
  assert.equal(outcome(component, {}).stdout, 'hello world\n');
});

test('options.compiler is checked', async () => {
  const bytes = fixture('hello.wasm');
  assert.equal(new Module(bytes, {}).compiler, 'cranelift');
  assert.equal(new Module(bytes, undefined).compiler, 'cranelift');
  assert.equal(new Module(bytes, { compiler: undefined }).compiler, 'cranelift');
  assert.throws(() => new Module(bytes, { compiler: 'v8' }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: "The property 'options.compiler' must be one of: 'cranelift', 'winch', 'tiered'. Received 'v8'",
  });
  for (const compiler of [1, null, true]) {
    assert.throws(() => new Module(bytes, { compiler }), (err) => {
      assert.equal(err.code, 'ERR_INVALID_ARG_TYPE');
      assert.match(err.message, /^The "options.compiler" property must be of type string\. Received /);
      return true;
    });
  }
  for (const options of ['winch', 1, null]) {
    assert.throws(() => new Module(bytes, options), { code: 'ERR_INVALID_ARG_TYPE' }, String(options));
  }
  await assert.rejects(Module.compile(bytes, { compiler: 'fast' }), { code: 'ERR_INVALID_ARG_VALUE' });
});
