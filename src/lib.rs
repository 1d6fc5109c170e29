//! node-wasmtime: run WASI programs on wasmtime from Node.js, with node:wasi's start semantics.

// napi-derive registers `#[napi]` items only outside `cfg(test)`, so in unit-test builds the
// entry points and what only they use look unused.
#![cfg_attr(test, allow(dead_code))]

#[macro_use]
extern crate napi_derive;

mod capability_errors;
mod capture;
mod code_cache;
mod command;
mod component_exports;
mod component_imports;
mod component_poll;
mod component_resources;
mod component_scalars;
mod component_values;
mod cpu_clocks;
mod ctx;
mod engine;
mod error;
mod export_function;
mod global;
mod host_calls;
mod host_externs;
mod host_functions;
mod imports;
mod instance;
mod instance_handles;
mod js_bytes;
mod limits;
mod memory;
mod memory_buffer;
mod module;
mod native_function;
mod poll_oneoff;
mod pool;
mod run;
mod source;
mod stdin_file;
mod stdin_hangup;
mod stdio;
mod stdio_writes;
mod store_access;
mod stream_output;
mod table;
mod teardown;
#[cfg(test)]
mod test_support;
mod tier_up;
mod user_key;
mod wasi;
mod wasi_calls;
mod wasm_values;
mod wit_text;
