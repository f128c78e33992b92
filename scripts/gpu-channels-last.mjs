#!/usr/bin/env node
// The GPU check's channels-last step (issue 14; scripts/gpu-check.sh stage 2): the seed AlexNet
// trained for a few steps from the same seed on the same synthetic batches, NCHW and with
// memoryFormat 'channels_last' (cuDNN's NHWC tensor-core layout), in FP32 with TF32 and in bf16:
// the two runs' weights compared (their difference measured against how far the weights moved:
// the layouts may pick different cuDNN algorithms, so they agree to rounding, not bitwise), and
// the images/s of both over the steps after the first few (cuDNN's algorithm search) in the same
// process. Exit status 1 when a pair disagrees or a run fails; 2 without CUDA.
//
//   node scripts/gpu-channels-last.mjs [--steps 10] [--batch 64] [--json FILE] [--device cuda:0]
//
// On the CPU (--device cpu, with a small batch) it runs the same comparison as a rehearsal; there
// the two layouts run the same kernels, so they agree bitwise.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const lib = await import(process.cwd() + '/dist/index.js');
const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '10' },
    batch: { type: 'string', default: '64' },
    json: { type: 'string' },
    device: { type: 'string', default: 'cuda:0' },
  },
});
const steps = Number(values.steps);
const B = Number(values.batch);
const device = values.device;
const info = lib.backendInfo();
if (device.startsWith('cuda') && !info.backends.cuda.available) {
  console.error(`gpu-channels-last: CUDA is not available: ${info.backends.cuda.reason}`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ error: `CUDA unavailable: ${info.backends.cuda.reason}` }) + '\n');
  process.exit(2);
}
const SKIP = Math.min(3, steps - 2); // steps left out of the timing (algorithm search, pool growth)

/** One run: the summary, the final and initial weights, images/s after the first SKIP steps. */
async function run(precision, memoryFormat) {
  const times = [];
  const trainer = new lib.Trainer({
    model: lib.alexnet({ config: 'seed', numClasses: 4, init: 'kaiming', seed: 7 }),
    config: { check: 'gpu-channels-last' },
    train: new lib.SyntheticDataset({ size: B * (steps + 1), numClasses: 4, seed: 7, split: 'train' }),
    batchSize: B,
    epochs: 1,
    maxSteps: steps,
    device,
    optimizer: { lr: 0.001 },
    warmupSteps: steps,
    precision,
    memoryFormat,
    checkpoint: null,
    workers: 0,
    seed: 7,
    onProgress: (p) => {
      if (p.type === 'step') times.push(performance.now());
    },
  });
  try {
    const initial = await trainer.store.params.data();
    const summary = await trainer.run();
    const weights = await trainer.store.params.data();
    const n = times.length - 1 - SKIP;
    const ips = n > 0 ? (n * B * 1000) / (times.at(-1) - times[SKIP]) : NaN;
    return { summary, initial, weights, imagesPerSecond: ips };
  } finally {
    await trainer.close();
  }
}

/** ||a - b|| / ||a - initial||: the layouts' disagreement relative to the training's own update. */
function compare(a, b, initial) {
  let diff = 0;
  let moved = 0;
  let bitwise = true;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    if (d !== 0 || Number.isNaN(d)) bitwise = false;
    diff += d * d;
    const m = a[i] - initial[i];
    moved += m * m;
  }
  return { relative: Math.sqrt(diff) / Math.max(Math.sqrt(moved), 1e-30), bitwise };
}

lib.setTf32(true);
const report = { device: device.startsWith('cuda') ? info.backends.cuda.deviceName : 'cpu', batch: B, steps, timedAfter: SKIP, cases: [] };
let ok = true;
// TF32 keeps 10 mantissa bits, bf16 8: the allowed disagreement, as a fraction of the update
for (const [precision, limit] of [['fp32', 0.05], ['bf16', 0.2]]) {
  try {
    const nchw = await run(precision, 'contiguous_format');
    const cl = await run(precision, 'channels_last');
    const cmp = compare(cl.weights, nchw.weights, nchw.initial);
    const pass = cmp.relative <= limit && nchw.summary.stopped === 'completed' && cl.summary.stopped === 'completed';
    ok &&= pass;
    const c = { precision, pass, limit, weights: cmp, losses: { nchw: nchw.summary.trainLoss, channelsLast: cl.summary.trainLoss }, nchwImagesPerSecond: nchw.imagesPerSecond, channelsLastImagesPerSecond: cl.imagesPerSecond, speedup: cl.imagesPerSecond / nchw.imagesPerSecond };
    report.cases.push(c);
    console.log(`${pass ? 'PASS' : 'FAIL'} ${precision}${precision === 'fp32' ? ' (TF32)' : ''}: weights ${cmp.bitwise ? 'bitwise equal' : `differ by ${cmp.relative.toExponential(2)} of the update (limit ${limit})`}; loss NCHW ${c.losses.nchw.toFixed(4)}, channels-last ${c.losses.channelsLast.toFixed(4)}; images/s NCHW ${c.nchwImagesPerSecond.toFixed(0)}, channels-last ${c.channelsLastImagesPerSecond.toFixed(0)} (${c.speedup.toFixed(2)}x)`);
  } catch (e) {
    ok = false;
    const error = String(e?.stack ?? e);
    report.cases.push({ precision, pass: false, error });
    console.log(`FAIL ${precision}: ${error}`);
  }
}
if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
process.exit(ok ? 0 : 1);
