//! node-wasmtime: run WASI programs on wasmtime from Node.js, with node:wasi's start semantics.

#[macro_use]
extern crate napi_derive;

mod ctx;
mod engine;
mod error;
mod instance;
mod module;
mod run;
mod source;
mod stdio;
mod wasi;
