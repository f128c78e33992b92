// memoryStats(device): the tensor storage a device's allocator holds (used), keeps (reserved)
// and the peaks of both, as PyTorch's torch.cuda.memory_allocated / max_memory_allocated; the
// GPU benchmark reports our peak beside PyTorch's from it.
import { describe, expect, it } from 'vitest';
import { memoryStats, synchronize, Tensor } from '../src/index.js';
import { cudaAvailable, describeCuda, itCuda } from './cuda-gate.js';
import { expectCode } from './helpers.js';

const MiB = 2 ** 20;

/** Allocates, frees and checks the counters on one device. */
async function checkCounters(device: string): Promise<void> {
  await synchronize(device);
  const before = memoryStats(device, { resetPeak: true });
  expect(before.device).toBe(device);
  expect(before.reservedBytes).toBeGreaterThanOrEqual(before.usedBytes);
  const n = (3 + Math.floor(Math.random() * 5)) * MiB; // a fresh size: not in the allocator's cache
  const t = Tensor.zeros([n / 4], { device });
  await synchronize(device);
  const held = memoryStats(device);
  expect(held.usedBytes - before.usedBytes).toBeGreaterThanOrEqual(n);
  expect(held.usedBytes - before.usedBytes).toBeLessThan(n + MiB); // rounding, not a second copy
  expect(held.peakUsedBytes).toBeGreaterThanOrEqual(held.usedBytes);
  expect(held.reservedBytes).toBeGreaterThanOrEqual(held.usedBytes);
  t.dispose();
  await synchronize(device);
  const after = memoryStats(device);
  expect(held.usedBytes - after.usedBytes).toBeGreaterThanOrEqual(n); // given back
  expect(after.peakUsedBytes).toBeGreaterThanOrEqual(held.usedBytes); // the peak stays
  const reset = memoryStats(device, { resetPeak: true });
  expect(reset.peakUsedBytes).toBe(after.peakUsedBytes); // read, then reset
  const now = memoryStats(device);
  expect(now.peakUsedBytes).toBe(now.usedBytes);
  expect(now.peakReservedBytes).toBe(now.reservedBytes);
}

describe('memoryStats', () => {
  it('CPU: a tensor adds its size to used and to the peak; dispose gives it back; a reset starts the peaks again', () => checkCounters('cpu'));

  it('bad arguments are coded errors', () => {
    expectCode(() => memoryStats('gpu'), 'ERR_DEVICE', /unknown device 'gpu'/);
    expectCode(() => memoryStats('cpu', { resetPeak: 'yes' as unknown as boolean }), 'ERR_ARGUMENT', /resetPeak/);
    if (!cudaAvailable) expect(() => memoryStats('cuda:0')).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_(CUDA_UNAVAILABLE|DEVICE|CUDA)$/) }));
  });
});

describeCuda('memoryStats on cuda:0', () => {
  itCuda('the same counters on the device allocator (memory pool or cudaMalloc cache)', () => checkCounters('cuda:0'));
});
