// The cuDNN / cuBLAS operators' edge cases on CUDA, each against the CPU backend or against
// the definition (behind describeCuda: skipped with the reason without a GPU, failing with
// ALEXNET_REQUIRE_CUDA=1): empty sizes, LRN's limits, deterministic max pooling and its tie
// rule, our bias kernels (large and odd shapes, determinism), the per-shape descriptor cache,
// and where cuDNN and cuBLAS were loaded from. The loader's matching of cuBLAS to cuDNN's
// installation is also checked without a GPU, on fake library trees.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  conv2d,
  conv2dBackward,
  linear,
  linearBackward,
  localResponseNorm,
  localResponseNormBackward,
  maxPool2d,
  maxPool2dBackward,
  setTf32,
  Tensor,
} from '../src/index.js';
import { loadNative, nativePath, type CudaLibraries } from '../src/native.js';
import { describeCuda } from './cuda-gate.js';
import { checkEmptyConv, checkEmptyLinear, checkEmptyLrn, checkEmptyPool } from './empty-sizes.js';
import { expectClose, expectCode, f32, rng, uniform } from './helpers.js';

const DEV = 'cuda:0';
const native = loadNative();
const count = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The same values on the CPU and on the GPU. */
function pair(data: Float32Array, shape: readonly number[]): { cpu: Tensor<'float32'>; gpu: Tensor<'float32'> } {
  return { cpu: Tensor.from(data, shape), gpu: Tensor.from(data, shape, { device: DEV }) };
}

const bitwiseEqual = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Runs `fn` with strict FP32 on CUDA (no TF32 rounding in cuDNN / cuBLAS), restoring TF32. */
async function strictFp32<T>(fn: () => Promise<T>): Promise<T> {
  setTf32(false);
  try {
    return await fn();
  } finally {
    setTf32(true);
  }
}

describeCuda('cuDNN / cuBLAS operators: empty sizes (as on the CPU)', () => {
  it('linear and matmul: empty batch, inner dimension (K = 0) and output', async () => {
    await checkEmptyLinear(DEV);
  });
  it('conv2d: an empty batch (no n = 0 descriptors; gradients zero or unchanged)', async () => {
    await checkEmptyConv(DEV);
  });
  it('maxPool2d: an empty batch or no channels', async () => {
    await checkEmptyPool(DEV);
  });
  it('localResponseNorm: an empty batch, channel count or plane', async () => {
    await checkEmptyLrn(DEV);
  });
});

describeCuda('localResponseNorm limits on CUDA', () => {
  it("rejects what cuDNN would reject before any work is queued, with the CPU's message; computes the limits themselves like the CPU", async () => {
    const r = rng();
    const shape = [2, 17, 5, 3];
    const data = f32(uniform(count(shape), r, -2, 2));
    const x = pair(data, shape);
    const dy = pair(f32(uniform(count(shape), r)), shape);
    const bad: [Record<string, number>, RegExp][] = [
      [{ size: 17 }, /localResponseNorm: size must be an integer in \[1, 16\]/],
      [{ size: 5, k: 9e-6 }, /localResponseNorm: k must be at least 1e-05 .*CUDNN_LRN_MIN_K/],
      [{ size: 5, beta: 0.009 }, /localResponseNorm: beta must be at least 0\.01 .*CUDNN_LRN_MIN_BETA/],
    ];
    for (const [o, re] of bad) {
      expectCode(() => localResponseNorm(x.cpu, o as { size: number }), 'ERR_ARGUMENT', re);
      expectCode(() => localResponseNorm(x.gpu, o as { size: number }), 'ERR_ARGUMENT', re);
    }
    // even windows: CPU only (cuDNN centres them differently), said before dispatch
    expect(() => localResponseNorm(x.cpu, { size: 4 })).not.toThrow();
    expectCode(() => localResponseNorm(x.gpu, { size: 4 }), 'ERR_ARGUMENT', /localResponseNorm: size must be odd on CUDA but got 4/);
    for (const o of [
      { size: 15, alpha: 0.9, beta: 0.75, k: 1 }, // the widest odd window
      { size: 5, alpha: 0.3, beta: 0.01, k: 1e-5 }, // the smallest k and beta
    ]) {
      const yc = localResponseNorm(x.cpu, o);
      const yg = localResponseNorm(x.gpu, o);
      expectClose(await yg.data(), await yc.data(), { atol: 1e-5, rtol: 1e-4, label: `lrn forward ${JSON.stringify(o)}` });
      const dc = await localResponseNormBackward(dy.cpu, x.cpu, yc, o).data();
      const dg = await localResponseNormBackward(dy.gpu, x.gpu, yg, o).data();
      expectClose(dg, dc, { atol: 1e-4, rtol: 1e-3, label: `lrn backward ${JSON.stringify(o)}` });
    }
  });
});

