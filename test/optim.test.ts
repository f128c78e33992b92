import { describe, expect, it } from 'vitest';
import { copy, loadNative, sgdStep, softmaxCrossEntropy, Tensor, topkCorrect, type SgdStepOptions } from '../src/index.js';
import { Conv2d, Flatten, Linear, manualSeed, MaxPool2d, ParameterStore, ReLU, Sequential } from '../src/nn/index.js';
import { MultiStepLR, ReduceLROnPlateau, SGD, StepLR, type SGDOptions } from '../src/optim/index.js';
import { expectClose, expectCode, f32, rng, uniform } from './helpers.js';

const seedOf = () => (Math.random() * 2 ** 32) >>> 0;
// float32 storage between steps: ~1e-7 relative per step against float64 hand arithmetic
const TOL = { atol: 1e-6, rtol: 1e-5 };

/** A store over a small two-layer model, with random parameters and a way to set gradients. */
function fixture(r: () => number) {
  manualSeed(seedOf());
  const net = new Sequential(new Linear(5, 4), new ReLU(), new Linear(4, 3));
  const store = ParameterStore.create(net);
  const n = store.numel;
  const setGrads = (g: Float64Array) => {
    const t = Tensor.from(f32(g), [n]);
    copy(store.grads, t);
    t.dispose();
  };
  const w0 = uniform(n, r);
  const t = Tensor.from(f32(w0), [n]);
  copy(store.params, t);
  t.dispose();
  return { net, store, n, setGrads, w0: Float64Array.from(f32(w0)) };
}

/** Hand-computed updates in float64 of both conventions (formulas: native/core/sgd.h), including a change of lr. */
function reference(
  convention: 'pytorch' | 'krizhevsky',
  w0: Float64Array,
  grads: Float64Array[],
  lrs: number[],
  mu: number,
  wd: number,
): Float64Array[] {
  const w = Float64Array.from(w0);
  const buf = new Float64Array(w.length);
  const out: Float64Array[] = [];
  grads.forEach((g, s) => {
    for (let i = 0; i < w.length; i++) {
      const gp = g[i]! + wd * w[i]!;
      if (convention === 'pytorch') {
        buf[i] = s === 0 ? gp : mu * buf[i]! + gp; // b <- mu b + g'  (b starts at g')
        w[i] = w[i]! - lrs[s]! * buf[i]!; //           w <- w - lr b
      } else {
        buf[i] = mu * buf[i]! - lrs[s]! * gp; //      v <- mu v - lr wd w - lr g
        w[i] = w[i]! + buf[i]!; //                    w <- w + v
      }
    }
    out.push(Float64Array.from(w));
  });
  return out;
}

