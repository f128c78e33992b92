#!/usr/bin/env node
// CPU benchmark: the seed AlexNet's five convolutions and three linear layers, forward and
// backward, at batch 16 (default), each as milliseconds, GFLOP/s and the fractions of this
// machine's sgemm rate and of its FMA peak (fmaPeak: a multiply-add loop on every pool thread),
// both measured in the same run; then the whole forward pass (pools, ReLUs and softmax
// included) in images/s. Writes bench/results/cpu-<cpu model>-<date>.json and .md.
//
//   npm run bench [-- --batch 16 --reps 5 --threads 2 --paths direct,im2col,winograd]
//
// --paths times the stride-1 convolutions (conv2-5) once more under each listed CPU convolution
// path (setConvAlgorithm), in alternating rounds, as ratios to the first one ('' skips it).
//
// OpenBLAS picks its kernels when it loads: if OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set
// (some build machines force Haswell kernels), this script clears them before the addon loads, as a
// user's machine would run. With --isa avx2 it instead sets ALEXNET_CPU_ISA=avx2 (our kernels'
// cap, read when the addon loads) and OPENBLAS_CORETYPE=Haswell (OpenBLAS's AVX2 kernels) before
// the addon loads, and takes the AVX2 FMA peak as the ceiling.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const isaArg = process.argv.indexOf('--isa');
const isa = isaArg > 0 ? process.argv[isaArg + 1] : 'auto';
if (isa !== 'auto' && isa !== 'avx2') throw new Error(`--isa: expected auto or avx2 but got '${isa}'`);
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels(); // before the addon loads
if (isa === 'avx2') {
  process.env.ALEXNET_CPU_ISA = 'avx2'; // both read when the addon (and OpenBLAS) load, just below
  process.env.OPENBLAS_CORETYPE = 'Haswell';
}
const { cpuSlug } = await import(join(here, '..', 'dist', 'cli', 'bench.js'));
const { Tensor, conv2d, conv2dBackward, linear, linearBackward, matmul, softmax, backendInfo, setConvAlgorithm, setNumThreads, synchronize } = lib;

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '16' },
    reps: { type: 'string', default: '5' },
    threads: { type: 'string' },
    // the stride-1 convolutions again under each CPU convolution path (setConvAlgorithm)
    paths: { type: 'string', default: 'direct,im2col,winograd' },
    'no-save': { type: 'boolean', default: false },
    isa: { type: 'string', default: 'auto' }, // read above, before the addon loads
  },
});
const B = Number(values.batch);
const reps = Number(values.reps);
if (values.threads) setNumThreads(Number(values.threads));

function randn(n, std = 1) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = std * (Math.random() * 2 - 1) * 1.7320508;
  return a;
}
const tensor = (shape, std = 1) => Tensor.from(randn(shape.reduce((a, b) => a * b, 1), std), shape);

// Times `fn` (which enqueues work and returns what it made: a tensor, an object of tensors or
// an array): best of `reps` after a warm-up. Waits with synchronize() (reading a big output
// back would time the copy), and disposes the outputs so the allocator reuses their memory.
function disposeAll(out) {
  if (!out) return;
  if (typeof out.dispose === 'function') return out.dispose();
  for (const v of Object.values(out)) disposeAll(v);
}
async function time(fn) {
  disposeAll(fn());
  await synchronize();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const out = fn();
    await synchronize();
    best = Math.min(best, performance.now() - t0);
    disposeAll(out);
  }
  return best;
}

// --- the ceiling: sgemm at a large square size, same process ---------------------------------
const n = 2048;
const ga = tensor([n, n]);
const gb = tensor([n, n]);
const gemmMs = await time(() => matmul(ga, gb));
const sgemmGflops = (2 * n ** 3) / gemmMs / 1e6;

// --- the hardware's ceiling: the FMA peak per instruction set, then the best one again after ----
// every layer, keeping the highest (on a shared machine one window can catch a neighbour's burst;
// measured between the layers, the peak sees the same drift as they do)
const native = lib.loadNative();
const allPeaks = await native.fmaPeak({ seconds: 0.2 });
// under the AVX2 cap the ceiling is AVX2's peak ('best' below follows the cap too)
const peakRows = backendInfo().backends.cpu.isa === 'avx512' ? allPeaks : allPeaks.filter((r) => r.isa !== 'avx512f');
let peakGflops = peakRows[0].gflops;
let peakWindows = 1;
async function remeasurePeak() {
  peakGflops = Math.max(peakGflops, (await native.fmaPeak({ isa: 'best', seconds: 0.1 }))[0].gflops);
  peakWindows++;
}

