// `alexnet train | eval | predict | export | plot | filters`: the command-line front of src/train,
// src/io and src/viz.
import { isAbsolute, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import type { Dataset } from '../data/common.js';
import { toRgb8 } from '../data/common.js';
import { ImageFolder, resolveTransform } from '../data/folder.js';
import { SyntheticDataset, SYNTHETIC_CLASSES } from '../data/synthetic.js';
import { alexnetError, printable } from '../errors.js';
import { initDistributed } from '../dist/communicator.js';
import { loadCheckpoint } from '../io/checkpoint.js';
import { checkpointError } from '../io/errors.js';
import { ensureDir } from '../io/atomic.js';
import { exportOnnx } from '../io/onnx.js';
import { alexnet, ALEXNET_INPUT_SIZE, type AlexNetConfig, type AlexNetInit } from '../models/alexnet.js';
import { softmax } from '../ops/loss.js';
import { Tensor } from '../tensor.js';
import { MAX_CLASSES, MAX_SYNTHETIC_SAMPLES, modelFromCheckpoint, parseSchedule, readRunConfig, validateRunConfig, type RunConfig, type RunTrainOptions } from '../train/run-config.js';
import { evaluate, Trainer, type TrainProgress, type TrainSummary } from '../train/trainer.js';
import { plotMetricsFile } from '../viz/plot.js';
import { renderFilters } from '../viz/filters.js';

/** `alexnet train`'s options: the run's recorded training options (RunTrainOptions) and the rest. */
export interface TrainCliOptions extends RunTrainOptions {
  data?: string;
  valData?: string;
  config: AlexNetConfig;
  classes?: number;
  init: AlexNetInit;
  device: string;
  checkpoint: string;
  resume?: string;
  metrics: string;
  trainSize: number;
  valSize: number;
  workers?: number;
  maxSteps?: number;
  /** --cuda-graph: capture the step as a CUDA graph and replay it (TrainerOptions.cudaGraph) */
  cudaGraph?: boolean;
  /** --channels-last: [N, H, W, C] activations in the convolution stack (TrainerOptions.memoryFormat); not recorded in checkpoints */
  channelsLast?: boolean;
  json: boolean;
  /** Verify the checksums of the --resume checkpoint (default true; --no-verify). */
  verify?: boolean;
  /** The options given on the command line (the others hold defaults): with --resume, what may differ from the recorded run. */
  explicit?: ReadonlySet<string>;
}

// The checkpoint configuration lives in the library (src/train/run-config.ts); re-exported here,
// where it was first defined.
export { MAX_CLASSES, MAX_SYNTHETIC_SAMPLES, parseSchedule, validateRunConfig, type RunConfig };

/** The options a run records in its configuration (RunConfig.train). */
function trainOptions(o: TrainCliOptions): RunTrainOptions {
  const { batchSize, epochs, lr, momentum, weightDecay, convention, schedule, warmup, seed, checkpointEvery } = o;
  return { batchSize, epochs, lr, momentum, weightDecay, convention, schedule, warmup, seed, checkpointEvery, precision: o.precision ?? 'fp32' };
}

/** Options a resume may change: how long the run goes on and how often it is saved. */
const RESUME_MAY_CHANGE = new Set(['epochs', 'checkpointEvery']);

const flag = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * `train --resume`: the recorded run's options (its model, data and, when the checkpoint records
 * them, its training options) replace the defaults. An option given on the command line that
 * defines the run and differs from the recorded value is an error (a resume continues the run it
 * names; a run with other options starts anew from the weights); --epochs and
 * --checkpoint-every may change. Checkpoints without a `train` section (older ones) resume with
 * the command line's training options, as before.
 */
function resumeOptions(o: TrainCliOptions, cfg: RunConfig): TrainCliOptions {
  const recorded: Partial<Record<keyof TrainCliOptions, unknown>> = {
    config: cfg.model.config,
    classes: cfg.model.numClasses,
    init: cfg.model.init,
    seed: cfg.model.seed,
    ...(cfg.data.kind === 'synthetic'
      ? { trainSize: cfg.data.trainSize, valSize: cfg.data.valSize }
      : { data: cfg.data.root, ...(cfg.data.valRoot !== null ? { valData: cfg.data.valRoot } : {}) }),
    ...(cfg.train ?? {}),
  };
  const explicit = o.explicit ?? new Set<string>();
  const given = (key: string, v: unknown): unknown => (key === 'data' || key === 'valData' ? resolvePath(v as string) : v);
  const out: TrainCliOptions = { ...o };
  for (const [key, value] of Object.entries(recorded)) {
    if (explicit.has(key)) {
      if (RESUME_MAY_CHANGE.has(key) || given(key, o[key as keyof TrainCliOptions]) === value) continue;
      throw alexnetError(
        'ERR_ARGUMENT',
        `${flag(key)} ${String(o[key as keyof TrainCliOptions])} differs from the run in ${o.resume} (${JSON.stringify(value)}): --resume continues that run with its own options ` +
          `(only --epochs and --checkpoint-every may change; start a new run to change the others)`,
      );
    }
    (out as unknown as Record<string, unknown>)[key] = value;
  }
  return out;
}

