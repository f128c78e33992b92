// precision 'bf16' on a model and the trainer: the bfloat16 model's forward and backward against
// the float32 model on the same weights, within a bound derived layer by layer from where
// bfloat16 rounds (the input, the weight copies, every hidden output and gradient between
// layers) and float32 accumulates; a short bfloat16 training whose loss falls; the weights'
// bfloat16 copies after SGD steps and after a load; the Trainer and its checkpoints.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  alexnet, Conv2d, copy, Dropout, fill, Flatten, Linear, loadCheckpoint, MaxPool2d, mulberry32, ParameterStore, refreshBf16Copy, ReLU, Sequential, SGD, softmaxCrossEntropy,
  SyntheticDataset, Tensor, Trainer,
} from '../src/index.js';
import { expectCode, normal, rng } from './helpers.js';
import { smallNet } from './small-net.mjs';
import { bf16Value, f32Bits, f32BitsToBf16 } from './reference/bf16.js';
import { dropoutMaskRef } from './reference/dropout.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const toBf16 = (v: number): number => f32BitsToBf16(f32Bits(v));
const round16 = (v: number): number => bf16Value(toBf16(v));

// ---- the bound ----------------------------------------------------------------------------------
//
// Float64 on the float32 weights is the exact result. The bfloat16 model's deviation from it is
// bounded elementwise, layer by layer (first order in the roundings, each rounding taken at its
// largest, |rounded - v| <= u |v| with u = 2^-8 for bfloat16; float32 accumulation of k terms
// adds (k + 1) 2^-24 sum |terms|):
//   input:   e = |x - bf16(x)|
//   Linear:  e_y = sum_i (|W16| e_x + |W - W16| |x|) + g_K (sum_i |W16| (|x| + e_x) + |b|)
//            (+ u (|y| + e_y) where the output is rounded to bfloat16: every layer but the last)
//   ReLU:    e unchanged (1-Lipschitz, exact on bfloat16)
//   Dropout: e = m e + u m (|h| + e)
//   backward, with e_dy the bound on the gradient reaching a layer:
//   Linear:  e_dx = sum_j (e_dy |W16| + |dy| |W - W16|) + g_out sum_j (|dy| + e_dy) |W16| + u (|dx| + e_dx)
//            e_dW = sum_b (e_dy (|x| + e_x) + |dy| e_x) + g_B sum_b (|dy| + e_dy) (|x| + e_x)
//            e_db = sum_b e_dy + g_B sum_b (|dy| + e_dy)
//   ReLU:    e_dy where the sign of the pre-activation is certain (|y| > e_y), else |dy| + e_dy
//   Dropout: e = m e_dy + u m (|dy| + e_dy)
// The float32 model gets the same propagation with u = 0 and no weight or input rounding (its
// accumulation terms only), and the two models must agree within the sum of both bounds.

interface LayerW {
  W: Float64Array; // [out, in]
  b: Float64Array;
  inF: number;
  outF: number;
}
interface Bounds {
  y: Float64Array; // exact logits [B, C]
  eY: Float64Array;
  dW: Float64Array[]; // exact weight gradients per Linear
  eW: Float64Array[];
  db: Float64Array[];
  eb: Float64Array[];
}

const g = (k: number): number => (k + 1) * 2 ** -24 * (1 + 2 ** -20);

