import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backendInfo, conv2d, conv2dBackward, loadNative, setConvAlgorithm, setGemmBackend, synchronize, Tensor } from '../src/index.js';
import { expectClose, expectCode, f32, f64, rng, sampleIndices, uniform } from './helpers.js';
import { conv2dAt, conv2dBackwardRef, conv2dRef, convOutSize, gradInputAt, squareGeometry, type ConvGeometry, type SquareConvCase } from './reference/conv.js';

// Winograd convolution (native/cpu/conv_winograd.cc) forced with setConvAlgorithm('winograd'),
// against the float64 reference on fresh random inputs: x, dy uniform in [-1, 1], w in
// [-0.5, 0.5].
//
// Tolerance: a float32 sum of K products (K = C*k*k forward, O*k*k for the input gradient) of
// such values is off by about eps * sqrt(K) (random signs); Winograd adds the rounding of its
// transforms, whose entries reach 5 (B^T) and 8 (A^T), so its error is a larger multiple of that.
// Over every output of conv4-like (C = 384, 3x3) and conv2-like (C = 96, 5x5) layers, the worst
// error of F(4x4,3x3) and F(4x4,5x5) was 3.4e-6 and 3.6e-6 * sqrt(K) (the direct kernel's
// 1.2e-6 and 1.6e-6 * sqrt(K)); the tests allow 1e-5 * sqrt(K), about 3x that worst case (some
// 10 standard deviations), and rtol 1e-4 as the other conv tests.
const tolerance = (K: number) => ({ atol: 1e-5 * Math.sqrt(K), rtol: 1e-4 });
// The weight gradient sums K = N*Ho*Wo products per entry, through the adjoint transforms
// (A dY A^T, then G^T dU G, whose entries reach 8 and 1/0.09): over every entry of a 64 -> 64
// 3x3 layer at batch 4 and a 24 -> 32 5x5 layer at 27x27, batch 2, its worst error was 2.7e-6
// and 5.0e-6 * sqrt(K), the direct kernel's 0.7e-6 and 1.1e-6 * sqrt(K) (im2col's 0.2-0.6e-6);
// the tests allow 2e-5 * sqrt(K), 4x the worst case seen.
const weightTolerance = (K: number) => ({ atol: 2e-5 * Math.sqrt(K), rtol: 1e-4 });


function inputs(g: ConvGeometry, r: () => number, bias: boolean) {
  const [Ho, Wo] = convOutSize(g);
  return {
    x: f64(f32(uniform(g.N * g.C * g.H * g.W, r))),
    w: f64(f32(uniform(g.O * g.C * g.kH * g.kW, r, -0.5, 0.5))),
    b: bias ? f64(f32(uniform(g.O, r))) : null,
    dy: f64(f32(uniform(g.N * g.O * Ho * Wo, r))),
    Ho,
    Wo,
  };
}

// Sizes that are not multiples of the output tile (4), a single row, an
// output smaller than one tile, paddings 0, 1, 2 (and unequal), channel counts that are not
// multiples of the 16 filters per vector, batch 1 and 3, with and without bias. The last 5x5
// case pads by more than k - 1, where the input gradient is not a Winograd convolution (it
// falls back to the other paths).
const cases: SquareConvCase[] = [
  { N: 1, C: 3, H: 13, W: 13, O: 17, k: 3, padding: [1, 1] },
  { N: 3, C: 17, H: 7, W: 7, O: 3, k: 3, padding: [0, 0] },
  { N: 1, C: 5, H: 5, W: 5, O: 16, k: 3, padding: [2, 2], bias: false },
  { N: 3, C: 4, H: 1, W: 9, O: 5, k: 3, padding: [1, 1] },
  { N: 2, C: 18, H: 13, W: 11, O: 33, k: 3, padding: [0, 2] },
  { N: 1, C: 7, H: 13, W: 13, O: 17, k: 5, padding: [2, 2] },
  { N: 3, C: 3, H: 9, W: 6, O: 5, k: 5, padding: [0, 0], bias: false },
  { N: 2, C: 17, H: 7, W: 7, O: 3, k: 5, padding: [1, 2] },
  { N: 1, C: 3, H: 5, W: 5, O: 4, k: 5, padding: [5, 3] },
  // At batch 1-4 on AVX-512 or AVX2, 'winograd' runs its own products kernel (up to 64 tiles, in 1-4
  // vectors of 16): 48 tiles (3 vectors) with 20 output channels (a block of 16 and a padded
  // one), 64 tiles (4 vectors), and 65 tiles, one past it (the sgemm products).
  { N: 3, C: 40, H: 13, W: 13, O: 20, k: 3, padding: [1, 1] },
  { N: 4, C: 9, H: 13, W: 13, O: 33, k: 3, padding: [1, 1], bias: false },
  { N: 1, C: 6, H: 20, W: 52, O: 18, k: 3, padding: [1, 1] },
];

