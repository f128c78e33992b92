// conv2d and conv2dBackward on bfloat16 inputs (float32 accumulation) against float64 computed on
// the bfloat16-rounded inputs, with a tolerance derived from the reduction length and bfloat16's
// precision, on both CPU kernels (AVX-512 BF16 where this CPU has it, and the portable path);
// the dtype rules; and on CUDA (skipped without a GPU) against the same reference and the CPU.
import { afterAll, describe, expect, it } from 'vitest';
import * as A from '../src/index.js';
import { Tensor, conv2d, conv2dBackward } from '../src/index.js';
import { cudaEmulated, describeCuda } from './cuda-gate.js';
import { expectCode, normal, rng } from './helpers.js';
import { bf16Value, f32Bits, f32BitsToBf16 } from './reference/bf16.js';

const info = A.backendInfo().backends.cpu;
// AMX where the CPU has it (its tiles take the packed GEMM: from 96 rows here), then the AVX-512 BF16 kernel alone
const KERNELS: ('amx_bf16' | 'avx512_bf16' | 'portable')[] = [...(info.bf16AmxHardware ? ['amx_bf16' as const] : []), ...(info.bf16Hardware ? ['avx512_bf16' as const] : []), 'portable'];

afterAll(() => A.setBf16Kernel('auto'));

/** Random values already rounded to bfloat16 (as patterns and as numbers). */
function bf16Random(n: number, r: () => number, std = 1): { bits: Uint16Array; values: Float64Array } {
  const bits = Uint16Array.from(normal(n, r, std), (v) => f32BitsToBf16(f32Bits(v)));
  return { bits, values: Float64Array.from(bits, bf16Value) };
}

interface Geometry {
  N: number; C: number; H: number; W: number; O: number; kH: number; kW: number;
  stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number;
}

function geometry(N: number, C: number, H: number, W: number, O: number, k: number | [number, number], stride: number | [number, number], padding: number | [number, number], groups = 1, dilation = 1): Geometry {
  const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);
  const [kH, kW] = pair(k);
  return { N, C, H, W, O, kH, kW, stride: pair(stride), padding: pair(padding), dilation: [dilation, dilation], groups };
}

const outSize = (g: Geometry) => [
  Math.floor((g.H + 2 * g.padding[0] - g.dilation[0] * (g.kH - 1) - 1) / g.stride[0]) + 1,
  Math.floor((g.W + 2 * g.padding[1] - g.dilation[1] * (g.kW - 1) - 1) / g.stride[1]) + 1,
] as const;

/**
 * Visits every (n, o, oh, ow, c, kh, kw) whose input element lies inside x: f(yIndex, xIndex, wIndex).
 */
function forEachTap(g: Geometry, f: (yi: number, xi: number, wi: number) => void): void {
  const [Ho, Wo] = outSize(g);
  const Cg = g.C / g.groups, Og = g.O / g.groups;
  for (let n = 0; n < g.N; n++)
    for (let o = 0; o < g.O; o++) {
      const grp = Math.floor(o / Og);
      for (let oh = 0; oh < Ho; oh++)
        for (let ow = 0; ow < Wo; ow++) {
          const yi = ((n * g.O + o) * Ho + oh) * Wo + ow;
          for (let cg = 0; cg < Cg; cg++) {
            const c = grp * Cg + cg;
            for (let kh = 0; kh < g.kH; kh++) {
              const ih = oh * g.stride[0] - g.padding[0] + kh * g.dilation[0];
              if (ih < 0 || ih >= g.H) continue;
              for (let kw = 0; kw < g.kW; kw++) {
                const iw = ow * g.stride[1] - g.padding[1] + kw * g.dilation[1];
                if (iw < 0 || iw >= g.W) continue;
                f(yi, ((n * g.C + c) * g.H + ih) * g.W + iw, ((o * Cg + cg) * g.kH + kh) * g.kW + kw);
              }
            }
          }
        }
    }
}

/**
 * float64 forward reference and its bound: float32 accumulation of L = C/groups*kH*kW exact
 * products plus the bias is within (L + 1) 2^-24 (sum |x w| + |b|); a bfloat16 output adds its
 * rounding, 2^-8 |y|. `conv` is the sum without the bias (CUDA's bfloat16 output rounds it first).
 */
