// The parameter store on CUDA: a custom network whose parameter sizes are not multiples of
// anything (so an unaligned layout would hand cuDNN and cuBLAS 4-byte-aligned weight and gradient
// pointers) trains one step on the GPU exactly as on the CPU, and its alignment gaps stay zero.
import { afterAll, beforeAll, expect } from 'vitest';
import * as A from '../src/index.js';
import { Tensor } from '../src/index.js';
import { Conv2d, Flatten, Linear, LocalResponseNorm, manualSeed, MaxPool2d, ParameterStore, ReLU, Sequential, type F32 } from '../src/nn/index.js';
import { SGD } from '../src/optim/index.js';
import { describeCuda, itCuda } from './cuda-gate.js';
import { expectClose, f32, rng, uniform } from './helpers.js';

/** Odd sizes everywhere: 3x5x5 input channels, 7 and 5 output channels, 13 and 3 features. */
function oddNet(): Sequential {
  return new Sequential(
    new Conv2d(3, 7, 3, { padding: 1 }),
    new ReLU(),
    new LocalResponseNorm(3, 1e-3, 0.75, 2),
    new MaxPool2d(3, 2),
    new Conv2d(7, 5, 3, { padding: 1, groups: 1 }),
    new ReLU(),
    new Flatten(),
    new Linear(5 * 4 * 4, 13),
    new ReLU(),
    new Linear(13, 3),
  );
}

describeCuda('ParameterStore on CUDA', () => {
  beforeAll(() => A.setTf32(false));
  afterAll(() => A.setTf32(true));

  itCuda('an odd-sized network: 256-byte aligned parameters, one SGD step equal to the CPU step', async () => {
    const seed = (Math.random() * 2 ** 32) >>> 0;
    const r = rng(seed);
    const x = f32(uniform(4 * 3 * 9 * 9, r));
    const y = Int32Array.from({ length: 4 }, () => Math.floor(r() * 3));
    const run = async (device: string) => {
      manualSeed(seed);
      const net = oddNet();
      const store = ParameterStore.create(net, { device });
      // the parameters are copied to the device by create(); the layout is device-independent
      for (const e of store.layout) expect((e.offset * 4) % 256, e.name).toBe(0);
      const sgd = new SGD(store, { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
      const params0 = await store.params.data();
      for (let step = 0; step < 2; step++) {
        store.zeroGrad();
        const logits = net.forward(Tensor.from(x, [4, 3, 9, 9], { device })) as F32;
        const { loss, gradLogits } = A.softmaxCrossEntropy(logits, Tensor.from(y, [4], { device, dtype: 'int32' }));
        net.backward(gradLogits, false)?.dispose();
        sgd.step();
        await loss.data();
      }
      const out = { params0, params: await store.params.data(), grads: await store.grads.data(), momentum: await store.momentum.data(), layout: store.layout, numel: store.numel };
      store.dispose();
      return out;
    };
    const cpu = await run('cpu');
    const gpu = await run('cuda:0');
    expect(gpu.numel).toBe(cpu.numel);
    expect(Array.from(gpu.params0)).toEqual(Array.from(cpu.params0)); // the same initial weights
    for (const k of ['params', 'grads', 'momentum'] as const) {
      const scale = Math.max(...Array.from(cpu[k], Math.abs));
      expectClose(gpu[k], cpu[k], { atol: 1e-4 * scale, rtol: 1e-3, label: `${k} after two steps` });
      const inGap = (i: number) => !cpu.layout.some((e) => i >= e.offset && i < e.offset + e.numel);
      expect(Array.from(gpu[k]).filter((_, i) => inGap(i)).every((v) => v === 0), `${k}: gaps stay zero`).toBe(true);
    }
  });
});