/** The MLP Linear(K0,K1) ReLU Dropout(p) Linear(K1,K2) ReLU Linear(K2,C), exact and bounded. */
function mlpBounds(layers: LayerW[], x0: Float64Array, B: number, mask: Float64Array, dyOut: Float64Array, bf16: boolean): Bounds {
  const u = bf16 ? 2 ** -8 : 0;
  const r16 = (v: number) => (bf16 ? round16(v) : v);
  const linF = (L: LayerW, x: Float64Array, ex: Float64Array, roundOut: boolean) => {
    const y = new Float64Array(B * L.outF);
    const e = new Float64Array(B * L.outF);
    for (let s = 0; s < B; s++) {
      for (let j = 0; j < L.outF; j++) {
        let acc = L.b[j]!;
        let err = 0;
        let mag = Math.abs(L.b[j]!);
        for (let i = 0; i < L.inF; i++) {
          const w = L.W[j * L.inF + i]!;
          const w16 = r16(w);
          const xv = x[s * L.inF + i]!;
          const exv = ex[s * L.inF + i]!;
          acc += w * xv;
          err += Math.abs(w16) * exv + Math.abs(w - w16) * Math.abs(xv);
          mag += Math.abs(w16) * (Math.abs(xv) + exv);
        }
        err += g(L.inF) * mag;
        if (roundOut) err += u * (Math.abs(acc) + err);
        y[s * L.outF + j] = acc;
        e[s * L.outF + j] = err;
      }
    }
    return { y, e };
  };
  const relu = (y: Float64Array) => y.map((v) => (v > 0 ? v : 0));
  // forward
  const x0r = x0.map((v) => Math.abs(v - r16(v)));
  const [L1, L2, L3] = layers as [LayerW, LayerW, LayerW];
  const a1 = linF(L1, x0, x0r, true);
  const h1 = relu(a1.y);
  const d1 = h1.map((v, i) => v * mask[i]!);
  const ed1 = a1.e.map((e, i) => mask[i]! * e + u * mask[i]! * (Math.abs(h1[i]!) + e));
  const a2 = linF(L2, d1, ed1, true);
  const h2 = relu(a2.y);
  const a3 = linF(L3, h2, a2.e, false);
  // backward from dyOut (float32, rounded to bfloat16 by the last layer)
  const linB = (L: LayerW, x: Float64Array, ex: Float64Array, dy: Float64Array, edy: Float64Array, wantDx: boolean) => {
    const dW = new Float64Array(L.outF * L.inF);
    const eW = new Float64Array(L.outF * L.inF);
    const db = new Float64Array(L.outF);
    const eb = new Float64Array(L.outF);
    for (let j = 0; j < L.outF; j++) {
      let mb = 0;
      for (let s = 0; s < B; s++) {
        db[j] += dy[s * L.outF + j]!;
        eb[j] += edy[s * L.outF + j]!;
        mb += Math.abs(dy[s * L.outF + j]!) + edy[s * L.outF + j]!;
      }
      eb[j] += g(B) * mb;
      for (let i = 0; i < L.inF; i++) {
        let acc = 0;
        let err = 0;
        let mag = 0;
        for (let s = 0; s < B; s++) {
          const d = dy[s * L.outF + j]!;
          const ed = edy[s * L.outF + j]!;
          const xv = x[s * L.inF + i]!;
          const exv = ex[s * L.inF + i]!;
          acc += d * xv;
          err += ed * (Math.abs(xv) + exv) + Math.abs(d) * exv;
          mag += (Math.abs(d) + ed) * (Math.abs(xv) + exv);
        }
        dW[j * L.inF + i] = acc;
        eW[j * L.inF + i] = err + g(B) * mag;
      }
    }
    const dx = new Float64Array(B * L.inF);
    const edx = new Float64Array(B * L.inF);
    if (wantDx) {
      for (let s = 0; s < B; s++) {
        for (let i = 0; i < L.inF; i++) {
          let acc = 0;
          let err = 0;
          let mag = 0;
          for (let j = 0; j < L.outF; j++) {
            const w = L.W[j * L.inF + i]!;
            const w16 = r16(w);
            const d = dy[s * L.outF + j]!;
            const ed = edy[s * L.outF + j]!;
            acc += d * w;
            err += ed * Math.abs(w16) + Math.abs(d) * Math.abs(w - w16);
            mag += (Math.abs(d) + ed) * Math.abs(w16);
          }
          err += g(L.outF) * mag;
          err += u * (Math.abs(acc) + err);
          dx[s * L.inF + i] = acc;
          edx[s * L.inF + i] = err;
        }
      }
    }
    return { dW, eW, db, eb, dx, edx };
  };
  const reluB = (pre: Float64Array, epre: Float64Array, dy: Float64Array, edy: Float64Array) => {
    const dx = dy.map((d, i) => (pre[i]! > 0 ? d : 0));
    const e = edy.map((ed, i) => (Math.abs(pre[i]!) > epre[i]! || epre[i] === 0 ? ed : Math.abs(dy[i]!) + ed));
    return { dx, e };
  };
  const edyOut = dyOut.map((v) => Math.abs(v - r16(v)));
  const b3 = linB(L3, h2, a2.e, dyOut, edyOut, true);
  const r2 = reluB(a2.y, a2.e, b3.dx, b3.edx);
  const b2 = linB(L2, d1, ed1, r2.dx, r2.e, true);
  const dd = b2.dx.map((v, i) => v * mask[i]!);
  const edd = b2.edx.map((e, i) => mask[i]! * e + u * mask[i]! * (Math.abs(b2.dx[i]!) + e));
  const r1 = reluB(a1.y, a1.e, dd, edd);
  const b1 = linB(L1, x0, x0r, r1.dx, r1.e, false);
  return { y: a3.y, eY: a3.e, dW: [b1.dW, b2.dW, b3.dW], eW: [b1.eW, b2.eW, b3.eW], db: [b1.db, b2.db, b3.db], eb: [b1.eb, b2.eb, b3.eb] };
}