describe('SGD', () => {
  it('one step is one sgdStep call over the store and equals the hand-computed PyTorch update', async () => {
    const r = rng(seedOf());
    const { store, n, setGrads, w0 } = fixture(r);
    const opt = new SGD(store, { lr: 0.05 });
    expect([opt.momentum, opt.weightDecay, opt.dampening, opt.nesterov, opt.convention]).toEqual([0.9, 5e-4, 0, false, 'pytorch']);
    const g = Float64Array.from(f32(uniform(n, r)));
    setGrads(g);
    const native = loadNative();
    const orig = native.sgdStep;
    const seen: unknown[][] = [];
    native.sgdStep = ((...args: Parameters<typeof orig>) => {
      seen.push([args[0].shape, args[1].shape, args[2]?.shape, args[3].firstStep]);
      return orig(...args);
    }) as typeof orig;
    try {
      opt.step();
      setGrads(g);
      opt.step();
    } finally {
      native.sgdStep = orig;
    }
    expect(seen).toEqual([
      [[n], [n], [n], true],
      [[n], [n], [n], false],
    ]);
    // w1 = w0 - lr (g + wd w0); b1 = g + wd w0; w2 = w1 - lr (0.9 b1 + g + wd w1)
    const w1 = Float64Array.from(w0, (w, i) => w - 0.05 * (g[i]! + 5e-4 * w));
    const w2 = Float64Array.from(w1, (w, i) => w - 0.05 * (0.9 * (g[i]! + 5e-4 * w0[i]!) + g[i]! + 5e-4 * w));
    expectClose(await store.params.data(), w2, { ...TOL, label: 'two PyTorch steps' });
    expect(opt.state()).toEqual({ step: 2, lr: 0.05 });
    store.dispose();
  });

  it("'pytorch' and 'krizhevsky' agree while lr is constant and differ after it changes", async () => {
    const r = rng(seedOf());
    const grads = [0, 1, 2].map(() => Float64Array.from(f32(uniform(195, r)))); // the whole flat buffer, gaps included
    const lrs = [0.1, 0.1, 0.01];
    const results: Record<string, Float32Array[]> = {};
    let w0: Float64Array | null = null;
    for (const convention of ['pytorch', 'krizhevsky'] as const) {
      const fx = fixture(rng(1234)); // the same starting point for both
      expect(fx.n).toBe(195); // 39 parameters, each starting on a 64-float (256-byte) boundary
      w0 ??= fx.w0;
      const opt = new SGD(fx.store, { lr: lrs[0]!, momentum: 0.9, weightDecay: 0.01, convention });
      results[convention] = [];
      for (let s = 0; s < 3; s++) {
        opt.lr = lrs[s]!; // the lr changes between steps 2 and 3
        fx.setGrads(grads[s]!);
        opt.step();
        results[convention].push(await fx.store.params.data());
      }
      const ref = reference(convention, fx.w0, grads, lrs, 0.9, 0.01);
      ref.forEach((want, s) => expectClose(results[convention]![s]!, want, { ...TOL, label: `${convention} step ${s + 1}` }));
      fx.store.dispose();
    }
    const pt = results.pytorch!;
    const kr = results.krizhevsky!;
    expectClose(kr[0]!, pt[0]!, { ...TOL, label: 'agree after step 1' });
    expectClose(kr[1]!, pt[1]!, { ...TOL, label: 'agree after step 2' });
    // after the change: PyTorch's buffer holds gradients (scaled by the new lr), Krizhevsky's
    // holds the old steps; the difference is 0.9 * (0.1 - 0.01) * b2 per element
    let maxDiff = 0;
    for (let i = 0; i < 39; i++) maxDiff = Math.max(maxDiff, Math.abs(kr[2]![i]! - pt[2]![i]!));
    expect(maxDiff).toBeGreaterThan(1e-3);
  });

  it('momentum 0 is plain SGD and leaves the buffer alone; state round trip continues the same run', async () => {
    const r = rng(seedOf());
    const { store, n, setGrads, w0 } = fixture(r);
    const g = Float64Array.from(f32(uniform(n, r)));
    const plain = new SGD(store, { lr: 0.2, momentum: 0, weightDecay: 0 });
    setGrads(g);
    plain.step();
    expectClose(await store.params.data(), Float64Array.from(w0, (w, i) => w - 0.2 * g[i]!), { ...TOL, label: 'plain SGD' });
    expect((await store.momentum.data()).every((v) => v === 0)).toBe(true);

    // resume: a new optimizer that loads step/lr continues PyTorch's buffer instead of restarting it
    const a = new SGD(store, { lr: 0.1, weightDecay: 0 });
    a.step();
    const afterA = Float64Array.from(await store.params.data());
    const saved = JSON.parse(JSON.stringify(a.state())) as ReturnType<SGD['state']>;
    const b = new SGD(store, { lr: 1, weightDecay: 0 });
    b.loadState(saved);
    expect(b.lr).toBe(0.1);
    b.step(); // b = 0.9 g + g, not g
    expectClose(await store.params.data(), Float64Array.from(afterA, (w, i) => w - 0.1 * 1.9 * g[i]!), { ...TOL, label: 'resumed step' });
    b.zeroGrad();
    expect((await store.grads.data()).every((v) => v === 0)).toBe(true);

    expectCode(() => new SGD(store, { lr: -1 }), 'ERR_ARGUMENT', /lr/);
    expectCode(() => new SGD(store, { lr: 0.1, convention: 'adam' as 'pytorch' }), 'ERR_ARGUMENT', /convention/);
    expectCode(() => new SGD(store, { lr: 0.1, nesterov: true, convention: 'krizhevsky' }), 'ERR_ARGUMENT', /nesterov/);
    expectCode(() => new SGD({} as ParameterStore, { lr: 0.1 }), 'ERR_ARGUMENT', /ParameterStore/);
    expectCode(() => b.loadState({ step: -1, lr: 0.1 }), 'ERR_ARGUMENT');
    expectCode(() => {
      b.lr = Number.NaN;
    }, 'ERR_ARGUMENT');
    store.dispose();
    expectCode(() => b.step(), 'ERR_DISPOSED');
  });

  it("checks its options with sgdStep's own checks, at construction and on every lr change", async () => {
    const r = rng(seedOf());
    const { store, n, setGrads, w0 } = fixture(r);
    // Each bad option fails at construction with the message sgdStep gives, named 'SGD' instead:
    // the checks are written once, in the addon. Some of these (dampening, a non-boolean
    // nesterov) used to pass construction and fail only at the first step.
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ lr: -1 }, /^SGD: lr must be >= 0 but got -1$/],
      [{ lr: Number.NaN }, /^SGD: lr must be a finite number/],
      [{ lr: '0.1' }, /^SGD: expected option 'lr' to be a number$/],
      [{}, /^SGD: option 'lr' is required$/],
      [{ lr: 0.1, momentum: -0.5 }, /^SGD: momentum must be >= 0 but got -0.5$/],
      [{ lr: 0.1, dampening: 1.5 }, /^SGD: dampening must be in \[0, 1\] but got 1.5$/],
      [{ lr: 0.1, weightDecay: Number.POSITIVE_INFINITY }, /^SGD: weightDecay must be a finite number/],
      [{ lr: 0.1, convention: 'adam' }, /^SGD: convention must be 'pytorch' or 'krizhevsky' but got 'adam'$/],
      [{ lr: 0.1, nesterov: true, convention: 'krizhevsky' }, /^SGD: nesterov momentum is not defined for the krizhevsky convention$/],
      [{ lr: 0.1, nesterov: true, momentum: 0 }, /^SGD: nesterov momentum requires momentum > 0 and zero dampening/],
      [{ lr: 0.1, nesterov: true, dampening: 0.1 }, /^SGD: nesterov momentum requires momentum > 0 and zero dampening/],
      [{ lr: 0.1, nesterov: 'yes' }, /^SGD: expected option 'nesterov' to be a boolean$/],
    ];
    for (const [o, msg] of bad) {
      expectCode(() => new SGD(store, o as unknown as SGDOptions), 'ERR_ARGUMENT', msg);
      // the same options (less the class's defaults) through the operator: the same check
      const sgdMsg = new RegExp(msg.source.replace('^SGD:', '^sgdStep:'));
      const full = { momentum: 0.9, weightDecay: 5e-4, ...o } as unknown as SgdStepOptions;
      expectCode(() => sgdStep(store.params, store.grads, store.momentum, full), 'ERR_ARGUMENT', sgdMsg);
    }
    // null / undefined take the class's defaults, as before
    const opt = new SGD(store, { lr: 0.1, momentum: undefined, weightDecay: null as unknown as number, nesterov: true });
    expect([opt.momentum, opt.weightDecay, opt.dampening, opt.nesterov, opt.convention]).toEqual([0.9, 5e-4, 0, true, 'pytorch']);
    // a bad lr from a schedule or loadState is refused and leaves the lr as it was
    expectCode(() => {
      opt.lr = -0.5;
    }, 'ERR_ARGUMENT', /^SGD: lr must be >= 0 but got -0.5$/);
    expectCode(() => opt.loadState({ step: 3, lr: Number.POSITIVE_INFINITY }), 'ERR_ARGUMENT', /^SGD: lr must be a finite number/);
    expect(opt.lr).toBe(0.1);
    expect(opt.stepCount).toBe(0);
    opt.lr = 0.2;
    expect(opt.lr).toBe(0.2);
    // nothing was queued by the failures; the optimizer still steps (first Nesterov step: b = g',
    // w -= lr (g' + 0.9 g'))
    const g = Float64Array.from(f32(uniform(n, r)));
    setGrads(g);
    opt.step();
    const want = Float64Array.from(w0, (w, i) => w - 0.2 * 1.9 * (g[i]! + 5e-4 * w));
    expectClose(await store.params.data(), want, { ...TOL, label: 'Nesterov step after refused options' });
    store.dispose();
  });
});

