import { describe, expect, it } from 'vitest';
import { localResponseNorm, localResponseNormBackward, Tensor } from '../src/index.js';
import { dot, expectClose, expectCode, f32, f64, finiteDifference, rng, sampleIndices, uniform } from './helpers.js';
import { checkEmptyLrn } from './empty-sizes.js';
import { lrnBackwardRef, lrnRef, type LrnGeometry } from './reference/lrn.js';

interface Case {
  shape: number[];
  size: number;
  alpha?: number;
  beta?: number;
  k?: number;
}

function geometry(c: Case): LrnGeometry {
  return {
    N: c.shape[0]!,
    C: c.shape[1]!,
    S: c.shape.slice(2).reduce((a, b) => a * b, 1),
    size: c.size,
    alpha: c.alpha ?? 1e-4,
    beta: c.beta ?? 0.75,
    k: c.k ?? 1,
  };
}

const cases: Case[] = [
  { shape: [1, 3, 5, 7], size: 5 }, // PyTorch defaults
  { shape: [3, 7, 4, 5], size: 5, alpha: 0.5, beta: 0.75, k: 2 }, // the paper's k and n (large alpha so it matters)
  { shape: [2, 5, 3, 3], size: 4, alpha: 1, beta: 0.6, k: 1.5 }, // even size: asymmetric window, general beta
  { shape: [3, 6, 7], size: 3, alpha: 2, beta: 1.2, k: 0.5 }, // rank 3
  { shape: [2, 5, 3, 1], size: 9, alpha: 1.5, beta: 0.75, k: 1 }, // window wider than the channels
  { shape: [1, 7, 1, 300], size: 1, alpha: 3, beta: 0.5, k: 1 }, // size 1; more positions than one block
  { shape: [2, 9, 17, 19], size: 2, alpha: 0.8, beta: 0.75, k: 1 },
];

const opts = (c: Case) => ({ size: c.size, ...(c.alpha !== undefined ? { alpha: c.alpha } : {}), ...(c.beta !== undefined ? { beta: c.beta } : {}), ...(c.k !== undefined ? { k: c.k } : {}) });

