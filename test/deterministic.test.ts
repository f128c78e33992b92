// setDeterministic (issue 14): two training runs from the same seed give bitwise identical
// weights. The CPU backend always is (the same thread count, the same partition of the work);
// on CUDA the mode restricts cuDNN's convolution algorithms to deterministic ones, and the GPU
// check runs the same comparison on cuda:0 at batch 32 with the seed AlexNet's layer shapes.
import { afterEach, describe, expect, it } from 'vitest';
import {
  alexnet, Conv2d, Dropout, Flatten, isDeterministic, type Module, Linear, MaxPool2d, mulberry32, ReLU, Sequential, setDeterministic, SyntheticDataset, Trainer,
} from '../src/index.js';
import { cudaEmulated, describeCuda, itCuda } from './cuda-gate.js';
import { expectCode } from './helpers.js';
import { smallNet } from './small-net.mjs';

const lib = { Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout, mulberry32 };

afterEach(() => setDeterministic(false));

/** The flat weights after a short run from `seed` (the same data order, dropout and initial weights). */
async function trainedWeights(seed: number, device: string, model: () => Module, imageSize: number, batchSize: number): Promise<Float32Array> {
  const trainer = new Trainer({
    model: model(),
    config: {},
    train: new SyntheticDataset({ size: 4 * batchSize, imageSize, split: 'train', seed: 7, numClasses: 2 }),
    batchSize,
    epochs: 1,
    device,
    optimizer: { lr: 0.02, momentum: 0.9, weightDecay: 5e-4 },
    seed,
    workers: 0,
  });
  await trainer.run();
  const w = await trainer.store.params.data();
  await trainer.close();
  return w;
}

function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

describe('setDeterministic', () => {
  it('is off by default, reads back, and takes only a boolean', () => {
    expect(isDeterministic()).toBe(false);
    setDeterministic(true);
    expect(isDeterministic()).toBe(true);
    setDeterministic(false);
    expect(isDeterministic()).toBe(false);
    for (const bad of [1, 'yes', undefined, null]) expectCode(() => setDeterministic(bad as unknown as boolean), 'ERR_ARGUMENT', /setDeterministic: expected a boolean/);
    expect(isDeterministic()).toBe(false);
  });

  it('CPU: two runs from the same seed give bitwise identical weights (dropout on), another seed other ones', async () => {
    setDeterministic(true);
    const seed = 1 + Math.floor(Math.random() * 1000);
    const net = () => smallNet(lib, seed, 2, 0.25) as Module;
    const a = await trainedWeights(seed, 'cpu', net, 32, 4);
    const b = await trainedWeights(seed, 'cpu', net, 32, 4);
    expect(firstDifference(a, b)).toBe(-1);
    const c = await trainedWeights(seed + 1, 'cpu', net, 32, 4); // another data order and dropout stream
    expect(firstDifference(a, c)).not.toBe(-1);
  }, 60_000);
});

describeCuda('setDeterministic on cuda:0', () => {
  // On the emulated device (test/cuda-emu/device: naive float64 stand-ins, hours for this at
  // batch 32) the same comparison runs on the small network the CPU test uses: the same
  // operators, algorithm search and reductions, at a size the emulation can afford.
  const [what, imageSize, batch] = cudaEmulated ? ['the small network', 32, 4] : ['the seed AlexNet', 227, 32];
  itCuda(`two runs of ${what} from the same seed give bitwise identical weights`, async () => {
    setDeterministic(true);
    const seed = 1 + Math.floor(Math.random() * 1000);
    const net = cudaEmulated ? () => smallNet(lib, seed, 2, 0.25) as Module : () => alexnet({ config: 'seed', numClasses: 2, seed });
    const a = await trainedWeights(seed, 'cuda:0', net, imageSize, batch);
    const b = await trainedWeights(seed, 'cuda:0', net, imageSize, batch);
    expect(firstDifference(a, b), 'the weights differ at this index').toBe(-1);
  }, 300_000);
});
