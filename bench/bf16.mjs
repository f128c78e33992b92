#!/usr/bin/env node
// bfloat16 against float32 for AlexNet's fully connected layers (fc6 9216->4096, fc7
// 4096->4096, fc8 4096->1000) at batch 1, 16 and 64, in one process, forward and backward
// (linearBackward: gradInput, gradWeight, gradBias; the wait is on gradInput, the queue runs the
// call as one task, so all three are done): linear on float32 inputs
// (sgemm, OpenBLAS or the portable GEMM) beside linear on bfloat16 inputs (float32 output) with
// the AVX-512 BF16 kernel (where the CPU has it) and with the portable path (convert to float32,
// then sgemm). The variants run interleaved, rep by rep, so a noisy neighbour slows them alike;
// each figure is the median of the reps (each one call plus the wait for its result), and the
// ratio is float32's median over the variant's. Prints a table and saves
// bench/results/bf16-cpu-<date>.{json,md}. Run it as the other benchmarks:
//
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE node bench/bf16.mjs [--reps 7] [--batches 1,16,64]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels(); // before the addon loads
const { values } = parseArgs({ options: { reps: { type: 'string', default: '7' }, batches: { type: 'string', default: '1,16,64' } } });
const reps = Number(values.reps);
const batches = values.batches.split(',').map(Number);
const { Tensor, linear } = lib;
const cpu = lib.backendInfo().backends.cpu;

const LAYERS = [
  ['fc6', 9216, 4096],
  ['fc7', 4096, 4096],
  ['fc8', 4096, 1000],
];

function random(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    a[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 32 - 0.5;
  }
  return a;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const variants = [{ name: 'fp32', kernel: null }];
if (cpu.bf16Hardware) variants.push({ name: 'bf16 avx512_bf16', kernel: 'avx512_bf16' });
variants.push({ name: 'bf16 portable', kernel: 'portable' });

const rows = [];
for (const [layer, inF, outF] of LAYERS) {
  const w32 = Tensor.from(random(outF * inF, 1), [outF, inF]);
  const w16 = w32.bfloat16();
  const bias = Tensor.from(random(outF, 2), [outF]);
  for (const B of batches) {
    const x32 = Tensor.from(random(B * inF, 3 + B), [B, inF]);
    const x16 = x32.bfloat16();
    const dy32 = Tensor.from(random(B * outF, 5 + B), [B, outF]);
    const dy16 = dy32.bfloat16();
    const gw = Tensor.zeros([outF, inF]);
    const gb = Tensor.zeros([outF]);
    for (const pass of ['forward', 'backward']) {
      const times = variants.map(() => []);
      const run = async (v) => {
        if (v.kernel) lib.setBf16Kernel(v.kernel);
        const t0 = process.hrtime.bigint();
        let wait;
        if (pass === 'forward') {
          wait = v.kernel ? linear(x16, w16, bias) : linear(x32, w32, bias);
        } else {
          // gradInput, gradWeight and gradBias into the same float32 buffers each time
          const g = v.kernel
            ? lib.linearBackward(dy16, x16, w16, { gradWeight: gw, gradBias: gb })
            : lib.linearBackward(dy32, x32, w32, { gradWeight: gw, gradBias: gb });
          wait = g.gradInput;
        }
        await wait.data();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        wait.dispose();
        return ms;
      };
      for (const v of variants) await run(v); // warm-up (scratch buffers, pages)
      for (let r = 0; r < reps; r++) for (let i = 0; i < variants.length; i++) times[i].push(await run(variants[i]));
      const base = median(times[0]);
      const flop = (pass === 'forward' ? 2 : 4) * B * inF * outF;
      for (let i = 0; i < variants.length; i++) {
        const ms = median(times[i]);
        rows.push({ layer, pass, batch: B, in: inF, out: outF, variant: variants[i].name, ms, gflops: flop / ms / 1e6, vsFp32: base / ms });
      }
    }
    for (const t of [x32, x16, dy32, dy16, gw, gb]) t.dispose();
  }
  w32.dispose();
  w16.dispose();
  bias.dispose();
}
lib.setBf16Kernel('auto');

const lines = [
  '# bfloat16 vs float32 linear on the CPU (AlexNet fc shapes)',
  '',
  `${new Date().toISOString()} · ${os.cpus()[0]?.model} · ${cpu.threads} threads · ${cpu.blas} · AVX-512 BF16: ${cpu.bf16Hardware ? 'yes' : 'no'} · median of ${reps} interleaved reps`,
  '',
  '| layer | pass | batch | variant | ms | GFLOP/s | speed vs fp32 |',
  '|---|---|---:|---|---:|---:|---:|',
  ...rows.map((r) => `| ${r.layer} ${r.in}->${r.out} | ${r.pass} | ${r.batch} | ${r.variant} | ${r.ms.toFixed(2)} | ${r.gflops.toFixed(1)} | ${r.vsFp32.toFixed(2)}x |`),
];
const md = lines.join('\n');
console.log(md);
const dir = join(here, 'results');
mkdirSync(dir, { recursive: true });
const stamp = `bf16-cpu-${new Date().toISOString().slice(0, 10)}`;
writeFileSync(join(dir, `${stamp}.json`), JSON.stringify({ date: new Date().toISOString(), cpu, reps, rows }, null, 2) + '\n');
writeFileSync(join(dir, `${stamp}.md`), md + '\n');
console.log(`\nsaved bench/results/${stamp}.{json,md}`);
