import { describe, expect, it } from 'vitest';
import { relu, reluBackward, Tensor } from '../src/index.js';
import { expectClose, expectCode, f32, rng, uniform } from './helpers.js';

describe('relu', () => {
  it('forward matches max(x, 0) and backward routes the gradient where x > 0', async () => {
    const r = rng();
    for (const shape of [[1], [3, 5], [3, 7, 5, 3]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = uniform(n, r);
      const dy = uniform(n, r);
      const tx = Tensor.from(f32(x), shape);
      const ty = relu(tx);
      expect(ty.shape).toEqual(shape);
      const y = await ty.data();
      expectClose(y, Array.from(f32(x), (v) => Math.max(v, 0)), { atol: 0, rtol: 0, label: 'relu forward' });
      const dx = await reluBackward(Tensor.from(f32(dy), shape), ty).data();
      expectClose(dx, Array.from(f32(x), (v, i) => (v > 0 ? f32(dy)[i]! : 0)), { atol: 0, rtol: 0, label: 'relu backward' });
    }
  });

  it('rejects bad input with typed errors', () => {
    const a = Tensor.from([1, 2, 3], [3]);
    const b = Tensor.from([1, 2], [2]);
    expectCode(() => reluBackward(a, b), 'ERR_SHAPE', /reluBackward/);
    expectCode(() => relu(Tensor.from(new Int32Array([1]), [1])), 'ERR_DTYPE');
    expectCode(() => relu({} as Tensor<'float32'>), 'ERR_ARGUMENT', 'relu: expected input to be a Tensor');
    a.dispose();
    expectCode(() => relu(a), 'ERR_DISPOSED');
  });
});
