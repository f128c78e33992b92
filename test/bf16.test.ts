// The bfloat16 dtype: conversions in both directions (against test/reference/bf16.ts: every one
// of the 65536 patterns, edge and random float32 inputs), on both CPU kernels (AVX-512 BF16
// where this CPU has it, and the portable path), the dtype's refusal by float32-only operators,
// and the bfloat16 linear layer against float64 on the bfloat16 inputs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as A from '../src/index.js';
import { Tensor, linear, loadCheckpoint, readSafetensors, saveCheckpoint } from '../src/index.js';
import { describeCuda } from './cuda-gate.js';
import { expectCode, normal, rng } from './helpers.js';
import { bf16ToF32Bits, bf16Value, checkNearest, f32BitsToBf16 } from './reference/bf16.js';

const info = A.backendInfo().backends.cpu;
// AMX where the CPU has it (its tiles take the packed GEMM: from 96 rows here), then the AVX-512 BF16 kernel alone
const KERNELS: ('amx_bf16' | 'avx512_bf16' | 'portable')[] = [...(info.bf16AmxHardware ? ['amx_bf16' as const] : []), ...(info.bf16Hardware ? ['avx512_bf16' as const] : []), 'portable'];

afterAll(() => A.setBf16Kernel('auto'));

/** float32 tensor from raw bit patterns. */
function fromBits(bits: Uint32Array, device = 'cpu'): Tensor<'float32'> {
  return Tensor.from(new Float32Array(bits.buffer, bits.byteOffset, bits.length), [bits.length], { device });
}
async function bitsOf(t: Tensor<'float32'>): Promise<Uint32Array> {
  const d = await t.data();
  return new Uint32Array(d.buffer, d.byteOffset, d.length);
}

/** Edge float32 inputs, as bits. */
const EDGES = [
  0x00000000, 0x80000000, // +-0
  0x00000001, 0x80000001, // smallest subnormal: rounds to 0
  0x00008000, 0x00008001, 0x00018000, 0x00017fff, // subnormal ties (to even 0, to 2) and near-ties
  0x007fffff, 0x807fffff, // largest subnormal: rounds up to the smallest normal
  0x00800000, 0x0080ffff, // smallest normal
  0x3f800000, 0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0xbf818000, // ties to even around 1
  0x3fffffff, // carry into the next binade
  0x7f7f0000, 0x7f7f7fff, 0x7f7f8000, 0x7f7fffff, 0xff7fffff, // max finite; its tie rounds to inf
  0x7f800000, 0xff800000, // +-inf
  0x7f800001, 0xff800001, 0x7fbfffff, 0x7fc00000, 0xffc00001, 0x7fffffff, 0x7f812345, // NaNs, signalling and quiet
];

/** `n` random float32 bit patterns over every exponent, and some of the edges. */
function randomBits(n: number, r: () => number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const pick = r();
    if (pick < 0.05) out[i] = EDGES[Math.floor(r() * EDGES.length)]!;
    else if (pick < 0.2) out[i] = ((Math.floor(r() * 0x10000) << 16) | 0x8000) >>> 0; // exact ties
    else out[i] = Math.floor(r() * 2 ** 32) >>> 0;
  }
  return out;
}

function firstMismatch(got: ArrayLike<number>, want: ArrayLike<number>, input?: ArrayLike<number>): string {
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) {
      const x = input === undefined ? '' : ` (input 0x${input[i]!.toString(16)})`;
      return `[${i}] got 0x${got[i]!.toString(16)}, want 0x${want[i]!.toString(16)}${x}`;
    }
  }
  return '';
}

