// The training step as one CUDA graph (issue 14; TrainerOptions.cudaGraph, opt-in). On the CPU:
// the option runs the steps eagerly with one notice saying why, and changes nothing else (the
// losses equal a run without it, bit for bit); the graph functions refuse the CPU with a coded
// error. On cuda:0 (skipped without a GPU): the captured, replayed step trains as the eager one
// does (same weights within fp32 tolerance; bitwise with setDeterministic(true)), through a
// learning-rate schedule and warm-up changing lr between replays; a warmed-up replay allocates
// nothing and never synchronises; with an active Dropout the replays draw fresh masks (its stream
// position lives in device memory) and the run equals the eager one, host offsets included; in
// bf16, weights written between replays reach the next replay through their bfloat16 copy.
import { describe, expect, it } from 'vitest';
import {
  Conv2d, deviceCounters, Dropout, dropout, Flatten, GRAPH_WARMUP_STEPS, Linear, MaxPool2d, mulberry32, namedDropouts, ReLU, Sequential, setDeterministic, SyntheticDataset, Tensor, Trainer,
  type TrainProgress, type TrainSummary,
} from '../src/index.js';
import { loadNative } from '../src/native.js';

import { describeCuda, itCuda } from './cuda-gate.js';
import { expectClose, expectCode } from './helpers.js';
import { smallNet } from './small-net.mjs';

interface Run {
  summary: TrainSummary;
  losses: number[];
  notices: string[];
  weights: Float32Array;
  counters: { step: number; allocations: number; synchronizations: number }[];
  dropoutOffsets: number[];
}

/** Trains the small network (dropout p as given) for `steps` steps; returns what it saw. */
async function train(
  device: string,
  cudaGraph: boolean,
  { steps = 10, dropout = 0, seed = 3, schedule = true, stallAt = -1, precision = 'fp32' as 'fp32' | 'bf16', assignAt = -1 } = {},
): Promise<Run> {
  const losses: number[] = [];
  const notices: string[] = [];
  const counters: Run['counters'] = [];
  const trainer = new Trainer({
    model: smallNet({ Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout, mulberry32 }, seed, 3, dropout),
    config: { test: 'cuda graph' },
    train: new SyntheticDataset({ size: 8 * (steps + 2), imageSize: 32, split: 'train', seed, numClasses: 3 }),
    batchSize: 8,
    epochs: 1,
    maxSteps: steps,
    device,
    optimizer: { lr: 0.02, momentum: 0.9, weightDecay: 5e-4 },
    // lr changes between steps: the warm-up factor for 6 steps (the graph's first replays among them)
    ...(schedule ? { warmupSteps: 6 } : {}),
    workers: 0,
    seed,
    cudaGraph,
    precision,
    onProgress: (p: TrainProgress) => {
      if (p.type === 'notice') notices.push(p.message!);
      if (p.type === 'step') {
        losses.push(p.loss!);
        const c = deviceCounters(device);
        counters.push({ step: p.step, allocations: c.allocations, synchronizations: c.synchronizations });
        // the device lagging by a whole step: the staging and pool caches reach their high-water
        // mark here (as in test/step-counters.test.ts)
        if (p.step === stallAt) loadNative().debugStall(device, 500);
        // a write to the weights outside the step (as a loaded checkpoint or Parameter.assign
        // makes): the next step must train from the new values, graph or not
        if (p.step === assignAt) {
          const [, w] = trainer.model.namedParameters().find(([n]) => n.endsWith('weight'))!;
          const rng = mulberry32(99);
          w.assign(Float32Array.from({ length: w.numel }, () => (rng() - 0.5) * 0.2));
        }
      }
    },
  });
  try {
    const summary = await trainer.run();
    expect(summary.stopped).toBe('completed');
    const weights = await trainer.store.params.data();
    const dropoutOffsets = namedDropouts(trainer.model).map(([, d]) => d.offset);
    return { summary, losses, notices, weights, counters, dropoutOffsets };
  } finally {
    await trainer.close();
  }
}