function forwardRef(g: Geometry, x: Float64Array, w: Float64Array, b: Float32Array | null, relu: boolean) {
  const [Ho, Wo] = outSize(g);
  const S = Ho * Wo, n = g.N * g.O * S;
  const conv = new Float64Array(n), mag = new Float64Array(n);
  forEachTap(g, (yi, xi, wi) => {
    const p = x[xi]! * w[wi]!;
    conv[yi] += p;
    mag[yi] += Math.abs(p);
  });
  const L = (g.C / g.groups) * g.kH * g.kW;
  const y = new Float64Array(n), accum = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const bias = b === null ? 0 : b[Math.floor(i / S) % g.O]!;
    const v = conv[i]! + bias;
    y[i] = relu ? Math.max(v, 0) : v;
    accum[i] = (L + 1) * 2 ** -24 * (mag[i]! + Math.abs(bias));
  }
  const tol32 = accum;
  const tol16 = accum.map((a, i) => a * (1 + 2 ** -8) + 2 ** -8 * Math.abs(y[i]!));
  return { y, conv, tol32, tol16 };
}

/**
 * float64 gradients and their bounds: dx sums L = O/groups*kH*kW products at most, then is
 * rounded to bfloat16; dw and db sum N*Ho*Wo terms in float32.
 */
function backwardRef(g: Geometry, dy: Float64Array, x: Float64Array, w: Float64Array) {
  const [Ho, Wo] = outSize(g);
  const S = Ho * Wo;
  const dx = new Float64Array(x.length), dxMag = new Float64Array(x.length);
  const dw = new Float64Array(w.length), dwMag = new Float64Array(w.length);
  forEachTap(g, (yi, xi, wi) => {
    const a = dy[yi]! * w[wi]!;
    dx[xi] += a;
    dxMag[xi] += Math.abs(a);
    const c = dy[yi]! * x[xi]!;
    dw[wi] += c;
    dwMag[wi] += Math.abs(c);
  });
  const db = new Float64Array(g.O), dbMag = new Float64Array(g.O);
  for (let i = 0; i < dy.length; i++) {
    const o = Math.floor(i / S) % g.O;
    db[o] += dy[i]!;
    dbMag[o] += Math.abs(dy[i]!);
  }
  const Lx = (g.O / g.groups) * g.kH * g.kW, Lw = g.N * S;
  return {
    dx,
    dxTol: dxMag.map((m, i) => (Lx + 1) * 2 ** -24 * m * (1 + 2 ** -8) + 2 ** -8 * Math.abs(dx[i]!)),
    dw,
    dwTol: dwMag.map((m) => (Lw + 1) * 2 ** -24 * m),
    db,
    dbTol: dbMag.map((m) => (Lw + 1) * 2 ** -24 * m),
  };
}

function expectWithin(got: ArrayLike<number>, want: Float64Array, tol: ArrayLike<number>, label: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= tol[i]!)) expect.fail(`${label}: [${i}] got ${got[i]}, want ${want[i]} (|diff| ${err.toExponential(3)} > ${tol[i]!.toExponential(3)})`);
  }
}

const bf16Values = async (t: Tensor<'bfloat16'>) => Float64Array.from(await t.data(), bf16Value);

// Odd channel counts and sizes, stride 2 and 4, padding, 1x1, 11x11 (conv1's kernel), groups,
// dilation, an odd number of output channels per group, a reduction past 2048 (the kernel's
// k-block), enough output positions (>= 256) for the row-split GEMM, and output channels per
// group and C/groups*kH*kW from 96 (the packed GEMM's rows forward and backward; odd reductions,
// odd Og, column panels cut short).
const SHAPES: Geometry[] = [
  geometry(2, 3, 9, 11, 5, 3, 1, 1),
  geometry(1, 5, 13, 13, 7, 3, 2, 0),
  geometry(2, 3, 27, 23, 4, 11, 4, 2),
  geometry(2, 7, 6, 5, 9, 1, 1, 0),
  geometry(3, 6, 8, 7, 10, 5, 1, 2, 2),
  geometry(1, 4, 10, 9, 3, [3, 2], [2, 1], [2, 0], 1, 2),
  geometry(2, 33, 7, 9, 17, 3, 1, 1),
  geometry(1, 230, 5, 5, 3, 3, 1, 1),
  geometry(2, 48, 13, 13, 32, 3, 1, 1),
  geometry(2, 24, 9, 8, 194, 3, 1, 1, 2),
  geometry(1, 11, 12, 12, 100, 3, 1, 0),
];

