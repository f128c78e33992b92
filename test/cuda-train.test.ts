// One full training step of the seed AlexNet on the GPU against the same step on the CPU (the
// reference): the same initial weights (same seed), the same random batch, dropout active (the
// CUDA dropout draws the CPU's mask for the same seed and offset), then forward, softmax
// cross-entropy, backward and one SGD step (momentum, weight decay) on each device. Compared:
// the loss, the logits, every gradient, and every weight's update (new - old), each relative to
// its own tensor's scale, in strict FP32 and with TF32 tensor-op math. Then the same network one
// layer at a time, each GPU layer given the CPU's input and output gradient, at a tolerance ~100x
// tighter than the whole step can have. Then the Trainer end to end on 'cuda:0' for a few steps.
// Needs a GPU (test/cuda-gate.ts).
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import {
  alexnet, Dropout, loadCheckpoint, ParameterStore, setTf32, SGD, softmaxCrossEntropy, SyntheticDataset, Tensor, Trainer,
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
 * the other way (an activation within rounding of zero, a near tie in a pooling window), and one
 * such flip is not small: it moves a whole gradient term, and behind conv3-5 (676 positions per
 * channel at B = 4) one term of one position is about 1% of every earlier layer's weight
 * gradient, since the input gradient it changes reaches every channel below it. Measured on the
 * emulated device in strict FP32 over 40 random steps: no flip in about half of them (l2 ~1e-4 at
 * worst, the updates' own cancellation), and up to 1.1e-2 in l2 and 4e-2 in max-relative where
 * a few flipped. With TF32 there are hundreds of flips: l2 6-9e-2 in conv1's weight gradient in
 * each of 20 steps, max-relative up to 0.41. In the classifier the batch is the whole sum: a
 * weight-gradient element is B = 4 terms, so one flipped ReLU or dropout decision in fc6 / fc7
 * moves a whole row of the gradient by up to a quarter or more of its largest value (TF32 gave
 * 0.307 for classifier.0.weight on the emulated device, whose stand-ins round to TF32 as tensor
 * cores do). So the whole step's backward bounds only rule out what a wrong kernel or a
 * wrong wiring would do (an O(1) error: a fused path that drops the ReLU, a gradient written to
 * the wrong slice of the store or lost); a kernel that is only slightly off is the per-layer
 * check's to find (below), where no decision is left to rounding. (A planted bug that left one
 * element of each plane out of the CUDA bias gradient gave 4e-2 in l2 here, under these bounds,
 * and 5e-3 to 0.12 max-relative in the five conv biases there, over that check's 1e-3.)
 */
const TOLERANCE = {
  fp32: { forward: { maxRel: 1e-3, l2Rel: 1e-4 }, backward: { maxRel: 0.15, l2Rel: 5e-2 } },
  tf32: { forward: { maxRel: 3e-2, l2Rel: 2e-2 }, backward: { maxRel: 1, l2Rel: 0.3 } },
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

/**
 * The same network one layer at a time, with no decision left to rounding: each layer on cuda:0
 * gets the CPU's own input and output gradient, so every ReLU and max-pool decides as the CPU
 * did, and what is left is each kernel's own rounding (~1e-6 relative in strict FP32). This is
 * where a kernel that is slightly wrong (an edge, a stride, one channel) shows: the whole step
 * above must allow for decisions that flip along the way, this check need not.
 */
const LAYER_TOLERANCE = {
  fp32: { maxRel: 1e-3, l2Rel: 1e-4 },
  tf32: { maxRel: 3e-2, l2Rel: 5e-3 },
} as const;

/** The CPU's forward and backward once, then each GPU layer on its inputs in both math modes. */
async function compareLayers(): Promise<void> {
  const r = rng();
  const seed = Math.floor(r() * 1000);
  const cpuModel = alexnet({ config: 'seed', init: 'pytorch', seed, device: 'cpu' }).train();
  const gpuModel = alexnet({ config: 'seed', init: 'pytorch', seed, device: DEV }).train();
  // the leaves in the order they run: features.0 ... features.12, flatten, classifier.0 ... classifier.6
  const leaves = (m: typeof cpuModel) => m.namedModules().filter(([, l]) => l.children().length === 0);
  const cpuLayers = leaves(cpuModel);
  const gpuLayers = leaves(gpuModel);
  expect(gpuLayers.map(([n]) => n)).toEqual(cpuLayers.map(([n]) => n));
  expect(cpuLayers.length).toBe(21);

  // the CPU's forward and backward, one layer at a time, everything read back as it goes
  interface Step { name: string; kind: string; x: Float32Array; xShape: readonly number[]; y: Float32Array; dy?: Float32Array; yShape: readonly number[]; dx?: Float32Array }
  const steps: Step[] = [];
  let h = Tensor.from(Float32Array.from(uniform(B * 3 * 227 * 227, r)), [B, 3, 227, 227]);
  const made: Tensor[] = [h];
  for (const [name, m] of cpuLayers) {
    const x = await h.data();
    h = m.forward(h);
    made.push(h);
    steps.push({ name, kind: m.constructor.name, x, xShape: [...made[made.length - 2]!.shape], y: await h.data(), yShape: [...h.shape] });
  }
  let g = Tensor.from(Float32Array.from(uniform(h.numel, r, -1e-2, 1e-2)), [...h.shape]);
  made.push(g);
  for (let i = cpuLayers.length - 1; i >= 0; i--) {
    steps[i]!.dy = await g.data();
    g = cpuLayers[i]![1].backward(g, true)!;
    made.push(g);
    steps[i]!.dx = await g.data();
  }
  const cpuGrads = await Promise.all(cpuLayers.map(async ([, m]) => Promise.all(m.parameters().map((p) => p.grad.data()))));

  // each dropout draws its mask at its stream's offset, which a forward advances: both modes
  // start where the CPU's started, so they draw the CPU's masks
  const streams = gpuLayers.map(([, m]) => (m instanceof Dropout ? m.state() : null));
  for (const mode of ['fp32', 'tf32'] as const) {
    gpuLayers.forEach(([, m], i) => {
      if (m instanceof Dropout) m.loadState(streams[i]!);
    });
    setTf32(mode === 'tf32');
    const tol = LAYER_TOLERANCE[mode];
    const devs: Deviation[] = [];
    try {
      for (let i = 0; i < gpuLayers.length; i++) {
        const [name, m] = gpuLayers[i]!;
        const s = steps[i]!;
        m.zeroGrad(); // the gradients accumulate: each mode starts from zero
        const x = Tensor.from(s.x, s.xShape, { device: DEV });
        const dy = Tensor.from(s.dy!, s.yShape, { device: DEV });
        const y = m.forward(x);
        const dx = m.backward(dy, true)!;
        const [yd, dxd] = [await y.data(), await dx.data()];
        devs.push(deviation(`${name} (${s.kind}) output`, 'forward', s.y.length, (k) => yd[k]!, (k) => s.y[k]!));
        // A max-pool window of a ReLU's zeros is a tie, which either device may route its
        // gradient through: those zeros take no gradient further back (the ReLU before stops
        // it), so the input gradient is compared where the input is not zero.
        const live = s.kind === 'MaxPool2d' ? (k: number) => s.x[k] !== 0 : () => true;
        devs.push(deviation(`${name} (${s.kind}) input gradient`, 'backward', s.dx!.length, (k) => (live(k) ? dxd[k]! : 0), (k) => (live(k) ? s.dx![k]! : 0)));
        const params = m.parameters();
        for (let j = 0; j < params.length; j++) {
          const got = await params[j]!.grad.data();
          const want = cpuGrads[i]![j]!;
          devs.push(deviation(`${name}.${params[j]!.name} gradient`, 'backward', want.length, (k) => got[k]!, (k) => want[k]!));
        }
        for (const t of [x, dy, y, dx]) t.dispose();
      }
    } finally {
      setTf32(true);
    }
    const worst = [...devs].sort((a, b) => Math.max(b.maxRel / tol.maxRel, b.l2Rel / tol.l2Rel) - Math.max(a.maxRel / tol.maxRel, a.l2Rel / tol.l2Rel)).slice(0, 6);
    console.log(`${mode} layer by layer, the worst (max |diff| / max |ref|, ||diff|| / ||ref||):\n` + worst.map((d) => `  ${d.name}: ${d.maxRel.toExponential(2)}, l2 ${d.l2Rel.toExponential(2)}, scale ${d.scale.toExponential(2)}`).join('\n'));
    // every layer's output and input gradient, and the 16 weight and bias gradients
    expect(devs.length).toBe(21 * 2 + 16);
    for (const d of devs) {
      // each reference has something in it (a kernel that writes nothing would match zeros)
      expect(d.scale, `${d.name}: the CPU reference is all zeros`).toBeGreaterThan(0);
      expect(d.maxRel, `${mode} ${d.name}: max |diff| / max |ref|`).toBeLessThanOrEqual(tol.maxRel);
      expect(d.l2Rel, `${mode} ${d.name}: ||diff|| / ||ref||`).toBeLessThanOrEqual(tol.l2Rel);
    }
  }
  for (const t of new Set(made)) t.dispose();
  cpuModel.dispose();
  gpuModel.dispose();
}

describeCuda('each layer of the seed AlexNet on cuda:0, given the CPU\'s input and output gradient', () => {
  itCuda('outputs, input gradients and parameter gradients agree layer by layer, in strict FP32 and with TF32', compareLayers, 300_000);
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
