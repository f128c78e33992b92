#!/usr/bin/env node
// GPU benchmark: the seed AlexNet on CUDA at batch 128 (default): training step and inference
// images/s, and PyTorch eager (cudnn.benchmark) on the same network and batch in the same command
// (bench/torch_alexnet.py, a child process under a time limit), printing our/peer ratios. Writes
// bench/results/gpu-<date>[-fp32][-compile].{json,md} (copies them to $OUT/bench when $OUT is
// set, and the JSON to --json FILE when given).
//
// Timing: 3 warm-up iterations before each timed loop (cuDNN's algorithm search, the memory
// pool's growth and the first launch of every kernel happen there), and the CUDA modules load
// eagerly (CUDA_MODULE_LOADING=EAGER, here and in the PyTorch child, unless set otherwise), so
// that no lazy kernel loading lands inside a timed loop.
//
// PyTorch also runs its bf16 recipe (autocast to bfloat16 with channels-last model and input) and,
// with --compile, torch.compile of both; each with ms per step and its peak GPU memory
// (--no-bf16 leaves the bf16 rows out).
//
// --channels-last (opt-in, issue 14): two more rows of ours, measured after the others in the
// same process: precision 'bf16' in NCHW, and 'bf16' with memoryFormat 'channels_last' (cuDNN's
// NHWC tensor-core layout), with their ratio; the peer is PyTorch's bf16 channels-last recipe.
//
//   node bench/gpu.mjs [--batch 128] [--iters 20] [--strict-fp32] [--compile] [--no-bf16] [--no-torch] [--channels-last]
//                      [--torch-timeout 240] [--json FILE]
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// before the addon (and with it the CUDA runtime) loads: the driver reads it at initialisation
process.env.CUDA_MODULE_LOADING ??= 'EAGER';
const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '..', 'dist', 'index.js'));
const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '128' },
    iters: { type: 'string', default: '20' },
    'strict-fp32': { type: 'boolean', default: false },
    'no-torch': { type: 'boolean', default: false },
    compile: { type: 'boolean', default: false },
    'no-bf16': { type: 'boolean', default: false },
    'channels-last': { type: 'boolean', default: false },
    'torch-timeout': { type: 'string', default: '240' },
    json: { type: 'string' },
  },
});
const B = Number(values.batch);
const iters = Number(values.iters);
const info = lib.backendInfo();
if (!info.backends.cuda.available) {
  console.error(`bench/gpu.mjs: CUDA is not available: ${info.backends.cuda.reason}`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), error: `CUDA unavailable: ${info.backends.cuda.reason}`, cuda: info.backends.cuda }, null, 2) + '\n');
  process.exit(2);
}
lib.setTf32(!values['strict-fp32']);
const device = 'cuda:0';
// The library's own seed AlexNet, its parameter store and SGD (momentum 0.9, weight decay 5e-4).
const model = lib.alexnet({ config: 'seed', init: 'kaiming', seed: 1, device });
const store = lib.ParameterStore.create(model, { device });
const sgd = new lib.SGD(store, { lr: 0.002 });
const xHost = new Float32Array(B * 3 * 227 * 227).map(() => Math.random() * 2 - 1);
const x = lib.Tensor.from(xHost, [B, 3, 227, 227], { device });
const labels = lib.Tensor.from(Int32Array.from({ length: B }, (_, i) => i % 2), [B], { device });

async function timed(fn) {
  for (let i = 0; i < 3; i++) await fn(i);
  await lib.synchronize(device);
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) await fn(i + 3, i === iters - 1);
  await lib.synchronize(device);
  return (performance.now() - t0) / iters;
}

// Training: the loss is read back only on the last step (no host synchronisation per step).
let lastLoss = NaN;
await lib.synchronize(device);
lib.memoryStats(device, { resetPeak: true }); // the peak of the training loop alone (the weights are held already)
model.train();
const trainMs = await timed(async (step, last) => {
  store.zeroGrad();
  const logits = model.forward(x);
  const { loss, gradLogits } = lib.softmaxCrossEntropy(logits, labels);
  model.backward(gradLogits, false)?.dispose();
  sgd.step();
  if (last) lastLoss = (await loss.data())[0];
  for (const t of [logits, loss, gradLogits]) t.dispose();
});
const peakMemoryBytes = lib.memoryStats(device).peakUsedBytes;

