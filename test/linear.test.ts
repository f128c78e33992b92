import { describe, expect, it } from 'vitest';
import { linear, linearBackward, Tensor } from '../src/index.js';
import { dot, expectClose, expectCode, f32, f64, finiteDifference, rng, sampleIndices, uniform } from './helpers.js';
import { checkEmptyLinear } from './empty-sizes.js';
import { linearBackwardRef, linearRef } from './reference/linear.js';

// [batch, in, out]: batch 1 and 3, features not multiples of 8
const SHAPES: [number, number, number][] = [
  [1, 7, 13],
  [3, 13, 7],
  [5, 33, 17],
  [16, 129, 67],
];

describe('linear forward', () => {
  it('matches x W^T + b with and without bias', async () => {
    const r = rng();
    for (const [B, inF, outF] of SHAPES) {
      const x = f32(uniform(B * inF, r));
      const w = f32(uniform(outF * inF, r));
      const bias = f32(uniform(outF, r));
      const tx = Tensor.from(x, [B, inF]);
      const tw = Tensor.from(w, [outF, inF]);
      const y = linear(tx, tw, Tensor.from(bias, [outF]));
      expect(y.shape).toEqual([B, outF]);
      expectClose(await y.data(), linearRef(x, w, bias, B, inF, outF), { atol: 1e-5, rtol: 1e-4, label: `linear ${B}x${inF}->${outF}` });
      const y0 = linear(tx, tw, null);
      expectClose(await y0.data(), linearRef(x, w, null, B, inF, outF), { atol: 1e-5, rtol: 1e-4, label: 'linear no bias' });
      const y1 = linear(tx, tw);
      expectClose(await y1.data(), linearRef(x, w, null, B, inF, outF), { atol: 1e-5, rtol: 1e-4, label: 'linear bias omitted' });
    }
  });

  it('reads weight and bias through views with offsets (the parameter store)', async () => {
    const r = rng();
    const [B, inF, outF] = [3, 7, 5];
    const store = f32(uniform(11 + outF * inF + outF + 4, r));
    const ts = Tensor.from(store, [store.length]);
    const w = store.subarray(11, 11 + outF * inF);
    const bias = store.subarray(11 + outF * inF, 11 + outF * inF + outF);
    const x = f32(uniform(B * inF, r));
    const y = linear(Tensor.from(x, [B, inF]), ts.view(11, [outF, inF]), ts.view(11 + outF * inF, [outF]));
    expectClose(await y.data(), linearRef(x, w, bias, B, inF, outF), { atol: 1e-5, rtol: 1e-4, label: 'linear views' });
  });
});

