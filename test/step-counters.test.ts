// Issue 14: after warm-up a training step asks the system for no memory and never blocks the host
// on the device. deviceCounters(device) counts allocator misses, blocking synchronisations and
// asynchronous read-backs where they happen (native/core/device.h DeviceCounters); this test reads
// them between the Trainer's step reports and asserts a warmed-up step's share: no allocation, no
// synchronisation, and exactly the documented reads (the step's loss and correct count, read
// asynchronously while the next step runs). A step that allocates a tensor of a size the
// allocator has not seen, or waits on the queue, fails it.
import { describe, expect, it } from 'vitest';
import {
  Conv2d, deviceCounters, Dropout, Flatten, Linear, MaxPool2d, mulberry32, ReLU, Sequential, SyntheticDataset, synchronize, Tensor, Trainer,
  type DeviceCounters,
} from '../src/index.js';
import { loadNative } from '../src/native.js';
import { describeCuda, itCuda } from './cuda-gate.js';
import { expectCode } from './helpers.js';
import { smallNet } from './small-net.mjs';

/** Reads per step the Trainer documents: the loss and the top-1 count of each step (data()). */
const READS_PER_STEP = 2;
const WARMUP = 6;
/** long enough for the host to queue two steps of the small network on a loaded machine */
const STALL_MS = 500;

interface StepDelta {
  step: number;
  allocations: number;
  synchronizations: number;
  reads: number;
}

/**
 * Trains `steps` steps of the small network on `device` inside one epoch and returns the
 * counters' change between consecutive step reports after WARMUP steps. Between two reports the
 * Trainer queues one step and reads one (one step is in flight), so each delta is one step's.
 * The last report is left out: the run's last step is waited for with nothing queued after it.
 */
async function stepDeltas(device: string, steps: number, seed: number): Promise<StepDelta[]> {
  const batchSize = 8;
  const trainer = new Trainer({
    model: smallNet({ Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout, mulberry32 }, seed, 3),
    config: { test: 'step counters' },
    train: new SyntheticDataset({ size: batchSize * (steps + 4), imageSize: 32, split: 'train', seed, numClasses: 3 }),
    batchSize,
    epochs: 1,
    maxSteps: steps,
    device,
    optimizer: { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 },
    workers: 0,
    seed,
    onProgress: (p) => {
      if (p.type !== 'step') return;
      seen.push({ step: p.step, ...deviceCounters(device) });
      // Warm-up at the worst case: storage is freed when the queue has run the work that uses
      // it, so how many blocks of a size are live at once depends on how far the device lags
      // behind the host. Stalling the queue here (behind step 3, already queued) lets the host
      // queue steps 4 and 5 entirely before either runs: the most the Trainer ever holds
      // (one step in flight beside the one being queued), so the cache reaches its high-water
      // mark now and not at some later step.
      if (p.step === 2) loadNative().debugStall(device, STALL_MS);
    },
  });
  const seen: (DeviceCounters & { step: number })[] = [];
  try {
    const summary = await trainer.run();
    expect(summary.stopped).toBe('completed');
    expect(summary.steps).toBe(steps);
  } finally {
    await trainer.close();
  }
  expect(seen.map((s) => s.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
  const deltas: StepDelta[] = [];
  for (let i = WARMUP; i < steps - 1; i++) {
    const a = seen[i - 1]!;
    const b = seen[i]!;
    deltas.push({ step: b.step, allocations: b.allocations - a.allocations, synchronizations: b.synchronizations - a.synchronizations, reads: b.reads - a.reads });
  }
  return deltas;
}

function expectQuietSteps(deltas: StepDelta[]): void {
  expect(deltas.length).toBeGreaterThanOrEqual(4);
  if (process.env.STEP_COUNTERS_DEBUG) console.log(JSON.stringify(deltas));
  // one assertion over all steps, so a failure shows which step did what
  expect(deltas).toEqual(deltas.map((d) => ({ step: d.step, allocations: 0, synchronizations: 0, reads: READS_PER_STEP })));
}

describe('deviceCounters', () => {
  it('counts an allocator miss, a blocking read and an asynchronous read on the CPU', async () => {
    const before = deviceCounters('cpu');
    expect(before.device).toBe('cpu');
    // a size no tensor of this process has had: the cache cannot hold a block of it
    const n = 1_000_003 + Math.floor(Math.random() * 100_000);
    const t = Tensor.zeros([n]);
    const afterAlloc = deviceCounters('cpu');
    expect(afterAlloc.allocations - before.allocations).toBe(1);
    t.dispose();
    await synchronize('cpu'); // the queued fill holds the storage until it has run
    const afterWait = deviceCounters('cpu');
    expect(afterWait.reads - afterAlloc.reads).toBe(1); // synchronize() is a read, not a blocking wait
    expect(afterWait.synchronizations).toBe(afterAlloc.synchronizations);
    const again = Tensor.zeros([n]); // the freed block comes back from the cache
    expect(deviceCounters('cpu').allocations).toBe(afterAlloc.allocations);
    again.dataSync();
    const afterSync = deviceCounters('cpu');
    expect(afterSync.synchronizations - afterWait.synchronizations).toBe(1);
    expect(afterSync.reads).toBe(afterWait.reads);
    await again.data();
    const afterRead = deviceCounters('cpu');
    expect(afterRead.reads - afterSync.reads).toBe(1);
    expect(afterRead.synchronizations).toBe(afterSync.synchronizations); // data() does not block
    again.dispose();
  });

  it('bad devices are coded errors', () => {
    expectCode(() => deviceCounters('gpu'), 'ERR_DEVICE', /unknown device 'gpu'/);
  });
});

describe('a warmed-up training step on the CPU', () => {
  it('allocates nothing, never synchronises, and reads only its loss and correct count', async () => {
    expectQuietSteps(await stepDeltas('cpu', 40, 5));
  }, 60_000);
});

describeCuda('a warmed-up training step on cuda:0', () => {
  itCuda('allocates nothing, never synchronises, and reads only its loss and correct count', async () => {
    expectQuietSteps(await stepDeltas('cuda:0', 12, 5));
  }, 120_000);
});
