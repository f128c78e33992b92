import { describe, expect, it } from 'vitest';
import { copy, loadNative, sgdStep, Tensor, type SgdStepOptions } from '../src/index.js';
import { expectClose, expectCode, f32, f64, rng, uniform } from './helpers.js';
import { sgdStepRef } from './reference/sgd.js';

// Float32 storage between steps costs ~1e-7 relative per step; the hand arithmetic is float64.
const TOL = { atol: 2e-6, rtol: 1e-6 };
const escapeRegExp = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Runs steps on a one-element parameter and returns w (and the buffer) after each step. */
async function run1(w0: number, grads: number[], lrs: number[], options: Omit<SgdStepOptions, 'lr'>, bufInit = 123) {
  const w = Tensor.from(f32([w0]), [1]);
  const buf = Tensor.from(f32([bufInit]), [1]); // garbage: firstStep must ignore it
  const ws: number[] = [];
  const bs: number[] = [];
  for (let s = 0; s < grads.length; s++) {
    sgdStep(w, Tensor.from(f32([grads[s]!]), [1]), buf, { ...options, lr: lrs[s]!, firstStep: s === 0 });
    ws.push((await w.data())[0]!);
    bs.push((await buf.data())[0]!);
  }
  return { ws, bs };
}

describe('sgdStep, hand-computed', () => {
  it('PyTorch and Krizhevsky agree while lr is constant and differ after it changes (momentum 0.9)', async () => {
    // w0 = 1.5, g = 0.25, -0.5, 1.0, lr = 0.1, 0.1, then 0.01
    const grads = [0.25, -0.5, 1.0];
    const lrs = [0.1, 0.1, 0.01];
    const pt = await run1(1.5, grads, lrs, { momentum: 0.9, convention: 'pytorch' });
    const kr = await run1(1.5, grads, lrs, { momentum: 0.9, convention: 'krizhevsky' });
    // PyTorch: b1 = g1; b <- 0.9 b + g; w <- w - lr b
    const b1 = 0.25;
    const w1 = 1.5 - 0.1 * b1; // 1.475
    const b2 = 0.9 * b1 + -0.5; // -0.275
    const w2 = w1 - 0.1 * b2; // 1.5025
    const b3 = 0.9 * b2 + 1.0; // 0.7525
    const w3 = w2 - 0.01 * b3; // 1.494975
    expectClose(pt.ws, [w1, w2, w3], { ...TOL, label: 'pytorch w' });
    expectClose(pt.bs, [b1, b2, b3], { ...TOL, label: 'pytorch buffer' });
    // Krizhevsky: v1 = -lr g1; v <- 0.9 v - lr g; w <- w + v
    const v1 = -0.1 * 0.25; // -0.025
    const k1 = 1.5 + v1; // 1.475
    const v2 = 0.9 * v1 - 0.1 * -0.5; // 0.0275
    const k2 = k1 + v2; // 1.5025
    const v3 = 0.9 * v2 - 0.01 * 1.0; // 0.01475
    const k3 = k2 + v3; // 1.51725
    expectClose(kr.ws, [k1, k2, k3], { ...TOL, label: 'krizhevsky w' });
    expectClose(kr.bs, [v1, v2, v3], { ...TOL, label: 'krizhevsky buffer' });
    // same parameters for steps 1 and 2 (v = -lr b), different after the lr change
    expectClose(kr.ws.slice(0, 2), pt.ws.slice(0, 2), { ...TOL, label: 'agree at constant lr' });
    expectClose(kr.bs.slice(0, 2), pt.bs.slice(0, 2).map((b) => -0.1 * b), { ...TOL, label: 'v = -lr b' });
    expect(Math.abs(kr.ws[2]! - pt.ws[2]!)).toBeGreaterThan(0.02); // 1.51725 vs 1.494975
  });

  it('with weight decay: agree at constant lr, differ after the change', async () => {
    // w0 = 2, g = 0.5, -0.25, 0.75, lr = 0.1, 0.1, 0.05, momentum 0.9, weight decay 0.01
    const grads = [0.5, -0.25, 0.75];
    const lrs = [0.1, 0.1, 0.05];
    const opts = { momentum: 0.9, weightDecay: 0.01 };
    const pt = await run1(2, grads, lrs, { ...opts, convention: 'pytorch' });
    const kr = await run1(2, grads, lrs, { ...opts, convention: 'krizhevsky' });
    const b1 = 0.5 + 0.01 * 2; // 0.52
    const w1 = 2 - 0.1 * b1; // 1.948
    const b2 = 0.9 * b1 + (-0.25 + 0.01 * w1); // 0.23748
    const w2 = w1 - 0.1 * b2; // 1.924252
    const b3 = 0.9 * b2 + (0.75 + 0.01 * w2); // 0.98297452
    const w3 = w2 - 0.05 * b3; // 1.875103274
    expectClose(pt.ws, [w1, w2, w3], { ...TOL, label: 'pytorch wd' });
    // Krizhevsky: v <- 0.9 v - wd lr w - lr g
    const v1 = -0.01 * 0.1 * 2 - 0.1 * 0.5; // -0.052
    const k1 = 2 + v1;
    const v2 = 0.9 * v1 - 0.01 * 0.1 * k1 - 0.1 * -0.25; // -0.023748
    const k2 = k1 + v2;
    const v3 = 0.9 * v2 - 0.01 * 0.05 * k2 - 0.05 * 0.75; // -0.059835326
    const k3 = k2 + v3; // 1.864416674
    expectClose(kr.ws, [k1, k2, k3], { ...TOL, label: 'krizhevsky wd' });
    expectClose(kr.ws.slice(0, 2), pt.ws.slice(0, 2), { ...TOL, label: 'agree at constant lr (wd)' });
    expect(Math.abs(kr.ws[2]! - pt.ws[2]!)).toBeGreaterThan(0.005); // 1.8644 vs 1.8751
  });

  it('dampening (PyTorch does not dampen its first step; Krizhevsky scales every gradient)', async () => {
    // w0 = 1, g = 0.4, -0.2, 0.6, lr 0.1, momentum 0.9, dampening 0.5
    const grads = [0.4, -0.2, 0.6];
    const lrs = [0.1, 0.1, 0.1];
    const pt = await run1(1, grads, lrs, { momentum: 0.9, dampening: 0.5 });
    const b1 = 0.4;
    const w1 = 1 - 0.1 * b1; // 0.96
    const b2 = 0.9 * b1 + 0.5 * -0.2; // 0.26
    const w2 = w1 - 0.1 * b2; // 0.934
    const b3 = 0.9 * b2 + 0.5 * 0.6; // 0.534
    const w3 = w2 - 0.1 * b3; // 0.8806
    expectClose(pt.ws, [w1, w2, w3], { ...TOL, label: 'pytorch dampening' });
    expectClose(pt.bs, [b1, b2, b3], { ...TOL, label: 'pytorch dampening buffer' });
    const kr = await run1(1, grads, lrs, { momentum: 0.9, dampening: 0.5, convention: 'krizhevsky' });
    const v1 = -0.1 * 0.5 * 0.4; // -0.02
    const v2 = 0.9 * v1 - 0.1 * 0.5 * -0.2; // -0.008
    const v3 = 0.9 * v2 - 0.1 * 0.5 * 0.6; // -0.0372
    expectClose(kr.ws, [1 + v1, 1 + v1 + v2, 1 + v1 + v2 + v3], { ...TOL, label: 'krizhevsky dampening' }); // 0.98, 0.972, 0.9348
    expectClose(kr.bs, [v1, v2, v3], { ...TOL, label: 'krizhevsky dampening buffer' });
  });

  it('nesterov (PyTorch) with weight decay', async () => {
    // w0 = 1, g = 0.4, -0.2, lr 0.1, momentum 0.9, weight decay 0.001
    const pt = await run1(1, [0.4, -0.2], [0.1, 0.1], { momentum: 0.9, nesterov: true, weightDecay: 0.001 });
    const g1 = 0.4 + 0.001 * 1; // 0.401
    const b1 = g1;
    const w1 = 1 - 0.1 * (g1 + 0.9 * b1); // 0.92381
    const g2 = -0.2 + 0.001 * w1; // -0.19907619
    const b2 = 0.9 * b1 + g2; // 0.16182381
    const w2 = w1 - 0.1 * (g2 + 0.9 * b2); // 0.9291534761
    expectClose(pt.ws, [w1, w2], { ...TOL, label: 'nesterov w' });
    expectClose(pt.bs, [b1, b2], { ...TOL, label: 'nesterov buffer' });
  });

  it('momentum 0 is plain SGD without a buffer, in both conventions', async () => {
    for (const convention of ['pytorch', 'krizhevsky'] as const) {
      const w = Tensor.from(f32([1, -2]), [2]);
      sgdStep(w, Tensor.from(f32([0.5, 0.25]), [2]), null, { lr: 0.1, weightDecay: 0.1, dampening: 0.5, convention });
      // w - lr (g + wd w); dampening has no effect without momentum
      expectClose(await w.data(), [1 - 0.1 * (0.5 + 0.1 * 1), -2 - 0.1 * (0.25 + 0.1 * -2)], { ...TOL, label: convention });
    }
  });
});

