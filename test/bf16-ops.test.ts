// bfloat16 forms of the small operators (ReLU, max pooling, dropout), the SGD step's bfloat16
// copy of the weights and refreshBf16Copy, against independent references on the bfloat16
// inputs (float64 loops, the bit-level rounding of reference/bf16.ts, the BigInt dropout stream).
// These operators call the conversions of native/core/bf16.h only (no AVX-512 BF16 kernel), so
// the CPU's two bfloat16 kernels do not differ here; setBf16Kernel is exercised in bf16.test.ts.
import { describe, expect, it } from 'vitest';
import {
  copy, dropout, dropoutBackward, fill, localResponseNorm, maxPool2d, maxPool2dBackward, refreshBf16Copy, relu, reluBackward, sgdStep,
  softmaxCrossEntropy, Tensor, type SgdStepOptions,
} from '../src/index.js';
import { describeCuda } from './cuda-gate.js';
import { expectCode, normal, rng } from './helpers.js';
import { bf16Value, f32Bits, f32BitsToBf16 } from './reference/bf16.js';
import { dropoutMaskRef } from './reference/dropout.js';
import { maxPool2dBackwardRef, maxPool2dRef, poolOutSize, type PoolGeometry } from './reference/pool.js';
import { sgdStepRef } from './reference/sgd.js';

/** The bfloat16 pattern nearest to number v (through float32, as Tensor.from does). */
const toBf16 = (v: number): number => f32BitsToBf16(f32Bits(v));

/** n random bfloat16 patterns: normal values, with some zeros of both signs, NaNs, infinities and subnormals. */
function randomBf16(n: number, r: () => number, std = 1): Uint16Array {
  const out = new Uint16Array(n);
  const v = normal(n, r, std);
  const specials = [0x0000, 0x8000, 0x7fc0, 0xffc1, 0x7f80, 0xff80, 0x0001, 0x8003, 0x7f7f];
  for (let i = 0; i < n; i++) out[i] = r() < 0.03 ? specials[Math.floor(r() * specials.length)]! : toBf16(v[i]!);
  return out;
}

/** n bfloat16 values from a few levels, so that windows hold ties; finite. */
function tiedBf16(n: number, r: () => number): Uint16Array {
  return Uint16Array.from({ length: n }, () => toBf16(Math.floor(r() * 5) - 2));
}

function firstMismatch(got: ArrayLike<number>, want: ArrayLike<number>): string {
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return `[${i}] got 0x${got[i]!.toString(16)}, want 0x${want[i]!.toString(16)}`;
  return got.length === want.length ? '' : `length ${got.length} != ${want.length}`;
}

const bf16 = (bits: Uint16Array, shape: number[], device = 'cpu') => Tensor.from(bits, shape, { dtype: 'bfloat16', device });

// ---- ReLU ---------------------------------------------------------------------------------------

/** relu on patterns: x kept where its value is > 0 or NaN (bits as they are), +0 elsewhere. */
const reluRef = (x: Uint16Array) => x.map((h) => (bf16Value(h) <= 0 ? 0 : h));
const reluBackwardRef = (dy: Uint16Array, y: Uint16Array) => dy.map((g, i) => (bf16Value(y[i]!) <= 0 ? 0 : g));