function mlp(sizes: [number, number, number, number], p: number, seed: number): Sequential {
  const r = mulberry32(seed);
  const [K0, K1, K2, C] = sizes;
  return new Sequential(new Linear(K0, K1, { rng: r }), new ReLU(), new Dropout(p, { seed: 77 }), new Linear(K1, K2, { rng: r }), new ReLU(), new Linear(K2, C, { rng: r }));
}

const linears = (m: Sequential): Linear[] => m.children().filter((c): c is Linear => c instanceof Linear);

function expectWithinBound(got: ArrayLike<number>, other: ArrayLike<number>, bound: ArrayLike<number>, label: string): void {
  for (let i = 0; i < bound.length; i++) {
    if (!(Math.abs(got[i]! - other[i]!) <= bound[i]!)) expect.fail(`${label}[${i}]: bf16 ${got[i]}, fp32 ${other[i]}, bound ${bound[i]}`);
  }
}

/**
 * The bfloat16 MLP against the float32 one on the same weights, input and output gradient, within
 * the derived bound. `nonnegative`: weights, biases, input and gradient all >= 0, so no sum
 * cancels and the bound is tight (a few percent); then the float32 model with another dropout
 * stream must fall outside it (the bound has teeth for the plumbing: masks, biases, weights).
 */
