// The configuration a training checkpoint records (metadata 'config'): which AlexNet, its
// classes, and its data, which is enough to rebuild the model (modelFromCheckpoint) and the
// datasets (the CLI's eval and --resume). Read defensively: every field is checked before
// anything is built from it, so a crafted or damaged configuration is an ERR_CHECKPOINT error
// naming the field, not a 16 GB allocation.
import type { Dataset } from '../data/common.js';
import { ImageFolder } from '../data/folder.js';
import { SyntheticDataset, SYNTHETIC_CLASSES } from '../data/synthetic.js';
import { alexnetError } from '../errors.js';
import { loadCheckpoint, readCheckpointHeader, type CheckpointHeader } from '../io/checkpoint.js';
import { checkpointError } from '../io/errors.js';
import { alexnet, ALEXNET_INPUT_SIZE, AlexNet, type AlexNetConfig, type AlexNetInit } from '../models/alexnet.js';
import type { SgdConvention } from '../ops/sgd.js';
import { Tensor } from '../tensor.js';
import type { ScheduleSpec } from './trainer.js';

/** What a checkpoint's `config` holds: enough to rebuild the model and its data. */
export interface RunConfig {
  model: { config: AlexNetConfig; numClasses: number; init: AlexNetInit; seed: number };
  classNames: string[];
  data: { kind: 'synthetic'; trainSize: number; valSize: number; seed: number } | { kind: 'folder'; root: string; valRoot: string | null };
  inputSize: number;
  /** How the run trains (the CLI records it; `alexnet train --resume` continues with it). Optional: absent in older checkpoints and in configurations built with runConfig(). */
  train?: RunTrainOptions;
}

/**
 * The options that define a training run beyond its model and data: a resumed run that changed
 * one of them would not continue the same run (a mid-epoch position counts batches of one size
 * in one shuffle; the optimizer's recorded state holds the learning rate the schedule reached).
 */
export interface RunTrainOptions {
  batchSize: number;
  epochs: number;
  /** the initial learning rate (the current one is in the optimizer's state) */
  lr: number;
  momentum: number;
  weightDecay: number;
  convention: SgdConvention;
  /** none | step:N | multistep:A,B,... | plateau (parseSchedule) */
  schedule: string;
  warmup: number;
  seed: number;
  checkpointEvery: number;
  /** 'fp32' or 'bf16' (Trainer's precision); absent in checkpoints of earlier versions: 'fp32' */
  precision?: 'fp32' | 'bf16';
}

/** The most images one batch of a recorded run may have (1024 images of 3x227x227 are 633 MB). */
export const MAX_BATCH = 1024;

/** A schedule spec as the CLI takes it: none | step:N | multistep:A,B,... | plateau. */
export function parseSchedule(spec: string): ScheduleSpec {
  if (spec === 'none') return { kind: 'none' };
  if (spec === 'plateau') return { kind: 'plateau' };
  const m = /^step:(\d+)$/.exec(spec);
  if (m) return { kind: 'step', stepSize: Number(m[1]) };
  const ms = /^multistep:([\d,]+)$/.exec(spec);
  if (ms) return { kind: 'multistep', milestones: ms[1]!.split(',').filter(Boolean).map(Number) };
  throw alexnetError('ERR_ARGUMENT', `unknown schedule '${spec}' (use none, step:N, multistep:A,B,... or plateau)`);
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
  if (c.train !== undefined) validateTrainOptions(c.train, bad);
  return c as RunConfig;
}

function validateTrainOptions(t: RunTrainOptions, bad: (field: string, want: string, got: unknown) => never): void {
  if (t === null || typeof t !== 'object') bad('train', 'an object', t);
  const count = (k: keyof RunTrainOptions, min: number, max: number): void => {
    if (!Number.isSafeInteger(t[k]) || (t[k] as number) < min || (t[k] as number) > max) bad(`train.${k}`, `an integer from ${min} to ${max}`, t[k]);
  };
  count('batchSize', 1, MAX_BATCH);
  count('epochs', 1, Number.MAX_SAFE_INTEGER);
  count('warmup', 0, Number.MAX_SAFE_INTEGER);
  count('seed', 0, Number.MAX_SAFE_INTEGER);
  count('checkpointEvery', 0, Number.MAX_SAFE_INTEGER);
  for (const k of ['lr', 'momentum', 'weightDecay'] as const) {
    if (typeof t[k] !== 'number' || !Number.isFinite(t[k]) || t[k] < 0) bad(`train.${k}`, 'a finite number >= 0', t[k]);
  }
  if (t.convention !== 'pytorch' && t.convention !== 'krizhevsky') bad('train.convention', "'pytorch' or 'krizhevsky'", t.convention);
  if (t.precision !== undefined && t.precision !== 'fp32' && t.precision !== 'bf16') bad('train.precision', "'fp32' or 'bf16'", t.precision);
  if (typeof t.schedule !== 'string' || t.schedule.length > 1000) bad('train.schedule', 'a schedule spec', t.schedule);
  try {
    parseSchedule(t.schedule);
  } catch {
    bad('train.schedule', 'none, step:N, multistep:A,B,... or plateau', t.schedule);
  }
}

