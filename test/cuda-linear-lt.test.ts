// The CUDA fully connected layer's backward through cuBLASLt (setCublasLtEpilogues): the weight
// gradient and the bias gradient as one product whose epilogue reduces dy over the batch
// (CUBLASLT_EPILOGUE_BGRADB; native/cuda/linear_lt.h). dx, dw and db are compared with a float64
// naive-loop reference (test/reference/linear.ts) on fresh random inputs, written and accumulated
// into given gradients, for float32 (TF32 and strict FP32) and bfloat16 inputs, at odd shapes
// (batch 1, 3, 129; features not multiples of 8) and one aligned shape, and through the fallback
// (a misaligned view: cublasGemmEx + our bias-gradient kernel).
//
// Every comparison runs on the GPU or not at all (test/cuda-gate.ts: without a GPU these skip, and
// with ALEXNET_REQUIRE_CUDA=1 they fail). Each also reads info().cuda.cublasLtCalls before and
// after, so the test knows which path each call took: every call must be counted exactly once
// (cuBLASLt or fallback), the misaligned ones as fallbacks, and with TF32 and bfloat16 the aligned
// shape must have run through cuBLASLt (a cuBLAS that does not offer it fails here, naming the paths).
//
// Tolerances are bounds on the summation error relative to mag = the same sums over absolute
// values: float32 and bfloat16 inputs (exact products, float32 sums) 3e-5 * mag; TF32 (inputs
// rounded to 10 mantissa bits) 3e-3 * mag; a bfloat16 dx also its one rounding, 2^-8 * |ref|. A
// wrong reduction (the wrong operand, axis or a lost accumulation) is off by O(mag).
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as A from '../src/index.js';
import { Linear, ReLU, Sequential, Tensor } from '../src/index.js';
import { mulberry32 } from '../src/nn/init.js';
import { describeCuda } from './cuda-gate.js';
import { expectClose, f32, rng, uniform } from './helpers.js';
import { bf16Value, f32Bits, f32BitsToBf16 } from './reference/bf16.js';
import { linearBackwardRef } from './reference/linear.js';

const DEV = 'cuda:0';
type Mode = 'tf32' | 'fp32' | 'bf16';

const calls = () => {
  const c = A.backendInfo().backends.cuda.cublasLtCalls;
  if (c === undefined) throw new Error('info().cuda.cublasLtCalls is missing: a build without CUDA?');
  return c;
};
const roundBf16 = (a: Float32Array): Float32Array => a.map((v) => bf16Value(f32BitsToBf16(f32Bits(v))));
const abs = (a: ArrayLike<number>): Float64Array => Float64Array.from(a, Math.abs);

// [B, in, out]: batch 1, 3 and 129 with features that are not multiples of 8, and one aligned shape
const SHAPES: [number, number, number][] = [[1, 37, 13], [3, 70, 45], [129, 123, 77], [64, 512, 256]];

interface Case {
  B: number;
  inF: number;
  outF: number;
  mode: Mode;
  accumulate: boolean;
  /** put the input x (or, accumulating, the given gradBias) one float off a 256-byte boundary */
  misaligned?: boolean;
}

/**
 * On the GPU, a tensor holding `data` (bfloat16 when bf16); when `misaligned`, a view one element
 * (4 or 2 bytes) into a storage of one more, so its pointer is off every 256-byte boundary.
 */
function onDevice(data: Float32Array, shape: number[], bf16: boolean, misaligned: boolean): { t: Tensor; owners: Tensor[] } {
  const f = misaligned ? Tensor.from(f32([0, ...data]), [data.length + 1], { device: DEV }) : Tensor.from(data, shape, { device: DEV });
  const whole = bf16 ? f.bfloat16() : f;
  const owners = bf16 ? [f, whole] : [f];
  if (!misaligned) return { t: whole, owners };
  const view = whole.view(1, shape);
  return { t: view, owners: [...owners, view] };
}

