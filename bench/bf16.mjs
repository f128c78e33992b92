#!/usr/bin/env node
// bfloat16 against float32 for AlexNet's convolutions (conv1-5 at 227x227, one image batch:
// --conv-batch, default 16) and fully connected layers (fc6 9216->4096, fc7
// 4096->4096, fc8 4096->1000) at batch 1, 16 and 64, in one process, forward and backward
// (linearBackward: gradInput, gradWeight, gradBias; the wait is on gradInput, the queue runs the
// call as one task, so all three are done; conv2dBackward likewise, without gradInput for conv1
// as in training): conv2d / linear on float32 inputs (the float32 convolution's default path)
// (sgemm, OpenBLAS or the portable GEMM) beside linear on bfloat16 inputs (float32 output) with
// the AMX and the AVX-512 BF16 kernels (where the CPU has them) and with the portable path (convert to float32,
// then sgemm). The variants run interleaved, rep by rep, so a noisy neighbour slows them alike;
// each figure is the median of the reps (each one call plus the wait for its result), and the
// ratio is float32's median over the variant's. Prints a table and saves
// bench/results/bf16-cpu-<date>.{json,md}. Run it as the other benchmarks:
//
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE node bench/bf16.mjs [--reps 7] [--batches 1,16,64]
//     [--conv-batch 16] [--only conv|fc]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median, random } from './util.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels(); // before the addon loads
const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '7' },
    batches: { type: 'string', default: '1,16,64' },
    'conv-batch': { type: 'string', default: '16' },
    only: { type: 'string', default: '' },
  },
});
const reps = Number(values.reps);
const batches = values.batches.split(',').map(Number);
const convBatch = Number(values['conv-batch']);
const { Tensor, linear, conv2d, conv2dBackward } = lib;
const cpu = lib.backendInfo().backends.cpu;

const LAYERS = [
  ['fc6', 9216, 4096],
  ['fc7', 4096, 4096],
  ['fc8', 4096, 1000],
];



const variants = [{ name: 'fp32', kernel: null }];
if (cpu.bf16AmxHardware) variants.push({ name: 'bf16 amx_bf16', kernel: 'amx_bf16' });
if (cpu.bf16Hardware) variants.push({ name: 'bf16 avx512_bf16', kernel: 'avx512_bf16' });
variants.push({ name: 'bf16 portable', kernel: 'portable' });

const CONVS = [
  { layer: 'conv1', in: [3, 227, 227], w: [96, 3, 11, 11], stride: 4, padding: 0, gradInput: false },
  { layer: 'conv2', in: [96, 27, 27], w: [256, 96, 5, 5], stride: 1, padding: 2, gradInput: true },
  { layer: 'conv3', in: [256, 13, 13], w: [384, 256, 3, 3], stride: 1, padding: 1, gradInput: true },
  { layer: 'conv4', in: [384, 13, 13], w: [384, 384, 3, 3], stride: 1, padding: 1, gradInput: true },
  { layer: 'conv5', in: [384, 13, 13], w: [256, 384, 3, 3], stride: 1, padding: 1, gradInput: true },
];

/** Times `variants` interleaved rep by rep; call(v) starts one call and returns the tensor to wait on. */
async function timeVariants(call) {
  const times = variants.map(() => []);
  const run = async (v) => {
    if (v.kernel) lib.setBf16Kernel(v.kernel);
    const t0 = process.hrtime.bigint();
    const wait = call(v);
    await wait.data();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    wait.dispose();
    return ms;
  };
  for (const v of variants) await run(v); // warm-up (scratch buffers, pages, packed weights)
  for (let r = 0; r < reps; r++) for (let i = 0; i < variants.length; i++) times[i].push(await run(variants[i]));
  return times.map(median);
}

