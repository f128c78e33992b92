// `alexnet train | eval | predict | export | plot | filters`: the command-line front of src/train,
// src/io and src/viz.
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import type { Dataset } from '../data/common.js';
import { toRgb8 } from '../data/common.js';
import { ImageFolder, resolveTransform } from '../data/folder.js';
import { SyntheticDataset, SYNTHETIC_CLASSES } from '../data/synthetic.js';
import { alexnetError } from '../errors.js';
import { loadCheckpoint, readCheckpointHeader, type CheckpointHeader } from '../io/checkpoint.js';
import { checkpointError } from '../io/errors.js';
import { exportOnnx } from '../io/onnx.js';
import { alexnet, ALEXNET_INPUT_SIZE, type AlexNet, type AlexNetConfig, type AlexNetInit } from '../models/alexnet.js';
import { softmax } from '../ops/loss.js';
import { Tensor } from '../tensor.js';
import { evaluate, Trainer, type ScheduleSpec, type TrainProgress, type TrainSummary } from '../train/trainer.js';
import { plotMetrics } from '../viz/plot.js';
import { renderFilters } from '../viz/filters.js';
import type { SgdConvention } from '../native.js';

/** What a checkpoint's `config` holds: enough to rebuild the model and its data. */
export interface RunConfig {
  model: { config: AlexNetConfig; numClasses: number; init: AlexNetInit; seed: number };
  classNames: string[];
  data: { kind: 'synthetic'; trainSize: number; valSize: number; seed: number } | { kind: 'folder'; root: string; valRoot: string | null };
  inputSize: number;
}

export interface TrainCliOptions {
  data?: string;
  valData?: string;
  config: AlexNetConfig;
  classes?: number;
  init: AlexNetInit;
  device: string;
  batchSize: number;
  epochs: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  convention: SgdConvention;
  schedule: string;
  checkpoint: string;
  checkpointEvery: number;
  resume?: string;
  metrics: string;
  trainSize: number;
  valSize: number;
  seed: number;
  workers?: number;
  maxSteps?: number;
  warmup: number;
  json: boolean;
  /** Verify the checksums of the --resume checkpoint (default true; --no-verify). */
  verify?: boolean;
}

/** The most classes a checkpoint's configuration may ask for (a 4096 x 100,000 layer is 1.6 GB). */
export const MAX_CLASSES = 100_000;
/** The most images a synthetic dataset in a checkpoint's configuration may have. */
export const MAX_SYNTHETIC_SAMPLES = 10_000_000;

/**
 * Checks a checkpoint's `config` field by field before anything is built from it: a crafted or
 * damaged configuration is an ERR_CHECKPOINT error naming the field, not a 16 GB allocation.
 */
export function validateRunConfig(path: string, raw: unknown): RunConfig {
  const bad = (field: string, want: string, got: unknown): never => {
    throw checkpointError(`${path}: metadata 'config'.${field} must be ${want}, got ${JSON.stringify(got)?.slice(0, 80) ?? String(got)}`);
  };
  const c = raw as Partial<RunConfig> | null;
  if (c === null || typeof c !== 'object' || c.model === null || typeof c.model !== 'object') {
    throw checkpointError(`${path}: not an alexnet-node training checkpoint (no model configuration in its metadata)`);
  }
  const m = c.model;
  if (!Object.prototype.hasOwnProperty.call(ALEXNET_INPUT_SIZE, m.config as string)) bad('model.config', `one of ${Object.keys(ALEXNET_INPUT_SIZE).join(', ')}`, m.config);
  if (!Number.isSafeInteger(m.numClasses) || m.numClasses < 1 || m.numClasses > MAX_CLASSES) bad('model.numClasses', `an integer from 1 to ${MAX_CLASSES}`, m.numClasses);
  if (!['kaiming', 'paper', 'pytorch'].includes(m.init as string)) bad('model.init', 'kaiming, paper or pytorch', m.init);
  if (!Number.isSafeInteger(m.seed) || m.seed < 0) bad('model.seed', 'a non-negative integer', m.seed);
  if (!Array.isArray(c.classNames) || c.classNames.length > MAX_CLASSES || !c.classNames.every((n) => typeof n === 'string')) {
    bad('classNames', `an array of at most ${MAX_CLASSES} strings`, c.classNames);
  }
  if (c.inputSize !== ALEXNET_INPUT_SIZE[m.config]) bad('inputSize', `${ALEXNET_INPUT_SIZE[m.config]} (the input size of AlexNet(${m.config}))`, c.inputSize);
  const d = c.data as RunConfig['data'] | undefined;
  if (d === null || typeof d !== 'object') bad('data', 'an object', d);
  if (d!.kind === 'synthetic') {
    for (const k of ['trainSize', 'valSize'] as const) {
      if (!Number.isSafeInteger(d![k]) || d![k] < 0 || d![k] > MAX_SYNTHETIC_SAMPLES) bad(`data.${k}`, `an integer from 0 to ${MAX_SYNTHETIC_SAMPLES}`, d![k]);
    }
    if (!Number.isSafeInteger(d!.seed) || d!.seed < 0) bad('data.seed', 'a non-negative integer', d!.seed);
    if (m.numClasses < 2 || m.numClasses > SYNTHETIC_CLASSES.length) bad('model.numClasses', `2 to ${SYNTHETIC_CLASSES.length} for the synthetic dataset`, m.numClasses);
  } else if (d!.kind === 'folder') {
    if (typeof d!.root !== 'string') bad('data.root', 'a path', d!.root);
    if (d!.valRoot !== null && typeof d!.valRoot !== 'string') bad('data.valRoot', 'a path or null', d!.valRoot);
  } else bad('data.kind', "'synthetic' or 'folder'", (d as { kind?: unknown }).kind);
  return c as RunConfig;
}

