#!/usr/bin/env node
// GPU benchmark: the seed AlexNet on CUDA at batch 128 (default), measured the ways issue 14
// names, beside PyTorch on the same network and batch in the same command
// (bench/torch_alexnet.py, a child process under a time limit). Writes
// bench/results/gpu-<date>[-fp32][-compile].{json,md} (copies them to $OUT/bench when $OUT is
// set, and the JSON to --json FILE when given).
//
// Ours, each variant its own model, parameter store and SGD from the same seed, one after the
// other in this process:
//   tf32 (or fp32 with --strict-fp32)  float32 weights and activations, NCHW
//   bf16                               precision 'bf16': bfloat16 activations and weight copies,
//                                      float32 master weights (--no-bf16 leaves it out)
//   bf16-cl                            'bf16' with memoryFormat 'channels_last' (--channels-last;
//                                      with --no-bf16 it is tf32-cl)
// and for each: the training step eager (ms/step, images/s, peak GPU memory), the same step
// captured once as a CUDA graph and replayed (the Trainer's cudaGraph option; its dropout draws
// from the device-side stream position, so every replay draws a fresh mask as in training), and
// inference (eval mode).
//
// PyTorch: eager fp32/TF32 (cudnn.benchmark), its bf16 recipe (autocast to bfloat16 with
// channels-last model and input; not with --no-bf16) and, with --compile, torch.compile of both
// (--compile-bf16: of the bf16 recipe only, the one issue 14's goal names; one compilation).
//
// The goals (issue 14, TF32 runs only): bf16 at least 2x our TF32; our best bf16 training at
// least 1.3x PyTorch eager bf16 channels-last and 1.0x its torch.compile; 25,000 training
// images/s. "Best" is the fastest of our bf16 variants, eager or graph, and says which.
//
// Timing: 3 warm-up iterations before each timed loop (cuDNN's algorithm search, the memory
// pool's growth and the first launch of every kernel happen there), and the CUDA modules load
// eagerly (CUDA_MODULE_LOADING=EAGER, here and in the PyTorch child, unless set otherwise), so
// that no lazy kernel loading lands inside a timed loop. The loss is read back only after the
// last timed step (no host synchronisation per step).
//
//   node bench/gpu.mjs [--batch 128] [--iters 20] [--strict-fp32] [--compile | --compile-bf16] [--no-bf16] [--no-torch] [--channels-last]
//                      [--torch-timeout 240] [--json FILE] [--device cuda:0]
// (--device cpu runs this script's logic without a GPU, as scripts/gpu-rehearse.sh does: the
// graph rows then report that CUDA graphs need a CUDA device)
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
    'compile-bf16': { type: 'boolean', default: false }, // torch.compile of PyTorch's bf16 recipe only (one compilation)
    'no-bf16': { type: 'boolean', default: false },
    'channels-last': { type: 'boolean', default: false },
    'torch-timeout': { type: 'string', default: '240' },
    json: { type: 'string' },
    device: { type: 'string', default: 'cuda:0' }, // 'cpu': the script's own logic, rehearsed without a GPU
  },
});
const B = Number(values.batch);
const iters = Number(values.iters);
if (!Number.isInteger(B) || B < 1 || !Number.isInteger(iters) || iters < 1) {
  console.error(`bench/gpu.mjs: --batch and --iters take positive integers (got ${values.batch}, ${values.iters})`);
  process.exit(2);
}
const info = lib.backendInfo();
const device = values.device;
if (device.startsWith('cuda') && !info.backends.cuda.available) {
  console.error(`bench/gpu.mjs: CUDA is not available: ${info.backends.cuda.reason}`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), error: `CUDA unavailable: ${info.backends.cuda.reason}`, cuda: info.backends.cuda }, null, 2) + '\n');
  process.exit(2);
}
const tf32 = !values['strict-fp32'];
lib.setTf32(tf32);
const fp = tf32 ? 'tf32' : 'fp32';
const variants = [{ key: fp, precision: 'fp32', memoryFormat: 'contiguous_format' }];
if (!values['no-bf16']) variants.push({ key: 'bf16', precision: 'bf16', memoryFormat: 'contiguous_format' });
if (values['channels-last']) variants.push({ key: values['no-bf16'] ? `${fp}-cl` : 'bf16-cl', precision: values['no-bf16'] ? 'fp32' : 'bf16', memoryFormat: 'channels_last' });

