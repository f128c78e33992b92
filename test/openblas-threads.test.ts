// OpenBLAS's worker threads spin after each call (2^28 cycles by default) and take a core from
// our own pool's work between OpenBLAS calls; loadNative() sets OPENBLAS_THREAD_TIMEOUT=4 before
// the addon (and OpenBLAS with it) loads, unless the user set it, and the PyTorch peer of
// `alexnet bench` gets OpenBLAS's default back (src/native.ts, quietOpenblasThreads).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TorchPeer } from '../src/cli/bench.js';
import { loadNative, openblasThreadTimeoutSetByUs } from '../src/native.js';

const here = dirname(fileURLToPath(import.meta.url));

/** OPENBLAS_THREAD_TIMEOUT (and our flag) in a fresh process after loadNative(), started with `env`. */
function afterLoad(env: Record<string, string | undefined>): { value: string | null; ours: boolean } {
  const script = `
    const native = await import(${JSON.stringify(join(here, '..', 'dist', 'native.js'))});
    native.loadNative();
    console.log(JSON.stringify({ value: process.env.OPENBLAS_THREAD_TIMEOUT ?? null, ours: native.openblasThreadTimeoutSetByUs }));`;
  const clean = { ...process.env };
  delete clean.OPENBLAS_THREAD_TIMEOUT;
  delete clean.GOTO_THREAD_TIMEOUT;
  const p = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...clean, ...env }, encoding: 'utf8', timeout: 60_000 });
  expect(p.status, p.stderr).toBe(0);
  return JSON.parse(p.stdout.trim().split('\n').at(-1)!) as { value: string | null; ours: boolean };
}

describe('OpenBLAS thread spin', () => {
  it('loadNative sets OPENBLAS_THREAD_TIMEOUT=4 where the user did not, and keeps a value the user set', () => {
    expect(afterLoad({})).toEqual({ value: '4', ours: true });
    expect(afterLoad({ OPENBLAS_THREAD_TIMEOUT: '12' })).toEqual({ value: '12', ours: false });
    // OpenBLAS's other name for it counts as the user's choice too
    expect(afterLoad({ GOTO_THREAD_TIMEOUT: '20' })).toEqual({ value: null, ours: false });
  });

  it("the PyTorch peer runs with OpenBLAS's default, not our setting", async () => {
    loadNative();
    // a stand-in interpreter that answers the peer's handshake with the variable it was given
    const dir = mkdtempSync(join(tmpdir(), 'alexnet-peer-env-'));
    const python = join(dir, 'python3');
    writeFileSync(python, '#!/bin/sh\necho "{\\"ready\\": false, \\"error\\": \\"OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT-unset}\\"}"\n');
    chmodSync(python, 0o755);
    try {
      const peer = new TorchPeer();
      expect(await peer.start(python, 1)).toBe(false);
      const seen = openblasThreadTimeoutSetByUs ? 'unset' : process.env.OPENBLAS_THREAD_TIMEOUT;
      expect(peer.skipped).toBe(`OPENBLAS_THREAD_TIMEOUT=${seen}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
