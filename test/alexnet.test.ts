import { describe, expect, it } from 'vitest';
import { softmaxCrossEntropy, Tensor } from '../src/index.js';
import { alexnet, ALEXNET_INPUT_SIZE, type AlexNetConfig } from '../src/models/alexnet.js';
import { Conv2d, Dropout, dropoutState, LocalResponseNorm, ParameterStore } from '../src/nn/index.js';
import { expectCode, f32, rng, uniform } from './helpers.js';

const seedOf = () => (Math.random() * 2 ** 32) >>> 0;

const TORCHVISION_NAMES: [string, number[]][] = [
  ['features.0.weight', [64, 3, 11, 11]],
  ['features.0.bias', [64]],
  ['features.3.weight', [192, 64, 5, 5]],
  ['features.3.bias', [192]],
  ['features.6.weight', [384, 192, 3, 3]],
  ['features.6.bias', [384]],
  ['features.8.weight', [256, 384, 3, 3]],
  ['features.8.bias', [256]],
  ['features.10.weight', [256, 256, 3, 3]],
  ['features.10.bias', [256]],
  ['classifier.1.weight', [4096, 9216]],
  ['classifier.1.bias', [4096]],
  ['classifier.4.weight', [4096, 4096]],
  ['classifier.4.bias', [4096]],
  ['classifier.6.weight', [1000, 4096]],
  ['classifier.6.bias', [1000]],
];

const SEED_NAMES: [string, number[]][] = [
  ['features.0.weight', [96, 3, 11, 11]],
  ['features.0.bias', [96]],
  ['features.3.weight', [256, 96, 5, 5]],
  ['features.3.bias', [256]],
  ['features.6.weight', [384, 256, 3, 3]],
  ['features.6.bias', [384]],
  ['features.8.weight', [384, 384, 3, 3]],
  ['features.8.bias', [384]],
  ['features.10.weight', [256, 384, 3, 3]],
  ['features.10.bias', [256]],
  ['classifier.0.weight', [4096, 9216]],
  ['classifier.0.bias', [4096]],
  ['classifier.3.weight', [4096, 4096]],
  ['classifier.3.bias', [4096]],
  ['classifier.6.weight', [2, 4096]],
  ['classifier.6.bias', [2]],
];

const PAPER_NAMES: [string, number[]][] = [
  ['features.0.weight', [96, 3, 11, 11]],
  ['features.0.bias', [96]],
  ['features.4.weight', [256, 48, 5, 5]],
  ['features.4.bias', [256]],
  ['features.8.weight', [384, 256, 3, 3]],
  ['features.8.bias', [384]],
  ['features.10.weight', [384, 192, 3, 3]],
  ['features.10.bias', [384]],
  ['features.12.weight', [256, 192, 3, 3]],
  ['features.12.bias', [256]],
  ['classifier.1.weight', [4096, 9216]],
  ['classifier.1.bias', [4096]],
  ['classifier.4.weight', [4096, 4096]],
  ['classifier.4.bias', [4096]],
  ['classifier.6.weight', [1000, 4096]],
  ['classifier.6.bias', [1000]],
];

const namesOf = (m: ReturnType<typeof alexnet>) => m.namedParameters().map(([n, p]) => [n, [...p.shape]]);

function input(config: AlexNetConfig, batch: number, r: () => number): Tensor<'float32'> {
  const s = ALEXNET_INPUT_SIZE[config];
  return Tensor.from(f32(uniform(batch * 3 * s * s, r)), [batch, 3, s, s]);
}

