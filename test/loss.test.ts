import { describe, expect, it } from 'vitest';
import { softmax, softmaxCrossEntropy, Tensor } from '../src/index.js';
import { expectClose, expectCode, f32, f64, finiteDifference, normal, rng, sampleIndices } from './helpers.js';
import { crossEntropyGradRef, crossEntropyRef, softmaxRef } from './reference/loss.js';

const SHAPES: [number, number][] = [
  [1, 7],
  [3, 13],
  [5, 1],
  [16, 1000],
];

function randomLabels(B: number, C: number, r: () => number): Int32Array {
  return Int32Array.from({ length: B }, () => Math.floor(r() * C));
}

describe('softmax', () => {
  it('matches the float64 reference and each row sums to 1', async () => {
    const r = rng();
    for (const [B, C] of SHAPES) {
      const z = f32(normal(B * C, r, 3));
      const p = await softmax(Tensor.from(z, [B, C])).data();
      expectClose(p, softmaxRef(z, B, C), { atol: 1e-7, rtol: 1e-5, label: `softmax ${B}x${C}` });
      for (let b = 0; b < B; b++) {
        const s = p.subarray(b * C, (b + 1) * C).reduce((a, v) => a + v, 0);
        expect(Math.abs(s - 1)).toBeLessThan(1e-5);
      }
    }
  });

  it('is stable for logits around 1e4', async () => {
    const r = rng();
    const [B, C] = [3, 13];
    const z = f32(Array.from(normal(B * C, r, 1), (v, i) => v * 5 + (i % 2 === 0 ? 1e4 : -1e4)));
    const p = await softmax(Tensor.from(z, [B, C])).data();
    expect(p.every((v) => Number.isFinite(v))).toBe(true);
    expectClose(p, softmaxRef(z, B, C), { atol: 1e-7, rtol: 1e-5, label: 'softmax large logits' });
  });
});

