#!/usr/bin/env node
// The linear layer's forward with its weight kept packed in panels (native/cpu/linear_packed.h)
// against the unpacked kernels it replaces (the skinny kernel up to 32 rows, the BLAS GEMM
// above), in one process, alternating: y = relu(x W^T + b) on the fully connected layers'
// shapes (fc6 9216 -> 4096, fc7 4096 -> 4096) at several batch sizes. Three weight matrices
// take turns, so each call reads its weights from memory as a whole pass does (fc6's 151 MB is
// out of cache by the time it is met again). The unpacked calls run with setWeightCache(false),
// which leaves the panels unused; the packed ones are made once before timing.
//
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE node bench/linear-packed.mjs [--rows 2,4,6,8,16,32,64,128,192,256] [--rounds 8]
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import os from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
lib.useDefaultOpenblasKernels();
const { Tensor, linear, synchronize, setWeightCache, cpuKernelsUsed } = lib;
const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '2,4,6,8,16,32,64,128,192,256' },
    rounds: { type: 'string', default: '8' },
  },
});
const rowsList = values.rows.split(',').map(Number);
const rounds = Number(values.rounds);
const layers = [
  ['fc6', 9216, 4096],
  ['fc7', 4096, 4096],
];

const random = (n, s) => Tensor.from(new Float32Array(n).map(() => (Math.random() - 0.5) * s), [n]);
console.log(`# linear forward: packed weight panels against the unpacked kernels\n`);
console.log(`${new Date().toISOString()} · ${os.cpus()[0]?.model ?? 'cpu'} · ${lib.backendInfo().backends.cpu.threads ?? ''} threads · load ${os.loadavg()[0].toFixed(2)}\n`);
console.log('| layer | rows | unpacked ms | packed ms | packed / unpacked speed | packed GFLOP/s | packed weight GB/s |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const [name, K, N] of layers) {
  const ws = [0, 1, 2].map(() => random(N * K, 0.02).reshape([N, K]));
  const b = random(N, 1);
  for (const M of rowsList) {
    const x = random(M * K, 1).reshape([M, K]);
    let turn = 0;
    const call = async () => {
      const t0 = performance.now();
      const y = linear(x, ws[turn++ % 3], b, { relu: true });
      await synchronize();
      const ms = performance.now() - t0;
      y.dispose();
      return ms;
    };
    setWeightCache(true);
    for (let i = 0; i < 6; i++) await call(); // every weight seen twice: panels made
    cpuKernelsUsed({ reset: true });
    const best = { unpacked: Infinity, packed: Infinity };
    for (let r = 0; r < rounds; r++)
      for (const mode of ['unpacked', 'packed']) {
        setWeightCache(mode === 'packed');
        for (let i = 0; i < 3; i++) best[mode] = Math.min(best[mode], await call());
      }
    setWeightCache(true);
    const used = cpuKernelsUsed().includes('linear.packed.avx512');
    const gflop = (2 * M * K * N) / 1e9;
    console.log(
      `| ${name} | ${M} | ${best.unpacked.toFixed(2)} | ${used ? best.packed.toFixed(2) : '(not taken)'} | ${used ? (best.unpacked / best.packed).toFixed(2) + 'x' : ''} | ${used ? ((gflop / best.packed) * 1e3).toFixed(0) : ''} | ${used ? ((N * K * 4) / best.packed / 1e6).toFixed(1) : ''} |`,
    );
    x.dispose();
  }
  ws.forEach((w) => w.dispose());
}
