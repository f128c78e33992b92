// Channels-last activations (memoryFormat 'channels_last', docs/architecture.md decision 14):
// toMemoryFormat against an index-by-index permutation; conv2d / conv2dBackward / maxPool2d /
// maxPool2dBackward on [N, H, W, C] tensors against the same operator on [N, C, H, W] (the CPU
// runs its NCHW kernels between transposes, so they agree bitwise) and against the float64
// references of test/reference on awkward shapes (odd sizes, stride, padding, dilation, groups,
// C not a multiple of 8), float32 and bfloat16; the model level (an AlexNet-shaped model trained
// channels-last and NCHW from one seed, checkpoints, the refusals); and on CUDA (skipped without
// a GPU) the same operators and training steps against the CPU and the NCHW path.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  alexnet, Conv2d, conv2d, conv2dBackward, Dropout, Flatten, Linear, loadCheckpoint, MaxPool2d, maxPool2d, maxPool2dBackward, memoryStats, Module, mulberry32,
  ParameterStore, ReLU, Sequential, SGD, softmaxCrossEntropy, synchronize, Tensor, toMemoryFormat, Trainer, type MemoryFormat,
} from '../src/index.js';
import { describeCuda } from './cuda-gate.js';
import { expectClose, expectCode, normal, rng } from './helpers.js';
import { bf16Value, f32Bits, f32BitsToBf16 } from './reference/bf16.js';
import { conv2dBackwardRef, conv2dRef, convOutSize, type ConvGeometry } from './reference/conv.js';
import { maxPool2dBackwardRef, maxPool2dRef, poolOutSize, type PoolGeometry } from './reference/pool.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

// ---- index-by-index permutations (the reference for toMemoryFormat) ----------------------------

/** [N, C, H, W] -> [N, H, W, C], element by element. */
function toNhwc(a: ArrayLike<number>, N: number, C: number, H: number, W: number): Float64Array {
  const out = new Float64Array(N * C * H * W);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) out[((n * H + h) * W + w) * C + c] = a[((n * C + c) * H + h) * W + w]!;
  return out;
}
/** [N, H, W, C] -> [N, C, H, W]. */
function toNchw(a: ArrayLike<number>, N: number, C: number, H: number, W: number): Float64Array {
  const out = new Float64Array(N * C * H * W);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) out[((n * C + c) * H + h) * W + w] = a[((n * H + h) * W + w) * C + c]!;
  return out;
}

const round16 = (v: number): number => bf16Value(f32BitsToBf16(f32Bits(v)));
const bits16 = (a: ArrayLike<number>): Uint16Array => Uint16Array.from(a, (v) => f32BitsToBf16(f32Bits(v)));

async function values(t: Tensor): Promise<Float64Array> {
  const d = await t.data();
  return d instanceof Uint16Array ? Float64Array.from(d, bf16Value) : Float64Array.from(d as Float32Array);
}

type DT = 'float32' | 'bfloat16';
/** A tensor of `dtype` holding `v` (rounded to bfloat16 for 'bfloat16') on `device`. */
function tensorOf(v: ArrayLike<number>, shape: number[], dtype: DT, device = 'cpu'): Tensor<DT> {
  return (dtype === 'bfloat16'
    ? Tensor.from(bits16(v), shape, { dtype: 'bfloat16', device })
    : Tensor.from(Float32Array.from(v), shape, { device })) as Tensor<DT>;
}

// ---- geometries ------------------------------------------------------------------------------

function conv(N: number, C: number, H: number, W: number, O: number, k: [number, number], stride: [number, number], padding: [number, number], groups = 1, dilation: [number, number] = [1, 1]): ConvGeometry {
  return { N, C, H, W, O, kH: k[0], kW: k[1], stride, padding, dilation, groups };
}

const CONV_SHAPES: [string, ConvGeometry][] = [
  ['odd sizes, C=3, stride 2, padding 1', conv(2, 3, 9, 7, 5, [3, 3], [2, 2], [1, 1])],
  ['C=5, 3x2 kernel, stride [2, 1], padding [1, 0]', conv(2, 5, 8, 9, 6, [3, 2], [2, 1], [1, 0])],
  ['groups 2, C=6, O=10', conv(1, 6, 7, 6, 10, [3, 3], [1, 1], [1, 1], 2)],
  ['dilation 2, 1x1 spatial output rows', conv(2, 4, 6, 11, 3, [2, 3], [3, 2], [0, 1], 1, [2, 2])],
  ['AlexNet conv1-like, C=3, k 11, stride 4', conv(1, 3, 27, 27, 7, [11, 11], [4, 4], [0, 0])],
];

// float32 accumulation of L products against float64: a generous rounding allowance
const F32_TOL = { atol: 2e-5, rtol: 2e-4 };

function convOptions(g: ConvGeometry, format: MemoryFormat) {
  return { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups, memoryFormat: format };
}

