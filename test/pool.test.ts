import { describe, expect, it } from 'vitest';
import { backendInfo, cpuKernelsUsed, maxPool2d, maxPool2dBackward, setCpuIsa, Tensor } from '../src/index.js';
import { dot, expectClose, expectCode, f32, f64, finiteDifference, rng, sampleIndices, uniform } from './helpers.js';
import { checkEmptyPool } from './empty-sizes.js';
import { maxPool2dBackwardRef, maxPool2dRef, poolOutSize, type PoolGeometry } from './reference/pool.js';

type Pair = [number, number];
interface Case {
  N: number;
  C: number;
  H: number;
  W: number;
  kernel: Pair;
  stride?: Pair;
  padding?: Pair;
}

const geometry = (c: Case): PoolGeometry => ({ ...c, stride: c.stride ?? c.kernel, padding: c.padding ?? [0, 0] });
const opts = (c: Case) => ({ kernelSize: c.kernel, ...(c.stride ? { stride: c.stride } : {}), ...(c.padding ? { padding: c.padding } : {}) });

const cases: Case[] = [
  { N: 1, C: 3, H: 7, W: 9, kernel: [3, 3], stride: [2, 2] }, // AlexNet's overlapping pooling
  { N: 3, C: 5, H: 10, W: 7, kernel: [2, 3], stride: [1, 2], padding: [1, 1] },
  { N: 2, C: 7, H: 9, W: 8, kernel: [2, 2] }, // stride defaults to the kernel
  { N: 3, C: 3, H: 11, W: 11, kernel: [3, 3], stride: [2, 2], padding: [1, 1] },
  { N: 1, C: 5, H: 13, W: 6, kernel: [3, 2], stride: [4, 3], padding: [1, 0] },
  { N: 2, C: 2, H: 5, W: 4, kernel: [5, 4] },
];

