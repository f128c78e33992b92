import { describe, expect, it } from 'vitest';
import { fill, loadNative, softmaxCrossEntropy, Tensor } from '../src/index.js';
import type { NativeTensor } from '../src/native.js';
import {
  Conv2d,
  Dropout,
  dropoutState,
  Flatten,
  Linear,
  loadDropoutState,
  LocalResponseNorm,
  manualSeed,
  MaxPool2d,
  Module,
  PARAMETER_ALIGN_ELEMENTS,
  ParameterStore,
  ReLU,
  Sequential,
  type F32,
} from '../src/nn/index.js';
import { SGD } from '../src/optim/index.js';
import { expectClose, expectCode, f32, rng, sampleIndices, uniform } from './helpers.js';

const seedOf = () => (Math.random() * 2 ** 32) >>> 0;

/** Conv2d -> ReLU -> MaxPool -> Flatten -> Linear on [B, 2, 6, 6] inputs, 4 classes. */
function smallNet(): Sequential {
  return new Sequential(new Conv2d(2, 3, 3, { padding: 1 }), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(27, 4));
}
/** Grouped conv, LRN and a second Linear: [B, 4, 5, 5] inputs, 3 classes. */
function lrnNet(): Sequential {
  return new Sequential(
    new Conv2d(4, 4, 3, { groups: 2 }),
    new ReLU(),
    new LocalResponseNorm(3, 0.5, 0.75, 1),
    new Flatten(),
    new Linear(36, 5),
    new ReLU(),
    new Linear(5, 3),
  );
}

async function lossOf(net: Module, x: F32, labels: Tensor<'int32'>): Promise<number> {
  const logits = net.forward(x);
  const { loss, gradLogits } = softmaxCrossEntropy(logits, labels);
  const v = (await loss.data())[0]!;
  logits.dispose();
  loss.dispose();
  gradLogits.dispose();
  return v;
}

