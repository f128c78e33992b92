import { describe, expect, it } from 'vitest';
import { conv2d, relu, reluBackward, Tensor } from '../src/index.js';
import { describeCuda } from './cuda-gate.js';
import { loadNative } from '../src/native.js';
import { expectClose, expectCode, f32, rng, uniform } from './helpers.js';

// PyTorch's ReLU: NaN in, NaN out (a diverged model must not look healthy), and the backward is
// threshold_backward: dy where y is not <= 0, so a NaN output passes its gradient through.
function reluNaNRef(x: Float32Array, dy: Float32Array): { y: number[]; dx: number[] } {
  const y = Array.from(x, (v) => (Number.isNaN(v) ? NaN : Math.max(v, 0)));
  const dx = y.map((v, i) => (v <= 0 ? 0 : dy[i]!));
  return { y, dx };
}

/** Random values with NaN at a few random positions (and at least one). */
function withNaN(n: number, r: () => number): Float32Array {
  const x = f32(uniform(n, r));
  x[Math.floor(r() * n)] = NaN;
  for (let i = 0; i < n; i++) if (r() < 0.1) x[i] = NaN;
  return x;
}

function expectSameWithNaN(got: ArrayLike<number>, want: number[], label: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]!)) expect(Number.isNaN(got[i]!), `${label}: NaN expected at ${i}, got ${got[i]}`).toBe(true);
    else expect(got[i], `${label} at ${i}`).toBe(want[i]);
  }
}

async function checkReluNaN(device: string | undefined): Promise<void> {
  const r = rng();
  for (const shape of [[1], [3, 5], [3, 7, 5, 3]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = withNaN(n, r);
    const dy = f32(uniform(n, r));
    const ref = reluNaNRef(x, dy);
    const ty = relu(Tensor.from(x, shape, { device }));
    expectSameWithNaN(await ty.data(), ref.y, `relu forward ${shape}`);
    expectSameWithNaN(await reluBackward(Tensor.from(dy, shape, { device }), ty).data(), ref.dx, `relu backward ${shape}`);
  }
}

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

  it('propagates NaN as PyTorch does: relu(NaN) = NaN, and its gradient passes through', async () => {
    await checkReluNaN(undefined);
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

describeCuda('relu on CUDA', () => {
  it('propagates NaN as the CPU backend does (plain kernel and the fused conv epilogue)', async () => {
    await checkReluNaN('cuda:0');
    const r = rng();
    // fused bias + ReLU after a convolution: a 3x3 output (the per-plane kernel) and a 1x1
    // output (the per-row kernel); NaN in the input reaches the outputs whose windows read it
    for (const [H, k] of [[5, 3], [3, 3]] as const) {
      const x = f32(uniform(2 * 3 * H * H, r));
      x[0] = NaN;
      const w = f32(uniform(4 * 3 * k * k, r));
      const b = f32(uniform(4, r));
      const run = (device?: string) =>
        conv2d(Tensor.from(x, [2, 3, H, H], { device }), Tensor.from(w, [4, 3, k, k], { device }), Tensor.from(b, [4], { device }), { relu: true }).data();
      // strict FP32: with TF32 (the default on CUDA) a 27-term sum of products of inputs in
      // [-1, 1] is off by ~1e-3, this test's tolerance (seen on the emulated device, whose
      // stand-in cuDNN rounds inputs to TF32 as the tensor cores do)
      const native = loadNative();
      native.setTf32(false);
      let cpu: Float32Array, gpu: Float32Array;
      try {
        [cpu, gpu] = [await run(undefined), await run('cuda:0')];
      } finally {
        native.setTf32(true);
      }
      expect(cpu.some((v) => Number.isNaN(v))).toBe(true);
      for (let i = 0; i < cpu.length; i++) expect(Number.isNaN(gpu[i]!), `NaN at ${i}`).toBe(Number.isNaN(cpu[i]!));
      const finite = (a: ArrayLike<number>) => Array.from(a, (v) => (Number.isNaN(v) ? 0 : v));
      expectClose(finite(gpu), finite(cpu), { atol: 1e-3, rtol: 1e-3, label: `conv2d relu ${H}x${H}` });
    }
  });
});