describe('sgdStep against the float64 reference', () => {
  it('updates views of a flat parameter store over 3 steps with an lr change', async () => {
    const r = rng();
    const n = 100_003; // crosses the parallel grain; odd
    const configs: Omit<SgdStepOptions, 'lr' | 'firstStep'>[] = [
      { momentum: 0.9, weightDecay: 0.0005 },
      { momentum: 0.9, weightDecay: 0.0005, convention: 'krizhevsky' },
      { momentum: 0.8, dampening: 0.3, convention: 'krizhevsky' },
      { momentum: 0.9, nesterov: true, weightDecay: 0.01 },
      { momentum: 0.5, dampening: 0.1 },
    ];
    for (const cfg of configs) {
      const w0 = f32(uniform(n, r));
      // [pad 3][param n][pad 2]; buffer store likewise
      const store = Tensor.from(f32(uniform(n + 5, r)), [n + 5]);
      const bufStore = Tensor.from(f32(uniform(n + 5, r)), [n + 5]);
      const padBefore = await store.data();
      const param = store.view(3, [n]);
      const buf = bufStore.view(3, [n]);
      copy(param, Tensor.from(w0, [n]));
      const wRef = f64(w0);
      const bRef = new Float64Array(n);
      for (const [s, lr] of [0.05, 0.05, 0.005].entries()) {
        const g = f32(uniform(n, r));
        const opts = { ...cfg, lr, firstStep: s === 0 };
        sgdStep(param, Tensor.from(g, [n]), buf, opts);
        sgdStepRef(wRef, g, bRef, opts);
      }
      const all = await store.data();
      expectClose(all.subarray(3, 3 + n), wRef, { atol: 1e-6, rtol: 1e-5, label: `param ${JSON.stringify(cfg)}` });
      expectClose(await buf.data(), bRef, { atol: 1e-6, rtol: 1e-5, label: `buffer ${JSON.stringify(cfg)}` });
      const pads = [0, 1, 2, n + 3, n + 4];
      expectClose(pads.map((i) => all[i]!), pads.map((i) => padBefore[i]!), { atol: 0, rtol: 0, label: 'store padding untouched' });
    }
  });
});

