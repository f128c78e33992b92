#!/usr/bin/env node
// The GPU check's CUDA-graph step (issue 14; scripts/gpu-check.sh stage 2): the seed AlexNet
// WITH its dropout (0.4; the captured step reads and advances each Dropout's stream position on
// the device, so every replay draws a fresh mask) trained for a few steps from the same seed with
// and without `cudaGraph`, on the same synthetic batches: the weights compared (fp32 tolerance
// with TF32 off; bit for bit with setDeterministic(true)) — a replay repeating a mask would make
// them differ — and the Dropout layers' host offsets (which checkpoints save) equal after both
// runs; the images/s of both over the steps after the graph's capture, measured in the same process.
// Exit status 1 when the graph was not used, the weights or the dropout offsets differ, or a run
// fails; 2 without CUDA.
//
//   node scripts/gpu-graph.mjs [--steps 12] [--batch 64] [--json FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const lib = await import(process.cwd() + '/dist/index.js');
const { values } = parseArgs({ options: { steps: { type: 'string', default: '12' }, batch: { type: 'string', default: '64' }, json: { type: 'string' } } });
const steps = Number(values.steps);
const B = Number(values.batch);
const info = lib.backendInfo();
if (!info.backends.cuda.available) {
  console.error(`gpu-graph: CUDA is not available: ${info.backends.cuda.reason}`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ error: `CUDA unavailable: ${info.backends.cuda.reason}` }) + '\n');
  process.exit(2);
}
const device = 'cuda:0';
const warm = lib.GRAPH_WARMUP_STEPS;

/** One run; images/s over the steps after the capture point (the eager run: the same steps). */
async function run(cudaGraph) {
  const notices = [];
  const times = [];
  const trainer = new lib.Trainer({
    model: lib.alexnet({ config: 'seed', numClasses: 4, init: 'kaiming', seed: 7 }),
    config: { check: 'gpu-graph' },
    train: new lib.SyntheticDataset({ size: B * (steps + 2), numClasses: 4, seed: 7, split: 'train' }),
    batchSize: B,
    epochs: 1,
    maxSteps: steps,
    device,
    optimizer: { lr: 0.002 },
    warmupSteps: steps, // the learning rate changes at every step: replays must follow it
    workers: 0,
    seed: 7,
    cudaGraph,
    onProgress: (p) => {
      if (p.type === 'notice') notices.push(p.message);
      if (p.type === 'step') times.push(performance.now());
    },
  });
  try {
    const summary = await trainer.run();
    const weights = await trainer.store.params.data();
    const offsets = lib.namedDropouts(trainer.model).map(([name, d]) => [name, d.p, d.offset]);
    const from = warm + 1; // the step reports after the first replay's
    const ips = times.length > from + 1 ? ((times.length - 1 - from) * B * 1000) / (times.at(-1) - times[from]) : NaN;
    return { summary, weights, offsets, notices, imagesPerSecond: ips };
  } finally {
    await trainer.close();
  }
}

function compare(a, b) {
  let maxAbs = 0;
  let maxRel = 0;
  let differ = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d !== 0 || Number.isNaN(d)) differ++;
    maxAbs = Math.max(maxAbs, d);
    maxRel = Math.max(maxRel, d / Math.max(1e-3, Math.abs(b[i])));
  }
  return { differ, maxAbs, maxRel, bitwise: differ === 0 };
}

const report = { device: info.backends.cuda.deviceName, batch: B, steps, warmupSteps: warm, cases: [] };
let ok = true;
for (const [name, deterministic] of [['strict FP32', false], ['deterministic', true]]) {
  lib.setTf32(false);
  lib.setDeterministic(deterministic);
  let eager;
  let graph;
  try {
    eager = await run(false);
    graph = await run(true);
  } catch (e) {
    // a run that cannot complete is a failure of the check, never a pass
    ok = false;
    report.cases.push({ name, pass: false, error: String(e?.stack ?? e) });
    console.log(`FAIL ${name}: ${e?.message ?? e}`);
    continue;
  }
  const cmp = compare(graph.weights, eager.weights);
  const used = graph.summary.cudaGraph?.graphs === 1 && graph.summary.cudaGraph.replays === steps - warm;
  // dropout active and its streams where the eager run left them (the host mirrors of the device counters)
  const dropoutOk = eager.offsets.length > 0 && eager.offsets.every(([, p, o]) => p > 0 && o > 0) && JSON.stringify(graph.offsets) === JSON.stringify(eager.offsets);
  const pass = used && dropoutOk && (deterministic ? cmp.bitwise : cmp.maxRel <= 1e-3) && eager.summary.stopped === 'completed' && graph.summary.stopped === 'completed';
  ok &&= pass;
  const c = { name, pass, graph: graph.summary.cudaGraph, notices: graph.notices, weights: cmp, eagerImagesPerSecond: eager.imagesPerSecond, graphImagesPerSecond: graph.imagesPerSecond, speedup: graph.imagesPerSecond / eager.imagesPerSecond, losses: { eager: eager.summary.trainLoss, graph: graph.summary.trainLoss }, dropout: { eager: eager.offsets, graph: graph.offsets, equal: dropoutOk } };
  report.cases.push(c);
  console.log(`${pass ? 'PASS' : 'FAIL'} ${name}: graph ${JSON.stringify(c.graph)}${graph.notices.length ? ` notices ${JSON.stringify(graph.notices)}` : ''}; weights ${cmp.bitwise ? 'bitwise equal' : `${cmp.differ} differ, max abs ${cmp.maxAbs.toExponential(2)}, max rel ${cmp.maxRel.toExponential(2)}`}; dropout offsets ${dropoutOk ? 'equal' : `DIFFER ${JSON.stringify(c.dropout)}`}; images/s eager ${c.eagerImagesPerSecond.toFixed(0)}, graph ${c.graphImagesPerSecond.toFixed(0)} (${c.speedup.toFixed(2)}x)`);
}
lib.setDeterministic(false);
lib.setTf32(true);
if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
process.exit(ok ? 0 : 1);