async function datasets(cfg: RunConfig, evalOnly = false): Promise<{ train: Dataset | null; val: Dataset | null }> {
  const size = cfg.inputSize;
  if (cfg.data.kind === 'synthetic') {
    const common = { numClasses: cfg.model.numClasses, imageSize: size, seed: cfg.data.seed };
    return {
      train: evalOnly ? null : new SyntheticDataset({ ...common, size: cfg.data.trainSize, split: 'train' }),
      val: new SyntheticDataset({ ...common, size: cfg.data.valSize, split: 'val' }),
    };
  }
  const train = evalOnly ? null : await ImageFolder.open(cfg.data.root, { train: true, cropSize: size });
  const val = cfg.data.valRoot ? await ImageFolder.open(cfg.data.valRoot, { train: false, cropSize: size }) : null;
  // more class folders than the model has classes: the first label past them failed the run in
  // the middle of an epoch (softmaxCrossEntropy: label out of range); refused before it starts
  for (const ds of [train, val]) {
    if (ds && ds.classNames.length > cfg.model.numClasses) {
      throw alexnetError('ERR_ARGUMENT', `the image folder '${ds.root}' has ${ds.classNames.length} class folders but the model has ${cfg.model.numClasses} class${cfg.model.numClasses === 1 ? '' : 'es'} (labels ${cfg.model.numClasses} and above would be out of range)`);
    }
  }
  return { train, val };
}