const xHost = new Float32Array(B * 3 * 227 * 227).map(() => Math.random() * 2 - 1);
const x = lib.Tensor.from(xHost, [B, 3, 227, 227], { device });
const labels = lib.Tensor.from(Int32Array.from({ length: B }, (_, i) => i % 2), [B], { device });

async function timed(fn) {
  for (let i = 0; i < 3; i++) await fn(false);
  await lib.synchronize(device);
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) await fn(i === iters - 1);
  await lib.synchronize(device);
  return (performance.now() - t0) / iters;
}
const firstLine = (e) => String(e?.message ?? e).split('\n')[0];

/** One variant of ours: eager training, the same step as a CUDA graph, inference. */
async function measure({ key, precision, memoryFormat }) {
  const model = lib.alexnet({ config: 'seed', init: 'kaiming', seed: 1, device, precision, memoryFormat });
  const store = lib.ParameterStore.create(model, { device, bf16Copy: precision === 'bf16' });
  const sgd = new lib.SGD(store, { lr: 0.002 });
  const r = { key, precision, memoryFormat };
  try {
    // eager: the peak of the training loop alone (the weights are held already)
    let loss = NaN;
    await lib.synchronize(device);
    lib.memoryStats(device, { resetPeak: true });
    model.train();
    const trainMs = await timed(async (last) => {
      store.zeroGrad();
      const logits = model.forward(x);
      const l = lib.softmaxCrossEntropy(logits, labels);
      model.backward(l.gradLogits, false)?.dispose();
      sgd.step();
      if (last) loss = (await l.loss.data())[0];
      for (const t of [logits, l.loss, l.gradLogits]) t.dispose();
    });
    Object.assign(r, { trainStepMs: trainMs, trainImagesPerSecond: (B * 1000) / trainMs, loss, peakMemoryBytes: lib.memoryStats(device).peakUsedBytes });
    if (!Number.isFinite(loss)) r.error = `the eager loss is ${loss}`;

    // the same step as one CUDA graph: each Dropout draws from its stream position in device
    // memory, advanced by the captured step (as the Trainer's cudaGraph option sets it up)
    const native = lib.loadNative();
    const drops = lib.namedDropouts(model).map(([, d]) => d);
    let outs = [];
    let id = 0;
    try {
      for (const d of drops) {
        d.deviceStream = true;
        d.counterTensor(device);
      }
      void sgd.lrTensor; // written before the capture (an upload cannot be captured)
      native.cudaGraphBegin(device);
      try {
        store.zeroGrad();
        const logits = model.forward(x);
        const l = lib.softmaxCrossEntropy(logits, labels);
        outs = [logits, l.loss, l.gradLogits];
        model.backward(l.gradLogits, false)?.dispose();
        sgd.step();
      } finally {
        id = native.cudaGraphEnd(device); // throws (the capture over) when something in it failed
      }
      let graphLoss = NaN;
      const ms = await timed(async (last) => {
        native.cudaGraphLaunch(device, id);
        if (last) graphLoss = (await outs[1].data())[0];
      });
      r.graph = { trainStepMs: ms, trainImagesPerSecond: (B * 1000) / ms, loss: graphLoss, speedup: trainMs / ms };
      if (!Number.isFinite(graphLoss)) r.graph.error = `the replayed loss is ${graphLoss}`;
    } catch (e) {
      r.graph = { error: firstLine(e) };
      console.error(`bench/gpu.mjs: ${key} + CUDA graph: ${r.graph.error}`);
    } finally {
      if (id) native.cudaGraphDestroy(device, id);
      for (const t of outs) t.dispose();
      for (const d of drops) {
        d.releaseCounter();
        d.deviceStream = false;
      }
    }

    model.eval();
    const inferMs = await timed(async () => model.forward(x).dispose());
    Object.assign(r, { inferMs, inferImagesPerSecond: (B * 1000) / inferMs });
  } catch (e) {
    r.error = firstLine(e);
    console.error(`bench/gpu.mjs: ${key}: ${r.error}`);
  } finally {
    store.dispose();
    model.dispose();
    await lib.synchronize(device).catch(() => undefined);
  }
  return r;
}