describeCuda('maxPool2d on CUDA: deterministic backward, tie rule', () => {
  const o = { kernelSize: [3, 3] as [number, number], stride: [2, 2] as [number, number] };

  it('without ties matches the CPU exactly (overlapping 3/2 windows, AlexNet sizes), and two runs agree bitwise', async () => {
    const r = rng();
    const shape = [3, 16, 55, 55];
    const n = count(shape);
    // distinct values in random order: no window holds a tie
    const values = Float32Array.from({ length: n }, (_, i) => (i + 1) / n - 0.5);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [values[i], values[j]] = [values[j]!, values[i]!];
    }
    const x = pair(values, shape);
    const yc = maxPool2d(x.cpu, o);
    const yg = maxPool2d(x.gpu, o);
    expectClose(await yg.data(), await yc.data(), { atol: 0, rtol: 0, label: 'maxpool forward' });
    const dy = pair(f32(uniform(count(yc.shape), r)), yc.shape);
    const dc = await maxPool2dBackward(dy.cpu, x.cpu, yc, o).data();
    const d1 = await maxPool2dBackward(dy.gpu, x.gpu, yg, o).data();
    const d2 = await maxPool2dBackward(dy.gpu, x.gpu, yg, o).data();
    // a pixel in two windows sums two gradients: the order of that sum may differ
    expectClose(d1, dc, { atol: 1e-6, rtol: 1e-6, label: 'maxpool backward vs CPU' });
    expect(bitwiseEqual(d1, d2), 'two backward runs agree bitwise').toBe(true);
  });

  it('ties: each window gives its whole gradient to exactly one of its tied inputs; the total is conserved; runs agree bitwise', async () => {
    const r = rng();
    // non-overlapping 2x2 windows, each holding four equal values (random per window)
    const N = 2, C = 3, H = 8, W = 10;
    const x = new Float32Array(N * C * H * W);
    for (let p = 0; p < N * C; p++)
      for (let wh = 0; wh < H / 2; wh++)
        for (let ww = 0; ww < W / 2; ww++) {
          const v = Math.round(r() * 8) - 4;
          for (const [a, b] of [[0, 0], [0, 1], [1, 0], [1, 1]]) x[p * H * W + (2 * wh + a!) * W + 2 * ww + b!] = v;
        }
    const o2 = { kernelSize: [2, 2] as [number, number] };
    const tx = Tensor.from(x, [N, C, H, W], { device: DEV });
    const ty = maxPool2d(tx, o2);
    const Ho = H / 2, Wo = W / 2;
    const dyv = f32(uniform(N * C * Ho * Wo, r, 0.5, 1.5)); // never zero
    const tdy = Tensor.from(dyv, [N, C, Ho, Wo], { device: DEV });
    const dx = await maxPool2dBackward(tdy, tx, ty, o2).data();
    for (let p = 0; p < N * C; p++)
      for (let oh = 0; oh < Ho; oh++)
        for (let ow = 0; ow < Wo; ow++) {
          const got = [[0, 0], [0, 1], [1, 0], [1, 1]].map(([a, b]) => dx[p * H * W + (2 * oh + a!) * W + 2 * ow + b!]!);
          const g = dyv[(p * Ho + oh) * Wo + ow]!;
          expect(got.filter((v) => v !== 0), `window ${p}/${oh}/${ow}: ${got}`).toEqual([g]);
        }
    expect(bitwiseEqual(dx, await maxPool2dBackward(tdy, tx, ty, o2).data())).toBe(true);

    // overlapping 3/2 windows over values from {-1, 0, 1}: the gradient is conserved
    const shape = [2, 4, 13, 11];
    const xv = Float32Array.from({ length: count(shape) }, () => Math.floor(r() * 3) - 1);
    const gx = Tensor.from(xv, shape, { device: DEV });
    const gy = maxPool2d(gx, o);
    const gdy = f32(uniform(count(gy.shape), r, 0.5, 1.5));
    const gdx = await maxPool2dBackward(Tensor.from(gdy, gy.shape, { device: DEV }), gx, gy, o).data();
    const sum = (a: Float32Array) => a.reduce((s, v) => s + v, 0);
    expect(Math.abs(sum(gdx) - sum(gdy))).toBeLessThan(1e-2);
    // and every input that received gradient is its window's maximum somewhere: x == 1 or a
    // window whose maximum is lower; at least: nothing lands on an input below every window max
    const yv = await gy.data();
    const [Hh, Ww] = [shape[2]!, shape[3]!];
    const [Ho2, Wo2] = [gy.shape[2]!, gy.shape[3]!];
    for (let i = 0; i < gdx.length; i++) {
      if (gdx[i] === 0) continue;
      const p = Math.floor(i / (Hh * Ww)), h = Math.floor(i / Ww) % Hh, w = i % Ww;
      let isMaxOfSomeWindow = false;
      for (let oh = 0; oh < Ho2; oh++)
        for (let ow = 0; ow < Wo2; ow++)
          if (h >= 2 * oh && h < 2 * oh + 3 && w >= 2 * ow && w < 2 * ow + 3 && yv[(p * Ho2 + oh) * Wo2 + ow] === xv[i]) isMaxOfSomeWindow = true;
      expect(isMaxOfSomeWindow, `gradient at ${i} (x = ${xv[i]}) which is no window's maximum`).toBe(true);
    }
  });
});