describe('linear backward', () => {
  it('matches the analytic gradients and finite differences of L = sum(y .* r)', async () => {
    const r = rng();
    for (const [B, inF, outF] of SHAPES) {
      const x = f32(uniform(B * inF, r));
      const w = f32(uniform(outF * inF, r));
      const bias = f32(uniform(outF, r));
      const dy = f32(uniform(B * outF, r));
      const g = linearBackward(Tensor.from(dy, [B, outF]), Tensor.from(x, [B, inF]), Tensor.from(w, [outF, inF]));
      expect(g.gradInput!.shape).toEqual([B, inF]);
      expect(g.gradWeight.shape).toEqual([outF, inF]);
      expect(g.gradBias!.shape).toEqual([outF]);
      const [dx, dw, db] = await Promise.all([g.gradInput!.data(), g.gradWeight.data(), g.gradBias!.data()]);
      const ref = linearBackwardRef(dy, x, w, B, inF, outF);
      const tol = { atol: 1e-5, rtol: 1e-4 };
      expectClose(dx, ref.dx, { ...tol, label: 'gradInput' });
      expectClose(dw, ref.dw, { ...tol, label: 'gradWeight' });
      expectClose(db, ref.db, { ...tol, label: 'gradBias' });
      // finite differences of the float64 reference
      const L = (xx: ArrayLike<number>, ww: ArrayLike<number>, bb: ArrayLike<number>) => dot(linearRef(xx, ww, bb, B, inF, outF), dy);
      const x64 = f64(x);
      const w64 = f64(w);
      const b64 = f64(bias);
      const fdx = finiteDifference((v) => L(v, w64, b64), x64, { indices: sampleIndices(x.length, 20, r) });
      const fdw = finiteDifference((v) => L(x64, v, b64), w64, { indices: sampleIndices(w.length, 20, r) });
      const fdb = finiteDifference((v) => L(x64, w64, v), b64, { indices: sampleIndices(bias.length, 20, r) });
      for (const [fd, got, name] of [
        [fdx, dx, 'dx'],
        [fdw, dw, 'dw'],
        [fdb, db, 'db'],
      ] as const) {
        const idx = [...fd.keys()];
        expectClose(
          idx.map((i) => got[i]!),
          idx.map((i) => fd.get(i)!),
          { atol: 1e-4, rtol: 1e-3, label: `finite differences ${name}` },
        );
      }
    }
  });

  // [8, 700, 400] takes the skinny weight-gradient kernel (batch <= 32) at an unaligned offset
  it.each([
    [3, 13, 7],
    [8, 700, 400],
  ])('skips gradInput / gradBias on request and writes or accumulates into views of a gradient store (B=%i, in=%i, out=%i)', async (B, inF, outF) => {
    const r = rng();
    const x = f32(uniform(B * inF, r));
    const w = f32(uniform(outF * inF, r));
    const dy = f32(uniform(B * outF, r));
    const ref = linearBackwardRef(dy, x, w, B, inF, outF);
    const tx = Tensor.from(x, [B, inF]);
    const tw = Tensor.from(w, [outF, inF]);
    const tdy = Tensor.from(dy, [B, outF]);

    const noDx = linearBackward(tdy, tx, tw, { computeGradInput: false, computeGradBias: false });
    expect(noDx.gradInput).toBeNull();
    expect(noDx.gradBias).toBeNull();
    expectClose(await noDx.gradWeight.data(), ref.dw, { label: 'gradWeight alone' });

    // a gradient store: [pad 5][weight outF*inF][pad 3][bias outF][pad 2], filled with garbage
    const n = 5 + outF * inF + 3 + outF + 2;
    const init = f32(uniform(n, r, 10, 20));
    const store = Tensor.from(init, [n]);
    const gw = store.view(5, [outF, inF]);
    const gb = store.view(5 + outF * inF + 3, [outF]);
    const g1 = linearBackward(tdy, tx, tw, { gradWeight: gw, gradBias: gb });
    expect(g1.gradWeight).toBe(gw);
    expect(g1.gradBias).toBe(gb);
    let s = await store.data();
    expectClose(s.subarray(5, 5 + outF * inF), ref.dw, { label: 'overwrite gradWeight view' });
    expectClose(s.subarray(5 + outF * inF + 3, 5 + outF * inF + 3 + outF), ref.db, { label: 'overwrite gradBias view' });
    // padding untouched
    const pads = [0, 1, 2, 3, 4, 5 + outF * inF, 6 + outF * inF, 7 + outF * inF, n - 2, n - 1];
    expectClose(pads.map((i) => s[i]!), pads.map((i) => init[i]!), { atol: 0, rtol: 0, label: 'padding' });

    // accumulate: a second call adds
    const g2 = linearBackward(tdy, tx, tw, { gradWeight: gw, gradBias: gb, accumulate: true, computeGradInput: false });
    expect(g2.gradInput).toBeNull();
    s = await store.data();
    expectClose(s.subarray(5, 5 + outF * inF), Array.from(ref.dw, (v) => 2 * v), { label: 'accumulated gradWeight' });
    expectClose(s.subarray(5 + outF * inF + 3, 5 + outF * inF + 3 + outF), Array.from(ref.db, (v) => 2 * v), { label: 'accumulated gradBias' });
    expectClose(pads.map((i) => s[i]!), pads.map((i) => init[i]!), { atol: 0, rtol: 0, label: 'padding after accumulate' });
  });

  it('handles an empty batch (gradWeight zeros)', async () => {
    const w = Tensor.from(f32(uniform(5 * 3, rng())), [5, 3]);
    const y = linear(Tensor.empty([0, 3]), w, Tensor.from(f32([1, 2, 3, 4, 5]), [5]));
    expect(y.shape).toEqual([0, 5]);
    const g = linearBackward(Tensor.empty([0, 5]), Tensor.empty([0, 3]), w);
    expectClose(await g.gradWeight.data(), new Float64Array(15), { atol: 0, rtol: 0, label: 'empty batch dw' });
    expectClose(await g.gradBias!.data(), new Float64Array(5), { atol: 0, rtol: 0, label: 'empty batch db' });
  });

  it('rejects bad input with typed errors and keeps working', async () => {
    const r = rng();
    const x = Tensor.from(f32(uniform(2 * 9, r)), [2, 9]);
    const w = Tensor.from(f32(uniform(4 * 8, r)), [4, 8]);
    const w9 = Tensor.from(f32(uniform(4 * 9, r)), [4, 9]);
    const b4 = Tensor.from(f32(uniform(4, r)), [4]);
    expectCode(() => linear(x, w, null), 'ERR_SHAPE', 'linear: input has 9 features but weight expects 8');
    expectCode(() => linear(x, w9, Tensor.from(f32([1, 2, 3]), [3])), 'ERR_SHAPE', /linear: expected bias of shape \[4\]/);
    expectCode(() => linear(Tensor.from(f32(uniform(9, r)), [9]), w9), 'ERR_SHAPE', /linear: expected input to have 2 dimensions/);
    expectCode(() => linear(Tensor.from(new Int32Array(18), [2, 9], { dtype: 'int32' }) as unknown as Tensor<'float32'>, w9), 'ERR_DTYPE', /linear: expected input to be float32/);
    expectCode(() => linear(x, {} as Tensor<'float32'>), 'ERR_ARGUMENT', 'linear: expected weight to be a Tensor');
    const dy = Tensor.from(f32(uniform(2 * 4, r)), [2, 4]);
    expectCode(() => linearBackward(Tensor.from(f32(uniform(6, r)), [2, 3]), x, w9), 'ERR_SHAPE', /linearBackward: expected gradOutput of shape \[2, 4\]/);
    expectCode(() => linearBackward(dy, x, w9, { gradWeight: Tensor.empty([9, 4]) }), 'ERR_SHAPE', /gradWeight/);
    expectCode(() => linearBackward(dy, x, w9, { gradBias: Tensor.empty([5]) }), 'ERR_SHAPE', /gradBias/);
    expectCode(() => linearBackward(dy, x, w9, { accumulate: true }), 'ERR_ARGUMENT', /accumulate needs the gradWeight/);
    expectCode(() => linearBackward(dy, x, w9, { gradWeight: Tensor.empty([4, 9]), accumulate: true }), 'ERR_ARGUMENT', /gradBias/);
    expectCode(() => linearBackward(dy, x, w9, { gradBias: b4, computeGradBias: false }), 'ERR_ARGUMENT', /computeGradBias/);
    expectCode(() => linearBackward(dy, x, w9, { gradWeight: w9 }), 'ERR_ARGUMENT', /overlaps an input/);
    expectCode(() => linearBackward(dy, x, w9, { computeGradInput: 1 as unknown as boolean }), 'ERR_ARGUMENT', /computeGradInput/);
    expectCode(() => linearBackward(Tensor.from(new Int32Array(8), [2, 4], { dtype: 'int32' }) as unknown as Tensor<'float32'>, x, w9), 'ERR_DTYPE', /linearBackward: expected gradOutput to be float32/);
    expectCode(() => linearBackward(dy, x, w9, { gradWeight: Tensor.from(new Int32Array(36), [4, 9], { dtype: 'int32' }) as unknown as Tensor<'float32'> }), 'ERR_DTYPE', /gradWeight/);
    expectCode(() => linearBackward(dy, Tensor.from(f32(uniform(18, r)), [18]), w9), 'ERR_SHAPE', /linearBackward: expected input to have 2 dimensions/);
    w.dispose();
    expectCode(() => linear(x, w), 'ERR_DISPOSED');
    expectCode(() => linearBackward(dy, x, w), 'ERR_DISPOSED');
    const gw = Tensor.empty([4, 9]);
    gw.dispose();
    expectCode(() => linearBackward(dy, x, w9, { gradWeight: gw }), 'ERR_DISPOSED');
    // still working
    const y = await linear(x, w9, b4).data();
    expect(y.length).toBe(8);
    expect(y.every((v) => Number.isFinite(v))).toBe(true);
  });

  it('empty batch, inner dimension or output: empty outputs, zero sums (unchanged when accumulating), y = bias for in = 0; matmul with K = 0 is zeros', async () => {
    await checkEmptyLinear('cpu');
  });
});