/** The last layer's shape in the header must match the configuration (before the model is built). */
function checkClassifier(path: string, header: CheckpointHeader, cfg: RunConfig): void {
  const w = header.tensors.get('classifier.6.weight');
  if (!w || w.shape.length !== 2 || w.shape[0] !== cfg.model.numClasses) {
    throw checkpointError(
      `${path}: the configuration says ${cfg.model.numClasses} classes but 'classifier.6.weight' is ${w ? `[${w.shape.join(', ')}]` : 'missing'}`,
    );
  }
}

export function parseSchedule(spec: string): ScheduleSpec {
  if (spec === 'none') return { kind: 'none' };
  if (spec === 'plateau') return { kind: 'plateau' };
  const m = /^step:(\d+)$/.exec(spec);
  if (m) return { kind: 'step', stepSize: Number(m[1]) };
  const ms = /^multistep:([\d,]+)$/.exec(spec);
  if (ms) return { kind: 'multistep', milestones: ms[1]!.split(',').filter(Boolean).map(Number) };
  throw alexnetError('ERR_ARGUMENT', `unknown schedule '${spec}' (use none, step:N, multistep:A,B,... or plateau)`);
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
      }
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

export async function trainCommand(o: TrainCliOptions): Promise<TrainSummary> {
  let cfg: RunConfig;
  if (o.resume) {
    // The header only: the trainer reads (and checks) the data once the model exists.
    const header = await readCheckpointHeader(o.resume);
    cfg = validateRunConfig(o.resume, header.config);
    checkClassifier(o.resume, header, cfg);
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
    cfg = { model: { config: o.config, numClasses: numClasses ?? classNames.length, init: o.init, seed: o.seed }, classNames, data, inputSize: ALEXNET_INPUT_SIZE[o.config] };
  }
  const { train, val } = await datasets(cfg);
  const model = alexnet({ ...cfg.model, device: o.device });
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    if (!o.json) console.error('\ninterrupt: saving a checkpoint after this step (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const reporter = progressReporter(o.json);
  const trainer = new Trainer({
    model,
    config: cfg as unknown as Record<string, unknown>,
    train: train!,
    ...(val ? { val } : {}),
    device: o.device,
    batchSize: o.batchSize,
    epochs: o.epochs,
    optimizer: { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay, convention: o.convention },
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
    onProgress: reporter.onProgress,
    signal: controller.signal,
  });
  try {
    const summary = await trainer.run();
    reporter.stop();
    if (o.json) {
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
    await trainer.close();
    model.dispose();
  }
}

function resolvePath(p: string): string {
  return isAbsolute(p) ? p : resolve(process.cwd(), p);
}

/**
 * Rebuilds the model of a checkpoint with its weights. The configuration is validated and the
 * model built from the header alone; the weights are then read (checked against the model's
 * names and shapes first, checksums verified unless `verify` is false) and refused when they
 * hold NaN or infinity: a diverged model evaluates to meaningless numbers.
 */
export async function modelFromCheckpoint(path: string, device: string, verify = true): Promise<{ model: AlexNet; cfg: RunConfig }> {
  let model: AlexNet | undefined;
  let cfg: RunConfig | undefined;
  try {
    const ck = await loadCheckpoint(path, {
      verify,
      requireFinite: true,
      expect: (header) => {
        cfg = validateRunConfig(path, header.config);
        checkClassifier(path, header, cfg);
        model = alexnet({ ...cfg.model, device });
        return Object.fromEntries([...model.stateDict()].map(([n, t]) => [n, [...t.shape]]));
      },
    });
    const dict = new Map<string, Tensor>();
    for (const [name, t] of Object.entries(ck.weights)) dict.set(name, Tensor.from(t.data as Float32Array, t.shape, { device }));
    model!.loadStateDict(dict);
    for (const t of dict.values()) t.dispose();
    model!.eval();
    return { model: model!, cfg: cfg! };
  } catch (e) {
    model?.dispose();
    throw e;
  }
}

export async function evalCommand(checkpoint: string, o: { data?: string; device: string; batchSize: number; json: boolean; verify?: boolean }): Promise<void> {
  const { model, cfg } = await modelFromCheckpoint(checkpoint, o.device, o.verify !== false);
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
  const { model, cfg } = await modelFromCheckpoint(checkpoint, o.device, o.verify !== false);
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
      else console.log(`${images[i]}: ${ranked.map((r) => `${r.class} ${(100 * r.probability).toFixed(1)}%`).join(', ')}`);
    }
  } finally {
    model.dispose();
  }
}

/** Writes a checkpoint's model as an ONNX file (inference graph, see src/io/onnx.ts). */
export async function exportCommand(checkpoint: string, o: { out: string; opset: number; batch: 'dynamic' | number; softmax: boolean; json: boolean; verify?: boolean }): Promise<void> {
  const { model, cfg } = await modelFromCheckpoint(checkpoint, 'cpu', o.verify !== false);
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
  const text = await readFile(metrics, 'utf8');
  const { width, height } = await plotMetrics(text, out, { title: `alexnet-node: ${metrics}` });
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
  const { mkdir } = await import('node:fs/promises');
  const ds = new SyntheticDataset({ size: o.count, numClasses: o.classes, seed: o.seed, split: 'val' });
  const size = ds.imageSize;
  for (let i = 0; i < ds.length; i++) {
    const { image, label } = ds.get(i);
    const rgb = toRgb8(image, size, size);
    const dir = `${folder}/${ds.classNames[label]}`;
    await mkdir(dir, { recursive: true });
    await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toFile(`${dir}/${i}.png`);
    console.log(`${dir}/${i}.png`);
  }
}
