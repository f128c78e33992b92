import { afterEach, describe, expect, it } from 'vitest';
import {
  axpy,
  backendInfo,
  conv2d,
  conv2dBackward,
  copy,
  cpuKernelsUsed,
  fill,
  linear,
  loadNative,
  scale,
  setConvAlgorithm,
  setWeightCache,
  sgdStep,
  synchronize,
  Tensor,
  type ConvAlgorithm,
} from '../src/index.js';
import { collectGarbage, expectClose, f32, f64, rng, uniform } from './helpers.js';
import { conv2dBackwardRef, conv2dRef, type ConvGeometry } from './reference/conv.js';
import { linearRef } from './reference/linear.js';

// The weight cache (core/tensor.h, DerivedCache): the CPU convolutions keep what they derive
// from a weight (the direct kernel's packed blocks, Winograd's filter transforms) with the
// weight's storage, until the storage is next written. Every write path below changes a weight
// in place after a forward pass has cached it; the next pass must use the new values, compared
// with the float64 reference of the values the weight holds afterwards (read back only after
// that pass: a read must not be what refreshes the cache).

const tolerance = (K: number) => ({ atol: 1e-5 * Math.sqrt(K), rtol: 1e-4 });
const native = () => loadNative();
const directConv = () => backendInfo().backends.cpu.directConv;

