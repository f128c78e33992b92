// The data-parallel gradient reducer (src/dist/reducer.ts), in this process with a recording
// communicator: how the flat gradient buffer is cut into buckets, and WHEN each bucket's
// allReduce is started relative to the layers' backward calls (as soon as the last layer writing
// into it has its backward queued; at the end of backward where a layer cannot be tracked). That
// the bucketed averaging gives the same weights as one allReduce is checked on two real ranks by
// test/dist-train.test.ts.
import { describe, expect, it } from 'vitest';
import { GradientReducer, Linear, Module, mulberry32, ParameterStore, planBuckets, ReLU, Sequential, Tensor, type Communicator } from '../src/index.js';
import type { F32 } from '../src/nn/module.js';

/** Logs 'bw:<name>' when a layer's backward is called and 'ar:<bucket>' per allReduceAsync. */
function recorder(model: Module, store: ParameterStore) {
  const log: string[] = [];
  for (const [name, m] of model.namedModules()) {
    if (m instanceof Sequential) continue;
    const orig = m.backward.bind(m);
    m.backward = (g: F32, need?: boolean) => {
      log.push(`bw:${name}`);
      return orig(g, need);
    };
  }
  const waits: number[] = [];
  const comm = {
    allReduceAsync(t: Tensor, op: string) {
      expect(op).toBe('avg');
      // the reducer starts buckets in order, each on a view of its range
      const i = log.filter((e) => e.startsWith('ar:')).length;
      const b = reducerRef.r!.buckets[i]!;
      expect(t.numel).toBe(b.end - b.start);
      log.push(`ar:${i}`);
      return { wait: () => waits.push(i) };
    },
  } as unknown as Communicator;
  const reducerRef: { r: GradientReducer | null } = { r: null };
  return { log, waits, comm, reducerRef, store };
}

function net(rng: () => number): Sequential {
  // weights + biases in bytes: '0' 8448, '2' 16640, '4' 2600
  return new Sequential(new Linear(32, 64, { rng }), new ReLU(), new Linear(64, 64, { rng }), new ReLU(), new Linear(64, 10, { rng }));
}

async function step(model: Module, reducer: GradientReducer): Promise<void> {
  const x = Tensor.from(Float32Array.from({ length: 4 * 32 }, () => Math.random() - 0.5), [4, 32]);
  const y = model.forward(x);
  const g = Tensor.from(Float32Array.from({ length: y.numel }, () => Math.random() - 0.5), [...y.shape]);
  reducer.backward(g, false);
  for (const t of [x, y, g]) t.dispose();
}

describe('planBuckets', () => {
  it('contiguous ranges covering the flat buffer, in reverse layer order, each at least the cap but the last', () => {
    const r = mulberry32(Math.floor(Math.random() * 1e9));
    const model = net(r);
    const store = ParameterStore.create(model);
    for (const mb of [1e-6, 16000 / 2 ** 20, 0.02, 25, Infinity]) {
      const b = planBuckets(store, mb);
      expect(b[0]!.end).toBe(store.numel);
      expect(b.at(-1)!.start).toBe(0);
      for (let i = 1; i < b.length; i++) expect(b[i]!.end).toBe(b[i - 1]!.start);
      expect(b.flatMap((x) => x.names)).toEqual(store.layout.map((e) => e.name).reverse());
      for (const x of b.slice(0, -1)) {
        const bytes = x.names.reduce((a, n) => a + 4 * store.entry(n).numel, 0);
        expect(bytes).toBeGreaterThanOrEqual(mb * 2 ** 20);
        // and the cap was reached only with its last (lowest) parameter
        expect(bytes - 4 * store.entry(x.names.at(-1)!).numel).toBeLessThan(mb * 2 ** 20);
      }
    }
    expect(planBuckets(store, 1e-6)).toHaveLength(store.layout.length);
    expect(planBuckets(store, Infinity)).toHaveLength(1);
    expect(planBuckets(store, 16000 / 2 ** 20).map((x) => x.names)).toEqual([['4.bias', '4.weight', '2.bias', '2.weight'], ['0.bias', '0.weight']]);
    for (const bad of [0, -1, NaN]) expect(() => planBuckets(store, bad)).toThrow(expect.objectContaining({ code: 'ERR_ARGUMENT' }));
    store.dispose();
    model.dispose();
  });
});

describe('GradientReducer: when each bucket starts', () => {
  const order = (model: Module, mb: number) => {
    const store = ParameterStore.create(model);
    const rec = recorder(model, store);
    const reducer = new GradientReducer(rec.comm, model, store, { bucketMB: mb });
    rec.reducerRef.r = reducer;
    return { ...rec, reducer };
  };

  it('a bucket starts right after the backward of the last layer writing into it, then every bucket is waited for', async () => {
    const r = mulberry32(Math.floor(Math.random() * 1e9));
    const model = net(r);
    const { log, waits, reducer, store } = order(model, 16000 / 2 ** 20);
    for (let s = 0; s < 2; s++) {
      log.length = 0;
      waits.length = 0;
      await step(model, reducer);
      expect(log).toEqual(['bw:4', 'bw:3', 'bw:2', 'ar:0', 'bw:1', 'bw:0', 'ar:1']);
      expect(waits).toEqual([0, 1]);
    }
    reducer.dispose();
    store.dispose();
    model.dispose();
  });

  it('nested Sequentials fire the hooks of their children too', async () => {
    const r = mulberry32(Math.floor(Math.random() * 1e9));
    const model = new Sequential(new Sequential(new Linear(32, 64, { rng: r }), new ReLU()), new Sequential(new Linear(64, 64, { rng: r }), new ReLU(), new Linear(64, 10, { rng: r })));
    const { log, reducer, store } = order(model, 1e-6);
    await step(model, reducer);
    // one bucket per parameter (bias and weight of a layer start together, after that layer)
    expect(log).toEqual(['bw:1.2', 'ar:0', 'ar:1', 'bw:1.1', 'bw:1.0', 'ar:2', 'ar:3', 'bw:0.1', 'bw:0.0', 'ar:4', 'ar:5']);
    reducer.dispose();
    store.dispose();
    model.dispose();
  });

  it('layers run by a custom container are not tracked: their buckets and all later ones start after backward', async () => {
    const r = mulberry32(Math.floor(Math.random() * 1e9));
    class Two extends Module {
      a = this.addModule('a', new Linear(32, 64, { rng: r }));
      b = this.addModule('b', new Linear(64, 10, { rng: r }));
      forward(x: F32): F32 {
        return this.b.forward(this.a.forward(x));
      }
      backward(g: F32, need = true): F32 | null {
        const h = this.b.backward(g, true)!;
        const out = this.a.backward(h, need);
        h.dispose();
        return out;
      }
    }
    // a Sequential whose tail is tracked and whose head is a custom container
    const model = new Sequential(new Two(), new ReLU(), new Linear(10, 10, { rng: r }));
    const { log, reducer, store } = order(model, 1e-6);
    await step(model, reducer);
    expect(log).toEqual(['bw:2', 'ar:0', 'ar:1', 'bw:1', 'bw:0', 'bw:0.b', 'bw:0.a', 'ar:2', 'ar:3', 'ar:4', 'ar:5']);
    reducer.dispose();
    store.dispose();
    model.dispose();

  });
});