// 'winograd' (own products kernel where it applies) and 'winograd-gemm' (products through sgemm).
const algos = ['winograd', 'winograd-gemm'] as const;
const withAlgos = algos.flatMap((algo) => cases.map((c) => ({ algo, ...c })));

describe('conv2d with Winograd', () => {
  beforeEach(() => setConvAlgorithm('winograd'));
  afterEach(() => {
    setConvAlgorithm('auto');
    if (backendInfo().backends.cpu.blasCompiled) setGemmBackend('blas');
  });

  it.each(withAlgos)('forward, with and without the fused ReLU, matches the float64 reference: %j', async ({ algo, ...c }) => {
    setConvAlgorithm(algo);
    const r = rng();
    const g = squareGeometry(c);
    const { x, w, b, Ho, Wo } = inputs(g, r, c.bias !== false);
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(w), [g.O, g.C, c.k, c.k]);
    const tb = b ? Tensor.from(f32(b), [g.O]) : null;
    const ref = conv2dRef(x, w, b, g);
    const y = conv2d(tx, tw, tb, { padding: c.padding });
    expect(y.shape).toEqual([g.N, g.O, Ho, Wo]);
    const tol = tolerance(g.C * c.k * c.k);
    expectClose(await y.data(), ref, { ...tol, label: `winograd conv2d ${JSON.stringify(c)}` });
    const yr = await conv2d(tx, tw, tb, { padding: c.padding, relu: true }).data();
    expectClose(yr, ref.map((v) => Math.max(v, 0)), { ...tol, label: `winograd conv2d + relu ${JSON.stringify(c)}` });
    expect(yr.every((v) => v >= 0)).toBe(true);
  });

  it.each(withAlgos)('input gradient (and the weight and bias gradients beside it) match the float64 reference: %j', async ({ algo, ...c }) => {
    setConvAlgorithm(algo);
    const r = rng();
    const g = squareGeometry(c);
    const { x, w, dy, Ho, Wo } = inputs(g, r, false);
    const grads = conv2dBackward(
      Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]),
      Tensor.from(f32(x), [g.N, g.C, g.H, g.W]),
      Tensor.from(f32(w), [g.O, g.C, c.k, c.k]),
      { padding: c.padding },
    );
    const ref = conv2dBackwardRef(dy, x, w, g);
    expectClose(await grads.gradInput!.data(), ref.dx, { ...tolerance(g.O * c.k * c.k), label: `winograd gradInput ${JSON.stringify(c)}` });
    expectClose(await grads.gradWeight.data(), ref.dw, { ...weightTolerance(g.N * Ho * Wo), label: `winograd gradWeight ${JSON.stringify(c)}` });
    expectClose(await grads.gradBias!.data(), ref.db, { atol: 1e-4, rtol: 1e-4, label: 'gradBias' });
  });

  // The weight gradient (conv2d_weight_grad_winograd, any padding): odd channel counts, sizes
  // that are not multiples of the tile, paddings 0 to k - 1 (and one past it), batch 1 to 5,
  // written and accumulated into a view with a nonzero offset (its neighbours untouched).
  it.each([
    ...cases,
    { N: 5, C: 7, H: 11, W: 10, O: 9, k: 3, padding: [2, 0] as [number, number] },
    { N: 4, C: 33, H: 13, W: 13, O: 19, k: 3, padding: [1, 1] as [number, number] },
    { N: 5, C: 5, H: 10, W: 9, O: 3, k: 5, padding: [4, 4] as [number, number] },
    { N: 2, C: 9, H: 14, W: 15, O: 11, k: 5, padding: [3, 0] as [number, number] },
  ])('weight gradient, written and accumulated, matches the float64 reference: %j', async (c) => {
    const r = rng();
    const g = squareGeometry(c);
    const { x, w, dy, Ho, Wo } = inputs(g, r, false);
    const ref = conv2dBackwardRef(dy, x, w, g).dw;
    const tol = weightTolerance(g.N * Ho * Wo);
    const tdy = Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]);
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(w), [g.O, g.C, c.k, c.k]);
    const off = 5;
    const before = f32(uniform(off + w.length + 3, r));
    for (const accumulate of [false, true]) {
      const store = Tensor.from(before, [before.length]);
      const gw = store.view(off, [g.O, g.C, c.k, c.k]);
      conv2dBackward(tdy, tx, tw, { padding: c.padding, gradWeight: gw, accumulate, computeGradInput: false, computeGradBias: false });
      const after = await store.data();
      const want = accumulate ? Array.from(ref, (v, i) => v + before[off + i]!) : ref;
      expectClose(after.subarray(off, off + w.length), want, { ...tol, label: `winograd gradWeight accumulate=${accumulate} ${JSON.stringify(c)}` });
      expect([...after.subarray(0, off), ...after.subarray(off + w.length)]).toEqual([...before.subarray(0, off), ...before.subarray(off + w.length)]);
    }
    // Winograd ran: its sums round differently from the direct kernel's somewhere.
    const dw = await conv2dBackward(tdy, tx, tw, { padding: c.padding, computeGradInput: false }).gradWeight.data();
    setConvAlgorithm('direct');
    const dd = await conv2dBackward(tdy, tx, tw, { padding: c.padding, computeGradInput: false }).gradWeight.data();
    expect(dw.some((v, i) => v !== dd[i])).toBe(true);
  });

  // Which products ran shows in the filters the weight cache keeps: the own kernel's are blocked
  // by 16 output channels (40 padded to 48 here, 36 tile positions), sgemm's are not. (The two
  // need not differ in value: OpenBLAS may sum the C products in the kernel's order too.)
  it("'winograd' has its own products kernel for a few images on AVX-512 / AVX2, 'winograd-gemm' does not", async () => {
    const r = rng();
    const c: SquareConvCase = { N: 1, C: 64, H: 13, W: 13, O: 40, k: 3, padding: [1, 1] };
    const g = squareGeometry(c);
    const { x, w, b, dy, Ho, Wo } = inputs(g, r, true);
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tb = Tensor.from(f32(b!), [g.O]);
    // the own kernel has AVX-512 and AVX2 builds (test/cpu-isa.test.ts runs the latter)
    const ownKernel = backendInfo().backends.cpu.isa !== 'base';
    for (const algo of ['winograd', 'winograd-gemm'] as const) {
      setConvAlgorithm(algo);
      const tw = Tensor.from(f32(w), [g.O, g.C, 3, 3]);
      await synchronize();
      const before = loadNative().weightCacheBytes();
      const y = await conv2d(tx, tw, tb, { padding: c.padding }).data();
      expectClose(y, conv2dRef(x, w, b, g), { ...tolerance(g.C * 9), label: `${algo} forward` });
      const held = loadNative().weightCacheBytes() - before;
      const dx = await conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, { padding: c.padding }).gradInput!.data();
      expectClose(dx, conv2dBackwardRef(dy, x, w, g).dx, { ...tolerance(g.O * 9), label: `${algo} gradInput` });
      const own = algo === 'winograd' && ownKernel;
      expect(held).toBe(36 * (own ? 48 : 40) * g.C * 4);
      // and the input gradient's: blocked by the 64 input channels, a whole number of blocks
      expect(loadNative().weightCacheBytes() - before).toBe(held + 36 * 40 * g.C * 4);
      tw.dispose();
    }
  });

  it('runs through the portable GEMM as well as BLAS', async () => {
    setConvAlgorithm('winograd-gemm');
    setGemmBackend('portable');
    const r = rng();
    for (const c of [cases[0]!, cases[7]!]) {
      const g = squareGeometry(c);
      const { x, w, b, dy, Ho, Wo } = inputs(g, r, true);
      const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
      const tw = Tensor.from(f32(w), [g.O, g.C, c.k, c.k]);
      const y = await conv2d(tx, tw, Tensor.from(f32(b!), [g.O]), { padding: c.padding }).data();
      expectClose(y, conv2dRef(x, w, b, g), { ...tolerance(g.C * c.k * c.k), label: `portable forward ${JSON.stringify(c)}` });
      const dx = await conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, { padding: c.padding }).gradInput!.data();
      expectClose(dx, conv2dBackwardRef(dy, x, w, g).dx, { ...tolerance(g.O * c.k * c.k), label: `portable gradInput ${JSON.stringify(c)}` });
    }
  });

  // AlexNet's stride-1 layers, checked at sampled outputs and weight-gradient entries (a full
  // float64 reference would take minutes). conv4 at batch 40 has 640 tiles, more than one block of the scratch budget (592
  // tiles for 384 + 384 channels), so the block loop is covered too.
  it.each([
    { name: 'conv2', N: 1, C: 96, H: 27, W: 27, O: 256, k: 5, padding: [2, 2] as [number, number] },
    { name: 'conv3', N: 2, C: 256, H: 13, W: 13, O: 384, k: 3, padding: [1, 1] as [number, number] },
    { name: 'conv4', N: 40, C: 384, H: 13, W: 13, O: 384, k: 3, padding: [1, 1] as [number, number] },
    { name: 'conv5', N: 1, C: 384, H: 13, W: 13, O: 256, k: 3, padding: [1, 1] as [number, number] },
  ])('AlexNet $name shape at batch $N, forward and input gradient at sampled entries', async (c) => {
    const r = rng();
    const g = squareGeometry(c);
    const { x, w, b, dy, Ho, Wo } = inputs(g, r, true);
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(w), [g.O, g.C, c.k, c.k]);
    const y = await conv2d(tx, tw, Tensor.from(f32(b!), [g.O]), { padding: c.padding, relu: true }).data();
    // the last image's outputs are always sampled: they come from the last tiles (and block)
    const last = (g.N - 1) * g.O * Ho * Wo;
    const idx = [...sampleIndices(y.length, 150, r), ...sampleIndices(g.O * Ho * Wo, 50, r).map((i) => last + i)];
    const at = (i: number) =>
      Math.max(0, conv2dAt(x, w, b, g, Math.floor(i / (Ho * Wo * g.O)), Math.floor(i / (Ho * Wo)) % g.O, Math.floor(i / Wo) % Ho, i % Wo));
    expectClose(idx.map((i) => y[i]!), idx.map(at), { ...tolerance(g.C * c.k * c.k), label: `${c.name} sampled outputs` });
    const dx = await conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, { padding: c.padding }).gradInput!.data();
    const lastX = (g.N - 1) * g.C * g.H * g.W;
    const xi = [...sampleIndices(dx.length, 150, r), ...sampleIndices(g.C * g.H * g.W, 50, r).map((i) => lastX + i)];
    expectClose(xi.map((i) => dx[i]!), xi.map((i) => gradInputAt(dy, w, g, i)), { ...tolerance(g.O * c.k * c.k), label: `${c.name} sampled gradInput` });
    // the weight gradient sums over every tile (conv4: over both blocks)
    const dw = await conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, { padding: c.padding, computeGradInput: false }).gradWeight.data();
    const kk = c.k * c.k;
    const gradWeightAt = (i: number) => {
      const o = Math.floor(i / (g.C * kk)), ch = Math.floor(i / kk) % g.C, kh = Math.floor(i / c.k) % c.k, kw = i % c.k;
      let acc = 0;
      for (let n = 0; n < g.N; n++)
        for (let oh = 0; oh < Ho; oh++) {
          const ih = oh - c.padding[0] + kh;
          if (ih < 0 || ih >= g.H) continue;
          for (let ow = 0; ow < Wo; ow++) {
            const iw = ow - c.padding[1] + kw;
            if (iw >= 0 && iw < g.W) acc += dy[((n * g.O + o) * Ho + oh) * Wo + ow]! * x[((n * g.C + ch) * g.H + ih) * g.W + iw]!;
          }
        }
      return acc;
    };
    const wi = sampleIndices(dw.length, 200, r);
    expectClose(wi.map((i) => dw[i]!), wi.map(gradWeightAt), { ...weightTolerance(g.N * Ho * Wo), label: `${c.name} sampled gradWeight` });
  });

  // Shapes Winograd does not take still give the right answer under 'winograd' (they keep
  // their direct / im2col paths): stride 2, dilation 2, groups 2, a 1x1 and a rectangular kernel.
  it.each([
    { N: 2, C: 4, H: 11, W: 10, O: 5, k: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 1 },
    { N: 1, C: 3, H: 12, W: 12, O: 4, k: [3, 3], stride: [1, 1], padding: [2, 2], dilation: [2, 2], groups: 1 },
    { N: 2, C: 6, H: 9, W: 9, O: 4, k: [3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 2 },
    { N: 1, C: 5, H: 7, W: 6, O: 3, k: [1, 1], stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 },
    { N: 2, C: 3, H: 8, W: 9, O: 6, k: [3, 5], stride: [1, 1], padding: [1, 2], dilation: [1, 1], groups: 1 },
  ])('falls back for shapes it does not support: %j', async (c) => {
    const r = rng();
    const g: ConvGeometry = {
      N: c.N, C: c.C, H: c.H, W: c.W, O: c.O, kH: c.k[0]!, kW: c.k[1]!,
      stride: c.stride as [number, number], padding: c.padding as [number, number], dilation: c.dilation as [number, number], groups: c.groups,
    };
    const [Ho, Wo] = convOutSize(g);
    const x = f64(f32(uniform(g.N * g.C * g.H * g.W, r)));
    const w = f64(f32(uniform(g.O * (g.C / g.groups) * g.kH * g.kW, r, -0.5, 0.5)));
    const b = f64(f32(uniform(g.O, r)));
    const dy = f64(f32(uniform(g.N * g.O * Ho * Wo, r)));
    const opts = { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups };
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(w), [g.O, g.C / g.groups, g.kH, g.kW]);
    const y = await conv2d(tx, tw, Tensor.from(f32(b), [g.O]), opts).data();
    expectClose(y, conv2dRef(x, w, b, g), { atol: 1e-5, rtol: 1e-4, label: 'fallback forward' });
    const dx = await conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, opts).gradInput!.data();
    expectClose(dx, conv2dBackwardRef(dy, x, w, g).dx, { atol: 1e-5, rtol: 1e-4, label: 'fallback gradInput' });
  });

  it("'auto' takes Winograd for a layer with enough tiles, and the results still match", async () => {
    setConvAlgorithm('auto');
    const r = rng();
    // 8 images of 13x13 = 128 tiles of 4x4 outputs, 32 channels: 'auto' picks Winograd here
    const c: SquareConvCase = { N: 8, C: 32, H: 13, W: 13, O: 40, k: 3, padding: [1, 1] };
    const g = squareGeometry(c);
    const { x, w, b, dy, Ho, Wo } = inputs(g, r, true);
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(w), [g.O, g.C, 3, 3]);
    const y = await conv2d(tx, tw, Tensor.from(f32(b!), [g.O]), { padding: c.padding }).data();
    expectClose(y, conv2dRef(x, w, b, g), { ...tolerance(g.C * 9), label: 'auto forward' });
    const dx = await conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, { padding: c.padding }).gradInput!.data();
    expectClose(dx, conv2dBackwardRef(dy, x, w, g).dx, { ...tolerance(g.O * 9), label: 'auto gradInput' });
    // The direct kernel (or im2col) sums in another order, so some outputs round differently:
    // 'auto' ran Winograd unless only the portable GEMM is there beside a direct kernel.
    const cpu = backendInfo().backends.cpu;
    const picksWinograd = cpu.gemm === 'blas' || cpu.directConvIsa === 'none';
    setConvAlgorithm('direct');
    const yd = await conv2d(tx, tw, Tensor.from(f32(b!), [g.O]), { padding: c.padding }).data();
    expect(y.some((v, i) => v !== yd[i])).toBe(picksWinograd);
  });

  it("is reported by backendInfo() and named in setConvAlgorithm's error", () => {
    expect(backendInfo().backends.cpu.convAlgorithm).toBe('winograd');
    expectCode(() => setConvAlgorithm('winograd3' as never), 'ERR_ARGUMENT', /'winograd'.*but got 'winograd3'/);
    expect(backendInfo().backends.cpu.convAlgorithm).toBe('winograd'); // unchanged by the failed call
  });
});