describeCuda('bias kernels on CUDA (bias gradient and bias + ReLU epilogue)', () => {
  // N*S > 2^16, odd sizes; one or several images so both the one-pass and the two-pass sums run
  const convCases = [
    { N: 3, C: 5, O: 7, H: 151, W: 151 }, // S = 22801, N*S = 68403
    { N: 1, C: 3, O: 9, H: 263, W: 257 }, // one image: S = 67591 in a single plane
    { N: 37, C: 2, O: 3, H: 45, W: 41 }, // many images, few channels
  ];
  const linearCases = [
    { B: 66001, inF: 2, out: 3 }, // long columns: the two-pass row sums
    { B: 5, inF: 3, out: 4097 }, // wide rows, one pass
    { B: 129, inF: 7, out: 4097 },
  ];
  // blocked float sums vs the CPU's double sums: error ~ eps * log2(n) * sum|dy|, |dy| < 1
  const sumTol = (n: number) => ({ atol: 4e-7 * n, rtol: 1e-5 });

  it.each(convCases)('conv2d bias + ReLU and gradBias match the CPU, deterministically: %j', async (c) => {
    await strictFp32(async () => {
      const r = rng();
      const xs = [c.N, c.C, c.H, c.W], ws = [c.O, c.C, 1, 1];
      const x = pair(f32(uniform(count(xs), r)), xs);
      const w = pair(f32(uniform(count(ws), r)), ws);
      const b = pair(f32(uniform(c.O, r, -0.5, 0.5)), [c.O]);
      for (const relu of [false, true]) {
        const yc = await conv2d(x.cpu, w.cpu, b.cpu, { relu }).data();
        const yg = await conv2d(x.gpu, w.gpu, b.gpu, { relu }).data();
        expectClose(yg, yc, { atol: 1e-5, rtol: 1e-5, label: `conv2d + bias${relu ? ' + relu' : ''}` });
      }
      const ys = [c.N, c.O, c.H, c.W];
      const dy = pair(f32(uniform(count(ys), r)), ys);
      const gc = conv2dBackward(dy.cpu, x.cpu, w.cpu, { computeGradInput: false });
      const g1 = conv2dBackward(dy.gpu, x.gpu, w.gpu, { computeGradInput: false });
      const g2 = conv2dBackward(dy.gpu, x.gpu, w.gpu, { computeGradInput: false });
      const dbc = await gc.gradBias!.data();
      const db1 = await g1.gradBias!.data();
      expectClose(db1, dbc, { ...sumTol(c.N * c.H * c.W), label: 'conv2d gradBias' });
      expect(bitwiseEqual(db1, await g2.gradBias!.data()), 'two gradBias runs agree bitwise').toBe(true);
      // accumulating adds the same sum to what is there
      const start = f32(uniform(c.O, r));
      const acc = Tensor.from(start, [c.O], { device: DEV });
      conv2dBackward(dy.gpu, x.gpu, w.gpu, { computeGradInput: false, gradWeight: Tensor.zeros(ws, { device: DEV }), gradBias: acc, accumulate: true });
      expectClose(await acc.data(), Array.from(dbc, (v, i) => v + start[i]!), { ...sumTol(c.N * c.H * c.W), label: 'conv2d gradBias accumulated' });
    });
  }, 120_000);

  it.each(linearCases)('linear bias epilogue and gradBias (S = 1 kernels) match the CPU, deterministically: %j', async (c) => {
    await strictFp32(async () => {
      const r = rng();
      const x = pair(f32(uniform(c.B * c.inF, r)), [c.B, c.inF]);
      const w = pair(f32(uniform(c.out * c.inF, r)), [c.out, c.inF]);
      const b = pair(f32(uniform(c.out, r)), [c.out]);
      expectClose(await linear(x.gpu, w.gpu, b.gpu).data(), await linear(x.cpu, w.cpu, b.cpu).data(), { atol: 1e-5, rtol: 1e-5, label: 'linear + bias' });
      const dy = pair(f32(uniform(c.B * c.out, r)), [c.B, c.out]);
      const dbc = await linearBackward(dy.cpu, x.cpu, w.cpu, { computeGradInput: false }).gradBias!.data();
      const db1 = await linearBackward(dy.gpu, x.gpu, w.gpu, { computeGradInput: false }).gradBias!.data();
      const db2 = await linearBackward(dy.gpu, x.gpu, w.gpu, { computeGradInput: false }).gradBias!.data();
      expectClose(db1, dbc, { ...sumTol(c.B), label: 'linear gradBias' });
      expect(bitwiseEqual(db1, db2), 'two gradBias runs agree bitwise').toBe(true);
    });
  }, 120_000);
});

