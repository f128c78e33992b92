import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  backendInfo,
  conv2d,
  conv2dBackward,
  cpuKernelsUsed,
  linear,
  linearBackward,
  matmul,
  maxPool2d,
  sgdStep,
  setBf16Kernel,
  setConvAlgorithm,
  setCpuIsa,
  setGemmBackend,
  setWeightCache,
  Tensor,
} from '../src/index.js';
import { expectClose, expectCode, f32, f64, rng, uniform } from './helpers.js';
import { bf16Value, f32Bits, f32BitsToBf16 } from './reference/bf16.js';
import { conv2dBackwardRef, conv2dRef, convOutSize, squareGeometry, type ConvGeometry, type SquareConvCase } from './reference/conv.js';
import { linearBackwardRef, linearRef, matmulRef } from './reference/linear.js';
import { maxPool2dRef, poolOutSize, type PoolGeometry } from './reference/pool.js';
import { sgdStepRef } from './reference/sgd.js';

// The instruction-set cap (setCpuIsa / ALEXNET_CPU_ISA, native/cpu/isa.h): under 'avx2' every
// kernel of ours that dispatches on the CPU's features runs its AVX2 build (or, with none, the
// caller's next path), results still match the float64 references, and cpuKernelsUsed() shows
// which builds ran. On an AVX2-only CPU the cap changes nothing; on one without AVX2 the
// kernels run their baseline builds; the assertions follow what the CPU has.

const here = dirname(fileURLToPath(import.meta.url));
const hardware = backendInfo().backends.cpu.isaHardware;
const capped = hardware === 'base' ? 'base' : 'avx2'; // what the kernels use under the cap
const wide = (used: string[]) => used.filter((k) => k.endsWith('.avx512'));

// Same tolerances as test/conv-winograd.test.ts (Winograd's transforms round more than a direct sum).
const tolerance = (K: number) => ({ atol: 1e-5 * Math.sqrt(K), rtol: 1e-4 });


afterEach(() => {
  setCpuIsa('auto');
  setConvAlgorithm('auto');
  setBf16Kernel('auto');
  setWeightCache(true);
  if (backendInfo().backends.cpu.blasCompiled) setGemmBackend('blas');
});