describe('sgdCheckOptions (the one definition of the options and their checks)', () => {
  it("fills in the kernel's defaults (all 0, 'pytorch'), returns what it checked, and refuses a bad caller", () => {
    const native = loadNative();
    expect(native.sgdCheckOptions({ lr: 0.25 })).toEqual({
      lr: 0.25, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, convention: 'pytorch', firstStep: false,
    });
    const lr = Math.random();
    const momentum = 0.5 + Math.random() / 2;
    const given = { lr, momentum, dampening: 0, weightDecay: lr / 7, nesterov: true, convention: 'pytorch', firstStep: true } as const;
    expect(native.sgdCheckOptions(given, 'SGD')).toEqual(given);
    expect(native.sgdCheckOptions({ lr, momentum, dampening: 0.25, convention: 'krizhevsky' })).toMatchObject({ dampening: 0.25, convention: 'krizhevsky', nesterov: false });
    expectCode(() => native.sgdCheckOptions(undefined as unknown as SgdStepOptions), 'ERR_ARGUMENT', /^sgdStep: expected options \{lr, \.\.\.\}$/);
    expectCode(() => native.sgdCheckOptions(null as unknown as SgdStepOptions, 'SGD'), 'ERR_ARGUMENT', /^SGD: expected options to be an object$/);
    expectCode(() => native.sgdCheckOptions({ lr: 1 }, 7 as unknown as string), 'ERR_ARGUMENT', /^sgdCheckOptions: expected caller to be a string$/);
  });
});