const measured = [];
for (const v of variants) measured.push(await measure(v));
const ours = measured[0]; // tf32 (or fp32), NCHW: what `ratios` compares
let torch = null;
if (!values['no-torch']) {
  const args = [join(here, 'torch_alexnet.py'), '--batch', String(B), '--iters', String(iters)];
  if (values['strict-fp32']) args.push('--strict-fp32');
  if (values.compile || values['compile-bf16']) args.push('--compile');
  if (values['compile-bf16'] && !values.compile) args.push('--compile-only-bf16');
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


// ---- ratios and goals ------------------------------------------------------------------------
const ok = (v) => v && !v.error && Number.isFinite(v.trainImagesPerSecond);
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null);
const pair = (o, p) => (ok(o) && ok(p) ? { train: ratio(o.trainImagesPerSecond, p.trainImagesPerSecond), infer: ratio(o.inferImagesPerSecond, p.inferImagesPerSecond) } : null);
const peerOk = torch && !torch.error;
const result = {
  date: new Date().toISOString(), device: info.backends.cuda.deviceName, batch: B, iters, tf32, moduleLoading: process.env.CUDA_MODULE_LOADING, cuda: info.backends.cuda,
  ours, variants: measured, torch,
  ratios: peerOk ? pair(ours, torch) : null,
};
if (peerOk && ok(torch.compiled)) result.ratiosCompiled = pair(ours, torch.compiled);
// our bf16 variants against PyTorch's bf16 recipe (eager and compiled), each eager row to each
const bf16 = measured.filter((v) => v.precision === 'bf16' && ok(v));
if (peerOk && bf16.length) {
  for (const [key, peer] of [['ratiosBf16', torch.bf16], ['ratiosCompiledBf16', torch.compiledBf16]]) {
    if (ok(peer)) result[key] = Object.fromEntries(bf16.map((v) => [v.key, pair(v, peer)]));
  }
}
// the fastest of our bf16 training steps, eager or graph
const candidates = bf16.flatMap((v) => [
  { name: `${v.key} eager`, ips: v.trainImagesPerSecond },
  ...(ok(v.graph) ? [{ name: `${v.key} + graph`, ips: v.graph.trainImagesPerSecond }] : []),
]);
const best = candidates.sort((a, b) => b.ips - a.ips)[0] ?? null;
if (tf32) {
  const tfGraph = ok(ours.graph) ? ours.graph.trainImagesPerSecond : null;
  const bfRow = bf16.find((v) => v.memoryFormat === 'contiguous_format');
  const goal = (name, value, target, how) => ({ name, value, target, met: value === null ? null : value >= target, how });
  result.best = best;
  result.goals = [
    goal('bf16 / our TF32, training (eager)', ratio(bfRow?.trainImagesPerSecond, ok(ours) ? ours.trainImagesPerSecond : NaN), 2, 'bf16 NCHW eager over tf32 NCHW eager'),
    goal('bf16 / our TF32, training (graph)', ratio(ok(bfRow?.graph) ? bfRow.graph.trainImagesPerSecond : NaN, tfGraph ?? NaN), 2, 'bf16 NCHW + graph over tf32 NCHW + graph'),
    goal('best ours / PyTorch eager bf16 channels-last, training', peerOk && ok(torch.bf16) && best ? ratio(best.ips, torch.bf16.trainImagesPerSecond) : null, 1.3, best ? `ours ${best.name}` : 'no bf16 row of ours'),
    goal('best ours / torch.compile bf16 channels-last, training', peerOk && ok(torch.compiledBf16) && best ? ratio(best.ips, torch.compiledBf16.trainImagesPerSecond) : null, 1.0, best ? `ours ${best.name}${peerOk && ok(torch.compiledBf16) ? '' : ' (run with --compile)'}` : 'no bf16 row of ours'),
    goal('training images/s (seed AlexNet)', best ? best.ips : null, 25000, best ? `ours ${best.name}` : 'no bf16 row of ours'),
  ];
}

