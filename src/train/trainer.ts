// The training loop: epochs of SGD steps over a DataLoader, evaluation each epoch (top-1 and
// top-5), a JSON-lines metrics log, checkpoints every N steps and at the end, a clean stop on
// a NaN/Inf loss (the last good checkpoint is kept) and on an interrupt (Ctrl-C saves first).
//
// One step, as in the design:
//   host batch -> device tensors -> forward -> softmax cross-entropy -> backward (gradients
//   accumulate into the parameter store) -> one SGD update over the whole store -> loss and
//   correct counts read back.
//
// Resuming is exact: the checkpoint holds the weights, the momentum buffer, the optimizer's step
// and learning rate, the schedule's state, every dropout stream's offset and the data position
// (epoch, batch); on the CPU, the losses after a resume equal the uninterrupted run's bit for bit.
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hasPixels, type Batch, type Dataset } from '../data/common.js';
import { DataLoader } from '../data/loader.js';
import { alexnetError } from '../errors.js';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { checkpointError } from '../io/errors.js';
import { Dropout } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { ParameterStore } from '../nn/store.js';
import { copy } from '../ops/elementwise.js';
import { normalizeImages } from '../ops/image.js';
import { softmaxCrossEntropy } from '../ops/loss.js';
import { topkCorrect } from '../ops/metrics.js';
import { MultiStepLR, ReduceLROnPlateau, StepLR } from '../optim/schedule.js';
import { SGD, type SGDOptions } from '../optim/sgd.js';
import { Tensor } from '../tensor.js';

export type ScheduleSpec =
  | { kind: 'none' }
  | { kind: 'step'; stepSize: number; gamma?: number }
  | { kind: 'multistep'; milestones: number[]; gamma?: number }
  | { kind: 'plateau'; patience?: number; factor?: number };

export interface TrainProgress {
  type: 'step' | 'epoch' | 'checkpoint' | 'stopped';
  step: number;
  epoch: number;
  batch: number;
  batchesPerEpoch: number;
  epochs: number;
  loss?: number;
  top1?: number;
  lr: number;
  imagesPerSecond?: number;
  valTop1?: number;
  valTop5?: number;
  valLoss?: number;
  checkpoint?: string;
  message?: string;
}

export interface TrainSummary {
  steps: number;
  epochs: number;
  trainLoss: number;
  trainTop1: number;
  valTop1: number;
  valTop5: number;
  valLoss: number;
  imagesPerSecond: number;
  seconds: number;
  checkpoint: string | null;
  stopped: 'completed' | 'interrupted' | 'nan';
  message?: string;
  lr: number;
}

export interface TrainerOptions {
  model: Module;
  /** configuration recorded in checkpoints (model config, data, hyper-parameters) */
  config: Record<string, unknown>;
  train: Dataset;
  val?: Dataset;
  device?: string;
  batchSize?: number;
  epochs?: number;
  optimizer?: Partial<SGDOptions> & { lr: number };
  schedule?: ScheduleSpec;
  seed?: number;
  workers?: number;
  /** write a checkpoint here every `checkpointEvery` steps and at the end */
  checkpoint?: string | null;
  checkpointEvery?: number;
  /** append JSON lines here */
  metrics?: string | null;
  /** log a train record every this many steps */
  logEvery?: number;
  /** continue from this checkpoint */
  resume?: string | null;
  /** Verify the checksums of the `resume` checkpoint (default true). */
  verifyCheckpoint?: boolean;
  /** linear learning-rate warm-up over the first this many steps (Goyal et al. 2017); 0 = none */
  warmupSteps?: number;
  /** stop after this many steps in total (for tests and smoke runs) */
  maxSteps?: number;
  onProgress?: (p: TrainProgress) => void;
  /** aborting saves a checkpoint after the current step and returns ('interrupted') */
  signal?: AbortSignal;
  /**
   * How batches travel to the device: 'uint8' as 8-bit pixels normalised on the device (a
   * quarter of the bytes; the default where the dataset has loadPixelsInto, as SyntheticDataset
   * and ImageFolder do), 'float32' as normalised floats from the data workers.
   */
  dataFormat?: 'auto' | 'uint8' | 'float32';
}