async function compareModels(nonnegative: boolean): Promise<void> {
  const r = rng();
  const sizes: [number, number, number, number] = [37, 64, 33, 5];
  const B = 6;
  const p = 0.3;
  const seed = Math.floor(r() * 1e6);
  const m32 = mlp(sizes, p, seed);
  const m16 = mlp(sizes, p, seed).setPrecision('bf16');
  const mOther = mlp(sizes, p, seed); // float32, another dropout stream
  (mOther.at(2) as Dropout).offset = 1000;
  expect(m16.precision).toBe('bf16');
  if (nonnegative) {
    for (const m of [m32, m16, mOther]) {
      for (const L of linears(m)) for (const q of [L.weight, L.bias!]) q.assign(Array.from(await q.data.data(), Math.abs));
    }
  }
  const mag = (v: number) => (nonnegative ? Math.abs(v) : v);
  const x = Float32Array.from(normal(B * sizes[0], r), mag);
  const dy = Float32Array.from(normal(B * sizes[3], r, 0.5), mag);
  const y32 = m32.forward(Tensor.from(x, [B, sizes[0]]));
  const y16 = m16.forward(Tensor.from(x, [B, sizes[0]]));
  const yOther = mOther.forward(Tensor.from(x, [B, sizes[0]]));
  expect(y16.dtype).toBe('float32'); // the logits stay float32 for the loss
  m32.backward(Tensor.from(dy, [B, sizes[3]]), false);
  m16.backward(Tensor.from(dy, [B, sizes[3]]), false);
  // the exact computation and both bounds, on the float32 weights
  const layers: LayerW[] = [];
  for (const L of linears(m32)) {
    layers.push({ W: Float64Array.from(await L.weight.data.data()), b: Float64Array.from(await L.bias!.data.data()), inF: L.inFeatures, outF: L.outFeatures });
  }
  const mask = Float64Array.from(dropoutMaskRef(B * sizes[1], p, 77, 0));
  const e16 = mlpBounds(layers, Float64Array.from(x), B, mask, Float64Array.from(dy), true);
  const e32 = mlpBounds(layers, Float64Array.from(x), B, mask, Float64Array.from(dy), false);
  const sum = (a: Float64Array, b: Float64Array) => a.map((v, i) => v + b[i]!);
  const [a16, a32] = [await y16.data(), await y32.data()];
  const bound = sum(e16.eY, e32.eY);
  expectWithinBound(a16, a32, bound, 'logits');
  expect(Array.from(a16).some((v, i) => v !== a32[i])).toBe(true); // bfloat16 did change them
  if (nonnegative) {
    const rel = Array.from(bound, (e, i) => e / Math.abs(e16.y[i]!)).sort((a, b) => a - b);
    expect(rel[rel.length - 1]!).toBeLessThan(0.1);
    const other = await yOther.data();
    expect(Array.from(other).some((v, i) => Math.abs(v - a32[i]!) > bound[i]!)).toBe(true);
  }
  const [l16, l32] = [linears(m16), linears(m32)];
  for (let k = 0; k < 3; k++) {
    expectWithinBound(await l16[k]!.weight.grad.data(), await l32[k]!.weight.grad.data(), sum(e16.eW[k]!, e32.eW[k]!), `gradWeight ${k}`);
    expectWithinBound(await l16[k]!.bias!.grad.data(), await l32[k]!.bias!.grad.data(), sum(e16.eb[k]!, e32.eb[k]!), `gradBias ${k}`);
    if (nonnegative) {
      const eW = sum(e16.eW[k]!, e32.eW[k]!);
      const rel = Array.from(eW, (e, i) => (e16.dW[k]![i]! > 0 ? e / e16.dW[k]![i]! : 0));
      expect(Math.max(...rel)).toBeLessThan(0.1);
    }
    expect(l16[k]!.weight.grad.dtype).toBe('float32');
    expect(l16[k]!.weight.data.dtype).toBe('float32');
  }
  // back to fp32: the float32 path again, the same logits as the float32 model
  m16.setPrecision('fp32');
  const again = await m16.eval().forward(Tensor.from(x, [B, sizes[0]])).data();
  expect(Array.from(again)).toEqual(Array.from(await m32.eval().forward(Tensor.from(x, [B, sizes[0]])).data()));
}