// Awkward sizes: channels not a multiple of the packing block (16 / 32) nor of Winograd's 16
// lanes, outputs not a multiple of its 4x4 tile.
const g3: ConvGeometry = { N: 1, C: 19, H: 9, W: 11, O: 37, kH: 3, kW: 3, stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
const g5: ConvGeometry = { N: 2, C: 7, H: 10, W: 9, O: 18, kH: 5, kW: 5, stride: [1, 1], padding: [2, 2], dilation: [1, 1], groups: 1 };

type Write = { name: string; apply: (w: Tensor<'float32'>, r: () => number) => void };
// Each changes w in place through a different native entry.
const writes: Write[] = [
  { name: 'fill', apply: (w) => fill(w, 0.125) },
  { name: 'copy', apply: (w, r) => copy(w, Tensor.from(f32(uniform(w.numel, r, -0.5, 0.5)), w.shape)) },
  { name: 'scale', apply: (w) => scale(w, -1.75) },
  { name: 'axpy', apply: (w, r) => axpy(w, 0.5, Tensor.from(f32(uniform(w.numel, r)), w.shape)) },
  {
    name: 'sgdStep',
    apply: (w, r) => sgdStep(w, Tensor.from(f32(uniform(w.numel, r)), w.shape), null, { lr: 0.3 }),
  },
  {
    // a conv2dBackward that writes its weight gradient into w (gradWeight, accumulating)
    name: 'conv2dBackward gradWeight',
    apply: (w, r) => {
      const [O, C, k] = w.shape as [number, number, number, number];
      const x = Tensor.from(f32(uniform(C * 6 * 6, r)), [1, C, 6, 6]);
      const dy = Tensor.from(f32(uniform(O * (6 - k + 1) ** 2, r, -0.05, 0.05)), [1, O, 6 - k + 1, 6 - k + 1]);
      conv2dBackward(dy, x, Tensor.from(f32(uniform(w.numel, r)), w.shape), { gradWeight: w, accumulate: true, computeGradBias: false, computeGradInput: false });
    },
  },
];

describe('weight cache', () => {
  afterEach(() => {
    setConvAlgorithm('auto');
    setWeightCache(true);
  });

  const algos: ConvAlgorithm[] = ['direct', 'winograd', 'im2col'];
  for (const algo of algos)
    for (const g of [g3, g5])
      it.each(writes)(`${algo}, ${g.kH}x${g.kW}: a forward pass after a write through $name uses the new weights`, async ({ apply }) => {
        setConvAlgorithm(algo);
        const r = rng();
        const x = f64(f32(uniform(g.N * g.C * g.H * g.W, r)));
        const w0 = f64(f32(uniform(g.O * g.C * g.kH * g.kW, r, -0.5, 0.5)));
        const b = f64(f32(uniform(g.O, r)));
        const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
        const tw = Tensor.from(f32(w0), [g.O, g.C, g.kH, g.kW]);
        const tb = Tensor.from(f32(b), [g.O]);
        const opts = { padding: g.padding };
        const K = g.C * g.kH * g.kW;
        // twice: the second pass reads the cached form
        for (let i = 0; i < 2; i++) expectClose(await conv2d(tx, tw, tb, opts).data(), conv2dRef(x, w0, b, g), { ...tolerance(K), label: `before, pass ${i}` });
        apply(tw, r);
        const y1 = conv2d(tx, tw, tb, opts);
        const y2 = conv2d(tx, tw, tb, opts);
        const w1 = f64(await tw.data());
        expect(w1.some((v, i) => v !== w0[i]), 'the write changed the weight').toBe(true);
        const ref = conv2dRef(x, w1, b, g);
        expectClose(await y1.data(), ref, { ...tolerance(K), label: 'after the write' });
        expectClose(await y2.data(), ref, { ...tolerance(K), label: 'after the write, again' });
      });

  it.each(['direct', 'winograd'] as ConvAlgorithm[])('%s: the input gradient after a write uses the new weights', async (algo) => {
    setConvAlgorithm(algo);
    const g = g3;
    const r = rng();
    const x = f64(f32(uniform(g.N * g.C * g.H * g.W, r)));
    const w0 = f64(f32(uniform(g.O * g.C * 9, r, -0.5, 0.5)));
    const dy = f64(f32(uniform(g.N * g.O * g.H * g.W, r)));
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(w0), [g.O, g.C, 3, 3]);
    const tdy = Tensor.from(f32(dy), [g.N, g.O, g.H, g.W]);
    const opts = { padding: g.padding, computeGradBias: false };
    const tol = tolerance(g.O * 9);
    expectClose(await conv2dBackward(tdy, tx, tw, opts).gradInput!.data(), conv2dBackwardRef(dy, x, w0, g).dx, tol);
    sgdStep(tw, Tensor.from(f32(uniform(tw.numel, r)), tw.shape), null, { lr: 0.2 });
    const dx = conv2dBackward(tdy, tx, tw, opts).gradInput!;
    const w1 = f64(await tw.data());
    expectClose(await dx.data(), conv2dBackwardRef(dy, x, w1, g).dx, tol);
  });

  it('a write through another view of the same storage, and a reshaped view, invalidate the cached form', async () => {
    setConvAlgorithm('direct');
    const g = g3;
    const r = rng();
    const n = g.O * g.C * 9;
    const flat = Tensor.from(f32(uniform(2 * n, r, -0.5, 0.5)), [2 * n]);
    const tw = flat.view(n, [g.O, g.C, 3, 3]);
    const x = f64(f32(uniform(g.N * g.C * g.H * g.W, r)));
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const K = g.C * 9;
    await conv2d(tx, tw, null, { padding: g.padding }).data();
    // the whole flat buffer, through its own view
    axpy(flat, -2, Tensor.from(f32(uniform(2 * n, r)), [2 * n]));
    const y1 = conv2d(tx, tw, null, { padding: g.padding });
    // then only the weight's half, through a flat view of it
    fill(flat.view(n + 5, [3]), 2.5);
    const y2 = conv2d(tx, tw, null, { padding: g.padding });
    const all = f64(await flat.data());
    expectClose(await y2.data(), conv2dRef(x, all.subarray(n), null, g), { ...tolerance(K), label: 'after the partial fill' });
    expect(all[n + 5]).toBe(2.5);
    // y1 saw the axpy but not the fill: recompute its weights from what the fill changed
    const w1 = all.slice(n);
    const y1d = await y1.data();
    // the fill changed 3 weights; outside their output channel y1 and y2 agree
    const o = Math.floor(5 / (g.C * 9));
    const plane = g.H * g.W;
    const ref2 = conv2dRef(x, w1, null, g);
    for (let oc = 0; oc < g.O; oc++) {
      if (oc === o) continue;
      expectClose(y1d.subarray(oc * plane, (oc + 1) * plane), ref2.subarray(oc * plane, (oc + 1) * plane), { ...tolerance(K), label: `after the axpy, channel ${oc}` });
    }
  });

  it('is used, is freed with its tensor, and setWeightCache(false) leaves it unused', async () => {
    if (!directConv()) return expect(directConv()).toBe(false); // nothing is packed without the direct kernel
    setConvAlgorithm('direct');
    const g = g3;
    const r = rng();
    // the weights earlier tests left to the garbage collector take their cached forms with them
    // when collected: collected here, not between the two readings below
    await collectGarbage();
    await synchronize();
    const before = native().weightCacheBytes();
    const tx = Tensor.from(f32(uniform(g.N * g.C * g.H * g.W, r)), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(uniform(g.O * g.C * 9, r)), [g.O, g.C, 3, 3]);
    await conv2d(tx, tw, null, { padding: g.padding }).data();
    const held = native().weightCacheBytes() - before;
    // the packed weights: output channels padded to whole blocks (16 or 32)
    expect(held).toBeGreaterThanOrEqual(g.O * g.C * 9 * 4);
    expect(held).toBeLessThanOrEqual(Math.ceil(g.O / 16) * 16 * 2 * g.C * 9 * 4);
    tw.dispose();
    await synchronize();
    expect(native().weightCacheBytes()).toBe(before);

    setWeightCache(false);
    const tw2 = Tensor.from(f32(uniform(g.O * g.C * 9, r)), [g.O, g.C, 3, 3]);
    await conv2d(tx, tw2, null, { padding: g.padding }).data();
    expect(native().weightCacheBytes()).toBe(before);
  });
});

