// One full training step of the seed AlexNet on the GPU against the same step on the CPU (the
// reference): the same initial weights (same seed), the same random batch, dropout active (the
// CUDA dropout draws the CPU's mask for the same seed and offset), then forward, softmax
// cross-entropy, backward and one SGD step (momentum, weight decay) on each device. Compared:
// the loss, the logits, every gradient, and every weight's update (new - old), each relative to
// its own tensor's scale, in strict FP32 and with TF32 tensor-op math. Then the Trainer end to
// end on 'cuda:0' for a few steps. Needs a GPU (test/cuda-gate.ts).
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import {
  alexnet, loadCheckpoint, ParameterStore, setTf32, SGD, softmaxCrossEntropy, SyntheticDataset, Tensor, Trainer,
} from '../src/index.js';
import { describeCuda, itCuda } from './cuda-gate.js';
import { rng, uniform } from './helpers.js';

const DEV = 'cuda:0';
const B = 4;

interface StepResult {
  before: Float32Array;
  loss: number;
  logits: Float32Array;
  grads: Float32Array;
  after: Float32Array;
  layout: readonly { name: string; offset: number; numel: number }[];
}

/** One training step of a fresh seed AlexNet (seed `seed`) on `device`, with everything read back. */
async function trainingStep(device: string, seed: number, x: Float32Array, y: Int32Array): Promise<StepResult> {
  const model = alexnet({ config: 'seed', init: 'pytorch', seed, device });
  const store = ParameterStore.create(model, { device });
  const sgd = new SGD(store, { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const xs = Tensor.from(x, [B, 3, 227, 227], { device });
  const ys = Tensor.from(y, [B], { device, dtype: 'int32' });
  try {
    const before = await store.params.data();
    model.train(); // dropout active
    store.zeroGrad();
    const logits = model.forward(xs);
    const { loss, gradLogits } = softmaxCrossEntropy(logits, ys);
    model.backward(gradLogits, false)?.dispose();
    // read the gradients before the step, in case the update folds weight decay into them
    const grads = await store.grads.data();
    sgd.step();
    const after = await store.params.data();
    const out = { before, loss: (await loss.data())[0]!, logits: await logits.data(), grads, after, layout: store.layout };
    for (const t of [logits, loss, gradLogits]) t.dispose();
    return out;
  } finally {
    xs.dispose();
    ys.dispose();
    store.dispose();
  }
}

interface Deviation {
  name: string;
  pass: 'forward' | 'backward';
  /** max |got - want| / max |want| */
  maxRel: number;
  /** ||got - want||_2 / ||want||_2 */
  l2Rel: number;
  scale: number;
}

/** How far `got(i)` is from `want(i)` over i < n, relative to the reference's own scale. */
function deviation(name: string, pass: 'forward' | 'backward', n: number, got: (i: number) => number, want: (i: number) => number): Deviation {
  let maxErr = 0;
  let scale = 0;
  let errSq = 0;
  let refSq = 0;
  for (let i = 0; i < n; i++) {
    const g = got(i);
    const w = want(i);
    if (!Number.isFinite(g)) return { name, pass, maxRel: Infinity, l2Rel: Infinity, scale };
    const e = g - w;
    maxErr = Math.max(maxErr, Math.abs(e));
    scale = Math.max(scale, Math.abs(w));
    errSq += e * e;
    refSq += w * w;
  }
  return { name, pass, maxRel: scale > 0 ? maxErr / scale : maxErr, l2Rel: refSq > 0 ? Math.sqrt(errSq / refSq) : Math.sqrt(errSq), scale };
}

/**
 * Tolerances, relative to each tensor's own scale. The devices add the same products in other
 * orders (cuDNN / cuBLAS tiles against our kernels), so values differ by rounding that grows with
 * the length of the sums and through eight layers: ~1e-6 relative in strict FP32, ~1e-3 with TF32
 * (every product's inputs rounded to 10 mantissa bits). The forward pass (loss, logits) stays that
 * close. The backward pass also inherits every ReLU and max-pool decision that the rounding tips
 * the other way (an activation within rounding of zero, a near tie in a pooling window): each such
 * flip moves one whole gradient term, about 1% of a conv1 weight-gradient element, and with TF32
 * there are hundreds of them. So gradients and updates get tolerances that such flips cannot
 * exceed but a wrong kernel (an O(1) error somewhere) cannot meet. In the classifier the batch is
 * the whole sum: a weight-gradient element is B = 4 terms, so one flipped ReLU or dropout decision
 * in fc6 / fc7 moves a whole row of the gradient by up to a quarter or more of its largest value
 * (TF32 gave 0.307 for classifier.0.weight on the emulated device, whose stand-ins round to TF32
 * as tensor cores do). With TF32 the max-relative bound therefore only rules out errors larger
 * than the gradient itself; the l2 bound, which a handful of flipped rows cannot reach, is the
 * one that catches a wrong kernel.
 */
const TOLERANCE = {
  fp32: { forward: { maxRel: 1e-3, l2Rel: 1e-4 }, backward: { maxRel: 2e-2, l2Rel: 5e-3 } },
  tf32: { forward: { maxRel: 3e-2, l2Rel: 2e-2 }, backward: { maxRel: 1, l2Rel: 1e-1 } },
} as const;

async function compareStep(mode: 'fp32' | 'tf32'): Promise<void> {
  const r = rng();
  const x = Float32Array.from(uniform(B * 3 * 227 * 227, r));
  const y = Int32Array.from({ length: B }, () => Math.floor(r() * 2));
  const seed = Math.floor(r() * 1000);
  const cpu = await trainingStep('cpu', seed, x, y);
  setTf32(mode === 'tf32');
  let gpu: StepResult;
  try {
    gpu = await trainingStep(DEV, seed, x, y);
  } finally {
    setTf32(true);
  }
  // the same seed gives the same initial weights on both devices, bit for bit
  let firstDiff = -1;
  for (let i = 0; i < cpu.before.length && firstDiff < 0; i++) if (!Object.is(gpu.before[i], cpu.before[i])) firstDiff = i;
  expect(firstDiff, 'first initial weight that differs between the devices').toBe(-1);

  const devs: Deviation[] = [
    deviation('loss', 'forward', 1, () => gpu.loss, () => cpu.loss),
    deviation('logits', 'forward', cpu.logits.length, (i) => gpu.logits[i]!, (i) => cpu.logits[i]!),
  ];
  for (const { name, offset: o, numel } of cpu.layout) {
    devs.push(deviation(`grad ${name}`, 'backward', numel, (i) => gpu.grads[o + i]!, (i) => cpu.grads[o + i]!));
    // the update (new - old), not the new weights, which would hide it behind the unchanged part
    devs.push(deviation(`update ${name}`, 'backward', numel, (i) => gpu.after[o + i]! - gpu.before[o + i]!, (i) => cpu.after[o + i]! - cpu.before[o + i]!));
  }
  expect(gpu.logits.length).toBe(B * 2);
  const tol = (d: Deviation) => TOLERANCE[mode][d.pass];
  const badness = (d: Deviation) => Math.max(d.maxRel / tol(d).maxRel, d.l2Rel / tol(d).l2Rel);
  const worst = [...devs].sort((a, b) => badness(b) - badness(a)).slice(0, 6);
  console.log(
    `${mode}: loss cpu ${cpu.loss} gpu ${gpu.loss}; the worst against their tolerances (max |diff| / max |ref|, ||diff|| / ||ref||):\n` +
      worst.map((d) => `  ${d.name}: ${d.maxRel.toExponential(2)} (tol ${tol(d).maxRel}), l2 ${d.l2Rel.toExponential(2)} (tol ${tol(d).l2Rel}), scale ${d.scale.toExponential(2)}`).join('\n'),
  );
  expect(Number.isFinite(cpu.loss) && cpu.loss > 0).toBe(true);
  for (const d of devs) {
    expect(d.scale, `${d.name}: the CPU reference is all zeros`).toBeGreaterThan(0);
    expect(d.maxRel, `${mode} ${d.name}: max |diff| / max |ref|`).toBeLessThanOrEqual(tol(d).maxRel);
    expect(d.l2Rel, `${mode} ${d.name}: ||diff|| / ||ref||`).toBeLessThanOrEqual(tol(d).l2Rel);
  }
}

describeCuda('one training step of the seed AlexNet: cuda:0 against the CPU', () => {
  itCuda('strict FP32: loss, logits, every gradient and every weight update agree', () => compareStep('fp32'), 300_000);
  itCuda('TF32 tensor-op math: the same, at a looser tolerance', () => compareStep('tf32'), 300_000);
});

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describeCuda('Trainer on cuda:0', () => {
  itCuda('trains a few steps on a small synthetic set: finite losses, a checkpoint that loads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alexnet-cuda-train-'));
    dirs.push(dir);
    const losses: number[] = [];
    const trainer = new Trainer({
      model: alexnet({ config: 'seed', numClasses: 2, init: 'pytorch', seed: 5 }),
      config: { test: 'cuda smoke' },
      train: new SyntheticDataset({ size: 48, split: 'train' }),
      val: new SyntheticDataset({ size: 16, split: 'val' }),
      batchSize: 8,
      epochs: 1,
      maxSteps: 4,
      device: DEV,
      optimizer: { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 },
      checkpoint: join(dir, 'ck.safetensors'),
      metrics: join(dir, 'metrics.jsonl'),
      logEvery: 1,
      workers: 0,
      onProgress: (p) => {
        if (p.type === 'step' && p.loss !== undefined) losses.push(p.loss);
      },
    });
    expect(trainer.device).toBe(DEV);
    const summary = await trainer.run();
    await trainer.close();
    expect(summary.steps).toBe(4);
    expect(Number.isFinite(summary.trainLoss)).toBe(true);
    expect(Number.isFinite(summary.valLoss)).toBe(true);
    expect(losses.length).toBeGreaterThan(0);
    for (const l of losses) expect(Number.isFinite(l)).toBe(true);
    expect(summary.checkpoint).toBe(join(dir, 'ck.safetensors'));
    expect((await stat(summary.checkpoint!)).size).toBeGreaterThan(4 * 50e6); // ~58M float32 weights, plus momentum
    const ck = await loadCheckpoint(summary.checkpoint!);
    expect(ck.step).toBe(4);
    const w = ck.weights['classifier.6.weight']!;
    expect(w.shape).toEqual([2, 4096]);
    expect(Array.from(w.data as Float32Array).every(Number.isFinite)).toBe(true);
  }, 300_000);
});