function progressReporter(json: boolean): { onProgress: (p: TrainProgress) => void; stop: () => void } {
  if (json) {
    return {
      onProgress: (p) => {
        if (p.type === 'step' && p.step % 10 !== 0) return;
        console.log(JSON.stringify(p));
      },
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: 'epoch {ep} |{bar}| {percentage}% | batch {value}/{total} | loss {loss} | acc {acc} | {ips} img/s | ETA {eta_formatted}',
      hideCursor: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress: (p) => {
      if (p.type === 'step') {
        const payload = { ep: `${p.epoch + 1}/${p.epochs}`, loss: p.loss?.toFixed(4) ?? '-', acc: p.top1 !== undefined ? `${(100 * p.top1).toFixed(1)}%` : '-', ips: p.imagesPerSecond?.toFixed(1) ?? '-' };
        if (!started) {
          bar.start(p.batchesPerEpoch, p.batch, payload);
          started = true;
        } else {
          bar.update(p.batch, payload);
        }
      } else if (p.type === 'epoch') {
        if (started) bar.stop();
        started = false;
        console.log(`epoch ${p.epoch}/${p.epochs}: val top-1 ${(100 * (p.valTop1 ?? NaN)).toFixed(2)}%, top-5 ${(100 * (p.valTop5 ?? NaN)).toFixed(2)}%, val loss ${(p.valLoss ?? NaN).toFixed(4)}, lr ${p.lr}`);
      } else if (p.type === 'stopped') {
        if (started) bar.stop();
        started = false;
        console.log(p.message);
      } else if (p.type === 'notice') {
        console.error(p.message);
      }
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

export async function trainCommand(options: TrainCliOptions): Promise<TrainSummary> {
  let cfg: RunConfig;
  let o = options;
  if (o.resume) {
    // The header only: the trainer reads (and checks) the data once the model exists.
    const recorded = await readRunConfig(o.resume);
    o = resumeOptions(o, recorded);
    cfg = { ...recorded, train: trainOptions(o) };
  } else {
    const numClasses = o.classes ?? (o.data ? undefined : 2);
    let classNames: string[];
    let data: RunConfig['data'];
    if (o.data) {
      const probe = await ImageFolder.open(o.data, { train: true });
      classNames = [...probe.classNames];
      data = { kind: 'folder', root: resolvePath(o.data), valRoot: o.valData ? resolvePath(o.valData) : null };
    } else {
      const n = numClasses ?? 2;
      if (n < 2 || n > SYNTHETIC_CLASSES.length) throw alexnetError('ERR_ARGUMENT', `the synthetic dataset has 2 to ${SYNTHETIC_CLASSES.length} classes, not ${n}`);
      classNames = SYNTHETIC_CLASSES.slice(0, n).map(String);
      data = { kind: 'synthetic', trainSize: o.trainSize, valSize: o.valSize, seed: o.seed };
    }
    cfg = { model: { config: o.config, numClasses: numClasses ?? classNames.length, init: o.init, seed: o.seed }, classNames, data, inputSize: ALEXNET_INPUT_SIZE[o.config], train: trainOptions(o) };
  }
  // Under mpirun, one process per rank trains data-parallel; rank 0 alone prints (and writes the
  // checkpoint and metrics log); the others print only errors (src/cli/index.ts names the rank).
  const comm = await initDistributed();
  const quiet = comm.rank !== 0;
  const { train, val } = await datasets(cfg);
  const model = alexnet({ ...cfg.model, device: o.device });
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    if (!o.json && !quiet) console.error('\ninterrupt: saving a checkpoint after this step (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  // under mpirun a Ctrl-C at the terminal ends the job; SIGUSR1, which mpirun forwards to every
  // rank, is the interrupt instead (`train --nproc` sends it on the first Ctrl-C)
  const distributed = comm.worldSize > 1;
  if (distributed) process.on('SIGUSR1', onSigint);
  const reporter = quiet ? { onProgress: () => undefined, stop: () => undefined } : progressReporter(o.json);
  const trainer = new Trainer({
    model,
    config: cfg,
    train: train!,
    ...(val ? { val } : {}),
    device: o.device,
    batchSize: o.batchSize,
    epochs: o.epochs,
    optimizer: { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay, convention: o.convention },
    precision: o.precision ?? 'fp32',
    schedule: parseSchedule(o.schedule),
    seed: o.seed,
    ...(o.workers !== undefined ? { workers: o.workers } : {}),
    checkpoint: o.checkpoint,
    checkpointEvery: o.checkpointEvery,
    metrics: o.metrics,
    resume: o.resume ?? null,
    ...(o.verify === false ? { verifyCheckpoint: false } : {}),
    ...(o.maxSteps !== undefined ? { maxSteps: o.maxSteps } : {}),
    warmupSteps: o.warmup,
    ...(o.cudaGraph ? { cudaGraph: true } : {}),
    ...(o.channelsLast ? { memoryFormat: 'channels_last' as const } : {}),
    onProgress: reporter.onProgress,
    signal: controller.signal,
    ...(comm.worldSize > 1 ? { communicator: comm } : {}),
  });
  try {
    const summary = await trainer.run();
    reporter.stop();
    if (quiet) {
      // rank != 0: nothing to print
    } else if (o.json) {
      console.log(JSON.stringify({ type: 'summary', ...summary }));
    } else {
      console.log(
        `done: ${summary.steps} steps, ${summary.epochs} epochs; train loss ${summary.trainLoss.toFixed(4)}; ` +
          `val top-1 ${(100 * summary.valTop1).toFixed(2)}%, top-5 ${(100 * summary.valTop5).toFixed(2)}%; ` +
          `${summary.imagesPerSecond.toFixed(1)} images/s; checkpoint ${summary.checkpoint ?? '(none)'}`,
      );
    }
    if (summary.stopped === 'nan') process.exitCode = 2;
    return summary;
  } finally {
    process.off('SIGINT', onSigint);
    if (distributed) process.off('SIGUSR1', onSigint);
    await trainer.close();
    model.dispose();
  }
}

function resolvePath(p: string): string {
  return isAbsolute(p) ? p : resolve(process.cwd(), p);
}

export async function evalCommand(checkpoint: string, o: { data?: string; device: string; batchSize: number; json: boolean; verify?: boolean }): Promise<void> {
  const { model, config: cfg } = await modelFromCheckpoint(checkpoint, { device: o.device, verify: o.verify !== false });
  const evalCfg: RunConfig = o.data ? { ...cfg, data: { kind: 'folder', root: resolvePath(o.data), valRoot: resolvePath(o.data) } } : cfg;
  const { val } = await datasets(evalCfg, true);
  if (!val) throw alexnetError('ERR_ARGUMENT', 'eval: no validation data (pass --data <folder>)');
  try {
    const r = await evaluate(model, val, { device: o.device, batchSize: o.batchSize });
    const out = { checkpoint, samples: val.length, valTop1: r.top1, valTop5: r.top5, valLoss: r.loss };
    console.log(o.json ? JSON.stringify(out) : `${checkpoint}: ${val.length} images, top-1 ${(100 * r.top1).toFixed(2)}%, top-5 ${(100 * r.top5).toFixed(2)}%, loss ${r.loss.toFixed(4)}`);
  } finally {
    model.dispose();
  }
}

export async function predictCommand(checkpoint: string, images: string[], o: { device: string; top: number; json: boolean; verify?: boolean }): Promise<void> {
  const { model, config: cfg } = await modelFromCheckpoint(checkpoint, { device: o.device, verify: o.verify !== false });
  try {
    // The evaluation transform of training (shorter side 256, centre crop) for each file.
    const files = images.map((f) => resolvePath(f));
    const folder = ImageFolder.fromState({
      root: '/',
      classNames: cfg.classNames,
      files: files.map((f) => f.replace(/^\//, '')),
      labels: new Int32Array(files.length),
      transform: resolveTransform({ train: false, cropSize: cfg.inputSize, ...(cfg.data.kind === 'synthetic' ? { resizeSize: cfg.inputSize } : {}) }),
      skipCorrupt: false,
    });
    const k = Math.min(o.top, cfg.classNames.length);
    for (let i = 0; i < files.length; i++) {
      const sample = await folder.load(i);
      const x = Tensor.from(sample.image, [1, 3, cfg.inputSize, cfg.inputSize], { device: o.device });
      const logits = model.forward(x);
      const p = await softmax(logits).data();
      x.dispose();
      logits.dispose();
      const ranked = Array.from(p, (v, c) => ({ class: cfg.classNames[c] ?? String(c), probability: v })).sort((a, b) => b.probability - a.probability).slice(0, k);
      if (o.json) console.log(JSON.stringify({ file: images[i], top: ranked }));
      // class names come from the checkpoint, file names from the command line: shown with
      // their control characters escaped, so a hostile one cannot drive the terminal
      else console.log(`${printable(images[i]!)}: ${ranked.map((r) => `${printable(r.class)} ${(100 * r.probability).toFixed(1)}%`).join(', ')}`);
    }
  } finally {
    model.dispose();
  }
}

/** Writes a checkpoint's model as an ONNX file (inference graph, see src/io/onnx.ts). */
export async function exportCommand(checkpoint: string, o: { out: string; opset: number; batch: 'dynamic' | number; softmax: boolean; json: boolean; verify?: boolean }): Promise<void> {
  const { model, config: cfg } = await modelFromCheckpoint(checkpoint, { device: 'cpu', verify: o.verify !== false });
  try {
    const info = await exportOnnx(model, o.out, { opset: o.opset, batch: o.batch, softmax: o.softmax });
    const out = { checkpoint, out: o.out, config: cfg.model.config, inputSize: cfg.inputSize, classes: cfg.model.numClasses, classNames: cfg.classNames, ...info, nodes: info.nodes.length };
    if (o.json) console.log(JSON.stringify(out));
    else {
      console.log(
        `wrote ${o.out}: AlexNet(${cfg.model.config}), opset ${info.opset} (IR ${info.irVersion}), ${info.nodes.length} nodes, ` +
          `${(info.parameters / 1e6).toFixed(1)}M parameters, ${(info.bytes / 2 ** 20).toFixed(1)} MiB; ` +
          `input 'input' [${o.batch === 'dynamic' ? 'N' : o.batch}, 3, ${cfg.inputSize}, ${cfg.inputSize}], output 'logits'${o.softmax ? " and 'probabilities'" : ''}`,
      );
    }
  } finally {
    model.dispose();
  }
}

export async function plotCommand(metrics: string, out: string): Promise<void> {
  const { width, height } = await plotMetricsFile(metrics, out, { title: `alexnet-node: ${metrics}` });
  console.log(`wrote ${out} (${width}x${height})`);
}

export async function filtersCommand(checkpoint: string, out: string, o: { scale: number; verify?: boolean }): Promise<void> {
  const ck = await loadCheckpoint(checkpoint, { requireFinite: true, verify: o.verify !== false });
  const w = ck.weights['features.0.weight'];
  if (!w) throw checkpointError(`${checkpoint}: no 'features.0.weight' (the first convolution's kernels)`);
  await renderFilters({ data: w.data as Float32Array, shape: w.shape as [number, number, number, number] }, out, { scale: o.scale });
  console.log(`wrote ${out} (${w.shape[0]} kernels of ${w.shape.slice(1).join('x')})`);
}

/** Writes synthetic samples as PNGs (denormalised), under <folder>/<class>/<i>.png. */
export async function samplesCommand(folder: string, o: { count: number; classes: number; seed: number }): Promise<void> {
  const { default: sharp } = await import('sharp');
  const ds = new SyntheticDataset({ size: o.count, numClasses: o.classes, seed: o.seed, split: 'val' });
  const size = ds.imageSize;
  for (let i = 0; i < ds.length; i++) {
    const { image, label } = ds.get(i);
    const rgb = toRgb8(image, size, size);
    const dir = `${folder}/${ds.classNames[label]}`;
    await ensureDir(dir, (message, cause) => alexnetError('ERR_ARGUMENT', `samples: ${message}`, cause));
    await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toFile(`${dir}/${i}.png`);
    console.log(`${dir}/${i}.png`);
  }
}