/** Runs linearBackward on the GPU for `c`, checks dx, dw, db against float64; returns the path taken. */
async function runCase(c: Case): Promise<'lt' | 'fallback'> {
  const { B, inF, outF, mode, accumulate } = c;
  const r = rng();
  const bf16 = mode === 'bf16';
  let dy = f32(uniform(B * outF, r));
  let x = f32(uniform(B * inF, r));
  let w = f32(uniform(outF * inF, r, -1 / Math.sqrt(inF), 1 / Math.sqrt(inF)));
  if (bf16) [dy, x, w] = [roundBf16(dy), roundBf16(x), roundBf16(w)];
  const gw0 = f32(uniform(outF * inF, r));
  const gb0 = f32(uniform(outF, r));
  const owners: Tensor[] = [];
  const put = (data: Float32Array, shape: number[], asBf16: boolean, misaligned = false) => {
    const o = onDevice(data, shape, asBf16, misaligned);
    owners.push(...o.owners);
    return o.t;
  };
  try {
    const tdy = put(dy, [B, outF], bf16);
    const tx = put(x, [B, inF], bf16, c.misaligned === true && !accumulate);
    const tw = put(w, [outF, inF], bf16);
    const given = accumulate
      ? { gradWeight: put(gw0, [outF, inF], false) as Tensor<'float32'>, gradBias: put(gb0, [outF], false, c.misaligned === true) as Tensor<'float32'>, accumulate: true }
      : {};
    const before = calls();
    const g = A.linearBackward(tdy as Tensor<'float32'>, tx as Tensor<'float32'>, tw as Tensor<'float32'>, given);
    const after = calls();
    const dx32 = bf16 ? (g.gradInput as unknown as Tensor<'bfloat16'>).float() : g.gradInput!;
    const got = { dx: await dx32.data(), dw: await g.gradWeight.data(), db: await g.gradBias!.data() };
    for (const t of new Set([dx32, g.gradInput, g.gradWeight, g.gradBias])) if (t !== null && !owners.includes(t)) t.dispose();
    const label = `${mode} ${B}x${inF}->${outF}${accumulate ? ' accumulate' : ''}${c.misaligned ? ' misaligned' : ''}`;

    const ref = linearBackwardRef(dy, x, w, B, inF, outF);
    const mag = linearBackwardRef(abs(dy), abs(x), abs(w), B, inF, outF);
    if (accumulate) {
      for (let i = 0; i < ref.dw.length; i++) {
        ref.dw[i] = ref.dw[i]! + gw0[i]!;
        mag.dw[i] = mag.dw[i]! + Math.abs(gw0[i]!);
      }
      for (let i = 0; i < ref.db.length; i++) {
        ref.db[i] = ref.db[i]! + gb0[i]!;
        mag.db[i] = mag.db[i]! + Math.abs(gb0[i]!);
      }
    }
    const rel = mode === 'tf32' ? 3e-3 : 3e-5;
    // expectClose's atol is per call: compare element by element against rel * mag[i] through a
    // scaled copy (|got - ref| / mag <= rel), so each element gets its own bound.
    const check = (name: 'dx' | 'dw' | 'db', extraRel = 0) => {
      const scaledGot = Float64Array.from(got[name], (v, i) => (v - ref[name][i]!) / (rel * mag[name][i]! + extraRel * Math.abs(ref[name][i]!) + 1e-30));
      expectClose(scaledGot, new Float64Array(scaledGot.length), { atol: 1, rtol: 0, label: `${label}: ${name} (|got - ref| / bound)` });
    };
    check('dx', bf16 ? 2 ** -8 : 0);
    check('dw');
    check('db');

    const lt = after.weightGrad - before.weightGrad;
    const fb = after.fallbacks - before.fallbacks;
    expect(lt + fb, `${label}: the backward's weight gradient must be counted once, through cuBLASLt or as a fallback (lt ${lt}, fallbacks ${fb})`).toBe(1);
    return lt === 1 ? 'lt' : 'fallback';
  } finally {
    for (const t of owners) t.dispose();
  }
}

