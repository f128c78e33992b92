#!/usr/bin/env node
// Inference of the seed AlexNet under several CPU settings in one process, alternating rounds,
// each setting's best: the whole forward pass and each layer's forward (the model's leaves on
// their real inputs), as milliseconds and as ratios to the first setting. For a batch of one,
// where the fixed costs per call (weight packing, Winograd filter transforms) are not spread
// over images; also a 256 MiB copy as the memory-bandwidth floor of the fully connected layers.
//
//   node bench/infer-paths.mjs [--batch 1] [--rounds 5] [--reps 3] [--cold]
//       [--settings auto+cache,auto-nocache,direct+cache,winograd+cache,im2col+cache]
//
// A layer repeated alone keeps its weights in cache, which a whole pass does not (it reads
// about 230 MB of weights, the fully connected ones last). --cold times the layers instead as
// a pass meets them: the network run layer by layer, each layer once per pass (waiting for it
// before the next), the median of rounds x reps passes per layer. Conv2d and its ReLU then run
// as two calls, where the whole pass fuses them.
//
// A setting is <setConvAlgorithm name>+cache or -nocache (setWeightCache). Run with
// OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (this script clears them before the addon loads).
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import os from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels();
const { alexnet, Tensor, synchronize, setConvAlgorithm, setWeightCache } = lib;

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '5' },
    reps: { type: 'string', default: '3' },
    settings: { type: 'string', default: 'auto+cache,auto-nocache,direct+cache,winograd+cache,im2col+cache' },
    cold: { type: 'boolean', default: false },
  },
});
const B = Number(values.batch);
const rounds = Number(values.rounds);
const reps = Number(values.reps);
const settings = values.settings.split(',').map((s) => {
  const m = /^([a-z0-9-]+?)([+-])(cache|nocache)$/.exec(s);
  if (!m) throw new Error(`bad setting '${s}': expected e.g. auto+cache or direct-nocache`);
  return { name: s, algo: m[1], cache: m[3] === 'cache' };
});

const model = alexnet({ config: 'seed', init: 'kaiming', seed: 1 });
model.eval();
const x = Tensor.from(new Float32Array(B * 3 * 227 * 227).map(() => Math.random() - 0.5), [B, 3, 227, 227]);

function leaves(m, prefix = '') {
  const kids = [...m.namedChildren()];
  if (kids.length === 0) return [[prefix || m.constructor.name, m]];
  return kids.flatMap(([n, c]) => leaves(c, prefix ? `${prefix}.${n}` : n));
}
const chain = [];
{
  let h = x;
  for (const [name, m] of leaves(model)) {
    const out = m.forward(h);
    chain.push({ name: `${name} ${m.constructor.name}`, m, input: h });
    h = out;
  }
  await synchronize();
}

async function best(fn, keep = x) {
  let b = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const out = fn();
    await synchronize();
    b = Math.min(b, performance.now() - t0);
    if (out && out !== keep) out.dispose?.();
  }
  return b;
}

// the bandwidth floor: a copy of 256 MiB through the addon's copy operator (read + write)
const big = Tensor.full([64 << 20], 1);
const big2 = Tensor.zeros([64 << 20]);
let copyMs = Infinity;

const results = settings.map(() => ({ whole: Infinity, layers: chain.map(() => Infinity) }));
const coldSamples = settings.map(() => chain.map(() => []));
const use = (s) => {
  setConvAlgorithm(s.algo);
  setWeightCache(s.cache);
};
// Settings alternate as closely as possible (the machine may be shared): within a round, each
// layer (and the whole pass) is timed under every setting in turn before the next one.
for (let r = 0; r < rounds; r++) {
  copyMs = Math.min(copyMs, await best(() => lib.copy(big2, big)));
  for (const [i, s] of settings.entries()) {
    use(s);
    model.forward(x).dispose(); // warm: scratch buffers, cached weights
    await synchronize();
    results[i].whole = Math.min(results[i].whole, await best(() => model.forward(x)));
  }
  if (values.cold) {
    for (const [i, s] of settings.entries()) {
      use(s);
      for (let k = 0; k < reps; k++) {
        let h = x;
        const outs = new Set();
        for (const [j, c] of chain.entries()) {
          const t0 = performance.now();
          h = c.m.forward(h);
          await synchronize();
          coldSamples[i][j].push(performance.now() - t0);
          if (h !== x) outs.add(h);
        }
        for (const o of outs) o.dispose?.();
      }
    }
    continue;
  }
  for (const [j, c] of chain.entries())
    for (const [i, s] of settings.entries()) {
      use(s);
      c.m.forward(c.input); // warm
      results[i].layers[j] = Math.min(results[i].layers[j], await best(() => c.m.forward(c.input), c.input));
    }
}
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
if (values.cold) results.forEach((r, i) => (r.layers = coldSamples[i].map(median)));
setConvAlgorithm('auto');
setWeightCache(true);

const load = os.loadavg()[0].toFixed(1);
const gbps = (2 * 256 * 2 ** 20) / copyMs / 1e6;
console.log(`batch ${B}, ${rounds} rounds x best of ${reps}${values.cold ? ' (layers: cold, the median of the passes run layer by layer)' : ''}; load average ${load}; copy 256 MiB ${copyMs.toFixed(1)} ms = ${gbps.toFixed(1)} GB/s (read + write)`);
const head = ['layer', ...settings.map((s, i) => (i === 0 ? `${s.name} ms` : `${s.name} ms (/first)`))];
console.log(`| ${head.join(' | ')} |`);
console.log(`|${head.map(() => '---').join('|')}|`);
const row = (label, get) =>
  console.log(`| ${label} | ${settings.map((_, i) => (i === 0 ? get(0).toFixed(2) : `${get(i).toFixed(2)} (${(get(i) / get(0)).toFixed(2)})`)).join(' | ')} |`);
row('whole forward', (i) => results[i].whole);
for (const [j, c] of chain.entries()) if (results[0].layers[j] > 0.05) row(c.name, (i) => results[i].layers[j]);
console.log(JSON.stringify({ batch: B, rounds, reps, cold: values.cold, load: Number(load), copyGBps: gbps, settings: settings.map((s, i) => ({ ...s, ...results[i] })), layers: chain.map((c) => c.name) }));
