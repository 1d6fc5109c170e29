//! Components as WASI commands: finding their `wasi:cli/run` export, and turning what
//! `run` did (returned `ok`/`err`, called `wasi:cli/exit`, trapped) into an exit code.

use crate::error::{classify, reason, ErrorCode, Failure, Result};

pub use wasmtime_wasi::p2::bindings::sync::{Command, CommandPre};

/// The exit code of one `wasi:cli/run#run` call: `ok` is 0 and `err` is 1, like
/// `wasi:cli/exit#exit`; `exit-with-code(n)` is `n`. Traps become `ERR_WASM_TRAP`.
pub fn exit_code(outcome: wasmtime::Result<std::result::Result<(), ()>>) -> Result<i32> {
    match outcome {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(error) => classify(error),
    }
}

/// The error for a component without `wasi:cli/run` where a command was expected.
pub fn not_a_command(code: ErrorCode, error: &wasmtime::Error) -> Failure {
    Failure::new(
        code,
        format!(
            "The component does not export wasi:cli/run, so it is not a WASI command ({}). \
             A component with exports of its own runs with wasi.instantiate(component) and \
             wasi.initialize(instance), then instance.exports",
            reason(error)
        ),
    )
}