describe('bfloat16 dtype', () => {
  it('is a tensor dtype: Uint16Array data, from numbers or raw patterns, zeros/full, views, copy', async () => {
    const bits = new Uint16Array([0x3f80, 0xc000, 0x7f80, 0x0001, 0x7fc1]);
    const t = Tensor.from(bits, [5], { dtype: 'bfloat16' });
    expect(t.dtype).toBe('bfloat16');
    expect(t.handle.nbytes).toBe(10);
    const d = await t.data();
    expect(d).toBeInstanceOf(Uint16Array);
    expect([...d]).toEqual([...bits]);
    // numbers: to float32, then to the nearest bfloat16
    const n = Tensor.from([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -3.5, 1e39], [5], { dtype: 'bfloat16' });
    expect([...(await n.data())]).toEqual([0x3f80, 0x3f80, 0x3f82, 0xc060, 0x7f80]);
    expect([...(await Tensor.zeros([3], { dtype: 'bfloat16' }).data())]).toEqual([0, 0, 0]);
    expect([...(await Tensor.full([2], 0.1, { dtype: 'bfloat16' }).data())]).toEqual([0x3dcd, 0x3dcd]);
    const v = t.view(1, [2]);
    expect([...(await v.data())]).toEqual([0xc000, 0x7f80]);
    const dst = Tensor.empty([5], { dtype: 'bfloat16' });
    A.copy(dst, t);
    expect([...(await dst.data())]).toEqual([...bits]);
    expect(String(t)).toContain('dtype=bfloat16');
    expectCode(() => A.fill(dst, 1), 'ERR_DTYPE', /bfloat16/);
    expectCode(() => A.copy(Tensor.zeros([5]), t as unknown as Tensor<'float32'>), 'ERR_DTYPE');
    // a Uint16Array without dtype bfloat16 is numbers, as any other array
    expect([...(await Tensor.from(new Uint16Array([3, 0x3f80]), [2]).data())]).toEqual([3, 0x3f80]);
  });

  it('is refused by every float32-only operator with ERR_DTYPE naming it', () => {
    const b4 = Tensor.zeros([1, 1, 4, 4], { dtype: 'bfloat16' }) as unknown as Tensor<'float32'>;
    const f4 = Tensor.zeros([1, 1, 4, 4]);
    const b2 = Tensor.zeros([2, 3], { dtype: 'bfloat16' }) as unknown as Tensor<'float32'>;
    const f2 = Tensor.zeros([2, 3]);
    const labels = Tensor.from(new Int32Array([0, 1]), [2]);
    // relu, max pooling and dropout take bfloat16 too (test/bf16-ops.test.ts): an int32 input or
    // mixed dtypes are refused
    const i4 = Tensor.from(new Int32Array(16), [1, 1, 4, 4]) as unknown as Tensor<'float32'>;
    const cases: [string, () => unknown][] = [
      ['relu', () => A.relu(i4)],
      ['reluBackward', () => A.reluBackward(b4, f4)],
      ['conv2d', () => A.conv2d(b4, f4)],
      ['conv2d', () => A.conv2d(f4, b4)],
      ['maxPool2d', () => A.maxPool2d(i4, { kernelSize: 2 })],
      ['maxPool2dBackward', () => A.maxPool2dBackward(A.maxPool2d(f4, { kernelSize: 2 }), b4, A.maxPool2d(b4, { kernelSize: 2 }), { kernelSize: 2 })],
      ['localResponseNorm', () => A.localResponseNorm(b4, { size: 3 })],
      ['dropout', () => A.dropout(i4, { p: 0.5, seed: 1 })],
      ['dropoutBackward', () => A.dropoutBackward(f4, b4)],
      ['scale', () => A.scale(b4, 2)],
      ['axpy', () => A.axpy(f4, 1, b4)],
      ['softmax', () => A.softmax(b2)],
      ['softmaxCrossEntropy', () => A.softmaxCrossEntropy(b2, labels)],
      ['topkCorrect', () => A.topkCorrect(b2, labels, 1)],
      ['matmul', () => A.matmul(b2, f2, { transB: true })],
      ['linearBackward', () => A.linearBackward(f2, b2, b2)], // bfloat16 inputs want a bfloat16 gradOutput
      ['linearBackward', () => A.linearBackward(f2, f2, b2)],
      ['linear', () => linear(b2 as unknown as Tensor<'bfloat16'>, f2 as unknown as Tensor<'bfloat16'>)],
      ['linear', () => linear(f2, f2, null, { outDtype: 'bfloat16' } as never)],
      ['linear', () => linear(b2 as unknown as Tensor<'bfloat16'>, b2 as unknown as Tensor<'bfloat16'>, Tensor.zeros([2], { dtype: 'bfloat16' }) as never)],
      ['sgdStep', () => A.sgdStep(b2, f2, null, { lr: 0.1 })],
      ['toDtype', () => labels.to('bfloat16')],
    ];
    for (const [name, fn] of cases) expectCode(fn, 'ERR_DTYPE', new RegExp(`^${name}|${name}:`));
  });
});

