// Every operator on CUDA against the CPU backend (the reference), when a GPU is present:
// tolerance atol + rtol*|ref|, with TF32 tensor-op math (the default) and with strict FP32.
// Without a GPU (or without cuDNN/cuBLAS) the comparisons report themselves skipped with the
// reason (test/cuda-gate.ts; with ALEXNET_REQUIRE_CUDA=1 they fail instead), and the test below
// checks that the CUDA backend says so cleanly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as A from '../src/index.js';
import { Tensor } from '../src/index.js';
import { describeCuda } from './cuda-gate.js';
import { expectClose, f32, rng, uniform } from './helpers.js';

const info = A.backendInfo();
const cuda = info.backends.cuda;
const DEV = 'cuda:0';

describe('CUDA backend status', () => {
  it('says whether CUDA is compiled and available, with a reason when it is not, and the CPU keeps working', async () => {
    expect(typeof cuda.compiled).toBe('boolean');
    expect(typeof cuda.available).toBe('boolean');
    if (!cuda.available) {
      expect(cuda.reason.length).toBeGreaterThan(10);
      let caught: unknown;
      try {
        const t = Tensor.zeros([4], { device: DEV });
        // a device without cuDNN/cuBLAS can still hold memory; its operators then fail cleanly
        A.conv2d(Tensor.zeros([1, 1, 3, 3], { device: DEV }), Tensor.zeros([1, 1, 3, 3], { device: DEV }));
        t.dispose();
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(Error);
      expect(['ERR_CUDA_UNAVAILABLE', 'ERR_CUDA']).toContain((caught as { code: string }).code);
    } else {
      expect(cuda.reason).toBe('');
    }
    if (cuda.compiled) {
      expect(cuda.libraries).toBeDefined();
      if (cuda.available) expect(cuda.libraries!.cudnn.found && cuda.libraries!.cublas.found).toBe(true);
    }
    // the CPU backend is unaffected
    const y = await A.relu(Tensor.from([-1, 2], [2])).data();
    expect(Array.from(y)).toEqual([0, 2]);
  });
});

type Maker = (r: () => number) => Record<string, { data: Float32Array | Int32Array; shape: number[] }>;

/** Runs `op` on CPU and on CUDA with the same inputs; compares every float output. */
async function compare(
  label: string,
  make: Maker,
  op: (t: Record<string, Tensor>) => Tensor | Record<string, Tensor | null> | Tensor[],
  tol: { atol: number; rtol: number },
): Promise<void> {
  const inputs = make(rng());
  const on = (device: string): Record<string, Tensor> =>
    Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, Tensor.from(v.data, v.shape, { device })]));
  const collect = async (out: ReturnType<typeof op>): Promise<Record<string, Float32Array | Int32Array>> => {
    const entries: [string, Tensor][] =
      out instanceof Tensor ? [['out', out]] : Array.isArray(out) ? out.map((t, i) => [`out${i}`, t]) :
      (Object.entries(out).filter(([, v]) => v instanceof Tensor) as [string, Tensor][]);
    const res: Record<string, Float32Array | Int32Array> = {};
    for (const [k, t] of entries) res[k] = await t.data();
    return res;
  };
  const cpuIn = on('cpu');
  const gpuIn = on(DEV);
  const ref = await collect(op(cpuIn));
  const got = await collect(op(gpuIn));
  // in-place operators: compare the (mutated) inputs too
  for (const k of Object.keys(inputs)) {
    ref[`in.${k}`] = await cpuIn[k]!.data();
    got[`in.${k}`] = await gpuIn[k]!.data();
  }
  for (const k of Object.keys(ref)) expectClose(got[k]!, ref[k]!, { ...tol, label: `${label}: ${k}` });
}

const randn = (shape: number[], scale = 1) => (r: () => number) => ({ data: f32(uniform(shape.reduce((a, b) => a * b, 1), r, -scale, scale)), shape });
const labels = (n: number, classes: number) => (r: () => number) => ({ data: Int32Array.from({ length: n }, () => Math.floor(r() * classes)), shape: [n] });

