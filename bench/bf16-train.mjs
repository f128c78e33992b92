#!/usr/bin/env node
// One training step of AlexNet ('seed', 227x227, the default training's network) in bfloat16
// against float32, in one process: forward, softmax cross-entropy, backward and the SGD step
// (which in bf16 also writes the weights' bfloat16 copy), waiting for the loss. The two models
// (same initial weights) run interleaved, step by step, so a noisy neighbour slows them alike;
// each figure is the median of the reps, the ratio float32's median over bfloat16's. Also
// prints the forward pass alone (eval mode). Run it as the other benchmarks:
//
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE node bench/bf16-train.mjs [--reps 5] [--batch 16]
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import os from 'node:os';
import { median, random } from './util.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels(); // before the addon loads
const { values } = parseArgs({ options: { reps: { type: 'string', default: '5' }, batch: { type: 'string', default: '16' } } });
const reps = Number(values.reps);
const B = Number(values.batch);
const { Tensor, alexnet, ParameterStore, SGD, softmaxCrossEntropy } = lib;
const cpu = lib.backendInfo().backends.cpu;


const setups = ['fp32', 'bf16'].map((precision) => {
  const model = alexnet({ init: 'kaiming', seed: 1, precision });
  const store = ParameterStore.create(model, { bf16Copy: precision === 'bf16' });
  const sgd = new SGD(store, { lr: 0.002 });
  return { precision, model, store, sgd, train: [], forward: [] };
});
const x = Tensor.from(random(B * 3 * 227 * 227, 7), [B, 3, 227, 227]);
const y = Tensor.from(Int32Array.from({ length: B }, (_, i) => i % 2), [B], { dtype: 'int32' });

async function step(s) {
  s.model.train();
  s.sgd.zeroGrad();
  const logits = s.model.forward(x);
  const { loss, gradLogits } = softmaxCrossEntropy(logits, y);
  s.model.backward(gradLogits, false);
  s.sgd.step();
  await loss.data();
  logits.dispose();
  gradLogits.dispose();
  loss.dispose();
}
async function forward(s) {
  s.model.eval();
  const logits = s.model.forward(x);
  await logits.data();
  logits.dispose();
}

for (const s of setups) await step(s); // warm-up (scratch, weight copies)
for (let r = 0; r < reps; r++) {
  for (const s of setups) {
    let t = performance.now();
    await step(s);
    s.train.push(performance.now() - t);
    t = performance.now();
    await forward(s);
    s.forward.push(performance.now() - t);
  }
}
const [f, h] = setups;
console.log(`AlexNet 'seed', batch ${B}, ${reps} interleaved reps, ${os.cpus()[0]?.model ?? 'cpu'}, bf16 kernel ${cpu.bf16Kernel}, load ${os.loadavg()[0].toFixed(1)}`);
for (const what of ['train', 'forward']) {
  const a = median(f[what]);
  const b = median(h[what]);
  console.log(`${what === 'train' ? 'training step' : 'forward (eval)'}: fp32 ${a.toFixed(0)} ms, bf16 ${b.toFixed(0)} ms, fp32/bf16 ${(a / b).toFixed(2)}x`);
}