describe('bfloat16 in checkpoints', () => {
  it('a bfloat16 weight is written as BF16 and loads widened to float32 exactly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alexnet-bf16-'));
    try {
      const r = rng();
      const w32 = Float32Array.from(normal(24, r));
      const w = Tensor.from(w32, [4, 6]).bfloat16();
      const b = Tensor.from(Float32Array.from(normal(4, r)), [4]);
      const path = join(dir, 'ckpt.safetensors');
      await saveCheckpoint(path, { weights: { 'fc.weight': w, 'fc.bias': b }, step: 1, epoch: 0, config: {} });
      const raw = await readSafetensors(path);
      const entry = raw.tensors.get('fc.weight')!;
      expect(entry.dtype).toBe('BF16');
      const bits = await w.data();
      expect([...(entry.data as Uint16Array)]).toEqual([...bits]);
      expect(raw.tensors.get('fc.bias')!.dtype).toBe('F32');
      const back = await loadCheckpoint(path, { expect: { 'fc.weight': [4, 6], 'fc.bias': [4] } });
      const wide = back.weights['fc.weight']!.data;
      expect(wide).toBeInstanceOf(Float32Array);
      expect([...wide]).toEqual(Array.from(bits, bf16Value));
      // and they are the float32 weights rounded to bfloat16
      expect([...bits]).toEqual(Array.from(new Uint32Array(w32.buffer), f32BitsToBf16));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

for (const kernel of KERNELS) {
  describe(`bfloat16 conversions, ${kernel} kernel`, () => {
    it('bf16 -> fp32 is exact and fp32 -> bf16 gives each pattern back, for all 65536 patterns', async () => {
      A.setBf16Kernel(kernel);
      expect(A.backendInfo().backends.cpu.bf16Kernel).toBe(kernel);
      const all = new Uint16Array(65536 + 7); // a length that is not a multiple of 32: the tail
      for (let i = 0; i < all.length; i++) all[i] = i & 0xffff;
      const t = Tensor.from(all, [all.length], { dtype: 'bfloat16' });
      const f = t.to('float32');
      expect(f.dtype).toBe('float32');
      const fb = await bitsOf(f);
      const wantF = Uint32Array.from(all, bf16ToF32Bits);
      expect(firstMismatch(fb, wantF)).toBe('');
      const back = await f.bfloat16().data();
      // every non-NaN pattern comes back; a NaN comes back quiet (bit 6 set), sign and payload kept
      const wantB = Uint16Array.from(all, (h) => ((h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0 ? h | 0x40 : h));
      expect(firstMismatch(back, wantB)).toBe('');
      expect(firstMismatch(back, Uint16Array.from(wantF, f32BitsToBf16))).toBe('');
    });

    it('fp32 -> bf16 rounds to nearest even: edges (ties, max finite, inf, NaN payloads, subnormals) and random patterns', async () => {
      A.setBf16Kernel(kernel);
      const r = rng();
      for (const n of [EDGES.length, 31, 33, 4099]) {
        const bits = n === EDGES.length ? Uint32Array.from(EDGES) : randomBits(n, r);
        const got = await fromBits(bits).to('bfloat16').data();
        expect(firstMismatch(got, Uint16Array.from(bits, f32BitsToBf16), bits), `n=${n}`).toBe('');
        // and, by values alone, each finite input's result is a nearest bfloat16
        for (let i = 0; i < n; i++) {
          if ((bits[i]! & 0x7f800000) === 0x7f800000) continue;
          const x = new Float32Array(bits.buffer, bits.byteOffset + 4 * i, 1)[0]!;
          const msg = checkNearest(x, got[i]!);
          if (msg !== '') expect.fail(`0x${bits[i]!.toString(16)}: ${msg}`);
        }
      }
      // the specific values the rules promise
      const special = await fromBits(Uint32Array.from([0x7f7fffff, 0x7f7f7fff, 0x00000001, 0x007fffff, 0x7f800001, 0xff812345])).to('bfloat16').data();
      expect([...special]).toEqual([0x7f80, 0x7f7f, 0x0000, 0x0080, 0x7fc0, 0xffc1]);
      expect(bf16Value(0x7f7f)).toBeCloseTo(3.3895e38, -34);
    });

    it('the same dtype gives a copy, and float32 tensors convert through bfloat16() / float()', async () => {
      A.setBf16Kernel(kernel);
      const x = Tensor.from(Float32Array.from(normal(100, rng())), [10, 10]);
      const y = x.to('float32');
      expect(y).not.toBe(x);
      expect([...(await y.data())]).toEqual([...(await x.data())]);
      const b = x.bfloat16();
      expect(b.shape).toEqual([10, 10]);
      const c = b.to('bfloat16');
      expect([...(await c.data())]).toEqual([...(await b.data())]);
      const back = await b.float().data();
      const xs = await x.data();
      for (let i = 0; i < 100; i++) expect(Math.abs(back[i]! - xs[i]!)).toBeLessThanOrEqual(Math.abs(xs[i]!) * 2 ** -8);
      expectCode(() => x.to('float16' as never), 'ERR_DTYPE');
    });
  });
}

// ---- the bfloat16 linear layer ----

/** Random values already rounded to bfloat16 (as patterns and as numbers). */
function bf16Random(n: number, r: () => number, std = 1): { bits: Uint16Array; values: Float64Array } {
  const bits = Uint16Array.from(normal(n, r, std), (v) => f32BitsToBf16(new Uint32Array(Float32Array.of(v).buffer)[0]!));
  return { bits, values: Float64Array.from(bits, bf16Value) };
}

/**
 * float64 reference on the bfloat16 inputs, and the bound each output must meet: float32
 * accumulation of K exact products gives at most (K + 1) * 2^-24 * (sum |x w| + |b|) (the
 * standard dot-product bound, plus the bias addition); a bfloat16 output adds its rounding,
 * 2^-8 |y| (bfloat16's unit roundoff: 8 significant bits).
 */
function linearBf16Ref(x: Float64Array, w: Float64Array, b: Float32Array | null, B: number, K: number, N: number, bf16Out: boolean) {
  const y = new Float64Array(B * N);
  const tol = new Float64Array(B * N);
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < N; j++) {
      let s = b === null ? 0 : b[j]!;
      let mag = b === null ? 0 : Math.abs(b[j]!);
      for (let k = 0; k < K; k++) {
        const p = x[i * K + k]! * w[j * K + k]!;
        s += p;
        mag += Math.abs(p);
      }
      y[i * N + j] = s;
      const accum = (K + 1) * 2 ** -24 * mag;
      tol[i * N + j] = bf16Out ? accum * (1 + 2 ** -8) + 2 ** -8 * Math.abs(s) : accum;
    }
  }
  return { y, tol };
}

function expectWithin(got: ArrayLike<number>, want: Float64Array, tol: Float64Array, label: string): void {
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= tol[i]!)) expect.fail(`${label}: [${i}] got ${got[i]}, want ${want[i]} (|diff| ${err.toExponential(3)} > ${tol[i]!.toExponential(3)})`);
  }
}

