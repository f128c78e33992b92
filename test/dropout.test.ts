import { describe, expect, it } from 'vitest';
import { Dropout, dropout, dropoutBackward, Tensor } from '../src/index.js';
import { dot, expectClose, expectCode, f32, f64, finiteDifference, rng, sampleIndices, uniform } from './helpers.js';
import { dropoutBits24, dropoutKey, dropoutMaskRef, GAMMA, mix64 } from './reference/dropout.js';

const randomSeed = (r: () => number) => Math.floor(r() * 2 ** 21) * 2 ** 32 + Math.floor(r() * 2 ** 32); // [0, 2^53)

describe('dropout random stream', () => {
  it('the BigInt reference reproduces SplitMix64 (published outputs for seed 0)', () => {
    // SplitMix64 seeded with 0 yields mix64(GAMMA), mix64(2 GAMMA), ...; key(0) is its first output.
    expect(mix64(GAMMA)).toBe(0xe220a8397b1dcdafn);
    expect(mix64(2n * GAMMA)).toBe(0x6e789e6aa1b965f4n);
    expect(mix64(3n * GAMMA)).toBe(0x06c45d188009454fn);
    expect(dropoutKey(0)).toBe(0xe220a8397b1dcdafn);
  });

  it('the native mask equals the documented hash, reimplemented in JS with BigInt', async () => {
    const r = rng();
    const cases: [number, number, number][] = [
      [0.5, 0, 0],
      [0.5, 2 ** 53 - 1, 0],
      [0.1, randomSeed(r), 0],
      [0.37, randomSeed(r), Math.floor(r() * 1e9)],
      [0.9, randomSeed(r), 2 ** 40 + 3],
    ];
    for (const [p, seed, offset] of cases) {
      const n = 1037;
      const x = f32(uniform(n, r, 0.5, 1.5));
      const { output, mask } = dropout(Tensor.from(x, [n]), { p, seed, offset });
      const m = await mask.data();
      const ref = dropoutMaskRef(n, p, seed, offset);
      expectClose(m, ref, { atol: 0, rtol: 0, label: `mask p=${p} seed=${seed} offset=${offset}` });
      expectClose(await output.data(), Array.from(x, (v, i) => Math.fround(v * ref[i]!)), { atol: 0, rtol: 0, label: 'output = x * mask' });
    }
    // a few values pinned element by element: mask[i] != 0 <=> bits(offset + i) >= ceil(p 2^24)
    const seed = randomSeed(r);
    const { mask } = dropout(Tensor.from(f32(new Float64Array(8).fill(1)), [8]), { p: 0.5, seed, offset: 5 });
    const m = await mask.data();
    const key = dropoutKey(seed);
    for (let i = 0; i < 8; i++) expect(m[i]).toBe(dropoutBits24(key, 5 + i) >= 2 ** 23 ? 2 : 0);
  });

  it('is deterministic in (seed, offset) and the offset shifts the stream', async () => {
    const r = rng();
    const n = 4099;
    const seed = randomSeed(r);
    const x = Tensor.from(f32(uniform(n, r, 1, 2)), [n]);
    const a = await dropout(x, { p: 0.5, seed, offset: 100 }).mask.data();
    const b = await dropout(x, { p: 0.5, seed, offset: 100 }).mask.data();
    expect(Array.from(a)).toEqual(Array.from(b));
    const c = await dropout(x, { p: 0.5, seed, offset: 101 }).mask.data();
    expect(a.some((v, i) => v !== c[i])).toBe(true);
    const d = await dropout(x, { p: 0.5, seed: (seed + 1) % 2 ** 53 }).mask.data();
    const e = await dropout(x, { p: 0.5, seed }).mask.data(); // offset defaults to 0
    expect(e.some((v, i) => v !== d[i])).toBe(true);
    // element i at offset 100 is element i + 100 at offset 0
    expectClose(a.subarray(0, n - 100), e.subarray(100), { atol: 0, rtol: 0, label: 'offset shift' });
  });
});