/** The last layer's shape in the header must match the configuration (before the model is built). */
export function checkClassifier(path: string, header: CheckpointHeader, cfg: RunConfig): void {
  const w = header.tensors.get('classifier.6.weight');
  if (!w || w.shape.length !== 2 || w.shape[0] !== cfg.model.numClasses) {
    throw checkpointError(
      `${path}: the configuration says ${cfg.model.numClasses} classes but 'classifier.6.weight' is ${w ? `[${w.shape.join(', ')}]` : 'missing'}`,
    );
  }
}

/** The validated configuration of a checkpoint, from its header alone (no tensor data is read). */
export async function readRunConfig(path: string): Promise<RunConfig> {
  const header = await readCheckpointHeader(path);
  const cfg = validateRunConfig(path, header.config);
  checkClassifier(path, header, cfg);
  return cfg;
}

/**
 * The RunConfig of a training run of `model` on `data` (what `Trainer`'s `config` should be for
 * modelFromCheckpoint and the CLI to rebuild the run): the model's configuration, the training
 * set's class names, and the data as a synthetic set or image folders. Other datasets have no
 * description a checkpoint can hold: ERR_ARGUMENT.
 */
export function runConfig(model: AlexNet, data: { train: Dataset; val?: Dataset | null }): RunConfig {
  if (!(model instanceof AlexNet)) throw alexnetError('ERR_ARGUMENT', 'runConfig: model must be an AlexNet (from alexnet())');
  const { train, val } = data;
  let d: RunConfig['data'];
  if (train instanceof SyntheticDataset) {
    if (val != null && !(val instanceof SyntheticDataset && val.seed === train.seed)) {
      throw alexnetError('ERR_ARGUMENT', 'runConfig: with a SyntheticDataset for training, val must be a SyntheticDataset of the same seed (or absent)');
    }
    if (train.numClasses !== model.numClasses || train.imageSize !== model.inputSize) {
      throw alexnetError(
        'ERR_ARGUMENT',
        `runConfig: the SyntheticDataset (${train.numClasses} classes, ${train.imageSize}x${train.imageSize}) must match the model (${model.numClasses} classes, ${model.inputSize}x${model.inputSize})`,
      );
    }
    d = { kind: 'synthetic', trainSize: train.length, valSize: val?.length ?? 0, seed: train.seed };
  } else if (train instanceof ImageFolder) {
    if (val != null && !(val instanceof ImageFolder)) throw alexnetError('ERR_ARGUMENT', 'runConfig: with an ImageFolder for training, val must be an ImageFolder (or absent)');
    d = { kind: 'folder', root: train.root, valRoot: val?.root ?? null };
  } else {
    throw alexnetError('ERR_ARGUMENT', 'runConfig: the training set must be a SyntheticDataset or an ImageFolder (a checkpoint records how to rebuild it)');
  }
  return {
    model: { config: model.config, numClasses: model.numClasses, init: model.init, seed: model.seed },
    classNames: [...train.classNames],
    data: d,
    inputSize: model.inputSize,
  };
}

export interface ModelFromCheckpointOptions {
  /** where the model lives (default 'cpu') */
  device?: string;
  /** verify the tensors' CRC-32s (default true) */
  verify?: boolean;
}

/**
 * Rebuilds the AlexNet of a training checkpoint with its weights, in eval mode, and returns it
 * with the checkpoint's configuration. The configuration is validated and the model built from
 * the header alone; the weights are then read (checked against the model's names and shapes
 * first, checksums verified unless `verify` is false) and refused when they hold NaN or infinity:
 * a diverged model evaluates to meaningless numbers. Dispose the model when done.
 */
export async function modelFromCheckpoint(path: string, options: ModelFromCheckpointOptions = {}): Promise<{ model: AlexNet; config: RunConfig }> {
  const device = options.device ?? 'cpu';
  let model: AlexNet | undefined;
  let cfg: RunConfig | undefined;
  try {
    const ck = await loadCheckpoint(path, {
      verify: options.verify ?? true,
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
    return { model: model!, config: cfg! };
  } catch (e) {
    model?.dispose();
    throw e;
  }
}
