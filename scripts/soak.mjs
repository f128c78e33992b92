// Training soak: a small AlexNet-shaped network on 32x32 synthetic images for --steps steps
// (the full AlexNet is far too slow for 10,000 CPU steps), sampling the process RSS and the
// addon's external memory (what it has reported to V8) every --every steps. It prints the
// least-squares slope of each per 1,000 steps over the second half of the run, where caches
// and pools have warmed up: a leak shows as a steady positive slope.
//   npm run soak -- --steps 10000 [--batch 32] [--device cpu] [--every 100] [--json]
import { parseArgs } from 'node:util';
import * as lib from '../dist/index.js';
import { smallNet } from '../test/small-net.mjs';

const { loadNative, SyntheticDataset, Trainer } = lib;

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '10000' },
    batch: { type: 'string', default: '32' },
    every: { type: 'string', default: '100' },
    device: { type: 'string', default: 'cpu' },
    json: { type: 'boolean', default: false },
  },
});
const steps = Number(values.steps), batchSize = Number(values.batch), every = Number(values.every);
if (!(Number.isInteger(steps) && steps >= 20 && Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= 1024 && Number.isInteger(every) && every >= 1))
  throw new Error('soak: --steps (>= 20), --batch (1..1024) and --every (>= 1) must be integers');

const model = smallNet(lib, 1, 8);
// A fixed, small training set cycled over many epochs: the soak measures the library, not
// the data set's own memory.
const train = new SyntheticDataset({ size: batchSize * 50, imageSize: 32, split: 'train', seed: 7, numClasses: 8 });
const native = loadNative();
const samples = []; // [step, rssBytes, externalBytes]
const sample = (step) => samples.push([step, process.memoryUsage.rss(), native.externalMemory()]);
sample(0);
const t0 = performance.now();
const trainer = new Trainer({
  model,
  config: { soak: true },
  train,
  device: values.device,
  batchSize,
  epochs: Math.ceil(steps / 50) + 1,
  maxSteps: steps,
  optimizer: { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 },
  checkpoint: null,
  metrics: null,
  workers: 0,
  onProgress: (p) => {
    if (p.type === 'step' && p.step % every === 0) {
      sample(p.step);
      if (!values.json && p.step % (every * 10) === 0)
        console.log(`step ${p.step}: rss ${(samples.at(-1)[1] / 2 ** 20).toFixed(1)} MiB, external ${(samples.at(-1)[2] / 2 ** 20).toFixed(1)} MiB, loss ${p.loss.toFixed(3)}`);
    }
  },
});
const summary = await trainer.run();
await trainer.close();
const seconds = (performance.now() - t0) / 1000;

/** Least-squares slope of y over x, in y-units per 1,000 x. */
function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p[0], 0) / n, my = points.reduce((a, p) => a + p[1], 0) / n;
  let sxy = 0, sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return (sxy / sxx) * 1000;
}
const half = samples.filter(([s]) => s >= summary.steps / 2);
const MiB = 2 ** 20;
const result = {
  steps: summary.steps,
  stopped: summary.stopped,
  seconds: Number(seconds.toFixed(1)),
  batchSize,
  device: values.device,
  rssStartMiB: Number((samples[0][1] / MiB).toFixed(1)),
  rssEndMiB: Number((samples.at(-1)[1] / MiB).toFixed(1)),
  externalEndMiB: Number((samples.at(-1)[2] / MiB).toFixed(2)),
  secondHalfSamples: half.length,
  rssSlopeMiBPer1000Steps: Number((slope(half.map(([s, r]) => [s, r / MiB]))).toFixed(3)),
  externalSlopeMiBPer1000Steps: Number((slope(half.map(([s, , e]) => [s, e / MiB]))).toFixed(3)),
};
if (!values.json)
  console.log(
    `soak: ${result.steps} steps (${result.stopped}) in ${result.seconds} s; second half: RSS ${result.rssSlopeMiBPer1000Steps} MiB / 1,000 steps, ` +
      `external ${result.externalSlopeMiBPer1000Steps} MiB / 1,000 steps; RSS ${result.rssStartMiB} -> ${result.rssEndMiB} MiB, external at the end ${result.externalEndMiB} MiB`,
  );
console.log(JSON.stringify(result));