async function checkForward(device: string, shapes: Geometry[], cudaDoubleRounding = false): Promise<void> {
  const r = rng();
  for (const g of shapes) {
    const x = bf16Random(g.N * g.C * g.H * g.W, r);
    const w = bf16Random(g.O * (g.C / g.groups) * g.kH * g.kW, r, 0.3);
    const bias = Float32Array.from(normal(g.O, r));
    const o16 = { dtype: 'bfloat16' as const, device };
    const tx = Tensor.from(x.bits, [g.N, g.C, g.H, g.W], o16);
    const tw = Tensor.from(w.bits, [g.O, g.C / g.groups, g.kH, g.kW], o16);
    const tb = Tensor.from(bias, [g.O], { device });
    const opts = { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups };
    for (const withBias of [true, false]) {
      for (const relu of [false, true]) {
        const ref = forwardRef(g, x.values, w.values, withBias ? bias : null, relu);
        const label = `${device} ${JSON.stringify(g)} bias=${withBias} relu=${relu}`;
        const y32 = conv2d(tx, tw, withBias ? tb : null, { ...opts, relu });
        expect(y32.dtype).toBe('float32');
        expect(y32.shape).toEqual([g.N, g.O, ...outSize(g)]);
        const got32 = await y32.data();
        expectWithin(got32, ref.y, ref.tol32, `${label} f32`);
        const y16 = conv2d(tx, tw, withBias ? tb : null, { ...opts, relu, outDtype: 'bfloat16' });
        expect(y16.dtype).toBe('bfloat16');
        const got16 = await y16.data();
        if (cudaDoubleRounding && withBias) {
          // cuDNN rounds the sum, our epilogue rounds sum + bias: 2^-8 of each more.
          const tol = ref.tol16.map((t, i) => t * (1 + 2 ** -8) + 2 ** -8 * Math.abs(ref.conv[i]!) * (1 + 2 ** -7));
          expectWithin(Float64Array.from(got16, bf16Value), ref.y, tol, `${label} bf16`);
        } else {
          expectWithin(Float64Array.from(got16, bf16Value), ref.y, ref.tol16, `${label} bf16`);
        }
        if (device === 'cpu') {
          // on the CPU the bfloat16 output is the float32 output rounded once
          const rounded = Uint16Array.from(got32, (v) => f32BitsToBf16(f32Bits(v)));
          const bad = rounded.findIndex((v, i) => v !== got16[i]);
          expect(bad, `${label}: bf16 output [${bad}] is not the f32 output rounded`).toBe(-1);
        }
      }
    }
  }
}

async function checkBackward(device: string, shapes: Geometry[]): Promise<void> {
  const r = rng();
  for (const g of shapes) {
    const [Ho, Wo] = outSize(g);
    const x = bf16Random(g.N * g.C * g.H * g.W, r);
    const w = bf16Random(g.O * (g.C / g.groups) * g.kH * g.kW, r, 0.3);
    const dy = bf16Random(g.N * g.O * Ho * Wo, r);
    const o16 = { dtype: 'bfloat16' as const, device };
    const tx = Tensor.from(x.bits, [g.N, g.C, g.H, g.W], o16);
    const tw = Tensor.from(w.bits, [g.O, g.C / g.groups, g.kH, g.kW], o16);
    const tdy = Tensor.from(dy.bits, [g.N, g.O, Ho, Wo], o16);
    const opts = { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups };
    const ref = backwardRef(g, dy.values, x.values, w.values);
    const label = `${device} ${JSON.stringify(g)}`;
    const gr = conv2dBackward(tdy, tx, tw, opts);
    expect(gr.gradInput!.dtype).toBe('bfloat16');
    expect(gr.gradWeight.dtype).toBe('float32');
    expect(gr.gradBias!.dtype).toBe('float32');
    expectWithin(await bf16Values(gr.gradInput!), ref.dx, ref.dxTol, `${label} gradInput`);
    expectWithin(await gr.gradWeight.data(), ref.dw, ref.dwTol, `${label} gradWeight`);
    expectWithin(await gr.gradBias!.data(), ref.db, ref.dbTol, `${label} gradBias`);
    // accumulate adds into the float32 gradients given
    const start = Float32Array.from(normal(ref.dw.length, r));
    const startB = Float32Array.from(normal(g.O, r));
    const gw = Tensor.from(start, [g.O, g.C / g.groups, g.kH, g.kW], { device });
    const gb = Tensor.from(startB, [g.O], { device });
    const acc = conv2dBackward(tdy, tx, tw, { ...opts, gradWeight: gw, gradBias: gb, accumulate: true, computeGradInput: false });
    expect(acc.gradInput).toBeNull();
    expect(acc.gradWeight).toBe(gw);
    const addTol = (tol: Float64Array, s: Float32Array, v: Float64Array) => tol.map((t, i) => t + 2 ** -24 * (Math.abs(s[i]!) + Math.abs(v[i]!)));
    expectWithin(await acc.gradWeight.data(), ref.dw.map((v, i) => v + start[i]!), addTol(ref.dwTol, start, ref.dw), `${label} gradWeight accumulated`);
    expectWithin(await acc.gradBias!.data(), ref.db.map((v, i) => v + startB[i]!), addTol(ref.dbTol, startB, ref.db), `${label} gradBias accumulated`);
  }
}

