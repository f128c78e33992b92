// A short fuzz of the public surface on fixed seeds (test/fuzz/; `npm run fuzz -- --seconds N`
// for long runs): every call runs in a child process, so a crash or a hang fails this test
// with the seed and the call that caused it instead of taking vitest down.
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module without type declarations
import { fuzz, runBatch } from './fuzz/run.mjs';

interface Failure {
  seed: number;
  index: number;
  kind: 'uncoded' | 'mismatch' | 'crash' | 'hang' | 'generror';
  call: string;
  message: string;
}

// Failures of issue 11 items not yet fixed would be listed here, each with its item (matched
// by kind, call and message: counted and printed, not failed); every other failure fails the
// test. Items 7 and 12 have landed, so none is pending.
const PENDING: { item: string; kind: Failure['kind']; call: RegExp; message: RegExp }[] = [];

const SEEDS = 120; // 120 batches of 500 calls: about 25 s alone on the 2-core CI machine

describe('fuzz of the public surface (fixed seeds)', () => {
  it('the harness charges an injected crash, abort, exit, hang and uncoded error to their calls and goes on', async () => {
    const r = await runBatch(3, 0, 40, { callTimeoutMs: 3_000, inject: 'crash:2,abort:9,exit:15,hang:21,uncoded:30' });
    const got = (r.failures as Failure[]).filter((f) => f.call.startsWith('injected')).map((f) => [f.index, f.kind]);
    expect(got).toEqual([[2, 'crash'], [9, 'crash'], [15, 'crash'], [21, 'hang'], [30, 'uncoded']]);
    // every call was run or charged once, and the ones after each fault ran in a fresh child
    expect(r.stats.calls).toBe(40);
    expect(r.stats.ok + r.stats.coded).toBeGreaterThan(25);
  }, 60_000);

  it(`${SEEDS * 500} calls: no crash, no hang, every error coded, valid calls match float64`, async () => {
    const r = await fuzz({ seed: 1, seeds: SEEDS, batch: 500, seconds: Infinity, parallel: 2, callTimeoutMs: 20_000 });
    const failures = r.failures as Failure[];
    const show = (fs: Failure[]) =>
      fs
        .slice(0, 10)
        .map((f) => `${f.kind} seed ${f.seed} call ${f.index}: ${f.call}\n  -> ${f.message}`)
        .join('\n');
    const pending = failures.filter((f) => PENDING.some((p) => p.kind === f.kind && p.call.test(f.call) && p.message.test(f.message)));
    const unexpected = failures.filter((f) => !pending.includes(f));
    console.log(
      `fuzz: ${r.calls} calls, ok ${r.ok}, coded ${r.coded}, uncoded ${r.uncoded}, mismatches ${r.mismatch}, crashes ${r.crash}, hangs ${r.hang}` +
        ` (pending fixes: ${pending.length})`,
    );
    expect(r.calls).toBe(SEEDS * 500);
    expect(r.crash, show(failures.filter((f) => f.kind === 'crash'))).toBe(0);
    expect(r.hang, show(failures.filter((f) => f.kind === 'hang'))).toBe(0);
    expect(r.generror, show(failures.filter((f) => f.kind === 'generror'))).toBe(0);
    // Uncoded errors and wrong results fail here (outside PENDING, which is empty).
    expect(unexpected.length, show(unexpected)).toBe(0);
    // the fuzz reaches both sides of the oracle
    expect(r.ok).toBeGreaterThan(SEEDS * 50);
    expect(r.coded).toBeGreaterThan(SEEDS * 100);
    // ... and the surface of sessions 8-9 (test/fuzz/calls-recent.mjs), with calls that succeed
    const byName = r.byName as Map<string, { calls: number; ok: number }>;
    for (const name of ['model', 'Trainer', 'resume', 'dropout+counter', 'toMemoryFormat', 'refreshBf16Copy', 'setCpuIsa', 'setReluDropoutFusion', 'setNumThreads']) {
      expect(byName.get(name)?.ok ?? 0, name).toBeGreaterThan(0);
    }
  }, 300_000);
});
