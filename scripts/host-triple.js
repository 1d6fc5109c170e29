'use strict';

// The host's Rust target triple, which `napi build` passes as `--target`: `cargo test`
// (scripts/test.js) and the install script's source build (scripts/install.js) pass the same,
// because cargo keeps what it builds for an explicit target apart from what it builds without
// one, and so share napi build's compiled dependencies (wasmtime among them).

const { spawnSync } = require('node:child_process');

/** The triple `rustc -vV` names as its host; throws with rustc's output when it names none. */
function hostTriple() {
  const result = spawnSync('rustc', ['-vV'], { encoding: 'utf8' });
  const host = result.status === 0 && /^host: (\S+)$/m.exec(result.stdout);
  if (!host) throw new Error(`rustc -vV failed or named no host (${result.error?.message ?? `${result.stdout}${result.stderr}`})`);
  return host[1];
}

module.exports = { hostTriple };