describe('cudaGraph on the CPU', () => {
  it('runs eagerly with one notice saying why, and trains exactly as without the option', async () => {
    const withOption = await train('cpu', true, { steps: 6 });
    const without = await train('cpu', false, { steps: 6 });
    expect(withOption.notices).toHaveLength(1);
    expect(withOption.notices[0]).toMatch(/^cudaGraph: steps run eagerly: the device is 'cpu'/);
    expect(withOption.summary.cudaGraph).toEqual({ graphs: 0, replays: 0, fallback: expect.stringMatching(/CUDA graphs need a CUDA device/) });
    expect(without.summary.cudaGraph).toBeUndefined();
    expect(without.notices).toHaveLength(0);
    expect(withOption.losses).toEqual(without.losses);
    expect(Buffer.from(withOption.weights.buffer).equals(Buffer.from(without.weights.buffer))).toBe(true);
  }, 60_000);

  it('the graph functions refuse the CPU with a coded error', () => {
    const m = loadNative();
    expectCode(() => m.cudaGraphBegin('cpu'), 'ERR_DEVICE', /cudaGraphBegin: CUDA graphs need a CUDA device/);
    expectCode(() => m.cudaGraphEnd('cpu'), 'ERR_DEVICE', /cudaGraphEnd/);
    expectCode(() => m.cudaGraphLaunch('cpu', 1), 'ERR_DEVICE', /cudaGraphLaunch/);
    expectCode(() => m.cudaGraphBegin('gpu'), 'ERR_DEVICE', /unknown device 'gpu'/);
  });
});