// [B, in, out]: K not a multiple of 2 or 32, M and N of 1, 3, 17, and one longer reduction
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 3, 17],
  [3, 17, 1],
  [17, 33, 3],
  [5, 31, 18],
  [4, 64, 8],
  [2, 1000, 7],
  [6, 0, 5],
];

for (const kernel of KERNELS) {
  describe(`linear on bfloat16, ${kernel} kernel`, () => {
    it('matches float64 on the bfloat16 inputs, float32 and bfloat16 output, with and without bias', async () => {
      A.setBf16Kernel(kernel);
      const r = rng();
      for (const [B, K, N] of SHAPES) {
        const x = bf16Random(B * K, r);
        const w = bf16Random(N * K, r, 0.3);
        const bias = Float32Array.from(normal(N, r));
        const tx = Tensor.from(x.bits, [B, K], { dtype: 'bfloat16' });
        const tw = Tensor.from(w.bits, [N, K], { dtype: 'bfloat16' });
        const tb = Tensor.from(bias, [N]);
        for (const withBias of [true, false]) {
          const y32 = linear(tx, tw, withBias ? tb : null);
          expect(y32.dtype).toBe('float32');
          expect(y32.shape).toEqual([B, N]);
          const ref32 = linearBf16Ref(x.values, w.values, withBias ? bias : null, B, K, N, false);
          expectWithin(await y32.data(), ref32.y, ref32.tol, `${B}x${K}->${N} f32 bias=${withBias}`);
          const y16 = linear(tx, tw, withBias ? tb : null, { outDtype: 'bfloat16' });
          expect(y16.dtype).toBe('bfloat16');
          const ref16 = linearBf16Ref(x.values, w.values, withBias ? bias : null, B, K, N, true);
          expectWithin(Float64Array.from(await y16.data(), bf16Value), ref16.y, ref16.tol, `${B}x${K}->${N} bf16 bias=${withBias}`);
          // the bfloat16 output is the float32 output rounded once
          expect(firstMismatch(await y16.data(), Uint16Array.from(await bitsOf(y32), f32BitsToBf16))).toBe('');
        }
      }
    });

    it('the float32 tolerance is tight enough to catch a product rounded to bfloat16 on the way', async () => {
      A.setBf16Kernel(kernel);
      const r = rng();
      const [B, K, N] = [8, 64, 32];
      const x = bf16Random(B * K, r);
      const w = bf16Random(N * K, r, 0.02);
      const y = await linear(Tensor.from(x.bits, [B, K], { dtype: 'bfloat16' }), Tensor.from(w.bits, [N, K], { dtype: 'bfloat16' })).data();
      const ref = linearBf16Ref(x.values, w.values, null, B, K, N, false);
      expectWithin(y, ref.y, ref.tol, 'float32 output');
      // and a result rounded to bfloat16 would typically fail this bound
      let wouldFail = 0;
      for (let i = 0; i < y.length; i++) if (Math.abs(bf16Value(f32BitsToBf16(new Uint32Array(Float32Array.of(y[i]!).buffer)[0]!)) - ref.y[i]!) > ref.tol[i]!) wouldFail++;
      expect(wouldFail).toBeGreaterThan(y.length / 2);
    });
  });
}

