#!/usr/bin/env node
// Latency of a forward pass that follows an idle gap, as a server answering sporadic requests
// sees it: the seed AlexNet at --batch (default 1), warmed up, then --rounds times: sleep --gap
// milliseconds, then three passes back to back. Prints the median of each of the three over the
// rounds, and back-to-back passes for comparison. Run it as the other benchmarks:
//
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE node bench/idle-latency.mjs [--gap 300] [--rounds 15] [--batch 1]
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import os from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels();
const { alexnet, Tensor, synchronize } = lib;
const { values } = parseArgs({
  options: {
    gap: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '15' },
    batch: { type: 'string', default: '1' },
  },
});
const gap = Number(values.gap), rounds = Number(values.rounds), B = Number(values.batch);

const model = alexnet({ config: 'seed', init: 'kaiming', seed: 1 });
model.eval();
const x = Tensor.from(new Float32Array(B * 3 * 227 * 227).map(() => Math.random() - 0.5), [B, 3, 227, 227]);
const pass = async () => {
  const t0 = performance.now();
  const y = model.forward(x);
  await synchronize();
  const ms = performance.now() - t0;
  y.dispose();
  return ms;
};
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];

for (let i = 0; i < 5; i++) await pass(); // warm: scratch buffers, cached weights
const after = [[], [], []];
for (let r = 0; r < rounds; r++) {
  await new Promise((done) => setTimeout(done, gap));
  for (const list of after) list.push(await pass());
}
const hot = [];
for (let r = 0; r < rounds; r++) hot.push(await pass());
console.log(`batch ${B}, ${rounds} rounds, gap ${gap} ms, ${lib.backendInfo().backends.cpu.threads} threads, load average ${os.loadavg()[0].toFixed(1)}`);
console.log(`median ms: first pass after the gap ${median(after[0]).toFixed(1)}, second ${median(after[1]).toFixed(1)}, third ${median(after[2]).toFixed(1)}; back to back ${median(hot).toFixed(1)}`);