describeCuda('cudaGraph on cuda:0', () => {
  itCuda('captured once and replayed, it trains as the eager step does (fp32 tolerance), through lr changes', async () => {
    const eager = await train('cuda:0', false, { steps: 12 });
    const graph = await train('cuda:0', true, { steps: 12 });
    expect(graph.notices).toEqual([]);
    expect(graph.summary.cudaGraph).toEqual({ graphs: 1, replays: 12 - GRAPH_WARMUP_STEPS });
    expectClose(graph.losses, eager.losses, { atol: 1e-4, rtol: 1e-3, label: 'losses' });
    expectClose(graph.weights, eager.weights, { atol: 1e-5, rtol: 1e-3, label: 'weights' });
  }, 120_000);

  itCuda('with setDeterministic(true) the replayed run equals the eager one bit for bit', async () => {
    setDeterministic(true);
    try {
      const eager = await train('cuda:0', false, { steps: 8 });
      const graph = await train('cuda:0', true, { steps: 8 });
      expect(graph.summary.cudaGraph?.replays).toBe(8 - GRAPH_WARMUP_STEPS);
      expect(graph.losses).toEqual(eager.losses);
      expect(Buffer.from(graph.weights.buffer).equals(Buffer.from(eager.weights.buffer))).toBe(true);
    } finally {
      setDeterministic(false);
    }
  }, 120_000);

  itCuda('a warmed-up replay allocates nothing and never synchronises', async () => {
    const run = await train('cuda:0', true, { steps: 16, schedule: false, stallAt: GRAPH_WARMUP_STEPS + 1 });
    expect(run.summary.cudaGraph?.graphs).toBe(1);
    // from four steps after the capture (past the stall) to the step before the last (the last
    // is waited for with nothing queued after it)
    const c = run.counters;
    const from = GRAPH_WARMUP_STEPS + 4;
    const deltas = c.slice(from, c.length - 1).map((b, i) => ({ step: b.step, allocations: b.allocations - c[from + i - 1]!.allocations, synchronizations: b.synchronizations - c[from + i - 1]!.synchronizations }));
    expect(deltas.length).toBeGreaterThanOrEqual(4);
    expect(deltas).toEqual(deltas.map((d) => ({ step: d.step, allocations: 0, synchronizations: 0 })));
  }, 120_000);

  itCuda('with an active Dropout, replays draw a fresh mask each (device-side stream position) and train as the eager run', async () => {
    const eager = await train('cuda:0', false, { steps: 10, dropout: 0.4 });
    const graph = await train('cuda:0', true, { steps: 10, dropout: 0.4 });
    expect(graph.notices).toEqual([]);
    expect(graph.summary.cudaGraph).toEqual({ graphs: 1, replays: 10 - GRAPH_WARMUP_STEPS });
    // a repeated mask would change the gradients of every replayed step: the weights would part
    expectClose(graph.losses, eager.losses, { atol: 1e-4, rtol: 1e-3, label: 'losses' });
    expectClose(graph.weights, eager.weights, { atol: 1e-5, rtol: 1e-3, label: 'weights' });
    // the host offsets (what checkpoints save) followed the replays exactly
    expect(graph.dropoutOffsets).toEqual(eager.dropoutOffsets);
    expect(graph.dropoutOffsets[0]).toBe(10 * 8 * 64);
  }, 120_000);

  itCuda('with setDeterministic(true) and dropout the replayed run equals the eager one bit for bit', async () => {
    setDeterministic(true);
    try {
      const eager = await train('cuda:0', false, { steps: 8, dropout: 0.4 });
      const graph = await train('cuda:0', true, { steps: 8, dropout: 0.4 });
      expect(graph.summary.cudaGraph?.replays).toBe(8 - GRAPH_WARMUP_STEPS);
      expect(graph.losses).toEqual(eager.losses);
      expect(Buffer.from(graph.weights.buffer).equals(Buffer.from(eager.weights.buffer))).toBe(true);
      expect(graph.dropoutOffsets).toEqual(eager.dropoutOffsets);
    } finally {
      setDeterministic(false);
    }
  }, 120_000);

  itCuda('precision bf16: weights written between replays reach the next replay (its bfloat16 copy is refreshed), bitwise as eager', async () => {
    setDeterministic(true);
    try {
      const at = GRAPH_WARMUP_STEPS + 3; // two replays in, then the write, then four more replays
      const eager = await train('cuda:0', false, { steps: 10, precision: 'bf16', assignAt: at });
      const graph = await train('cuda:0', true, { steps: 10, precision: 'bf16', assignAt: at });
      const untouched = await train('cuda:0', true, { steps: 10, precision: 'bf16' });
      expect(graph.summary.cudaGraph?.replays).toBe(10 - GRAPH_WARMUP_STEPS);
      expect(graph.losses).toEqual(eager.losses);
      expect(Buffer.from(graph.weights.buffer).equals(Buffer.from(eager.weights.buffer))).toBe(true);
      // the write did change the run (the comparison above could not pass by its absence)
      expect(untouched.losses.slice(at)).not.toEqual(eager.losses.slice(at));
    } finally {
      setDeterministic(false);
    }
  }, 120_000);

  itCuda('the captured dropout draws a different mask at every replay (the device counter advances)', async () => {
    // the Dropout layer inside a graph captured by hand, replayed three times: three masks, each
    // the host stream's mask at the offset the mirror says, and all different
    const d = new Dropout(0.5, { seed: 11, offset: 3 });
    d.deviceStream = true;
    const x = Tensor.from(new Float32Array(4096).fill(1), [4096], { device: 'cuda:0' });
    d.counterTensor('cuda:0');
    const mark = d.streamMark();
    const native = loadNative();
    native.cudaGraphBegin('cuda:0');
    let y: Tensor<'float32'> | null = null;
    let failure: unknown = null;
    try {
      y = d.forward(x);
    } catch (e) {
      failure = e;
    }
    const id = native.cudaGraphEnd('cuda:0');
    if (failure !== null || y === null) throw failure;
    const advance = d.lastAdvance;
    d.streamRewind(mark);
    const masks: Float32Array[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const at = d.offset;
        native.cudaGraphLaunch('cuda:0', id);
        d.replayed(advance);
        const m = await y.data();
        expect(Array.from(m)).toEqual(Array.from(await dropout(x, { p: 0.5, seed: 11, offset: at }).output.data()));
        masks.push(m);
      }
    } finally {
      native.cudaGraphDestroy('cuda:0', id);
      y.dispose();
      d.clearCache();
      d.releaseCounter();
    }
    expect(d.offset).toBe(3 + 3 * 4096);
    expect(masks[0]!.some((v, i) => v !== masks[1]![i])).toBe(true);
    expect(masks[1]!.some((v, i) => v !== masks[2]![i])).toBe(true);
  }, 60_000);
});