const rows = [];
for (const c of values.only === 'fc' ? [] : CONVS) {
  const B = convBatch;
  const [C, H, W] = c.in;
  const [O, , kH, kW] = c.w;
  const Ho = Math.floor((H + 2 * c.padding - kH) / c.stride) + 1;
  const Wo = Math.floor((W + 2 * c.padding - kW) / c.stride) + 1;
  const x32 = Tensor.from(random(B * C * H * W, 11), [B, C, H, W]);
  const w32 = Tensor.from(random(O * C * kH * kW, 12).map((v) => v * 0.1), c.w);
  const bias = Tensor.from(random(O, 13), [O]);
  const dy32 = Tensor.from(random(B * O * Ho * Wo, 14), [B, O, Ho, Wo]);
  const [x16, w16, dy16] = [x32.bfloat16(), w32.bfloat16(), dy32.bfloat16()];
  const gw = Tensor.zeros(c.w);
  const gb = Tensor.zeros([O]);
  const opts = { stride: c.stride, padding: c.padding };
  const macs = B * O * Ho * Wo * C * kH * kW;
  for (const pass of ['forward', 'backward']) {
    const ms = await timeVariants((v) => {
      if (pass === 'forward') return v.kernel ? conv2d(x16, w16, bias, { ...opts, relu: true, outDtype: 'bfloat16' }) : conv2d(x32, w32, bias, { ...opts, relu: true });
      const o = { ...opts, gradWeight: gw, gradBias: gb, computeGradInput: c.gradInput };
      const g = v.kernel ? conv2dBackward(dy16, x16, w16, o) : conv2dBackward(dy32, x32, w32, o);
      // conv1 has no gradInput: wait on the float32 gradWeight (written by the same task), kept
      return g.gradInput ?? { data: () => g.gradWeight.data(), dispose() {} };
    });
    const flop = 2 * macs * (pass === 'forward' ? 1 : c.gradInput ? 2 : 1);
    for (let i = 0; i < variants.length; i++) {
      rows.push({ layer: c.layer, pass, batch: B, in: `${C}x${H}x${W}`, out: `${O}x${Ho}x${Wo}`, variant: variants[i].name, ms: ms[i], gflops: flop / ms[i] / 1e6, vsFp32: ms[0] / ms[i] });
    }
  }
  for (const t of [x32, w32, bias, dy32, x16, w16, dy16, gw, gb]) t.dispose();
}
for (const [layer, inF, outF] of values.only === 'conv' ? [] : LAYERS) {
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
  '# bfloat16 vs float32 conv2d and linear on the CPU (AlexNet shapes)',
  '',
  `${new Date().toISOString()} · ${os.cpus()[0]?.model} · ${cpu.threads} threads · ${cpu.blas} · AVX-512 BF16: ${cpu.bf16Hardware ? 'yes' : 'no'} · AMX-BF16: ${cpu.bf16AmxHardware ? 'yes' : 'no'} · median of ${reps} interleaved reps`,
  '',
  'conv: bfloat16 forward is bias + ReLU with a bfloat16 output (float32: bias + ReLU, float32 output); backward gives a float32 gradWeight and gradBias on both sides',
  '',
  '| layer | pass | batch | variant | ms | GFLOP/s | speed vs fp32 |',
  '|---|---|---:|---|---:|---:|---:|',
  ...rows.map((r) => `| ${r.layer} ${r.in}->${r.out} | ${r.pass} | ${r.batch} | ${r.variant} | ${r.ms.toFixed(2)} | ${r.gflops.toFixed(1)} | ${r.vsFp32.toFixed(2)}x |`),
];
const md = lines.join('\n');
console.log(md);
const dir = join(here, 'results');
mkdirSync(dir, { recursive: true });
const stamp = `bf16-${values.only ? `${values.only}-` : ''}cpu-${new Date().toISOString().slice(0, 10)}`;
writeFileSync(join(dir, `${stamp}.json`), JSON.stringify({ date: new Date().toISOString(), cpu, reps, rows }, null, 2) + '\n');
writeFileSync(join(dir, `${stamp}.md`), md + '\n');
console.log(`\nsaved bench/results/${stamp}.{json,md}`);
