// The learning rate in device memory (issue 14): sgdStep reads lr from an int32 [2] tensor holding
// a double's bits when the step runs, so work queued once (a captured CUDA graph) follows every
// later write; the SGD class keeps its lr there and writes it only when it changed. Checked: one
// step against the float64 reference, the tensor path bit for bit against options.lr, queue
// order (a step queued before a write reads the old value), and an lr schedule changed mid-run
// through the SGD class against eager sgdStep calls with options.lr.
import { describe, expect, it } from 'vitest';
import { copy, deviceCounters, lrTensor, ParameterStore, sgdStep, SGD, synchronize, Tensor, writeLrTensor, Linear, Sequential, type SgdStepOptions } from '../src/index.js';
import { describeCuda, itCuda } from './cuda-gate.js';
import { expectClose, expectCode, f32, rng, uniform } from './helpers.js';
import { sgdStepRef } from './reference/sgd.js';

const N = 1000 + Math.floor(Math.random() * 1000);

/** Fresh random w, g, buffer (never zeros). */
function inputs(seed: number): { w: Float32Array; g: Float32Array; b: Float32Array } {
  const r = rng(seed);
  return { w: f32(uniform(N, r)), g: f32(uniform(N, r)), b: f32(uniform(N, r)) };
}

/** One sgdStep on `device` (lr from a tensor when `viaTensor`); returns w and the buffer. */
async function step(device: string, x: ReturnType<typeof inputs>, o: SgdStepOptions, viaTensor: boolean): Promise<{ w: Float32Array; b: Float32Array }> {
  const w = Tensor.from(x.w, [N], { device });
  const g = Tensor.from(x.g, [N], { device });
  const b = Tensor.from(x.b, [N], { device });
  // with the tensor, options.lr is a different number: the tensor must win
  const t = viaTensor ? lrTensor(o.lr, device) : null;
  try {
    sgdStep(w, g, b, viaTensor ? { ...o, lr: o.lr * 3 + 1 } : o, null, t);
    return { w: await w.data(), b: await b.data() };
  } finally {
    for (const u of [w, g, b, t]) u?.dispose();
  }
}

async function checkOneStep(device: string): Promise<void> {
  const seed = (Math.random() * 2 ** 32) >>> 0;
  const r = rng(seed ^ 0x5eed);
  for (const convention of ['pytorch', 'krizhevsky'] as const) {
    for (const firstStep of [true, false]) {
      const o: SgdStepOptions = { lr: 0.001 + r() * 0.2, momentum: 0.9, weightDecay: 5e-4, dampening: 0, convention, firstStep };
      const x = inputs(seed + (convention === 'pytorch' ? 0 : 7) + (firstStep ? 1 : 0));
      const viaTensor = await step(device, x, o, true);
      const viaOption = await step(device, x, o, false);
      // the same kernel with the same number: bit for bit
      expect(Buffer.from(viaTensor.w.buffer).equals(Buffer.from(viaOption.w.buffer)), `${convention} first=${firstStep}: w`).toBe(true);
      expect(Buffer.from(viaTensor.b.buffer).equals(Buffer.from(viaOption.b.buffer)), `${convention} first=${firstStep}: buffer`).toBe(true);
      const wRef = Float64Array.from(x.w);
      const bRef = Float64Array.from(x.b);
      sgdStepRef(wRef, x.g, bRef, o);
      expectClose(viaTensor.w, wRef, { atol: 1e-7, rtol: 1e-6, label: `${convention} first=${firstStep}: w vs float64 (seed ${seed})` });
      expectClose(viaTensor.b, bRef, { atol: 1e-7, rtol: 1e-6, label: `${convention} first=${firstStep}: buffer vs float64 (seed ${seed})` });
    }
  }
}

/** A step queued before writeLrTensor reads the old value; one queued after, the new one. */
async function checkQueueOrder(device: string): Promise<void> {
  const r = rng();
  const lr1 = 0.01 + r() * 0.1;
  const lr2 = 0.5 + r() * 0.1;
  const w0 = f32(uniform(N, r));
  const g0 = f32(uniform(N, r));
  const w = Tensor.from(w0, [N], { device });
  const g = Tensor.from(g0, [N], { device });
  const t = lrTensor(lr1, device);
  try {
    sgdStep(w, g, null, { lr: 0 }, null, t);
    writeLrTensor(t, lr2);
    sgdStep(w, g, null, { lr: 0 }, null, t);
    const ref = Float64Array.from(w0);
    sgdStepRef(ref, g0, null, { lr: lr1 });
    sgdStepRef(ref, g0, null, { lr: lr2 });
    expectClose(await w.data(), ref, { atol: 1e-7, rtol: 1e-6, label: 'w after lr1 then lr2' });
    const bits = await t.data();
    expect(new Float64Array(bits.buffer)[0]).toBe(lr2); // exactly the double
  } finally {
    for (const u of [w, g, t]) u.dispose();
  }
}