describe('learning-rate schedules', () => {
  const holder = (lr: number) => ({ lr });

  it('StepLR: lr * gamma^floor(epoch / stepSize)', () => {
    const base = 0.01 + Math.random() * 0.1;
    const o = holder(base);
    const s = new StepLR(o, 3, 0.1);
    const lrs = [o.lr, ...Array.from({ length: 9 }, () => s.step())];
    const want = Array.from({ length: 10 }, (_, e) => base * 0.1 ** Math.floor(e / 3));
    expectClose(lrs, want, { atol: 0, rtol: 1e-12, label: 'StepLR' });
    const t = new StepLR(holder(lrs[9]!), 3, 0.1);
    t.loadState(JSON.parse(JSON.stringify(s.state())));
    expect(t.epoch).toBe(9);
    t.step();
    t.step();
    expect(t.optimizer.lr).toBeCloseTo(base * 1e-3, 15);
    expect(t.step()).toBeCloseTo(base * 1e-4, 15);
    expectCode(() => new StepLR(o, 0), 'ERR_ARGUMENT');
  });

  it('MultiStepLR: lr * gamma at each milestone (repeats count twice)', () => {
    const o = holder(0.1);
    const s = new MultiStepLR(o, [5, 2, 5], 0.5);
    const lrs = [o.lr, ...Array.from({ length: 7 }, () => s.step())];
    expectClose(lrs, [0.1, 0.1, 0.05, 0.05, 0.05, 0.0125, 0.0125, 0.0125], { atol: 0, rtol: 1e-12, label: 'MultiStepLR' });
    expect(s.state()).toEqual({ epoch: 7 });
    expectCode(() => new MultiStepLR(o, [0]), 'ERR_ARGUMENT');
  });

  it('ReduceLROnPlateau divides by 10 after `patience` epochs without improvement', () => {
    const o = holder(0.01);
    const s = new ReduceLROnPlateau(o, { patience: 2 });
    // validation error rates: improves, improves, then 3 bad epochs -> divided on the third
    const errs = [0.5, 0.4, 0.41, 0.4, 0.45, 0.39, 0.39, 0.3999, 0.39];
    const lrs = errs.map((e) => s.step(e));
    expectClose(lrs, [0.01, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001, 0.0001], { atol: 0, rtol: 1e-12, label: 'plateau (min)' });
    expect(s.best).toBe(0.39);
    // a JSON round trip (best may be Infinity, written as null) resumes exactly
    const fresh = new ReduceLROnPlateau(holder(1), { patience: 1 });
    const copy2 = new ReduceLROnPlateau(holder(1), { patience: 1 });
    copy2.loadState(JSON.parse(JSON.stringify(fresh.state())));
    expect(copy2.best).toBe(Infinity);
    const restored = new ReduceLROnPlateau(holder(0.0001), { patience: 2 });
    restored.loadState(JSON.parse(JSON.stringify(s.state())));
    expect([restored.step(0.4), restored.step(0.4)]).toEqual([0.0001, 0.0001]);
    expect(restored.step(0.4)).toBeCloseTo(1e-5, 15);

    // mode 'max' (accuracy), threshold in absolute terms, cooldown and minLr
    const m = holder(1);
    const acc = new ReduceLROnPlateau(m, { mode: 'max', patience: 0, threshold: 0.01, thresholdMode: 'abs', cooldown: 1, minLr: 0.001 });
    const out = [0.5, 0.505, 0.505, 0.505, 0.505, 0.505, 0.505, 0.505].map((a) => acc.step(a));
    // 0.505 is not better than 0.5 by 0.01: each bad epoch reduces (patience 0) except the one
    // cooldown epoch after a reduction; the lr stops at minLr
    expectClose(out, [1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001], { atol: 0, rtol: 1e-12, label: 'plateau (max)' });
    expectCode(() => acc.step(Number.NaN), 'ERR_ARGUMENT');
    expectCode(() => new ReduceLROnPlateau(m, { factor: 1 }), 'ERR_ARGUMENT');
  });
});

