// ReLU fused with the Dropout after it (issue 14): dropout(x, {relu: true}) gives max(x, 0) * mask
// in one pass and records one mask carrying both derivatives (0 where x <= 0), so dropoutBackward
// alone gives the gradient of ReLU then dropout. Checked against a float64 reference of
// relu-then-dropout with the same mask (the BigInt stream), forward and backward, float32 and
// bfloat16, on awkward sizes (across the CPU's parallel grain); then Sequential's three modes
// (setReluDropoutFusion) train the small network to the same losses and weights, bit for bit.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Conv2d, Dropout, dropout, dropoutBackward, Flatten, Linear, MaxPool2d, mulberry32, ReLU, Sequential, setReluDropoutFusion, SyntheticDataset, Tensor, Trainer,
  type ReluDropoutFusion,
} from '../src/index.js';

import { describeCuda, itCuda } from './cuda-gate.js';
import { f32, normal, rng } from './helpers.js';
import { bf16Value, f32Bits, f32BitsToBf16 } from './reference/bf16.js';
import { dropoutMaskRef } from './reference/dropout.js';
import { smallNet } from './small-net.mjs';

const toBf16 = (v: number): number => f32BitsToBf16(f32Bits(v));
/** ReLU keeps x > 0 and NaN */
const positive = (v: number): boolean => !(v <= 0);