async function checkRelu(device: string): Promise<void> {
  const r = rng();
  for (const shape of [[1], [7], [3, 5, 7, 11], [65537]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = randomBf16(n, r);
    const y = relu(bf16(x, shape, device));
    expect(y.dtype).toBe('bfloat16');
    expect(y.shape).toEqual(shape);
    const yb = await y.data();
    expect(firstMismatch(yb, reluRef(x))).toBe('');
    const dy = randomBf16(n, r);
    const dx = reluBackward(bf16(dy, shape, device), y);
    expect(dx.dtype).toBe('bfloat16');
    expect(firstMismatch(await dx.data(), reluBackwardRef(dy, yb))).toBe('');
  }
}

// ---- max pooling --------------------------------------------------------------------------------

const GEOMETRIES: PoolGeometry[] = [
  { N: 2, C: 3, H: 13, W: 13, kernel: [3, 3], stride: [2, 2], padding: [0, 0] }, // AlexNet's pooling
  { N: 1, C: 5, H: 27, W: 19, kernel: [3, 3], stride: [2, 2], padding: [1, 1] },
  { N: 3, C: 2, H: 7, W: 11, kernel: [2, 3], stride: [1, 2], padding: [1, 0] },
  { N: 1, C: 1, H: 9, W: 8, kernel: [4, 4], stride: [3, 3], padding: [2, 1] },
  { N: 2, C: 4, H: 6, W: 6, kernel: [2, 2], stride: [2, 2], padding: [0, 0] },
];

const optsOf = (g: PoolGeometry) => ({ kernelSize: g.kernel, stride: g.stride, padding: g.padding });

async function checkPool(device: string): Promise<void> {
  const r = rng();
  for (const g of GEOMETRIES) {
    const [Ho, Wo] = poolOutSize(g);
    const xShape = [g.N, g.C, g.H, g.W];
    for (const values of ['random', 'ties'] as const) {
      const n = g.N * g.C * g.H * g.W;
      // 'random' has no NaN here: which of two NaNs a window keeps is not specified
      const x = values === 'ties' ? tiedBf16(n, r) : Uint16Array.from(normal(n, r), toBf16);
      const xv = Float64Array.from(x, bf16Value);
      const tx = bf16(x, xShape, device);
      const y = maxPool2d(tx, optsOf(g));
      expect(y.dtype).toBe('bfloat16');
      expect(y.shape).toEqual([g.N, g.C, Ho, Wo]);
      const yb = await y.data();
      // exact: every maximum is one of the inputs
      expect(firstMismatch(yb, Uint16Array.from(maxPool2dRef(xv, g), toBf16))).toBe('');
      const dyb = Uint16Array.from(normal(g.N * g.C * Ho * Wo, r), toBf16);
      const dx = maxPool2dBackward(bf16(dyb, [g.N, g.C, Ho, Wo], device), tx, y, optsOf(g));
      expect(dx.dtype).toBe('bfloat16');
      expect(dx.shape).toEqual(xShape);
      const got = Float64Array.from(await dx.data(), bf16Value);
      // float64: each input's share of dy, routed to the first maximum of each window. The
      // native sum runs in float32 (at most ceil(k/s)^2 terms of 8 significant bits: exact
      // while their exponents lie within 16 of each other) and is rounded once to bfloat16, so
      // each result is within bfloat16's unit roundoff (2^-8 relative: 8 significant bits) of the float64 sum, plus the
      // float32 sum's error, (terms) * 2^-24 * sum |terms|.
      const dyv = Float64Array.from(dyb, bf16Value);
      const want = maxPool2dBackwardRef(dyv, xv, g);
      const mags = maxPool2dBackwardRef(dyv.map(Math.abs), xv, g);
      const terms = Math.ceil(g.kernel[0] / g.stride[0]) * Math.ceil(g.kernel[1] / g.stride[1]);
      for (let i = 0; i < want.length; i++) {
        const tol = 2 ** -8 * Math.abs(want[i]!) + terms * 2 ** -24 * mags[i]! * (1 + 2 ** -8);
        if (!(Math.abs(got[i]! - want[i]!) <= tol)) {
          expect.fail(`${device} ${values} ${JSON.stringify(g)}: dx[${i}] = ${got[i]}, float64 ${want[i]} (tolerance ${tol})`);
        }
      }
    }
  }
}

// ---- dropout ------------------------------------------------------------------------------------

async function checkDropout(device: string): Promise<void> {
  const r = rng();
  for (const [n, p, seed, offset] of [[1, 0.5, 3, 0], [1000, 0.4, 12345, 77], [65539, 0.9, 2 ** 40 + 5, 2 ** 33]] as const) {
    const x = randomBf16(n, r);
    const { output, mask } = dropout(bf16(x, [n], device), { p, seed, offset });
    expect(output.dtype).toBe('bfloat16');
    expect(mask.dtype).toBe('float32');
    const m = await mask.data();
    // the same mask as float32 dropout and the stream's reference
    expect(Array.from(m)).toEqual(Array.from(dropoutMaskRef(n, p, seed, offset)));
    const f32 = dropout(bf16(x, [n], device).float(), { p, seed, offset });
    expect(Array.from(await f32.mask.data())).toEqual(Array.from(m));
    // y = bf16(fround(x * m)): the float32 product (exact: 8 x 24 significant bits fit), rounded once
    const want = x.map((h, i) => f32BitsToBf16(f32Bits(Math.fround(bf16Value(h) * m[i]!))));
    expect(firstMismatch(await output.data(), want)).toBe('');
    const dy = randomBf16(n, r);
    const dx = dropoutBackward(bf16(dy, [n], device), mask);
    expect(dx.dtype).toBe('bfloat16');
    expect(firstMismatch(await dx.data(), dy.map((h, i) => f32BitsToBf16(f32Bits(Math.fround(bf16Value(h) * m[i]!)))))).toBe('');
  }
}

// ---- SGD's bfloat16 copy ------------------------------------------------------------------------

const SGD_CASES: SgdStepOptions[] = [
  { lr: 0.1 },
  { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, firstStep: true },
  { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, dampening: 0.1 },
  { lr: 0.01, momentum: 0.8, nesterov: true },
  { lr: 0.02, momentum: 0.9, weightDecay: 1e-3, convention: 'krizhevsky' },
];

async function checkSgdCopy(device: string): Promise<void> {
  const r = rng();
  for (const n of [1, 33, 100_003]) {
    for (const o of SGD_CASES) {
      const w0 = Float32Array.from(normal(n, r));
      const g = Float32Array.from(normal(n, r));
      const b0 = Float32Array.from(normal(n, r, 0.1));
      const w = Tensor.from(w0, [n], { device });
      const buf = Tensor.from(b0, [n], { device });
      const w16 = Tensor.zeros([n], { dtype: 'bfloat16', device });
      sgdStep(w, Tensor.from(g, [n], { device }), o.momentum ? buf : null, o, w16);
      // the float32 step is the step without a copy (float64 reference, rounded as the kernel does)
      const wr = Float64Array.from(w0);
      sgdStepRef(wr, g, o.momentum ? Float64Array.from(b0) : null, o);
      const wd = await w.data();
      expect(Array.from(wd)).toEqual(Array.from(wr, Math.fround));
      // the copy, bit for bit: round-to-nearest-even of the updated float32 weight
      expect(firstMismatch(await w16.data(), Uint16Array.from(wd, (v) => f32BitsToBf16(f32Bits(v))))).toBe('');
    }
  }
}

async function checkRefresh(device: string): Promise<void> {
  const r = rng();
  const n = 1000;
  const w = Tensor.from(Float32Array.from(normal(n, r)), [n], { device });
  const w16 = Tensor.zeros([n], { dtype: 'bfloat16', device });
  const rounded = async () => Uint16Array.from(await w.data(), (v) => f32BitsToBf16(f32Bits(v)));
  refreshBf16Copy(w16, w);
  expect(firstMismatch(await w16.data(), await rounded())).toBe('');
  // a step writes the copy and records it: refreshing converts nothing (a copy overwritten
  // behind the record's back stays as it is, which shows no conversion ran)
  sgdStep(w, Tensor.from(Float32Array.from(normal(n, r)), [n], { device }), null, { lr: 0.1 }, w16);
  expect(firstMismatch(await w16.data(), await rounded())).toBe('');
  const junk = bf16(Uint16Array.from({ length: n }, () => 0x3f80), [n], device);
  copy(w16, junk);
  refreshBf16Copy(w16, w);
  expect((await w16.data())[0]).toBe(0x3f80);
  // any write to the source makes the next refresh convert: a fill, a copy into it
  fill(w, 0.3);
  refreshBf16Copy(w16, w);
  expect(firstMismatch(await w16.data(), await rounded())).toBe('');
  copy(w, Tensor.from(Float32Array.from(normal(n, r)), [n], { device }));
  refreshBf16Copy(w16, w);
  expect(firstMismatch(await w16.data(), await rounded())).toBe('');
  // views of part of a buffer are never recorded: they convert at every call
  const big = Tensor.from(Float32Array.from(normal(2 * n, r)), [2 * n], { device });
  const big16 = Tensor.zeros([2 * n], { dtype: 'bfloat16', device });
  const v = big.view(n, [n]);
  const v16 = big16.view(n, [n]);
  refreshBf16Copy(v16, v);
  copy(v16, junk);
  refreshBf16Copy(v16, v);
  expect(firstMismatch(await v16.data(), Uint16Array.from(await v.data(), (x) => f32BitsToBf16(f32Bits(x))))).toBe('');
}

describe('bfloat16 small operators on the CPU', () => {
  it('relu and reluBackward: exact, bit for bit (NaN kept, -0 and negatives to +0)', () => checkRelu('cpu'));
  it('maxPool2d: exact; backward within the float32-sum-then-round bound of float64 (ties to the first maximum)', () => checkPool('cpu'));
  it('maxPool2dBackward routes ties to the first maximum: a last-maximum rule would fail the bound', async () => {
    // one window [1, 1] with dy = 1: the first element gets it
    const x = bf16(Uint16Array.of(toBf16(2), toBf16(2)), [1, 1, 1, 2]);
    const y = maxPool2d(x, { kernelSize: [1, 2] });
    const dx = await maxPool2dBackward(bf16(Uint16Array.of(toBf16(1)), [1, 1, 1, 1]), x, y, { kernelSize: [1, 2] }).data();
    expect(Array.from(dx, bf16Value)).toEqual([1, 0]);
  });
  it('dropout: the float32 mask for the same seed and offset, products rounded once', () => checkDropout('cpu'));
  it('sgdStep writes bf16(w) after the step in the same call, bit for bit, in every convention', () => checkSgdCopy('cpu'));
  it('refreshBf16Copy converts only after a write to the source (whole buffers), views at every call', () => checkRefresh('cpu'));
  it('other dtypes and mixed dtypes are ERR_DTYPE; LRN and softmax cross-entropy stay float32', () => {
    const x16 = bf16(Uint16Array.of(1, 2, 3, 4), [1, 1, 2, 2]);
    const x32 = x16.float();
    const i32 = Tensor.from(Int32Array.of(1, 2, 3, 4), [1, 1, 2, 2], { dtype: 'int32' });
    expectCode(() => relu(i32 as never), 'ERR_DTYPE', /relu/);
    expectCode(() => reluBackward(x32 as never, x16), 'ERR_DTYPE', /reluBackward/);
    expectCode(() => maxPool2d(i32 as never, { kernelSize: 2 }), 'ERR_DTYPE', /maxPool2d/);
    const y16 = maxPool2d(x16, { kernelSize: 2 });
    expectCode(() => maxPool2dBackward(y16.float() as never, x16, y16, { kernelSize: 2 }), 'ERR_DTYPE', /maxPool2dBackward/);
    expectCode(() => dropout(i32 as never, { p: 0.5, seed: 1 }), 'ERR_DTYPE', /dropout/);
    const { mask } = dropout(x16, { p: 0.5, seed: 1 });
    expectCode(() => dropoutBackward(x16, x16 as never), 'ERR_DTYPE', /dropoutBackward/);
    expectCode(() => dropoutBackward(i32 as never, mask), 'ERR_DTYPE', /dropoutBackward/);
    expectCode(() => localResponseNorm(x16 as never, { size: 3 }), 'ERR_DTYPE');
    expectCode(() => softmaxCrossEntropy(x16.reshape([2, 2]) as never, Tensor.from(Int32Array.of(0, 1), [2], { dtype: 'int32' })), 'ERR_DTYPE');
    const w = Tensor.from(Float32Array.of(1, 2), [2]);
    const g = Tensor.from(Float32Array.of(3, 4), [2]);
    expectCode(() => sgdStep(w, g, null, { lr: 0.1 }, Tensor.zeros([2]) as never), 'ERR_DTYPE', /paramBf16/);
    expectCode(() => sgdStep(w, g, null, { lr: 0.1 }, Tensor.zeros([3], { dtype: 'bfloat16' })), 'ERR_SHAPE', /paramBf16/);
  });
});

describeCuda('bfloat16 small operators on CUDA', () => {
  it('relu and reluBackward: exact, bit for bit', () => checkRelu('cuda:0'));
  it('maxPool2d (our kernels): exact; backward within the bound of float64', () => checkPool('cuda:0'));
  it('dropout: the CPU mask, products rounded once', () => checkDropout('cuda:0'));
  it('sgdStep writes bf16(w) in the same kernel, bit for bit', () => checkSgdCopy('cuda:0'));
  it('refreshBf16Copy converts only after a write to the source', () => checkRefresh('cuda:0'));
});
