// Compiled (not run) by types.test.mjs with `tsc --strict --noEmit`: the public types must accept
// every documented use, and reject what the API rejects (the @ts-expect-error lines).
import { readFileSync } from 'node:fs';
import { WASI, Module, Instance, Memory, Global, Table, runWasm, runWasmSync, isWasmtimeError, versions, type RunResult, type ImportObject, type ErrorCode } from 'node-wasmtime';

const bytes = readFileSync('hello.wasm');
const module = new Module(bytes);
const kind: 'module' | 'component' = module.kind;
const names: string[] = module.exports().map((e) => e.name);
const copy: Module = Module.deserialize(module.serialize());

const result: RunResult = runWasmSync(module, { args: ['hello'], env: { A: '1' }, stdin: 'input', stdout: 'pipe' });
const code: number = result.exitCode;
const out: Buffer = result.stdout;
const pending: Promise<RunResult> = runWasm(bytes, { preopens: { '/sandbox': '.' }, stderr: 'inherit' });

const wasi = new WASI({ version: 'preview1', args: ['x'], stdout: 'pipe', returnOnExit: true });
const instance: Instance = wasi.instantiate(copy);
const exit: number = wasi.start(instance);
const captured: Buffer | undefined = wasi.stdout;
const memory = instance.exports.memory as Memory;
const first: Buffer = memory.read(0, 4);

async function dropIn(): Promise<number> {
  const w = new WASI({ version: 'preview1' });
  const { instance: v8 } = await WebAssembly.instantiate(bytes, w.getImportObject());
  w.wasiImport.proc_exit = () => { throw new Error('exit'); };
  return w.start(v8);
}

// Components: version 'preview2', start() for commands, interface exports as objects.
const p2 = new WASI({ version: 'preview2', stdout: 'pipe' });
const command: Instance = p2.instantiate(readFileSync('components/hello.wasm'));
const instanceKind: 'module' | 'component' = command.kind;
const status: number = p2.start(command);
const api = command.exports['my:pkg/api'] as Record<string, Function>;

// Limits and cancellation.
const controller = new AbortController();
const limited: Promise<RunResult> = runWasm(bytes, { limits: { timeout: 1000, fuel: 1e9, maxMemory: 1 << 24, maxStack: 1 << 20 }, signal: controller.signal });
new WASI({ version: 'preview1', limits: { timeout: 50 } });
const asyncExit: Promise<number> = p2.startAsync(command, { signal: controller.signal });
// @ts-expect-error timeout is a number of milliseconds
runWasmSync(bytes, { limits: { timeout: '1s' } });

// Streamed output: a function or a Writable.
import { Writable } from 'node:stream';
const streamed: Promise<RunResult> = runWasm(bytes, { stdout: (chunk: Buffer) => { chunk.length; }, stderr: new Writable() });
new WASI({ version: 'preview1', stdout: process.stdout });

// Host functions: import objects as for WebAssembly.instantiate, memory.buffer inside them.
let plugin: Instance;
const imports: ImportObject = {
  env: {
    log: (ptr: number, len: number) => { new Uint8Array((plugin.exports.memory as Memory).buffer, ptr, len); },
    lookup: async (key: number): Promise<number> => key + 1,
    big: (x: bigint) => x * 2n,
  },
};
plugin = wasi.instantiate(module, imports);
const hosted: Promise<RunResult> = runWasm(bytes, { imports });
const hostedSync: RunResult = runWasmSync(bytes, { imports: { env: { f: () => 1 } } });
const view: ArrayBuffer = memory.buffer;
// @ts-expect-error an import object maps module names to objects
wasi.instantiate(module, { env: 5 });

// Imported memories, tables and globals.
const shared = new Memory({ initial: 1, maximum: 16 });
const counter = new Global({ value: 'i32', mutable: true }, 0);
const wide = new Global({ value: 'i64' }, 5n);
const table = new Table({ element: 'anyfunc', initial: 4 });
wasi.instantiate(module, { env: { memory: shared, counter, wide, table, base: 1024, big: 1n } });
const counted: number | bigint = counter.value;
counter.value = 3;
const entry: Function | null = table.get(0);
const grownTable: number = table.grow(1);
// @ts-expect-error a Global holds a number type
new Global({ value: 'v128' });
// @ts-expect-error a Table holds functions
new Table({ element: 'externref', initial: 1 });
// A component's imported resource, served by a class.
class Counter {
  constructor(public n: number) {}
  bump(by: number): number { return (this.n += by); }
  static zero(): Counter { return new Counter(0); }
}
const componentImports: ImportObject = { 'test:host/store': { counter: Counter, total: (c: Counter) => c.n } };
wasi.instantiate(module, componentImports);
// @ts-expect-error a Memory needs its initial size
new Memory({ maximum: 2 });

// @ts-expect-error version is required
new WASI({ args: [] });
new WASI({ version: 'preview1', stdout: 'inherit', stderr: 'inherit' });
// @ts-expect-error stdout takes 'pipe' | 'inherit' | 'ignore' | fd | an OutputTarget
new WASI({ version: 'preview1', stdout: 'inhert' });
// @ts-expect-error no such WASI version
new WASI({ version: 'preview3' });
// @ts-expect-error runWasm options are an object
runWasmSync(bytes, 'x');

export { kind, names, code, out, pending, exit, captured, first, dropIn, instanceKind, status, api, limited, asyncExit, streamed, hosted, hostedSync, view };

// Errors: a type guard narrows `unknown` to the error's fields, optionally to one code.
try {
  runWasmSync('(module)');
} catch (err) {
  if (isWasmtimeError(err, 'ERR_WASM_TRAP')) {
    const code: 'ERR_WASM_TRAP' = err.code;
    const trap: string | undefined = err.trapCode;
    const out: Buffer | undefined = err.stdout;
    void code; void trap; void out;
  }
  if (isWasmtimeError(err)) {
    const code: ErrorCode = err.code;
    void code;
    // @ts-expect-error not one of the codes
    isWasmtimeError(err, 'ERR_NOPE');
  }
}

// Typed exports: a generic parameter gives the known shape, no cast.
const typed = new WASI({ version: 'preview1' }).instantiate<{ add(a: number, b: number): number; memory: Memory }>(
  '(module (memory (export "memory") 1) (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))');
const sum: number = typed.exports.add(1, 2);
const typedMemory: Memory = typed.exports.memory;
void sum; void typedMemory;
// @ts-expect-error add returns a number
const wrong: string = typed.exports.add(1, 2);
void wrong;

const wasmtimeVersion: string = versions.wasmtime;
void wasmtimeVersion;