/**
 * float64 gradients of linear on bfloat16 values, with their bounds: each is a float32 sum of
 * exact products ((n + 1) 2^-24 times the sum of magnitudes, n the reduction length); gradInput
 * is then rounded to bfloat16 (2^-8 |ref| more).
 */
function linearBackwardBf16Ref(dy: Float64Array, x: Float64Array, w: Float64Array, B: number, K: number, N: number) {
  const dx = new Float64Array(B * K), dxTol = new Float64Array(B * K);
  const dw = new Float64Array(N * K), dwTol = new Float64Array(N * K);
  const db = new Float64Array(N), dbTol = new Float64Array(N);
  for (let b = 0; b < B; b++) {
    for (let k = 0; k < K; k++) {
      let s = 0, m = 0;
      for (let n = 0; n < N; n++) {
        const p = dy[b * N + n]! * w[n * K + k]!;
        s += p;
        m += Math.abs(p);
      }
      dx[b * K + k] = s;
      dxTol[b * K + k] = (N + 1) * 2 ** -24 * m * (1 + 2 ** -8) + 2 ** -8 * Math.abs(s);
    }
  }
  for (let n = 0; n < N; n++) {
    let sb = 0, mb = 0;
    for (let b = 0; b < B; b++) {
      sb += dy[b * N + n]!;
      mb += Math.abs(dy[b * N + n]!);
    }
    db[n] = sb;
    dbTol[n] = (B + 1) * 2 ** -24 * mb;
    for (let k = 0; k < K; k++) {
      let s = 0, m = 0;
      for (let b = 0; b < B; b++) {
        const p = dy[b * N + n]! * x[b * K + k]!;
        s += p;
        m += Math.abs(p);
      }
      dw[n * K + k] = s;
      dwTol[n * K + k] = (B + 1) * 2 ** -24 * m;
    }
  }
  return { dx, dxTol, dw, dwTol, db, dbTol };
}