describe('dropout forward', () => {
  it('keeps a fraction 1 - p of n = 1e5 elements, scaled exactly by 1/(1-p)', async () => {
    const r = rng();
    const n = 100_000;
    const xv = f32(uniform(n, r, -2, 2));
    const x = Tensor.from(xv, [4, 25_000]);
    for (const p of [0.05, 0.5, 0.9]) {
      const { output, mask } = dropout(x, { p, seed: randomSeed(r), offset: Math.floor(r() * 1e6) });
      expect(output.shape).toEqual([4, 25_000]);
      expect(mask.shape).toEqual([4, 25_000]);
      const m = await mask.data();
      const y = await output.data();
      const scale = Math.fround(1 / (1 - p));
      let kept = 0;
      for (let i = 0; i < n; i++) {
        if (m[i] !== 0) {
          kept++;
          if (m[i] !== scale) expect.fail(`mask[${i}] = ${m[i]} but 1/(1-p) = ${scale}`);
        }
        if (y[i] !== Math.fround(xv[i]! * m[i]!)) expect.fail(`output[${i}] = ${y[i]} but x * mask = ${Math.fround(xv[i]! * m[i]!)}`);
      }
      const sd = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(kept - n * (1 - p)), `kept ${kept} of ${n} at p=${p}`).toBeLessThan(6 * sd);
    }
  });

  it('p = 0 is the identity with a mask of ones', async () => {
    const r = rng();
    const xv = f32(uniform(7 * 13, r));
    const { output, mask } = dropout(Tensor.from(xv, [7, 13]), { p: 0, seed: 1 });
    expectClose(await output.data(), xv, { atol: 0, rtol: 0, label: 'p=0 output' });
    expectClose(await mask.data(), new Float64Array(91).fill(1), { atol: 0, rtol: 0, label: 'p=0 mask' });
  });
});

describe('dropout backward', () => {
  it('is gradOutput * mask, matching finite differences of L = sum(y .* r)', async () => {
    const r = rng();
    const shape = [3, 7, 13];
    const n = 3 * 7 * 13;
    const xv = f32(uniform(n, r));
    const dy = f32(uniform(n, r));
    const { mask } = dropout(Tensor.from(xv, shape), { p: 0.3, seed: randomSeed(r), offset: 17 });
    const m = await mask.data();
    const dx = await dropoutBackward(Tensor.from(dy, shape), mask).data();
    expectClose(dx, Array.from(dy, (v, i) => Math.fround(v * m[i]!)), { atol: 0, rtol: 0, label: 'analytic' });
    const L = (x: Float64Array) => dot(Array.from(x, (v, i) => v * m[i]!), dy);
    const idx = sampleIndices(n, 40, r);
    const fd = finiteDifference(L, f64(xv), { indices: idx });
    expectClose(idx.map((i) => dx[i]!), idx.map((i) => fd.get(i)!), { atol: 1e-4, rtol: 1e-4, label: 'finite differences' });
  });
});