describeCuda('cuDNN descriptor cache', () => {
  const created = (): number => {
    const n = native.info().cuda.descriptorsCreated;
    expect(typeof n).toBe('number');
    return n!;
  };

  it('a repeated conv2d / maxPool2d / LRN call with the same shape makes no descriptor; a new shape does', async () => {
    const r = rng();
    const x = Tensor.from(f32(uniform(2 * 3 * 19 * 17, r)), [2, 3, 19, 17], { device: DEV });
    const w = Tensor.from(f32(uniform(5 * 3 * 3 * 3, r)), [5, 3, 3, 3], { device: DEV });
    const b = Tensor.from(f32(uniform(5, r)), [5], { device: DEV });
    const step = async () => {
      const y = conv2d(x, w, b, { padding: 1, relu: true });
      const g = conv2dBackward(y, x, w, { padding: 1 });
      const p = maxPool2d(y, { kernelSize: [3, 3], stride: [2, 2] });
      const pg = maxPool2dBackward(p, y, p, { kernelSize: [3, 3], stride: [2, 2] });
      const l = localResponseNorm(y, { size: 3, k: 2 });
      const lg = localResponseNormBackward(l, y, l, { size: 3, k: 2 });
      for (const t of [g.gradInput!, g.gradWeight, g.gradBias!, pg, lg]) await t.data(); // all work done
    };
    await step();
    const after1 = created();
    expect(after1).toBeGreaterThan(0);
    await step();
    await step();
    expect(created(), 'descriptors made by two more identical steps').toBe(after1);
    // another batch size is another shape: new descriptors (the counter does count)
    const x2 = Tensor.from(f32(uniform(3 * 3 * 19 * 17, r)), [3, 3, 19, 17], { device: DEV });
    await conv2d(x2, w, b, { padding: 1 }).data();
    expect(created()).toBeGreaterThan(after1);
  });
});

