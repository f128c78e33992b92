// A label outside [0, C) in softmaxCrossEntropy and topkCorrect behaves the same on every
// device: the operator returns at once, the next read of the device (data(), dataSync() or
// synchronize()) rejects with ERR_ARGUMENT naming the operator, the lowest offending row and
// its label, the outputs hold NaN (loss, gradient) or -1 (count) rather than plausible
// numbers, the first error in queue order is the one reported, and the device goes on working.
// The CPU keeps the error in its queue, per enqueuing thread (a worker's errors never reach the
// main thread: test/worker-threads.test.ts); CUDA in a device-side error record read back with
// every read. One test body, run on the CPU here and on cuda:0 where a GPU is present.
import { describe, expect, it } from 'vitest';
import { softmaxCrossEntropy, synchronize, Tensor, topkCorrect } from '../src/index.js';
import { describeCuda } from './cuda-gate.js';
import { expectClose, f32, normal, rng } from './helpers.js';
import { crossEntropyGradRef, crossEntropyRef } from './reference/loss.js';
import { topkCorrectRef } from './reference/metrics.js';

type Dev = 'cpu' | 'cuda:0';

interface Case {
  B: number;
  C: number;
  z: Float32Array;
  good: Int32Array;
  bad: Int32Array;
  /** the message the CPU's row-order scan gives for `bad` */
  message: (op: string) => string;
}

/** Fresh logits, valid labels, and a copy with two bad labels (one negative, one >= C). */
function makeCase(r: () => number): Case {
  const B = 4 + Math.floor(r() * 8);
  const C = 3 + Math.floor(r() * 9);
  const z = f32(normal(B * C, r, 2));
  const good = Int32Array.from({ length: B }, () => Math.floor(r() * C));
  const bad = Int32Array.from(good);
  const rowA = Math.floor(r() * (B - 1));
  const rowB = rowA + 1 + Math.floor(r() * (B - 1 - rowA));
  const neg = -1 - Math.floor(r() * 5);
  const big = C + Math.floor(r() * 5);
  // the lower row gets either kind of bad label, so both kinds are the reported one sometimes
  const lowFirst = r() < 0.5;
  bad[rowA] = lowFirst ? neg : big;
  bad[rowB] = lowFirst ? big : neg;
  return { B, C, z, good, bad, message: (op) => `${op}: label ${bad[rowA]} at row ${rowA} is out of range [0, ${C})` };
}

async function rejection(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  return expect.fail('the read resolved; expected it to reject with ERR_ARGUMENT') as never;
}

function labelTests(device: Dev): void {
  const on = (c: Case) => ({
    z: Tensor.from(c.z, [c.B, c.C], { device }),
    good: Tensor.from(c.good, [c.B], { device, dtype: 'int32' }),
    bad: Tensor.from(c.bad, [c.B], { device, dtype: 'int32' }),
  });

  it(`softmaxCrossEntropy on ${device}: data() rejects naming the lowest bad row, outputs are NaN, a valid call after reads fine`, async () => {
    const c = makeCase(rng());
    const t = on(c);
    const out = softmaxCrossEntropy(t.z, t.bad);
    const e = await rejection(out.loss.data());
    expect(e.code).toBe('ERR_ARGUMENT');
    expect(e.message).toBe(c.message('softmaxCrossEntropy'));
    // delivered once: the outputs read now, and hold NaN rather than stale memory
    expect(Number.isNaN((await out.loss.data())[0])).toBe(true);
    expect((await out.gradLogits.data()).every((v) => Number.isNaN(v))).toBe(true);
    const ok = softmaxCrossEntropy(t.z, t.good);
    expectClose(await ok.loss.data(), [crossEntropyRef(c.z, c.good, c.B, c.C)], { atol: 1e-5, rtol: 1e-5, label: 'loss after the error' });
    expectClose(await ok.gradLogits.data(), crossEntropyGradRef(c.z, c.good, c.B, c.C), { atol: 1e-6, rtol: 1e-4, label: 'grad after the error' });
  });

  it(`topkCorrect on ${device}: synchronize() rejects, the count is -1, a valid call after counts right`, async () => {
    const c = makeCase(rng());
    const t = on(c);
    const k = 1 + Math.floor(Math.random() * c.C);
    const count = topkCorrect(t.z, t.bad, k);
    const e = await rejection(synchronize(device));
    expect(e.code).toBe('ERR_ARGUMENT');
    expect(e.message).toBe(c.message('topkCorrect'));
    expect((await count.data())[0]).toBe(-1);
    const ok = topkCorrect(t.z, t.good, k);
    expect((await ok.data())[0]).toBe(topkCorrectRef(c.z, c.good, c.B, c.C, k));
  });

  it(`dataSync on ${device} throws the label error, then reads fine`, async () => {
    const c = makeCase(rng());
    const t = on(c);
    const out = softmaxCrossEntropy(t.z, t.bad);
    let caught: { code?: string; message: string } | undefined;
    try {
      out.loss.dataSync();
    } catch (err) {
      caught = err as { code?: string; message: string };
    }
    expect(caught?.code).toBe('ERR_ARGUMENT');
    expect(caught?.message).toBe(c.message('softmaxCrossEntropy'));
    const ok = topkCorrect(t.z, t.good, 1);
    expect(ok.dataSync()[0]).toBe(topkCorrectRef(c.z, c.good, c.B, c.C, 1));
  });

  it(`on ${device} the first error in queue order is reported, once, by the next read of any tensor`, async () => {
    const c = makeCase(rng());
    const t = on(c);
    softmaxCrossEntropy(t.z, t.bad);
    topkCorrect(t.z, t.bad, 1); // a second error before any read: not reported separately
    const e = await rejection(t.good.data()); // an unrelated tensor's read takes it
    expect(e.code).toBe('ERR_ARGUMENT');
    expect(e.message).toBe(c.message('softmaxCrossEntropy'));
    expect(Array.from(await t.good.data())).toEqual(Array.from(c.good));
    await synchronize(device);
  });
}

describe('out-of-range labels (cpu)', () => labelTests('cpu'));
describeCuda('out-of-range labels (cuda:0)', () => labelTests('cuda:0'));
