#!/usr/bin/env node
// Every operator once, on small shapes, for compute-sanitizer (scripts/gpu-check.sh stage 2):
// forward and backward of conv2d (with bias, fused ReLU, groups, stride), maxPool2d,
// localResponseNorm, relu, linear, matmul (all transposes), dropout, softmax, softmax
// cross-entropy, sgdStep (both conventions, first and later steps), topkCorrect, and fill /
// copy / scale / axpy, each result read back; and the channels-last forms (memoryFormat
// 'channels_last': conv2d float32 and bfloat16, its backward accumulating into given gradients,
// maxPool2d, toMemoryFormat both ways); and linear forward and backward through cuBLASLt's fused
// epilogues (setCublasLtEpilogues). vitest's harness and long timeouts stay outside
// the sanitizer; this takes seconds without it.
//
// Each output is also compared with the same call on the CPU, loosely (TF32 is on): this is a
// smoke test, the tolerances that matter are in test/cuda-ops.test.ts. Prints one line per
// operator and exits 1 when any failed (2 when the device is unavailable).
//
//   node scripts/gpu-ops-smoke.mjs [--device cuda:0 | cpu]
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const A = await import(join(here, '..', 'dist', 'index.js'));
const { values } = parseArgs({ options: { device: { type: 'string', default: 'cuda:0' } } });
const DEV = values.device;
const { Tensor } = A;

const cuda = A.backendInfo().backends.cuda;
if (DEV.startsWith('cuda') && !cuda.available) {
  console.error(`gpu-ops-smoke: CUDA unavailable: ${cuda.reason}`);
  process.exit(2);
}

let seed = 12345;
/** mulberry32, so that every run draws the same inputs */
function rnd() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randn = (shape, s = 1) => ({ data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rnd() * 2 - 1) * s), shape });
const labels = (n, classes) => ({ data: Int32Array.from({ length: n }, () => Math.floor(rnd() * classes)), shape: [n], dtype: 'int32' });

let failed = 0;
/**
 * Builds the inputs on the device and on the CPU, runs `op` on both, reads back every tensor it
 * returns (and every input, for the in-place operators) and compares.
 */