// --- layers -------------------------------------------------------------------------------------
const convs = [
  { name: 'conv1', in: [B, 3, 227, 227], w: [96, 3, 11, 11], stride: 4, padding: 0, gradInput: false },
  { name: 'conv2', in: [B, 96, 27, 27], w: [256, 96, 5, 5], stride: 1, padding: 2, gradInput: true },
  { name: 'conv3', in: [B, 256, 13, 13], w: [384, 256, 3, 3], stride: 1, padding: 1, gradInput: true },
  { name: 'conv4', in: [B, 384, 13, 13], w: [384, 384, 3, 3], stride: 1, padding: 1, gradInput: true },
  { name: 'conv5', in: [B, 384, 13, 13], w: [256, 384, 3, 3], stride: 1, padding: 1, gradInput: true },
];
const fcs = [
  { name: 'fc6', in: [B, 9216], w: [4096, 9216] },
  { name: 'fc7', in: [B, 4096], w: [4096, 4096] },
  { name: 'fc8', in: [B, 4096], w: [2, 4096] },
];

const rows = [];
for (const c of convs) {
  const x = tensor(c.in);
  const w = tensor(c.w, 0.05);
  const b = tensor([c.w[0]]);
  const opts = { stride: c.stride, padding: c.padding };
  const y = conv2d(x, w, b, opts);
  const [, , ho, wo] = y.shape;
  const fwdFlop = 2 * B * c.w[0] * ho * wo * c.w[1] * c.w[2] * c.w[3];
  const dy = tensor(y.shape);
  const fwd = await time(() => conv2d(x, w, b, opts));
  const bwd = await time(() => conv2dBackward(dy, x, w, { ...opts, computeGradInput: c.gradInput }));
  const bwdFlop = fwdFlop * (c.gradInput ? 2 : 1);
  rows.push({ layer: c.name, shape: `${c.in.join('x')} * ${c.w.join('x')}`, fwdMs: fwd, fwdGflops: fwdFlop / fwd / 1e6, bwdMs: bwd, bwdGflops: bwdFlop / bwd / 1e6, fwdFlop, bwdFlop });
  await remeasurePeak();
}
for (const f of fcs) {
  const x = tensor(f.in);
  const w = tensor(f.w, 0.01);
  const b = tensor([f.w[0]]);
  const dy = tensor([B, f.w[0]]);
  const fwdFlop = 2 * B * f.w[0] * f.w[1];
  const fwd = await time(() => linear(x, w, b));
  const bwd = await time(() => linearBackward(dy, x, w));
  rows.push({ layer: f.name, shape: `${f.in.join('x')} * ${f.w.join('x')}^T`, fwdMs: fwd, fwdGflops: fwdFlop / fwd / 1e6, bwdMs: bwd, bwdGflops: (2 * fwdFlop) / bwd / 1e6, fwdFlop, bwdFlop: 2 * fwdFlop });
  await remeasurePeak();
}

// --- the stride-1 convolutions under each path --------------------------------------------------
// Alternating rounds (every path once per round, best of the rounds per path) so that a
// neighbour's burst on the shared machine hits every path alike; 'auto' is what the layer rows
// above and the forward pass below run.
const paths = values.paths ? values.paths.split(',').filter(Boolean) : [];
const pathRows = [];
for (const c of convs.filter((c) => c.stride === 1 && paths.length > 0)) {
  const x = tensor(c.in);
  const w = tensor(c.w, 0.05);
  const b = tensor([c.w[0]]);
  const opts = { stride: c.stride, padding: c.padding };
  const dy = tensor(conv2d(x, w, b, opts).shape);
  const best = Object.fromEntries(paths.map((p) => [p, { fwd: Infinity, bwd: Infinity }]));
  const once = async (fn) => {
    const t0 = performance.now();
    const out = fn();
    await synchronize();
    const ms = performance.now() - t0;
    disposeAll(out);
    return ms;
  };
  for (let round = 0; round <= reps; round++) {
    for (const p of paths) {
      setConvAlgorithm(p);
      const f = await once(() => conv2d(x, w, b, opts));
      const g = await once(() => conv2dBackward(dy, x, w, { ...opts, computeGradInput: c.gradInput }));
      if (round === 0) continue; // warm-up (scratch buffers, transformed filters)
      best[p].fwd = Math.min(best[p].fwd, f);
      best[p].bwd = Math.min(best[p].bwd, g);
    }
  }
  setConvAlgorithm('auto');
  pathRows.push({ layer: c.name, paths: best });
}

// --- the whole forward pass ---------------------------------------------------------------------
// The library's seed AlexNet in evaluation mode, plus the softmax.
const model = lib.alexnet({ config: 'seed', init: 'kaiming', seed: 1 }).eval();
const input = tensor([B, 3, 227, 227]);
const net = () => {
  const logits = model.forward(input);
  const p = softmax(logits);
  logits.dispose();
  return p;
};
const netMs = await time(net);
await remeasurePeak();
const netFlop = rows.reduce((s, r) => s + r.fwdFlop, 0);
const netGflops = netFlop / netMs / 1e6;