/** Equal values (NaN equal to NaN; +0 and -0 equal: the fused backward writes dy * 0, which keeps dy's sign). */
function firstDifference(got: ArrayLike<number>, want: ArrayLike<number>): string {
  if (got.length !== want.length) return `length ${got.length} != ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (!(g === w || (Number.isNaN(g) && Number.isNaN(w)))) return `[${i}] got ${g}, want ${w}`;
  }
  return '';
}

/** n values: normal, with exact zeros of both signs and a few NaNs. */
function inputs(n: number, r: () => number): Float64Array {
  const v = normal(n, r, 1);
  for (let i = 0; i < n; i++) {
    const u = r();
    if (u < 0.02) v[i] = 0;
    else if (u < 0.04) v[i] = -0;
    else if (u < 0.05) v[i] = NaN;
  }
  return v;
}

const SIZES = [1, 7, 1000, 32_769, 65_539]; // 32768 is the CPU's grain

async function checkFloat32(device: string): Promise<void> {
  const r = rng();
  for (const n of SIZES) {
    const p = [0.5, 0.1, 0.9][n % 3]!;
    const seed = Math.floor(r() * 2 ** 30);
    const offset = Math.floor(r() * 2 ** 34);
    const x = f32(inputs(n, r));
    const dy = f32(normal(n, r, 1));
    const m = dropoutMaskRef(n, p, seed, offset);
    // float64 reference of relu then dropout with the same mask (each result one float product, rounded once)
    const yRef = new Float64Array(n);
    const mRef = new Float64Array(n);
    const dxRef = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const h = positive(x[i]!) ? x[i]! : 0;
      yRef[i] = Math.fround(h * m[i]!);
      mRef[i] = positive(x[i]!) ? m[i]! : 0;
      dxRef[i] = positive(x[i]!) ? Math.fround(dy[i]! * m[i]!) : 0;
    }
    const { output, mask } = dropout(Tensor.from(x, [n], { device }), { p, seed, offset, relu: true });
    const dx = dropoutBackward(Tensor.from(dy, [n], { device }), mask);
    expect(firstDifference(await output.data(), yRef), `output n=${n}`).toBe('');
    expect(firstDifference(await mask.data(), mRef), `mask n=${n}`).toBe('');
    expect(firstDifference(await dx.data(), dxRef), `gradInput n=${n}`).toBe('');
  }
}

async function checkBf16(device: string): Promise<void> {
  const r = rng();
  for (const n of SIZES) {
    const p = [0.5, 0.1, 0.9][n % 3]!;
    const seed = Math.floor(r() * 2 ** 30);
    const offset = Math.floor(r() * 2 ** 34);
    const xb = Uint16Array.from(inputs(n, r), toBf16);
    const dyb = Uint16Array.from(normal(n, r, 1), toBf16);
    const m = dropoutMaskRef(n, p, seed, offset);
    const yRef = new Float64Array(n);
    const dxRef = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const xv = bf16Value(xb[i]!);
      const h = positive(xv) ? xv : 0;
      yRef[i] = bf16Value(toBf16(Math.fround(h * m[i]!)));
      dxRef[i] = positive(xv) ? bf16Value(toBf16(Math.fround(bf16Value(dyb[i]!) * m[i]!))) : 0;
    }
    const { output, mask } = dropout(Tensor.from(xb, [n], { dtype: 'bfloat16', device }), { p, seed, offset, relu: true });
    expect(output.dtype).toBe('bfloat16');
    const dx = dropoutBackward(Tensor.from(dyb, [n], { dtype: 'bfloat16', device }), mask);
    const values = async (t: Tensor<'bfloat16'>) => Array.from(await t.data() as Uint16Array, bf16Value);
    expect(firstDifference(await values(output), yRef), `output n=${n}`).toBe('');
    expect(firstDifference(await mask.data(), Array.from(m, (v, i) => (positive(bf16Value(xb[i]!)) ? v : 0))), `mask n=${n}`).toBe('');
    expect(firstDifference(await values(dx), dxRef), `gradInput n=${n}`).toBe('');
  }
}

describe('fused ReLU + dropout operator (CPU)', () => {
  it('float32: forward, mask and backward equal the float64 relu-then-dropout reference', () => checkFloat32('cpu'), 60_000);
  it('bfloat16: the same, each product rounded once', () => checkBf16('cpu'), 60_000);
});

describeCuda('fused ReLU + dropout operator (cuda:0)', () => {
  itCuda('float32: equals the float64 reference', () => checkFloat32('cuda:0'), 60_000);
  itCuda('bfloat16: equals the reference', () => checkBf16('cuda:0'), 60_000);
});

interface Run {
  losses: number[];
  weights: Float32Array;
  fusedDrops: number;
  reluEpilogues: number;
}

/** The small network (Linear, ReLU, Dropout(0.3), Linear at its end) trained a few steps in one fusion mode. */
async function train(mode: ReluDropoutFusion, precision: 'fp32' | 'bf16'): Promise<Run> {
  const before = setReluDropoutFusion(mode);
  const dropSpy = vi.spyOn(Dropout.prototype, 'forward');
  const linearSpy = vi.spyOn(Linear.prototype, 'forward');
  const losses: number[] = [];
  const trainer = new Trainer({
    model: smallNet({ Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout, mulberry32 }, 5, 3, 0.3),
    config: { test: 'relu-dropout' },
    train: new SyntheticDataset({ size: 8 * 5, imageSize: 32, split: 'train', seed: 5, numClasses: 3 }),
    batchSize: 8,
    epochs: 1,
    maxSteps: 4,
    precision,
    optimizer: { lr: 0.05, momentum: 0.9 },
    workers: 0,
    seed: 5,
    onProgress: (p) => {
      if (p.type === 'step') losses.push(p.loss!);
    },
  });
  try {
    const summary = await trainer.run();
    expect(summary.stopped).toBe('completed');
    return {
      losses,
      weights: await trainer.store.params.data(),
      fusedDrops: dropSpy.mock.calls.filter((c) => c[1] === true).length,
      reluEpilogues: linearSpy.mock.calls.filter((c) => c[1] === true).length,
    };
  } finally {
    dropSpy.mockRestore();
    linearSpy.mockRestore();
    setReluDropoutFusion(before);
    await trainer.close();
  }
}

describe('Sequential: ReLU + Dropout fusion modes', () => {
  afterEach(() => vi.restoreAllMocks());

  for (const precision of ['fp32', 'bf16'] as const) {
    it(`${precision}: 'fused' and 'epilogue' train exactly as 'off' (same losses and weights, bit for bit)`, async () => {
      const off = await train('off', precision);
      const fused = await train('fused', precision);
      const epilogue = await train('epilogue', precision);
      // the modes did run differently: fused drops in 'fused' and 'epilogue' only; the Linear
      // before the ReLU applies it in its epilogue in 'off' and 'epilogue', not in 'fused'
      expect([off.fusedDrops, fused.fusedDrops, epilogue.fusedDrops]).toEqual([0, 4, 4]);
      expect([off.reluEpilogues, fused.reluEpilogues, epilogue.reluEpilogues]).toEqual([4, 0, 4]);
      expect(off.losses).toHaveLength(4);
      expect(fused.losses).toEqual(off.losses);
      expect(epilogue.losses).toEqual(off.losses);
      expect(Buffer.from(fused.weights.buffer).equals(Buffer.from(off.weights.buffer))).toBe(true);
      expect(Buffer.from(epilogue.weights.buffer).equals(Buffer.from(off.weights.buffer))).toBe(true);
    }, 120_000);
  }

  it('eval mode and p = 0 do not fuse (the Dropout is the identity there)', () => {
    const r = mulberry32(9);
    const net = new Sequential(new Linear(5, 6, { rng: r }), new ReLU(), new Dropout(0.5, { seed: 1 }), new Linear(6, 2, { rng: r }));
    const x = Tensor.from(f32(normal(15, rng(), 1)), [3, 5]);
    net.eval();
    const spy = vi.spyOn(Dropout.prototype, 'forward');
    net.forward(x).dispose();
    expect(spy.mock.calls.map((c) => c[1])).toEqual([undefined]);
    expect((net.at(2) as Dropout).offset).toBe(0);
  });

  it('setReluDropoutFusion refuses an unknown mode', () => {
    expect(() => setReluDropoutFusion('yes' as ReluDropoutFusion)).toThrow(/expected 'fused', 'epilogue' or 'off'/);
  });
});