describe('toMemoryFormat', () => {
  for (const dtype of ['float32', 'bfloat16'] as const) {
    it(`${dtype}: [N, C, H, W] <-> [N, H, W, C] is the index permutation, exactly, both ways`, async () => {
      const r = rng();
      const [N, C, H, W] = [3, 5, 7, 33]; // a plane wider than one 32-wide block
      const x = normal(N * C * H * W, r);
      const xr = dtype === 'bfloat16' ? x.map(round16) : Float64Array.from(Float32Array.from(x));
      const t = tensorOf(x, [N, C, H, W], dtype);
      const cl = toMemoryFormat(t, 'channels_last');
      expect(cl.shape).toEqual([N, H, W, C]);
      expect(cl.dtype).toBe(dtype);
      expect(Array.from(await values(cl))).toEqual(Array.from(toNhwc(xr, N, C, H, W)));
      const back = toMemoryFormat(cl, 'contiguous_format');
      expect(back.shape).toEqual([N, C, H, W]);
      expect(Array.from(await values(back))).toEqual(Array.from(xr));
      // and the other way from a fresh [N, H, W, C] tensor
      const y = normal(N * H * W * C, r);
      const yr = dtype === 'bfloat16' ? y.map(round16) : Float64Array.from(Float32Array.from(y));
      const nchw = toMemoryFormat(tensorOf(y, [N, H, W, C], dtype), 'contiguous_format');
      expect(Array.from(await values(nchw))).toEqual(Array.from(toNchw(yr, N, C, H, W)));
    });
  }

  it('refuses what it cannot convert', () => {
    const t = Tensor.zeros([2, 3, 4]);
    expectCode(() => toMemoryFormat(t, 'channels_last'), 'ERR_SHAPE', /\[N, C, H, W\]/);
    expectCode(() => toMemoryFormat(Tensor.zeros([1, 2, 3, 4]), 'channels_first' as MemoryFormat), 'ERR_ARGUMENT', /contiguous_format/);
    expectCode(() => toMemoryFormat(Tensor.from(new Int32Array(4), [1, 1, 2, 2], { dtype: 'int32' }) as unknown as Tensor<'float32'>, 'channels_last'), 'ERR_DTYPE');
  });
});

/**
 * conv2d forward and backward with `format` on `device`, inputs given in NCHW order (converted
 * here by index for channels last), results returned in NCHW order.
 */
async function runConv(g: ConvGeometry, dtype: DT, format: MemoryFormat, inputs: ReturnType<typeof convInputs>, device = 'cpu', relu = false, outDtype: DT = 'float32') {
  const { x, w, b, dy } = inputs;
  const [Ho, Wo] = convOutSize(g);
  const cl = format === 'channels_last';
  const xs = cl ? [g.N, g.H, g.W, g.C] : [g.N, g.C, g.H, g.W];
  const ys = cl ? [g.N, Ho, Wo, g.O] : [g.N, g.O, Ho, Wo];
  const xt = tensorOf(cl ? toNhwc(x, g.N, g.C, g.H, g.W) : x, xs, dtype, device);
  const wt = tensorOf(w, [g.O, g.C / g.groups, g.kH, g.kW], dtype, device);
  const bt = Tensor.from(Float32Array.from(b), [g.O], { device });
  const dyt = tensorOf(cl ? toNhwc(dy, g.N, g.O, Ho, Wo) : dy, ys, dtype, device);
  const opts = { ...convOptions(g, format), ...(relu ? { relu } : {}), ...(dtype === 'bfloat16' ? { outDtype } : {}) };
  const y = conv2d(xt as Tensor<'bfloat16'>, wt as Tensor<'bfloat16'>, bt, opts);
  expect(y.shape).toEqual(ys);
  // accumulate into given gradients, whose earlier values must survive
  const gw0 = Float32Array.from(inputs.gw0);
  const gb0 = Float32Array.from(inputs.gb0);
  const gradWeight = Tensor.from(Float32Array.from(gw0), wt.shape as number[], { device });
  const gradBias = Tensor.from(Float32Array.from(gb0), [g.O], { device });
  const grads = conv2dBackward(dyt as Tensor<'bfloat16'>, xt as Tensor<'bfloat16'>, wt as Tensor<'bfloat16'>, { ...convOptions(g, format), gradWeight, gradBias, accumulate: true });
  expect(grads.gradInput!.shape).toEqual(xs);
  const back = (v: Float64Array, C: number, H: number, W: number) => (cl ? toNchw(v, g.N, C, H, W) : v);
  const dw = await values(grads.gradWeight);
  const db = await values(grads.gradBias!);
  return {
    y: back(await values(y), g.O, Ho, Wo),
    dx: back(await values(grads.gradInput!), g.C, g.H, g.W),
    dw: dw.map((v, i) => v - gw0[i]!),
    dwRaw: dw,
    db: db.map((v, i) => v - gb0[i]!),
    gw0,
    dbRaw: db,
  };
}