describeCuda('linearBackward through cuBLASLt (the bias gradient in the weight gradient\'s epilogue, BGRADB)', () => {
  beforeAll(() => {
    expect(A.backendInfo().backends.cuda.libraries!.cublasLt.found, A.backendInfo().backends.cuda.libraries!.cublasLt.note).toBe(true);
    A.setCublasLtEpilogues(true);
  });
  afterAll(() => {
    A.setCublasLtEpilogues(false);
    A.setTf32(true);
    A.setDeterministic(false);
  });

  for (const mode of ['tf32', 'fp32', 'bf16'] as const) {
    it(`${mode}: dx, dw, db against float64, written and accumulated, at batch 1, 3, 129 and an aligned shape`, async () => {
      A.setTf32(mode !== 'fp32');
      const paths: string[] = [];
      for (const [B, inF, outF] of SHAPES) {
        for (const accumulate of [false, true]) {
          const path = await runCase({ B, inF, outF, mode, accumulate });
          paths.push(`${B}x${inF}->${outF}${accumulate ? ' acc' : ''}: ${path}`);
        }
      }
      // TF32 and bfloat16 run on tensor-op kernels, the ones cuBLASLt's BGRADB epilogue is made
      // for: the aligned shape must take it. Strict FP32 may legitimately fall back (whether
      // cuBLASLt has a BGRADB kernel for float32 compute is not documented); its results are
      // checked either way.
      if (mode !== 'fp32') {
        const aligned = paths.filter((p) => p.startsWith('64x512->256'));
        expect(aligned.every((p) => p.endsWith(': lt')), `${mode}: the aligned shape fell back:\n${paths.join('\n')}`).toBe(true);
      }
    }, 120_000);
  }

  it('falls back to cublasGemmEx + the bias kernel for a misaligned input or gradient, with the same results', async () => {
    for (const mode of ['tf32', 'bf16'] as const) {
      A.setTf32(true);
      for (const accumulate of [false, true]) {
        const path = await runCase({ B: 64, inF: 512, outF: 256, mode, accumulate, misaligned: true });
        expect(path, `${mode}${accumulate ? ' accumulate' : ''}: a view one float off 256 bytes must fall back`).toBe('fallback');
      }
    }
  }, 60_000);

  it('is off in deterministic mode and while switched off (neither counted), with the same results', async () => {
    for (const setup of [() => A.setDeterministic(true), () => A.setCublasLtEpilogues(false)]) {
      setup();
      try {
        const before = calls();
        const r = rng();
        const [B, inF, outF] = [64, 512, 256];
        const dy = f32(uniform(B * outF, r));
        const x = f32(uniform(B * inF, r));
        const w = f32(uniform(outF * inF, r));
        const g = A.linearBackward(Tensor.from(dy, [B, outF], { device: DEV }), Tensor.from(x, [B, inF], { device: DEV }), Tensor.from(w, [outF, inF], { device: DEV }));
        const ref = linearBackwardRef(dy, x, w, B, inF, outF);
        expectClose(await g.gradBias!.data(), ref.db, { atol: 1e-3, rtol: 3e-3, label: 'db' });
        expectClose(await g.gradWeight.data(), ref.dw, { atol: 3e-2, rtol: 3e-3, label: 'dw' });
        const after = calls();
        expect([after.weightGrad - before.weightGrad, after.fallbacks - before.fallbacks]).toEqual([0, 0]);
      } finally {
        A.setDeterministic(false);
        A.setCublasLtEpilogues(true);
      }
    }
  }, 60_000);

  it('a Linear(relu) -> Linear model: every parameter gradient as on the CPU after two accumulated backward passes', async () => {
    A.setTf32(false); // strict FP32: the CPU's sums to float32 rounding
    const seed = (Math.random() * 2 ** 32) >>> 0;
    const make = (device: string) => {
      const init = mulberry32(seed);
      return new Sequential(new Linear(37, 45, { rng: init, device }), new ReLU(), new Linear(45, 13, { rng: init, device }));
    };
    const cpu = make('cpu');
    const gpu = make(DEV);
    const r = rng();
    const before = calls();
    for (let pass = 0; pass < 2; pass++) {
      const x = f32(uniform(129 * 37, r));
      const dy = f32(uniform(129 * 13, r));
      for (const [net, device] of [[cpu, 'cpu'], [gpu, DEV]] as const) {
        const y = net.forward(Tensor.from(x, [129, 37], { device }));
        net.backward(Tensor.from(dy, [129, 13], { device }));
        y.dispose();
      }
    }
    const after = calls();
    // two passes x two layers, forward and backward, each counted once: cuBLASLt or a fallback
    const counted = (after.forward - before.forward) + (after.weightGrad - before.weightGrad) + (after.fallbacks - before.fallbacks);
    expect(counted).toBe(8);
    const cpuParams = cpu.namedParameters();
    const gpuParams = gpu.namedParameters();
    for (const [name, p] of cpuParams) {
      const q = gpuParams.find(([n]) => n === name)![1];
      expectClose(await q.grad.data(), await p.grad.data(), { atol: 1e-4, rtol: 1e-4, label: `grad of ${name}` });
    }
  }, 60_000);
});
