import { describe, expect, it } from 'vitest';
import { Tensor, topkCorrect } from '../src/index.js';
import { expectCode, f32, normal, rng } from './helpers.js';
import { topkCorrectRef } from './reference/metrics.js';

describe('topkCorrect', () => {
  it('matches the reference for k = 1 and k = 5, with and without ties', async () => {
    const r = rng();
    for (const [B, C] of [
      [1, 7],
      [3, 13],
      [37, 10],
      [64, 1000],
    ] as [number, number][]) {
      for (const ties of [false, true]) {
        // with ties: logits rounded to a handful of values, so equal logits are common
        const z = f32(Array.from(normal(B * C, r), (v) => (ties ? Math.round(v * 1.5) : v)));
        const labels = Int32Array.from({ length: B }, () => Math.floor(r() * C));
        for (const k of [1, 5].filter((k) => k <= C)) {
          const t = topkCorrect(Tensor.from(z, [B, C]), Tensor.from(labels, [B], { dtype: 'int32' }), k);
          expect(t.shape).toEqual([]);
          expect(t.dtype).toBe('int32');
          const got = await t.data();
          expect(got).toBeInstanceOf(Int32Array);
          expect(got[0], `B=${B} C=${C} k=${k} ties=${ties}`).toBe(topkCorrectRef(z, labels, B, C, k));
        }
      }
    }
  });

  it('counts ties in the label\'s favour (hand-made rows)', async () => {
    const z = f32([
      1, 2, 2, 0, // label 1 (2): nothing greater -> top-1
      1, 2, 2, 0, // label 0 (1): two greater -> not top-1 or top-2, top-3
      5, 5, 5, 5, // all equal: top-1
      0, 3, 1, 2, // label 3 (2): one greater -> top-2
    ]);
    const labels = new Int32Array([1, 0, 2, 3]);
    const count = async (k: number) => (await topkCorrect(Tensor.from(z, [4, 4]), Tensor.from(labels, [4], { dtype: 'int32' }), k).data())[0];
    expect(await count(1)).toBe(2);
    expect(await count(2)).toBe(3);
    expect(await count(3)).toBe(4);
    expect(await count(4)).toBe(4);
  });

  it('rejects bad input with typed errors; a label out of range rejects on await', async () => {
    const z = Tensor.from(f32([1, 2, 3, 4, 5, 6]), [2, 3]);
    const y = Tensor.from(new Int32Array([0, 2]), [2], { dtype: 'int32' });
    expectCode(() => topkCorrect(z, y, 0), 'ERR_ARGUMENT', /topkCorrect: k must be an integer in \[1, 3\]/);
    expectCode(() => topkCorrect(z, y, 4), 'ERR_ARGUMENT', /k must be/);
    expectCode(() => topkCorrect(z, y, 1.5), 'ERR_ARGUMENT', /k must be/);
    expectCode(() => topkCorrect(z, y, NaN), 'ERR_ARGUMENT', /k must be a finite number/);
    expectCode(() => topkCorrect(z, Tensor.from(f32([0, 2]), [2]) as unknown as Tensor<'int32'>, 1), 'ERR_DTYPE', /labels/);
    expectCode(() => topkCorrect(z, Tensor.from(new Int32Array([0, 1, 2]), [3], { dtype: 'int32' }), 1), 'ERR_SHAPE', /2 rows but labels has 3/);
    expectCode(() => topkCorrect(Tensor.from(f32([1, 2]), [2]), y, 1), 'ERR_SHAPE', /logits/);
    await expect(topkCorrect(z, Tensor.from(new Int32Array([0, 3]), [2], { dtype: 'int32' }), 1).data()).rejects.toMatchObject({
      code: 'ERR_ARGUMENT',
      message: 'topkCorrect: label 3 at row 1 is out of range [0, 3)',
    });
    y.dispose();
    expectCode(() => topkCorrect(z, y, 1), 'ERR_DISPOSED');
    expect((await topkCorrect(z, Tensor.from(new Int32Array([2, 0]), [2], { dtype: 'int32' }), 1).data())[0]).toBe(1);
  });
});