function convInputs(g: ConvGeometry, r: () => number) {
  const [Ho, Wo] = convOutSize(g);
  return {
    x: normal(g.N * g.C * g.H * g.W, r),
    w: normal(g.O * (g.C / g.groups) * g.kH * g.kW, r, 0.3),
    b: normal(g.O, r),
    dy: normal(g.N * g.O * Ho * Wo, r),
    gw0: normal(g.O * (g.C / g.groups) * g.kH * g.kW, r), // what the accumulated gradients held before
    gb0: normal(g.O, r),
  };
}

describe('conv2d / conv2dBackward, channels last, CPU', () => {
  for (const [name, g] of CONV_SHAPES) {
    it(`float32, ${name}: the NCHW operator bitwise, and float64`, async () => {
      const r = rng();
      const inputs = convInputs(g, r);
      const { x, w, b, dy } = inputs;
      const cl = await runConv(g, 'float32', 'channels_last', inputs, 'cpu', true);
      const ref = await runConv(g, 'float32', 'contiguous_format', inputs, 'cpu', true);
      for (const k of ['y', 'dx', 'dwRaw', 'dbRaw'] as const) expect(Array.from(cl[k]), k).toEqual(Array.from(ref[k]));
      // float64 on the float32-rounded inputs
      const x32 = Float64Array.from(Float32Array.from(x)), w32 = Float64Array.from(Float32Array.from(w));
      const b32 = Float64Array.from(Float32Array.from(b)), dy32 = Float64Array.from(Float32Array.from(dy));
      const y64 = conv2dRef(x32, w32, b32, g).map((v) => Math.max(v, 0));
      expectClose(cl.y, y64, { ...F32_TOL, label: 'y' });
      const bw = conv2dBackwardRef(dy32, x32, w32, g);
      expectClose(cl.dx, bw.dx, { ...F32_TOL, label: 'dx' });
      expectClose(cl.dw, bw.dw, { atol: 1e-4, rtol: 1e-3, label: 'dw (accumulated minus the earlier value)' });
      expectClose(cl.db, bw.db, { atol: 1e-4, rtol: 1e-3, label: 'db' });
    });
  }

  for (const outDtype of ['float32', 'bfloat16'] as const) {
    it(`bfloat16 inputs, ${outDtype} output: the NCHW operator bitwise, and float64 on the rounded inputs`, async () => {
      for (const [, g] of CONV_SHAPES.slice(0, 3)) {
        const r = rng();
        const inputs = convInputs(g, r);
      const { x, w, b, dy } = inputs;
        const cl = await runConv(g, 'bfloat16', 'channels_last', inputs, 'cpu', false, outDtype);
        const ref = await runConv(g, 'bfloat16', 'contiguous_format', inputs, 'cpu', false, outDtype);
        for (const k of ['y', 'dx', 'dwRaw', 'dbRaw'] as const) expect(Array.from(cl[k]), k).toEqual(Array.from(ref[k]));
        const x16 = x.map(round16), w16 = w.map(round16), dy16 = dy.map(round16);
        const b32 = Float64Array.from(Float32Array.from(b));
        const y64 = conv2dRef(x16, w16, b32, g);
        // bfloat16 output: one rounding (2^-8 relative); float32: float32 sums
        expectClose(cl.y, y64, outDtype === 'bfloat16' ? { atol: 1e-3, rtol: 2 ** -8 + 1e-4, label: 'y' } : { ...F32_TOL, label: 'y' });
        const bw = conv2dBackwardRef(dy16, x16, w16, g);
        expectClose(cl.dx, bw.dx, { atol: 1e-3, rtol: 2 ** -8 + 1e-4, label: 'dx (bfloat16)' });
        expectClose(cl.dw, bw.dw, { atol: 1e-4, rtol: 1e-3, label: 'dw' });
      }
    });
  }

  it('memoryFormat is checked, and the shapes are read in its order', () => {
    const x = Tensor.zeros([1, 5, 6, 3]); // [N, H, W, C] with C = 3
    const w = Tensor.zeros([4, 3, 3, 3]);
    expect(conv2d(x, w, null, { memoryFormat: 'channels_last' }).shape).toEqual([1, 3, 4, 4]);
    // read as NCHW, the same tensor has 5 channels: the weight does not fit
    expectCode(() => conv2d(x, w, null), 'ERR_SHAPE', /channels/);
    expectCode(() => conv2d(x, w, null, { memoryFormat: 'nhwc' as MemoryFormat }), 'ERR_ARGUMENT', /memoryFormat/);
    const dy = Tensor.zeros([1, 4, 3, 4]); // NCHW-ordered output gradient given to a channels-last call
    expectCode(() => conv2dBackward(dy, x, w, { memoryFormat: 'channels_last' }), 'ERR_SHAPE', /gradOutput/);
  });
});

