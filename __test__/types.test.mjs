// The published types (lib/index.d.ts + the generated index.d.ts) compile under `tsc --strict`
// for every documented use, and reject misuse (see types/usage.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

test('tsc --strict accepts the documented uses and rejects the misuses', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', '__test__/types/tsconfig.json'], { encoding: 'utf8' });
  assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
});
