// Collectives on CUDA tensors through NCCL (native/dist/nccl_comm.h), world size 1 (a world of
// one: this process is not launched by mpirun; the GPU machine has one GPU, and NCCL refuses two
// ranks on one device). Needs a GPU (test/cuda-gate.ts). With NCCL found: allReduce sum/avg and
// broadcast on cuda:0, in order with the CUDA operators around them on the same stream, equal the
// same work on the CPU (through MPI's path) and a float64 reference, on fresh random data; the
// wrong dtype is ERR_DTYPE. Without NCCL: ERR_DIST naming where it looked, at once.
// The Trainer's refusal of a GPU data-parallel run without NCCL needs no GPU.
import { describe, expect, it } from 'vitest';
import { axpy, Communicator, initDistributed, loadNative, scale, Tensor, Trainer } from '../src/index.js';
import { describeCuda, itCuda } from './cuda-gate.js';
import { expectCode, rng, uniform } from './helpers.js';

const DEV = 'cuda:0';
const nccl = loadNative().ncclLibrary();

describeCuda('NCCL collectives on cuda:0, world size 1', () => {
  if (!nccl.found) {
    itCuda('without NCCL: ERR_DIST naming where it looked, at the call', async () => {
      const comm = await initDistributed();
      const t = Tensor.from(new Float32Array([1, 2, 3]), [3], { device: DEV });
      expectCode(() => comm.allReduce(t), 'ERR_DIST', /allReduce: collectives on CUDA tensors go through NCCL, which cannot be loaded: NCCL 2 \(libnccl\.so\.2\) not (found|usable).*Looked in: /);
      expectCode(() => comm.broadcast(t, 0), 'ERR_DIST', /broadcast: .*NCCL/);
    });
    return;
  }

  itCuda('allReduce sum / avg and broadcast equal the CPU path and a float64 reference, in stream order', async () => {
    const comm = await initDistributed();
    expect(comm.worldSize).toBe(1);
    const r = rng(Date.now() >>> 0);
    const n = (1 << 18) + 5;
    const x = Float32Array.from(uniform(n, r, -3, 3));
    const k = Int32Array.from({ length: 1001 }, () => Math.floor(r() * 2e6) - 1e6);
    const run = async (device: string) => {
      const t = Tensor.from(x, [n], { device });
      const ones = Tensor.from(new Float32Array(n).fill(1), [n], { device });
      scale(t, 2); // queued before the collective on the same stream
      axpy(t, 1, ones);
      comm.allReduce(t, 'sum');
      const sum = await t.data();
      comm.allReduce(t, 'avg');
      scale(t, 0.5); // after it
      const avg = await t.data();
      const b = await comm.broadcast(Tensor.from(x, [n], { device }), 0).data();
      const bi = await comm.broadcast(Tensor.from(k, [k.length], { device, dtype: 'int32' }), 0).data();
      return { sum, avg, b, bi };
    };
    const gpu = await run(DEV);
    const cpu = await run('cpu');
    expect(gpu.sum).toEqual(cpu.sum);
    expect(gpu.avg).toEqual(cpu.avg);
    expect(gpu.b).toEqual(x);
    expect(Array.from(gpu.bi)).toEqual(Array.from(k));
    for (let i = 0; i < n; i += 997) {
      const ref = 2 * x[i]! + 1; // the sum over one rank, then the mean over one rank, halved
      expect(Math.abs(gpu.sum[i]! - ref)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(ref)));
      expect(Math.abs(gpu.avg[i]! - ref * 0.5)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(ref)));
    }
  });

  itCuda('allReduce of an int32 CUDA tensor: ERR_DTYPE at the call; an empty tensor is left alone', async () => {
    const comm = await initDistributed();
    expectCode(() => comm.allReduce(Tensor.from(new Int32Array([1, 2]), [2], { device: DEV, dtype: 'int32' }) as never), 'ERR_DTYPE', /allReduce/);
    const empty = Tensor.from(new Float32Array(0), [0], { device: DEV });
    expect(Array.from(await comm.allReduce(empty).data())).toEqual([]);
  });
});

describe('Trainer: data-parallel on a GPU without NCCL', () => {
  it.skipIf(nccl.found)('ERR_DIST naming what NCCL is missing, before anything is built (no GPU needed)', () => {
    const comm = new Communicator({ kind: 'mpi', rank: 0, worldSize: 2, localRank: 0, localSize: 2, localRankSource: 'single', threadLevel: '', library: '', version: '', reason: '' });
    expectCode(() => new Trainer({ model: {} as never, train: {} as never, device: DEV, communicator: comm }), 'ERR_DIST',
      /train: data-parallel training on 'cuda:0' needs NCCL: NCCL 2 \(libnccl\.so\.2\) not (found|usable)/);
  });
});
