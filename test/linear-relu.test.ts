// linear(..., { relu: true }): y = max(x W^T + b, 0) in one call, on float32 and bfloat16 inputs,
// against a float64 reference; NaN kept as relu keeps it; and Sequential fusing Linear + ReLU
// with the same outputs and gradients as the layers one by one. (The CUDA forms, with and
// without cuBLASLt's epilogues, are compared with these in test/cuda-ops.test.ts.)
import { describe, expect, it } from 'vitest';
import { linear, relu, Tensor } from '../src/index.js';
import { Linear, ReLU, Sequential } from '../src/nn/index.js';
import { expectClose, expectCode, f32, rng, uniform } from './helpers.js';
import { linearRef } from './reference/linear.js';

const seedOf = () => (Math.random() * 2 ** 32) >>> 0;
const reluRef = (y: Float64Array) => y.map((v) => (v > 0 ? v : 0));

describe('linear with a fused ReLU', () => {
  it('float32: max(x W^T + b, 0) against float64, awkward shapes, with and without bias', async () => {
    const r = rng(seedOf());
    for (const [B, inF, outF] of [[1, 1, 1], [3, 5, 7], [17, 33, 64], [2, 300, 65]] as const) {
      for (const withBias of [true, false]) {
        const x = uniform(B * inF, r), w = uniform(outF * inF, r), b = withBias ? uniform(outF, r) : null;
        const y = linear(Tensor.from(f32(x), [B, inF]), Tensor.from(f32(w), [outF, inF]), b ? Tensor.from(f32(b), [outF]) : null, { relu: true });
        const ref = reluRef(linearRef(f32(x), f32(w), b ? f32(b) : null, B, inF, outF));
        const got = await y.data();
        expectClose(got, ref, { atol: 1e-5, rtol: 1e-4, label: `linear relu ${B}x${inF}->${outF} bias=${withBias}` });
        // the ReLU did something: negative pre-activations came out as exactly 0
        if (B * outF > 4) expect(got.some((v, i) => v === 0 && linearRef(f32(x), f32(w), b ? f32(b) : null, B, inF, outF)[i]! < 0)).toBe(true);
      }
    }
  });

  it('keeps NaN (as relu does) and sends -inf to 0', async () => {
    const x = Tensor.from(new Float32Array([NaN, 1, 1, 1]), [2, 2]);
    const w = Tensor.from(new Float32Array([1, 0, -Infinity, 0]), [2, 2]);
    const y = await linear(x, w, null, { relu: true }).data();
    expect(Number.isNaN(y[0])).toBe(true); // NaN * 1
    expect(Number.isNaN(y[1])).toBe(true); // NaN * -inf
    expect(y[2]).toBe(1);
    expect(y[3]).toBe(0); // -inf, cut by the ReLU
  });

  it('bfloat16 inputs, float32 and bfloat16 outputs: the same bits as linear then relu', async () => {
    const r = rng(seedOf());
    let zeros = 0;
    for (const [B, inF, outF] of [[1, 9, 5], [5, 64, 33], [16, 130, 96]] as const) {
      const x = Tensor.from(f32(uniform(B * inF, r)), [B, inF]).bfloat16();
      const w = Tensor.from(f32(uniform(outF * inF, r)), [outF, inF]).bfloat16();
      const b = Tensor.from(f32(uniform(outF, r)), [outF]);
      for (const outDtype of ['float32', 'bfloat16'] as const) {
        const fused = linear(x, w, b, { relu: true, outDtype });
        const plain = linear(x, w, b, { outDtype });
        // relu of the rounded value = the rounding of relu of the sum (rounding keeps the sign)
        const ref = outDtype === 'float32' ? await relu(plain as Tensor<'float32'>).data()
          : (await (plain as Tensor<'bfloat16'>).data()).map((v) => ((v & 0x8000) !== 0 && (v & 0x7fff) <= 0x7f80 ? 0 : v));
        const got = await fused.data();
        expect(fused.dtype).toBe(outDtype);
        expect(Array.from(got)).toEqual(Array.from(ref));
        zeros += Array.from(got).filter((v) => v === 0).length;
      }
    }
    // the ReLU cut something (over all shapes: the 5 outputs of [1, 9, 5] alone are all
    // positive one run in 32)
    expect(zeros).toBeGreaterThan(0);
  });

  it('refuses a relu option that is not a boolean', () => {
    const x = Tensor.from(new Float32Array(4), [2, 2]);
    expectCode(() => linear(x, x, null, { relu: 1 as unknown as boolean }), 'ERR_ARGUMENT', /relu/);
  });

  it('Sequential fuses Linear + ReLU into one call with the same outputs and gradients as the layers one by one', async () => {
    const r = rng(seedOf());
    const net = new Sequential(new Linear(11, 9), new ReLU(), new Linear(9, 3));
    const [l1, act, l2] = [0, 1, 2].map((i) => net.at(i)) as [Linear, ReLU, Linear];
    const calls: boolean[] = [];
    const forward = l1.forward.bind(l1);
    l1.forward = (x, fused = false) => (calls.push(fused), forward(x, fused));
    const x = Tensor.from(f32(uniform(4 * 11, r)), [4, 11]);
    const g = Tensor.from(f32(uniform(4 * 3, r)), [4, 3]);
    const h1 = l1.forward(x);
    const out1 = await l2.forward(act.forward(h1)).data();
    const gx1 = await l1.backward(act.backward(l2.backward(g)!)!)!.data();
    const gw1 = Float32Array.from(await l1.weight.grad.data());
    const gb1 = Float32Array.from(await l1.bias!.grad.data());
    expect((await h1.data()).some((v) => v < 0)).toBe(true); // the ReLU matters
    net.zeroGrad();
    calls.length = 0;
    const out2 = await net.forward(x).data();
    expect(calls).toEqual([true]); // one call, with the ReLU fused
    const gx2 = await net.backward(g)!.data();
    expectClose(out2, out1, { atol: 1e-6, rtol: 1e-6, label: 'fused forward' });
    expectClose(gx2, gx1, { atol: 1e-6, rtol: 1e-6, label: 'fused input gradient' });
    expectClose(await l1.weight.grad.data(), gw1, { atol: 1e-6, rtol: 1e-6, label: 'fused weight gradient' });
    expectClose(await l1.bias!.grad.data(), gb1, { atol: 1e-6, rtol: 1e-6, label: 'fused bias gradient' });
    net.dispose();
  });
});