function pool(N: number, C: number, H: number, W: number, k: [number, number], stride: [number, number], padding: [number, number]): PoolGeometry {
  return { N, C, H, W, kernel: k, stride, padding };
}
const POOL_SHAPES: [string, PoolGeometry][] = [
  ['AlexNet 3/2, odd size, C=5', pool(2, 5, 13, 11, [3, 3], [2, 2], [0, 0])],
  ['2x3 window, stride [1, 2], padding [1, 1], C=3', pool(1, 3, 7, 9, [2, 3], [1, 2], [1, 1])],
  ['C=40 (past one warp of channels)', pool(2, 40, 6, 5, [3, 3], [2, 2], [1, 1])],
];

async function runPool(g: PoolGeometry, dtype: DT, format: MemoryFormat, x: Float64Array, dy: Float64Array, device = 'cpu') {
  const [Ho, Wo] = poolOutSize(g);
  const cl = format === 'channels_last';
  const xt = tensorOf(cl ? toNhwc(x, g.N, g.C, g.H, g.W) : x, cl ? [g.N, g.H, g.W, g.C] : [g.N, g.C, g.H, g.W], dtype, device);
  const dyt = tensorOf(cl ? toNhwc(dy, g.N, g.C, Ho, Wo) : dy, cl ? [g.N, Ho, Wo, g.C] : [g.N, g.C, Ho, Wo], dtype, device);
  const opts = { kernelSize: g.kernel, stride: g.stride, padding: g.padding, memoryFormat: format };
  const y = maxPool2d(xt as Tensor<'float32'>, opts);
  const dx = maxPool2dBackward(dyt as Tensor<'float32'>, xt as Tensor<'float32'>, y, opts);
  expect(dx.shape).toEqual(xt.shape);
  return {
    y: cl ? toNchw(await values(y), g.N, g.C, Ho, Wo) : await values(y),
    dx: cl ? toNchw(await values(dx), g.N, g.C, g.H, g.W) : await values(dx),
  };
}

describe('maxPool2d / maxPool2dBackward, channels last, CPU', () => {
  for (const dtype of ['float32', 'bfloat16'] as const) {
    for (const [name, g] of POOL_SHAPES) {
      it(`${dtype}, ${name}: the NCHW operator bitwise, and float64`, async () => {
        const r = rng();
        const [Ho, Wo] = poolOutSize(g);
        const x = normal(g.N * g.C * g.H * g.W, r);
        const dy = normal(g.N * g.C * Ho * Wo, r);
        const cl = await runPool(g, dtype, 'channels_last', x, dy);
        const ref = await runPool(g, dtype, 'contiguous_format', x, dy);
        expect(Array.from(cl.y)).toEqual(Array.from(ref.y));
        expect(Array.from(cl.dx)).toEqual(Array.from(ref.dx));
        const rd = (v: number) => (dtype === 'bfloat16' ? round16(v) : Math.fround(v));
        const xr = x.map(rd), dyr = dy.map(rd);
        expect(Array.from(cl.y)).toEqual(Array.from(maxPool2dRef(xr, g))); // a maximum is exact
        // float32 sums of at most 4 routed gradients (then one bfloat16 rounding)
        expectClose(cl.dx, maxPool2dBackwardRef(dyr, xr, g), dtype === 'bfloat16' ? { atol: 1e-6, rtol: 2 ** -8 } : { atol: 1e-6, rtol: 1e-6, label: 'dx' });
      });
    }
  }
});

// ---- the model level ------------------------------------------------------------------------

/**
 * An AlexNet-shaped model for 31x31 inputs, named as AlexNet (features, flatten, classifier):
 * conv 5/2 (C=3 -> 10), ReLU, pool 3/2, conv 3 pad 1, ReLU, conv 3 pad 1 groups 2 (-> 6),
 * ReLU, pool 3/2 -> 6x2x2, Flatten, Linear, ReLU, Dropout, Linear.
 */
function tinyAlexNet(seed: number): Sequential {
  const r = mulberry32(seed);
  const model = new Sequential();
  model.append(
    new Sequential(
      new Conv2d(3, 10, 5, { stride: 2, rng: r }), new ReLU(), new MaxPool2d(3, 2),
      new Conv2d(10, 12, 3, { padding: 1, rng: r }), new ReLU(),
      new Conv2d(12, 6, 3, { padding: 1, groups: 2, rng: r }), new ReLU(), new MaxPool2d(3, 2),
    ),
    'features',
  );
  model.append(new Flatten(), 'flatten');
  model.append(new Sequential(new Linear(24, 20, { rng: r }), new ReLU(), new Dropout(0.3, { seed: 9 }), new Linear(20, 3, { rng: r })), 'classifier');
  return model;
}