describe('maxPool2d', () => {
  it.each(cases)('forward and backward match the float64 reference and finite differences: %j', async (c) => {
    const r = rng();
    const g = geometry(c);
    const [Ho, Wo] = poolOutSize(g);
    const x = f64(f32(uniform(g.N * g.C * g.H * g.W, r, -2, 2)));
    const dy = f64(f32(uniform(g.N * g.C * Ho * Wo, r)));
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const ty = maxPool2d(tx, opts(c));
    expect(ty.shape).toEqual([g.N, g.C, Ho, Wo]);
    expectClose(await ty.data(), maxPool2dRef(x, g), { atol: 0, rtol: 0, label: 'maxPool2d forward' });

    const dx = await maxPool2dBackward(Tensor.from(f32(dy), [g.N, g.C, Ho, Wo]), tx, ty, opts(c)).data();
    expectClose(dx, maxPool2dBackwardRef(dy, x, g), { atol: 1e-6, rtol: 1e-6, label: 'maxPool2d backward vs analytic' });
    // max is piecewise linear: a small step keeps every window's arg-max in place
    const fd = finiteDifference((v) => dot(maxPool2dRef(v, g), dy), x, { h: 1e-6, indices: sampleIndices(x.length, 40, r) });
    expectClose(
      [...fd.keys()].map((i) => dx[i]!),
      [...fd.values()],
      { atol: 1e-5, rtol: 1e-4, label: 'maxPool2d backward vs finite differences' },
    );
  });

  it('pads with -inf, not zeros', async () => {
    const r = rng();
    const g = geometry({ N: 2, C: 3, H: 6, W: 5, kernel: [3, 3], stride: [2, 2], padding: [1, 1] });
    const x = f64(f32(uniform(2 * 3 * 6 * 5, r, -3, -1)));
    const y = await maxPool2d(Tensor.from(f32(x), [2, 3, 6, 5]), { kernelSize: 3, stride: 2, padding: 1 }).data();
    for (const v of y) expect(v).toBeLessThan(-1 + 1e-6);
    expectClose(y, maxPool2dRef(x, g), { atol: 0, rtol: 0, label: 'all-negative input with padding' });
  });

  it.each([
    { N: 2, C: 3, H: 27, W: 29, kernel: [3, 3], stride: [2, 2] },
    { N: 1, C: 2, H: 13, W: 12, kernel: [3, 2], stride: [2, 1], padding: [1, 1] },
  ] as Case[])('backward routes to the first maximum, or the first NaN, with many ties and NaNs: %j', async (c) => {
    const r = rng();
    const g = geometry(c);
    const n = c.N * c.C * c.H * c.W;
    // values on a coarse grid (ties everywhere) and about 5% NaN
    const x = new Float32Array(n).map(() => (r() < 0.05 ? NaN : Math.floor(r() * 4)));
    const tx = Tensor.from(x, [c.N, c.C, c.H, c.W]);
    const y = maxPool2d(tx, opts(c));
    const dyv = f32(uniform(y.shape.reduce((a, b) => a * b, 1), r));
    const dx = await maxPool2dBackward(Tensor.from(dyv, y.shape), tx, y, opts(c)).data();
    expectClose(dx, maxPool2dBackwardRef(dyv, x, g), { atol: 1e-6, rtol: 1e-6, label: 'NaN/tie routing' });
  });

  it('routes ties to the first element of the window and accumulates overlapping windows', async () => {
    const r = rng();
    const dyv = uniform(4, r);
    const opt = { kernelSize: 3, stride: 2 };
    const dy = Tensor.from(f32(dyv), [1, 1, 2, 2]);
    // all equal: each window's first (top-left) element wins
    const flat = Tensor.from(new Float32Array(25).fill(0.5), [1, 1, 5, 5]);
    const d1 = await maxPool2dBackward(dy, flat, maxPool2d(flat, opt), opt).data();
    const want1 = new Float64Array(25);
    want1[0] = f32(dyv)[0]!;
    want1[2] = f32(dyv)[1]!;
    want1[10] = f32(dyv)[2]!;
    want1[12] = f32(dyv)[3]!;
    expectClose(d1, want1, { atol: 0, rtol: 0, label: 'ties' });
    // one peak at the centre shared by all four overlapping windows
    const peak = new Float32Array(25).fill(-1);
    peak[12] = 3;
    const tp = Tensor.from(peak, [1, 1, 5, 5]);
    const yp = maxPool2d(tp, opt);
    expectClose(await yp.data(), [3, 3, 3, 3], { atol: 0, rtol: 0, label: 'peak forward' });
    const d2 = await maxPool2dBackward(dy, tp, yp, opt).data();
    const want2 = new Float64Array(25);
    want2[12] = f32(dyv).reduce((a, b) => a + b, 0);
    expectClose(d2, want2, { atol: 1e-6, rtol: 1e-6, label: 'overlapping windows accumulate' });
  });

  // The forward pass's AVX-512 row pass for 3-wide stride-2 windows (16 output columns a step,
  // masked at the row's end) against the scalar build (under setCpuIsa('avx2')) and against
  // the window fold written here, bit for bit: values on a grid of ties, both zeros, and quiet
  // NaNs with distinct payloads, so which of equal values or which NaN comes out is visible.
  it('the 3x3 stride-2 forward picks, bit for bit, the first of equal values and the last NaN in row-major window order, in every build', async () => {
    const hardware = backendInfo().backends.cpu.isaHardware;
    const r = rng();
    const shapes: Case[] = [
      { N: 1, C: 3, H: 9, W: 55, kernel: [3, 3], stride: [2, 2] }, // 27 columns: 16 + 11
      { N: 2, C: 2, H: 7, W: 67, kernel: [3, 3], stride: [2, 2], padding: [1, 1] }, // 34 + border
      { N: 1, C: 2, H: 6, W: 34, kernel: [3, 3], stride: [2, 2], padding: [0, 1] }, // 16 + borders
      { N: 1, C: 4, H: 5, W: 33, kernel: [3, 3], stride: [2, 2] }, // exactly 16
      { N: 1, C: 2, H: 5, W: 4, kernel: [3, 3], stride: [2, 2], padding: [1, 1] }, // borders only
    ];
    const bits = new Uint32Array(1);
    const asF32 = new Float32Array(bits.buffer);
    try {
      for (const c of shapes) {
        const g = geometry(c);
        const [Ho, Wo] = poolOutSize(g);
        const n = g.N * g.C * g.H * g.W;
        const xb = new Uint32Array(n);
        for (let i = 0; i < n; i++) {
          const u = r();
          // 0x80000000 is -0; NaN payloads 1..4095 (quiet), about 4% of the inputs
          xb[i] = u < 0.04 ? 0x7fc00000 + 1 + Math.floor(r() * 4095) : u < 0.3 ? 0x80000000 : u < 0.55 ? 0 : ((asF32[0] = Math.floor(r() * 3) - 2), bits[0]!);
        }
        const x = new Float32Array(xb.buffer);
        // the reference: the window's index by the rule `v > m || v is NaN` in row-major order
        const want = new Uint32Array(g.N * g.C * Ho * Wo);
        const [kH, kW] = g.kernel, [sH, sW] = g.stride, [pH, pW] = g.padding;
        for (let p = 0; p < g.N * g.C; p++)
          for (let oh = 0; oh < Ho; oh++)
            for (let ow = 0; ow < Wo; ow++) {
              let best = -1;
              for (let h = oh * sH - pH; h < oh * sH - pH + kH; h++)
                for (let w = ow * sW - pW; w < ow * sW - pW + kW; w++) {
                  if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
                  const i = (p * g.H + h) * g.W + w;
                  if (best < 0 || x[i]! > x[best]! || Number.isNaN(x[i]!)) best = i;
                }
              want[(p * Ho + oh) * Wo + ow] = xb[best]!;
            }
        for (const isa of ['auto', 'avx2'] as const) {
          setCpuIsa(isa);
          cpuKernelsUsed({ reset: true });
          const y = await maxPool2d(Tensor.from(x, [g.N, g.C, g.H, g.W]), opts(c)).data();
          const got = new Uint32Array(y.buffer, y.byteOffset, y.length);
          const bad = [...got.keys()].filter((i) => got[i] !== want[i]);
          expect(bad.slice(0, 5).map((i) => `${i}: ${got[i]!.toString(16)} != ${want[i]!.toString(16)}`), `${isa} ${JSON.stringify(c)}`).toEqual([]);
          if (isa === 'auto' && hardware === 'avx512') expect(cpuKernelsUsed()).toContain('simd.avx512');
        }
      }
    } finally {
      setCpuIsa('auto');
    }
  });

  it('AlexNet pool1 (96 x 55x55, 3x3 stride 2) at batch 2', async () => {
    const r = rng();
    const g = geometry({ N: 2, C: 96, H: 55, W: 55, kernel: [3, 3], stride: [2, 2] });
    const x = f64(f32(uniform(2 * 96 * 55 * 55, r)));
    const tx = Tensor.from(f32(x), [2, 96, 55, 55]);
    const ty = maxPool2d(tx, { kernelSize: 3, stride: 2 });
    expect(ty.shape).toEqual([2, 96, 27, 27]);
    expectClose(await ty.data(), maxPool2dRef(x, g), { atol: 0, rtol: 0, label: 'pool1 forward' });
    const dy = f64(f32(uniform(2 * 96 * 27 * 27, r)));
    const dx = await maxPool2dBackward(Tensor.from(f32(dy), ty.shape), tx, ty, { kernelSize: 3, stride: 2 }).data();
    expectClose(dx, maxPool2dBackwardRef(dy, x, g), { atol: 1e-6, rtol: 1e-6, label: 'pool1 backward' });
  });

  it('rejects bad input with typed errors and keeps working', async () => {
    const r = rng();
    const t = (shape: number[]) => Tensor.from(f32(uniform(shape.reduce((a, b) => a * b, 1), r)), shape);
    const x = t([2, 3, 8, 8]);
    expectCode(() => maxPool2d(t([3, 8, 8]), { kernelSize: 2 }), 'ERR_SHAPE', /maxPool2d: expected input .*4 dimensions/);
    expectCode(() => maxPool2d(Tensor.from(new Int32Array(16), [1, 1, 4, 4]), { kernelSize: 2 }), 'ERR_DTYPE', /maxPool2d/);
    expectCode(() => maxPool2d(x, {} as { kernelSize: number }), 'ERR_ARGUMENT', /kernelSize/);
    expectCode(() => maxPool2d(x, undefined as unknown as { kernelSize: number }), 'ERR_ARGUMENT', /kernelSize/);
    expectCode(() => maxPool2d(x, { kernelSize: 0 }), 'ERR_ARGUMENT', /kernelSize must be positive/);
    expectCode(() => maxPool2d(x, { kernelSize: 2.5 }), 'ERR_ARGUMENT', /kernelSize/);
    expectCode(() => maxPool2d(x, { kernelSize: 2, stride: 0 }), 'ERR_ARGUMENT', /stride/);
    expectCode(() => maxPool2d(x, { kernelSize: 2, padding: -1 }), 'ERR_ARGUMENT', /padding/);
    expectCode(() => maxPool2d(x, { kernelSize: 3, padding: 2 }), 'ERR_ARGUMENT', /at most half of the kernel size/);
    expectCode(() => maxPool2d(x, { kernelSize: [9, 2] }), 'ERR_SHAPE', /larger than the padded input/);
    const y = maxPool2d(x, { kernelSize: 2 });
    expectCode(() => maxPool2dBackward(t([2, 3, 4, 5]), x, y, { kernelSize: 2 }), 'ERR_SHAPE', /maxPool2dBackward: expected gradOutput of shape \[2, 3, 4, 4\]/);
    expectCode(() => maxPool2dBackward(t([2, 3, 4, 4]), x, t([2, 3, 4, 3]), { kernelSize: 2 }), 'ERR_SHAPE', /output/);
    const gone = t([2, 3, 8, 8]);
    gone.dispose();
    expectCode(() => maxPool2d(gone, { kernelSize: 2 }), 'ERR_DISPOSED');
    expectCode(() => maxPool2dBackward(t([2, 3, 4, 4]), gone, y, { kernelSize: 2 }), 'ERR_DISPOSED');
    // still works
    const xs = f64(await x.data());
    expectClose(await maxPool2d(x, { kernelSize: 2 }).data(), maxPool2dRef(xs, geometry({ N: 2, C: 3, H: 8, W: 8, kernel: [2, 2] })), {
      atol: 0,
      rtol: 0,
      label: 'maxPool2d after errors',
    });
  });

  it('an empty batch or no channels: empty output and gradInput', async () => {
    await checkEmptyPool('cpu');
  });

  it('ties: each window gives its gradient to its first maximum in row-major order, and the total is conserved', async () => {
    const r = rng();
    // values from {-1, 0, 1}: most windows hold tied maxima; overlapping 3/2 windows with padding
    const g: PoolGeometry = { N: 2, C: 3, H: 9, W: 8, kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
    const [Ho, Wo] = poolOutSize(g);
    const x = f64(Array.from({ length: g.N * g.C * g.H * g.W }, () => Math.floor(r() * 3) - 1));
    const dy = f64(f32(uniform(g.N * g.C * Ho * Wo, r, 0.5, 1.5)));
    const o = { kernelSize: g.kernel, stride: g.stride, padding: g.padding };
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const ty = maxPool2d(tx, o);
    expectClose(await ty.data(), maxPool2dRef(x, g), { atol: 0, rtol: 0, label: 'tied forward' });
    const dx = await maxPool2dBackward(Tensor.from(f32(dy), [g.N, g.C, Ho, Wo]), tx, ty, o).data();
    expectClose(dx, maxPool2dBackwardRef(dy, x, g), { atol: 1e-6, rtol: 1e-6, label: 'tied backward: first maximum wins' });
    const total = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0);
    expect(Math.abs(total(dx) - total(dy))).toBeLessThan(1e-3);
  });
});