describe("precision 'bf16' on a model", () => {
  it('forward and backward agree with the float32 model on the same weights within the derived bound', () => compareModels(false));
  it('with no cancellation the bound is within 10% and a float32 model with another dropout mask falls outside it', () => compareModels(true));

  it('trains: the loss falls, and the SGD step keeps every bfloat16 weight copy equal to bf16(weight), also after a load', async () => {
    const r = rng();
    const [K, C, B] = [16, 3, 32];
    const centers = Array.from({ length: C }, () => normal(K, r, 1.5));
    const batch = () => {
      const x = new Float32Array(B * K);
      const y = new Int32Array(B);
      for (let s = 0; s < B; s++) {
        const c = Math.floor(r() * C);
        y[s] = c;
        const n = normal(K, r, 0.7);
        for (let i = 0; i < K; i++) x[s * K + i] = centers[c]![i]! + n[i]!;
      }
      return { x: Tensor.from(x, [B, K]), y: Tensor.from(y, [B], { dtype: 'int32' }) };
    };
    const model = new Sequential(new Linear(K, 32, { rng: mulberry32(5) }), new ReLU(), new Dropout(0.2, { seed: 3 }), new Linear(32, C, { rng: mulberry32(6) }));
    model.setPrecision('bf16');
    const store = ParameterStore.create(model, { bf16Copy: true });
    expect(store.params16?.dtype).toBe('bfloat16');
    const sgd = new SGD(store, { lr: 0.05, momentum: 0.9, weightDecay: 0 });
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const { x, y } = batch();
      sgd.zeroGrad();
      const logits = model.forward(x);
      const { loss, gradLogits } = softmaxCrossEntropy(logits, y);
      model.backward(gradLogits, false);
      sgd.step();
      losses.push((await loss.data())[0]!);
    }
    const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(Number.isFinite(last)).toBe(true);
    expect(last).toBeLessThan(0.5 * first);
    const copiesMatch = async () => {
      for (const [name, p] of model.namedParameters()) {
        const want = Uint16Array.from(await p.data.data(), toBf16);
        const got = await p.bf16().data();
        const bad = want.findIndex((w, i) => w !== got[i]);
        expect(bad, `${name}: bf16 copy differs at ${bad}`).toBe(-1);
      }
    };
    await copiesMatch();
    // between steps nothing converts the weights again: a forward and backward leave a copy
    // overwritten behind the record's back as it is (reads of the float32 biases do not count
    // as writes). A conversion per layer would have restored it.
    const p16 = store.params16!;
    copy(p16, Tensor.from(new Uint16Array(p16.numel).fill(0x3c00), [p16.numel], { dtype: 'bfloat16' }));
    const probe = batch();
    const probeLogits = model.forward(probe.x);
    model.backward(softmaxCrossEntropy(probeLogits, probe.y).gradLogits, false);
    expect((await p16.data()).every((v) => v === 0x3c00)).toBe(true);
    refreshBf16Copy(p16, store.params); // still recorded as current: nothing to do
    expect((await p16.data())[0]).toBe(0x3c00);
    fill(store.params, 0.25); // any write to the float32 weights makes the next use convert
    expect(Array.from(await model.namedParameters()[0]![1].bf16().data()).every((v) => v === toBf16(0.25))).toBe(true);
    // a load writes the float32 weights: the copies follow
    const fresh = new Sequential(new Linear(K, 32, { rng: mulberry32(9) }), new ReLU(), new Dropout(0.2), new Linear(32, C, { rng: mulberry32(10) }));
    model.loadStateDict(fresh.stateDict());
    await copiesMatch();
    store.dispose();
  });

  it("AlexNet 'paper2012' refuses 'bf16' (LRN is float32 only); setPrecision checks its argument", () => {
    expectCode(() => alexnet({ config: 'paper2012', numClasses: 4, precision: 'bf16' }), 'ERR_DTYPE', /LocalResponseNorm/);
    expectCode(() => new Sequential(new Linear(2, 2)).setPrecision('fp16' as never), 'ERR_ARGUMENT', /setPrecision/);
  });
});

