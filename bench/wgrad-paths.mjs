#!/usr/bin/env node
// The weight gradient alone (conv2dBackward with computeGradInput: false, no bias gradient) of
// AlexNet's stride-1 convolutions under 'direct' (the direct kernel's weight gradient, what
// 'auto' ran before Winograd had one) and 'winograd' (conv2d_weight_grad_winograd), then the
// whole backward pass (input and weight gradients) under 'direct' and 'winograd', in alternating
// rounds, best of --reps per path, as ratios winograd / direct within the same process.
//
//   node bench/wgrad-paths.mjs --batches 1,2,4,8,16,64 --reps 3
import { join, dirname } from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels();
const { Tensor, conv2dBackward, setConvAlgorithm, synchronize } = lib;
const { values } = parseArgs({ options: { batches: { type: 'string', default: '16,64' }, reps: { type: 'string', default: '3' } } });
const reps = Number(values.reps);
const convs = [
  { name: 'conv2', C: 96, H: 27, O: 256, k: 5, p: 2 },
  { name: 'conv3', C: 256, H: 13, O: 384, k: 3, p: 1 },
  { name: 'conv4', C: 384, H: 13, O: 384, k: 3, p: 1 },
  { name: 'conv5', C: 384, H: 13, O: 256, k: 3, p: 1 },
];
const rand = (shape, s = 1) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = (Math.random() * 2 - 1) * s;
  return Tensor.from(d, shape);
};
console.log(`load average at start: ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}`);
console.log('| batch | layer | dW direct ms | dW winograd ms | ratio | bwd direct ms | bwd winograd ms | ratio |');
console.log('|---:|---|---:|---:|---:|---:|---:|---:|');
for (const N of values.batches.split(',').map(Number)) {
  for (const c of convs) {
    const x = rand([N, c.C, c.H, c.H]);
    const w = rand([c.O, c.C, c.k, c.k], 0.05);
    const dy = rand([N, c.O, c.H, c.H]);
    const opts = { padding: [c.p, c.p], computeGradBias: false };
    const best = {};
    for (let round = 0; round <= reps; round++)
      for (const p of ['direct', 'winograd'])
        for (const kind of ['dw', 'bwd']) {
          setConvAlgorithm(p);
          const t0 = performance.now();
          const g = conv2dBackward(dy, x, w, { ...opts, computeGradInput: kind === 'bwd' });
          await synchronize();
          const ms = performance.now() - t0;
          g.gradWeight.dispose();
          g.gradInput?.dispose();
          if (round === 0) continue;
          best[p + kind] = Math.min(best[p + kind] ?? Infinity, ms);
        }
    setConvAlgorithm('auto');
    const f = (v) => v.toFixed(1);
    console.log(`| ${N} | ${c.name} | ${f(best.directdw)} | ${f(best.winograddw)} | ${(best.winograddw / best.directdw).toFixed(2)} | ${f(best.directbwd)} | ${f(best.winogradbwd)} | ${(best.winogradbwd / best.directbwd).toFixed(2)} |`);
    x.dispose(); w.dispose(); dy.dispose();
  }
}
console.log(`load average at end: ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}`);