async function checkLinearBackwardBf16(device: string, shapes: [number, number, number][]): Promise<void> {
  const r = rng();
  for (const [B, K, N] of shapes) {
    const x = bf16Random(B * K, r);
    const w = bf16Random(N * K, r, 0.3);
    const dy = bf16Random(B * N, r);
    const o = { dtype: 'bfloat16' as const, device };
    const tx = Tensor.from(x.bits, [B, K], o);
    const tw = Tensor.from(w.bits, [N, K], o);
    const tdy = Tensor.from(dy.bits, [B, N], o);
    const ref = linearBackwardBf16Ref(dy.values, x.values, w.values, B, K, N);
    const g = A.linearBackward(tdy, tx, tw);
    const label = `${device} ${B}x${K}->${N}`;
    expect(g.gradInput!.dtype).toBe('bfloat16');
    expect(g.gradWeight.dtype).toBe('float32');
    expectWithin(Float64Array.from(await g.gradInput!.data(), bf16Value), ref.dx, ref.dxTol, `${label} gradInput`);
    expectWithin(await g.gradWeight.data(), ref.dw, ref.dwTol, `${label} gradWeight`);
    expectWithin(await g.gradBias!.data(), ref.db, ref.dbTol, `${label} gradBias`);
    // accumulate adds into the float32 gradients given
    const start = Float32Array.from(normal(N * K, r));
    const startB = Float32Array.from(normal(N, r));
    const gw = Tensor.from(start, [N, K], { device });
    const gb = Tensor.from(startB, [N], { device });
    const acc = A.linearBackward(tdy, tx, tw, { gradWeight: gw, gradBias: gb, accumulate: true, computeGradInput: false });
    expect(acc.gradInput).toBeNull();
    expectWithin(await acc.gradWeight.data(), ref.dw.map((v, i) => v + start[i]!), ref.dwTol.map((t, i) => t + 2 ** -24 * (Math.abs(start[i]!) + Math.abs(ref.dw[i]!))), `${label} gradWeight accumulated`);
    expectWithin(await acc.gradBias!.data(), ref.db.map((v, i) => v + startB[i]!), ref.dbTol.map((t, i) => t + 2 ** -24 * (Math.abs(startB[i]!) + Math.abs(ref.db[i]!))), `${label} gradBias accumulated`);
    expectCode(() => A.linearBackward(tdy, tx, tw, { gradWeight: Tensor.zeros([N, K], { dtype: 'bfloat16', device }) as never }), 'ERR_DTYPE', /gradWeight/);
  }
}

const BACKWARD_SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 3, 17],
  [3, 17, 1],
  [17, 33, 3],
  [5, 31, 18],
  [2, 70, 300],
  [9, 100, 41],
  [4, 0, 3],
  [3, 5, 0],
];

for (const kernel of KERNELS) {
  describe(`linearBackward on bfloat16, ${kernel} kernel`, () => {
    it('gradInput (bfloat16), gradWeight and gradBias (float32) match float64 on the bfloat16 values, and accumulate', async () => {
      A.setBf16Kernel(kernel);
      await checkLinearBackwardBf16('cpu', BACKWARD_SHAPES);
    });
  });
}

// [B, in, out] for the packed AVX-512 BF16 GEMM (native/cpu/gemm_bf16.cc: 8-row x 48-column
// register tiles, K in pairs, blocks of 128 pairs, 256-row chunks, 8 panels of 48 columns packed
// together, the threads' split of the (chunk, panel) grid): forward runs M = B, N = out, K = in
// with B packed from [N, K]; gradInput runs M = B, N = in, K = out with B packed from [K, N].
// Both take the packed path from 96 rows (fewer take the in-place kernels, also run here: the
// last four shapes). N and K each take 1, 2, 31, 33, 65, 257 on the packed path, with odd K
// inside the first block and after it, K past a block (257, 513), N past one packed block
// (385 = 8 panels + 1), M past a chunk (257, 2 chunks of 136 and 121) and leaving 1 or 2 rows
// for the last register tile.
const GEMM_EDGE_SHAPES: [number, number, number][] = [
  [97, 1, 1],
  [98, 2, 2],
  [97, 33, 65],
  [105, 65, 31],
  [257, 257, 33],
  [257, 31, 2],
  [130, 513, 257],
  [97, 258, 385],
  [96, 1, 49],
  [257, 65, 97],
  [98, 31, 1],
  [1, 257, 33],
  [2, 65, 31],
  [31, 1, 2],
  [33, 31, 257],
];