describe("the Trainer with precision 'bf16'", () => {
  it('learns two clusters; the checkpoint holds the float32 master weights', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alexnet-bf16-train-'));
    dirs.push(dir);
    // two Gaussian clusters as 3x4x4 "images" (the synthetic image set needs convolutions)
    const centers = [normal(48, mulberry32(11)), normal(48, mulberry32(12))];
    const data = (size: number, seed: number) => ({
      length: size,
      classNames: ['a', 'b'],
      sampleShape: [3, 4, 4] as const,
      load(i: number) {
        const r = mulberry32(seed * 100_003 + i);
        const label = i % 2;
        const n = normal(48, r, 1.2);
        return { image: Float32Array.from(n, (v, k) => v + centers[label]![k]!), label };
      },
    });
    const model = new Sequential(new Flatten(), new Linear(48, 64, { rng: mulberry32(1) }), new ReLU(), new Dropout(0.3, { seed: 2 }), new Linear(64, 2, { rng: mulberry32(2) }));
    const trainer = new Trainer({
      model,
      config: { test: 'bf16' },
      train: data(512, 1),
      val: data(128, 2),
      batchSize: 32,
      epochs: 3,
      optimizer: { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 },
      precision: 'bf16',
      checkpoint: join(dir, 'ck.safetensors'),
      workers: 0,
    });
    expect(model.precision).toBe('bf16');
    expect(trainer.store.params16).not.toBeNull();
    const before = await trainer.evaluate();
    const summary = await trainer.run();
    await trainer.close();
    expect(summary.stopped).toBe('completed');
    expect(before.top1).toBeLessThan(0.75);
    expect(summary.valTop1).toBeGreaterThan(0.85);
    const ck = await loadCheckpoint(join(dir, 'ck.safetensors'));
    const w = ck.weights['1.weight'];
    expect(w?.data).toBeInstanceOf(Float32Array);
    // the master weights as trained, float32: the store's params, not their bfloat16 copy
    expect(Array.from(w!.data)).toEqual(Array.from(await model.namedParameters().find(([n]) => n === '1.weight')![1].data.data()));
  }, 120_000);

  it('the small AlexNet-shaped network (bfloat16 convolutions, fused Conv+ReLU, pooling) learns the synthetic set', async () => {
    const data = (size: number, split: 'train' | 'val') => new SyntheticDataset({ size, imageSize: 32, split, seed: 7, numClasses: 2 });
    const model = smallNet({ Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout, mulberry32 }) as Sequential;
    const trainer = new Trainer({
      model,
      config: { test: 'bf16 small net' },
      train: data(1024, 'train'),
      val: data(256, 'val'),
      batchSize: 32,
      epochs: 4,
      optimizer: { lr: 0.02, momentum: 0.9, weightDecay: 5e-4 }, // test/train.test.ts's float32 run
      precision: 'bf16',
      checkpoint: null,
      workers: 0,
    });
    const before = await trainer.evaluate();
    const summary = await trainer.run();
    await trainer.close();
    expect(summary.stopped).toBe('completed');
    expect(before.top1).toBeLessThan(0.7);
    expect(summary.valTop1).toBeGreaterThan(0.85);
  }, 180_000);

  it("AlexNet 'seed' in bf16: forward and backward run, logits float32 and near the float32 model's", async () => {
    const r = rng();
    const m32 = alexnet({ init: 'kaiming', seed: 3 });
    const m16 = alexnet({ init: 'kaiming', seed: 3, precision: 'bf16' });
    const x = Tensor.from(Float32Array.from(normal(2 * 3 * 227 * 227, r)), [2, 3, 227, 227]);
    m32.eval();
    m16.eval();
    const [y32, y16] = [await m32.forward(x).data(), await m16.forward(x).data()];
    // eight layers of bfloat16 rounding (2^-8 each): within a few percent of the logits' scale
    const scale = Math.max(...Array.from(y32, Math.abs));
    for (let i = 0; i < y32.length; i++) expect(Math.abs(y16[i]! - y32[i]!)).toBeLessThan(0.1 * scale);
    m16.train();
    const logits = m16.forward(x);
    expect(logits.dtype).toBe('float32');
    const { gradLogits } = softmaxCrossEntropy(logits, Tensor.from(Int32Array.of(0, 1), [2], { dtype: 'int32' }));
    m16.backward(gradLogits, false);
    for (const [name, p] of m16.namedParameters()) {
      expect(p.grad.dtype).toBe('float32');
      const g = await p.grad.data();
      expect(g.every(Number.isFinite), name).toBe(true);
      expect(g.some((v) => v !== 0), name).toBe(true);
    }
  }, 120_000);
});
