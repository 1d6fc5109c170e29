//! Owns turning the preview1 C test fixtures (`__test__/fixtures`) into WebAssembly components, with wasmtime 48.0.8's own preview1 adapters; run by `__test__/fixtures/build.sh`.
//!
//! Usage:
//!   componentize [--reactor] [--world WORLD.wit] IN.wasm OUT.wasm
//!   componentize --wit COMPONENT.wasm
//!
//! The first form wraps a preview1 core module (`wasi_snapshot_preview1`
//! imports) into a component through wasmtime's preview1 *command* adapter
//! (`--reactor`: the *reactor* adapter, for modules without `_start`), and
//! validates the result. `--world` first embeds component-type metadata for the
//! single world defined in `WORLD.wit` (the file may hold nested
//! `package ns:name@ver { .. }` blocks for what it uses), so the module may
//! import component-model functions directly or export WIT functions.
//! The second form prints the WIT of a component's world (its imports and exports).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::{ComponentEncoder, DecodedWasm, StringEncoding, WitPrinter};
use wit_parser::Resolve;

const USAGE: &str = "usage: componentize [--reactor] [--world WORLD.wit] IN.wasm OUT.wasm\n       componentize --wit COMPONENT.wasm";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut reactor = false;
    let mut world: Option<PathBuf> = None;
    let mut paths = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--wit" => {
                let file = args.next().context(USAGE)?;
                if args.next().is_some() {
                    bail!(USAGE);
                }
                return print_wit(Path::new(&file));
            }
            "--reactor" => reactor = true,
            "--world" => world = Some(args.next().context(USAGE)?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ if arg.starts_with('-') => bail!("unknown option {arg}\n{USAGE}"),
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    let [input, output] = paths.as_slice() else {
        bail!(USAGE);
    };
    componentize(input, output, reactor, world.as_deref())
}

fn componentize(input: &Path, output: &Path, reactor: bool, world: Option<&Path>) -> Result<()> {
    let mut module =
        std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    if let Some(wit) = world {
        embed_world(&mut module, wit)?;
    }
    let adapter = if reactor {
        WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
    } else {
        WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER
    };
    let component = ComponentEncoder::default()
        .module(&module)
        .with_context(|| format!("parsing {}", input.display()))?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter)?
        .validate(true)
        .encode()
        .with_context(|| format!("encoding {} as a component", input.display()))?;
    std::fs::write(output, component).with_context(|| format!("writing {}", output.display()))
}

/// Embeds a `component-type` custom section describing the one world in `wit`.
fn embed_world(module: &mut Vec<u8>, wit: &Path) -> Result<()> {
    // `all_features`: harmless for stable WIT; lets a world use `@unstable` items too.
    let mut resolve = Resolve {
        all_features: true,
        ..Resolve::default()
    };
    let source =
        std::fs::read_to_string(wit).with_context(|| format!("reading {}", wit.display()))?;
    let pkg = resolve.push_str(wit, &source)?;
    let world = resolve.select_world(&[pkg], None)?;
    wit_component::embed_component_metadata(module, &resolve, world, StringEncoding::UTF8, false)
        .with_context(|| format!("embedding the world of {}", wit.display()))
}

fn print_wit(file: &Path) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let decoded =
        wit_component::decode(&bytes).with_context(|| format!("decoding {}", file.display()))?;
    let DecodedWasm::Component(resolve, _) = &decoded else {
        bail!("{} is a WIT package, not a component", file.display());
    };
    let main = decoded.package();
    let nested: Vec<_> = resolve
        .packages
        .iter()
        .map(|(id, _)| id)
        .filter(|id| *id != main)
        .collect();
    let mut printer = WitPrinter::default();
    printer.emit_docs(false);
    printer.print(resolve, main, &nested)?;
    println!("{}", printer.output);
    Ok(())
}