for (const kernel of KERNELS) {
  describe(`bfloat16 GEMM edges (linear / linearBackward), ${kernel} kernel`, () => {
    it('awkward M, N, K reach every edge of the blocking and match float64 on the bfloat16 values', async () => {
      A.setBf16Kernel(kernel);
      const r = rng();
      for (const [B, K, N] of GEMM_EDGE_SHAPES) {
        const x = bf16Random(B * K, r);
        const w = bf16Random(N * K, r, 0.3);
        const tx = Tensor.from(x.bits, [B, K], { dtype: 'bfloat16' });
        const tw = Tensor.from(w.bits, [N, K], { dtype: 'bfloat16' });
        const ref = linearBf16Ref(x.values, w.values, null, B, K, N, false);
        expectWithin(await linear(tx, tw, null).data(), ref.y, ref.tol, `forward ${B}x${K}->${N}`);
        const dy = bf16Random(B * N, r);
        const g = A.linearBackward(Tensor.from(dy.bits, [B, N], { dtype: 'bfloat16' }), tx, tw);
        const bref = linearBackwardBf16Ref(dy.values, x.values, w.values, B, K, N);
        expectWithin(Float64Array.from(await g.gradInput!.data(), bf16Value), bref.dx, bref.dxTol, `gradInput ${B}x${K}->${N}`);
      }
    });
  });
}

describe('linear on bfloat16: the CPU kernels agree', () => {
  it.runIf(KERNELS.includes('avx512_bf16'))('avx512_bf16 and portable give the same bfloat16 conversions and close products', async () => {
    const r = rng();
    const [B, K, N] = [7, 301, 45];
    const x = bf16Random(B * K, r);
    const w = bf16Random(N * K, r);
    const run = async (k: 'avx512_bf16' | 'portable') => {
      A.setBf16Kernel(k);
      return linear(Tensor.from(x.bits, [B, K], { dtype: 'bfloat16' }), Tensor.from(w.bits, [N, K], { dtype: 'bfloat16' })).data();
    };
    const a = await run('avx512_bf16');
    const p = await run('portable');
    const ref = linearBf16Ref(x.values, w.values, null, B, K, N, false);
    const tol2 = ref.tol.map((t) => 2 * t);
    expectWithin(a, Float64Array.from(p), tol2, 'avx512 vs portable');
  });

  // The AMX path is a separate product (tiles of 16 x 32, blocks of 512 k): it must run when
  // chosen (the kernel-use record), not run under 'avx512_bf16', and agree with both the
  // float64 reference and the AVX-512 kernel within the summation-order bound.
  it.runIf(KERNELS.includes('amx_bf16'))('amx_bf16 runs on the tiles where chosen, and agrees with avx512_bf16 and float64', async () => {
    const r = rng();
    const [B, K, N] = [161, 1101, 77]; // 5 row groups + 1 row, k in 3 blocks (the last inside a tile), 2 column tiles + 13
    const x = bf16Random(B * K, r);
    const w = bf16Random(N * K, r);
    const dy = bf16Random(B * N, r);
    const tx = Tensor.from(x.bits, [B, K], { dtype: 'bfloat16' });
    const tw = Tensor.from(w.bits, [N, K], { dtype: 'bfloat16' });
    const tdy = Tensor.from(dy.bits, [B, N], { dtype: 'bfloat16' });
    const run = async (k: 'amx_bf16' | 'avx512_bf16') => {
      A.setBf16Kernel(k);
      A.cpuKernelsUsed({ reset: true });
      const y = await linear(tx, tw).data();
      const dx = Float64Array.from(await A.linearBackward(tdy, tx, tw).gradInput!.data(), bf16Value);
      return { y, dx, used: A.cpuKernelsUsed() };
    };
    const amx = await run('amx_bf16');
    expect(amx.used).toContain('bf16.amx');
    const avx = await run('avx512_bf16');
    expect(avx.used).not.toContain('bf16.amx');
    const ref = linearBf16Ref(x.values, w.values, null, B, K, N, false);
    expectWithin(amx.y, ref.y, ref.tol, 'amx forward vs float64');
    expectWithin(amx.y, Float64Array.from(avx.y), ref.tol.map((t) => 2 * t), 'amx vs avx512 forward');
    const bref = linearBackwardBf16Ref(dy.values, x.values, w.values, B, K, N);
    expectWithin(amx.dx, bref.dx, bref.dxTol, 'amx gradInput vs float64');
    A.setBf16Kernel('auto');
    expect(A.backendInfo().backends.cpu.bf16Kernel).toBe('amx_bf16');
  });

  it('a kernel the CPU lacks is ERR_ARGUMENT and changes nothing', () => {
    A.setBf16Kernel('auto');
    const before = A.backendInfo().backends.cpu.bf16Kernel;
    if (!info.bf16AmxHardware) expectCode(() => A.setBf16Kernel('amx_bf16'), 'ERR_ARGUMENT', /AMX-BF16/);
    if (!info.bf16Hardware) expectCode(() => A.setBf16Kernel('avx512_bf16'), 'ERR_ARGUMENT', /AVX-512 BF16/);
    expectCode(() => A.setBf16Kernel('amx' as never), 'ERR_ARGUMENT', /'auto', 'amx_bf16', 'avx512_bf16' or 'portable'/);
    expect(A.backendInfo().backends.cpu.bf16Kernel).toBe(before);
  });
});

