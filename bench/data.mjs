#!/usr/bin/env node
// Does the data pipeline keep up? Trains the seed AlexNet for a few steps on the CPU twice:
// from an image folder of real JPEG files (decoded, resized, cropped, flipped and normalised
// in worker threads with prefetch), and from the same images already decoded in memory; prints
// images/s of both and their ratio (target: decoding costs < 10%).
//
//   node bench/data.mjs [--steps 8] [--batch 32] [--images 256]
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';


const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels(); // before the addon loads
const { default: sharp } = await import('sharp');
const { values } = parseArgs({ options: { steps: { type: 'string', default: '8' }, batch: { type: 'string', default: '32' }, images: { type: 'string', default: '256' } } });
const steps = Number(values.steps), batch = Number(values.batch), count = Number(values.images);

// JPEG files of 256x341 (the shorter side is already 256, as after ImageNet preprocessing).
const dir = await mkdtemp(join(tmpdir(), 'alexnet-data-bench-'));
const synth = new lib.SyntheticDataset({ size: count, imageSize: 341, seed: 5 });
for (let i = 0; i < count; i++) {
  const { image, label } = synth.get(i);
  const rgb = lib.toRgb8(image, 341, 341);
  const d = join(dir, synth.classNames[label]);
  await mkdir(d, { recursive: true });
  await sharp(rgb, { raw: { width: 341, height: 341, channels: 3 } }).resize(341, 256).jpeg({ quality: 90 }).toFile(join(d, `${i}.jpg`));
}
const folder = await lib.ImageFolder.open(dir, { train: true });
// the same samples, decoded once up front
const decoded = [];
for (let i = 0; i < folder.length; i++) decoded.push(await folder.load(i, { seed: 0, epoch: 0 }));
const memory = {
  length: decoded.length,
  classNames: folder.classNames,
  sampleShape: [3, 227, 227],
  load: (i) => decoded[i],
};

async function run(train, workers) {
  const model = lib.alexnet({ config: 'seed', init: 'kaiming', seed: 1 });
  const t = new lib.Trainer({ model, config: {}, train, batchSize: batch, epochs: 100, maxSteps: steps + 2, optimizer: { lr: 0.002 }, workers });
  let t0 = 0;
  let seen = 0;
  const step = t.optimizer.step.bind(t.optimizer);
  let n = 0;
  t.optimizer.step = () => {
    step();
    n++;
    if (n === 2) t0 = performance.now(); // after two warm-up steps
    else if (n > 2) seen += batch;
  };
  await t.run();
  await t.close();
  model.dispose();
  return seen / ((performance.now() - t0) / 1000);
}

const pre = await run(memory, 0);
const real = await run(folder, 2);
console.log(`pre-decoded tensors: ${pre.toFixed(1)} images/s`);
console.log(`JPEG folder (2 workers, prefetch): ${real.toFixed(1)} images/s`);
console.log(`ratio: ${(real / pre).toFixed(3)} (target >= 0.90)`);
await rm(dir, { recursive: true, force: true });