/**
 * An lr schedule changed between steps through the SGD class (lr in device memory) against the
 * same steps as eager sgdStep calls with options.lr: identical weights and momentum.
 */
async function checkSchedule(device: string): Promise<void> {
  const r = rng();
  const lrs = [0.05, 0.05, 0.02, 0.02, 0.02, 0.004, 0.1].map((v) => v * (0.5 + r()));
  const make = () => {
    const rr = rng(1234);
    const model = new Sequential(new Linear(16, 8, { rng: rr }));
    return ParameterStore.create(model, { device });
  };
  const a = make();
  const b = make();
  const sgd = new SGD(a, { lr: lrs[0]!, momentum: 0.9, weightDecay: 5e-4 });
  try {
    const n = a.params.numel;
    for (let s = 0; s < lrs.length; s++) {
      const grad = f32(uniform(n, r));
      for (const st of [a, b]) {
        const gt = Tensor.from(grad, [n], { device });
        copy(st.grads, gt);
        gt.dispose();
      }
      sgd.lr = lrs[s]!;
      sgd.step();
      sgdStep(b.params, b.grads, b.momentum, { lr: lrs[s]!, momentum: 0.9, weightDecay: 5e-4, firstStep: s === 0 });
    }
    const [pa, pb, ma, mb] = await Promise.all([a.params.data(), b.params.data(), a.momentum.data(), b.momentum.data()]);
    expect(Buffer.from(pa.buffer).equals(Buffer.from(pb.buffer)), 'weights').toBe(true);
    expect(Buffer.from(ma.buffer).equals(Buffer.from(mb.buffer)), 'momentum').toBe(true);
    const lrNow = new Float64Array((await sgd.lrTensor.data()).buffer)[0];
    expect(lrNow).toBe(lrs[lrs.length - 1]);
  } finally {
    sgd.dispose();
    a.dispose();
    b.dispose();
  }
}

describe('sgdStep with the learning rate in device memory', () => {
  it('one step equals the float64 reference and, bit for bit, the step with options.lr (both conventions, first and later steps)', () => checkOneStep('cpu'));

  it('reads the value in queue order: a step queued before a write uses the old lr', () => checkQueueOrder('cpu'));

  it('SGD: an lr schedule changed mid-run gives the same weights as eager steps with options.lr', () => checkSchedule('cpu'));

  it('SGD writes the tensor only when lr changed (no allocation once warm)', async () => {
    const store = ParameterStore.create(new Sequential(new Linear(4, 3, { rng: rng(3) })), { device: 'cpu' });
    const sgd = new SGD(store, { lr: 0.1 });
    try {
      sgd.step(); // makes the tensor
      sgd.lr = 0.2;
      sgd.step(); // the first write: its staging block may be new
      // its staging tensor goes back to the cache once the queued copy has read it
      await synchronize('cpu');
      const before = deviceCounters('cpu');
      sgd.step();
      sgd.step();
      sgd.lr = 0.3;
      sgd.step();
      expect(deviceCounters('cpu').allocations).toBe(before.allocations);
    } finally {
      sgd.dispose();
      store.dispose();
    }
  });

  it('a bad lr tensor is a coded error', () => {
    const w = Tensor.zeros([4]);
    const g = Tensor.zeros([4]);
    try {
      expectCode(() => sgdStep(w, g, null, { lr: 0.1 }, null, Tensor.zeros([2]) as unknown as Tensor<'int32'>), 'ERR_DTYPE', /sgdStep: .*lr/);
      expectCode(() => sgdStep(w, g, null, { lr: 0.1 }, null, Tensor.zeros<'int32'>([3], { dtype: 'int32' })), 'ERR_SHAPE', /sgdStep: .*lr/);
      expectCode(() => sgdStep(w, g, null, { lr: 0.1 }, null, 'x' as unknown as Tensor<'int32'>), 'ERR_ARGUMENT', /sgdStep: expected lr to be a Tensor/);
    } finally {
      w.dispose();
      g.dispose();
    }
  });
});

describeCuda('sgdStep with the learning rate in device memory on cuda:0', () => {
  itCuda('one step equals the float64 reference and the step with options.lr bit for bit', () => checkOneStep('cuda:0'));
  itCuda('reads the value in stream order', () => checkQueueOrder('cuda:0'));
  itCuda('SGD: an lr schedule changed mid-run gives the same weights as eager steps', () => checkSchedule('cuda:0'));
});
