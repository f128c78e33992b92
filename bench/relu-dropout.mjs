#!/usr/bin/env node
// ReLU followed by Dropout, in Sequential's three modes (setReluDropoutFusion; src/nn/layers.ts):
//   off       the Linear + ReLU fusion (ReLU in the Linear's epilogue), then a dropout pass;
//             backward: the dropout's pass, then the ReLU's
//   epilogue  the Linear keeps its ReLU epilogue, one ReLU-dropout pass; backward: one pass
//   fused     the Linear adds its bias only, one ReLU-dropout pass; backward: one pass
// timed forward + backward (training) on two shapes: the pair alone ([B, 4096], as in AlexNet's
// classifier) and a Linear(1024, 4096) + ReLU + Dropout block. The modes take turns within each
// round, in the same process, and the figures are medians of the rounds with each mode's ratio to
// 'off': wall time, and the process's CPU time (all threads), which a shared machine disturbs less.
//
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE node bench/relu-dropout.mjs [--device cpu|cuda:0] [--rounds 9] [--reps 10]
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels(); // before the addon loads
const { values } = parseArgs({ options: { device: { type: 'string', default: 'cpu' }, rounds: { type: 'string', default: '9' }, reps: { type: 'string', default: '10' } } });
const device = values.device;
const rounds = Number(values.rounds);
const reps = Number(values.reps);
const MODES = ['off', 'epilogue', 'fused'];

function randomTensor(shape, seed) {
  const r = lib.mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return lib.Tensor.from(Float32Array.from({ length: n }, () => r() * 2 - 1), shape, { device });
}

/** Process CPU time in ms (every thread: the CPU backend's queue and pool included). */
const cpuMs = () => {
  const u = process.resourceUsage();
  return (u.userCPUTime + u.systemCPUTime) / 1000;
};

/** [wall ms, CPU ms] per forward + backward of `model` on x (gradient dy), `reps` times, waited for at the end. */
async function time(model, x, dy) {
  const once = () => {
    const y = model.forward(x);
    const g = model.backward(dy, true);
    if (y !== x) y.dispose();
    return g;
  };
  (await once().data()); // warm
  const t0 = performance.now();
  const c0 = cpuMs();
  let g = null;
  for (let i = 0; i < reps; i++) {
    g?.dispose();
    g = once();
  }
  await g.data();
  g.dispose();
  return [(performance.now() - t0) / reps, (cpuMs() - c0) / reps];
}

const cases = [
  { name: 'ReLU + Dropout(0.5), [256, 4096]', make: () => new lib.Sequential(new lib.ReLU(), new lib.Dropout(0.5, { seed: 1 })), x: [256, 4096], dy: [256, 4096] },
  { name: 'Linear(1024, 4096) + ReLU + Dropout(0.5), batch 64', make: () => new lib.Sequential(new lib.Linear(1024, 4096, { rng: lib.mulberry32(3) }), new lib.ReLU(), new lib.Dropout(0.5, { seed: 1 })), x: [64, 1024], dy: [64, 4096] },
];

console.log(`relu-dropout on ${device}: ${rounds} rounds x ${reps} forward+backward per mode (median ms; ratio to 'off'; CPU: all threads)`);
for (const c of cases) {
  const model = c.make();
  const store = model.namedParameters().length > 0 ? lib.ParameterStore.create(model, { device }) : null;
  model.train(true);
  const x = randomTensor(c.x, 5);
  const dy = randomTensor(c.dy, 6);
  const times = Object.fromEntries(MODES.map((m) => [m, []]));
  const cpu = Object.fromEntries(MODES.map((m) => [m, []]));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < MODES.length; k++) {
      const mode = MODES[(r + k) % MODES.length];
      lib.setReluDropoutFusion(mode);
      store?.zeroGrad();
      const [wall, busy] = await time(model, x, dy);
      times[mode].push(wall);
      cpu[mode].push(busy);
    }
  }
  lib.setReluDropoutFusion('fused');
  const median = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
  const line = (t) => MODES.map((m) => `${m} ${median(t[m]).toFixed(3)} ms (${(median(t[m]) / median(t.off)).toFixed(3)}x)`).join(', ');
  console.log(`${c.name}:\n  wall ${line(times)}\n  CPU  ${line(cpu)}`);
  store?.dispose?.();
}
