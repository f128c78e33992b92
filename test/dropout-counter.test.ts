// The dropout stream position in device memory (issue 14: a captured CUDA graph replays its
// arguments, so the host offset would repeat the mask): dropout(x, {offset: shift, advance},
// counter) draws at counter + shift and adds `advance` to the counter after the draw. It must
// give the very masks the host offset gives (the BigInt stream of reference/dropout.ts, and the
// host-offset path) over several steps, past 2^32, for float32 and bfloat16, on the CPU and (when
// a GPU is lent) on cuda:0; and the Dropout layer's deviceStream must keep its host `offset` in
// step with the counter, with shardStream ranks, through replays (replayed()) and a loadState.
import { describe, expect, it } from 'vitest';
import { counterValue, Dropout, dropout, dropoutCounter, Tensor, writeDropoutCounter } from '../src/index.js';

import { describeCuda, itCuda } from './cuda-gate.js';
import { expectCode, f32, rng, uniform } from './helpers.js';
import { dropoutMaskRef } from './reference/dropout.js';

const randomSeed = (r: () => number) => Math.floor(r() * 2 ** 21) * 2 ** 32 + Math.floor(r() * 2 ** 32); // [0, 2^53)

const bits = (a: Float32Array | Uint16Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const sameBits = (a: Float32Array | Uint16Array, b: Float32Array | Uint16Array): boolean => Buffer.from(bits(a)).equals(Buffer.from(bits(b)));

/** Steps of the counter path against the host-offset path and the reference; the counter read back after each. */
async function checkCounterSteps(device: string, dtype: 'float32' | 'bfloat16'): Promise<void> {
  const r = rng();
  for (const [n, p, start, shift] of [[1, 0.5, 0, 0], [1037, 0.3, 2 ** 32 - 1500, 5], [40_003, 0.6, 2 ** 45 + 11, 3 * 40_003]] as const) {
    const seed = randomSeed(r);
    const advance = n * 4 + 1; // any amount: the host path below adds the same
    const counter = dropoutCounter(start, device);
    const xs = Tensor.from(f32(uniform(n, r, -2, 2)), [n], { device });
    const x = dtype === 'float32' ? xs : xs.to('bfloat16');
    for (let step = 0; step < 4; step++) {
      const at = start + step * advance;
      expect(counterValue(await counter.data())).toBe(at);
      const dev = dropout(x, { p, seed, offset: shift, advance }, counter);
      const host = dropout(x, { p, seed, offset: at + shift });
      const [dm, hm, dy, hy] = await Promise.all([dev.mask.data(), host.mask.data(), dev.output.data(), host.output.data()]);
      expect(sameBits(dm, hm), `mask ${dtype} n=${n} step ${step}`).toBe(true);
      expect(sameBits(dy as Float32Array | Uint16Array, hy as Float32Array | Uint16Array), `output ${dtype} n=${n} step ${step}`).toBe(true);
      if (n <= 1037) expect(Array.from(dm)).toEqual(Array.from(dropoutMaskRef(n, p, seed, at + shift)));
      for (const t of [dev.mask, dev.output, host.mask, host.output]) t.dispose();
    }
    expect(counterValue(await counter.data())).toBe(start + 4 * advance);
    // a write in queue order: the draw queued after it reads the new position
    writeDropoutCounter(counter, 2 ** 40 + 7);
    const after = dropout(x, { p, seed }, counter);
    expect(Array.from(await after.mask.data())).toEqual(Array.from(await dropout(x, { p, seed, offset: 2 ** 40 + 7 }).mask.data()));
    expect(counterValue(await counter.data())).toBe(2 ** 40 + 7); // no advance asked: unchanged
  }
}

/** Two Dropout layers from one seed, one drawing from a device counter: same masks, same offsets, the counter in step. */
async function checkLayer(device: string, rank: number, worldSize: number): Promise<void> {
  const r = rng();
  const seed = randomSeed(r);
  const host = new Dropout(0.4, { seed, offset: 123 });
  const dev = new Dropout(0.4, { seed, offset: 123 });
  dev.deviceStream = true;
  host.shardStream(rank, worldSize);
  dev.shardStream(rank, worldSize);
  const n = 777;
  const ones = Tensor.from(new Float32Array(n).fill(1), [3, 259], { device });
  const maskOf = async (d: Dropout) => {
    const y = d.forward(ones);
    const m = await y.data();
    d.backward(y, false);
    y.dispose();
    return m;
  };
  for (let step = 0; step < 3; step++) {
    const want = dropoutMaskRef(n, 0.4, seed, 123 + step * n * worldSize + rank * n);
    expect(Array.from(await maskOf(host)), `host step ${step}`).toEqual(Array.from(want));
    expect(Array.from(await maskOf(dev)), `device step ${step}`).toEqual(Array.from(want));
    expect(dev.offset).toBe(host.offset);
    expect(dev.lastAdvance).toBe(n * worldSize);
  }
  const counter = dev.counterTensor(device);
  expect(counterValue(await counter.data())).toBe(dev.offset);
  // a replayed step (the trainer's graph path) advanced the counter on the device: the mirror follows
  dropout(ones, { p: 0.4, seed, offset: rank * n, advance: n * worldSize }, counter).mask.dispose();
  dev.replayed(n * worldSize);
  host.offset += n * worldSize;
  expect(Array.from(await maskOf(dev))).toEqual(Array.from(await maskOf(host)));
  expect(counterValue(await counter.data())).toBe(dev.offset);
  // a capture's forward that never ran is undone
  const mark = dev.streamMark();
  dev.forward(ones).dispose();
  dev.clearCache();
  dev.streamRewind(mark);
  expect(dev.offset).toBe(host.offset);
  // a checkpoint's state loaded: the counter is rewritten before the next draw
  host.loadState({ seed, offset: 2 ** 36 + 5 });
  dev.loadState({ seed, offset: 2 ** 36 + 5 });
  expect(Array.from(await maskOf(dev))).toEqual(Array.from(await maskOf(host)));
  expect(counterValue(await dev.counterTensor(device).data())).toBe(host.offset);
  dev.releaseCounter();
  expect(counter.disposed).toBe(true);
}

describe('dropout with the stream position in device memory (CPU)', () => {
  it('float32: the same masks and outputs as the host offset, step after step, and the counter advances', () => checkCounterSteps('cpu', 'float32'), 60_000);
  it('bfloat16: the same', () => checkCounterSteps('cpu', 'bfloat16'), 60_000);

  it('refuses an advance without a counter, and a counter of the wrong dtype, shape or device', () => {
    const x = Tensor.from(new Float32Array([1, 2, 3]), [3]);
    expectCode(() => dropout(x, { p: 0.5, seed: 1, advance: 3 }), 'ERR_ARGUMENT', /'advance' needs a counter/);
    expectCode(() => dropout(x, { p: 0.5, seed: 1 }, Tensor.from(new Float32Array(2), [2]) as unknown as Tensor<'int32'>), 'ERR_DTYPE', /counter/);
    expectCode(() => dropout(x, { p: 0.5, seed: 1 }, Tensor.from(new Int32Array(3), [3], { dtype: 'int32' })), 'ERR_SHAPE', /counter/);
    expectCode(() => dropout(x, { p: 0.5, seed: 1, advance: -1 }, dropoutCounter(0)), 'ERR_ARGUMENT', /advance/);
    expectCode(() => dropoutCounter(2 ** 53), 'ERR_ARGUMENT', /2\^53/);
  });

  for (const [rank, worldSize] of [[0, 1], [1, 3], [2, 3]] as const) {
    it(`the Dropout layer's deviceStream draws the host stream's masks and keeps offset in step (rank ${rank} of ${worldSize})`, () => checkLayer('cpu', rank, worldSize), 60_000);
  }
});

describeCuda('dropout with the stream position in device memory (cuda:0)', () => {
  itCuda('float32: the same masks as the host offset, the counter advanced on the device', () => checkCounterSteps('cuda:0', 'float32'), 60_000);
  itCuda('bfloat16: the same', () => checkCounterSteps('cuda:0', 'bfloat16'), 60_000);
  itCuda('the Dropout layer keeps offset in step with the device counter (rank 1 of 3)', () => checkLayer('cuda:0', 1, 3), 60_000);
});