describe('dropout errors', () => {
  it('rejects bad options and inputs with typed errors and keeps working', async () => {
    const x = Tensor.from(f32([1, 2, 3, 4]), [2, 2]);
    expectCode(() => dropout(x, { p: 1, seed: 1 }), 'ERR_ARGUMENT', /dropout: p must be in \[0, 1\)/);
    expectCode(() => dropout(x, { p: -0.1, seed: 1 }), 'ERR_ARGUMENT', /p must be in/);
    expectCode(() => dropout(x, { p: NaN, seed: 1 }), 'ERR_ARGUMENT', /p must be a finite number/);
    expectCode(() => dropout(x, { seed: 1 } as { p: number; seed: number }), 'ERR_ARGUMENT', /option 'p' is required/);
    expectCode(() => dropout(x, { p: 0.5 } as { p: number; seed: number }), 'ERR_ARGUMENT', /option 'seed' is required/);
    expectCode(() => dropout(x, { p: 0.5, seed: -1 }), 'ERR_ARGUMENT', /seed/);
    expectCode(() => dropout(x, { p: 0.5, seed: 1.5 }), 'ERR_ARGUMENT', /seed/);
    expectCode(() => dropout(x, { p: 0.5, seed: 2 ** 53 }), 'ERR_ARGUMENT', /seed/);
    expectCode(() => dropout(x, { p: 0.5, seed: 1, offset: -3 }), 'ERR_ARGUMENT', /offset/);
    expectCode(() => dropout(x, undefined as unknown as { p: number; seed: number }), 'ERR_ARGUMENT', /dropout/);
    expectCode(() => dropout(Tensor.from(new Int32Array(4), [4], { dtype: 'int32' }) as unknown as Tensor<'float32'>, { p: 0.5, seed: 1 }), 'ERR_DTYPE', /dropout/);
    const m = Tensor.from(f32([2, 0, 2]), [3]);
    expectCode(() => dropoutBackward(x, m), 'ERR_SHAPE', /dropoutBackward/);
    expectCode(() => dropoutBackward(x, Tensor.from(new Int32Array(4), [2, 2], { dtype: 'int32' }) as unknown as Tensor<'float32'>), 'ERR_DTYPE', /mask/);
    const gone = Tensor.from(f32([1, 2, 3]), [3]);
    gone.dispose();
    expectCode(() => dropout(gone, { p: 0.5, seed: 1 }), 'ERR_DISPOSED');
    m.dispose();
    expectCode(() => dropoutBackward(Tensor.from(f32([1, 2, 3]), [3]), m), 'ERR_DISPOSED');
    const { output } = dropout(x, { p: 0, seed: 3 });
    expect(Array.from(await output.data())).toEqual([1, 2, 3, 4]);
  });
});

describe('Dropout layer, data-parallel stream (shardStream)', () => {
  it("the ranks' masks are disjoint slices of the stream and together one process's mask at the global batch", async () => {
    const r = rng(Math.floor(Math.random() * 1e9));
    const seed = Math.floor(r() * 1e6);
    const [B, F, world] = [3, 7, 3];
    const single = new Dropout(0.4, { seed, offset: 5 });
    const ranks = Array.from({ length: world }, (_, k) => {
      const d = new Dropout(0.4, { seed, offset: 5 });
      d.shardStream(k, world);
      return d;
    });
    for (let step = 0; step < 2; step++) {
      const xs = Array.from({ length: world }, () => uniform(B * F, r, 0.5, 2)); // no zeros: a kept element is never 0
      const whole = single.forward(Tensor.from(xs.flatMap((x) => [...x]), [world * B, F]));
      const want = await whole.data();
      for (let k = 0; k < world; k++) {
        const y = ranks[k]!.forward(Tensor.from(xs[k]!, [B, F]));
        expect([...(await y.data())]).toEqual([...want.subarray(k * B * F, (k + 1) * B * F)]);
        ranks[k]!.clearCache();
        y.dispose();
      }
      single.clearCache();
      whole.dispose();
      // every rank's offset is the single process's
      for (const d of ranks) expect(d.offset).toBe(single.offset);
    }
    expect(single.offset).toBe(5 + 2 * world * B * F);
    // back to (0, 1): the single-process stream again
    ranks[1]!.shardStream(0, 1);
    const x = uniform(B * F, r, 0.5, 2);
    const a = ranks[1]!.forward(Tensor.from(x, [B, F]));
    const b = new Dropout(0.4, { seed, offset: single.offset }).forward(Tensor.from(x, [B, F]));
    expect([...(await a.data())]).toEqual([...(await b.data())]);
    for (const [rank, ws] of [[2, 2], [-1, 2], [0, 0], [0.5, 2], [0, NaN]] as const) {
      expectCode(() => new Dropout(0.5).shardStream(rank, ws), 'ERR_ARGUMENT', /shardStream/);
    }
  });
});
