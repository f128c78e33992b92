import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { backendInfo, conv2d, conv2dBackward, mulberry32, setConvAlgorithm, setGemmBackend, setWeightCache, Tensor } from '../src/index.js';
import { dot, expectClose, expectCode, f32, f64, finiteDifference, rng, sampleIndices, uniform } from './helpers.js';
import { checkEmptyConv } from './empty-sizes.js';
import { conv2dAt, conv2dBackwardRef, conv2dRef, convOutSize, gradInputAt, gradWeightAt, type ConvGeometry } from './reference/conv.js';

type Pair = [number, number];
interface Case {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  k: Pair;
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

function geometry(c: Case): ConvGeometry {
  return {
    N: c.N,
    C: c.C,
    H: c.H,
    W: c.W,
    O: c.O,
    kH: c.k[0],
    kW: c.k[1],
    stride: c.stride ?? [1, 1],
    padding: c.padding ?? [0, 0],
    dilation: c.dilation ?? [1, 1],
    groups: c.groups ?? 1,
  };
}

const options = (g: ConvGeometry) => ({ stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups });
const wShape = (g: ConvGeometry) => [g.O, g.C / g.groups, g.kH, g.kW];

/** Fresh random float32-representable inputs for a case (kept in float64 for the reference). */
function inputs(g: ConvGeometry, r: () => number, bias = true) {
  const [Ho, Wo] = convOutSize(g);
  const x = f64(f32(uniform(g.N * g.C * g.H * g.W, r)));
  const w = f64(f32(uniform(g.O * (g.C / g.groups) * g.kH * g.kW, r, -0.5, 0.5)));
  const b = bias ? f64(f32(uniform(g.O, r))) : null;
  const dy = f64(f32(uniform(g.N * g.O * Ho * Wo, r)));
  return { x, w, b, dy, Ho, Wo };
}

// Awkward shapes: batch 1 and 3, channels 3/5/7, odd sizes, padding, strides 2-4, groups 2 and 3,
// rectangular kernels, dilation, no bias.
const cases: Case[] = [
  { N: 1, C: 3, H: 7, W: 9, O: 5, k: [3, 3], padding: [1, 1] },
  { N: 3, C: 5, H: 11, W: 8, O: 7, k: [3, 5], stride: [2, 3], padding: [1, 2] },
  { N: 3, C: 6, H: 9, W: 9, O: 4, k: [3, 3], stride: [2, 2], groups: 2 },
  { N: 2, C: 9, H: 10, W: 7, O: 6, k: [2, 4], stride: [3, 1], padding: [0, 1], dilation: [2, 1], groups: 3 },
  { N: 1, C: 7, H: 13, W: 13, O: 3, k: [5, 5], stride: [4, 4], bias: false },
  { N: 3, C: 4, H: 5, W: 6, O: 10, k: [1, 1], groups: 2 },
  { N: 2, C: 3, H: 6, W: 5, O: 2, k: [6, 5] },
  { N: 2, C: 3, H: 47, W: 49, O: 4, k: [3, 3], padding: [1, 1] }, // >= 2048 outputs per image: per-image GEMMs
  // Shapes for the direct kernel: output rows wider than one tile (14), more output channels
  // than one block (32) and not a multiple of it, more input channels than one weight block,
  // strides 2 and 4, unequal padding, a rectangular kernel, and padding > k - 1 (whose input
  // gradient has to take im2col).
  { N: 1, C: 20, H: 7, W: 31, O: 40, k: [3, 3], padding: [1, 1] },
  { N: 1, C: 3, H: 23, W: 27, O: 33, k: [5, 5], stride: [2, 2], padding: [2, 2] },
  { N: 2, C: 3, H: 31, W: 35, O: 8, k: [11, 11], stride: [4, 4], padding: [2, 1] },
  { N: 2, C: 6, H: 9, W: 12, O: 17, k: [2, 4], padding: [1, 2] },
  { N: 1, C: 4, H: 5, W: 6, O: 3, k: [1, 1], padding: [1, 1], bias: false },
  // the direct weight gradient (square 3/5/11 kernels, stride 1 or 4, a batch of >= 2): 5x5
  // tiles of two kernel rows with a one-row tail, 35 channels, three images over two threads
  { N: 3, C: 5, H: 12, W: 10, O: 35, k: [5, 5], padding: [2, 2] },
  // packed weights over 512 KiB (for AVX-512's 32-channel blocks and AVX2's 16): the direct
  // kernel walks block by block over the images instead of image by image
  { N: 2, C: 112, H: 6, W: 6, O: 40, k: [5, 5], padding: [2, 2], bias: false },
];

// The CPU convolution paths: the direct kernel with the CPU's best instruction set and with AVX2
// (where the CPU has them; elsewhere they fall back to im2col, see the availability test) and
// im2col + GEMM.
const algorithms = ['direct', 'direct-avx2', 'im2col'] as const;

const label = (c: Case) => JSON.stringify(c);
// Absolute tolerance of a float32 sum of K products of values in [-1, 1]: its rounding grows
// like sqrt(K) (1e-5 up to 64 terms; the 2800-term case needs 6.6e-5 when the sum nearly cancels).
const sumAtol = (K: number) => 1e-5 * Math.max(1, Math.sqrt(K / 64));

describe('conv2d', () => {
  afterEach(() => {
    if (backendInfo().backends.cpu.blasCompiled) setGemmBackend('blas');
  });

  afterEach(() => setConvAlgorithm('auto'));

  describe.each(algorithms)('with the %s path', (algo) => {
  beforeEach(() => setConvAlgorithm(algo));

  it.each(cases)('forward matches the float64 reference: %j', async (c) => {
    const r = rng();
    const g = geometry(c);
    const { x, w, b, Ho, Wo } = inputs(g, r, c.bias !== false);
    const y = conv2d(Tensor.from(f32(x), [g.N, g.C, g.H, g.W]), Tensor.from(f32(w), wShape(g)), b ? Tensor.from(f32(b), [g.O]) : null, options(g));
    expect(y.shape).toEqual([g.N, g.O, Ho, Wo]);
    expectClose(await y.data(), conv2dRef(x, w, b, g), { atol: sumAtol((g.C / g.groups) * g.kH * g.kW), rtol: 1e-4, label: `conv2d ${label(c)}` });
  });

  it.each(cases)('backward matches the analytic reference and finite differences: %j', async (c) => {
    const r = rng();
    const g = geometry(c);
    const hasBias = c.bias !== false;
    const { x, w, b, dy } = inputs(g, r, hasBias);
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(w), wShape(g));
    const tdy = Tensor.from(f32(dy), [g.N, g.O, ...convOutSize(g)]);
    const grads = conv2dBackward(tdy, tx, tw, { ...options(g), computeGradBias: hasBias });
    expect(grads.gradInput!.shape).toEqual([g.N, g.C, g.H, g.W]);
    expect(grads.gradWeight.shape).toEqual(wShape(g));
    const dx = await grads.gradInput!.data();
    const dw = await grads.gradWeight.data();
    const ref = conv2dBackwardRef(dy, x, w, g);
    expectClose(dx, ref.dx, { atol: sumAtol((g.O / g.groups) * g.kH * g.kW), rtol: 1e-4, label: 'gradInput vs analytic' });
    expectClose(dw, ref.dw, { atol: 1e-4, rtol: 1e-4, label: 'gradWeight vs analytic' });
    if (hasBias) {
      expectClose(await grads.gradBias!.data(), ref.db, { atol: 1e-4, rtol: 1e-4, label: 'gradBias vs analytic' });
    } else {
      expect(grads.gradBias).toBeNull();
    }

    // Finite differences of L = sum(conv2dRef(x, w, b) .* dy) in float64.
    const loss = (xx: Float64Array, ww: Float64Array, bb: Float64Array | null) => dot(conv2dRef(xx, ww, bb, g), dy);
    const fdx = finiteDifference((v) => loss(v, w, b), x, { indices: sampleIndices(x.length, 24, r) });
    const fdw = finiteDifference((v) => loss(x, v, b), w, { indices: sampleIndices(w.length, 24, r) });
    const check = (got: ArrayLike<number>, fd: Map<number, number>, what: string) =>
      expectClose(
        [...fd.keys()].map((i) => got[i]!),
        [...fd.values()],
        { atol: 1e-4, rtol: 1e-3, label: `${what} vs finite differences` },
      );
    check(dx, fdx, 'gradInput');
    check(dw, fdw, 'gradWeight');
    if (hasBias) check(await grads.gradBias!.data(), finiteDifference((v) => loss(x, w, v), b!), 'gradBias');
  });

  it('fuses ReLU into the forward pass (relu: true), and NaN stays NaN', async () => {
    const r = rng();
    for (const c of [cases[0]!, cases[8]!, cases[10]!, cases[2]!]) {
      const g = geometry(c);
      const { x, w, b } = inputs(g, r, c.bias !== false);
      const xf = f32(x);
      // at row 0, column 0 of a random image and channel: every case's first window reads it
      // (a random position can fall in columns a strided layer never reads)
      xf[Math.floor(r() * g.N * g.C) * g.H * g.W] = NaN;
      const y = await conv2d(Tensor.from(xf, [g.N, g.C, g.H, g.W]), Tensor.from(f32(w), wShape(g)), b ? Tensor.from(f32(b), [g.O]) : null, { ...options(g), relu: true }).data();
      const ref = conv2dRef(f64(xf), w, b, g).map((v) => (Number.isNaN(v) ? NaN : Math.max(v, 0)));
      expect(y.some((v) => Number.isNaN(v))).toBe(true);
      for (let i = 0; i < y.length; i++) expect(Number.isNaN(y[i]!), `NaN at ${i}`).toBe(Number.isNaN(ref[i]!));
      const finite = (a: ArrayLike<number>) => Array.from(a, (v) => (Number.isNaN(v) ? 0 : v));
      expectClose(finite(y), finite(ref), { atol: 1e-5, rtol: 1e-4, label: `relu-fused conv2d ${label(c)}` });
      expect(y.every((v) => Number.isNaN(v) || v >= 0)).toBe(true);
    }
  });

  it('accumulates the weight gradient into a view (every path)', async () => {
    const r = rng();
    for (const c of [cases[7]!, cases[10]!, cases[13]!]) {
      const g = geometry(c);
      const { x, w, dy } = inputs(g, r, false);
      const ref = conv2dBackwardRef(dy, x, w, g);
      const off = 3;
      const before = f32(uniform(off + w.length + 2, r));
      const store = Tensor.from(before, [before.length]);
      const gw = store.view(off, wShape(g));
      conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, ...convOutSize(g)]), Tensor.from(f32(x), [g.N, g.C, g.H, g.W]), Tensor.from(f32(w), wShape(g)), {
        ...options(g), gradWeight: gw, accumulate: true, computeGradBias: false,
      });
      const after = await store.data();
      expectClose(after.subarray(off, off + w.length), Array.from(ref.dw, (v, i) => v + before[off + i]!), { atol: 1e-4, rtol: 1e-4, label: `accumulated gradWeight ${label(c)}` });
      expect([after[0], after[1], after[2], after.at(-1), after.at(-2)]).toEqual([before[0], before[1], before[2], before.at(-1), before.at(-2)]);
    }
  });

