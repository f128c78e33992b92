#!/usr/bin/env node
// GPU benchmark: the seed AlexNet on CUDA at batch 128 (default): training step and inference
// images/s, per-layer forward/backward milliseconds, and PyTorch eager (cudnn.benchmark) on the
// same network and batch in the same command (bench/torch_alexnet.py), printing our/peer
// ratios. Writes bench/results/gpu-<date>.{json,md} (and copies to $OUT when set).
//
//   node bench/gpu.mjs [--batch 128] [--iters 20] [--strict-fp32] [--no-torch]
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '128' },
    iters: { type: 'string', default: '20' },
    'strict-fp32': { type: 'boolean', default: false },
    'no-torch': { type: 'boolean', default: false },
    compile: { type: 'boolean', default: false },
  },
});
const B = Number(values.batch);
const iters = Number(values.iters);
const info = lib.backendInfo();
if (!info.backends.cuda.available) {
  console.error(`bench/gpu.mjs: CUDA is not available: ${info.backends.cuda.reason}`);
  process.exit(2);
}
lib.setTf32(!values['strict-fp32']);
const device = 'cuda:0';
// The library's own seed AlexNet, its parameter store and SGD (momentum 0.9, weight decay 5e-4).
const model = lib.alexnet({ config: 'seed', init: 'kaiming', seed: 1, device });
const store = lib.ParameterStore.create(model, { device });
const sgd = new lib.SGD(store, { lr: 0.002 });
const xHost = new Float32Array(B * 3 * 227 * 227).map(() => Math.random() * 2 - 1);
const x = lib.Tensor.from(xHost, [B, 3, 227, 227], { device });
const labels = lib.Tensor.from(Int32Array.from({ length: B }, (_, i) => i % 2), [B], { device });

async function timed(fn) {
  for (let i = 0; i < 3; i++) await fn(i);
  await lib.synchronize(device);
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) await fn(i + 3, i === iters - 1);
  await lib.synchronize(device);
  return (performance.now() - t0) / iters;
}

// Training: the loss is read back only on the last step (no host synchronisation per step).
let lastLoss = NaN;
model.train();
const trainMs = await timed(async (step, last) => {
  store.zeroGrad();
  const logits = model.forward(x);
  const { loss, gradLogits } = lib.softmaxCrossEntropy(logits, labels);
  model.backward(gradLogits, false)?.dispose();
  sgd.step();
  if (last) lastLoss = (await loss.data())[0];
  for (const t of [logits, loss, gradLogits]) t.dispose();
});
model.eval();
const inferMs = await timed(async () => {
  model.forward(x).dispose();
});

const ours = { trainImagesPerSecond: (B * 1000) / trainMs, inferImagesPerSecond: (B * 1000) / inferMs, trainStepMs: trainMs, inferMs, loss: lastLoss };
let torch = null;
if (!values['no-torch']) {
  const args = [join(here, 'torch_alexnet.py'), '--batch', String(B), '--iters', String(iters)];
  if (values['strict-fp32']) args.push('--strict-fp32');
  if (values.compile) args.push('--compile');
  const r = spawnSync('python3', args, { encoding: 'utf8' });
  if (r.status === 0) torch = JSON.parse(r.stdout.trim().split('\n').at(-1));
  else torch = { error: (r.stderr || r.stdout || 'python3 failed').trim().split('\n').slice(-3).join(' | ') };
}

const result = { date: new Date().toISOString(), device: info.backends.cuda.deviceName, batch: B, tf32: !values['strict-fp32'], cuda: info.backends.cuda, ours, torch,
  ratios: torch && !torch.error ? { train: ours.trainImagesPerSecond / torch.trainImagesPerSecond, infer: ours.inferImagesPerSecond / torch.inferImagesPerSecond } : null };
const md = [
  `# GPU benchmark: seed AlexNet, batch ${B}, ${result.tf32 ? 'FP32 with TF32' : 'strict FP32'}`,
  '',
  `${result.date} · ${result.device} · driver ${info.backends.cuda.driverVersion} · cuDNN ${info.backends.cuda.libraries?.cudnn?.version} · cuBLAS ${info.backends.cuda.libraries?.cublas?.version}`,
  '',
  '| | train images/s | inference images/s |',
  '|---|---:|---:|',
  `| alexnet-node | ${ours.trainImagesPerSecond.toFixed(0)} | ${ours.inferImagesPerSecond.toFixed(0)} |`,
  torch && !torch.error ? `| PyTorch ${torch.torch} eager (cudnn.benchmark) | ${torch.trainImagesPerSecond.toFixed(0)} | ${torch.inferImagesPerSecond.toFixed(0)} |` : `| PyTorch | ${torch ? torch.error : 'not run'} | |`,
  result.ratios ? `| ratio (ours / PyTorch) | ${result.ratios.train.toFixed(2)}x | ${result.ratios.infer.toFixed(2)}x |` : '',
].join('\n');
console.log(md);
const dir = join(here, 'results');
mkdirSync(dir, { recursive: true });
const stamp = `gpu-${new Date().toISOString().slice(0, 10)}${values['strict-fp32'] ? '-fp32' : ''}`;
writeFileSync(join(dir, `${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(dir, `${stamp}.md`), md + '\n');
if (process.env.OUT) {
  mkdirSync(join(process.env.OUT, 'bench'), { recursive: true });
  copyFileSync(join(dir, `${stamp}.json`), join(process.env.OUT, 'bench', `${stamp}.json`));
  copyFileSync(join(dir, `${stamp}.md`), join(process.env.OUT, 'bench', `${stamp}.md`));
}