for (const kernel of KERNELS) {
  describe(`conv2d on bfloat16, ${kernel} kernel`, () => {
    it('matches float64 on the bfloat16 inputs: float32 and bfloat16 output, bias, fused ReLU, awkward shapes', async () => {
      A.setBf16Kernel(kernel);
      await checkForward('cpu', SHAPES);
    });

    it('the float32 tolerance is tight enough to catch a sum rounded to bfloat16 on the way', async () => {
      A.setBf16Kernel(kernel);
      const r = rng();
      const g = geometry(2, 16, 9, 9, 8, 3, 1, 1);
      const x = bf16Random(g.N * g.C * g.H * g.W, r);
      const w = bf16Random(g.O * g.C * 9, r, 0.02);
      const y = await conv2d(Tensor.from(x.bits, [2, 16, 9, 9], { dtype: 'bfloat16' }), Tensor.from(w.bits, [8, 16, 3, 3], { dtype: 'bfloat16' }), null, { padding: 1 }).data();
      const ref = forwardRef(g, x.values, w.values, null, false);
      expectWithin(y, ref.y, ref.tol32, 'float32 output');
      let wouldFail = 0;
      for (let i = 0; i < y.length; i++) if (Math.abs(bf16Value(f32BitsToBf16(f32Bits(y[i]!))) - ref.y[i]!) > ref.tol32[i]!) wouldFail++;
      expect(wouldFail).toBeGreaterThan(y.length / 2);
    });

    it('conv2dBackward: gradInput (bfloat16), gradWeight and gradBias (float32) match float64, and accumulate', async () => {
      A.setBf16Kernel(kernel);
      await checkBackward('cpu', SHAPES);
    });

    it('an empty batch gives an empty output and zero (or unchanged) weight gradients', async () => {
      A.setBf16Kernel(kernel);
      const x = Tensor.zeros([0, 3, 5, 5], { dtype: 'bfloat16' });
      const w = Tensor.from(Uint16Array.from(normal(4 * 3 * 9, rng()), (v) => f32BitsToBf16(f32Bits(v))), [4, 3, 3, 3], { dtype: 'bfloat16' });
      const y = conv2d(x, w, null, { outDtype: 'bfloat16' });
      expect(y.shape).toEqual([0, 4, 3, 3]);
      const g = conv2dBackward(Tensor.zeros([0, 4, 3, 3], { dtype: 'bfloat16' }), x, w);
      expect(g.gradInput!.shape).toEqual([0, 3, 5, 5]);
      expect([...(await g.gradWeight.data())].every((v) => v === 0)).toBe(true);
      expect([...(await g.gradBias!.data())]).toEqual([0, 0, 0, 0]);
    });
  });
}

describe('conv2d on bfloat16: the CPU kernels agree', () => {
  it.runIf(KERNELS.includes('avx512_bf16'))('avx512_bf16 and portable give close float32 sums (AlexNet conv3-like layer)', async () => {
    const r = rng();
    const g = geometry(2, 64, 13, 13, 48, 3, 1, 1);
    const x = bf16Random(g.N * g.C * g.H * g.W, r);
    const w = bf16Random(g.O * g.C * 9, r, 0.1);
    const run = async (k: 'avx512_bf16' | 'portable') => {
      A.setBf16Kernel(k);
      return conv2d(Tensor.from(x.bits, [2, 64, 13, 13], { dtype: 'bfloat16' }), Tensor.from(w.bits, [48, 64, 3, 3], { dtype: 'bfloat16' }), null, { padding: 1 }).data();
    };
    const a = await run('avx512_bf16');
    const p = await run('portable');
    const ref = forwardRef(g, x.values, w.values, null, false);
    expectWithin(a, Float64Array.from(p), ref.tol32.map((t) => 2 * t), 'avx512 vs portable');
  });
});