describe('softmax cross-entropy', () => {
  it('loss and gradient match the float64 reference and finite differences', async () => {
    const r = rng();
    for (const [B, C] of SHAPES) {
      const z = f32(normal(B * C, r, 2));
      const labels = randomLabels(B, C, r);
      const { loss, gradLogits } = softmaxCrossEntropy(Tensor.from(z, [B, C]), Tensor.from(labels, [B], { dtype: 'int32' }));
      expect(loss.shape).toEqual([]);
      expect(loss.dtype).toBe('float32');
      expect(gradLogits.shape).toEqual([B, C]);
      const l = await loss.data();
      expect(l.length).toBe(1);
      const want = crossEntropyRef(z, labels, B, C);
      expectClose(l, [want], { atol: 1e-6, rtol: 1e-6, label: `loss ${B}x${C}` });
      const g = await gradLogits.data();
      expectClose(g, crossEntropyGradRef(z, labels, B, C), { atol: 1e-7, rtol: 1e-5, label: `grad ${B}x${C}` });
      const idx = sampleIndices(B * C, 30, r);
      // include every label position: that is where the one-hot term lives
      for (let b = 0; b < Math.min(B, 5); b++) idx.push(b * C + labels[b]!);
      const fd = finiteDifference((v) => crossEntropyRef(v, labels, B, C), f64(z), { h: 1e-5, indices: idx });
      expectClose(idx.map((i) => g[i]!), idx.map((i) => fd.get(i)!), { atol: 1e-6, rtol: 1e-4, label: `finite differences ${B}x${C}` });
    }
  });

  it('stays finite and exact for logits like 1e4', async () => {
    const r = rng();
    const [B, C] = [4, 7];
    const z = f32(Array.from(normal(B * C, r, 1), (v, i) => v * 10 + (i % 3 === 0 ? 1e4 : -1e4)));
    // the label of row 1 sits on a -1e4 logit: the loss is ~2e4
    const labels = Int32Array.from([0, 1, 3, 6]);
    const { loss, gradLogits } = softmaxCrossEntropy(Tensor.from(z, [B, C]), Tensor.from(labels, [B], { dtype: 'int32' }));
    const l = await loss.data();
    const g = await gradLogits.data();
    expect(Number.isFinite(l[0]!)).toBe(true);
    expect(g.every((v) => Number.isFinite(v))).toBe(true);
    expectClose(l, [crossEntropyRef(z, labels, B, C)], { atol: 1e-4, rtol: 1e-6, label: 'large loss' });
    expect(l[0]!).toBeGreaterThan(1e3);
    expectClose(g, crossEntropyGradRef(z, labels, B, C), { atol: 1e-7, rtol: 1e-5, label: 'large grad' });
  });

  it('a label out of range rejects the next read with ERR_ARGUMENT, and work goes on', async () => {
    const r = rng();
    const z = Tensor.from(f32(normal(3 * 5, r)), [3, 5]);
    const bad = softmaxCrossEntropy(z, Tensor.from(new Int32Array([0, 4, 7]), [3], { dtype: 'int32' }));
    let caught: unknown;
    try {
      await bad.loss.data();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(Error);
    expect((caught as { code: string }).code).toBe('ERR_ARGUMENT');
    expect((caught as Error).message).toBe('softmaxCrossEntropy: label 7 at row 2 is out of range [0, 5)');
    // the error was delivered once; the outputs hold NaN rather than stale memory
    const g = await bad.gradLogits.data();
    expect(g.every((v) => Number.isNaN(v))).toBe(true);
    await expect(softmaxCrossEntropy(z, Tensor.from(new Int32Array([-1, 0, 0]), [3], { dtype: 'int32' })).loss.data()).rejects.toMatchObject({
      code: 'ERR_ARGUMENT',
      message: 'softmaxCrossEntropy: label -1 at row 0 is out of range [0, 5)',
    });
    const labels = new Int32Array([1, 2, 3]);
    const ok = softmaxCrossEntropy(z, Tensor.from(labels, [3], { dtype: 'int32' }));
    expectClose(await ok.loss.data(), [crossEntropyRef(await z.data(), labels, 3, 5)], { atol: 1e-6, rtol: 1e-6, label: 'after error' });
  });

  it('rejects bad input with typed errors', async () => {
    const z = Tensor.from(f32([1, 2, 3, 4, 5, 6]), [2, 3]);
    const y = Tensor.from(new Int32Array([0, 1]), [2], { dtype: 'int32' });
    expectCode(() => softmaxCrossEntropy(z, Tensor.from(f32([0, 1]), [2]) as unknown as Tensor<'int32'>), 'ERR_DTYPE', /softmaxCrossEntropy: expected labels to be int32/);
    expectCode(() => softmaxCrossEntropy(Tensor.from(new Int32Array(6), [2, 3], { dtype: 'int32' }) as unknown as Tensor<'float32'>, y), 'ERR_DTYPE', /logits/);
    expectCode(() => softmaxCrossEntropy(z, Tensor.from(new Int32Array([0, 1, 2]), [3], { dtype: 'int32' })), 'ERR_SHAPE', /logits has 2 rows but labels has 3/);
    expectCode(() => softmaxCrossEntropy(Tensor.from(f32([1, 2]), [2]), y), 'ERR_SHAPE', /expected logits to have 2 dimensions/);
    expectCode(() => softmaxCrossEntropy(z, Tensor.from(new Int32Array([0, 1]), [2, 1], { dtype: 'int32' })), 'ERR_SHAPE', /labels/);
    expectCode(() => softmaxCrossEntropy(Tensor.empty([0, 3]), Tensor.empty([0], { dtype: 'int32' })), 'ERR_SHAPE', /empty/);
    expectCode(() => softmax(Tensor.from(f32([1, 2, 3]), [3])), 'ERR_SHAPE', /softmax/);
    expectCode(() => softmax(Tensor.from(new Int32Array(6), [2, 3], { dtype: 'int32' }) as unknown as Tensor<'float32'>), 'ERR_DTYPE', /softmax/);
    expectCode(() => softmax(null as unknown as Tensor<'float32'>), 'ERR_ARGUMENT', 'softmax: expected logits to be a Tensor');
    y.dispose();
    expectCode(() => softmaxCrossEntropy(z, y), 'ERR_DISPOSED');
    const gone = Tensor.from(f32([1, 2, 3, 4, 5, 6]), [2, 3]);
    gone.dispose();
    expectCode(() => softmax(gone), 'ERR_DISPOSED');
    expectCode(() => softmaxCrossEntropy(gone, Tensor.from(new Int32Array([0, 1]), [2], { dtype: 'int32' })), 'ERR_DISPOSED');
    const { loss } = softmaxCrossEntropy(z, Tensor.from(new Int32Array([2, 2]), [2], { dtype: 'int32' }));
    expect(Number.isFinite((await loss.data())[0]!)).toBe(true);
  });
});
