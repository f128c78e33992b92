// The C++-driven operator benchmark runs off the JS thread and reports every AlexNet layer with
// its ceiling (a smoke test of the harness, not a timing assertion).
import { describe, expect, it } from 'vitest';
import { loadNative } from '../src/native.js';
import { expectCode } from './helpers.js';

describe('benchOps', () => {
  it('times every AlexNet operator shape against the sgemm and memcpy ceilings', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const rows = await loadNative().benchOps({ batch: 1, reps: 1 });
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(2); // the event loop kept running
    const names = rows.map((r) => r.name);
    for (const n of ['sgemm (ceiling)', 'memcpy (ceiling)', 'conv1.forward', 'conv5.backward', 'maxpool1.backward', 'lrn1.forward', 'fc6.backward'])
      expect(names).toContain(n);
    for (const r of rows) {
      expect(r.ms).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(r.fraction)).toBe(true);
    }
    expect(rows.find((r) => r.name === 'sgemm (ceiling)')!.gflops).toBeGreaterThan(1);
    expectCode(() => loadNative().benchOps({ batch: 0 }), 'ERR_ARGUMENT', /batch/);
  }, 120_000);
});
