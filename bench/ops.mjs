#!/usr/bin/env node
// Per-operator benchmark driven from C++ (native/cpu/bench.cc): every AlexNet layer shape timed
// in a native loop, with the sgemm and memcpy ceilings measured in the same run. Prints a table
// and saves bench/results/ops-cpu-<date>.{json,md}.
//
//   node bench/ops.mjs [--batch 16] [--reps 5]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels(); // before the addon loads
const { values } = parseArgs({ options: { batch: { type: 'string', default: '16' }, reps: { type: 'string', default: '5' } } });
const rows = await lib.loadNative().benchOps({ batch: Number(values.batch), reps: Number(values.reps) });
const info = lib.backendInfo();
const lines = [
  `# Operators on the CPU, batch ${values.batch} (C++-driven)`,
  '',
  `${new Date().toISOString()} · ${os.cpus()[0]?.model} · ${info.backends.cpu.threads} threads · ${info.backends.cpu.blas}`,
  '',
  '| operator | shape | ms | GFLOP/s | GB/s | of ceiling |',
  '|---|---|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${r.shape} | ${r.ms.toFixed(2)} | ${r.gflops ? r.gflops.toFixed(1) : ''} | ${r.gbps ? r.gbps.toFixed(1) : ''} | ${(100 * r.fraction).toFixed(0)}% |`),
];
const md = lines.join('\n');
console.log(md);
const dir = join(here, 'results');
mkdirSync(dir, { recursive: true });
const stamp = `ops-cpu-${new Date().toISOString().slice(0, 10)}`;
writeFileSync(join(dir, `${stamp}.json`), JSON.stringify({ date: new Date().toISOString(), batch: Number(values.batch), rows }, null, 2) + '\n');
writeFileSync(join(dir, `${stamp}.md`), md + '\n');
console.log(`\nsaved bench/results/${stamp}.{json,md}`);