describe('training', () => {
  it('a tiny conv net learns bright-left vs bright-right 8x8 images (SGD, CPU, < 10 s)', async () => {
    const t0 = performance.now();
    const s = seedOf();
    const r = rng(s);
    manualSeed(s);
    const batch = 32;
    // class 0: left half brighter; class 1: right half; plus noise of the same size as the signal
    let flip = false;
    const makeBatch = (n: number) => {
      const x = new Float32Array(n * 64);
      const y = new Int32Array(n);
      for (let b = 0; b < n; b++) {
        y[b] = r() < 0.5 ? 0 : 1;
        const left = (y[b] === 0) !== flip;
        for (let i = 0; i < 8; i++) {
          for (let j = 0; j < 8; j++) {
            const bright = (j < 4) === left ? 0.5 : 0;
            x[b * 64 + i * 8 + j] = bright + (r() - 0.5);
          }
        }
      }
      return { x: Tensor.from(x, [n, 1, 8, 8]), y: Tensor.from(y, [n]) };
    };
    const net = new Sequential(new Conv2d(1, 4, 3, { padding: 1 }), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(64, 2));
    const store = ParameterStore.create(net);
    const opt = new SGD(store, { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
    const test = makeBatch(512);
    const accuracy = async () => {
      const logits = net.eval().forward(test.x);
      const c = (await topkCorrect(logits, test.y, 1).data())[0]! / 512;
      logits.dispose();
      return c;
    };
    // The task is symmetric: name the classes so that the untrained net is at most at chance
    // (a random init can happen to favour the right answer); it must then learn the task.
    let before = await accuracy();
    if (before > 0.5) {
      const y = await test.y.data();
      test.y.dispose();
      test.y = Tensor.from(y.map((v) => 1 - v), [512]);
      flip = true;
      before = await accuracy();
    }
    expect(before).toBeLessThanOrEqual(0.5);
    const losses: number[] = [];
    for (let step = 0; step < 150; step++) {
      const { x, y } = makeBatch(batch);
      opt.zeroGrad();
      const logits = net.train().forward(x);
      const { loss, gradLogits } = softmaxCrossEntropy(logits, y);
      net.backward(gradLogits, false);
      opt.step();
      if (step % 10 === 0) losses.push((await loss.data())[0]!);
      for (const t of [x, y, logits, loss, gradLogits]) t.dispose();
    }
    const after = await accuracy();
    expect(after, `accuracy ${before} -> ${after} (seed ${s}); losses ${losses.map((l) => l.toFixed(3)).join(' ')}`).toBeGreaterThan(0.9);
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]!);
    expect(performance.now() - t0).toBeLessThan(10_000);
    store.dispose();
  });
});