/** One training step queued on the device whose loss and accuracy have not been read yet. */
interface InFlight {
  batch: Batch;
  tensors: Tensor[];
  result: Promise<[Float32Array | Int32Array, Float32Array | Int32Array]>;
}

interface Position {
  step: number;
  epoch: number;
  batch: number; // next batch in `epoch`
}

const TOPK = 5;

/** The dropout modules of a model, in order (their stream offsets go into checkpoints). */
function dropouts(model: Module): Dropout[] {
  return model
    .namedModules()
    .map(([, m]) => m)
    .filter((m): m is Dropout => m instanceof Dropout);
}

export class Trainer {
  readonly model: Module;
  readonly store: ParameterStore;
  readonly optimizer: SGD;
  readonly device: string;
  readonly batchSize: number;
  readonly epochs: number;
  readonly options: TrainerOptions;
  readonly trainLoader: DataLoader;
  readonly valLoader: DataLoader | null;
  #schedule: StepLR | MultiStepLR | ReduceLROnPlateau | null;
  #pos: Position = { step: 0, epoch: 0, batch: 0 };

  constructor(options: TrainerOptions) {
    this.options = options;
    this.device = options.device ?? 'cpu';
    this.batchSize = options.batchSize ?? 32;
    this.epochs = options.epochs ?? 1;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw alexnetError('ERR_ARGUMENT', `train: batchSize must be a positive integer, got ${this.batchSize}`);
    if (!Number.isInteger(this.epochs) || this.epochs < 1) throw alexnetError('ERR_ARGUMENT', `train: epochs must be a positive integer, got ${this.epochs}`);
    this.model = options.model;
    this.store = ParameterStore.create(this.model, { device: this.device });
    this.optimizer = new SGD(this.store, { lr: 0.01, ...options.optimizer });
    const s = options.schedule ?? { kind: 'none' };
    this.#schedule =
      s.kind === 'step' ? new StepLR(this.optimizer, s.stepSize, s.gamma) :
      s.kind === 'multistep' ? new MultiStepLR(this.optimizer, s.milestones, s.gamma) :
      s.kind === 'plateau' ? new ReduceLROnPlateau(this.optimizer, { patience: s.patience ?? 2, factor: s.factor ?? 0.1, mode: 'min' }) :
      null;
    const workers = options.workers;
    const want = options.dataFormat ?? 'auto';
    if (!['auto', 'uint8', 'float32'].includes(want)) throw alexnetError('ERR_ARGUMENT', `train: dataFormat must be 'auto', 'uint8' or 'float32', got ${String(want)}`);
    const format = (d: Dataset) => (want === 'float32' || (want === 'auto' && !hasPixels(d)) ? 'float32' : 'uint8');
    this.trainLoader = new DataLoader(options.train, { batchSize: this.batchSize, shuffle: true, seed: options.seed ?? 0, dropLast: true, format: format(options.train), ...(workers !== undefined ? { workers } : {}) });
    this.valLoader = options.val ? new DataLoader(options.val, { batchSize: this.batchSize, shuffle: false, dropLast: false, format: format(options.val), ...(workers !== undefined ? { workers } : {}) }) : null;
    if (this.trainLoader.length === 0) throw alexnetError('ERR_ARGUMENT', `train: the training set (${options.train.length} samples) is smaller than one batch of ${this.batchSize}`);
  }

