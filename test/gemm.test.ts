// matmul / linear on both GEMM paths (OpenBLAS and the portable kernel).
import { afterAll, describe, expect, it } from 'vitest';
import { backendInfo, linear, linearBackward, matmul, setGemmBackend, Tensor } from '../src/index.js';
import { expectClose, expectCode, f32, rng, uniform } from './helpers.js';
import { linearBackwardRef, linearRef, matmulRef, transpose } from './reference/linear.js';

const blas = backendInfo().backends.cpu.blasCompiled;
const BACKENDS: ('blas' | 'portable')[] = blas ? ['portable', 'blas'] : ['portable'];
// [M, N, K]
const SIZES: [number, number, number][] = [
  [1, 1, 1],
  [5, 3, 7],
  [67, 129, 33],
  [4, 6, 0],
  [300, 200, 500],
  // One dimension <= 32 and a large other operand: the skinny kernels (AVX-512 CPUs) for the
  // forward (A B^T), input-grad (A B) and weight-grad (A^T B and A B with small K) shapes, with
  // row, column and depth tails.
  [16, 700, 600],
  [601, 500, 16],
  [32, 64, 4096],
];

afterAll(() => {
  if (blas) setGemmBackend('blas');
});

describe('gemm', () => {
  it('uses OpenBLAS by default when the build has it, and only the portable kernel otherwise', () => {
    // CI also runs this file against a build made with ALEXNET_BLAS=none (ALEXNET_EXPECT_BLAS=0).
    expect(blas).toBe(process.env.ALEXNET_EXPECT_BLAS !== '0');
    if (blas) {
      expect(backendInfo().backends.cpu.gemm).toBe('blas');
    } else {
      expect(backendInfo().backends.cpu.gemm).toBe('portable');
      expect(backendInfo().backends.cpu.blas).toMatch(/portable/);
      expectCode(() => setGemmBackend('blas'), 'ERR_ARGUMENT', /no BLAS/);
    }
  });

  for (const backend of BACKENDS) {
    it(`matmul with every transpose combination and odd sizes (${backend})`, async () => {
      setGemmBackend(backend);
      expect(backendInfo().backends.cpu.gemm).toBe(backend);
      const r = rng();
      for (const [M, N, K] of SIZES) {
        const a = f32(uniform(M * K, r)); // logical op(a) [M, K]
        const b = f32(uniform(K * N, r)); // logical op(b) [K, N]
        const ref = matmulRef(a, b, M, N, K);
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const ta = transA ? Tensor.from(f32(transpose(a, M, K)), [K, M]) : Tensor.from(a, [M, K]);
            const tb = transB ? Tensor.from(f32(transpose(b, K, N)), [N, K]) : Tensor.from(b, [K, N]);
            const c = matmul(ta, tb, { transA, transB });
            expect(c.shape).toEqual([M, N]);
            expectClose(await c.data(), ref, {
              atol: 1e-5 * Math.sqrt(K + 1),
              rtol: 1e-4,
              label: `${backend} ${M}x${N}x${K} transA=${transA} transB=${transB}`,
            });
          }
        }
      }
    });

    it(`linear forward and backward (${backend})`, async () => {
      setGemmBackend(backend);
      const r = rng();
      for (const [B, inF, outF] of [
        [1, 7, 13],
        [3, 13, 7],
        [16, 300, 37],
        [16, 600, 500], // the skinny kernels: forward with the bias (beta 1), dx, dW
      ] as [number, number, number][]) {
        const x = f32(uniform(B * inF, r));
        const w = f32(uniform(outF * inF, r));
        const bias = f32(uniform(outF, r));
        const dy = f32(uniform(B * outF, r));
        const tx = Tensor.from(x, [B, inF]);
        const tw = Tensor.from(w, [outF, inF]);
        const y = linear(tx, tw, Tensor.from(bias, [outF]));
        expectClose(await y.data(), linearRef(x, w, bias, B, inF, outF), { atol: 1e-5, rtol: 1e-4, label: `${backend} linear` });
        const g = linearBackward(Tensor.from(dy, [B, outF]), tx, tw);
        const ref = linearBackwardRef(dy, x, w, B, inF, outF);
        expectClose(await g.gradInput!.data(), ref.dx, { atol: 1e-5, rtol: 1e-4, label: `${backend} dx` });
        expectClose(await g.gradWeight.data(), ref.dw, { atol: 1e-5, rtol: 1e-4, label: `${backend} dw` });
        expectClose(await g.gradBias!.data(), ref.db, { atol: 1e-5, rtol: 1e-4, label: `${backend} db` });
      }
    });
  }

  it('rejects mismatched inner dimensions, ranks and dtypes', async () => {
    const a = Tensor.from(f32(uniform(6, rng())), [2, 3]);
    expectCode(() => matmul(a, a), 'ERR_SHAPE', /matmul: op\(a\) is \[2, 3\] but op\(b\) is \[2, 3\]/);
    expectCode(() => matmul(a, Tensor.from(f32([1, 2, 3]), [3])), 'ERR_SHAPE', /matmul: expected b to have 2 dimensions/);
    expectCode(() => matmul(a, Tensor.from(new Int32Array(6), [3, 2]) as unknown as Tensor<'float32'>), 'ERR_DTYPE', /matmul/);
    expectCode(() => matmul(a, a, { transB: 'yes' as unknown as boolean }), 'ERR_ARGUMENT', /transB/);
    const gone = Tensor.from(f32([1, 2]), [1, 2]);
    gone.dispose();
    expectCode(() => matmul(a, gone, { transB: true }), 'ERR_DISPOSED');
    expectCode(() => matmul(a, {} as Tensor<'float32'>), 'ERR_ARGUMENT', 'matmul: expected b to be a Tensor');
    const c = matmul(a, a, { transB: true });
    expect(c.shape).toEqual([2, 2]);
    expect((await c.data()).every((v) => Number.isFinite(v))).toBe(true);
  });
});