// The same step captured once as a CUDA graph and replayed (issue 14; the Trainer's cudaGraph
// option). Timing only: the seed network's dropout masks are fixed at the capture here (the
// Trainer refuses to replay an active Dropout), the kernels are the same.
let graph;
{
  const native = lib.loadNative();
  void sgd.lrTensor; // written before the capture
  let outs = [];
  let id = 0;
  try {
    native.cudaGraphBegin(device);
    try {
      store.zeroGrad();
      const logits = model.forward(x);
      const { loss, gradLogits } = lib.softmaxCrossEntropy(logits, labels);
      outs = [logits, loss, gradLogits];
      model.backward(gradLogits, false)?.dispose();
      sgd.step();
    } finally {
      id = native.cudaGraphEnd(device); // throws (the capture over) when something in it failed
    }
    let graphLoss = NaN;
    const ms = await timed(async (step, last) => {
      native.cudaGraphLaunch(device, id);
      if (last) graphLoss = (await outs[1].data())[0];
    });
    graph = { trainImagesPerSecond: (B * 1000) / ms, trainStepMs: ms, loss: graphLoss };
  } catch (e) {
    graph = { error: String(e?.message ?? e).split('\n')[0] };
    console.error(`bench/gpu.mjs: CUDA graph: ${graph.error}`);
  } finally {
    if (id) native.cudaGraphDestroy(device, id);
    for (const t of outs) t.dispose();
  }
}
model.eval();
const inferMs = await timed(async () => {
  model.forward(x).dispose();
});

// --channels-last: the bf16 model in NCHW and channels-last, each its own model, store and SGD
// from the same seed, timed like the float32 one (no graph)
async function variant(memoryFormat) {
  const m = lib.alexnet({ config: 'seed', init: 'kaiming', seed: 1, device, precision: 'bf16', memoryFormat });
  const st = lib.ParameterStore.create(m, { device, bf16Copy: true });
  const opt = new lib.SGD(st, { lr: 0.002 });
  let loss = NaN;
  m.train();
  const tMs = await timed(async (step, last) => {
    st.zeroGrad();
    const logits = m.forward(x);
    const r = lib.softmaxCrossEntropy(logits, labels);
    m.backward(r.gradLogits, false)?.dispose();
    opt.step();
    if (last) loss = (await r.loss.data())[0];
    for (const t of [logits, r.loss, r.gradLogits]) t.dispose();
  });
  m.eval();
  const iMs = await timed(async () => m.forward(x).dispose());
  return { memoryFormat, trainImagesPerSecond: (B * 1000) / tMs, inferImagesPerSecond: (B * 1000) / iMs, trainStepMs: tMs, inferMs: iMs, loss };
}
let bf16Variants = null;
if (values['channels-last']) {
  try {
    const nchw = await variant('contiguous_format');
    const cl = await variant('channels_last');
    bf16Variants = { nchw, channelsLast: cl, ratio: { train: cl.trainImagesPerSecond / nchw.trainImagesPerSecond, infer: cl.inferImagesPerSecond / nchw.inferImagesPerSecond } };
  } catch (e) {
    bf16Variants = { error: String(e?.message ?? e).split('\n')[0] };
    console.error(`bench/gpu.mjs: bf16 variants: ${bf16Variants.error}`);
  }
}