describe('sgdStep errors', () => {
  it('rejects bad hyper-parameters and inputs with typed errors, changes nothing, and keeps working', async () => {
    const w0 = [1, 2, 3];
    const w = Tensor.from(f32(w0), [3]);
    const g = Tensor.from(f32([0.5, 0.5, 0.5]), [3]);
    const b = Tensor.from(f32([0, 0, 0]), [3]);
    const bad: [SgdStepOptions, RegExp][] = [
      [{ lr: NaN, momentum: 0.9 }, /sgdStep: lr must be a finite number/],
      [{ lr: Infinity, momentum: 0.9 }, /lr must be a finite number/],
      [{ lr: 0.1, momentum: -Infinity }, /momentum must be a finite number/],
      [{ lr: 0.1, weightDecay: NaN }, /weightDecay must be a finite number/],
      [{ lr: -0.1 }, /lr must be >= 0/],
      [{ lr: 0.1, momentum: -0.9 }, /momentum must be >= 0/],
      [{ lr: 0.1, momentum: 0.9, dampening: 1.5 }, /dampening must be in \[0, 1\]/],
      [{ lr: 0.1, weightDecay: -1e-4 }, /weightDecay must be >= 0/],
      [{ lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }, /nesterov momentum requires momentum > 0 and zero dampening/],
      [{ lr: 0.1, momentum: 0, nesterov: true }, /nesterov momentum requires/],
      [{ lr: 0.1, momentum: 0.9, nesterov: true, convention: 'krizhevsky' }, /not defined for the krizhevsky convention/],
      [{ lr: 0.1, convention: 'adam' as 'pytorch' }, /convention must be 'pytorch' or 'krizhevsky'/],
      [{ lr: '0.1' as unknown as number }, /lr/],
      [{} as SgdStepOptions, /option 'lr' is required/],
    ];
    for (const [opts, msg] of bad) {
      expectCode(() => sgdStep(w, g, b, opts), 'ERR_ARGUMENT', msg);
      // sgdCheckOptions (what the SGD class runs at construction) is the same check, same text
      const stepMessage = (() => {
        try {
          sgdStep(w, g, b, opts);
        } catch (e) {
          return (e as Error).message;
        }
        return 'no error';
      })();
      expectCode(() => loadNative().sgdCheckOptions(opts), 'ERR_ARGUMENT', new RegExp(`^${escapeRegExp(stepMessage)}$`));
      expectCode(() => loadNative().sgdCheckOptions(opts, 'SGD'), 'ERR_ARGUMENT', new RegExp(`^${escapeRegExp(stepMessage.replace(/^sgdStep:/, 'SGD:'))}$`));
    }
    expectCode(() => sgdStep(w, g, null, { lr: 0.1, momentum: 0.9 }), 'ERR_ARGUMENT', /momentumBuffer is required/);
    expectCode(() => sgdStep(w, g, b, undefined as unknown as SgdStepOptions), 'ERR_ARGUMENT', /sgdStep/);
    expectCode(() => sgdStep(w, Tensor.from(f32([1, 2]), [2]), b, { lr: 0.1 }), 'ERR_SHAPE', /sgdStep: expected grad of shape \[3\]/);
    expectCode(() => sgdStep(w, g, Tensor.from(f32([1, 2, 3]), [1, 3]), { lr: 0.1, momentum: 0.9 }), 'ERR_SHAPE', /momentumBuffer/);
    expectCode(() => sgdStep(w, Tensor.from(new Int32Array(3), [3], { dtype: 'int32' }) as unknown as Tensor<'float32'>, b, { lr: 0.1 }), 'ERR_DTYPE', /grad/);
    const store = Tensor.from(f32([1, 2, 3, 4]), [4]);
    expectCode(() => sgdStep(store.view(0, [3]), store.view(1, [3]), b, { lr: 0.1 }), 'ERR_ARGUMENT', /overlap/);
    const gone = Tensor.from(f32([1, 2, 3]), [3]);
    gone.dispose();
    expectCode(() => sgdStep(w, gone, b, { lr: 0.1 }), 'ERR_DISPOSED');
    expectCode(() => sgdStep(w, g, gone, { lr: 0.1, momentum: 0.9 }), 'ERR_DISPOSED');
    // nothing was queued
    expect(Array.from(await w.data())).toEqual(w0);
    expect(Array.from(await b.data())).toEqual([0, 0, 0]);
    sgdStep(w, g, b, { lr: 0.1, momentum: 0.9, firstStep: true });
    expectClose(await w.data(), [0.95, 1.95, 2.95], { ...TOL, label: 'valid step after errors' });
  });
});
