import { describe, expect, it } from 'vitest';
import { axpy, copy, fill, scale, Tensor } from '../src/index.js';
import { expectClose, expectCode, f32, rng, uniform } from './helpers.js';

// Sizes below and above the parallel grain (64K elements), and awkward small ones.
const SIZES = [1, 7, 13 * 7, 300_007];

describe('fill', () => {
  it('fills float32 tensors of awkward sizes and Tensor.full / zeros use it', async () => {
    const r = rng();
    for (const n of SIZES) {
      const v = Math.fround(uniform(1, r, -5, 5)[0]!);
      const t = Tensor.from(f32(uniform(n, r)), [n]);
      fill(t, v);
      const got = await t.data();
      expectClose(got, new Float64Array(n).fill(v), { atol: 0, rtol: 0, label: `fill n=${n}` });
    }
    const full = await Tensor.full([3, 5], 2.5).data();
    expectClose(full, new Float64Array(15).fill(2.5), { atol: 0, rtol: 0, label: 'full' });
    const z = await Tensor.zeros([7, 13]).data();
    expectClose(z, new Float64Array(91), { atol: 0, rtol: 0, label: 'zeros' });
  });

  it('fills int32 tensors with integers and only the elements of a view', async () => {
    const t = Tensor.from(new Int32Array([9, 9, 9, 9, 9, 9, 9]), [7], { dtype: 'int32' });
    fill(t, -3);
    expect(Array.from(await t.data())).toEqual([-3, -3, -3, -3, -3, -3, -3]);
    const r = rng();
    const base = f32(uniform(20, r, 1, 2));
    const store = Tensor.from(base, [20]);
    fill(store.view(5, [2, 3]), -7);
    const got = await store.data();
    const want = Array.from(base, (v, i) => (i >= 5 && i < 11 ? -7 : v));
    expectClose(got, want, { atol: 0, rtol: 0, label: 'fill view' });
  });
});

describe('copy', () => {
  it('copies float32 and int32 tensors, including views with offsets', async () => {
    const r = rng();
    for (const n of SIZES) {
      const src = f32(uniform(n, r));
      const dst = Tensor.from(f32(uniform(n, r)), [n]);
      copy(dst, Tensor.from(src, [n]));
      expectClose(await dst.data(), src, { atol: 0, rtol: 0, label: `copy n=${n}` });
    }
    const ints = Int32Array.from({ length: 13 }, () => Math.floor(r() * 2000) - 1000);
    const idst = Tensor.from(new Int32Array(13), [13], { dtype: 'int32' });
    copy(idst, Tensor.from(ints, [13], { dtype: 'int32' }));
    expect(Array.from(await idst.data())).toEqual(Array.from(ints));

    const base = f32(uniform(30, r, 1, 2));
    const store = Tensor.from(base, [30]);
    const src = f32(uniform(7, r, -2, -1));
    copy(store.view(11, [7]), Tensor.from(src, [7]));
    const want = Array.from(base, (v, i) => (i >= 11 && i < 18 ? src[i - 11]! : v));
    expectClose(await store.data(), want, { atol: 0, rtol: 0, label: 'copy into view' });
    // overlapping views of one storage copy as if through a temporary (memmove)
    const o = Tensor.from(f32([0, 1, 2, 3, 4, 5, 6, 7]), [8]);
    copy(o.view(2, [5]), o.view(0, [5]));
    expect(Array.from(await o.data())).toEqual([0, 1, 0, 1, 2, 3, 4, 7]);
  });
});