// --- report -------------------------------------------------------------------------------------
const info = backendInfo();
const pct = (g) => `${((100 * g) / sgemmGflops).toFixed(0)}%`;
const ofPeak = (g) => `${((100 * g) / peakGflops).toFixed(0)}%`;
const lines = [];
lines.push(`# CPU benchmark, batch ${B}`);
lines.push('');
lines.push(`${new Date().toISOString()} · ${os.cpus()[0]?.model ?? 'cpu'} · ${info.backends.cpu.threads} threads · ${info.backends.cpu.blas} · node ${process.version}`);
lines.push('');
lines.push(`sgemm ${n}x${n}x${n}: ${gemmMs.toFixed(1)} ms = **${sgemmGflops.toFixed(1)} GFLOP/s** (the ceiling below)`);
lines.push('');
lines.push(`FMA peak (${peakRows[0].threads} threads, best of ${peakWindows} windows between the layers): **${peakGflops.toFixed(1)} GFLOP/s with ${peakRows[0].isa}** ` +
  `(${allPeaks.map((r) => `${r.isa} ${r.gflops.toFixed(1)}`).join(', ')}); sgemm is ${ofPeak(sgemmGflops)} of it`);
lines.push('');
lines.push(`Instruction sets: our kernels ${info.backends.cpu.isa} (cap '${info.backends.cpu.isaCap}', the CPU has ${info.backends.cpu.isaHardware}); OpenBLAS ${process.env.OPENBLAS_CORETYPE ? `OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE}` : 'as it chose'}`);
lines.push('');
lines.push('| layer | shape | fwd ms | fwd GFLOP/s | fwd / sgemm | fwd / FMA peak | bwd ms | bwd GFLOP/s | bwd / sgemm | bwd / FMA peak |');
lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  lines.push(`| ${r.layer} | ${r.shape} | ${r.fwdMs.toFixed(2)} | ${r.fwdGflops.toFixed(1)} | ${pct(r.fwdGflops)} | ${ofPeak(r.fwdGflops)} | ${r.bwdMs.toFixed(2)} | ${r.bwdGflops.toFixed(1)} | ${pct(r.bwdGflops)} | ${ofPeak(r.bwdGflops)} |`);
}
if (pathRows.length > 0) {
  lines.push('');
  lines.push(`Stride-1 convolutions under each path (ms, best of ${reps} alternating rounds; bwd = input and weight gradients; x = time relative to ${paths[0]}):`);
  lines.push('');
  lines.push(`| layer | ${paths.map((p) => `${p} fwd`).join(' | ')} | ${paths.map((p) => `${p} bwd`).join(' | ')} |`);
  lines.push(`|---|${paths.map(() => '---:').join('|')}|${paths.map(() => '---:').join('|')}|`);
  const rel = (v, base) => (v === base ? v.toFixed(2) : `${v.toFixed(2)} (${(v / base).toFixed(2)}x)`);
  for (const r of pathRows) {
    const base = r.paths[paths[0]];
    lines.push(`| ${r.layer} | ${paths.map((p) => rel(r.paths[p].fwd, base.fwd)).join(' | ')} | ${paths.map((p) => rel(r.paths[p].bwd, base.bwd)).join(' | ')} |`);
  }
}
lines.push('');
lines.push(`whole forward pass (convs, ReLUs, pools, linears, softmax): ${netMs.toFixed(1)} ms = **${((B * 1000) / netMs).toFixed(1)} images/s**, ` +
  `${netGflops.toFixed(1)} GFLOP/s = **${pct(netGflops)} of sgemm** (target >= 75%), ${ofPeak(netGflops)} of the FMA peak`);
const md = lines.join('\n');
console.log(md);

if (!values['no-save']) {
  const dir = join(here, 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = `${cpuSlug()}-${isa === 'avx2' ? 'avx2-' : ''}${new Date().toISOString().slice(0, 10)}`;
  const fmaPeak = { isa: peakRows[0].isa, gflops: peakGflops, windows: peakWindows, threads: peakRows[0].threads, isas: allPeaks.map((r) => ({ isa: r.isa, gflops: r.gflops })) };
  const layers = rows.map((r) => ({ ...r, fwdFractionOfFmaPeak: r.fwdGflops / peakGflops, bwdFractionOfFmaPeak: r.bwdGflops / peakGflops }));
  const json = { date: new Date().toISOString(), machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, platform: `${process.platform}-${process.arch}` }, node: process.version, backend: info.backends.cpu, batch: B, sgemm: { n, ms: gemmMs, gflops: sgemmGflops }, fmaPeak, layers, convPaths: pathRows, forward: { ms: netMs, imagesPerSecond: (B * 1000) / netMs, gflops: netGflops, fractionOfSgemm: netGflops / sgemmGflops, fractionOfFmaPeak: netGflops / peakGflops } };
  writeFileSync(join(dir, `cpu-${stamp}.json`), JSON.stringify(json, null, 2) + '\n');
  writeFileSync(join(dir, `cpu-${stamp}.md`), md + '\n');
  console.log(`\nsaved bench/results/cpu-${stamp}.{json,md}`);
}