async function run(name, inputs, op) {
  const t0 = performance.now();
  const on = (device) => Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, Tensor.from(v.data, v.shape, { device, dtype: v.dtype })]));
  const collect = (out) => {
    if (out instanceof Tensor) return [['out', out]];
    if (Array.isArray(out)) return out.map((t, i) => [`out${i}`, t]);
    return Object.entries(out ?? {}).filter(([, v]) => v instanceof Tensor);
  };
  try {
    const gpuIn = on(DEV);
    const got = collect(op(gpuIn)).concat(Object.entries(gpuIn).map(([k, t]) => [`in.${k}`, t]));
    const gotData = [];
    for (const [k, t] of got) gotData.push([k, await t.data()]);
    const cpuIn = on('cpu');
    const ref = collect(op(cpuIn)).concat(Object.entries(cpuIn).map(([k, t]) => [`in.${k}`, t]));
    let worst = 0;
    for (let j = 0; j < ref.length; j++) {
      const [k, t] = ref[j];
      const want = await t.data();
      const [, have] = gotData[j];
      let scale = 0;
      let err = 0;
      for (let i = 0; i < want.length; i++) {
        if (!Number.isFinite(have[i])) throw new Error(`${k}[${i}] is ${have[i]}`);
        scale = Math.max(scale, Math.abs(want[i]));
        err = Math.max(err, Math.abs(have[i] - want[i]));
      }
      const rel = err / Math.max(scale, 1e-30);
      worst = Math.max(worst, rel);
      if (rel > 5e-2) throw new Error(`${k}: max |diff| / max |cpu| = ${rel.toExponential(2)}`);
    }
    for (const [, t] of [...got, ...ref]) t.dispose();
    console.log(`ok   ${name} (${(performance.now() - t0).toFixed(0)} ms, worst relative difference from the CPU ${worst.toExponential(1)})`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e?.code ? `${e.code} ` : ''}${String(e?.message ?? e).split('\n')[0]}`);
  }
}

const conv = [
  { n: 2, c: 3, h: 19, w: 19, o: 8, k: 11, stride: 4, padding: 0, groups: 1 },
  { n: 2, c: 6, h: 9, w: 9, o: 4, k: 5, stride: 1, padding: 2, groups: 2 },
  { n: 1, c: 5, h: 7, w: 6, o: 7, k: 3, stride: 1, padding: 1, groups: 1 },
];
for (const c of conv) {
  const opts = { stride: c.stride, padding: c.padding, groups: c.groups };
  const ho = Math.floor((c.h + 2 * c.padding - c.k) / c.stride) + 1;
  const wo = Math.floor((c.w + 2 * c.padding - c.k) / c.stride) + 1;
  const x = randn([c.n, c.c, c.h, c.w]);
  const w = randn([c.o, c.c / c.groups, c.k, c.k], 0.3);
  const b = randn([c.o]);
  const tag = `k${c.k} s${c.stride} p${c.padding} g${c.groups}`;
  await run(`conv2d ${tag}`, { x, w, b }, (t) => A.conv2d(t.x, t.w, t.b, opts));
  await run(`conv2d+relu ${tag}`, { x, w, b }, (t) => A.conv2d(t.x, t.w, t.b, { ...opts, relu: true }));
  await run(`conv2dBackward ${tag}`, { dy: randn([c.n, c.o, ho, wo]), x, w }, (t) => A.conv2dBackward(t.dy, t.x, t.w, opts));
  await run(`conv2dBackward (no input grad, no bias) ${tag}`, { dy: randn([c.n, c.o, ho, wo]), x, w }, (t) =>
    A.conv2dBackward(t.dy, t.x, t.w, { ...opts, computeGradInput: false, computeGradBias: false }));
}
// channels last on one shape (groups 2: the KRSC filter's C/g): our transposes, epilogues and
// pooling are what memcheck is for; every cuDNN plan more costs seconds under the sanitizer
for (const c of conv.slice(1, 2)) {
  // channels last: x [n, h, w, c], y [n, ho, wo, o]; the weight keeps [o, c/g, k, k]
  const opts = { stride: c.stride, padding: c.padding, groups: c.groups, memoryFormat: 'channels_last' };
  const ho = Math.floor((c.h + 2 * c.padding - c.k) / c.stride) + 1;
  const wo = Math.floor((c.w + 2 * c.padding - c.k) / c.stride) + 1;
  const x = randn([c.n, c.h, c.w, c.c]);
  const w = randn([c.o, c.c / c.groups, c.k, c.k], 0.3);
  const b = randn([c.o]);
  const tag = `channels-last k${c.k} s${c.stride} p${c.padding} g${c.groups}`;
  await run(`conv2d+relu ${tag}`, { x, w, b }, (t) => A.conv2d(t.x, t.w, t.b, { ...opts, relu: true }));
  await run(`conv2d bfloat16 (bfloat16 and float32 out) ${tag}`, { x, w, b }, (t) => [
    A.conv2d(t.x.bfloat16(), t.w.bfloat16(), t.b, { ...opts, outDtype: 'bfloat16' }).float(),
    A.conv2d(t.x.bfloat16(), t.w.bfloat16(), t.b, { ...opts, relu: true }),
  ]);
  await run(`conv2dBackward (accumulate) ${tag}`, { dy: randn([c.n, ho, wo, c.o]), x, w, gw: randn([c.o, c.c / c.groups, c.k, c.k]), gb: randn([c.o]) }, (t) =>
    A.conv2dBackward(t.dy, t.x, t.w, { ...opts, gradWeight: t.gw, gradBias: t.gb, accumulate: true }));
  await run(`conv2dBackward bfloat16 ${tag}`, { dy: randn([c.n, ho, wo, c.o]), x, w }, (t) => {
    const g = A.conv2dBackward(t.dy.bfloat16(), t.x.bfloat16(), t.w.bfloat16(), opts);
    return [g.gradInput.float(), g.gradWeight, g.gradBias];
  });
}
await run('toMemoryFormat both ways', { x: randn([2, 35, 3, 34]) }, (t) => {
  const cl = A.toMemoryFormat(t.x, 'channels_last');
  return [cl, A.toMemoryFormat(cl, 'contiguous_format'), A.toMemoryFormat(t.x.bfloat16(), 'channels_last').float()];
});
for (const opts of [{ kernelSize: 3, stride: 2, memoryFormat: 'channels_last' }, { kernelSize: 3, stride: 2, padding: 1, memoryFormat: 'channels_last' }]) {
  const x = randn([2, 13, 11, 3]);
  const dy = randn([2, 6 + (opts.padding ?? 0), 5 + (opts.padding ?? 0), 3]);
  await run(`maxPool2d + backward channels-last p${opts.padding ?? 0}`, { x, dy }, (t) => [A.maxPool2d(t.x, opts), A.maxPool2dBackward(t.dy, t.x, A.maxPool2d(t.x, opts), opts)]);
  await run(`maxPool2d + backward channels-last bfloat16 p${opts.padding ?? 0}`, { x, dy }, (t) => {
    const x16 = t.x.bfloat16();
    const y16 = A.maxPool2d(x16, opts);
    return [y16.float(), A.maxPool2dBackward(t.dy.bfloat16(), x16, y16, opts).float()];
  });
}
for (const opts of [{ kernelSize: 3, stride: 2 }, { kernelSize: 3, stride: 2, padding: 1 }]) {
  const x = randn([2, 3, 13, 11]);
  await run(`maxPool2d p${opts.padding ?? 0}`, { x }, (t) => A.maxPool2d(t.x, opts));
  await run(`maxPool2dBackward p${opts.padding ?? 0}`, { x, dy: randn([2, 3, 6 + (opts.padding ?? 0), 5 + (opts.padding ?? 0)]) }, (t) =>
    A.maxPool2dBackward(t.dy, t.x, A.maxPool2d(t.x, opts), opts));
}
const lrn = { size: 5, alpha: 5e-4, beta: 0.75, k: 2 };
await run('localResponseNorm', { x: randn([2, 7, 5, 6], 3) }, (t) => A.localResponseNorm(t.x, lrn));
await run('localResponseNormBackward', { x: randn([2, 7, 5, 6], 3), dy: randn([2, 7, 5, 6]) }, (t) =>
  A.localResponseNormBackward(t.dy, t.x, A.localResponseNorm(t.x, lrn), lrn));
await run('relu', { x: randn([3, 7, 5]) }, (t) => A.relu(t.x));
await run('reluBackward', { x: randn([3, 7]), dy: randn([3, 7]) }, (t) => A.reluBackward(t.dy, A.relu(t.x)));
await run('linear', { x: randn([3, 37]), w: randn([13, 37]), b: randn([13]) }, (t) => A.linear(t.x, t.w, t.b));
await run('linear (no bias)', { x: randn([3, 37]), w: randn([13, 37]) }, (t) => A.linear(t.x, t.w, null));
await run('linearBackward', { dy: randn([3, 13]), x: randn([3, 37]), w: randn([13, 37]) }, (t) => A.linearBackward(t.dy, t.x, t.w));
await run('linearBackward (accumulate into given gradients)', { dy: randn([3, 13]), x: randn([3, 37]), w: randn([13, 37]), gw: randn([13, 37]), gb: randn([13]) }, (t) =>
  A.linearBackward(t.dy, t.x, t.w, { gradWeight: t.gw, gradBias: t.gb, accumulate: true }));
// The same through cuBLASLt (setCublasLtEpilogues): the forward's bias / ReLU epilogue and the
// backward's weight gradient with the bias gradient in its epilogue (BGRADB), written and
// accumulated (the kept scratch + axpy), float32 and bfloat16, on an odd shape and an aligned one.
// On CUDA the weight-gradient product must have run through cuBLASLt at least once, so that the
// sanitizer has seen it.
A.setCublasLtEpilogues(true);
const ltCalls = () => A.backendInfo().backends.cuda.cublasLtCalls ?? { forward: 0, weightGrad: 0, fallbacks: 0 };
const lt0 = ltCalls();
for (const [B, inF, outF] of [[3, 37, 13], [64, 256, 128]]) {
  const tag = `${B}x${inF}->${outF}`;
  const io = () => ({ dy: randn([B, outF]), x: randn([B, inF]), w: randn([outF, inF], 0.2), b: randn([outF]) });
  await run(`cuBLASLt linear+relu ${tag}`, io(), (t) => A.linear(t.x, t.w, t.b, { relu: true }));
  await run(`cuBLASLt linear bf16 ${tag}`, io(), (t) => A.linear(t.x.bfloat16(), t.w.bfloat16(), t.b, { relu: true }));
  await run(`cuBLASLt linearBackward ${tag}`, io(), (t) => A.linearBackward(t.dy, t.x, t.w));
  await run(`cuBLASLt linearBackward (accumulate) ${tag}`, { ...io(), gw: randn([outF, inF]), gb: randn([outF]) }, (t) =>
    A.linearBackward(t.dy, t.x, t.w, { gradWeight: t.gw, gradBias: t.gb, accumulate: true }));
  await run(`cuBLASLt linearBackward bf16 (accumulate) ${tag}`, { ...io(), gw: randn([outF, inF]), gb: randn([outF]) }, (t) => {
    const g = A.linearBackward(t.dy.bfloat16(), t.x.bfloat16(), t.w.bfloat16(), { gradWeight: t.gw, gradBias: t.gb, accumulate: true });
    return { dx: g.gradInput.float(), dw: g.gradWeight, db: g.gradBias };
  });
}
A.setCublasLtEpilogues(false);
if (DEV.startsWith('cuda')) {
  const lt1 = ltCalls();
  const [fwd, wgrad, fb] = [lt1.forward - lt0.forward, lt1.weightGrad - lt0.weightGrad, lt1.fallbacks - lt0.fallbacks];
  if (wgrad > 0 && fwd > 0) {
    console.log(`ok   cuBLASLt path taken: ${fwd} forward, ${wgrad} weight-gradient products, ${fb} fallbacks`);
  } else {
    failed++;
    console.log(`FAIL cuBLASLt path not taken: ${fwd} forward, ${wgrad} weight-gradient products, ${fb} fallbacks (cuBLASLt: ${cuda.libraries?.cublasLt?.note || 'found'})`);
  }
}
for (const transA of [false, true])
  for (const transB of [false, true])
    await run(`matmul transA=${transA} transB=${transB}`, { a: randn(transA ? [19, 7] : [7, 19]), b: randn(transB ? [11, 19] : [19, 11]) }, (t) =>
      A.matmul(t.a, t.b, { transA, transB }));
await run('dropout', { x: randn([5, 1001]) }, (t) => A.dropout(t.x, { p: 0.4, seed: 12345, offset: 777 }));
await run('dropoutBackward', { x: randn([5, 1001]), dy: randn([5, 1001]) }, (t) => A.dropoutBackward(t.dy, A.dropout(t.x, { p: 0.3, seed: 9, offset: 0 }).mask));
await run('softmax', { z: randn([4, 1000], 20) }, (t) => A.softmax(t.z));
await run('softmaxCrossEntropy', { z: randn([6, 3], 5), y: labels(6, 3) }, (t) => A.softmaxCrossEntropy(t.z, t.y));
for (const convention of ['pytorch', 'krizhevsky'])
  for (const firstStep of [true, false])
    await run(`sgdStep ${convention}${firstStep ? ' first step' : ''}`, { w: randn([1000]), g: randn([1000]), b: randn([1000]) }, (t) => {
      A.sgdStep(t.w, t.g, t.b, { lr: 0.01, momentum: 0.9, weightDecay: 5e-4, dampening: 0, convention, firstStep });
      return [];
    });
await run('sgdStep (no momentum)', { w: randn([1000]), g: randn([1000]) }, (t) => {
  A.sgdStep(t.w, t.g, null, { lr: 0.01, momentum: 0, weightDecay: 0 });
  return [];
});
await run('topkCorrect k=1, k=5', { z: randn([17, 10]), y: labels(17, 10) }, (t) => [A.topkCorrect(t.z, t.y, 1), A.topkCorrect(t.z, t.y, 5)]);
await run('fill, copy, scale, axpy', { a: randn([333]), b: randn([333]), c: randn([333]) }, (t) => {
  A.scale(t.a, 0.5);
  A.axpy(t.a, -2, t.b);
  A.copy(t.c, t.a);
  A.fill(t.b, 3);
  return [];
});
await A.synchronize(DEV);
console.log(failed === 0 ? `gpu-ops-smoke: every operator ran on ${DEV}` : `gpu-ops-smoke: ${failed} operator(s) failed on ${DEV}`);
process.exit(failed === 0 ? 0 : 1);