describe('conv2d dtype rules', () => {
  it('refuses every other dtype combination with ERR_DTYPE naming the operator', () => {
    const b = Tensor.zeros([1, 2, 4, 4], { dtype: 'bfloat16' });
    const bw = Tensor.zeros([3, 2, 3, 3], { dtype: 'bfloat16' });
    const f = Tensor.zeros([1, 2, 4, 4]);
    const fw = Tensor.zeros([3, 2, 3, 3]);
    const dy16 = Tensor.zeros([1, 3, 2, 2], { dtype: 'bfloat16' });
    const dy32 = Tensor.zeros([1, 3, 2, 2]);
    const cases: [RegExp, () => unknown][] = [
      [/^conv2d: input is bfloat16 but weight is float32/, () => conv2d(b, fw as never)],
      [/^conv2d: input is float32 but weight is bfloat16/, () => conv2d(f, bw as never)],
      [/^conv2d.*bias/, () => conv2d(b, bw, Tensor.zeros([3], { dtype: 'bfloat16' }) as never)],
      [/^conv2d: outDtype bfloat16/, () => conv2d(f, fw, null, { outDtype: 'bfloat16' } as never)],
      [/^conv2d: outDtype int32/, () => conv2d(b, bw, null, { outDtype: 'int32' as never })],
      [/^conv2dBackward.*gradOutput/, () => conv2dBackward(dy32 as never, b, bw)],
      [/^conv2dBackward.*gradOutput/, () => conv2dBackward(dy16 as never, f, fw)],
      [/^conv2dBackward: input is bfloat16 but weight is float32/, () => conv2dBackward(dy16, b, fw as never)],
      [/^conv2dBackward.*gradWeight/, () => conv2dBackward(dy16, b, bw, { gradWeight: Tensor.zeros([3, 2, 3, 3], { dtype: 'bfloat16' }) as never })],
      [/^conv2dBackward.*gradBias/, () => conv2dBackward(dy16, b, bw, { gradBias: Tensor.zeros([3], { dtype: 'bfloat16' }) as never })],
    ];
    for (const [message, fn] of cases) expectCode(fn, 'ERR_DTYPE', message);
  });
});

describeCuda('conv2d on bfloat16 on CUDA against float64 and the CPU', () => {
  // AlexNet's conv2 at batch 16 too, for cuDNN's real algorithms at that size; not on the emulated
  // device, where the float64 reference alone takes minutes and the stand-in has one algorithm
  const CUDA_SHAPES = cudaEmulated ? SHAPES : [...SHAPES, geometry(16, 96, 27, 27, 256, 5, 1, 2)];

  it('forward (cuDNN, bfloat16 tensors, float compute) matches float64 on the bfloat16 inputs', async () => {
    await checkForward('cuda:0', CUDA_SHAPES, /*cudaDoubleRounding=*/true);
  });

  it('backward: bfloat16 gradInput from cuDNN, float32 gradWeight / gradBias, match float64 and accumulate', async () => {
    await checkBackward('cuda:0', SHAPES);
  });

  it('gives what the CPU bfloat16 operator gives, within both bounds', async () => {
    const r = rng();
    const g = geometry(4, 64, 13, 13, 96, 3, 1, 1);
    const x = bf16Random(g.N * g.C * g.H * g.W, r);
    const w = bf16Random(g.O * g.C * 9, r, 0.1);
    const bias = Float32Array.from(normal(g.O, r));
    const run = async (device: string) =>
      conv2d(
        Tensor.from(x.bits, [g.N, g.C, g.H, g.W], { dtype: 'bfloat16', device }),
        Tensor.from(w.bits, [g.O, g.C, 3, 3], { dtype: 'bfloat16', device }),
        Tensor.from(bias, [g.O], { device }),
        { padding: 1, relu: true },
      ).data();
    const ref = forwardRef(g, x.values, w.values, bias, true);
    expectWithin(await run('cuda:0'), Float64Array.from(await run('cpu')), ref.tol32.map((t) => 2 * t), 'cuda vs cpu');
  });
});