// The linear layer's forward keeps its weight packed into 48-feature panels (linear_packed.h),
// made on the second call at one version of the weight, never on the first: inference pays once,
// a training loop (a write between forwards) never. AVX-512 only; elsewhere every call takes the
// unpacked kernels and these tests check the same results with nothing held.
describe('linear: packed weight panels', () => {
  afterEach(() => setWeightCache(true));
  const avx512 = () => backendInfo().backends.cpu.isa === 'avx512';
  const panelBytes = (N: number, K: number) => Math.ceil(N / 48) * 48 * K * 4;
  const relu = (v: Float64Array) => v.map((e) => (e < 0 ? 0 : e));
  // rows from the smallest the path takes (8) past one 8-row tile, to the largest (192); the last panel's features
  // ending in each of its three vectors (256, 301, 312, 520: 16, 13, 24, 40 past a whole 48);
  // k not a multiple of the 128-wide blocks
  const shapes: [number, number, number][] = [
    [8, 256, 256],
    [13, 300, 301],
    [16, 1000, 312],
    [37, 257, 520],
    [192, 256, 256],
  ];

  it.each(shapes)('batch %i, %i -> %i: every call matches float64, with and without bias and ReLU; the second makes the panels', async (M, K, N) => {
    const r = rng();
    await collectGarbage();
    await synchronize();
    const x = f64(f32(uniform(M * K, r)));
    const w = f64(f32(uniform(N * K, r, -0.5, 0.5)));
    const b = f64(f32(uniform(N, r)));
    const tx = Tensor.from(f32(x), [M, K]);
    const tw = Tensor.from(f32(w), [N, K]);
    const tb = Tensor.from(f32(b), [N]);
    const tol = tolerance(K);
    const before = native().weightCacheBytes();
    cpuKernelsUsed({ reset: true });
    expectClose(await linear(tx, tw, tb).data(), linearRef(x, w, b, M, K, N), { ...tol, label: 'call 1' });
    expect(native().weightCacheBytes(), 'nothing is packed on the first call').toBe(before);
    expect(cpuKernelsUsed()).not.toContain('linear.packed.avx512');
    expectClose(await linear(tx, tw, tb, { relu: true }).data(), relu(linearRef(x, w, b, M, K, N)), { ...tol, label: 'call 2 (relu)' });
    expect(native().weightCacheBytes() - before).toBe(avx512() ? panelBytes(N, K) : 0);
    expect(cpuKernelsUsed().includes('linear.packed.avx512')).toBe(avx512());
    expectClose(await linear(tx, tw, null).data(), linearRef(x, w, null, M, K, N), { ...tol, label: 'call 3 (no bias)' });
    expectClose(await linear(tx, tw, null, { relu: true }).data(), relu(linearRef(x, w, null, M, K, N)), { ...tol, label: 'call 4 (no bias, relu)' });
    tw.dispose();
    await synchronize();
    expect(native().weightCacheBytes(), 'freed with the weight').toBe(before);
  });

  it.each(writes.filter((wr) => wr.name !== 'conv2dBackward gradWeight'))('after a write through $name, both the unpacked and the repacked call use the new weights', async ({ apply }) => {
    const [M, K, N] = [9, 260, 290];
    const r = rng();
    const x = f64(f32(uniform(M * K, r)));
    const w0 = f64(f32(uniform(N * K, r, -0.5, 0.5)));
    const b = f64(f32(uniform(N, r)));
    const tx = Tensor.from(f32(x), [M, K]);
    const tw = Tensor.from(f32(w0), [N, K]);
    const tb = Tensor.from(f32(b), [N]);
    const tol = tolerance(K);
    for (let i = 0; i < 3; i++) expectClose(await linear(tx, tw, tb).data(), linearRef(x, w0, b, M, K, N), { ...tol, label: `before, call ${i}` });
    apply(tw, r);
    const y1 = linear(tx, tw, tb);
    const y2 = linear(tx, tw, tb);
    const y3 = linear(tx, tw, tb);
    const w1 = f64(await tw.data());
    expect(w1.some((v, i) => v !== w0[i]), 'the write changed the weight').toBe(true);
    const ref = linearRef(x, w1, b, M, K, N);
    for (const [i, y] of [y1, y2, y3].entries()) expectClose(await y.data(), ref, { ...tol, label: `after the write, call ${i + 1}` });
  });

  it('a training loop (a write between forwards) never packs; evaluation after it does, once, and training again frees the panels', async () => {
    const [M, K, N] = [16, 384, 320];
    const r = rng();
    await collectGarbage();
    await synchronize();
    const before = native().weightCacheBytes();
    const x = f64(f32(uniform(M * K, r)));
    const tx = Tensor.from(f32(x), [M, K]);
    const tw = Tensor.from(f32(uniform(N * K, r, -0.5, 0.5)), [N, K]);
    cpuKernelsUsed({ reset: true });
    for (let step = 0; step < 4; step++) {
      const y = linear(tx, tw, null);
      sgdStep(tw, Tensor.from(f32(uniform(N * K, r)), [N, K]), null, { lr: 0.01 });
      await y.data();
      expect(native().weightCacheBytes(), `step ${step}`).toBe(before);
    }
    expect(cpuKernelsUsed()).not.toContain('linear.packed.avx512');
    const w = f64(await tw.data());
    for (let i = 0; i < 3; i++) expectClose(await linear(tx, tw, null).data(), linearRef(x, w, null, M, K, N), { ...tolerance(K), label: `eval ${i}` });
    expect(native().weightCacheBytes() - before).toBe(avx512() ? panelBytes(N, K) : 0);
    // training again: its first forward frees the evaluation's panels (they were held, stale,
    // until the next evaluation), and the one after that packs again
    sgdStep(tw, Tensor.from(f32(uniform(N * K, r)), [N, K]), null, { lr: 0.01 });
    const w2 = f64(await tw.data());
    expectClose(await linear(tx, tw, null).data(), linearRef(x, w2, null, M, K, N), { ...tolerance(K), label: 'train again' });
    expect(native().weightCacheBytes(), 'the stale panels are freed').toBe(before);
    for (let i = 0; i < 2; i++) expectClose(await linear(tx, tw, null).data(), linearRef(x, w2, null, M, K, N), { ...tolerance(K), label: `eval again ${i}` });
    expect(native().weightCacheBytes() - before).toBe(avx512() ? panelBytes(N, K) : 0);
  });

  it('ReLU keeps NaN and infinities of the sums; setWeightCache(false) never packs', async () => {
    const [M, K, N] = [8, 256, 260];
    const r = rng();
    const x = f32(uniform(M * K, r));
    const w = f32(uniform(N * K, r, -0.5, 0.5));
    w[3 * K + 7] = NaN; // output feature 3: NaN in every row
    w[100 * K + 5] = Infinity; // feature 100: +-inf by the sign of x[., 5]
    const tx = Tensor.from(x, [M, K]);
    const tw = Tensor.from(w, [N, K]);
    await linear(tx, tw, null, { relu: true }).data();
    const y = await linear(tx, tw, null, { relu: true }).data();
    for (let m = 0; m < M; m++) {
      expect(y[m * N + 3]).toBeNaN();
      expect(y[m * N + 100]).toBe(x[m * K + 5]! > 0 ? Infinity : 0);
      expect(Number.isFinite(y[m * N + 4]!)).toBe(true);
    }
    setWeightCache(false);
    await collectGarbage();
    await synchronize();
    const before = native().weightCacheBytes();
    const tw2 = Tensor.from(f32(uniform(N * K, r)), [N, K]);
    for (let i = 0; i < 3; i++) await linear(tx, tw2, null).data();
    expect(native().weightCacheBytes()).toBe(before);
  });
});