describe('localResponseNorm', () => {
  it.each(cases)('forward and backward match the float64 reference and finite differences: %j', async (c) => {
    const r = rng();
    const g = geometry(c);
    const n = g.N * g.C * g.S;
    const x = f64(f32(uniform(n, r, -2, 2)));
    const dy = f64(f32(uniform(n, r)));
    const tx = Tensor.from(f32(x), c.shape);
    const ty = localResponseNorm(tx, opts(c));
    expect(ty.shape).toEqual(c.shape);
    const y = await ty.data();
    expectClose(y, lrnRef(x, g), { atol: 1e-6, rtol: 1e-5, label: 'lrn forward' });

    const dx = await localResponseNormBackward(Tensor.from(f32(dy), c.shape), tx, ty, opts(c)).data();
    expectClose(dx, lrnBackwardRef(dy, x, g), { atol: 1e-6, rtol: 1e-4, label: 'lrn backward vs analytic' });
    const fd = finiteDifference((v) => dot(lrnRef(v, g), dy), x, { h: 1e-5, indices: sampleIndices(n, 40, r) });
    expectClose(
      [...fd.keys()].map((i) => dx[i]!),
      [...fd.values()],
      { atol: 1e-5, rtol: 1e-3, label: 'lrn backward vs finite differences' },
    );
  });

  it('AlexNet LRN after conv1 (96 x 55x55, size 5, k 2) at batch 2', async () => {
    const r = rng();
    const c: Case = { shape: [2, 96, 55, 55], size: 5, alpha: 5e-4, beta: 0.75, k: 2 };
    const g = geometry(c);
    const n = 2 * 96 * 55 * 55;
    // post-ReLU-like magnitudes so the normalisation is far from the identity
    const x = f64(f32(uniform(n, r, 0, 40)));
    const dy = f64(f32(uniform(n, r)));
    const tx = Tensor.from(f32(x), c.shape);
    const ty = localResponseNorm(tx, opts(c));
    expectClose(await ty.data(), lrnRef(x, g), { atol: 1e-5, rtol: 1e-5, label: 'AlexNet lrn forward' });
    const dx = await localResponseNormBackward(Tensor.from(f32(dy), c.shape), tx, ty, opts(c)).data();
    expectClose(dx, lrnBackwardRef(dy, x, g), { atol: 1e-6, rtol: 1e-4, label: 'AlexNet lrn backward' });
  });

  it('rejects bad input with typed errors and keeps working', async () => {
    const r = rng();
    const t = (shape: number[]) => Tensor.from(f32(uniform(shape.reduce((a, b) => a * b, 1), r)), shape);
    const x = t([2, 4, 3, 3]);
    expectCode(() => localResponseNorm(t([4, 9]), { size: 3 }), 'ERR_SHAPE', /localResponseNorm: expected input .*3 or 4 dimensions/);
    expectCode(() => localResponseNorm(Tensor.from(new Int32Array(36), [1, 4, 3, 3]), { size: 3 }), 'ERR_DTYPE', /localResponseNorm/);
    expectCode(() => localResponseNorm(x, {} as { size: number }), 'ERR_ARGUMENT', /size/);
    expectCode(() => localResponseNorm(x, { size: 0 }), 'ERR_ARGUMENT', /size must be a positive integer/);
    expectCode(() => localResponseNorm(x, { size: 2.5 }), 'ERR_ARGUMENT', /size/);
    expectCode(() => localResponseNorm(x, { size: 3, alpha: Number.NaN }), 'ERR_ARGUMENT', /alpha/);
    expectCode(() => localResponseNorm(x, { size: 3, beta: Number.POSITIVE_INFINITY }), 'ERR_ARGUMENT', /beta/);
    expectCode(() => localResponseNorm(x, { size: 3, k: 0 }), 'ERR_ARGUMENT', /k must be at least 1e-05/);
    expectCode(() => localResponseNorm(x, { size: 3, alpha: -1 }), 'ERR_ARGUMENT', /alpha must be non-negative/);
    const y = localResponseNorm(x, { size: 3 });
    expectCode(() => localResponseNormBackward(t([2, 4, 3, 2]), x, y, { size: 3 }), 'ERR_SHAPE', /localResponseNormBackward: expected gradOutput of shape \[2, 4, 3, 3\]/);
    expectCode(() => localResponseNormBackward(t([2, 4, 3, 3]), x, t([2, 4, 9]), { size: 3 }), 'ERR_SHAPE', /output/);
    const gone = t([2, 4, 3, 3]);
    gone.dispose();
    expectCode(() => localResponseNorm(gone, { size: 3 }), 'ERR_DISPOSED');
    expectCode(() => localResponseNormBackward(gone, x, y, { size: 3 }), 'ERR_DISPOSED');
    const xs = f64(await x.data());
    expectClose(await localResponseNorm(x, { size: 3, alpha: 1 }).data(), lrnRef(xs, geometry({ shape: [2, 4, 3, 3], size: 3, alpha: 1 })), {
      atol: 1e-6,
      rtol: 1e-5,
      label: 'lrn after errors',
    });
  });

  it("rejects what cuDNN rejects on every device: size outside [1, 16], k < 1e-5, beta < 0.01 (ERR_ARGUMENT naming the option and the limit)", async () => {
    const r = rng();
    const shape = [2, 17, 3, 4];
    const n = shape.reduce((a, b) => a * b, 1);
    const x = Tensor.from(f32(uniform(n, r, -2, 2)), shape);
    const y = localResponseNorm(x, { size: 3 });
    const dy = Tensor.from(f32(uniform(n, r)), shape);
    const bad: [Record<string, number>, RegExp][] = [
      [{ size: 17 }, /localResponseNorm: size must be an integer in \[1, 16\].* but got 17/],
      [{ size: 5, k: 9e-6 }, /localResponseNorm: k must be at least 1e-05 .*CUDNN_LRN_MIN_K.* but got 9e-06/],
      [{ size: 5, beta: 0.009 }, /localResponseNorm: beta must be at least 0\.01 .*CUDNN_LRN_MIN_BETA.* but got 0\.009/],
      [{ size: 5, beta: -0.75 }, /beta must be at least 0\.01/],
      [{ size: 5, alpha: -1e-4 }, /alpha must be non-negative/],
    ];
    for (const [o, re] of bad) {
      expectCode(() => localResponseNorm(x, o as { size: number }), 'ERR_ARGUMENT', re);
      expectCode(() => localResponseNormBackward(dy, x, y, o as { size: number }), 'ERR_ARGUMENT', new RegExp(re.source.replace('localResponseNorm:', 'localResponseNormBackward:')));
    }
    // the limits themselves are accepted, and computed right
    const xs = f64(await x.data());
    const dys = f64(await dy.data());
    for (const c of [
      { shape, size: 16, alpha: 0.7, beta: 0.75, k: 1 }, // the widest window (even: PyTorch's asymmetric one)
      { shape, size: 5, alpha: 0.3, beta: 0.01, k: 1e-5 }, // the smallest k and beta
    ]) {
      const g = geometry(c);
      const ty = localResponseNorm(x, opts(c));
      expectClose(await ty.data(), lrnRef(xs, g), { atol: 1e-6, rtol: 1e-5, label: `lrn at the limits ${JSON.stringify(opts(c))}` });
      const dx = await localResponseNormBackward(dy, x, ty, opts(c)).data();
      expectClose(dx, lrnBackwardRef(dys, xs, g), { atol: 1e-5, rtol: 1e-4, label: `lrn backward at the limits ${JSON.stringify(opts(c))}` });
    }
  });

  it('an empty batch, channel count or plane gives empty outputs of the same shape', async () => {
    await checkEmptyLrn('cpu');
  });
});