describe('Module', () => {
  it('walks children in order and names parameters like PyTorch', () => {
    const net = new Sequential(new Sequential(new Conv2d(1, 2, 3), new ReLU()), new Flatten(), new Linear(8, 3, { bias: false }));
    expect(net.namedParameters().map(([n, p]) => [n, p.shape])).toEqual([
      ['0.0.weight', [2, 1, 3, 3]],
      ['0.0.bias', [2]],
      ['2.weight', [3, 8]],
    ]);
    expect(net.namedModules().map(([n]) => n)).toEqual(['', '0', '0.0', '0.1', '1', '2']);
    expect(net.numParameters()).toBe(18 + 2 + 24);
    expect([...net.stateDict().keys()]).toEqual(['0.0.weight', '0.0.bias', '2.weight']);
    net.eval();
    expect(net.namedModules().every(([, m]) => !m.training)).toBe(true);
    net.train();
    expect(net.namedModules().every(([, m]) => m.training)).toBe(true);
    expect(net.toString()).toMatch(/Conv2d\(1, 2, kernel=\[3, 3\]/);
    expectCode(() => net.addModule('0', new ReLU()), 'ERR_ARGUMENT', /already registered/);
    expectCode(() => net.addModule('a.b', new ReLU()), 'ERR_ARGUMENT', /without '\.'/);
    net.dispose();
  });

  it('Sequential fuses Conv2d + ReLU into one pass with the same outputs and gradients as the layers one by one', async () => {
    const r = rng(seedOf());
    const net = new Sequential(new Conv2d(3, 5, 3, { padding: 1 }), new ReLU(), new Flatten(), new Linear(5 * 6 * 6, 4));
    const [conv, relu, flat, lin] = [0, 1, 2, 3].map((i) => net.at(i)) as [Conv2d, ReLU, Flatten, Linear];
    const x = Tensor.from(f32(uniform(2 * 3 * 6 * 6, r)), [2, 3, 6, 6]);
    const g = Tensor.from(f32(uniform(2 * 4, r)), [2, 4]);
    // layer by layer (unfused), keeping the gradients
    const h1 = conv.forward(x);
    const h2 = relu.forward(h1);
    const out1 = await lin.forward(flat.forward(h2)).data();
    const gx1 = await conv.backward(relu.backward(flat.backward(lin.backward(g)!)!)!)!.data();
    const gw1 = Float32Array.from(await conv.weight.grad.data());
    const gb1 = Float32Array.from(await conv.bias!.grad.data());
    expect(h2 === h1).toBe(false);
    net.zeroGrad();
    // fused by Sequential: the same numbers
    const out2 = await net.forward(x).data();
    const gx2 = await net.backward(g)!.data();
    expectClose(out2, out1, { atol: 1e-6, rtol: 1e-6, label: 'fused forward' });
    expectClose(gx2, gx1, { atol: 1e-6, rtol: 1e-6, label: 'fused input gradient' });
    expectClose(await conv.weight.grad.data(), gw1, { atol: 1e-6, rtol: 1e-6, label: 'fused weight gradient' });
    expectClose(await conv.bias!.grad.data(), gb1, { atol: 1e-6, rtol: 1e-6, label: 'fused bias gradient' });
    // some pre-activations were negative, so the ReLU mattered
    expect((await h1.data()).some((v) => v < 0)).toBe(true);
    net.eval();
    expectClose(await net.forward(x).data(), out1, { atol: 1e-6, rtol: 1e-6, label: 'fused forward in eval mode' });
    net.dispose();
  });

  it('PyTorch default init: U(+-1/sqrt(fanIn)) for weight and bias, reproducible with manualSeed', async () => {
    const s = seedOf();
    manualSeed(s);
    const a = new Conv2d(6, 8, 3, { groups: 2 });
    manualSeed(s);
    const b = new Conv2d(6, 8, 3, { groups: 2 });
    const wa = await a.weight.data.data();
    expect(Array.from(await b.weight.data.data())).toEqual(Array.from(wa));
    const bound = 1 / Math.sqrt(3 * 9); // fanIn = in/groups * kh * kw
    expect(Math.max(...wa.map(Math.abs))).toBeLessThanOrEqual(Math.fround(bound));
    expect(Math.max(...wa.map(Math.abs))).toBeGreaterThan(0.8 * bound);
    const ba = await a.bias!.data.data();
    expect(Math.max(...ba.map(Math.abs))).toBeLessThanOrEqual(Math.fround(bound));
    const c = new Conv2d(6, 8, 3, { groups: 2 }); // the generator moved on
    expect(Array.from(await c.weight.data.data())).not.toEqual(Array.from(wa));
    expect(a.weight.shape).toEqual([8, 3, 3, 3]);
    expectCode(() => new Conv2d(6, 8, 3, { groups: 4 }), 'ERR_ARGUMENT', /divisible by groups/);
    for (const m of [a, b, c]) m.dispose();
  });

  it('a layer forward matches the functional result and backward without forward is a clear error', async () => {
    const r = rng(seedOf());
    const lin = new Linear(5, 3);
    const x = Tensor.from(f32(uniform(10, r)), [2, 5]);
    const y = await lin.forward(x).data();
    const w = await lin.weight.data.data();
    const b = await lin.bias!.data.data();
    const xs = await x.data();
    const want: number[] = [];
    for (let n = 0; n < 2; n++) for (let o = 0; o < 3; o++) {
      let s = b[o]!;
      for (let i = 0; i < 5; i++) s += xs[n * 5 + i]! * w[o * 5 + i]!;
      want.push(s);
    }
    expectClose(y, want, { label: 'Linear forward' });
    lin.backward(Tensor.zeros([2, 3]));
    expectCode(() => lin.backward(Tensor.zeros([2, 3])), 'ERR_ARGUMENT', /call forward in training mode/);
    lin.eval().forward(x);
    expectCode(() => lin.backward(Tensor.zeros([2, 3])), 'ERR_ARGUMENT', /training mode/);
  });
});

describe('stateDict / loadStateDict', () => {
  it('round trip gives identical outputs; missing, unexpected and misshapen entries are typed errors', async () => {
    const r = rng(seedOf());
    const a = smallNet().eval();
    const b = smallNet().eval();
    const x = Tensor.from(f32(uniform(2 * 2 * 36, r)), [2, 2, 6, 6]);
    const ya = await a.forward(x).data();
    expect(Array.from(await b.forward(x).data())).not.toEqual(Array.from(ya));
    const res = b.loadStateDict(a.stateDict());
    expect(res).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(Array.from(await b.forward(x).data())).toEqual(Array.from(ya));
    // a record works too, and the values were copied (not aliased)
    const rec = Object.fromEntries(a.stateDict());
    b.loadStateDict(rec);
    expect(b.stateDict().get('0.weight')).not.toBe(a.stateDict().get('0.weight'));

    const sd = a.stateDict();
    sd.delete('4.bias');
    sd.set('5.weight', Tensor.zeros([1]));
    expectCode(() => b.loadStateDict(sd), 'ERR_ARGUMENT', /missing keys \(1\): 4\.bias; unexpected keys \(1\): 5\.weight/);
    const partial = b.loadStateDict(sd, { strict: false });
    expect(partial).toEqual({ missingKeys: ['4.bias'], unexpectedKeys: ['5.weight'] });

    const bad = a.stateDict();
    bad.set('0.weight', Tensor.zeros([3, 2, 3, 2]));
    bad.set('4.bias', Tensor.zeros([5]));
    const before = await b.stateDict().get('4.weight')!.data();
    expectCode(() => b.loadStateDict(bad), 'ERR_SHAPE', /0\.weight: expected \[3, 2, 3, 3\], got \[3, 2, 3, 2\]; 4\.bias: expected \[4\], got \[5\]/);
    // nothing was copied when a shape was wrong
    expect(Array.from(await b.stateDict().get('4.weight')!.data())).toEqual(Array.from(before));
    const wrongType = a.stateDict() as Map<string, unknown>;
    wrongType.set('0.bias', [1, 2, 3]);
    expectCode(() => b.loadStateDict(wrongType as Map<string, Tensor>), 'ERR_ARGUMENT', /'0\.bias' to be a Tensor/);
    expectCode(() => b.loadStateDict(null as unknown as Map<string, Tensor>), 'ERR_ARGUMENT');
  });
});

describe('ParameterStore', () => {
  it('lays every parameter out in one buffer; params are views; zeroGrad is one fill', async () => {
    const r = rng(seedOf());
    const net = smallNet();
    const before = await Promise.all(net.parameters().map((p) => p.data.data()));
    const store = ParameterStore.create(net);
    expect(store.layout.map((e) => [e.name, e.offset, e.shape])).toEqual([
      ['0.weight', 0, [3, 2, 3, 3]],
      ['0.bias', 64, [3]],
      ['4.weight', 128, [4, 27]],
      ['4.bias', 256, [4]],
    ]);
    // every parameter starts on a 256-byte boundary; the gaps are zeros
    for (const e of store.layout) expect((e.offset * 4) % 256).toBe(0);
    expect(PARAMETER_ALIGN_ELEMENTS * 4).toBe(256);
    expect(store.numel).toBe(260);
    expect(store.parameterCount).toBe(169);
    expect(store.params.shape).toEqual([260]);
    // initial values were copied in
    const flat = await store.params.data();
    net.parameters().forEach((p, i) => {
      const e = store.layout[i]!;
      expect(Array.from(flat.subarray(e.offset, e.offset + e.numel))).toEqual(Array.from(before[i]!));
    });
    // writing the flat buffer changes param.data (and the grads buffer, param.grad)
    const gaps = (a: Float32Array) => a.filter((_, i) => !store.layout.some((e) => i >= e.offset && i < e.offset + e.numel));
    expect(gaps(flat).length).toBe(260 - 169);
    expect(gaps(flat).every((v) => v === 0)).toBe(true);
    const vals = f32(uniform(260, r));
    const src = Tensor.from(vals, [260]);
    loadNative().copy(store.params.handle, src.handle);
    expect(Array.from(await net.parameters()[2]!.data.data())).toEqual(Array.from(vals.subarray(128, 236)));
    fill(store.grads, 3);
    for (const p of net.parameters()) expect(Math.min(...(await p.grad.data()))).toBe(3);
    // and a write through a parameter shows in the flat buffer
    fill(net.parameters()[1]!.data, -7);
    expect(Array.from((await store.params.data()).subarray(64, 67))).toEqual([-7, -7, -7]);
    // zeroGrad: exactly one native fill over the whole grads buffer
    const native = loadNative();
    const orig = native.fill;
    let calls = 0;
    native.fill = ((...args: Parameters<typeof orig>) => {
      calls++;
      expect(args[0].shape).toEqual([260]);
      return orig(...args);
    }) as typeof orig;
    try {
      store.zeroGrad();
    } finally {
      native.fill = orig;
    }
    expect(calls).toBe(1);
    expect(Array.from(await store.grads.data()).every((v) => v === 0)).toBe(true);
    expect(Array.from(await store.momentum.data()).every((v) => v === 0)).toBe(true);
    expect(store.entry('4.bias').offset).toBe(256);
    expectCode(() => store.entry('nope'), 'ERR_ARGUMENT');
    store.dispose();
    store.dispose();
    expectCode(() => store.zeroGrad(), 'ERR_DISPOSED');
  });
});

describe('ParameterStore alignment gaps', () => {
  it('stay zero through training steps with weight decay, and never reach a checkpoint-sized read', async () => {
    manualSeed(seedOf());
    const net = smallNet();
    const store = ParameterStore.create(net);
    const sgd = new SGD(store, { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
    const r = rng(seedOf());
    for (let step = 0; step < 3; step++) {
      store.zeroGrad();
      const x = Tensor.from(f32(uniform(3 * 2 * 6 * 6, r)), [3, 2, 6, 6]);
      const logits = net.forward(x) as F32;
      const { gradLogits } = softmaxCrossEntropy(logits, Tensor.from([0, 1, 3], [3], { dtype: 'int32' }));
      net.backward(gradLogits, false)?.dispose();
      sgd.step();
    }
    const inGap = (i: number) => !store.layout.some((e) => i >= e.offset && i < e.offset + e.numel);
    for (const buf of [await store.params.data(), await store.grads.data(), await store.momentum.data()]) {
      const gapValues = Array.from(buf).filter((_, i) => inGap(i));
      expect(gapValues.length).toBe(store.numel - store.parameterCount);
      expect(gapValues.every((v) => v === 0)).toBe(true);
    }
    // the parameters themselves did move
    expect(Array.from(await store.grads.data()).some((v) => v !== 0)).toBe(true);
    store.dispose();
  });
});

describe('backward against finite differences', () => {
  for (const [name, make, inShape, classes] of [
    ['Conv2d-ReLU-MaxPool-Flatten-Linear', smallNet, [3, 2, 6, 6], 4],
    ['grouped Conv2d-ReLU-LRN-Flatten-Linear-ReLU-Linear', lrnNet, [2, 4, 5, 5], 3],
  ] as const) {
    it(`${name}: parameter and input gradients, accumulation (2x) and zeroGrad`, async () => {
      const s = seedOf();
      const r = rng(s);
      manualSeed(s);
      const net = make();
      const store = ParameterStore.create(net);
      const numel = inShape.reduce((a, b) => a * b, 1);
      const xHost = f32(uniform(numel, r));
      const x = Tensor.from(xHost, inShape);
      const labels = Tensor.from(Int32Array.from({ length: inShape[0] }, () => Math.floor(r() * classes)), [inShape[0]]);

      const step = () => {
        const logits = net.train().forward(x);
        const { loss, gradLogits } = softmaxCrossEntropy(logits, labels);
        const gx = net.backward(gradLogits);
        logits.dispose();
        loss.dispose();
        gradLogits.dispose();
        return gx!;
      };
      store.zeroGrad();
      const gxT = step();
      const gx = await gxT.data();
      expect(gxT.shape).toEqual(inShape);
      const g1 = await store.grads.data();
      expect(g1.some((v) => v !== 0)).toBe(true);

      // Central finite differences of the model's own (float32) loss at sampled parameters and
      // input elements. ReLU and max pooling have kinks: a sample whose one-sided differences
      // disagree has a kink within h and is skipped (most samples must remain).
      net.eval();
      const h = 2e-3;
      const pHost = await store.params.data();
      const setParams = () => {
        const t = Tensor.from(pHost, [store.numel]);
        loadNative().copy(store.params.handle, t.handle);
        t.dispose();
      };
      const analytic: number[] = [];
      const numeric: number[] = [];
      let total = 0;
      const check = async (g: number, f: (v: number) => Promise<number>, v: number) => {
        total++;
        const f0 = await f(v);
        const fp = await f(v + h);
        const fm = await f(v - h);
        const fp2 = await f(v + h / 2);
        const fm2 = await f(v - h / 2);
        await f(v);
        const near = (a: number, b: number) => Math.abs(a - b) <= 1e-3 + 0.02 * Math.abs(a + b) / 2;
        // a kink within h: the one-sided slopes disagree, or the central differences at h and
        // h/2 do (two kinks, one each side, can leave the one-sided slopes alike)
        if (!near((fp - f0) / h, (f0 - fm) / h)) return;
        const central = (fp - fm) / (2 * h);
        const half = (fp2 - fm2) / h;
        if (!near(central, half)) return;
        analytic.push(g);
        numeric.push(half);
      };
      for (const e of store.layout) {
        for (const j of sampleIndices(e.numel, 6, r)) {
          const i = e.offset + j;
          await check(g1[i]!, (val) => {
            pHost[i] = val;
            setParams();
            return lossOf(net, x, labels);
          }, pHost[i]!);
        }
      }
      for (const i of sampleIndices(numel, 8, r)) {
        await check(gx[i]!, (val) => {
          xHost[i] = val;
          return lossOf(net, Tensor.from(xHost, inShape), labels);
        }, xHost[i]!);
      }
      expect(analytic.length, `samples without a kink within h (seed ${s})`).toBeGreaterThanOrEqual(0.75 * total);
      expectClose(analytic, numeric, { rtol: 2e-2, atol: 1e-3, label: `${name} gradients (seed ${s})` });

      // a second backward adds the same gradients again
      step();
      const g2 = await store.grads.data();
      expectClose(g2, Array.from(g1, (v) => 2 * v), { rtol: 1e-5, atol: 1e-6, label: 'accumulated gradients' });
      store.zeroGrad();
      expect((await store.grads.data()).every((v) => v === 0)).toBe(true);

      // the first layer can skip its input gradient
      const logits = net.train().forward(x);
      const { gradLogits } = softmaxCrossEntropy(logits, labels);
      expect(net.backward(gradLogits, false)).toBeNull();
      expectClose(await store.grads.data(), g1, { rtol: 1e-5, atol: 1e-6, label: 'gradients without input gradient' });
      store.dispose();
    });
  }
});

describe('Dropout', () => {
  it('identity in eval; fresh masks per call in training, reproducible from (seed, offset)', async () => {
    const r = rng(seedOf());
    const seed = seedOf();
    const x = Tensor.from(f32(uniform(4000, r, 0.5, 1.5)), [4, 1000]);
    const d = new Dropout(0.4, { seed });
    d.eval();
    expect(d.forward(x)).toBe(x);
    d.train();
    const start = d.state();
    expect(start).toEqual({ seed, offset: 0 });
    const y1 = await d.forward(x).data();
    expect(d.offset).toBe(4000);
    const y2 = await d.forward(x).data();
    expect(d.offset).toBe(8000);
    const xs = await x.data();
    const kept1 = y1.map((v) => (v !== 0 ? 1 : 0));
    const kept2 = y2.map((v) => (v !== 0 ? 1 : 0));
    const frac = kept1.reduce((a, b) => a + b, 0) / 4000;
    expect(frac).toBeGreaterThan(0.55);
    expect(frac).toBeLessThan(0.65);
    expect(Array.from(kept1)).not.toEqual(Array.from(kept2));
    // kept values are scaled by 1/(1-p)
    const i = kept2.indexOf(1);
    expect(y2[i]!).toBeCloseTo(xs[i]! / 0.6, 5);
    // backward uses the last forward's mask
    const g = await d.backward(Tensor.full([4, 1000], 1))!.data();
    expect(Array.from(g, (v) => (v !== 0 ? 1 : 0))).toEqual(Array.from(kept2));
    // another module restored from state replays the second mask
    const e = new Dropout(0.4);
    e.loadState({ seed, offset: 4000 });
    expect(Array.from(await e.forward(x).data())).toEqual(Array.from(y2));
    // whole-model state helpers
    const net = new Sequential(new Linear(1000, 10), new Dropout(0.5, { seed: 3 }), new Sequential(new Dropout(0.2, { seed: 4, offset: 9 })));
    expect(dropoutState(net)).toEqual({ '1': { seed: 3, offset: 0 }, '2.0': { seed: 4, offset: 9 } });
    loadDropoutState(net, { '1': { seed: 5, offset: 10 }, '2.0': { seed: 6, offset: 11 } });
    expect(dropoutState(net)).toEqual({ '1': { seed: 5, offset: 10 }, '2.0': { seed: 6, offset: 11 } });
    expectCode(() => loadDropoutState(net, { '1': { seed: 5, offset: 10 } }), 'ERR_ARGUMENT', /2\.0/);
    expectCode(() => new Dropout(1), 'ERR_ARGUMENT');
  });
});

describe('memory', () => {
  // Records every native tensor handle created while `fn` runs (operator results and views).
  // (Disposing a handle drops its reference to the storage; the storage is freed with the last one.)
  async function track(fn: () => Promise<void>): Promise<[string, NativeTensor][]> {
    const native = loadNative() as unknown as Record<string, unknown>;
    const Handle = (native as unknown as { NativeTensor: abstract new () => NativeTensor }).NativeTensor;
    const created: [string, NativeTensor][] = [];
    const collect = (v: unknown, op: string) => {
      if (v instanceof Handle) created.push([op, v]);
      else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (x instanceof Handle) created.push([`${op}.${k}`, x]);
      return v;
    };
    const saved: [string, unknown][] = [];
    for (const [k, f] of Object.entries(native)) {
      if (typeof f !== 'function' || k === 'NativeTensor') continue;
      saved.push([k, f]);
      native[k] = (...a: unknown[]) => collect((f as (...a: unknown[]) => unknown).apply(native, a), k);
    }
    const proto = Tensor.prototype;
    const view = proto.view;
    proto.view = function (this: Tensor, offset: number, shape: readonly number[]) {
      const t = view.call(this, offset, shape);
      created.push(['view', t.handle]);
      return t;
    };
    try {
      await fn();
    } finally {
      for (const [k, f] of saved) native[k] = f;
      proto.view = view;
    }
    return created;
  }

  it('a training step and an eval forward dispose every tensor they create', async () => {
    const r = rng(seedOf());
    const net = new Sequential(
      new Conv2d(3, 8, 3, { padding: 1 }), new ReLU(), new LocalResponseNorm(3), new MaxPool2d(2), new Flatten(),
      new Sequential(new Linear(8 * 8 * 8, 16), new ReLU(), new Dropout(0.3)), new Linear(16, 4),
    );
    const store = ParameterStore.create(net);
    const x = Tensor.from(f32(uniform(4 * 3 * 256, r)), [4, 3, 16, 16]);
    const labels = Tensor.from(new Int32Array([0, 1, 2, 3]), [4]);
    for (let i = 0; i < 3; i++) {
      const created = await track(async () => {
        store.zeroGrad();
        const logits = net.train().forward(x);
        const { loss, gradLogits } = softmaxCrossEntropy(logits, labels);
        net.backward(gradLogits, i === 0)?.dispose(); // the input gradient is the caller's
        await loss.data();
        for (const t of [logits, loss, gradLogits]) t.dispose();
        const out = net.eval().forward(x);
        await out.data();
        out.dispose();
        // a training forward without backward is released by the next forward / train() / eval()
        net.train().forward(x).dispose();
        net.eval();
      });
      expect(created.length).toBeGreaterThan(20);
      // Backward operators hand back the gradient views they were given (the store's): conv2d
      // the same handles, linear new handles that alias them without owning storage
      // (native/binding/linear.cc; src/ops/linear.ts leaves those to the GC).
      const mine = new Set(net.parameters().flatMap((p) => [p.data.handle, p.grad.handle]));
      const aliases = new Set(['linearBackward.gradWeight', 'linearBackward.gradBias']);
      const alive = created.filter(([op, h]) => !h.disposed && !mine.has(h) && !aliases.has(op)).map(([op, h]) => `${op} [${h.shape.join(', ')}]`);
      expect(alive, 'tensors left undisposed').toEqual([]);
    }
    store.dispose();
  });
});