describe('setCpuIsa', () => {
  it('caps what backendInfo() reports, and lifts it again', () => {
    const cpu0 = backendInfo().backends.cpu;
    expect(cpu0.isaCap).toBe('auto');
    expect(cpu0.isa).toBe(hardware);
    setCpuIsa('avx2');
    const cpu = backendInfo().backends.cpu;
    expect(cpu.isaCap).toBe('avx2');
    expect(cpu.isa).toBe(capped);
    expect(cpu.isaHardware).toBe(hardware);
    expect(cpu.directConvIsa).toBe(capped === 'avx2' ? 'avx2' : 'none');
    expect(cpu.bf16Kernel).toBe('portable');
    if (cpu.bf16Hardware) expectCode(() => setBf16Kernel('avx512_bf16'), 'ERR_ARGUMENT', /capped/);
    setCpuIsa('avx512');
    expect(backendInfo().backends.cpu.isa).toBe(hardware);
    expect(backendInfo().backends.cpu.bf16Kernel).toBe(cpu0.bf16Kernel);
    expectCode(() => setCpuIsa('sse' as never), 'ERR_ARGUMENT', /'auto', 'avx2' or 'avx512' but got 'sse'/);
  });

  // Winograd's small-batch products kernel (batch 1-4 at 13x13) in its AVX2 build: tile counts
  // of 1 to 4 vectors (16 tiles each) and past them, output channels that are not multiples of
  // the 16-channel block or of the 6 + 6 + 4 row groups, 3x3 and 5x5, paddings 0 to 2.
  const small: SquareConvCase[] = [
    { N: 1, C: 3, H: 13, W: 13, O: 17, k: 3, padding: [1, 1] },
    { N: 3, C: 40, H: 13, W: 13, O: 20, k: 3, padding: [1, 1] },
    { N: 4, C: 9, H: 13, W: 13, O: 33, k: 3, padding: [1, 1] },
    { N: 2, C: 18, H: 13, W: 11, O: 7, k: 3, padding: [0, 2] },
    { N: 1, C: 7, H: 13, W: 13, O: 17, k: 5, padding: [2, 2] },
    { N: 1, C: 5, H: 27, W: 27, O: 40, k: 5, padding: [2, 2] },
    { N: 1, C: 6, H: 20, W: 52, O: 18, k: 3, padding: [1, 1] },
  ];
  it.each(small)('Winograd under the cap: forward (+ ReLU) and input gradient match float64, in the AVX2 build: %j', async (c) => {
    setCpuIsa('avx2');
    setConvAlgorithm('winograd');
    const r = rng();
    const g = squareGeometry(c);
    const [Ho, Wo] = convOutSize(g);
    const x = f64(f32(uniform(g.N * g.C * g.H * g.W, r)));
    const w = f64(f32(uniform(g.O * g.C * c.k * c.k, r, -0.5, 0.5)));
    const b = f64(f32(uniform(g.O, r)));
    const dy = f64(f32(uniform(g.N * g.O * Ho * Wo, r)));
    const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
    const tw = Tensor.from(f32(w), [g.O, g.C, c.k, c.k]);
    cpuKernelsUsed({ reset: true });
    const ref = conv2dRef(x, w, b, g);
    const y = await conv2d(tx, tw, Tensor.from(f32(b), [g.O]), { padding: c.padding }).data();
    expectClose(y, ref, { ...tolerance(g.C * c.k * c.k), label: `capped winograd forward ${JSON.stringify(c)}` });
    const yr = await conv2d(tx, tw, Tensor.from(f32(b), [g.O]), { padding: c.padding, relu: true }).data();
    expectClose(yr, ref.map((v) => Math.max(v, 0)), { ...tolerance(g.C * c.k * c.k), label: `capped winograd forward + relu ${JSON.stringify(c)}` });
    const dx = await conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, { padding: c.padding }).gradInput!.data();
    expectClose(dx, conv2dBackwardRef(dy, x, w, g).dx, { ...tolerance(g.O * c.k * c.k), label: `capped winograd gradInput ${JSON.stringify(c)}` });
    const used = cpuKernelsUsed();
    expect(wide(used)).toEqual([]);
    const tiles = g.N * Math.ceil(Ho / 4) * Math.ceil(Wo / 4);
    if (capped === 'avx2' && tiles <= 64) expect(used).toContain('conv.winograd.own.avx2');
  });

  it('the uncapped run takes the AVX-512 builds where the CPU has them (the check above can fail)', async () => {
    if (hardware !== 'avx512') return expect(backendInfo().backends.cpu.isa).toBe(hardware);
    setConvAlgorithm('winograd');
    const r = rng();
    const tx = Tensor.from(f32(uniform(1 * 16 * 13 * 13, r)), [1, 16, 13, 13]);
    const tw = Tensor.from(f32(uniform(20 * 16 * 9, r)), [20, 16, 3, 3]);
    cpuKernelsUsed({ reset: true });
    await conv2d(tx, tw, null, { padding: [1, 1] }).data();
    const used = cpuKernelsUsed({ reset: true });
    expect(used).toContain('conv.winograd.own.avx512');
    expect(used).not.toContain('conv.winograd.own.avx2');
    setCpuIsa('avx2');
    await conv2d(tx, tw, null, { padding: [1, 1] }).data();
    expect(cpuKernelsUsed()).toContain('conv.winograd.own.avx2');
  });

  it('the direct convolution, its gradients, the fully connected layers, pooling and the portable GEMM match float64 under the cap', async () => {
    setCpuIsa('avx2');
    setConvAlgorithm('direct');
    const r = rng();
    cpuKernelsUsed({ reset: true });
    // direct convolution, stride 4 (AlexNet's conv1 kind) and stride 1, odd sizes
    for (const g of [
      { N: 2, C: 3, H: 23, W: 21, O: 19, kH: 11, kW: 11, stride: [4, 4], padding: [2, 2], dilation: [1, 1], groups: 1 },
      { N: 3, C: 17, H: 9, W: 10, O: 21, kH: 3, kW: 3, stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 },
    ] as ConvGeometry[]) {
      const [Ho, Wo] = convOutSize(g);
      const x = f64(f32(uniform(g.N * g.C * g.H * g.W, r)));
      const w = f64(f32(uniform(g.O * g.C * g.kH * g.kW, r, -0.5, 0.5)));
      const b = f64(f32(uniform(g.O, r)));
      const dy = f64(f32(uniform(g.N * g.O * Ho * Wo, r)));
      const opts = { stride: g.stride, padding: g.padding };
      const tx = Tensor.from(f32(x), [g.N, g.C, g.H, g.W]);
      const tw = Tensor.from(f32(w), [g.O, g.C, g.kH, g.kW]);
      const K = g.C * g.kH * g.kW;
      expectClose(await conv2d(tx, tw, Tensor.from(f32(b), [g.O]), opts).data(), conv2dRef(x, w, b, g), { atol: 1e-5 * Math.sqrt(K), rtol: 1e-4, label: 'capped direct forward' });
      const grads = conv2dBackward(Tensor.from(f32(dy), [g.N, g.O, Ho, Wo]), tx, tw, opts);
      const ref = conv2dBackwardRef(dy, x, w, g);
      expectClose(await grads.gradInput!.data(), ref.dx, { atol: 1e-5 * Math.sqrt(g.O * g.kH * g.kW), rtol: 1e-4, label: 'capped direct gradInput' });
      expectClose(await grads.gradWeight.data(), ref.dw, { atol: 1e-5 * Math.sqrt(g.N * Ho * Wo), rtol: 1e-4, label: 'capped gradWeight' });
    }
    // fully connected layers at batch 1, 2 and 13 with the skinny GEMM's shapes (sizes off its blocks)
    for (const B of [1, 2, 13]) {
      const inF = 1030;
      const outF = 261;
      const x = f64(f32(uniform(B * inF, r)));
      const w = f64(f32(uniform(outF * inF, r, -0.5, 0.5)));
      const b = f64(f32(uniform(outF, r)));
      const dy = f64(f32(uniform(B * outF, r)));
      const tol = { atol: 1e-5 * Math.sqrt(inF), rtol: 1e-4 };
      const tx = Tensor.from(f32(x), [B, inF]);
      const tw = Tensor.from(f32(w), [outF, inF]);
      expectClose(await linear(tx, tw, Tensor.from(f32(b), [outF])).data(), linearRef(x, w, b, B, inF, outF), { ...tol, label: `capped linear B=${B}` });
      const g = linearBackward(Tensor.from(f32(dy), [B, outF]), tx, tw);
      const ref = linearBackwardRef(dy, x, w, B, inF, outF);
      expectClose(await g.gradInput!.data(), ref.dx, { ...tol, label: `capped linear dx B=${B}` });
      expectClose(await g.gradWeight.data(), ref.dw, { atol: 1e-5 * Math.sqrt(B), rtol: 1e-4, label: `capped linear dw B=${B}` });
    }
    // max pooling, 3x3 stride 2 with padding
    const pg: PoolGeometry = { N: 2, C: 5, H: 15, W: 14, kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
    const px = f64(f32(uniform(pg.N * pg.C * pg.H * pg.W, r)));
    const [pHo, pWo] = poolOutSize(pg);
    const py = await maxPool2d(Tensor.from(f32(px), [pg.N, pg.C, pg.H, pg.W]), { kernelSize: pg.kernel, stride: pg.stride, padding: pg.padding }).data();
    expect(py.length).toBe(pg.N * pg.C * pHo * pWo);
    expectClose(py, maxPool2dRef(px, pg), { atol: 0, rtol: 0, label: 'capped maxPool2d' });
    // the portable GEMM (its micro-kernel is one of simd.h's dispatched functions)
    setGemmBackend('portable');
    const [M, N, K] = [37, 29, 301];
    const a = f64(f32(uniform(M * K, r)));
    const bm = f64(f32(uniform(K * N, r)));
    expectClose(await matmul(Tensor.from(f32(a), [M, K]), Tensor.from(f32(bm), [K, N])).data(), matmulRef(a, bm, M, N, K), { atol: 1e-5 * Math.sqrt(K), rtol: 1e-4, label: 'capped portable matmul' });

    const used = cpuKernelsUsed();
    expect(wide(used)).toEqual([]);
    if (capped === 'avx2') expect(used).toEqual(expect.arrayContaining(['simd.avx2', 'conv.direct.avx2', 'gemm.skinny.avx2']));
    else expect(used).toEqual(['simd.base']);
  });

  // SGD's update is separate double roundings (no fused multiply-adds, native/cpu/sgd.cc), bit
  // for bit the float64 reference, in every build: capped, and the CPU's best.
  it.each(['avx2', 'auto'] as const)('SGD steps match the float64 reference bit for bit (cap %s)', async (cap) => {
    setCpuIsa(cap);
    const r = rng();
    const n = 100_003;
    for (const o of [{ lr: 0.1 }, { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, dampening: 0.1 }, { lr: 0.02, momentum: 0.9, weightDecay: 1e-3, convention: 'krizhevsky' as const }]) {
      const w0 = f32(uniform(n, r, -0.1, 0.1));
      const g = f32(uniform(n, r));
      const b0 = f32(uniform(n, r, -0.1, 0.1));
      const w = Tensor.from(w0, [n]);
      cpuKernelsUsed({ reset: true });
      sgdStep(w, Tensor.from(g, [n]), o.momentum ? Tensor.from(b0, [n]) : null, o);
      const want = Float64Array.from(w0);
      sgdStepRef(want, g, o.momentum ? Float64Array.from(b0) : null, o);
      expect(Array.from(await w.data())).toEqual(Array.from(want, Math.fround));
      const used = cpuKernelsUsed();
      if (cap === 'avx2') expect(wide(used)).toEqual([]);
      expect(used).toContain(`simd.${cap === 'avx2' ? capped : hardware}`);
    }
  });

  it('bfloat16 conversions take the portable path under the cap, with the same bits', async () => {
    const r = rng();
    const values = f32(uniform(4099, r, -3, 3));
    const want = Array.from(values, (v) => bf16Value(f32BitsToBf16(f32Bits(v))));
    setCpuIsa('avx2');
    cpuKernelsUsed({ reset: true });
    const back = await Tensor.from(values, [values.length]).to('bfloat16').to('float32').data();
    expect(Array.from(back)).toEqual(want);
    const used = cpuKernelsUsed();
    expect(used).not.toContain('bf16.avx512');
    expect(wide(used)).toEqual([]);
  });

  it('ALEXNET_CPU_ISA sets the cap when the addon loads; an unknown value is ERR_ARGUMENT', () => {
    const script = `
      const lib = await import(${JSON.stringify(join(here, '..', 'dist', 'index.js'))});
      try {
        const cpu = lib.backendInfo().backends.cpu;
        console.log(JSON.stringify({ cap: cpu.isaCap, isa: cpu.isa }));
      } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const run = (value: string) => {
      const p = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ALEXNET_CPU_ISA: value }, encoding: 'utf8', timeout: 60_000 });
      expect(p.status, p.stderr).toBe(0);
      return JSON.parse(p.stdout.trim().split('\n').at(-1)!) as { cap?: string; isa?: string; code?: string; message?: string };
    };
    expect(run('avx2')).toEqual({ cap: 'avx2', isa: capped });
    expect(run('auto')).toEqual({ cap: 'auto', isa: hardware });
    const bad = run('avx3');
    expect(bad.code).toBe('ERR_ARGUMENT');
    expect(bad.message).toMatch(/ALEXNET_CPU_ISA must be 'auto', 'avx2' or 'avx512' but is 'avx3'/);
  });
});
