#!/usr/bin/env node
// Per-operator benchmark driven from C++: every AlexNet layer shape timed in a native loop (no
// JavaScript between repetitions), beside the ceilings measured in the same run. On the CPU
// (native/cpu/bench.cc) a sgemm and a memcpy; on CUDA (native/cuda/bench.cu) the backend's
// cuDNN / cuBLAS / own-kernel operators timed with CUDA events on the device's stream, beside
// cuBLAS SGEMM with TF32 and strict FP32 and a device-to-device copy. Prints a table and saves
// bench/results/ops-<cpu|cuda|cuda-fp32>-<date>.{json,md} (and copies them to $OUT/bench when $OUT is set).
//
//   node bench/ops.mjs [--device cpu|cuda|cuda:N] [--batch 16 (cpu) / 128 (cuda)] [--reps 5] [--strict-fp32]
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// Every CUDA module loads when the runtime initialises, not at a kernel's first launch, so no
// lazy loading lands in a timed loop (the C++ loops also warm up before timing). Set before
// the addon loads: the driver reads it then.
process.env.CUDA_MODULE_LOADING ??= 'EAGER';
const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels(); // before the addon loads
const { values } = parseArgs({
  options: {
    device: { type: 'string', default: 'cpu' },
    batch: { type: 'string' },
    reps: { type: 'string', default: '5' },
    'strict-fp32': { type: 'boolean', default: false },
  },
});
const device = values.device;
const onCuda = device.startsWith('cuda');
const batch = Number(values.batch ?? (onCuda ? 128 : 16));
const reps = Number(values.reps);
const info = lib.backendInfo();
const cuda = info.backends.cuda;
if (onCuda) lib.setTf32(!values['strict-fp32']);

let rows;
try {
  rows = await lib.loadNative().benchOps({ batch, reps, device });
} catch (e) {
  if (e?.code !== 'ERR_CUDA_UNAVAILABLE') throw e;
  console.error(`bench/ops.mjs: ${e.message}${cuda.reason ? `\n${cuda.reason}` : ''}`);
  process.exit(2);
}

// CUDA versions arrive as 12040 (CUDA 12.4).
const cudaVersion = (v) => (v ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : 'unknown');
let title;
let machine;
if (onCuda) {
  const index = Number(device.split(':')[1] ?? 0);
  // backendInfo() names device 0 only
  const gpu = index === 0 && cuda.deviceName ? cuda.deviceName : `GPU ${index} of ${cuda.deviceCount ?? '?'}`;
  title = `# Operators on ${device === 'cuda' ? 'cuda:0' : device} (${gpu}), batch ${batch} (C++-driven, CUDA events)`;
  machine = [
    gpu,
    `driver CUDA ${cudaVersion(cuda.driverVersion)}`,
    `runtime ${cudaVersion(cuda.runtimeVersion)} (static)`,
    `cuDNN ${cuda.libraries?.cudnn.version || '?'}`,
    `cuBLAS ${cuda.libraries?.cublas.version || '?'}`,
    values['strict-fp32'] ? 'strict FP32' : 'TF32 tensor-op math',
    `${reps} reps, best kept, L2 flushed before each`,
    `CUDA_MODULE_LOADING=${process.env.CUDA_MODULE_LOADING}`,
  ].join(' · ');
} else {
  title = `# Operators on the CPU, batch ${batch} (C++-driven)`;
  machine = `${os.cpus()[0]?.model} · ${info.backends.cpu.threads} threads · ${info.backends.cpu.blas}`;
}
const lines = [
  title,
  '',
  `${new Date().toISOString()} · ${machine}`,
  '',
  '| operator | shape | ms | GFLOP/s | GB/s | of ceiling |',
  '|---|---|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${r.shape} | ${r.ms.toFixed(onCuda ? 3 : 2)} | ${r.gflops ? r.gflops.toFixed(1) : ''} | ${r.gbps ? r.gbps.toFixed(1) : ''} | ${(100 * r.fraction).toFixed(0)}% |`),
];
const md = lines.join('\n');
console.log(md);
const dir = join(here, 'results');
mkdirSync(dir, { recursive: true });
const stamp = `ops-${onCuda ? (values['strict-fp32'] ? 'cuda-fp32' : 'cuda') : 'cpu'}-${new Date().toISOString().slice(0, 10)}`;
const result = { date: new Date().toISOString(), device, batch, reps, ...(onCuda ? { tf32: !values['strict-fp32'], cuda } : { cpu: info.backends.cpu }), rows };
writeFileSync(join(dir, `${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(dir, `${stamp}.md`), md + '\n');
if (process.env.OUT) {
  mkdirSync(join(process.env.OUT, 'bench'), { recursive: true });
  for (const ext of ['json', 'md']) copyFileSync(join(dir, `${stamp}.${ext}`), join(process.env.OUT, 'bench', `${stamp}.${ext}`));
}
console.log(`\nsaved bench/results/${stamp}.{json,md}`);