describe('alexnet configurations', () => {
  for (const [config, names, classes] of [
    ['seed', SEED_NAMES, 2],
    ['paper2012', PAPER_NAMES, 1000],
    ['torchvision', TORCHVISION_NAMES, 1000],
  ] as const) {
    it(`${config}: state-dict names and shapes, output [2, ${classes}] at batch 2`, async () => {
      const r = rng(seedOf());
      const m = alexnet({ config, init: 'pytorch', seed: seedOf() % 1000 });
      expect(namesOf(m)).toEqual(names);
      expect([...m.stateDict().keys()]).toEqual(names.map(([n]) => n));
      expect(m.inputSize).toBe(config === 'torchvision' ? 224 : 227);
      expect(m.numClasses).toBe(classes);
      expect(m.namedChildren().map(([n]) => n)).toEqual(config === 'torchvision' ? ['features', 'avgpool', 'flatten', 'classifier'] : ['features', 'flatten', 'classifier']);
      m.eval();
      const x = input(config, 2, r);
      const y = m.forward(x);
      expect(y.shape).toEqual([2, classes]);
      const v = await y.data();
      expect(v.every(Number.isFinite)).toBe(true);
      expect(v.some((z) => z !== 0)).toBe(true);
      m.dispose();
    });
  }

  it('layer lists: LRN (PyTorch convention) and groups only in paper2012; dropout placement and p', () => {
    const p = alexnet({ config: 'paper2012', numClasses: 10, init: 'pytorch' });
    const lrn = p.features.children().filter((c): c is LocalResponseNorm => c instanceof LocalResponseNorm);
    expect(lrn.map((l) => [l.size, l.alpha, l.beta, l.k])).toEqual([
      [5, 5e-4, 0.75, 2],
      [5, 5e-4, 0.75, 2],
    ]);
    expect(p.features.children().map((c) => c.constructor.name)).toEqual([
      'Conv2d', 'ReLU', 'LocalResponseNorm', 'MaxPool2d',
      'Conv2d', 'ReLU', 'LocalResponseNorm', 'MaxPool2d',
      'Conv2d', 'ReLU', 'Conv2d', 'ReLU', 'Conv2d', 'ReLU', 'MaxPool2d',
    ]);
    const groups = p.features.children().filter((c): c is Conv2d => c instanceof Conv2d).map((c) => c.groups);
    expect(groups).toEqual([1, 2, 1, 2, 2]);
    expect(p.classifier.children().map((c) => c.constructor.name)).toEqual(['Dropout', 'Linear', 'ReLU', 'Dropout', 'Linear', 'ReLU', 'Linear']);
    expect(p.classifier.children().filter((c): c is Dropout => c instanceof Dropout).map((d) => d.p)).toEqual([0.5, 0.5]);
    p.dispose();
    const s = alexnet({ seed: 7, init: 'pytorch' });
    expect(s.classifier.children().map((c) => c.constructor.name)).toEqual(['Linear', 'ReLU', 'Dropout', 'Linear', 'ReLU', 'Dropout', 'Linear']);
    expect(s.classifier.children().filter((c): c is Dropout => c instanceof Dropout).map((d) => d.p)).toEqual([0.4, 0.4]);
    // distinct dropout streams derived from the seed
    expect(dropoutState(s)).toEqual({ 'classifier.2': { seed: 7 * 64 + 1, offset: 0 }, 'classifier.5': { seed: 7 * 64 + 2, offset: 0 } });
    expect(s.features.children().some((c) => c instanceof LocalResponseNorm)).toBe(false);
    s.dispose();
    const t = alexnet({ config: 'torchvision', numClasses: 5, dropout: 0.25, init: 'pytorch' });
    expect(t.classifier.children().filter((c): c is Dropout => c instanceof Dropout).map((d) => d.p)).toEqual([0.25, 0.25]);
    expect(t.stateDict().get('classifier.6.weight')!.shape).toEqual([5, 4096]);
    t.dispose();
  });

  it("'paper' init: N(0, 0.01) weights, bias 1 in conv2/4/5 and the hidden dense layers, 0 elsewhere; deterministic from seed", async () => {
    const seed = seedOf() % 100000;
    const a = alexnet({ seed });
    const sd = a.stateDict();
    const ones = new Set(['features.3.bias', 'features.8.bias', 'features.10.bias', 'classifier.0.bias', 'classifier.3.bias']);
    for (const [name, t] of sd) {
      const v = await t.data();
      if (name.endsWith('.bias')) {
        const want = ones.has(name) ? 1 : 0;
        expect(v.every((z) => z === want), name).toBe(true);
      } else {
        let s1 = 0;
        let s2 = 0;
        for (const z of v) {
          s1 += z;
          s2 += z * z;
        }
        const mean = s1 / v.length;
        const std = Math.sqrt(s2 / v.length - mean * mean);
        expect(Math.abs(mean), name).toBeLessThan((5 * 0.01) / Math.sqrt(v.length));
        expect(Math.abs(std - 0.01), name).toBeLessThan(0.01 * (0.05 + 5 / Math.sqrt(v.length)));
      }
    }
    const b = alexnet({ seed });
    const c = alexnet({ seed: seed + 1 });
    const w = await sd.get('classifier.6.weight')!.data();
    expect(Array.from(await b.stateDict().get('classifier.6.weight')!.data())).toEqual(Array.from(w));
    expect(Array.from(await c.stateDict().get('classifier.6.weight')!.data())).not.toEqual(Array.from(w));
    for (const m of [a, b, c]) m.dispose();
  });

  it("'pytorch' init: U(+-1/sqrt(fanIn)) for weights and biases (fanIn counts groups)", async () => {
    const m = alexnet({ config: 'paper2012', init: 'pytorch', numClasses: 10, seed: seedOf() % 1000 });
    const fanIns: Record<string, number> = {
      'features.0': 3 * 121,
      'features.4': 48 * 25,
      'features.8': 256 * 9,
      'features.10': 192 * 9,
      'features.12': 192 * 9,
      'classifier.1': 9216,
      'classifier.4': 4096,
      'classifier.6': 4096,
    };
    for (const [name, t] of m.stateDict()) {
      const bound = 1 / Math.sqrt(fanIns[name.replace(/\.(weight|bias)$/, '')]!);
      const v = await t.data();
      let max = 0;
      for (const z of v) max = Math.max(max, Math.abs(z));
      expect(max, name).toBeLessThanOrEqual(Math.fround(bound)); // float32 rounding of values just below the bound
      if (v.length >= 100) expect(max, name).toBeGreaterThan(0.95 * bound);
    }
    m.dispose();
  });

  it('state dict round trip into a fresh model gives identical outputs; mismatched models are clear errors', async () => {
    const r = rng(seedOf());
    const a = alexnet({ seed: 1, numClasses: 3, init: 'pytorch' }).eval();
    const b = alexnet({ seed: 2, numClasses: 3, init: 'pytorch' }).eval();
    const x = input('seed', 1, r);
    const ya = await a.forward(x).data();
    expect(Array.from(await b.forward(x).data())).not.toEqual(Array.from(ya));
    b.loadStateDict(a.stateDict());
    expect(Array.from(await b.forward(x).data())).toEqual(Array.from(ya));
    // classes differ: a shape error naming the layer
    const c = alexnet({ seed: 1, numClasses: 4, init: 'pytorch' });
    expectCode(() => c.loadStateDict(a.stateDict()), 'ERR_SHAPE', /classifier\.6\.weight: expected \[4, 4096\], got \[3, 4096\]; classifier\.6\.bias: expected \[4\], got \[3\]/);
    // another configuration: missing and unexpected keys listed
    const t = alexnet({ config: 'torchvision', numClasses: 3, init: 'pytorch' });
    expectCode(
      () => t.loadStateDict(a.stateDict()),
      'ERR_ARGUMENT',
      /missing keys \(4\): classifier\.1\.weight, classifier\.1\.bias, classifier\.4\.weight, classifier\.4\.bias; unexpected keys \(4\): classifier\.0\.weight, classifier\.0\.bias, classifier\.3\.weight, classifier\.3\.bias/,
    );
    for (const m of [a, b, c, t]) m.dispose();
  });

  it('checks its input size and options', () => {
    const t = alexnet({ config: 'torchvision', numClasses: 2, init: 'pytorch' });
    expectCode(() => t.forward(Tensor.zeros([1, 3, 227, 227])), 'ERR_SHAPE', /expected input \[N, 3, 224, 224\], got \[1, 3, 227, 227\]/);
    t.dispose();
    expectCode(() => alexnet({ config: 'vgg' as AlexNetConfig }), 'ERR_ARGUMENT', /config/);
    expectCode(() => alexnet({ init: 'xavier' as 'paper' }), 'ERR_ARGUMENT', /init/);
    expectCode(() => alexnet({ numClasses: 0 }), 'ERR_ARGUMENT', /numClasses/);
    expectCode(() => alexnet({ seed: -1 }), 'ERR_ARGUMENT', /seed/);
  });

  it('seed config: one training step through the store reaches every parameter', async () => {
    const r = rng(seedOf());
    const m = alexnet({ init: 'pytorch', seed: seedOf() % 1000 });
    const store = ParameterStore.create(m);
    expect(store.layout.map((e) => e.name)).toEqual(SEED_NAMES.map(([n]) => n));
    store.zeroGrad();
    const x = input('seed', 2, r);
    const logits = m.train().forward(x);
    const { loss, gradLogits } = softmaxCrossEntropy(logits, Tensor.from(new Int32Array([0, 1]), [2]));
    expect(m.backward(gradLogits, false)).toBeNull();
    expect(Number.isFinite((await loss.data())[0]!)).toBe(true);
    const g = await store.grads.data();
    for (const e of store.layout) {
      const part = g.subarray(e.offset, e.offset + e.numel);
      expect(part.some((v) => v !== 0), `gradient of ${e.name}`).toBe(true);
      expect(part.every(Number.isFinite), `gradient of ${e.name}`).toBe(true);
    }
    // the dropout streams advanced by the activations they saw
    expect(dropoutState(m)).toEqual({
      'classifier.2': { seed: expect.any(Number), offset: 2 * 4096 },
      'classifier.5': { seed: expect.any(Number), offset: 2 * 4096 },
    });
    store.dispose();
  });
});