for (const mode of ['tf32', 'fp32'] as const) {
  describeCuda(`CUDA vs CPU, ${mode === 'tf32' ? 'TF32 tensor-op math' : 'strict FP32'}`, () => {
    beforeAll(() => A.setTf32(mode === 'tf32'));
    afterAll(() => A.setTf32(true));
    // TF32 keeps 10 mantissa bits in products: relative error ~1e-3 over long sums.
    const heavy = mode === 'tf32' ? { atol: 3e-2, rtol: 3e-2 } : { atol: 2e-4, rtol: 2e-4 };
    const exact = { atol: 1e-6, rtol: 1e-6 };
    const light = { atol: 1e-5, rtol: 1e-5 };

    for (const c of [
      { n: 3, c: 5, h: 11, w: 9, o: 7, k: 3, stride: 2, padding: 1, groups: 1 },
      { n: 1, c: 6, h: 13, w: 13, o: 4, k: 5, stride: 1, padding: 2, groups: 2 },
      { n: 2, c: 3, h: 31, w: 31, o: 8, k: 11, stride: 4, padding: 0, groups: 1 },
    ]) {
      const opts = { stride: c.stride, padding: c.padding, groups: c.groups };
      const shapeIn = [c.n, c.c, c.h, c.w];
      const shapeW = [c.o, c.c / c.groups, c.k, c.k];
      it(`conv2d forward and backward ${JSON.stringify(c)}`, async () => {
        await compare('conv2d', (r) => ({ x: randn(shapeIn)(r), w: randn(shapeW, 0.3)(r), b: randn([c.o])(r) }), (t) => A.conv2d(t.x!, t.w!, t.b!, opts), heavy);
        await compare('conv2d relu', (r) => ({ x: randn(shapeIn)(r), w: randn(shapeW, 0.3)(r), b: randn([c.o])(r) }), (t) => A.conv2d(t.x!, t.w!, t.b!, { ...opts, relu: true }), heavy);
        const ho = Math.floor((c.h + 2 * c.padding - c.k) / c.stride) + 1;
        const wo = Math.floor((c.w + 2 * c.padding - c.k) / c.stride) + 1;
        await compare('conv2dBackward', (r) => ({ dy: randn([c.n, c.o, ho, wo])(r), x: randn(shapeIn)(r), w: randn(shapeW, 0.3)(r) }),
          (t) => A.conv2dBackward(t.dy!, t.x!, t.w!, opts), heavy);
      });
    }

    it('linear through cuBLASLt epilogues (bias, ReLU, both, neither; float32 and bfloat16 inputs) against the CPU', async () => {
      expect(cuda.libraries!.cublasLt.found, cuda.libraries!.cublasLt.note).toBe(true);
      A.setCublasLtEpilogues(true);
      const before = A.backendInfo().backends.cuda.cublasLtCalls!;
      try {
        // AlexNet's classifier shapes at batch 2 and 64, and an awkward one
        for (const [B, inF, outF] of [[2, 9216, 4096], [64, 4096, 4096], [3, 37, 13]] as const) {
          for (const relu of [false, true]) {
            for (const bias of [false, true]) {
              await compare(`lt linear ${B}x${inF}->${outF} relu=${relu} bias=${bias}`, (r) => ({
                x: randn([B, inF])(r), w: randn([outF, inF], 1 / Math.sqrt(inF))(r), ...(bias ? { b: randn([outF])(r) } : {}),
              }), (t) => A.linear(t.x!, t.w!, t.b ?? null, { relu }), heavy);
            }
          }
          for (const outDtype of ['float32', 'bfloat16'] as const) {
            await compare(`lt linear bf16 ${B}x${inF}->${outF} out ${outDtype}`, (r) => ({
              x: randn([B, inF])(r), w: randn([outF, inF], 1 / Math.sqrt(inF))(r), b: randn([outF])(r),
            }), (t) => {
              const y = A.linear(t.x!.bfloat16(), t.w!.bfloat16(), t.b!, { relu: true, outDtype });
              return outDtype === 'float32' ? y : (y as Tensor<'bfloat16'>).float();
            }, { atol: 2e-2, rtol: 1e-2 });
          }
        }
        // the comparisons above must have gone through cuBLASLt, not all through the fallback
        const after = A.backendInfo().backends.cuda.cublasLtCalls!;
        expect(after.forward - before.forward, 'linear calls that ran as one cuBLASLt product').toBeGreaterThan(0);
      } finally {
        A.setCublasLtEpilogues(false);
      }
    });

    it('maxPool2d forward and backward (3x3 stride 2, and padding)', async () => {
      for (const opts of [{ kernelSize: 3, stride: 2 }, { kernelSize: 3, stride: 2, padding: 1 }]) {
        await compare('maxPool2d', (r) => ({ x: randn([3, 5, 13, 11])(r) }), (t) => A.maxPool2d(t.x!, opts), exact);
        await compare('maxPool2dBackward', (r) => ({ x: randn([3, 5, 13, 11])(r) }), (t) => {
          const y = A.maxPool2d(t.x!, opts);
          const dy = A.relu(y); // any gradient of the right shape
          return A.maxPool2dBackward(dy, t.x!, y, opts);
        }, exact);
      }
    });

    it('localResponseNorm forward and backward (the paper: size 5, k 2)', async () => {
      const opts = { size: 5, alpha: 1e-4 * 5, beta: 0.75, k: 2 };
      await compare('localResponseNorm', (r) => ({ x: randn([2, 7, 5, 6], 3)(r) }), (t) => A.localResponseNorm(t.x!, opts), light);
      await compare('localResponseNormBackward', (r) => ({ x: randn([2, 7, 5, 6], 3)(r), dy: randn([2, 7, 5, 6])(r) }), (t) =>
        A.localResponseNormBackward(t.dy!, t.x!, A.localResponseNorm(t.x!, opts), opts), light);
    });

    it('relu, linear, matmul (all transposes)', async () => {
      await compare('relu', (r) => ({ x: randn([3, 7, 5])(r) }), (t) => A.relu(t.x!), exact);
      await compare('reluBackward', (r) => ({ x: randn([3, 7])(r), dy: randn([3, 7])(r) }), (t) => A.reluBackward(t.dy!, A.relu(t.x!)), exact);
      await compare('linear', (r) => ({ x: randn([3, 37])(r), w: randn([13, 37])(r), b: randn([13])(r) }), (t) => A.linear(t.x!, t.w!, t.b!), heavy);
      await compare('linear relu', (r) => ({ x: randn([3, 37])(r), w: randn([13, 37])(r), b: randn([13])(r) }), (t) => A.linear(t.x!, t.w!, t.b!, { relu: true }), heavy);
      await compare('linear relu, no bias', (r) => ({ x: randn([5, 37])(r), w: randn([13, 37])(r) }), (t) => A.linear(t.x!, t.w!, null, { relu: true }), heavy);
      await compare('linearBackward', (r) => ({ dy: randn([3, 13])(r), x: randn([3, 37])(r), w: randn([13, 37])(r) }), (t) => A.linearBackward(t.dy!, t.x!, t.w!), heavy);
      for (const transA of [false, true])
        for (const transB of [false, true])
          await compare(`matmul ${transA} ${transB}`, (r) => ({ a: randn(transA ? [19, 7] : [7, 19])(r), b: randn(transB ? [11, 19] : [19, 11])(r) }),
            (t) => A.matmul(t.a!, t.b!, { transA, transB }), heavy);
    });

    it('dropout draws the same mask as the CPU for the same seed and offset', async () => {
      await compare('dropout', (r) => ({ x: randn([5, 1001])(r) }), (t) => A.dropout(t.x!, { p: 0.4, seed: 12345, offset: 777 }), exact);
      await compare('dropoutBackward', (r) => ({ x: randn([5, 1001])(r), dy: randn([5, 1001])(r) }), (t) =>
        A.dropoutBackward(t.dy!, A.dropout(t.x!, { p: 0.3, seed: 9, offset: 0 }).mask), exact);
    });

    it('softmax and fused softmax cross-entropy', async () => {
      await compare('softmax', (r) => ({ z: randn([4, 1000], 20)(r) }), (t) => A.softmax(t.z!), light);
      await compare('softmaxCrossEntropy', (r) => ({ z: randn([6, 3], 5)(r), y: labels(6, 3)(r) }), (t) => A.softmaxCrossEntropy(t.z!, t.y!), light);
    });

    it('sgdStep in both conventions, and top-k counts', async () => {
      for (const convention of ['pytorch', 'krizhevsky'] as const)
        for (const firstStep of [true, false])
          await compare(`sgdStep ${convention} ${firstStep}`, (r) => ({ w: randn([1000])(r), g: randn([1000])(r), b: randn([1000])(r) }), (t) => {
            A.sgdStep(t.w!, t.g!, t.b!, { lr: 0.01, momentum: 0.9, weightDecay: 5e-4, dampening: 0, convention, firstStep });
            return [];
          }, exact);
      await compare('topkCorrect', (r) => ({ z: randn([17, 10])(r), y: labels(17, 10)(r) }), (t) => [A.topkCorrect(t.z!, t.y!, 1), A.topkCorrect(t.z!, t.y!, 5)], exact);
    });

    it('fill, copy, scale and axpy', async () => {
      await compare('elementwise', (r) => ({ a: randn([333])(r), b: randn([333])(r), c: randn([333])(r) }), (t) => {
        A.scale(t.a!, 0.5);
        A.axpy(t.a!, -2, t.b!);
        A.copy(t.c!, t.a!);
        A.fill(t.b!, 3);
        return [];
      }, exact);
    });
  });
}