/** `steps` SGD steps of `model` on fixed random batches; the losses and the final weights. */
async function train(model: Sequential, steps: number, seed: number, device = 'cpu') {
  const store = ParameterStore.create(model, { device });
  const sgd = new SGD(store, { lr: 0.05, momentum: 0.9, weightDecay: 1e-3 });
  const r = rng(seed);
  const losses: number[] = [];
  let inputGrad: Float64Array | null = null;
  for (let s = 0; s < steps; s++) {
    const x = Tensor.from(Float32Array.from(normal(4 * 3 * 31 * 31, r)), [4, 3, 31, 31], { device });
    const labels = Tensor.from(Int32Array.from({ length: 4 }, () => Math.floor(r() * 3)), [4], { dtype: 'int32', device });
    store.zeroGrad();
    const y = model.forward(x);
    const { loss, gradLogits } = softmaxCrossEntropy(y, labels);
    const g = model.backward(gradLogits, s === 0); // the input gradient once, through the conversion
    if (g !== null) {
      expect(g.shape).toEqual([4, 3, 31, 31]);
      inputGrad = await values(g);
    }
    sgd.step();
    losses.push((await loss.data())[0]!);
  }
  const weights = new Map<string, Float64Array>();
  for (const [name, p] of model.namedParameters()) weights.set(name, await values(p.data));
  return { losses, weights, inputGrad: inputGrad! };
}