describeCuda('where cuDNN and cuBLAS came from', () => {
  it('info() reports both paths, why each was taken, and one installation where both come from pip wheels', () => {
    const libs = native.info().cuda.libraries!;
    // cuBLASLt comes from cuBLAS's own file: found or not, with a note, no path of its own
    // (iterating every entry here failed on cublasLt: found by the emulated device)
    expect(libs.cublasLt.found).toBe(true);
    for (const [name, lib] of [['cudnn', libs.cudnn], ['cublas', libs.cublas]] as const) {
      expect(lib.found, name).toBe(true);
      expect(lib.path, name).toMatch(/\//);
      expect(lib.why.length, `${name}: why`).toBeGreaterThan(10);
      expect(lib.root.length, `${name}: root`).toBeGreaterThan(0);
    }
    if (libs.cudnn.path.includes('/nvidia/') && libs.cublas.path.includes('/nvidia/') && !process.env.ALEXNET_CUBLAS_PATH) {
      expect(libs.cublas.root).toBe(libs.cudnn.root);
      expect(libs.cublas.why).toMatch(/same installation as cuDNN/);
    }
    console.log(`cuDNN ${libs.cudnn.version}: ${libs.cudnn.path} (${libs.cudnn.why})\ncuBLAS ${libs.cublas.version}: ${libs.cublas.path} (${libs.cublas.why})`);
  });
});

// ---- the loader's matching, without a GPU ------------------------------------------------------

/** cudaLibraries() and info().cuda.libraries from a fresh process (loading is once per process). */
function loadInChild(env: Record<string, string>): { libs: CudaLibraries; info: { found: boolean; path: string; why: string; root: string }[] | null } {
  const script =
    'const m = require(process.argv[1]);' +
    'const libs = m.cudaLibraries();' +
    'const i = m.info().cuda.libraries;' +
    'process.stdout.write(JSON.stringify({ libs, info: i ? [i.cudnn, i.cublas] : null }));';
  const r = spawnSync(process.execPath, ['-e', script, nativePath()], {
    env: { ...process.env, ALEXNET_CUDNN_PATH: '', ALEXNET_CUBLAS_PATH: '', ...env },
    encoding: 'utf8',
  });
  expect(r.status, `child failed (signal ${r.signal}):\n${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as ReturnType<typeof loadInChild>;
}

const compiled = native.info().cuda.compiled;
const realCudnn = compiled && native.cudaLibraries().cudnn.found; // a machine with cuDNN: the fake trees would lose to it
const haveCc = spawnSync('cc', ['--version']).status === 0;

describe.skipIf(!compiled || realCudnn)('loader: cuBLAS from the same installation as cuDNN (fake library trees)', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'alexnet-match-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('looks beside cuDNN first (same site-packages), before the loader path and the toolkit; an explicit ALEXNET_CUBLAS_PATH still wins', () => {
    // empty files named like the libraries: dlopen rejects them, the searched list shows the order
    const site = join(dir, 'empty', 'site-packages');
    const cudaHome = join(dir, 'empty', 'cuda');
    for (const d of ['nvidia/cudnn/lib', 'nvidia/cublas/lib']) mkdirSync(join(site, d), { recursive: true });
    mkdirSync(join(cudaHome, 'lib64'), { recursive: true });
    writeFileSync(join(site, 'nvidia/cudnn/lib/libcudnn.so.9'), '');
    writeFileSync(join(site, 'nvidia/cublas/lib/libcublas.so.13'), '');
    writeFileSync(join(cudaHome, 'lib64/libcublas.so.13'), '');
    const { libs } = loadInChild({ ALEXNET_PYTHON_SITE: site, CUDA_HOME: cudaHome });
    const s = libs.cublas.searched;
    const at = (re: RegExp) => s.findIndex((e) => re.test(e));
    const cudnnFile = join(site, 'nvidia/cudnn/lib/libcudnn.so.9');
    const besideSame = at(new RegExp(`^beside cuDNN \\(${cudnnFile}\\): ${join(site, 'nvidia/cudnn/lib')}: no libcublas`));
    const besideWheel = at(new RegExp(`^beside cuDNN \\(${cudnnFile}\\): ${join(site, 'nvidia/cublas/lib')}: cannot load`));
    const loaderPath = at(/^the dynamic loader's search path/);
    const toolkit = at(new RegExp(`^\\$CUDA_HOME = ${join(cudaHome, 'lib64')}: cannot load`));
    const again = at(new RegExp(`^${join(site, 'nvidia/cublas/lib')}: already tried beside cuDNN`));
    expect([besideSame, besideWheel, loaderPath, toolkit, again].every((i) => i >= 0), s.join('\n')).toBe(true);
    expect(besideSame).toBeLessThan(besideWheel);
    expect(besideWheel).toBeLessThan(loaderPath);
    expect(loaderPath).toBeLessThan(toolkit);
    expect(toolkit).toBeLessThan(again);
    // cuDNN itself was searched as before (and its empty file rejected)
    expect(libs.cudnn.searched.join('\n')).toContain(`${join(site, 'nvidia/cudnn/lib')}: cannot load`);

    // ALEXNET_CUBLAS_PATH: the only place tried, even with a cuDNN to match
    const explicit = loadInChild({ ALEXNET_PYTHON_SITE: site, CUDA_HOME: cudaHome, ALEXNET_CUBLAS_PATH: join(cudaHome, 'lib64') });
    expect(explicit.libs.cublas.searched).toHaveLength(1);
    expect(explicit.libs.cublas.searched[0]).toMatch(new RegExp(`^ALEXNET_CUBLAS_PATH=${join(cudaHome, 'lib64')}`));
  });

  it.skipIf(!haveCc)('takes the cuBLAS of cuDNN\'s site-packages over a usable one found earlier in the usual order, and says so in info()', () => {
    // complete fake libraries (every symbol the loader resolves, as stubs)
    const site = join(dir, 'full', 'site-packages');
    const cudaHome = join(dir, 'full', 'cuda');
    const dnnDir = join(site, 'nvidia/cudnn/lib');
    const blasDir = join(site, 'nvidia/cublas/lib');
    const toolkitDir = join(cudaHome, 'lib64');
    for (const d of [dnnDir, blasDir, toolkitDir]) mkdirSync(d, { recursive: true });
    const abi = native.cudaAbi();
    const special = new Set(['cudnnGetVersion', 'cudnnGetCudartVersion', 'cudnnGetErrorString', 'cudnnGetLastErrorString', 'cublasGetProperty']);
    const stubs = (names: string[]) => names.filter((n) => !special.has(n)).map((n) => `int ${n}(void) { return 0; }`).join('\n');
    const cc = (out: string, src: string) => {
      writeFileSync(`${out}.c`, src);
      execFileSync('cc', ['-shared', '-fPIC', `-Wl,-soname,${out.slice(out.lastIndexOf('/') + 1)}`, '-o', out, `${out}.c`]);
    };
    cc(join(dnnDir, 'libcudnn.so.9'), '#include <stddef.h>\nsize_t cudnnGetVersion(void) { return 91300; }\nconst char* cudnnGetErrorString(int s) { return "fake"; }\n' + stubs([...abi.functions.cudnn, ...abi.functions.cudnnOptional]) + '\n');
    const blas = (minor: number) => `int cublasGetProperty(int t, int* v) { *v = t == 0 ? 13 : t == 1 ? ${minor} : 0; return 0; }\n` + stubs(abi.functions.cublas) + '\n';
    cc(join(toolkitDir, 'libcublas.so.13'), blas(0)); // 13.0.0 in the toolkit, earlier in the usual order
    cc(join(toolkitDir, 'libcublasLt.so.13'), 'int lt(void) { return 0; }\n');
    cc(join(blasDir, 'libcublas.so.13'), blas(1)); // 13.1.0 beside cuDNN
    cc(join(blasDir, 'libcublasLt.so.13'), 'int lt(void) { return 0; }\n');
    const { libs, info } = loadInChild({ ALEXNET_PYTHON_SITE: site, CUDA_HOME: cudaHome });
    expect(libs.reason).toBe('');
    expect(libs.cudnn.path).toBe(join(dnnDir, 'libcudnn.so.9'));
    expect(libs.cublas.path).toBe(join(blasDir, 'libcublas.so.13'));
    expect(libs.cublas.version).toBe('13.1.0');
    expect(libs.cublas.notes.join('\n')).toMatch(/taken: the same installation as cuDNN/);
    expect(info).not.toBeNull();
    const [dn, bl] = info!;
    expect(dn!.path).toBe(libs.cudnn.path);
    expect(bl!.path).toBe(libs.cublas.path);
    expect(bl!.why).toMatch(new RegExp(`^the same installation as cuDNN \\(${join(dnnDir, 'libcudnn.so.9')}`));
    expect(dn!.why).toMatch(/^the first usable cuDNN 9 in the search order: Python site-packages /);
    expect(dn!.root).toBe(site);
    expect(bl!.root).toBe(site);

    // without a cuDNN to match, the usual order wins: the toolkit's cuBLAS
    const alone = loadInChild({ ALEXNET_PYTHON_SITE: site, CUDA_HOME: cudaHome, ALEXNET_CUDNN_PATH: join(dir, 'nowhere') });
    expect(alone.libs.cublas.path).toBe(join(toolkitDir, 'libcublas.so.13'));
    expect(alone.info![1]!.why).toMatch(/^the first usable cuBLAS in the search order: \$CUDA_HOME = .*no cuDNN file was found to match it to/);
    expect(alone.info![1]!.root).toBe(cudaHome);
  });
});