  it('AlexNet conv3 shape (256->384, 3x3, pad 1, 13x13) at batch 2, forward and backward at sampled entries', async () => {
    const r = rng();
    const g = geometry({ N: 2, C: 256, H: 13, W: 13, O: 384, k: [3, 3], padding: [1, 1] });
    const { x, w, b, dy, Ho, Wo } = inputs(g, r);
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(w), wShape(g));
    const y = await conv2d(tx, tw, Tensor.from(f32(b!), [g.O]), options(g)).data();
    const idx = sampleIndices(y.length, 200, r);
    const at = (i: number) => conv2dAt(x, w, b, g, Math.floor(i / (Ho * Wo * g.O)), Math.floor(i / (Ho * Wo)) % g.O, Math.floor(i / Wo) % Ho, i % Wo);
    expectClose(idx.map((i) => y[i]!), idx.map(at), { atol: 1e-3, rtol: 1e-4, label: 'conv3 sampled outputs' });
    const dx = await conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, options(g)).gradInput!.data();
    const xi = sampleIndices(dx.length, 200, r);
    expectClose(xi.map((i) => dx[i]!), xi.map((i) => gradInputAt(dy, w, g, i)), { atol: 1e-3, rtol: 1e-4, label: 'conv3 sampled gradInput' });
    const dw = await conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, { ...options(g), computeGradInput: false }).gradWeight.data();
    const wi = sampleIndices(dw.length, 100, r);
    expectClose(wi.map((i) => dw[i]!), wi.map((i) => gradWeightAt(dy, x, g, i)), { atol: 2e-3, rtol: 2e-4, label: 'conv3 sampled gradWeight' });
  });
  });

  it('reports the direct kernel with the instruction set the CPU has, and the chosen path', () => {
    const cpu = backendInfo().backends.cpu;
    expect(cpu.convAlgorithm).toBe('auto');
    if (process.platform === 'linux' && process.arch === 'x64') {
      const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
      const isa = flags.includes('avx512f') ? 'avx512' : flags.includes('avx2') && flags.includes('fma') ? 'avx2' : 'none';
      expect(cpu.directConvIsa).toBe(isa);
      expect(cpu.directConv).toBe(isa !== 'none');
    }
    setConvAlgorithm('im2col');
    expect(backendInfo().backends.cpu.convAlgorithm).toBe('im2col');
    setConvAlgorithm('winograd');
    expect(backendInfo().backends.cpu.convAlgorithm).toBe('winograd');
    expectCode(() => setConvAlgorithm('fft' as never), 'ERR_ARGUMENT', /auto.*direct.*direct-avx2.*im2col.*winograd.*but got 'fft'/);
  });

  it("'auto' gives a batch of one or two at 13x13 to im2col + GEMM (bit for bit) unless the weight cache holds the direct kernel's packing or Winograd's filters, larger batches to another path", async () => {
    const cpu = backendInfo().backends.cpu;
    const r = rng();
    const forwardTol = cpu.directConvIsa === 'avx512' ? { atol: 1e-5 * Math.sqrt(40 * 9), rtol: 1e-4 } : { atol: 1e-5, rtol: 1e-4 };
    const run = async (algo: 'auto' | 'im2col', N: number) => {
      setConvAlgorithm(algo);
      const g = geometry({ N, C: 40, H: 13, W: 13, O: 48, k: [3, 3], padding: [1, 1] });
      const { x, w, b, dy, Ho, Wo } = inputs(g, mulberryFrom(N), true);
      const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
      const tw = Tensor.from(f32(w), wShape(g));
      const y = await conv2d(tx, tw, Tensor.from(f32(b!), [g.O]), options(g)).data();
      const dx = await conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, options(g)).gradInput!.data();
      return { y, dx, ref: conv2dRef(x, w, b, g) };
    };
    // the same inputs for both paths: a seed per batch size drawn from this run's generator
    const seeds = new Map<number, number>();
    const mulberryFrom = (N: number) => {
      if (!seeds.has(N)) seeds.set(N, Math.floor(r() * 2 ** 31));
      return mulberry32(seeds.get(N)!);
    };
    try {
      for (const N of [1, 2]) {
        // without the weight cache the direct kernel would pack on every call: im2col + GEMM
        setWeightCache(false);
        const auto = await run('auto', N);
        const gemm = await run('im2col', N);
        expectClose(auto.y, auto.ref, { atol: 1e-5, rtol: 1e-4, label: `auto N=${N}, no cache` });
        if (cpu.gemm === 'blas') {
          expect(Array.from(auto.y)).toEqual(Array.from(gemm.y));
          expect(Array.from(auto.dx)).toEqual(Array.from(gemm.dx));
        }
        // with it (the default) the forward pass keeps the direct kernel, or on AVX-512 takes
        // Winograd's own small-batch kernel (conv_winograd.cc: its tolerance, as in
        // conv-winograd.test.ts); the input gradient, whose weights change every training
        // step, still takes im2col + GEMM
        setWeightCache(true);
        const cached = await run('auto', N);
        expectClose(cached.y, cached.ref, { ...forwardTol, label: `auto N=${N}, cache` });
        if (cpu.gemm === 'blas') {
          if (cpu.directConv) expect(cached.y.some((v, i) => v !== gemm.y[i])).toBe(true);
          else expect(Array.from(cached.y)).toEqual(Array.from(gemm.y));
          expect(Array.from(cached.dx)).toEqual(Array.from(gemm.dx));
        }
      }
    } finally {
      setWeightCache(true);
    }
    // 4 images (676 positions): another path where the CPU has a direct kernel (sums in another order)
    const auto4 = await run('auto', 4);
    const gemm4 = await run('im2col', 4);
    expectClose(auto4.y, auto4.ref, { ...forwardTol, label: 'auto N=4' });
    if (cpu.directConv) expect(auto4.y.some((v, i) => v !== gemm4.y[i])).toBe(true);
  });

  it('writes into preallocated views (nonzero offset) and accumulates', async () => {
    const r = rng();
    const g = geometry({ N: 3, C: 6, H: 8, W: 7, O: 4, k: [3, 2], stride: [1, 2], padding: [1, 1], groups: 2 });
    const { x, w, dy } = inputs(g, r, false);
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(w), wShape(g));
    const tdy = Tensor.from(f32(dy), [g.N, g.O, ...convOutSize(g)]);
    const ref = conv2dBackwardRef(dy, x, w, g);

    const wn = w.length;
    const offW = 7;
    const offB = offW + wn + 3;
    const total = offB + g.O + 5;
    const before = f32(uniform(total, r));
    const store = Tensor.from(before, [total]);
    const gw = store.view(offW, wShape(g));
    const gb = store.view(offB, [g.O]);

    // accumulate: true adds to what is there
    const acc = conv2dBackward(tdy, tx, tw, { ...options(g), gradWeight: gw, gradBias: gb, accumulate: true, computeGradInput: false });
    expect(acc.gradWeight).toBe(gw);
    expect(acc.gradBias).toBe(gb);
    expect(acc.gradInput).toBeNull();
    const after = await store.data();
    expectClose(
      after.subarray(offW, offW + wn),
      Array.from(ref.dw, (v, i) => v + before[offW + i]!),
      { atol: 1e-4, rtol: 1e-4, label: 'accumulated gradWeight' },
    );
    expectClose(
      after.subarray(offB, offB + g.O),
      Array.from(ref.db, (v, i) => v + before[offB + i]!),
      { atol: 1e-4, rtol: 1e-4, label: 'accumulated gradBias' },
    );
    // nothing outside the two views was touched
    const outside = (a: Float32Array) => [...a.subarray(0, offW), ...a.subarray(offW + wn, offB), ...a.subarray(offB + g.O)];
    expectClose(outside(after), outside(before), { atol: 0, rtol: 0, label: 'store outside the views' });

    // a second accumulation adds again
    conv2dBackward(tdy, tx, tw, { ...options(g), gradWeight: gw, gradBias: gb, accumulate: true, computeGradInput: false });
    expectClose(await gw.data(), Array.from(ref.dw, (v, i) => 2 * v + before[offW + i]!), { atol: 2e-4, rtol: 1e-4, label: 'twice accumulated gradWeight' });

    // without accumulate the views are overwritten
    const over = conv2dBackward(tdy, tx, tw, { ...options(g), gradWeight: gw, gradBias: gb });
    expectClose(await over.gradInput!.data(), ref.dx, { atol: 1e-5, rtol: 1e-4, label: 'gradInput' });
    expectClose(await gw.data(), ref.dw, { atol: 1e-4, rtol: 1e-4, label: 'overwritten gradWeight' });
    expectClose(await gb.data(), ref.db, { atol: 1e-4, rtol: 1e-4, label: 'overwritten gradBias' });
    expectClose(outside(await store.data()), outside(before), { atol: 0, rtol: 0, label: 'store outside the views' });

    // only the weight gradient
    const onlyW = conv2dBackward(tdy, tx, tw, { ...options(g), computeGradInput: false, computeGradBias: false });
    expect(onlyW.gradInput).toBeNull();
    expect(onlyW.gradBias).toBeNull();
    expectClose(await onlyW.gradWeight.data(), ref.dw, { atol: 1e-4, rtol: 1e-4, label: 'gradWeight alone' });
  });

  it('gives the same results with the portable GEMM and with BLAS', async () => {
    const r = rng();
    const g = geometry({ N: 3, C: 5, H: 9, W: 11, O: 6, k: [3, 3], stride: [2, 1], padding: [1, 1], groups: 1 });
    const { x, w, b, dy } = inputs(g, r);
    const ref = conv2dBackwardRef(dy, x, w, g);
    const yRef = conv2dRef(x, w, b, g);
    const backends: ('blas' | 'portable')[] = backendInfo().backends.cpu.blasCompiled ? ['portable', 'blas'] : ['portable'];
    for (const backend of backends) {
      setGemmBackend(backend);
      expect(backendInfo().backends.cpu.gemm).toBe(backend);
      const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
      const tw = Tensor.from(f32(w), wShape(g));
      const y = conv2d(tx, tw, Tensor.from(f32(b!), [g.O]), options(g));
      expectClose(await y.data(), yRef, { atol: 1e-5, rtol: 1e-4, label: `forward (${backend})` });
      const grads = conv2dBackward(Tensor.from(f32(dy), y.shape), tx, tw, options(g));
      expectClose(await grads.gradInput!.data(), ref.dx, { atol: 1e-5, rtol: 1e-4, label: `gradInput (${backend})` });
      expectClose(await grads.gradWeight.data(), ref.dw, { atol: 1e-4, rtol: 1e-4, label: `gradWeight (${backend})` });
      expectClose(await grads.gradBias!.data(), ref.db, { atol: 1e-4, rtol: 1e-4, label: `gradBias (${backend})` });
    }
  });

  it('AlexNet conv1 (3->96, 11x11, stride 4, 227x227) at batch 1 matches the reference at sampled outputs', async () => {
    const r = rng();
    const g = geometry({ N: 1, C: 3, H: 227, W: 227, O: 96, k: [11, 11], stride: [4, 4] });
    const { x, w, b, Ho, Wo } = inputs(g, r);
    const y = await conv2d(Tensor.from(f32(x), [1, 3, 227, 227]), Tensor.from(f32(w), wShape(g)), Tensor.from(f32(b!), [96]), options(g)).data();
    expect(y.length).toBe(96 * 55 * 55);
    expect([Ho, Wo]).toEqual([55, 55]);
    const idx = sampleIndices(y.length, 300, r);
    const want = idx.map((i) => conv2dAt(x, w, b, g, 0, Math.floor(i / (Ho * Wo)), Math.floor(i / Wo) % Ho, i % Wo));
    expectClose(
      idx.map((i) => y[i]!),
      want,
      { atol: 1e-4, rtol: 1e-4, label: 'conv1 sampled outputs' },
    );
  });

  it('AlexNet conv2 with groups 2 (96->256, 5x5, pad 2, 27x27) at batch 10 (several image chunks), forward and backward at sampled entries', async () => {
    // 96*25*729 floats of columns per image: 9 images fill a chunk, so batch 10 runs a chunk of 9
    // images and then a chunk of one.
    const r = rng();
    const g = geometry({ N: 10, C: 96, H: 27, W: 27, O: 256, k: [5, 5], padding: [2, 2], groups: 2 });
    const { x, w, b, dy, Ho, Wo } = inputs(g, r);
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(w), wShape(g));
    const y = await conv2d(tx, tw, Tensor.from(f32(b!), [g.O]), options(g)).data();
    const idx = sampleIndices(y.length, 300, r);
    // include the first and last output of every image
    for (let n = 0; n < g.N; n++) idx.push(n * g.O * Ho * Wo, (n + 1) * g.O * Ho * Wo - 1);
    const at = (i: number) => {
      const ow = i % Wo;
      const oh = Math.floor(i / Wo) % Ho;
      const o = Math.floor(i / (Ho * Wo)) % g.O;
      const n = Math.floor(i / (Ho * Wo * g.O));
      return conv2dAt(x, w, b, g, n, o, oh, ow);
    };
    expectClose(
      idx.map((i) => y[i]!),
      idx.map(at),
      { atol: 1e-4, rtol: 1e-4, label: 'conv2 sampled outputs' },
    );

    const grads = conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, options(g));
    const dx = await grads.gradInput!.data();
    const dw = await grads.gradWeight.data();
    const db = await grads.gradBias!.data();
    const xi = sampleIndices(dx.length, 200, r);
    for (let n = 0; n < g.N; n++) xi.push(n * g.C * g.H * g.W, (n + 1) * g.C * g.H * g.W - 1);
    expectClose(
      xi.map((i) => dx[i]!),
      xi.map((i) => gradInputAt(dy, w, g, i)),
      { atol: 1e-4, rtol: 1e-4, label: 'conv2 sampled gradInput' },
    );
    const wi = sampleIndices(dw.length, 100, r);
    expectClose(
      wi.map((i) => dw[i]!),
      wi.map((i) => gradWeightAt(dy, x, g, i)),
      { atol: 2e-3, rtol: 2e-4, label: 'conv2 sampled gradWeight' },
    );
    const dbRef = new Float64Array(g.O);
    for (let i = 0; i < dy.length; i++) dbRef[Math.floor(i / (Ho * Wo)) % g.O]! += dy[i]!;
    expectClose(db, dbRef, { atol: 1e-3, rtol: 1e-4, label: 'conv2 gradBias' });
  });

  it('rejects bad input with typed errors and keeps working', async () => {
    const r = rng();
    const t = (shape: number[]) => Tensor.from(f32(uniform(shape.reduce((a, b) => a * b, 1), r)), shape);
    const x = t([2, 3, 8, 8]);
    const w = t([4, 3, 3, 3]);
    expectCode(() => conv2d(t([3, 8, 8]), w), 'ERR_SHAPE', /conv2d: expected input .*4 dimensions/);
    expectCode(() => conv2d(x, t([4, 3, 3])), 'ERR_SHAPE', /conv2d: expected weight/);
    expectCode(() => conv2d(t([2, 4, 8, 8]), w), 'ERR_SHAPE', 'conv2d: input has 4 channels but weight expects 3');
    expectCode(() => conv2d(t([2, 5, 8, 8]), t([4, 1, 3, 3]), null, { groups: 2 }), 'ERR_SHAPE', /groups=2 must divide the input channels/);
    expectCode(() => conv2d(t([2, 6, 8, 8]), t([5, 3, 3, 3]), null, { groups: 2 }), 'ERR_SHAPE', /groups=2 must divide the output channels/);
    expectCode(() => conv2d(t([2, 6, 8, 8]), t([4, 2, 3, 3]), null, { groups: 2 }), 'ERR_SHAPE', /input has 6 channels but weight expects 4/);
    expectCode(() => conv2d(x, w, null, { groups: 0 }), 'ERR_ARGUMENT', /groups/);
    expectCode(() => conv2d(t([1, 3, 4, 4]), t([4, 3, 7, 7]), null, { padding: 1 }), 'ERR_SHAPE', /larger than the padded input 6x6/);
    expectCode(() => conv2d(x, w, null, { dilation: 4 }), 'ERR_SHAPE', /larger than the padded input/);
    expectCode(() => conv2d(x, w, t([3])), 'ERR_SHAPE', /conv2d: expected bias of shape \[4\]/);
    expectCode(() => conv2d(x, w, t([4, 1])), 'ERR_SHAPE', /bias/);
    expectCode(() => conv2d(Tensor.from(new Int32Array(2 * 3 * 8 * 8), [2, 3, 8, 8]), w), 'ERR_DTYPE', /conv2d: expected input to be float32/);
    expectCode(() => conv2d(x, Tensor.from(new Int32Array(4 * 27), [4, 3, 3, 3])), 'ERR_DTYPE', /weight/);
    expectCode(() => conv2d(x, w, null, { stride: 1.5 }), 'ERR_ARGUMENT', /stride/);
    expectCode(() => conv2d(x, w, null, { stride: 0 }), 'ERR_ARGUMENT', /stride must be positive/);
    expectCode(() => conv2d(x, w, null, { stride: [1, 2, 3] as unknown as [number, number] }), 'ERR_ARGUMENT', /stride/);
    expectCode(() => conv2d(x, w, null, { padding: -1 }), 'ERR_ARGUMENT', /padding must be non-negative/);
    expectCode(() => conv2d(x, w, null, { padding: 'same' as unknown as number }), 'ERR_ARGUMENT', /padding/);
    expectCode(() => conv2d(x, w, null, { dilation: 0 }), 'ERR_ARGUMENT', /dilation/);
    expectCode(() => conv2d(x, {} as Tensor<'float32'>), 'ERR_ARGUMENT', 'conv2d: expected weight to be a Tensor');

    // backward
    const dy = t([2, 4, 6, 6]);
    expectCode(() => conv2dBackward(t([2, 4, 5, 6]), x, w), 'ERR_SHAPE', /conv2dBackward: expected gradOutput of shape \[2, 4, 6, 6\]/);
    expectCode(() => conv2dBackward(dy, x, w, { gradWeight: t([4, 3, 3, 2]) }), 'ERR_SHAPE', /gradWeight/);
    expectCode(() => conv2dBackward(dy, x, w, { gradBias: t([5]) }), 'ERR_SHAPE', /gradBias/);
    expectCode(() => conv2dBackward(dy, x, w, { accumulate: true }), 'ERR_ARGUMENT', /accumulate/);
    expectCode(() => conv2dBackward(dy, x, w, { accumulate: true, gradWeight: t([4, 3, 3, 3]) }), 'ERR_ARGUMENT', /gradBias/);
    expectCode(() => conv2dBackward(dy, x, w, { computeGradBias: false, gradBias: t([4]) }), 'ERR_ARGUMENT', /computeGradBias/);
    expectCode(() => conv2dBackward(dy, x, w, { computeGradInput: 1 as unknown as boolean }), 'ERR_ARGUMENT', /computeGradInput/);
    expectCode(() => conv2dBackward(dy, x, w, { gradWeight: {} as Tensor<'float32'> }), 'ERR_ARGUMENT', /gradWeight/);

    // disposed
    const gone = t([2, 3, 8, 8]);
    gone.dispose();
    expectCode(() => conv2d(gone, w), 'ERR_DISPOSED');
    const wGone = t([4, 3, 3, 3]);
    wGone.dispose();
    expectCode(() => conv2dBackward(dy, x, wGone), 'ERR_DISPOSED');

    // still works
    const y = conv2d(x, w, null, { padding: 0 });
    const xs = await x.data();
    const ws = await w.data();
    expectClose(await y.data(), conv2dRef(f64(xs), f64(ws), null, geometry({ N: 2, C: 3, H: 8, W: 8, O: 4, k: [3, 3] })), {
      label: 'conv2d after errors',
    });
  });

  it('keeps the JS thread free while a long convolution runs', async () => {
    const r = rng();
    const x = Tensor.from(f32(uniform(16 * 96 * 27 * 27, r)), [16, 96, 27, 27]);
    const w = Tensor.from(f32(uniform(256 * 96 * 25, r, -0.1, 0.1)), [256, 96, 5, 5]);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    try {
      const t0 = performance.now();
      const y = conv2d(x, w, null, { padding: 2 });
      const y2 = conv2d(x, w, null, { padding: 2 });
      const returned = performance.now() - t0;
      const done = Promise.all([y.data(), y2.data()]);
      await done;
      const total = performance.now() - t0;
      expect(returned).toBeLessThan(total);
      expect(ticks).toBeGreaterThanOrEqual(2);
    } finally {
      clearInterval(timer);
    }
  });

  it('an empty batch: empty output and gradInput, zero gradWeight / gradBias (unchanged when accumulating)', async () => {
    await checkEmptyConv('cpu');
  });
});