describe('channels last on a model (CPU)', () => {
  it('training steps channels-last and NCHW from one seed agree (bitwise on the CPU: the same kernels between transposes)', async () => {
    const a = tinyAlexNet(4);
    const b = tinyAlexNet(4).setMemoryFormat('channels_last');
    expect(b.memoryFormat).toBe('channels_last');
    expect((b.at(0) as Sequential).at(0).memoryFormat).toBe('channels_last');
    const ra = await train(a, 4, 11);
    const rb = await train(b, 4, 11);
    expect(rb.losses).toEqual(ra.losses);
    expect(ra.losses[3]).not.toBe(ra.losses[0]); // the weights did move
    for (const [name, w] of ra.weights) expect(Array.from(rb.weights.get(name)!), name).toEqual(Array.from(w));
    expect(Array.from(rb.inputGrad)).toEqual(Array.from(ra.inputGrad));
    // eval mode: the same logits, and the converted input freed without leaking into the output
    a.eval();
    b.eval();
    const x = Tensor.from(Float32Array.from(normal(2 * 3 * 31 * 31, rng())), [2, 3, 31, 31]);
    expect(Array.from(await b.forward(x).data())).toEqual(Array.from(await a.forward(x).data()));
  });

  it("precision 'bf16' with channels last: the bf16 NCHW model's training steps, bitwise", async () => {
    const a = tinyAlexNet(5).setPrecision('bf16');
    const b = tinyAlexNet(5).setPrecision('bf16').setMemoryFormat('channels_last');
    const ra = await train(a, 3, 12);
    const rb = await train(b, 3, 12);
    expect(rb.losses).toEqual(ra.losses);
    for (const [name, w] of ra.weights) expect(Array.from(rb.weights.get(name)!), name).toEqual(Array.from(w));
    expect(Array.from(rb.inputGrad)).toEqual(Array.from(ra.inputGrad));
  });

  it("AlexNet 'torchvision' (AdaptiveAvgPool2d on [N, H, W, C]): the NCHW model's logits", async () => {
    const m = alexnet({ config: 'torchvision', init: 'kaiming', seed: 2, numClasses: 7 }).eval();
    const mc = alexnet({ config: 'torchvision', init: 'kaiming', seed: 2, numClasses: 7, memoryFormat: 'channels_last' }).eval();
    const x = Tensor.from(Float32Array.from(normal(3 * 224 * 224, rng())), [1, 3, 224, 224]);
    const y = await m.forward(x).data();
    expect(Array.from(await mc.forward(x).data())).toEqual(Array.from(y));
  }, 60_000);

  it('setMemoryFormat on a part of a model: the same format again is a no-op (it converted the input twice), another is refused, a part of an NCHW model converts in and out', async () => {
    const ref = await train(tinyAlexNet(6), 2, 13);
    const same = async (m: Sequential, label: string) => {
      const r = await train(m, 2, 13);
      expect(r.losses, label).toEqual(ref.losses);
      for (const [name, w] of ref.weights) expect(Array.from(r.weights.get(name)!), `${label}: ${name}`).toEqual(Array.from(w));
      expect(Array.from(r.inputGrad), label).toEqual(Array.from(ref.inputGrad));
    };
    // the whole model, then its feature stack and one of its layers again: one conversion
    const twice = tinyAlexNet(6).setMemoryFormat('channels_last');
    const features = twice.at(0) as Sequential;
    expect(features.setMemoryFormat('channels_last')).toBe(features);
    features.at(3).setMemoryFormat('channels_last');
    await same(twice, 'channels_last set on the model, then on its parts');
    // 'contiguous_format' on a part of a channels-last model would read [N, H, W, C] as NCHW
    expectCode(() => features.setMemoryFormat('contiguous_format'), 'ERR_ARGUMENT', /part of a Sequential set to 'channels_last' by its setMemoryFormat; call setMemoryFormat on that model/);
    expectCode(() => twice.at(1).setMemoryFormat('contiguous_format'), 'ERR_ARGUMENT', /Flatten is part of a Sequential/);
    expect([features.memoryFormat, features.at(0).memoryFormat]).toEqual(['channels_last', 'channels_last']); // nothing changed
    // the feature stack alone channels last in an NCHW model: its [N, C, H, W] input converted
    // in, its 4-D output converted back (before: the Flatten after it read [N, H, W, C] as NCHW)
    const part = tinyAlexNet(6);
    part.at(0).setMemoryFormat('channels_last');
    await same(part, 'the feature stack alone');
    // the classifier alone: its [N, F] input has no layout (before: ERR_SHAPE from the conversion)
    const classifier = tinyAlexNet(6);
    classifier.at(2).setMemoryFormat('channels_last');
    await same(classifier, 'the classifier alone');
    // a lone layer set to channels last inside an NCHW model would read [N, C, H, W] as
    // [N, H, W, C] (silently, where the sizes allow): refused, naming it (before any layer runs: see the next test)
    const x = Tensor.from(Float32Array.from(normal(2 * 3 * 31 * 31, rng())), [2, 3, 31, 31]);
    const lone = tinyAlexNet(6);
    (lone.at(0) as Sequential).at(3).setMemoryFormat('channels_last');
    expectCode(() => lone.forward(x), 'ERR_ARGUMENT', /child '3' \(Conv2d\) takes \[N, H, W, C\] activations but this contiguous-format Sequential passes \[N, C, H, W\]/);
    const flat = tinyAlexNet(6);
    flat.at(1).setMemoryFormat('channels_last');
    expectCode(() => flat.forward(x), 'ERR_ARGUMENT', /child 'flatten' \(Flatten\)/);
    // the whole model afterwards takes over its parts
    lone.setMemoryFormat('channels_last');
    await same(lone, 'the whole model after a lone layer');
    x.dispose();
  });

  it('a child in another layout is refused when the forward starts, before any layer runs (it ran the layers before it); past a layer of unknown output rank, mid-forward, leaving nothing behind', async () => {
    const x = Tensor.from(Float32Array.from(normal(2 * 3 * 31 * 31, rng())), [2, 3, 31, 31]);
    /** A caller's layer: [N, 24] -> [N, 6, 2, 2] (its output rank is known only by running it). */
    class Unflatten extends Module {
      forward(v: Tensor<'float32'>): Tensor<'float32'> {
        return v.reshape([v.shape[0]!, 6, 2, 2]);
      }
      backward(g: Tensor<'float32'>, need = true): Tensor<'float32'> | null {
        return need ? g.reshape([g.shape[0]!, -1]) : null;
      }
    }
    for (const training of [true, false]) {
      // a lone layer deep inside the feature stack, and a Flatten set alone: refused before anything is allocated
      const lone = tinyAlexNet(6).train(training);
      (lone.at(0) as Sequential).at(3).setMemoryFormat('channels_last');
      const flat = tinyAlexNet(6).train(training);
      flat.at(1).setMemoryFormat('channels_last');
      for (const [model, message] of [[lone, /child '3' \(Conv2d\) takes \[N, H, W, C\] activations/], [flat, /child 'flatten' \(Flatten\)/]] as const) {
        await synchronize();
        const before = memoryStats('cpu', { resetPeak: true });
        expectCode(() => model.forward(x), 'ERR_ARGUMENT', message);
        await synchronize();
        expect(memoryStats('cpu').peakUsedBytes, `training ${training}: no layer ran`).toBe(before.usedBytes);
      }
      // after a caller's layer: refused when reached, the activations of the layers before disposed at once
      const r = mulberry32(3);
      const net = new Sequential(new Conv2d(3, 4, 3, { stride: 2, rng: r }), new ReLU(), new Flatten(), new Linear(4 * 15 * 15, 24, { rng: r }), new Unflatten(), new Conv2d(6, 2, 1, { rng: r })).train(training);
      net.at(5).setMemoryFormat('channels_last');
      await synchronize();
      const used = memoryStats('cpu').usedBytes;
      expectCode(() => net.forward(x), 'ERR_ARGUMENT', /child '5' \(Conv2d\) takes \[N, H, W, C\] activations/);
      await synchronize();
      expect(memoryStats('cpu').usedBytes, `training ${training}: nothing left behind`).toBe(used);
      // and the model runs once the layer is back in the model's layout
      net.at(5).setMemoryFormat('contiguous_format');
      const y = net.forward(x);
      expect(y.shape).toEqual([2, 2, 2, 2]);
      if (training) {
        const g = Tensor.full([2, 2, 2, 2], 1);
        expect(net.backward(g, false)).toBeNull();
        g.dispose();
      }
      net.clearCache();
      y.dispose();
    }
    x.dispose();
  });

  it("setPrecision on a part of a bf16 model: 'bf16' again is a no-op, 'fp32' is refused (its layers would get bfloat16 activations)", async () => {
    const ref = await train(tinyAlexNet(7).setPrecision('bf16'), 2, 14);
    const m = tinyAlexNet(7).setPrecision('bf16');
    const features = m.at(0) as Sequential;
    expect(features.setPrecision('bf16')).toBe(features);
    const r = await train(m, 2, 14);
    expect(r.losses).toEqual(ref.losses);
    for (const [name, w] of ref.weights) expect(Array.from(r.weights.get(name)!), name).toEqual(Array.from(w));
    expectCode(() => m.at(2).setPrecision('fp32'), 'ERR_ARGUMENT', /part of a Sequential set to 'bf16' by its setPrecision; call setPrecision on that model/);
    expect(m.at(2).precision).toBe('bf16');
    // a junk input to a bfloat16 layer: a coded error (it was a TypeError)
    expectCode(() => m.forward({} as Tensor<'float32'>), 'ERR_ARGUMENT', /expected the input to be a Tensor/);
    expectCode(() => features.at(0).forward(null as unknown as Tensor<'float32'>), 'ERR_ARGUMENT', /expected the input to be a Tensor/);
    expectCode(() => new Flatten().forward(7 as unknown as Tensor<'float32'>), 'ERR_ARGUMENT', /Flatten: expected the input to be a Tensor/);
  });

  it("refuses what has no channels-last form: AlexNet 'paper2012' (LRN), unknown formats", () => {
    expectCode(() => alexnet({ config: 'paper2012', memoryFormat: 'channels_last' }), 'ERR_ARGUMENT', /features\.2 \(LocalResponseNorm\)/);
    const m = alexnet({ config: 'paper2012' });
    expectCode(() => m.setMemoryFormat('channels_last'), 'ERR_ARGUMENT', /LocalResponseNorm/);
    expect(m.memoryFormat).toBe('contiguous_format'); // nothing changed
    expect(m.features.at(0).memoryFormat).toBe('contiguous_format');
    expectCode(() => tinyAlexNet(1).setMemoryFormat('nhwc' as MemoryFormat), 'ERR_ARGUMENT', /channels_last/);
    expectCode(() => new Trainer({ model: alexnet({ config: 'paper2012' }), config: {}, train: { length: 0, classNames: ['a'], sampleShape: [3, 227, 227], load: () => ({ image: new Float32Array(0), label: 0 }) } as never, memoryFormat: 'channels_last', checkpoint: null }), 'ERR_ARGUMENT', /LocalResponseNorm/);
  });

  it('a checkpoint written by a channels-last Trainer loads into an NCHW model: the same weights and logits', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alexnet-cl-'));
    dirs.push(dir);
    const r = mulberry32(3);
    const data = (size: number) => ({
      length: size,
      classNames: ['a', 'b', 'c'],
      sampleShape: [3, 31, 31] as const,
      load(i: number) {
        const q = mulberry32(1000 + i);
        return { image: Float32Array.from(normal(3 * 31 * 31, q)), label: i % 3 };
      },
    });
    void r;
    const model = tinyAlexNet(6);
    const trainer = new Trainer({ model, config: { test: 'channels last' }, train: data(16), batchSize: 8, epochs: 1, optimizer: { lr: 0.05 }, memoryFormat: 'channels_last', checkpoint: join(dir, 'ck.safetensors'), workers: 0 });
    expect(model.memoryFormat).toBe('channels_last');
    await trainer.run();
    await trainer.close();
    const ck = await loadCheckpoint(join(dir, 'ck.safetensors'));
    const plain = tinyAlexNet(99);
    const dict = Object.fromEntries(Object.entries(ck.weights).map(([k, v]) => [k, Tensor.from(v.data as Float32Array, v.shape as number[])]));
    plain.loadStateDict(dict);
    expect(ck.weights['features.0.weight']!.shape).toEqual([10, 3, 5, 5]); // PyTorch's layout
    model.eval();
    plain.eval();
    const x = Tensor.from(Float32Array.from(normal(2 * 3 * 31 * 31, rng())), [2, 3, 31, 31]);
    expect(Array.from(await plain.forward(x).data())).toEqual(Array.from(await model.forward(x).data()));
  });
});