const ours = { trainImagesPerSecond: (B * 1000) / trainMs, inferImagesPerSecond: (B * 1000) / inferMs, trainStepMs: trainMs, inferMs, loss: lastLoss, peakMemoryBytes, graph, ...(bf16Variants ? { bf16Variants } : {}) };
let torch = null;
if (!values['no-torch']) {
  const args = [join(here, 'torch_alexnet.py'), '--batch', String(B), '--iters', String(iters)];
  if (values['strict-fp32']) args.push('--strict-fp32');
  if (values.compile) args.push('--compile');
  if (!values['no-bf16']) args.push('--bf16'); // PyTorch's bf16 autocast + channels-last recipe beside it
  const limitS = Number(values['torch-timeout']);
  const t0 = performance.now();
  // SIGKILL: a child stuck in the driver may not act on SIGTERM, and spawnSync waits for it
  const r = spawnSync('python3', args, { encoding: 'utf8', timeout: limitS * 1000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: { ...process.env } });
  const seconds = (performance.now() - t0) / 1000;
  const tail = (r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ');
  if (r.error?.code === 'ETIMEDOUT' || (r.signal && seconds >= limitS - 1)) {
    torch = { error: `timed out after ${limitS} s (killed)${tail ? `: ${tail}` : ''}`, timedOut: true, seconds };
  } else if (r.error) {
    torch = { error: `python3 could not run: ${r.error.message}`, seconds };
  } else if (r.status === 0) {
    try {
      torch = { ...JSON.parse(r.stdout.trim().split('\n').at(-1)), seconds };
    } catch {
      torch = { error: `unreadable output from torch_alexnet.py: ${tail}`, seconds };
    }
  } else {
    let said = '';
    try {
      said = JSON.parse(r.stdout.trim().split('\n').at(-1)).error ?? '';
    } catch {
      // no JSON line: the tail of its output says what happened
    }
    torch = { error: `${r.signal ? `killed by ${r.signal}` : `exit ${r.status}`}: ${said || tail || 'no output'}`, seconds };
  }
  if (torch.error) console.error(`bench/gpu.mjs: PyTorch: ${torch.error}`);
}

const result = { date: new Date().toISOString(), device: info.backends.cuda.deviceName, batch: B, iters, tf32: !values['strict-fp32'], moduleLoading: process.env.CUDA_MODULE_LOADING, cuda: info.backends.cuda, ours, torch,
  ratios: torch && !torch.error ? { train: ours.trainImagesPerSecond / torch.trainImagesPerSecond, infer: ours.inferImagesPerSecond / torch.inferImagesPerSecond } : null };
const compiled = torch && !torch.error && torch.compiled && !torch.compiled.error ? torch.compiled : null;
for (const [key, v] of [['ratiosBf16', torch?.bf16], ['ratiosCompiledBf16', torch?.compiledBf16]]) {
  if (torch && !torch.error && v && !v.error) result[key] = { train: ours.trainImagesPerSecond / v.trainImagesPerSecond, infer: ours.inferImagesPerSecond / v.inferImagesPerSecond };
}
const mib = (b) => (typeof b === 'number' ? `${(b / 2 ** 20).toFixed(0)} MiB peak` : '');
/** A peer variant's row and our ratio to it (or the error it reported); none when it was not run. */
function peerRows(v, name) {
  if (!torch || torch.error || !v) return [];
  if (v.error) return [`| ${name} | ${v.error} | |`];
  return [
    `| ${name} (${v.trainStepMs.toFixed(1)} ms/step, ${mib(v.peakMemoryBytes)}) | ${v.trainImagesPerSecond.toFixed(0)} | ${v.inferImagesPerSecond.toFixed(0)} |`,
    `| ratio (ours / that) | ${(ours.trainImagesPerSecond / v.trainImagesPerSecond).toFixed(2)}x | ${(ours.inferImagesPerSecond / v.inferImagesPerSecond).toFixed(2)}x |`,
  ];
}
if (compiled) result.ratiosCompiled = { train: ours.trainImagesPerSecond / compiled.trainImagesPerSecond, infer: ours.inferImagesPerSecond / compiled.inferImagesPerSecond };
const md = [
  `# GPU benchmark: seed AlexNet, batch ${B}, ${result.tf32 ? 'FP32 with TF32' : 'strict FP32'}`,
  '',
  `${result.date} · ${result.device} · driver ${info.backends.cuda.driverVersion} · cuDNN ${info.backends.cuda.libraries?.cudnn?.version} · cuBLAS ${info.backends.cuda.libraries?.cublas?.version}`,
  '',
  '| | train images/s | inference images/s |',
  '|---|---:|---:|',
  `| alexnet-node (${ours.trainStepMs.toFixed(1)} ms/step, ${mib(ours.peakMemoryBytes)}) | ${ours.trainImagesPerSecond.toFixed(0)} | ${ours.inferImagesPerSecond.toFixed(0)} |`,
  graph.error ? `| ours ${result.tf32 ? 'tf32' : 'fp32'} + graph | ${graph.error} | |` : `| ours ${result.tf32 ? 'tf32' : 'fp32'} + graph (${graph.trainStepMs.toFixed(1)} ms/step; ${(graph.trainImagesPerSecond / ours.trainImagesPerSecond).toFixed(2)}x eager) | ${graph.trainImagesPerSecond.toFixed(0)} | |`,
  ...(!bf16Variants ? [] : bf16Variants.error ? [`| ours bf16 + channels-last | ${bf16Variants.error} | |`] : [
    `| ours bf16 (${bf16Variants.nchw.trainStepMs.toFixed(1)} ms/step) | ${bf16Variants.nchw.trainImagesPerSecond.toFixed(0)} | ${bf16Variants.nchw.inferImagesPerSecond.toFixed(0)} |`,
    `| ours bf16 + channels-last (${bf16Variants.channelsLast.trainStepMs.toFixed(1)} ms/step; ${bf16Variants.ratio.train.toFixed(2)}x / ${bf16Variants.ratio.infer.toFixed(2)}x bf16 NCHW) | ${bf16Variants.channelsLast.trainImagesPerSecond.toFixed(0)} | ${bf16Variants.channelsLast.inferImagesPerSecond.toFixed(0)} |`,
  ]),
  torch && !torch.error ? `| PyTorch ${torch.torch} eager (cudnn.benchmark; ${torch.trainStepMs.toFixed(1)} ms/step, ${mib(torch.peakMemoryBytes)}) | ${torch.trainImagesPerSecond.toFixed(0)} | ${torch.inferImagesPerSecond.toFixed(0)} |` : `| PyTorch | ${torch ? torch.error : 'not run'} | |`,
  result.ratios ? `| ratio (ours / PyTorch) | ${result.ratios.train.toFixed(2)}x | ${result.ratios.infer.toFixed(2)}x |` : '',
  compiled ? `| PyTorch torch.compile | ${compiled.trainImagesPerSecond.toFixed(0)} | ${compiled.inferImagesPerSecond.toFixed(0)} |` : '',
  result.ratiosCompiled ? `| ratio (ours / torch.compile) | ${result.ratiosCompiled.train.toFixed(2)}x | ${result.ratiosCompiled.infer.toFixed(2)}x |` : '',
  torch?.compiled?.error ? `| torch.compile | ${torch.compiled.error} | |` : '',
  ...peerRows(torch?.bf16, 'PyTorch eager bf16 autocast, channels-last'),
  ...peerRows(torch?.compiledBf16, 'PyTorch torch.compile, bf16 autocast, channels-last'),
].filter((l, i) => i < 7 || l !== '').join('\n');
console.log(md);
const dir = join(here, 'results');
mkdirSync(dir, { recursive: true });
const stamp = `gpu-${new Date().toISOString().slice(0, 10)}${values['strict-fp32'] ? '-fp32' : ''}${values.compile ? '-compile' : ''}`;
writeFileSync(join(dir, `${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(dir, `${stamp}.md`), md + '\n');
if (process.env.OUT) {
  mkdirSync(join(process.env.OUT, 'bench'), { recursive: true });
  copyFileSync(join(dir, `${stamp}.json`), join(process.env.OUT, 'bench', `${stamp}.json`));
  copyFileSync(join(dir, `${stamp}.md`), join(process.env.OUT, 'bench', `${stamp}.md`));
}
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