  get position(): Readonly<Position> {
    return { ...this.#pos };
  }

  /**
   * Writes a checkpoint of everything a resume needs (atomically). Returns false, writing
   * nothing, when a weight is NaN or infinite: the previous checkpoint stays the last good one.
   */
  async saveCheckpoint(path: string): Promise<boolean> {
    // One read of each flat buffer; the per-parameter tensors are slices of it.
    const [params, momentum] = await Promise.all([this.store.params.data(), this.store.momentum.data()]);
    for (let i = 0; i < params.length; i++) if (!Number.isFinite(params[i]!)) return false;
    const weights: Record<string, { shape: number[]; data: Float32Array }> = {};
    const buffers: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const e of this.store.layout) {
      weights[e.name] = { shape: [...e.shape], data: params.subarray(e.offset, e.offset + e.numel) };
      buffers[e.name] = { shape: [...e.shape], data: momentum.subarray(e.offset, e.offset + e.numel) };
    }
    await mkdir(dirname(path), { recursive: true });
    await saveCheckpoint(path, {
      weights,
      optimizer: { momentum: buffers, config: { ...this.optimizer.state(), schedule: this.#schedule?.state() ?? null } },
      step: this.#pos.step,
      epoch: this.#pos.epoch,
      rngState: { dropout: dropouts(this.model).map((d) => ({ seed: d.seed, offset: d.offset })), seed: this.options.seed ?? 0 },
      dataOrder: { seed: this.options.seed ?? 0, epoch: this.#pos.epoch, batch: this.#pos.batch },
      config: this.options.config,
    });
    return true;
  }

  /**
   * Restores a checkpoint written by saveCheckpoint (same model configuration). The file is
   * checked before its data is read (the weights this model has, with their shapes, and nothing
   * else), its checksums are verified, and weights or momentum holding NaN/Inf are refused as a
   * fault of the file (the trainer never writes them).
   */
  async loadCheckpoint(path: string, options: { verify?: boolean } = {}): Promise<void> {
    const expect = Object.fromEntries(this.store.layout.map((e) => [e.name, [...e.shape]]));
    const ck = await loadCheckpoint(path, {
      expect: (header) => {
        validateResumeMetadata(path, header.optimizer, header.rng, header.recipe);
        return expect;
      },
      requireFinite: true,
      ...(options.verify !== undefined ? { verify: options.verify } : {}),
    });
    const cfg = (ck.optimizer?.config ?? {}) as { step?: number; lr?: number; schedule?: unknown };
    // loadCheckpoint validated the types of the fields present; a resume needs both or neither.
    if ((cfg.step === undefined) !== (cfg.lr === undefined)) throw checkpointError(`${path}: metadata 'optimizer' has ${cfg.step === undefined ? 'lr but no step' : 'step but no lr'}`);
    const rng = ck.rngState as { dropout?: { seed: number; offset: number }[] } | undefined;
    const ds = dropouts(this.model);
    if (rng?.dropout && rng.dropout.length !== ds.length) {
      throw checkpointError(`${path}: metadata 'rng' has ${rng.dropout.length} dropout streams but this model has ${ds.length}`);
    }
    // Everything that can refuse the file is checked before the model's state changes.
    try {
      if (this.#schedule && cfg.schedule) (this.#schedule as { loadState(s: unknown): void }).loadState(cfg.schedule);
    } catch (e) {
      throw checkpointError(`${path}: metadata 'optimizer'.schedule is not valid for this schedule (${(e as Error).message})`, e);
    }
    for (const e of this.store.layout) {
      const w = ck.weights[e.name]!;
      copyInto(this.store.params, e.offset, Tensor.from(w.data as Float32Array, [e.numel], { device: this.device }));
      const m = ck.optimizer?.momentum[e.name];
      if (m) copyInto(this.store.momentum, e.offset, Tensor.from(m.data as Float32Array, [e.numel], { device: this.device }));
    }
    if (typeof cfg.step === 'number' && typeof cfg.lr === 'number') this.optimizer.loadState({ step: cfg.step, lr: cfg.lr });
    if (rng?.dropout) {
      ds.forEach((d, i) => {
        d.seed = rng.dropout![i]!.seed;
        d.offset = rng.dropout![i]!.offset;
      });
    }
    const order = ck.dataOrder as { epoch?: number; batch?: number } | undefined;
    this.#pos = { step: ck.step, epoch: order?.epoch ?? ck.epoch, batch: order?.batch ?? 0 };
  }

  /** Runs the loop; resolves with the summary (also on NaN or interruption). */
  async run(): Promise<TrainSummary> {
    const o = this.options;
    if (o.resume) await this.loadCheckpoint(o.resume, o.verifyCheckpoint === false ? { verify: false } : {});
    if (o.metrics) await mkdir(dirname(o.metrics), { recursive: true });
    const log = async (record: object): Promise<void> => {
      if (o.metrics) await appendFile(o.metrics, JSON.stringify(record) + '\n');
    };
    const checkpointEvery = o.checkpointEvery ?? 0;
    const logEvery = o.logEvery ?? 10;
    const perEpoch = this.trainLoader.length;
    const t0 = performance.now();
    let images = 0;
    let lastLoss = NaN;
    let windowLoss = 0;
    let windowCorrect = 0;
    let windowCount = 0;
    let windowSteps = 0;
    let lastTop1 = 0;
    let val: EvalResult = { top1: NaN, top5: NaN, loss: NaN, samples: 0 };
    let stopped = 'completed' as TrainSummary['stopped'];
    let message: string | undefined;
    let savedCheckpoint: string | null = null;
    this.model.train();

    // false when the weights are no longer finite (nothing written: the last good one stays)
    const save = async (): Promise<boolean> => {
      if (!o.checkpoint) return true;
      if (!(await this.saveCheckpoint(o.checkpoint))) return false;
      savedCheckpoint = o.checkpoint;
      o.onProgress?.({ type: 'checkpoint', ...this.#progressBase(perEpoch), checkpoint: o.checkpoint });
      return true;
    };
    const nanStop = (what: string): void => {
      stopped = 'nan';
      message = `training stopped: ${what} at step ${this.#pos.step} (epoch ${this.#pos.epoch + 1}); ` +
        (savedCheckpoint ? `the last good checkpoint is ${savedCheckpoint}` : 'no checkpoint was written') + '. Lower the learning rate.';
    };

    // The bookkeeping of one finished step: metrics, progress, log, periodic checkpoint. False
    // ends the run (a NaN loss, or weights that became NaN at a checkpoint).
    const account = async (f: InFlight): Promise<boolean> => {
      const { loss, correct } = await this.#finish(f);
      const { batch } = f;
      this.#pos = { step: this.#pos.step + 1, epoch: batch.epoch, batch: batch.batchIndex + 1 };
      if (!Number.isFinite(loss)) {
        nanStop(`the loss became ${loss}`);
        await log({ type: 'error', step: this.#pos.step, epoch: batch.epoch, message });
        return false;
      }
      images += batch.labels.length;
      lastLoss = loss;
      lastTop1 = correct / batch.labels.length;
      windowLoss += loss;
      windowCorrect += correct;
      windowCount += batch.labels.length;
      windowSteps++;
      const ips = images / ((performance.now() - t0) / 1000);
      o.onProgress?.({ type: 'step', ...this.#progressBase(perEpoch), loss, top1: lastTop1, imagesPerSecond: ips });
      if (windowSteps >= logEvery || batch.batchIndex + 1 === perEpoch) {
        await log({ type: 'train', step: this.#pos.step, epoch: batch.epoch, trainLoss: windowLoss / windowSteps, trainTop1: windowCorrect / windowCount, lr: this.optimizer.lr, imagesPerSecond: ips });
        windowLoss = windowCorrect = windowCount = windowSteps = 0;
      }
      if (checkpointEvery > 0 && this.#pos.step % checkpointEvery === 0 && !(await save())) {
        nanStop('the weights became NaN or infinite');
        await log({ type: 'error', step: this.#pos.step, epoch: batch.epoch, message });
        return false;
      }
      return true;
    };

    // One step in flight: step k+1 is queued before step k's loss is read, so the device never
    // idles while the JavaScript thread reads a loss and assembles the next batch. A step that
    // checkpoints, ends an epoch or the run, or sees an interrupt is waited for before anything
    // else is queued, so checkpoints and evaluations hold exactly the steps their position says
    // (and a resume stays exact).
    let inFlight: InFlight | null = null;
    outer: while (this.#pos.epoch < this.epochs) {
      const epoch = this.#pos.epoch;
      for await (const batch of this.trainLoader.batches({ epoch, startBatch: this.#pos.batch })) {
        const launched = this.#launch(batch, this.#pos.step + (inFlight ? 1 : 0));
        if (inFlight) {
          const previous: InFlight = inFlight;
          inFlight = null;
          if (!(await account(previous))) {
            await this.#finish(launched).catch(() => undefined); // queued behind the NaN: dropped
            break outer;
          }
        }
        inFlight = launched;
        const number = this.#pos.step + 1; // the step number `launched` will have
        const barrier =
          (checkpointEvery > 0 && number % checkpointEvery === 0) ||
          batch.batchIndex + 1 === perEpoch ||
          (o.maxSteps !== undefined && number >= o.maxSteps) ||
          o.signal?.aborted === true;
        if (barrier) {
          const last: InFlight = inFlight;
          inFlight = null;
          if (!(await account(last))) break outer;
          if (o.signal?.aborted) {
            stopped = 'interrupted';
            message = `interrupted at step ${this.#pos.step}`;
            break outer;
          }
          if (o.maxSteps !== undefined && this.#pos.step >= o.maxSteps) break outer;
        }
      }
      if (inFlight) {
        // not reached (an epoch's last batch is a barrier), kept so no step can go unaccounted
        const last: InFlight = inFlight;
        inFlight = null;
        if (!(await account(last))) break outer;
      }
      // end of the epoch: evaluate, schedule, move on
      val = await this.evaluate();
      this.#pos = { step: this.#pos.step, epoch: epoch + 1, batch: 0 };
      if (this.#schedule instanceof ReduceLROnPlateau) this.#schedule.step(Number.isFinite(val.top1) ? 1 - val.top1 : lastLoss);
      else this.#schedule?.step();
      await log({ type: 'val', step: this.#pos.step, epoch: epoch + 1, valLoss: val.loss, valTop1: val.top1, valTop5: val.top5, trainLoss: lastLoss, lr: this.optimizer.lr });
      o.onProgress?.({ type: 'epoch', ...this.#progressBase(perEpoch), valTop1: val.top1, valTop5: val.top5, valLoss: val.loss });
    }
    if (stopped !== 'nan' && !(await save())) nanStop('the weights became NaN or infinite');
    if (stopped !== 'completed') o.onProgress?.({ type: 'stopped', ...this.#progressBase(perEpoch), message: message ?? stopped });
    // Flush what the log has not seen yet: the last steps, and an evaluation when the run ended
    // before an epoch did (max steps, interruption).
    if (windowSteps > 0) {
      await log({ type: 'train', step: this.#pos.step, epoch: this.#pos.epoch, trainLoss: windowLoss / windowSteps, trainTop1: windowCorrect / windowCount, lr: this.optimizer.lr });
    }
    if (Number.isNaN(val.top1) && stopped !== 'nan' && this.valLoader) {
      val = await this.evaluate();
      await log({ type: 'val', step: this.#pos.step, epoch: this.#pos.epoch, valLoss: val.loss, valTop1: val.top1, valTop5: val.top5, trainLoss: lastLoss, lr: this.optimizer.lr });
    }
    const seconds = (performance.now() - t0) / 1000;
    return {
      steps: this.#pos.step,
      epochs: this.#pos.epoch,
      trainLoss: lastLoss,
      trainTop1: lastTop1,
      valTop1: val.top1,
      valTop5: val.top5,
      valLoss: val.loss,
      imagesPerSecond: images / seconds,
      seconds,
      checkpoint: savedCheckpoint,
      stopped,
      lr: this.optimizer.lr,
      ...(message ? { message } : {}),
    };
  }

  /** Top-1 / top-5 accuracy and mean loss on the validation set (eval mode: no dropout). */
  async evaluate(): Promise<EvalResult> {
    if (!this.valLoader) return { top1: NaN, top5: NaN, loss: NaN, samples: 0 };
    return evaluateLoader(this.model, this.valLoader, this.device);
  }

  async close(): Promise<void> {
    await this.trainLoader.close();
    await this.valLoader?.close();
  }

  /**
   * Queues one training step (forward, loss, backward, SGD) and the reads of its loss and
   * correct count; returns at once. Warm-up scales the scheduled learning rate for this step
   * only: outside the step the optimizer shows the schedule's value, so schedules and
   * checkpoints never see the factor.
   */
  #launch(batch: Batch, step: number): InFlight {
    const warmup = this.options.warmupSteps ?? 0;
    const scheduled = this.optimizer.lr;
    if (step < warmup) this.optimizer.lr = (scheduled * (step + 1)) / warmup;
    try {
      const { x, y } = toDevice(batch, this.device);
      this.store.zeroGrad();
      const logits = this.model.forward(x);
      const { loss, gradLogits } = softmaxCrossEntropy(logits, y);
      const correct = topkCorrect(logits, y, 1);
      const gx = this.model.backward(gradLogits, false);
      this.optimizer.step();
      const result = Promise.all([loss.data(), correct.data()]);
      result.catch(() => undefined); // read in #finish; never an unhandled rejection meanwhile
      return { batch, tensors: [x, y, logits, loss, gradLogits, correct, ...(gx ? [gx] : [])], result };
    } finally {
      this.optimizer.lr = scheduled;
    }
  }

  /** Waits for a queued step's loss and correct count, then frees its tensors. */
  async #finish(f: InFlight): Promise<{ loss: number; correct: number }> {
    try {
      const [l, c] = await f.result;
      return { loss: l[0]!, correct: c[0]! };
    } finally {
      for (const t of f.tensors) t.dispose();
    }
  }

  #progressBase(perEpoch: number): Omit<TrainProgress, 'type'> {
    return { step: this.#pos.step, epoch: this.#pos.epoch, batch: this.#pos.batch, batchesPerEpoch: perEpoch, epochs: this.epochs, lr: this.optimizer.lr };
  }
}

export interface EvalResult {
  top1: number;
  top5: number;
  loss: number;
  samples: number;
}

/**
 * A host batch as device tensors: images [N, 3, H, W] and int32 labels [N]. An 8-bit batch
 * crosses as bytes and is normalised on the device.
 */
function toDevice(batch: Batch, device: string): { x: Tensor<'float32'>; y: Tensor<'int32'> } {
  return {
    x: batch.format === 'uint8'
      ? normalizeImages(batch.pixels, batch.shape, { mean: batch.mean, std: batch.std, device })
      : Tensor.from(batch.images, batch.shape, { device }),
    y: Tensor.from(batch.labels, [batch.labels.length], { device, dtype: 'int32' }),
  };
}

async function evaluateLoader(model: Module, loader: DataLoader, device: string): Promise<EvalResult> {
  const wasTraining = model.training;
  model.eval();
  let n = 0;
  let c1 = 0;
  let c5 = 0;
  let lossSum = 0;
  try {
    for await (const batch of loader.batches({ epoch: 0 })) {
      const { x, y } = toDevice(batch, device);
      const logits = model.forward(x);
      const { loss, gradLogits } = softmaxCrossEntropy(logits, y);
      const t1 = topkCorrect(logits, y, 1);
      const t5 = topkCorrect(logits, y, Math.min(TOPK, logits.shape[1]!));
      const [l, a, b] = await Promise.all([loss.data(), t1.data(), t5.data()]);
      lossSum += l[0]! * batch.labels.length;
      c1 += a[0]!;
      c5 += b[0]!;
      n += batch.labels.length;
      for (const t of [x, y, logits, loss, gradLogits, t1, t5]) t.dispose();
    }
  } finally {
    model.train(wasTraining);
  }
  return { top1: c1 / n, top5: c5 / n, loss: lossSum / n, samples: n };
}

/** Top-1 / top-5 accuracy and mean cross-entropy of `model` on `dataset` (eval mode). */
export async function evaluate(
  model: Module,
  dataset: Dataset,
  { device = 'cpu', batchSize = 32, workers }: { device?: string; batchSize?: number; workers?: number } = {},
): Promise<EvalResult> {
  const loader = new DataLoader(dataset, { batchSize, shuffle: false, dropLast: false, format: hasPixels(dataset) ? 'uint8' : 'float32', ...(workers !== undefined ? { workers } : {}) });
  try {
    return await evaluateLoader(model, loader, device);
  } finally {
    await loader.close();
  }
}

/** dst[offset : offset + src.numel] = src (then disposes src; the queued copy keeps it alive). */
function copyInto(dst: Tensor<'float32'>, offset: number, src: Tensor<'float32'>): void {
  const v = dst.view(offset, src.shape);
  copy(v, src);
  v.dispose();
  src.dispose();
}

// The metadata fields a resume reads, checked before any tensor data is read.
function finiteNumber(path: string, field: string, v: unknown, min = -Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    throw checkpointError(`${path}: metadata ${field} must be a finite number${min > -Infinity ? ` >= ${min}` : ''}, got ${JSON.stringify(v) ?? String(v)}`);
  }
  return v;
}

function safeCount(path: string, field: string, v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw checkpointError(`${path}: metadata ${field} must be a non-negative integer, got ${JSON.stringify(v) ?? String(v)}`);
  return v as number;
}

/**
 * Checks the fields of the optimizer, rng and data-order metadata that readers use (the SGD
 * hyperparameters, the dropout streams, the data position): a wrong type or a non-finite number
 * is an error, not silently ignored.
 */
function validateResumeMetadata(path: string, optimizer: object | undefined, rng: object | undefined, recipe: object | undefined): void {
  if (optimizer !== undefined) {
    const o = optimizer as Record<string, unknown>;
    if ('lr' in o) finiteNumber(path, "'optimizer'.lr", o.lr, 0);
    if ('step' in o) safeCount(path, "'optimizer'.step", o.step);
    for (const k of ['momentum', 'weightDecay', 'dampening']) if (k in o) finiteNumber(path, `'optimizer'.${k}`, o[k], 0);
  }
  if (rng !== undefined) {
    const r = rng as Record<string, unknown>;
    if ('seed' in r) finiteNumber(path, "'rng'.seed", r.seed);
    if ('dropout' in r) {
      if (!Array.isArray(r.dropout) || r.dropout.length > 1000) throw checkpointError(`${path}: metadata 'rng'.dropout must be an array of at most 1000 {seed, offset}`);
      r.dropout.forEach((d: unknown, i: number) => {
        if (d === null || typeof d !== 'object') throw checkpointError(`${path}: metadata 'rng'.dropout[${i}] must be {seed, offset}`);
        safeCount(path, `'rng'.dropout[${i}].seed`, (d as Record<string, unknown>).seed);
        safeCount(path, `'rng'.dropout[${i}].offset`, (d as Record<string, unknown>).offset);
      });
    }
  }
  if (recipe !== undefined) {
    const d = recipe as Record<string, unknown>;
    for (const k of ['seed', 'epoch', 'batch']) if (k in d) safeCount(path, `'dataOrder'.${k}`, d[k]);
  }
}

