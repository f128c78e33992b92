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
// What a checkpoint holds, and how it is checked and restored, is src/train/state.ts.
//
// Data-parallel training (a `communicator` of worldSize > 1, one process per rank under
// mpirun or srun; on CUDA one GPU per rank, the device tensors' collectives through NCCL):
// rank 0's weights are broadcast before the first step; each rank reads its shard of every
// epoch (DistributedSampler semantics, `batchSize` per rank); the flat gradient buffer is
// averaged over the ranks in buckets (src/dist/reducer.ts), each started during backward as soon
// as its layers' backward is queued so that communication overlaps the rest of backward; then
// every rank takes the same SGD step, so the weights stay identical. The loss read back is averaged too (so every
// rank takes the same decisions: a NaN stops all of them), evaluation sums counts and losses
// over the ranks' strided shares of the validation set (the same top-1 as one process), and rank
// 0 alone writes checkpoints and the metrics log and reports progress (its train top-1 is its
// own shard's; the loss is the ranks' mean). The Dropout streams are rank 0's on every rank, and
// each rank draws its own slice of them (Dropout.shardStream): the masks one process at the
// global batch would draw, so dropout does not break the equivalence with it. Without a communicator, or with a world of one,
// nothing of this runs: the loop is exactly the single-process one.
import { appendFile, open, stat, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { dirname } from 'node:path';
import { hasPixels, type Batch, type Dataset } from '../data/common.js';
import { DataLoader } from '../data/loader.js';
import type { Communicator } from '../dist/communicator.js';
import { DEFAULT_BUCKET_MB, GradientReducer, planBuckets } from '../dist/reducer.js';
import { alexnetError } from '../errors.js';
import { checkWritable, ensureDir } from '../io/atomic.js';
import { namedDropouts, type Dropout } from '../nn/layers.js';
import { loadNative } from '../native.js';
import { Module, type MemoryFormat, type Precision } from '../nn/module.js';
import { ParameterStore } from '../nn/store.js';
import { copy, refreshBf16Copy } from '../ops/elementwise.js';
import { normalizeImages } from '../ops/image.js';
import { softmaxCrossEntropy } from '../ops/loss.js';
import { topkCorrect } from '../ops/metrics.js';
import { MultiStepLR, ReduceLROnPlateau, StepLR } from '../optim/schedule.js';
import { SGD, type SGDOptions } from '../optim/sgd.js';
import { Tensor } from '../tensor.js';
import { captureTrainingState, loadTrainingState, restoreTrainingState, saveTrainingState, weightsAreFinite, type TrainingState, type TrainingTarget } from './state.js';

export type ScheduleSpec =
  | { kind: 'none' }
  | { kind: 'step'; stepSize: number; gamma?: number }
  | { kind: 'multistep'; milestones: number[]; gamma?: number }
  | { kind: 'plateau'; patience?: number; factor?: number };

export interface TrainProgress {
  /** 'notice': a one-line message that changes nothing (why a CUDA graph is not used) */
  type: 'step' | 'epoch' | 'checkpoint' | 'stopped' | 'notice';
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
  /**
   * With the cudaGraph option: graphs captured (one per batch size), steps replayed from them,
   * and why steps ran eagerly, if they did (the notice's text).
   */
  cudaGraph?: { graphs: number; replays: number; fallback?: string };
}

export interface TrainerOptions {
  model: Module;
  /**
   * Configuration recorded in checkpoints (model config, data, hyper-parameters): a RunConfig
   * (`runConfig(model, { train, val })`) lets modelFromCheckpoint and the CLI rebuild the run.
   */
  config: object;
  train: Dataset;
  val?: Dataset;
  device?: string;
  batchSize?: number;
  epochs?: number;
  optimizer?: Partial<SGDOptions> & { lr: number };
  /**
   * 'fp32' or 'bf16' (Module.setPrecision: bfloat16 activations and weight copies, float32 master
   * weights, gradients of the weights, loss and checkpoints); default: the model's own. The
   * Trainer sets it on the model, and under 'bf16' the SGD step writes the weights' bfloat16
   * copy in its own pass. TF32 (setTf32) is a separate switch for the float32 arithmetic.
   */
  precision?: Precision;
  /**
   * The activations' layout (Module.setMemoryFormat; default: the model's own): 'channels_last'
   * converts the input once and runs the convolution stack on [N, H, W, C] activations (cuDNN's
   * tensor-core layout); weights, the classifier and checkpoints are the same in both. Opt-in
   * until the GPU check has measured it. Models with LocalResponseNorm (AlexNet 'paper2012')
   * refuse it.
   */
  memoryFormat?: MemoryFormat;
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
  /**
   * Data-parallel training over this communicator's ranks (initDistributed()); absent or a
   * world of one: a single process. Every rank runs the same Trainer options (the same seed,
   * model and data); `batchSize` is per rank. On CUDA (one GPU per rank) it needs NCCL
   * (libnccl.so.2: `alexnet info` says whether it was found): ERR_DIST naming where it looked otherwise.
   */
  communicator?: Communicator;
  /**
   * Data-parallel only: the gradient buckets' size in MiB (PyTorch DDP's bucket_cap_mb, default
   * 25); Infinity averages the whole buffer in one allReduce after backward.
   */
  bucketMB?: number;
  /**
   * Opt-in (issue 14; CLI --cuda-graph): on CUDA, after GRAPH_WARMUP_STEPS eager steps (cuDNN's
   * algorithm search done, buffers allocated, SGD past its first step), the step (zeroGrad,
   * forward, loss, top-1 count, backward, SGD) is captured once per batch size as a CUDA graph
   * and replayed: each step copies its batch into the graph's input buffers and launches the
   * graph. The learning rate lives in device memory (SGD.lrTensor), so a schedule or warm-up
   * needs no new capture. So do the Dropout layers' stream positions (Dropout.deviceStream):
   * the captured step reads and advances them on the device, so every replay draws a fresh mask,
   * and each replay advances the host offsets the same way, so checkpoints hold the exact stream
   * position. Steps run eagerly, with one 'notice' saying why, on the CPU, when training
   * data-parallel, or when the capture fails (an operation that cannot be captured). Never a
   * crash: a failed capture leaves nothing behind.
   */
  cudaGraph?: boolean;
}

/** Eager steps a process runs before the cudaGraph option captures (see TrainerOptions.cudaGraph). */
export const GRAPH_WARMUP_STEPS = 3;

/** A captured training step of one batch size: its graph, input buffers and kept outputs. */
interface CapturedStep {
  id: number;
  x: Tensor<'float32'>;
  y: Tensor<'int32'>;
  /** made inside the capture; the graph rewrites them at every replay (same addresses) */
  outputs: Tensor[];
  loss: Tensor<'float32'>;
  correct: Tensor<'int32'>;
  /** the Dropout layers that draw in the step, and how far each replay advances its stream */
  dropouts: [Dropout, number][];
}

/** One training step queued on the device whose loss and accuracy have not been read yet. */
interface InFlight {
  batch: Batch;
  tensors: Tensor[];
  result: Promise<[Float32Array | Int32Array, Float32Array | Int32Array, ...(Float32Array | Int32Array)[]]>;
  /** data-parallel: resolves true when some rank's signal was aborted when this step was queued */
  abortAgreed?: Promise<boolean>;
}

interface Position {
  step: number;
  epoch: number;
  batch: number; // next batch in `epoch`
}

const TOPK = 5;

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
  /** the communicator when training data-parallel (worldSize > 1), else null */
  readonly #comm: Communicator | null;
  /** data-parallel: the gradient buckets (made at the first step, disposed by close()) */
  #reducer: GradientReducer | null = null;
  /** cudaGraph: the captured step per batch size */
  #graphs = new Map<number, CapturedStep>();
  /** cudaGraph: why steps run eagerly (null: they need not), steps replayed, eager steps run */
  #graphFallback: string | null = null;
  #graphReplays = 0;
  #eagerSteps = 0;

  constructor(options: TrainerOptions) {
    this.options = options;
    this.device = options.device ?? 'cpu';
    const comm = options.communicator;
    this.#comm = comm !== undefined && comm !== null && comm.worldSize > 1 ? comm : null;
    if (this.#comm && !this.device.startsWith('cpu')) {
      // On a GPU the weights and the flat gradient buffer live on the device: their collectives
      // go through NCCL (the CPU-side flags and counts still through MPI).
      const nccl = loadNative().ncclLibrary();
      if (!nccl.found) throw alexnetError('ERR_DIST', `train: data-parallel training on '${this.device}' needs NCCL: ${nccl.reason}`);
    }
    this.batchSize = options.batchSize ?? 32;
    this.epochs = options.epochs ?? 1;
    if (!Number.isSafeInteger(this.batchSize) || this.batchSize < 1) throw alexnetError('ERR_ARGUMENT', `train: batchSize must be a positive integer, got ${String(this.batchSize)}`);
    if (!Number.isSafeInteger(this.epochs) || this.epochs < 1) throw alexnetError('ERR_ARGUMENT', `train: epochs must be a positive integer, got ${String(this.epochs)}`);
    // the step counts: a NaN or fractional one would never be reached (maxSteps: NaN ran forever)
    for (const [key, min] of [['maxSteps', 0], ['warmupSteps', 0], ['logEvery', 1], ['checkpointEvery', 0]] as const) {
      const v = options[key];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < min)) throw alexnetError('ERR_ARGUMENT', `train: ${key} must be an integer >= ${min}, got ${String(v)}`);
    }
    if (options.cudaGraph !== undefined && typeof options.cudaGraph !== 'boolean') throw alexnetError('ERR_ARGUMENT', `train: cudaGraph must be a boolean, got ${String(options.cudaGraph)}`);
    this.model = options.model;
    if (!(this.model instanceof Module)) throw alexnetError('ERR_ARGUMENT', 'train: expected options.model to be a Module');
    // Options refused below leave the model as it was (setPrecision / setMemoryFormat come first:
    // the parameter store depends on them): its settings are restored, and a store already made
    // gives every parameter its own tensors back and is freed (its views held its buffers).
    const restore = this.model.saveSettings();
    let store: ParameterStore | null = null;
    try {
      const precision = options.precision ?? this.model.precision;
      if (precision !== this.model.precision || precision === 'bf16') this.model.setPrecision(precision);
      if (options.memoryFormat !== undefined && options.memoryFormat !== this.model.memoryFormat) this.model.setMemoryFormat(options.memoryFormat);
      this.store = store = ParameterStore.create(this.model, { device: this.device, bf16Copy: precision === 'bf16' });
      this.optimizer = new SGD(this.store, { lr: 0.01, ...options.optimizer });
      if (this.#comm) planBuckets(this.store, options.bucketMB ?? DEFAULT_BUCKET_MB); // a bad bucketMB fails here
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
      const c = this.#comm;
      const shard = (mode: 'pad' | 'strided') => (c ? { shard: { rank: c.rank, worldSize: c.worldSize, mode } } : {});
      this.trainLoader = new DataLoader(options.train, { batchSize: this.batchSize, shuffle: true, seed: options.seed ?? 0, dropLast: true, format: format(options.train), ...shard('pad'), ...(workers !== undefined ? { workers } : {}) });
      this.valLoader = options.val ? new DataLoader(options.val, { batchSize: this.batchSize, shuffle: false, dropLast: false, format: format(options.val), ...shard('strided'), ...(workers !== undefined ? { workers } : {}) }) : null;
      if (this.trainLoader.length === 0) {
        const share = c ? ` (this rank's share of ${this.trainLoader.samplesPerEpoch} of ${c.worldSize} ranks)` : '';
        throw alexnetError('ERR_ARGUMENT', `train: the training set (${options.train.length} samples${share}) is smaller than one batch of ${this.batchSize}`);
      }
    } catch (e) {
      try {
        store?.unbind();
      } finally {
        restore();
      }
      throw e;
    }
  }

  get position(): Readonly<Position> {
    return { ...this.#pos };
  }

  /** The training state now (weights, momentum, optimizer, schedule, dropout streams, position). */
  async trainingState(): Promise<TrainingState> {
    return captureTrainingState(this.#target(), { config: this.options.config, seed: this.options.seed ?? 0, batchSize: this.batchSize, ...(this.#comm ? { worldSize: this.#comm.worldSize } : {}), position: this.#pos });
  }

  /**
   * Writes a checkpoint of everything a resume needs (atomically; src/train/state.ts). Returns
   * false, writing nothing, when a weight is NaN or infinite: the previous checkpoint stays the
   * last good one.
   */
  async saveCheckpoint(path: string): Promise<boolean> {
    const state = await this.trainingState();
    if (!weightsAreFinite(state)) return false;
    await ensureDir(dirname(path), (message, cause) => alexnetError('ERR_CHECKPOINT', `${path}: cannot write the checkpoint here: ${message}`, cause));
    await saveTrainingState(path, state);
    return true;
  }

  /**
   * Restores a checkpoint written by saveCheckpoint (same model configuration). The file is
   * checked before its data is read (the weights this model has, with their shapes, and nothing
   * else), its checksums are verified, and weights or momentum holding NaN/Inf are refused as a
   * fault of the file (the trainer never writes them). Recorded state that does not fit this
   * trainer (another number of dropout streams, a schedule's state without a schedule) is an
   * ERR_CHECKPOINT error; nothing changes unless all of it fits.
   */
  async loadCheckpoint(path: string, options: { verify?: boolean } = {}): Promise<void> {
    const expect = Object.fromEntries(this.store.layout.map((e) => [e.name, [...e.shape]]));
    const state = await loadTrainingState(path, { expect, requireFinite: true, ...(options.verify !== undefined ? { verify: options.verify } : {}) });
    this.#dropGraphs(); // captured against the state being replaced
    this.#pos = restoreTrainingState(state, this.#target(), path);
  }

  /** Runs the loop; resolves with the summary (also on NaN or interruption). */
  async run(): Promise<TrainSummary> {
    const o = this.options;
    // A checkpoint or metrics log that cannot be written is found now, not at the first save
    // (with checkpointEvery 0, the end of the run: all of its work lost).
    if (this.#isRoot && o.checkpoint) await checkWritable(o.checkpoint, { what: 'the checkpoint', noun: 'checkpoint' });
    const log = await MetricsLog.open(this.#isRoot ? (o.metrics ?? null) : null);
    try {
      if (o.resume) await this.loadCheckpoint(o.resume, o.verifyCheckpoint === false ? { verify: false } : {});
      // identical initial weights on every rank (after a resume every rank loaded the same file:
      // harmless); momentum starts at zero or comes from that file, the same everywhere
      this.#comm?.broadcast(this.store.params, 0);
      if (this.#comm) await this.#shardDropout(this.#comm);
      try {
        const run = new RunRecord(log, this.trainLoader.length, this.#worldSize);
        this.model.train();
        while (this.#pos.epoch < this.epochs) {
          const epoch = this.#pos.epoch;
          if (!(await this.#trainEpoch(run))) break;
          await this.#endEpoch(run, epoch);
        }
        return await this.#finishRun(run);
      } finally {
        for (const d of this.#dropouts()) d.shardStream(0, 1); // the model leaves the run single-process
      }
    } finally {
      await log.close();
    }
  }

  #dropouts(): Dropout[] {
    return namedDropouts(this.model).map(([, d]) => d);
  }

  /**
   * Every rank takes rank 0's dropout streams (seed and offset, as it takes its weights) and
   * draws its own slice of them (Dropout.shardStream), so the ranks' masks are those of one
   * process at the global batch, not the same mask on every rank.
   */
  async #shardDropout(comm: Communicator): Promise<void> {
    const drops = this.#dropouts();
    if (drops.length === 0) return;
    // each safe integer as two 32-bit halves (int32 holds the low half's bits)
    const words = drops.flatMap((d) => [d.seed, d.offset].flatMap((v) => [Math.floor(v / 2 ** 32), v % 2 ** 32 | 0]));
    const t = Tensor.from<'int32'>(words, [words.length], { dtype: 'int32' });
    try {
      comm.broadcast(t, 0);
      const v = await t.data();
      drops.forEach((d, k) => {
        const at = (j: number) => v[4 * k + j]! * 2 ** 32 + (v[4 * k + j + 1]! >>> 0);
        d.loadState({ seed: at(0), offset: at(2) });
        d.shardStream(comm.rank, comm.worldSize);
      });
    } finally {
      t.dispose();
    }
  }

  /**
   * Top-1 / top-5 accuracy and mean loss on the validation set (eval mode: no dropout).
   * Data-parallel: a collective (every rank evaluates its share; call it on every rank).
   */
  async evaluate(): Promise<EvalResult> {
    if (!this.valLoader) return { top1: NaN, top5: NaN, loss: NaN, samples: 0 };
    return evaluateLoader(this.model, this.valLoader, this.device, this.#comm);
  }

  get #worldSize(): number {
    return this.#comm?.worldSize ?? 1;
  }

  /** Rank 0 (or a single process): writes checkpoints and the metrics log, reports progress. */
  get #isRoot(): boolean {
    return (this.#comm?.rank ?? 0) === 0;
  }

  #progress(p: TrainProgress): void {
    if (this.#isRoot) this.options.onProgress?.(p);
  }

  async close(): Promise<void> {
    this.#reducer?.dispose(); // its hooks on the model and its views of the gradient buffer
    this.#reducer = null;
    this.#dropGraphs();
    this.optimizer.dispose(); // the learning rate's device tensor
    for (const d of this.#dropouts()) d.releaseCounter(); // cudaGraph: the dropout streams' device counters
    await this.trainLoader.close();
    await this.valLoader?.close();
  }

  #target(): TrainingTarget {
    return { model: this.model, store: this.store, optimizer: this.optimizer, schedule: this.#schedule, order: { seed: this.options.seed ?? 0, batchSize: this.batchSize, worldSize: this.#worldSize } };
  }

  /**
   * The steps of one epoch, from the current position. One step is in flight: step k+1 is queued
   * before step k's loss is read, so the device never idles while the JavaScript thread reads a
   * loss and assembles the next batch. A step that checkpoints, ends an epoch or the run, or sees
   * an interrupt is waited for before anything else is queued, so checkpoints and evaluations
   * hold exactly the steps their position says (and a resume stays exact). Returns false when
   * the run ends inside the epoch (NaN, interruption, max steps).
   */
  async #trainEpoch(run: RunRecord): Promise<boolean> {
    const o = this.options;
    const checkpointEvery = o.checkpointEvery ?? 0;
    let inFlight: InFlight | null = null;
    for await (const batch of this.trainLoader.batches({ epoch: this.#pos.epoch, startBatch: this.#pos.batch })) {
      const launched = this.#launch(batch, this.#pos.step + (inFlight ? 1 : 0));
      if (inFlight) {
        const previous: InFlight = inFlight;
        inFlight = null;
        if (!(await this.#account(run, previous))) {
          await this.#finish(launched).catch(() => undefined); // queued behind the NaN: dropped
          return false;
        }
        if (previous.abortAgreed && (await previous.abortAgreed)) {
          // data-parallel interrupt: every rank learns it with `previous` and stops after `launched`
          return (await this.#account(run, launched)) && this.#interrupted(run);
        }
      }
      inFlight = launched;
      const number = this.#pos.step + 1; // the step number `launched` will have
      const barrier =
        (checkpointEvery > 0 && number % checkpointEvery === 0) ||
        batch.batchIndex + 1 === run.perEpoch ||
        (o.maxSteps !== undefined && number >= o.maxSteps) ||
        (!this.#comm && o.signal?.aborted === true);
      if (barrier) {
        const last: InFlight = inFlight;
        inFlight = null;
        if (!(await this.#account(run, last))) return false;
        if (this.#comm ? last.abortAgreed !== undefined && (await last.abortAgreed) : o.signal?.aborted) return this.#interrupted(run);
        if (o.maxSteps !== undefined && this.#pos.step >= o.maxSteps) return false;
      }
    }
    if (inFlight) {
      // not reached (an epoch's last batch is a barrier), kept so no step can go unaccounted
      if (!(await this.#account(run, inFlight))) return false;
    }
    return true;
  }

  #interrupted(run: RunRecord): false {
    run.stopped = 'interrupted';
    run.message = `interrupted at step ${this.#pos.step}`;
    return false;
  }

  /**
   * The bookkeeping of one finished step: position, metrics, progress, log, periodic checkpoint.
   * False ends the run (a NaN loss, or weights that became NaN at a checkpoint).
   */
  async #account(run: RunRecord, f: InFlight): Promise<boolean> {
    const { loss, correct } = await this.#finish(f);
    const { batch } = f;
    this.#pos = { step: this.#pos.step + 1, epoch: batch.epoch, batch: batch.batchIndex + 1 };
    if (!Number.isFinite(loss)) return this.#stopOnNaN(run, `the loss became ${loss}`, batch.epoch);
    const ips = run.recordStep(loss, correct, batch.labels.length);
    this.#progress({ type: 'step', ...this.#progressBase(run.perEpoch), loss, top1: run.lastTop1, imagesPerSecond: ips });
    if (run.window.steps >= (this.options.logEvery ?? 10) || batch.batchIndex + 1 === run.perEpoch) {
      await run.log.write({ type: 'train', step: this.#pos.step, epoch: batch.epoch, ...run.window.take(), lr: this.optimizer.lr, imagesPerSecond: ips });
    }
    const every = this.options.checkpointEvery ?? 0;
    if (every > 0 && this.#pos.step % every === 0 && !(await this.#checkpoint(run))) return this.#stopOnNaN(run, 'the weights became NaN or infinite', batch.epoch);
    return true;
  }

  /** Ends the run as 'nan' with the message that says why and where the last good checkpoint is; logs it. */
  async #stopOnNaN(run: RunRecord, what: string, epoch: number): Promise<false> {
    this.#nanStop(run, what);
    await run.log.write({ type: 'error', step: this.#pos.step, epoch, message: run.message });
    return false;
  }

  #nanStop(run: RunRecord, what: string): void {
    run.stopped = 'nan';
    run.message =
      `training stopped: ${what} at step ${this.#pos.step} (epoch ${this.#pos.epoch + 1}); ` +
      (run.savedCheckpoint ? `the last good checkpoint is ${run.savedCheckpoint}` : 'no checkpoint was written') +
      '. Lower the learning rate.';
  }

  /**
   * Writes the run's checkpoint, if it has one; false when the weights are no longer finite
   * (nothing written). Data-parallel: every rank checks the weights (identical on all of them, so
   * all take the same decision) and rank 0 alone writes.
   */
  async #checkpoint(run: RunRecord): Promise<boolean> {
    const path = this.options.checkpoint;
    if (!path) return true;
    if (this.#isRoot) {
      if (!(await this.saveCheckpoint(path))) return false;
    } else if (!weightsAreFinite(await this.trainingState())) return false;
    run.savedCheckpoint = path;
    this.#progress({ type: 'checkpoint', ...this.#progressBase(run.perEpoch), checkpoint: path });
    return true;
  }

  /** The end of an epoch: evaluate, move to the next epoch, step the schedule, log and report. */
  async #endEpoch(run: RunRecord, epoch: number): Promise<void> {
    run.val = await this.evaluate();
    this.#pos = { step: this.#pos.step, epoch: epoch + 1, batch: 0 };
    if (this.#schedule instanceof ReduceLROnPlateau) this.#schedule.step(Number.isFinite(run.val.top1) ? 1 - run.val.top1 : run.lastLoss);
    else this.#schedule?.step();
    await run.log.write(this.#valRecord(run, epoch + 1));
    this.#progress({ type: 'epoch', ...this.#progressBase(run.perEpoch), valTop1: run.val.top1, valTop5: run.val.top5, valLoss: run.val.loss });
  }

  #valRecord(run: RunRecord, epoch: number): object {
    const v = run.val;
    return { type: 'val', step: this.#pos.step, epoch, valLoss: v.loss, valTop1: v.top1, valTop5: v.top5, trainLoss: run.lastLoss, lr: this.optimizer.lr };
  }

  /**
   * The end of the run: the final checkpoint, the 'stopped' report, then what the log has not
   * seen yet (the last steps, and an evaluation when the run ended before an epoch did: max
   * steps, interruption); returns the summary.
   */
  async #finishRun(run: RunRecord): Promise<TrainSummary> {
    if (run.stopped !== 'nan' && !(await this.#checkpoint(run))) this.#nanStop(run, 'the weights became NaN or infinite');
    if (run.stopped !== 'completed') this.#progress({ type: 'stopped', ...this.#progressBase(run.perEpoch), message: run.message ?? run.stopped });
    if (run.window.steps > 0) {
      await run.log.write({ type: 'train', step: this.#pos.step, epoch: this.#pos.epoch, ...run.window.take(), lr: this.optimizer.lr });
    }
    if (Number.isNaN(run.val.top1) && run.stopped !== 'nan' && this.valLoader) {
      run.val = await this.evaluate();
      await run.log.write(this.#valRecord(run, this.#pos.epoch));
    }
    const seconds = (performance.now() - run.t0) / 1000;
    return {
      steps: this.#pos.step,
      epochs: this.#pos.epoch,
      trainLoss: run.lastLoss,
      trainTop1: run.lastTop1,
      valTop1: run.val.top1,
      valTop5: run.val.top5,
      valLoss: run.val.loss,
      imagesPerSecond: run.images / seconds,
      seconds,
      checkpoint: run.savedCheckpoint,
      stopped: run.stopped,
      lr: this.optimizer.lr,
      ...(run.message ? { message: run.message } : {}),
      ...(this.options.cudaGraph ? { cudaGraph: { graphs: this.#graphs.size, replays: this.#graphReplays, ...(this.#graphFallback ? { fallback: this.#graphFallback } : {}) } } : {}),
    };
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
      const captured = this.#capturedStep(batch);
      if (captured) return this.#replay(captured, batch);
      this.#eagerSteps++;
      const { x, y } = toDevice(batch, this.device);
      this.store.zeroGrad();
      const logits = this.model.forward(x);
      const { loss, gradLogits } = softmaxCrossEntropy(logits, y);
      const correct = topkCorrect(logits, y, 1);
      // Data-parallel: the gradients are averaged in buckets started during backward.
      const comm = this.#comm;
      if (comm) this.#reducer ??= new GradientReducer(comm, this.model, this.store, { bucketMB: this.options.bucketMB ?? DEFAULT_BUCKET_MB });
      const gx = this.#reducer ? this.#reducer.backward(gradLogits, false) : this.model.backward(gradLogits, false);
      let flag: Tensor<'float32'> | null = null;
      if (comm) {
        // The loss is averaged too, and the ranks' interrupt flags summed, so every rank takes
        // the same decisions.
        comm.allReduce(loss, 'avg');
        flag = comm.allReduce(Tensor.from<'float32'>([this.options.signal?.aborted ? 1 : 0], [1]), 'sum');
      }
      this.optimizer.step();
      const result = Promise.all([loss.data(), correct.data(), ...(flag ? [flag.data()] : [])] as const);
      result.catch(() => undefined); // read in #finish; never an unhandled rejection meanwhile
      const abortAgreed = flag ? result.then((r) => r[2]![0]! > 0) : undefined;
      abortAgreed?.catch(() => undefined);
      return { batch, tensors: [x, y, logits, loss, gradLogits, correct, ...(gx ? [gx] : []), ...(flag ? [flag] : [])], result, ...(abortAgreed ? { abortAgreed } : {}) };
    } finally {
      this.optimizer.lr = scheduled;
    }
  }

  /**
   * cudaGraph: the captured step for this batch's size, capturing it now if it is time; null
   * when this step runs eagerly (the option is off, still warming up, or graphs cannot be used:
   * then a notice said why, once).
   */
  #capturedStep(batch: Batch): CapturedStep | null {
    if (!this.options.cudaGraph || this.#graphFallback !== null) return null;
    const why = this.#graphObstacle();
    if (why) {
      this.#noteGraphFallback(why);
      return null;
    }
    const n = batch.labels.length;
    const have = this.#graphs.get(n);
    if (have) return have;
    if (this.#eagerSteps < GRAPH_WARMUP_STEPS || this.optimizer.stepCount === 0) return null;
    return this.#capture(batch);
  }

  /** Why this run's steps cannot be captured, or null. */
  #graphObstacle(): string | null {
    if (!this.device.startsWith('cuda')) return `the device is '${this.device}' (CUDA graphs need a CUDA device)`;
    if (this.#comm) return 'training data-parallel (the collectives are not captured)';
    return null;
  }

  #noteGraphFallback(why: string): void {
    this.#graphFallback = why;
    this.#progress({ type: 'notice', ...this.#progressBase(this.trainLoader.length), message: `cudaGraph: steps run eagerly: ${why}` });
  }

  /**
   * Captures the step for `batch`'s size: input buffers made outside the capture, the learning
   * rate written outside it, then zeroGrad / forward / loss / top-1 / backward / SGD queued
   * inside it (nothing runs). A failure anywhere ends the capture, undoes the host-side
   * bookkeeping of the step that did not run (SGD's step count, the layers' caches) and leaves
   * the run eager with a notice.
   */
  #capture(batch: Batch): CapturedStep | null {
    const native = loadNative();
    const x = Tensor.empty(batch.shape, { device: this.device });
    const y = Tensor.empty<'int32'>([batch.labels.length], { device: this.device, dtype: 'int32' });
    void this.optimizer.lrTensor; // made and written before the capture (an upload cannot be captured)
    // Each Dropout draws from its stream position in device memory, advanced on the device by
    // the captured step itself (so every replay draws a fresh mask); made and written here.
    const drops = this.#dropouts();
    for (const d of drops) {
      d.deviceStream = true;
      d.counterTensor(this.store.params.device);
    }
    const marks = drops.map((d) => d.streamMark());
    const before = this.optimizer.state();
    const outputs: Tensor[] = [];
    let failure: unknown = null;
    let id = 0;
    try {
      native.cudaGraphBegin(this.device);
    } catch (e) {
      failure = e;
    }
    if (failure === null) {
      try {
        this.store.zeroGrad();
        const logits = this.model.forward(x);
        outputs.push(logits);
        const { loss, gradLogits } = softmaxCrossEntropy(logits, y);
        outputs.push(loss, gradLogits);
        const correct = topkCorrect(logits, y, 1);
        outputs.push(correct);
        const gx = this.model.backward(gradLogits, false);
        if (gx) outputs.push(gx);
        this.optimizer.step();
      } catch (e) {
        failure = e;
      }
      try {
        id = native.cudaGraphEnd(this.device);
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== null) {
      for (const t of [...outputs, x, y]) t.dispose(); // a failed capture's tensors have no memory: nothing happens
      this.model.train(true); // drops the layers' caches of the step that did not run
      this.optimizer.loadState(before);
      drops.forEach((d, i) => d.streamRewind(marks[i]!));
      const text = failure instanceof Error ? failure.message.split('\n')[0]! : String(failure);
      this.#noteGraphFallback(`the capture failed: ${text}`);
      return null;
    }
    this.optimizer.loadState(before); // the step counts when a replay runs it
    // likewise the dropout streams advance when a replay runs (see #replay)
    const advances = drops.map((d, i) => {
      const a = d.offset - marks[i]!.offset;
      d.streamRewind(marks[i]!);
      return [d, a] as [Dropout, number];
    }).filter(([, a]) => a > 0);
    const c: CapturedStep = { id, x, y, outputs, loss: outputs[1] as Tensor<'float32'>, correct: outputs[3] as Tensor<'int32'>, dropouts: advances };
    this.#graphs.set(batch.labels.length, c);
    return c;
  }

  /** One step as a replay: the batch into the graph's inputs, the learning rate, the launch, the reads. */
  #replay(c: CapturedStep, batch: Batch): InFlight {
    const { x, y } = toDevice(batch, this.device);
    try {
      copy(c.x, x);
      copy(c.y, y);
    } finally {
      x.dispose(); // stream-ordered: the copies above still read them
      y.dispose();
    }
    void this.optimizer.lrTensor; // this step's learning rate (a schedule, the warm-up factor), before the launch
    // the dropout counters hold the host offsets (rewritten, in queue order, only if a resume or
    // an eager step moved them); the replay advances them on the device, the mirrors here
    for (const [d] of c.dropouts) d.counterTensor(this.store.params.device);
    // precision 'bf16': the captured forward reads the weights' bfloat16 copy as the capture
    // found it (current, so no conversion was captured); the replayed SGD keeps it current, but a
    // write to the parameters outside the graph (a checkpoint loaded, Parameter.assign) leaves it
    // stale: convert it here, in queue order before the launch (nothing runs when it is current)
    const p16 = this.store.params16;
    if (p16 !== null) refreshBf16Copy(p16, this.store.params);
    loadNative().cudaGraphLaunch(this.device, c.id);
    this.optimizer.loadState({ step: this.optimizer.stepCount + 1, lr: this.optimizer.lr });
    for (const [d, advance] of c.dropouts) d.replayed(advance);
    this.#graphReplays++;
    // the reads are queued behind this replay and before the next one, which rewrites the outputs
    const result = Promise.all([c.loss.data(), c.correct.data()] as const);
    result.catch(() => undefined);
    return { batch, tensors: [], result };
  }

  /** Frees the captured steps (their graphs and the tensors they keep). */
  #dropGraphs(): void {
    for (const c of this.#graphs.values()) {
      try {
        loadNative().cudaGraphDestroy(this.device, c.id);
      } finally {
        for (const t of [...c.outputs, c.x, c.y]) t.dispose();
      }
    }
    this.#graphs.clear();
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

async function evaluateLoader(model: Module, loader: DataLoader, device: string, comm: Communicator | null = null): Promise<EvalResult> {
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
  if (comm) {
    // each rank evaluated its strided share: the sums over the ranks are one process's sums
    // (float32: the counts are exact below 2^24 samples)
    const sums = comm.allReduce(Tensor.from<'float32'>([n, c1, c5, lossSum], [4]), 'sum');
    try {
      const d = await sums.data();
      [n, c1, c5, lossSum] = [d[0]!, d[1]!, d[2]!, d[3]!];
    } finally {
      sums.dispose();
    }
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

/** The JSON-lines metrics log (nothing written when the run has none). */
class MetricsLog {
  private constructor(
    readonly path: string | null,
    /** A FIFO's one handle for the whole run (a reader such as `cat` stops at the first close). */
    readonly pipe: FileHandle | null = null,
  ) {}

  /**
   * Checks the log can be written before the run starts: its folder is created (ensureDir, not
   * Node's recursive mkdir, which spins forever under /proc), and a directory, or a FIFO that no
   * process reads (appending to it blocked the run forever), is an ERR_ARGUMENT error.
   */
  static async open(path: string | null): Promise<MetricsLog> {
    if (!path) return new MetricsLog(null);
    const fail = (message: string, cause?: unknown): Error => alexnetError('ERR_ARGUMENT', `metrics log ${path}: ${message}`, cause);
    await ensureDir(dirname(path), fail);
    const s = await stat(path).catch(() => undefined);
    if (s?.isDirectory()) throw fail('is a directory; give a file name for the log');
    try {
      if (s?.isFIFO()) {
        // O_NONBLOCK: without a reader, open fails at once (ENXIO) instead of waiting for one
        return new MetricsLog(path, await open(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
      }
      await (await open(path, 'a')).close();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw fail(code === 'ENXIO' ? 'is a FIFO (named pipe) that no process reads' : `cannot be written (${code ?? (e as Error).message})`, e);
    }
    return new MetricsLog(path);
  }

  async write(record: object): Promise<void> {
    if (!this.path) return;
    const line = JSON.stringify(record) + '\n';
    if (this.pipe === null) {
      await appendFile(this.path, line);
      return;
    }
    // a non-blocking pipe: a full one (a slow reader) is waited for, a closed one is an error
    const bytes = Buffer.from(line);
    for (let done = 0, waits = 0; done < bytes.length; ) {
      try {
        done += (await this.pipe.write(bytes, done)).bytesWritten;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' && waits++ < 600_000) {
          await new Promise((r) => setTimeout(r, 1));
          continue;
        }
        throw alexnetError('ERR_ARGUMENT', `metrics log ${this.path}: ${code === 'EPIPE' ? 'the process reading the FIFO has gone' : `cannot be written (${code ?? (e as Error).message})`}`, e);
      }
    }
  }

  async close(): Promise<void> {
    await this.pipe?.close();
  }
}

/** Loss and correct counts summed over the steps since the last 'train' log record. */
class MetricsWindow {
  #loss = 0;
  #correct = 0;
  #count = 0;
  steps = 0;

  add(loss: number, correct: number, samples: number): void {
    this.#loss += loss;
    this.#correct += correct;
    this.#count += samples;
    this.steps++;
  }

  /** The window's mean loss and top-1 accuracy; empties it. */
  take(): { trainLoss: number; trainTop1: number } {
    const r = { trainLoss: this.#loss / this.steps, trainTop1: this.#correct / this.#count };
    this.#loss = this.#correct = this.#count = this.steps = 0;
    return r;
  }
}

/** What one run() accumulates: throughput, the last step's figures, the metrics window, how it ended. */
class RunRecord {
  readonly t0 = performance.now();
  images = 0;
  lastLoss = NaN;
  lastTop1 = 0;
  readonly window = new MetricsWindow();
  val: EvalResult = { top1: NaN, top5: NaN, loss: NaN, samples: 0 };
  stopped: TrainSummary['stopped'] = 'completed';
  message: string | undefined;
  savedCheckpoint: string | null = null;

  constructor(
    readonly log: MetricsLog,
    readonly perEpoch: number,
    /** ranks training together: each step takes `samples` images on each of them */
    readonly worldSize = 1,
  ) {}

  /** Counts one finite step; returns the images per second so far (over all ranks). */
  recordStep(loss: number, correct: number, samples: number): number {
    this.images += samples * this.worldSize;
    this.lastLoss = loss;
    this.lastTop1 = correct / samples;
    this.window.add(loss, correct, samples);
    return this.images / ((performance.now() - this.t0) / 1000);
  }
}