// ---- CUDA --------------------------------------------------------------------------------------

describeCuda('channels last on CUDA (cuDNN NHWC descriptors and KRSC filters; our NHWC pooling)', () => {
  for (const [name, g] of CONV_SHAPES) {
    it(`float32 conv2d, ${name}: the CPU and the CUDA NCHW path`, async () => {
      const r = rng();
      const inputs = convInputs(g, r);
      const { x, w, b, dy } = inputs;
      const gpu = await runConv(g, 'float32', 'channels_last', inputs, 'cuda', true);
      const gpuNchw = await runConv(g, 'float32', 'contiguous_format', inputs, 'cuda', true);
      const cpu = await runConv(g, 'float32', 'channels_last', inputs, 'cpu', true);
      // TF32 (the default) rounds products' operands to 10 bits: a TF32-sized tolerance
      const tol = { atol: 2e-2, rtol: 5e-3 };
      for (const k of ['y', 'dx', 'dw', 'db'] as const) {
        expectClose(gpu[k], cpu[k], { ...tol, label: `${k} vs CPU` });
        expectClose(gpu[k], gpuNchw[k], { ...tol, label: `${k} vs CUDA NCHW` });
      }
      // the accumulated gradient kept its earlier value (KRSC -> OIHW added, not overwritten)
      expectClose(gpu.dwRaw.map((v, i) => v - cpu.dw[i]!), gpu.gw0, { atol: 5e-2, rtol: 1e-2, label: 'dw accumulated onto' });
    });
  }

  for (const outDtype of ['float32', 'bfloat16'] as const) {
    it(`bfloat16 conv2d (${outDtype} output): the CPU's values within bfloat16 rounding`, async () => {
      for (const [, g] of CONV_SHAPES) {
        const r = rng();
        const inputs = convInputs(g, r);
      const { x, w, b, dy } = inputs;
        const gpu = await runConv(g, 'bfloat16', 'channels_last', inputs, 'cuda', true, outDtype);
        const cpu = await runConv(g, 'bfloat16', 'channels_last', inputs, 'cpu', true, outDtype);
        const tol = { atol: 2e-2, rtol: 2 ** -7 };
        for (const k of ['y', 'dx', 'dw', 'db'] as const) expectClose(gpu[k], cpu[k], { ...tol, label: `${k} vs CPU` });
      }
    });
  }

  for (const dtype of ['float32', 'bfloat16'] as const) {
    it(`${dtype} maxPool2d: the CPU's forward bitwise (the same first-maximum rule), its backward to float32 rounding`, async () => {
      for (const [, g] of POOL_SHAPES) {
        const r = rng();
        const [Ho, Wo] = poolOutSize(g);
        const x = normal(g.N * g.C * g.H * g.W, r);
        const dy = normal(g.N * g.C * Ho * Wo, r);
        const gpu = await runPool(g, dtype, 'channels_last', x, dy, 'cuda');
        const cpu = await runPool(g, dtype, 'channels_last', x, dy, 'cpu');
        expect(Array.from(gpu.y)).toEqual(Array.from(cpu.y));
        // the CPU adds a row's border windows after its interior ones: another order of float32 sums
        expectClose(gpu.dx, cpu.dx, dtype === 'bfloat16' ? { atol: 1e-6, rtol: 2 ** -7 } : { atol: 1e-6, rtol: 1e-6, label: 'dx' });
      }
    });

    it(`${dtype} toMemoryFormat: the index permutation, exactly`, async () => {
      const r = rng();
      const [N, C, H, W] = [2, 67, 9, 35];
      const x = normal(N * C * H * W, r);
      const xr = dtype === 'bfloat16' ? x.map(round16) : Float64Array.from(Float32Array.from(x));
      const cl = toMemoryFormat(tensorOf(x, [N, C, H, W], dtype, 'cuda'), 'channels_last');
      expect(Array.from(await values(cl))).toEqual(Array.from(toNhwc(xr, N, C, H, W)));
      expect(Array.from(await values(toMemoryFormat(cl, 'contiguous_format')))).toEqual(Array.from(xr));
    });
  }

  it('training steps channels-last on CUDA agree with NCHW on CUDA and with the CPU within TF32 rounding', async () => {
    const gpuCl = await train(tinyAlexNet(4).setMemoryFormat('channels_last'), 3, 21, 'cuda');
    const gpu = await train(tinyAlexNet(4), 3, 21, 'cuda');
    const cpu = await train(tinyAlexNet(4), 3, 21, 'cpu');
    expectClose(gpuCl.losses, gpu.losses, { atol: 1e-3, rtol: 1e-2, label: 'losses vs CUDA NCHW' });
    expectClose(gpuCl.losses, cpu.losses, { atol: 1e-3, rtol: 1e-2, label: 'losses vs CPU' });
    for (const [name, w] of cpu.weights) expectClose(gpuCl.weights.get(name)!, w, { atol: 2e-3, rtol: 2e-2, label: name });
  });
});