// ---- the table -------------------------------------------------------------------------------
const mib = (b) => (typeof b === 'number' ? `, ${(b / 2 ** 20).toFixed(0)} MiB peak` : '');
const x2 = (v) => (v === null || v === undefined ? 'n/a' : `${v.toFixed(2)}x`);
const rows = [];
for (const v of measured) {
  const name = `ours ${v.key}`;
  if (!ok(v)) {
    rows.push(`| ${name} | ${v.error ?? 'no result'} | |`);
    continue;
  }
  rows.push(`| ${name} eager (${v.trainStepMs.toFixed(1)} ms/step${mib(v.peakMemoryBytes)}) | ${v.trainImagesPerSecond.toFixed(0)} | ${Number.isFinite(v.inferImagesPerSecond) ? v.inferImagesPerSecond.toFixed(0) : ''} |`);
  rows.push(ok(v.graph)
    ? `| ${name} + graph (${v.graph.trainStepMs.toFixed(1)} ms/step; ${v.graph.speedup.toFixed(2)}x eager) | ${v.graph.trainImagesPerSecond.toFixed(0)} | |`
    : `| ${name} + graph | ${v.graph?.error ?? 'not run'} | |`);
}
/** A peer variant's row (or the error it reported); none when it was not run. */
function peerRow(v, name) {
  if (!peerOk || !v) return [];
  if (v.error) return [`| ${name} | ${v.error} | |`];
  return [`| ${name} (${v.trainStepMs.toFixed(1)} ms/step${mib(v.peakMemoryBytes)}) | ${v.trainImagesPerSecond.toFixed(0)} | ${v.inferImagesPerSecond.toFixed(0)} |`];
}
const md = [
  `# GPU benchmark: seed AlexNet, batch ${B}, ${tf32 ? 'FP32 with TF32' : 'strict FP32'}`,
  '',
  `${result.date} · ${result.device} · driver ${info.backends.cuda.driverVersion} · cuDNN ${info.backends.cuda.libraries?.cudnn?.version} · cuBLAS ${info.backends.cuda.libraries?.cublas?.version}`,
  '',
  '| | train images/s | inference images/s |',
  '|---|---:|---:|',
  ...rows,
  ...(peerOk ? [] : [`| PyTorch | ${torch ? torch.error : 'not run'} | |`]),
  ...(peerOk ? peerRow(torch, `PyTorch ${torch.torch} eager ${tf32 ? 'TF32' : 'FP32'} (cudnn.benchmark)`) : []),
  ...peerRow(torch?.compiled, `PyTorch torch.compile ${tf32 ? 'TF32' : 'FP32'}`),
  ...peerRow(torch?.bf16, 'PyTorch eager bf16 autocast, channels-last'),
  ...peerRow(torch?.compiledBf16, 'PyTorch torch.compile, bf16 autocast, channels-last'),
  '',
  `Ratios (train / inference): ours ${ours.key} eager / PyTorch eager ${x2(result.ratios?.train)} / ${x2(result.ratios?.infer)}` +
    (result.ratiosCompiled ? `; / torch.compile ${x2(result.ratiosCompiled.train)} / ${x2(result.ratiosCompiled.infer)}` : '') +
    Object.entries(result.ratiosBf16 ?? {}).map(([k, r]) => `; ours ${k} eager / PyTorch eager bf16 ${x2(r?.train)} / ${x2(r?.infer)}`).join('') +
    Object.entries(result.ratiosCompiledBf16 ?? {}).map(([k, r]) => `; ours ${k} eager / torch.compile bf16 ${x2(r?.train)} / ${x2(r?.infer)}`).join(''),
  ...(result.goals ? ['', '| goal (issue 14) | measured | target | met | how |', '|---|---:|---:|---|---|',
    ...result.goals.map((g) => `| ${g.name} | ${g.value === null ? 'n/a' : g.target > 100 ? g.value.toFixed(0) : `${g.value.toFixed(2)}x`} | ${g.target > 100 ? g.target : `${g.target}x`} | ${g.met === null ? 'not measured' : g.met ? 'yes' : 'no'} | ${g.how} |`)] : []),
].join('\n');
console.log(md);
const dir = join(here, 'results');
// a CPU rehearsal (--device cpu) writes no result file but its --json
if (device.startsWith('cuda')) {
  mkdirSync(dir, { recursive: true });
  const stamp = `gpu-${new Date().toISOString().slice(0, 10)}${values['strict-fp32'] ? '-fp32' : ''}${values.compile || values['compile-bf16'] ? '-compile' : ''}`;
  writeFileSync(join(dir, `${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(dir, `${stamp}.md`), md + '\n');
  if (process.env.OUT) {
    mkdirSync(join(process.env.OUT, 'bench'), { recursive: true });
    copyFileSync(join(dir, `${stamp}.json`), join(process.env.OUT, 'bench', `${stamp}.json`));
    copyFileSync(join(dir, `${stamp}.md`), join(process.env.OUT, 'bench', `${stamp}.md`));
  }
}
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
// a variant of ours that failed outright makes the run fail (the check shows it red)
if (measured.some((v) => !ok(v))) process.exitCode = 1;