describeCuda('bfloat16 on CUDA against the CPU', () => {
  it('conversions give the CPU bits for all 65536 patterns and random float32', async () => {
    const all = new Uint16Array(65536);
    for (let i = 0; i < all.length; i++) all[i] = i;
    const gpu = Tensor.from(all, [all.length], { dtype: 'bfloat16', device: 'cuda:0' });
    const f = gpu.to('float32');
    expect(firstMismatch(await bitsOf(f), Uint32Array.from(all, bf16ToF32Bits))).toBe('');
    const bits = randomBits(100003, rng());
    const got = await fromBits(bits, 'cuda:0').to('bfloat16').data();
    expect(firstMismatch(got, Uint16Array.from(bits, f32BitsToBf16), bits)).toBe('');
  });

  it('linear (cuBLAS, bfloat16 inputs, float32 compute) matches float64 on the bfloat16 inputs', async () => {
    const r = rng();
    for (const [B, K, N] of [...SHAPES, [64, 9216, 256] as [number, number, number]]) {
      const x = bf16Random(B * K, r);
      const w = bf16Random(N * K, r, 0.3);
      const bias = Float32Array.from(normal(N, r));
      const dev = { dtype: 'bfloat16' as const, device: 'cuda:0' };
      const tx = Tensor.from(x.bits, [B, K], dev);
      const tw = Tensor.from(w.bits, [N, K], dev);
      const tb = Tensor.from(bias, [N], { device: 'cuda:0' });
      const ref32 = linearBf16Ref(x.values, w.values, bias, B, K, N, false);
      expectWithin(await linear(tx, tw, tb).data(), ref32.y, ref32.tol, `cuda ${B}x${K}->${N} f32`);
      const ref16 = linearBf16Ref(x.values, w.values, bias, B, K, N, true);
      const y16 = await linear(tx, tw, tb, { outDtype: 'bfloat16' }).data();
      expectWithin(Float64Array.from(y16, bf16Value), ref16.y, ref16.tol, `cuda ${B}x${K}->${N} bf16`);
    }
  });

  it('linearBackward (cuBLAS, bfloat16 inputs, float32 compute) matches float64 on the bfloat16 values', async () => {
    await checkLinearBackwardBf16('cuda:0', [...BACKWARD_SHAPES, [64, 4096, 1000]]);
  });
});
