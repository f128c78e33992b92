// What a careless or hostile caller of the Tensor API and the argument readers gets (issue 11,
// items 1, 8 and 12): a coded error naming the operator and the argument, never a crash, a hang,
// a silent wrap or an uncoded TypeError, and the process keeps working afterwards. Sizes are
// probed through shape checks only: nothing here allocates more than a few bytes.
import { afterEach, describe, expect, it } from 'vitest';
import {
  conv2dBackward,
  dropout,
  linearBackward,
  localResponseNorm,
  localResponseNormBackward,
  matmul,
  maxPool2d,
  relu,
  sgdStep,
  Tensor,
} from '../src/index.js';
import { loadNative } from '../src/native.js';
import { expectClose, expectCode, f32, rng, uniform } from './helpers.js';
import { lrnBackwardRef, lrnRef } from './reference/lrn.js';

/** The addon still computes right after the error: a fresh relu on fresh values. */
async function stillWorks(): Promise<void> {
  const r = rng();
  const x = uniform(5, r);
  const y = await relu(Tensor.from(f32(x), [5])).data();
  expect(Array.from(y)).toEqual(Array.from(f32(x)).map((v) => Math.max(v, 0)));
}

afterEach(async () => {
  await stillWorks();
});

describe('item 1: shape overflow', () => {
  it('a shape whose element count overflows int64 is ERR_SHAPE, not a 0-byte tensor', () => {
    expectCode(() => Tensor.from(new Float32Array(0), [65536, 65536, 65536, 65536]), 'ERR_SHAPE', /fromData: shape \[65536, 65536, 65536, 65536\] is too large/);
    expectCode(() => Tensor.empty([65536, 65536, 65536, 65536]), 'ERR_SHAPE', /empty: .*too large/);
    expectCode(() => Tensor.zeros([65536, 65536, 65536, 65536]), 'ERR_SHAPE', /too large/);
    expectCode(() => Tensor.zeros([4]).view(0, [2 ** 30, 2 ** 30, 16, 1]), 'ERR_SHAPE', /view: .*too large/);
    expectCode(() => Tensor.zeros([4]).reshape([2 ** 16, 2 ** 16, 2 ** 16, 2 ** 16]), 'ERR_SHAPE');
  });

  it('maxPool2d / localResponseNorm on such a view fail at once instead of hanging or crashing', () => {
    const t0 = Date.now();
    expectCode(() => maxPool2d(Tensor.zeros([4]).view(0, [2 ** 30, 2 ** 30, 16, 1]), { kernelSize: [2, 1] }), 'ERR_SHAPE');
    expectCode(() => localResponseNorm(Tensor.zeros([4]).view(0, [2 ** 30, 2 ** 30, 16, 1]), { size: 3 }), 'ERR_SHAPE');
    expectCode(() => localResponseNorm(Tensor.from(new Float32Array(0), [65536, 65536, 65536, 65536]), { size: 3 }), 'ERR_SHAPE');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('an empty tensor with huge non-zero dimensions is refused (no operator may loop 2^62 times over nothing)', () => {
    expectCode(() => Tensor.empty([2 ** 31 - 1, 2 ** 31 - 1, 0]), 'ERR_SHAPE', /too large/);
    // an operator whose output would be too large names itself (the error is raised below it)
    expectCode(() => matmul(Tensor.zeros([65537, 0]), Tensor.zeros([0, 65537])), 'ERR_SHAPE', /^matmul: .*too large/);
    expectCode(() => Tensor.zeros([0]).view(0, [2 ** 31 - 1, 2 ** 31 - 1, 0, 16]), 'ERR_SHAPE', /too large/);
    // a modest empty tensor is still fine
    expect(Tensor.empty([3, 0, 5]).shape).toEqual([3, 0, 5]);
  });

  it('the cap is what a typed array holds (2^32 elements): one more is too large, so data() can always answer', () => {
    // exactly 2^32 passes the size check and fails only because it does not fit in 4 elements
    expectCode(() => Tensor.zeros([4]).view(0, [65536, 65536]), 'ERR_SHAPE', /does not fit/);
    expectCode(() => Tensor.zeros([4]).view(0, [65536, 65537]), 'ERR_SHAPE', /at most 4294967296 elements/);
    // an operator whose output would exceed it (an empty inner dimension, so the inputs are tiny)
    expectCode(() => matmul(Tensor.empty([65537, 0]), Tensor.empty([0, 65537])), 'ERR_SHAPE', /too large/);
    // a dimension beyond int range, alone or with an empty one
    expectCode(() => Tensor.empty([2 ** 31]), 'ERR_SHAPE', /at most 2147483647/);
    expectCode(() => Tensor.empty([0, 2 ** 53]), 'ERR_SHAPE');
  });

  it('view offsets beyond the tensor or beyond int64 are coded errors', () => {
    const t = Tensor.zeros([4]);
    expectCode(() => t.view(5, [0]), 'ERR_SHAPE', /does not fit/);
    expectCode(() => t.view(3, [2]), 'ERR_SHAPE', /does not fit/);
    expectCode(() => t.view(2 ** 53, [1]), 'ERR_ARGUMENT', /view: offset/);
    expectCode(() => t.view(1e300, [1]), 'ERR_ARGUMENT', /view: offset/);
    expectCode(() => t.view(Number.NaN, [1]), 'ERR_ARGUMENT', /view: offset/);
    expectCode(() => t.view(-1, [1]), 'ERR_ARGUMENT', /view: offset/);
    expect(t.view(4, [0]).shape).toEqual([0]);
  });
});

describe('item 8: no silent coercion', () => {
  it('int32 data out of range or not integral is ERR_DTYPE; the limits themselves pass exactly', async () => {
    expectCode(() => Tensor.from([3e9, 2 ** 32 + 5], [2], { dtype: 'int32' }), 'ERR_DTYPE', /Tensor\.from: int32 .*element 0 is 3000000000/);
    expectCode(() => Tensor.from([0, 2 ** 31], [2], { dtype: 'int32' }), 'ERR_DTYPE', /element 1/);
    expectCode(() => Tensor.from([-(2 ** 31) - 1], [1], { dtype: 'int32' }), 'ERR_DTYPE');
    expectCode(() => Tensor.from(new Float32Array([1.5]), [1], { dtype: 'int32' }), 'ERR_DTYPE');
    expectCode(() => Tensor.from([Number.NaN], [1], { dtype: 'int32' }), 'ERR_DTYPE');
    const t = Tensor.from([-(2 ** 31), 2 ** 31 - 1, 7], [3], { dtype: 'int32' });
    expect(t.dtype).toBe('int32');
    expect(Array.from(await t.data())).toEqual([-(2 ** 31), 2 ** 31 - 1, 7]);
  });

  it('data that is not numbers is ERR_DTYPE (no NaN or 0 from a string or null)', () => {
    expectCode(() => Tensor.from(['a', null] as unknown as number[], [2]), 'ERR_DTYPE', /Tensor\.from: .*element 0 is the string "a"/);
    expectCode(() => Tensor.from([1, null] as unknown as number[], [2]), 'ERR_DTYPE', /element 1 is null/);
    expectCode(() => Tensor.from(['1'] as unknown as number[], [1]), 'ERR_DTYPE');
    expectCode(() => Tensor.from([undefined] as unknown as number[], [1]), 'ERR_DTYPE');
    expectCode(() => Tensor.from([{}] as unknown as number[], [1], { dtype: 'int32' }), 'ERR_DTYPE');
    expectCode(() => Tensor.from([1n] as unknown as number[], [1]), 'ERR_DTYPE');
  });

  it('float32 data rounds to float32 as Float32Array does (documented): overflow is +-Infinity, NaN stays NaN', async () => {
    const r = rng();
    const x = Array.from(uniform(6, r, -1e3, 1e3));
    const vals = [...x, 1e39, -1e39, Number.NaN];
    const got = await Tensor.from(vals, [vals.length]).data();
    expect(Array.from(got)).toEqual(vals.map((v) => Math.fround(v)));
    expect(got[6]).toBe(Infinity);
    expect(got[7]).toBe(-Infinity);
  });

  it('zeros and full honour dtype, and reject what they cannot make', async () => {
    const z = Tensor.zeros([3], { dtype: 'int32' });
    expect(z.dtype).toBe('int32');
    const zd = await z.data();
    expect(zd).toBeInstanceOf(Int32Array);
    expect(Array.from(zd)).toEqual([0, 0, 0]);
    const v = Math.floor(rng()() * 1e6) + 1;
    const f = await Tensor.full([2, 2], v, { dtype: 'int32' }).data();
    expect(f).toBeInstanceOf(Int32Array);
    expect(Array.from(f)).toEqual([v, v, v, v]);
    expect(Tensor.zeros([2]).dtype).toBe('float32');
    expectCode(() => Tensor.zeros([2], { dtype: 'float64' as 'float32' }), 'ERR_DTYPE', /Tensor\.zeros: unsupported dtype/);
    expectCode(() => Tensor.full([2], 1, { dtype: 7 as unknown as 'float32' }), 'ERR_DTYPE', /Tensor\.full/);
    expectCode(() => Tensor.empty([2], { dtype: 'uint8' as 'float32' }), 'ERR_DTYPE', /Tensor\.empty/);
    expectCode(() => Tensor.full([2], 1.5, { dtype: 'int32' }), 'ERR_ARGUMENT', /Tensor\.full: value/);
    expectCode(() => Tensor.full([2], 2 ** 31, { dtype: 'int32' }), 'ERR_ARGUMENT', /Tensor\.full: value/);
    expectCode(() => Tensor.full([2], '1' as unknown as number), 'ERR_ARGUMENT', /Tensor\.full: expected value/);
  });

  it('null or non-object options are ERR_ARGUMENT naming the operator', () => {
    const dy = Tensor.zeros([2, 4]);
    const x = Tensor.zeros([2, 3]);
    const w = Tensor.zeros([4, 3]);
    const bad = [null, 42, 'x', [1]] as unknown[];
    for (const o of bad) {
      expectCode(() => Tensor.zeros([2], o as object), 'ERR_ARGUMENT', /Tensor\.zeros: expected options to be an object/);
      expectCode(() => Tensor.empty([2], o as object), 'ERR_ARGUMENT', /Tensor\.empty: expected options/);
      expectCode(() => Tensor.full([2], 1, o as object), 'ERR_ARGUMENT', /Tensor\.full: expected options/);
      expectCode(() => Tensor.from([1], [1], o as object), 'ERR_ARGUMENT', /Tensor\.from: expected options/);
      expectCode(() => linearBackward(dy, x, w, o as object), 'ERR_ARGUMENT', /linearBackward: expected options/);
    }
    const img = Tensor.zeros([1, 1, 2, 2]);
    expectCode(() => conv2dBackward(img, img, Tensor.zeros([1, 1, 1, 1]), 42 as unknown as object), 'ERR_ARGUMENT', /conv2dBackward: expected options/);
    expectCode(() => maxPool2d(img, null as unknown as { kernelSize: number }), 'ERR_ARGUMENT', /maxPool2d: expected options/);
    expectCode(() => localResponseNorm(img, null as unknown as { size: number }), 'ERR_ARGUMENT', /localResponseNorm: expected options/);
    expectCode(() => dropout(img, null as unknown as { p: number; seed: number }), 'ERR_ARGUMENT', /dropout: expected options/);
    const p = Tensor.zeros([2]);
    expectCode(() => sgdStep(p, Tensor.zeros([2]), null, null as unknown as { lr: number }), 'ERR_ARGUMENT', /sgdStep: expected options/);
  });

  it('LRN rejects alpha / beta / k beyond float32, and a k^-(beta + 1) that overflows float32', () => {
    const x = Tensor.from(f32(uniform(2 * 3 * 4, rng())), [2, 3, 4]);
    for (const key of ['alpha', 'beta', 'k'] as const) {
      expectCode(() => localResponseNorm(x, { size: 3, [key]: 1e39 }), 'ERR_ARGUMENT', new RegExp(`localResponseNorm: ${key} must be at most`));
      expectCode(() => localResponseNormBackward(x, x, x, { size: 3, [key]: 1e39 }), 'ERR_ARGUMENT', new RegExp(`localResponseNormBackward: ${key}`));
    }
    expectCode(() => localResponseNorm(x, { size: 3, k: 1e-5, beta: 10 }), 'ERR_ARGUMENT', /localResponseNorm: k = 1e-05 with beta = 10 overflows float32/);
    expectCode(() => localResponseNorm(x, { size: 3, k: 1e-5, beta: 1e30 }), 'ERR_ARGUMENT', /overflows float32/);
  });

  it('LRN at the smallest k allowed matches the float64 reference, forward and backward (finite)', async () => {
    const r = rng();
    const g = { N: 2, C: 5, S: 6, size: 3, alpha: 1e-4, beta: 0.75, k: 1e-5 };
    // values around 1e-3 keep the window sum comparable to k, where the k term matters most
    const xv = f32(uniform(g.N * g.C * g.S, r, -2e-3, 2e-3));
    const dyv = f32(uniform(g.N * g.C * g.S, r));
    const x = Tensor.from(xv, [g.N, g.C, g.S]);
    const opts = { size: g.size, alpha: g.alpha, beta: g.beta, k: g.k };
    const y = localResponseNorm(x, opts);
    const dx = localResponseNormBackward(Tensor.from(dyv, [g.N, g.C, g.S]), x, y, opts);
    const yv = await y.data();
    const dxv = await dx.data();
    expect(yv.every(Number.isFinite) && dxv.every(Number.isFinite)).toBe(true);
    expectClose(yv, lrnRef(xv, g), { rtol: 1e-4, atol: 1e-6 });
    expectClose(dxv, lrnBackwardRef(dyv, xv, g), { rtol: 1e-3, atol: 1e-3 });
  });
});

describe('item 12: every error carries a code', () => {
  it('a Proxy of a Tensor or Object.create(Tensor.prototype) is ERR_ARGUMENT, not "Cannot read private member"', async () => {
    const real = Tensor.zeros([2]);
    const proxy = new Proxy(real, {});
    const fake = Object.create(Tensor.prototype) as Tensor;
    for (const t of [proxy, fake]) {
      expect(Tensor.isTensor(t)).toBe(false);
      expectCode(() => t.shape, 'ERR_ARGUMENT', /not a Tensor/);
      expectCode(() => t.dtype, 'ERR_ARGUMENT', /not a Tensor/);
      expectCode(() => t.disposed, 'ERR_ARGUMENT', /not a Tensor/);
      expectCode(() => t.dataSync(), 'ERR_ARGUMENT', /not a Tensor/);
      expectCode(() => t.data(), 'ERR_ARGUMENT', /not a Tensor/);
      expectCode(() => t.view(0, [1]), 'ERR_ARGUMENT', /not a Tensor/);
      expectCode(() => t.reshape([2]), 'ERR_ARGUMENT', /not a Tensor/);
      expectCode(() => t.dispose(), 'ERR_ARGUMENT', /not a Tensor/);
      expectCode(() => relu(t as Tensor<'float32'>), 'ERR_ARGUMENT', /relu: expected input to be a Tensor/);
      expect(String(t)).toBe('Tensor(not a tensor)');
    }
    expect(Tensor.isTensor(real)).toBe(true);
    expect(real.disposed).toBe(false);
    expect(Array.from(await real.data())).toEqual([0, 0]);
  });

  it('shapes that are not arrays of integers are coded errors', () => {
    const t = Tensor.zeros([2, 3]);
    expectCode(() => Tensor.from([1], 5 as unknown as number[]), 'ERR_ARGUMENT', /Tensor\.from: expected shape/);
    expectCode(() => Tensor.empty({} as unknown as number[]), 'ERR_ARGUMENT', /Tensor\.empty: expected shape/);
    expectCode(() => Tensor.zeros(null as unknown as number[]), 'ERR_ARGUMENT', /Tensor\.zeros: expected shape/);
    expectCode(() => Tensor.zeros('12' as unknown as number[]), 'ERR_ARGUMENT');
    expectCode(() => t.view(0, 3 as unknown as number[]), 'ERR_ARGUMENT', /view: expected shape/);
    expectCode(() => t.reshape(null as unknown as number[]), 'ERR_ARGUMENT', /reshape: expected shape/);
    expectCode(() => t.reshape(undefined as unknown as number[]), 'ERR_ARGUMENT', /reshape/);
    expectCode(() => t.reshape(['a'] as unknown as number[]), 'ERR_SHAPE', /reshape: .*entry 0/);
    expectCode(() => t.reshape([-2, -3]), 'ERR_SHAPE', /reshape/);
    expectCode(() => t.reshape([2.5, 2.4]), 'ERR_SHAPE', /reshape/);
    expectCode(() => Tensor.empty([1, 'x'] as unknown as number[]), 'ERR_SHAPE', /empty: shape .*entry 1 is not a number/);
    expectCode(() => Tensor.empty([1, -1]), 'ERR_SHAPE', /entry 1 is -1/);
    expectCode(() => Tensor.empty([1, 1, 1, 1, 1]), 'ERR_SHAPE', /at most 4 dimensions/);
    // an endless iterable stops at the fifth entry
    function* endless(): Generator<number> {
      for (;;) yield 1;
    }
    expectCode(() => Tensor.empty(endless() as unknown as number[]), 'ERR_SHAPE', /at most 4 dimensions/);
    // iterables that hold a valid shape still work, as before
    expect(Tensor.empty(new Int32Array([2, 3]) as unknown as number[]).shape).toEqual([2, 3]);
    expect(t.reshape([3, -1]).shape).toEqual([3, 2]);
  });

  it('BigInt arrays are ERR_DTYPE; data that is not an array is ERR_ARGUMENT', () => {
    expectCode(() => Tensor.from(new BigInt64Array(2) as unknown as number[], [2]), 'ERR_DTYPE', /Tensor\.from: .*BigInt64Array/);
    expectCode(() => Tensor.from(new BigUint64Array(2) as unknown as number[], [2], { dtype: 'int32' }), 'ERR_DTYPE', /BigUint64Array/);
    const native = loadNative();
    expectCode(() => native.fromData(new BigInt64Array(2) as unknown as Float32Array, [2]), 'ERR_DTYPE', /fromData: expected data/);
    expectCode(() => native.fromData(null as unknown as Float32Array, [2]), 'ERR_ARGUMENT', /fromData: expected data/);
    expectCode(() => Tensor.from(null as unknown as number[], [1]), 'ERR_ARGUMENT', /Tensor\.from: expected data/);
    expectCode(() => Tensor.from(5 as unknown as number[], [1]), 'ERR_ARGUMENT', /Tensor\.from: expected data/);
    expectCode(() => Tensor.from(new DataView(new ArrayBuffer(4)) as unknown as number[], [1]), 'ERR_ARGUMENT', /DataView/);
    expectCode(() => Tensor.from({ length: 1e12 } as unknown as number[], [1]), 'ERR_ARGUMENT', /data\.length/);
    expectCode(() => Tensor.from({ length: -1 } as unknown as number[], [1]), 'ERR_ARGUMENT', /data\.length/);
  });

  it('SharedArrayBuffer-backed arrays are read (a copy is made before returning)', async () => {
    const r = rng();
    const xs = uniform(6, r);
    const f = new Float32Array(new SharedArrayBuffer(6 * 4));
    f.set(f32(xs));
    const t = Tensor.from(f, [2, 3]);
    f.fill(0); // the tensor holds a copy
    expect(Array.from(await t.data())).toEqual(Array.from(f32(xs)));
    const i = new Int32Array(new SharedArrayBuffer(3 * 4));
    i.set([Math.floor(xs[0]! * 1000), -5, 2 ** 31 - 1]);
    const ti = Tensor.from(i, [3]);
    expect(ti.dtype).toBe('int32');
    expect(Array.from(await ti.data())).toEqual(Array.from(i));
    // a view of a shared buffer at an offset
    const sub = new Float32Array(f.buffer, 8, 2);
    sub.set([1.5, -2.5]);
    expect(Array.from(await Tensor.from(sub, [2]).data())).toEqual([1.5, -2.5]);
  });
});
