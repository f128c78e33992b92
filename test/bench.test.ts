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

describe('alexnet bench (end to end)', () => {
  it('reports images/s, FLOP rates against a matmul ceiling from the same run, and a per-layer table', async () => {
    const { benchmark, benchMarkdown } = await import('../src/cli/bench.js');
    const [r] = await benchmark({ device: 'cpu', batches: [1], reps: 1, peer: false });
    // FLOPs counted independently from AlexNet's layer list (2 per multiply-add)
    const conv = (cin: number, k: number, cout: number, hw: number) => 2 * cin * k * k * cout * hw * hw;
    const layers = [conv(3, 11, 96, 55), conv(96, 5, 256, 27), conv(256, 3, 384, 13), conv(384, 3, 384, 13), conv(384, 3, 256, 13), 2 * 9216 * 4096, 2 * 4096 * 4096, 2 * 4096 * 2];
    const forward = layers.reduce((a, b) => a + b, 0);
    expect(r!.forwardGflopPerImage).toBeCloseTo(forward / 1e9, 6);
    expect(r!.trainGflopPerImage).toBeCloseTo((3 * forward - layers[0]!) / 1e9, 6);
    expect(r!.matmul.size).toBe(2048);
    expect(r!.matmul.gflops).toBeGreaterThan(1);
    expect(r!.inferGflops).toBeCloseTo((r!.inferImagesPerSecond * forward) / 1e9, 3);
    expect(r!.trainFractionOfMatmul).toBeCloseTo(r!.trainGflops / r!.matmul.gflops, 9);
    for (const f of [r!.inferFractionOfMatmul, r!.trainFractionOfMatmul]) expect(f > 0 && f < 1.5).toBe(true);
    expect(r!.layers.map((l) => l.name)).toContain('features.0');
    expect(r!.layers.length).toBe(21);
    const md = benchMarkdown([r!]);
    expect(md).toMatch(/matmul 2048\^3 in the same run/);
    expect(md).toMatch(/\| 1 \| [\d.]+ \| \d+% \| [\d.]+ \| \d+% \|/);
  }, 180_000);
});