describe('scale and axpy', () => {
  it('scale multiplies in place', async () => {
    const r = rng();
    for (const n of SIZES) {
      const x = f32(uniform(n, r));
      const a = Math.fround(uniform(1, r, -3, 3)[0]!);
      const t = Tensor.from(x, [n]);
      scale(t, a);
      expectClose(await t.data(), Array.from(x, (v) => Math.fround(v * a)), { atol: 0, rtol: 0, label: `scale n=${n}` });
    }
  });

  it('axpy adds alpha * x, also when x is y itself', async () => {
    const r = rng();
    for (const n of SIZES) {
      const y = f32(uniform(n, r));
      const x = f32(uniform(n, r));
      const a = Math.fround(uniform(1, r, -3, 3)[0]!);
      const ty = Tensor.from(y, [n]);
      axpy(ty, a, Tensor.from(x, [n]));
      expectClose(await ty.data(), Array.from(y, (v, i) => v + a * x[i]!), { atol: 1e-6, rtol: 1e-6, label: `axpy n=${n}` });
    }
    const y = f32(uniform(13, r));
    const ty = Tensor.from(y, [13]);
    axpy(ty, 0.5, ty);
    expectClose(await ty.data(), Array.from(y, (v) => 1.5 * v), { atol: 1e-6, rtol: 1e-6, label: 'axpy(y, a, y)' });
  });

  it('in-place ops enqueued back to back are applied in order before one await', async () => {
    const r = rng();
    const n = 100_003;
    const xv = f32(uniform(n, r));
    const c = Math.fround(uniform(1, r, 1, 2)[0]!);
    const t = Tensor.from(f32(uniform(n, r)), [n]);
    const x = Tensor.from(xv, [n]);
    const other = Tensor.empty([n]);
    fill(t, c); // t = c
    axpy(t, 2, x); // t = c + 2x
    scale(t, -3); // t = -3(c + 2x)
    copy(other, t); // other = t
    axpy(other, 1, t); // other = 2t
    fill(t, 0); // t cleared after being read
    const [got, cleared] = await Promise.all([other.data(), t.data()]);
    expectClose(got, Array.from(xv, (v) => 2 * -3 * (c + 2 * v)), { atol: 1e-5, rtol: 1e-5, label: 'chain' });
    expectClose(cleared, new Float64Array(n), { atol: 0, rtol: 0, label: 'final fill' });
  });
});

describe('elementwise errors', () => {
  it('rejects bad input with typed errors and keeps working', async () => {
    const a = Tensor.from(f32([1, 2, 3]), [3]);
    const b = Tensor.from(f32([1, 2]), [2]);
    const i = Tensor.from(new Int32Array([1, 2, 3]), [3], { dtype: 'int32' });
    expectCode(() => fill(a, NaN), 'ERR_ARGUMENT', /fill: value must be a finite number/);
    expectCode(() => fill(a, Infinity), 'ERR_ARGUMENT', /fill/);
    expectCode(() => fill(a, 1e39), 'ERR_ARGUMENT', /float32 range/);
    expectCode(() => fill(i, 1.5), 'ERR_ARGUMENT', /int32/);
    expectCode(() => fill(i, 2 ** 31), 'ERR_ARGUMENT', /int32/);
    expectCode(() => fill({} as Tensor, 1), 'ERR_ARGUMENT', 'fill: expected tensor to be a Tensor');
    expectCode(() => copy(a, b), 'ERR_SHAPE', /copy: dst has shape \[3\] but src has shape \[2\]/);
    expectCode(() => copy(a as Tensor, i as Tensor), 'ERR_DTYPE', /copy: dst is float32 but src is int32/);
    expectCode(() => scale(i as unknown as Tensor<'float32'>, 2), 'ERR_DTYPE', /scale/);
    expectCode(() => scale(a, NaN), 'ERR_ARGUMENT', /scale: alpha/);
    expectCode(() => axpy(a, 1, b), 'ERR_SHAPE', /axpy/);
    expectCode(() => axpy(a, 1, i as unknown as Tensor<'float32'>), 'ERR_DTYPE', /axpy: expected x to be float32/);
    expectCode(() => axpy(a, Infinity, a), 'ERR_ARGUMENT', /axpy: alpha/);
    const store = Tensor.from(f32([1, 2, 3, 4, 5, 6]), [6]);
    expectCode(() => axpy(store.view(0, [4]), 1, store.view(1, [4])), 'ERR_ARGUMENT', /overlap/);
    b.dispose();
    expectCode(() => fill(b, 1), 'ERR_DISPOSED');
    expectCode(() => copy(a, b), 'ERR_DISPOSED');
    expectCode(() => axpy(a, 1, b), 'ERR_DISPOSED');
    expectCode(() => axpy(b, 1, a), 'ERR_DISPOSED');
    expectCode(() => scale(b, 2), 'ERR_DISPOSED');
    expectCode(() => copy(b, a), 'ERR_DISPOSED');
    // nothing was queued by the failed calls; a valid op still works
    axpy(a, 2, a);
    expect(Array.from(await a.data())).toEqual([3, 6, 9]);
  });
});
