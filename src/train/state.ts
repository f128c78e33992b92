// The training state: everything a resume needs, typed, in one place. The trainer saves and
// restores through it, the CLI reads it, and library users may read, inspect and write it.
//
// On disk it is a checkpoint (src/io/checkpoint.ts; format 'alexnet-node/1'), with these keys
// (and __metadata__ 'stateVersion', below):
//
//   TrainingState field   checkpoint key
//   config                __metadata__ 'config' (the CLI's RunConfig, or the caller's object)
//   step, epoch           __metadata__ 'step', 'epoch'
//   weights               the tensors under their state-dict names
//   momentum              tensors 'optimizer.momentum.<name>'
//   optimizer             __metadata__ 'optimizer' (SGD.state(): step, lr, ...)
//   schedule              __metadata__ 'optimizer'.schedule (null: the run had no schedule)
//   dropout, seed         __metadata__ 'rng': {"dropout": [{seed, offset}, ...], "seed": n}
//   dataOrder             __metadata__ 'dataOrder': {"seed", "epoch", "batch", "batchSize", "worldSize"}
//
// Versions (metadata 'stateVersion'; the checksums cover tensor data only, so the metadata is
// checked field by field):
//   2 (written from 2026-12-06 on): every field of a section the file has is there; null marks
//     what the state does not record ('optimizer' step and lr together, schedule: no schedule;
//     'rng' dropout, seed; 'dataOrder' batchSize, worldSize). A field missing is an
//     ERR_CHECKPOINT error naming the file and the field.
//   1 (no 'stateVersion': files written before, or saveCheckpoint by hand): fields may be
//     missing and read as: 'optimizer' without step and lr, or without schedule: those are
//     left as the target has them; 'rng' without dropout: so are the streams; without seed:
//     null; 'dataOrder' without seed: 'rng'.seed, else 0; without epoch: the checkpoint's epoch;
//     without batch: 0; without batchSize: not checked; without worldSize: 1.
// In both, a field of the wrong type or out of range is an ERR_CHECKPOINT error naming it.
//
// Dropout streams are listed in the model's module order (namedModules(), as dropoutState()
// gives them). A section the file does not have (a weights-only checkpoint written by another
// tool) is null here and left as the target has it on restore; a section the file HAS must fit
// the target exactly: another number of dropout streams, momentum for only some weights, a
// schedule's state without a schedule to take it, optimizer step without lr are errors naming
// what differs (ERR_CHECKPOINT naming the file; ERR_ARGUMENT for a state built in memory), never
// skipped.
import { alexnetError } from '../errors.js';
import { checkpointError } from '../io/errors.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointHeader, type HostTensor } from '../io/checkpoint.js';
import { dropoutState, loadDropoutState, namedDropouts } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import type { ParameterStore } from '../nn/store.js';
import { copy } from '../ops/elementwise.js';
import type { SGD, SGDState } from '../optim/sgd.js';
import { Tensor } from '../tensor.js';

/** The position of one Dropout layer's random stream. */
export interface DropoutStream {
  seed: number;
  offset: number;
}

/**
 * Where the data pipeline stands: the shuffle's seed, the epoch, and the next batch in it, with
 * the batch size that `batch` counts in (absent in checkpoints written before it was recorded)
 * and the number of data-parallel ranks whose shards it counts in (absent: 1).
 */
export interface DataPosition {
  seed: number;
  epoch: number;
  batch: number;
  batchSize?: number;
  worldSize?: number;
}

/** A learning-rate schedule as the training state sees it (StepLR, MultiStepLR, ReduceLROnPlateau). */
export interface ScheduleLike {
  state(): object;
  loadState(state: never): void;
}

/** Everything a resume needs, as host values (see the file comment for the checkpoint keys). */
export interface TrainingState<C extends object = object> {
  /** The run's configuration (the CLI's RunConfig: enough to rebuild the model and its data). */
  config: C;
  /** Optimizer steps taken so far. */
  step: number;
  /** The epoch the run is in (completed epochs when `dataOrder.batch` is 0). */
  epoch: number;
  /** Parameters under their state-dict names. */
  weights: Record<string, HostTensor>;
  /** SGD momentum buffers keyed by parameter name (all of them), or null: not recorded. */
  momentum: Record<string, HostTensor> | null;
  /** The optimizer's state (SGD.state()), or null: not recorded. */
  optimizer: SGDState | null;
  /** The schedule's state(), or null: the run had none (or it was not recorded). */
  schedule: object | null;
  /** Each Dropout layer's stream, in module order, or null: not recorded. */
  dropout: DropoutStream[] | null;
  /** The run's seed (metadata 'rng'.seed), or null: not recorded. */
  seed: number | null;
  /** The data position, or null: not recorded (a resume then starts `epoch` at batch 0). */
  dataOrder: DataPosition | null;
}

/** What a training state is taken from and restored into. */
export interface TrainingTarget {
  model: Module;
  store: ParameterStore;
  optimizer: SGD;
  schedule?: ScheduleLike | null;
  /**
   * The data order of the run restoring the state (its shuffle seed and batch size). A state
   * that stopped inside an epoch continues only with the same seed and batch size: another
   * would make its position point at other samples.
   */
  order?: { seed: number; batchSize: number; worldSize?: number };
}

/** The Dropout layers of a model in module order, with their dotted names. */
function dropoutNames(model: Module): string[] {
  return namedDropouts(model).map(([n]) => n);
}

/**
 * Takes the training state of `target` (one read of each flat buffer: the per-parameter
 * weights and momentum are views of it). `position` is where the run stands.
 */
export async function captureTrainingState<C extends object>(
  target: TrainingTarget,
  extra: { config: C; seed: number; batchSize?: number; worldSize?: number; position: { step: number; epoch: number; batch: number } },
): Promise<TrainingState<C>> {
  const { store, optimizer, schedule, model } = target;
  const [params, momentum] = await Promise.all([store.params.data(), store.momentum.data()]);
  const weights: Record<string, HostTensor> = {};
  const buffers: Record<string, HostTensor> = {};
  for (const e of store.layout) {
    weights[e.name] = { shape: [...e.shape], data: params.subarray(e.offset, e.offset + e.numel) };
    buffers[e.name] = { shape: [...e.shape], data: momentum.subarray(e.offset, e.offset + e.numel) };
  }
  const { step, epoch, batch } = extra.position;
  return {
    config: extra.config,
    step,
    epoch,
    weights,
    momentum: buffers,
    optimizer: optimizer.state(),
    schedule: schedule?.state() ?? null,
    dropout: Object.values(dropoutState(model)),
    seed: extra.seed,
    dataOrder: {
      seed: extra.seed,
      epoch,
      batch,
      ...(extra.batchSize !== undefined ? { batchSize: extra.batchSize } : {}),
      ...(extra.worldSize !== undefined ? { worldSize: extra.worldSize } : {}),
    },
  };
}

/** True when every weight is finite (the trainer never writes a diverged model). */
export function weightsAreFinite(state: TrainingState): boolean {
  for (const t of Object.values(state.weights)) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return false;
  }
  return true;
}

/** The version of the training-state metadata saveTrainingState writes (see the file comment). */
export const TRAINING_STATE_VERSION = 2;
const VERSION_KEY = 'stateVersion';

/**
 * Writes a training state as a checkpoint, atomically (the keys in the file comment). Each
 * section written holds all its fields, null where the state records nothing (version 2).
 */
export async function saveTrainingState(path: string, state: TrainingState): Promise<void> {
  const rng = { dropout: state.dropout?.map((d) => ({ seed: d.seed, offset: d.offset })) ?? null, seed: state.seed };
  const hasOptimizer = state.optimizer !== null || state.momentum !== null || state.schedule !== null;
  const order = state.dataOrder;
  await saveCheckpoint(path, {
    weights: state.weights,
    ...(hasOptimizer ? { optimizer: { momentum: state.momentum ?? {}, config: { step: null, lr: null, ...(state.optimizer ?? {}), schedule: state.schedule } } } : {}),
    step: state.step,
    epoch: state.epoch,
    ...(state.dropout !== null || state.seed !== null ? { rngState: rng } : {}),
    ...(order !== null ? { dataOrder: { ...order, batchSize: order.batchSize ?? null, worldSize: order.worldSize ?? null } } : {}),
    config: state.config,
    metadata: { [VERSION_KEY]: String(TRAINING_STATE_VERSION) },
  });
}

export interface LoadTrainingStateOptions<C extends object> {
  /**
   * The weights the caller needs, with their shapes (or a function of the header returning
   * them, which may throw to refuse the file), checked before any tensor data is read.
   */
  expect?: Record<string, readonly number[]> | ((header: CheckpointHeader) => Record<string, readonly number[]> | undefined);
  /** Checks and types the checkpoint's `config` from the header (throw to refuse the file). */
  config?: (path: string, raw: unknown) => C;
  /** Verify the tensors' CRC-32s (default true). */
  verify?: boolean;
  /** Refuse weights and momentum holding NaN or infinity (default true: a resume needs finite ones). */
  requireFinite?: boolean;
}

/**
 * Reads a training state. The metadata fields a resume reads are checked from the header before
 * any tensor data is read (a wrong type or a non-finite number is an ERR_CHECKPOINT error naming
 * the field), then the checksums and, by default, the finiteness of the weights.
 */
export async function loadTrainingState<C extends object = object>(path: string, options: LoadTrainingStateOptions<C> = {}): Promise<TrainingState<C>> {
  let config: C | undefined;
  const ck = await loadCheckpoint(path, {
    expect: (header) => {
      validateResumeMetadata(path, stateVersion(path, header.metadata), header.optimizer, header.rng, header.recipe);
      if (options.config) config = options.config(path, header.config);
      return typeof options.expect === 'function' ? options.expect(header) : options.expect;
    },
    requireFinite: options.requireFinite ?? true,
    ...(options.verify !== undefined ? { verify: options.verify } : {}),
  });
  // The header check validated the fields (null: not recorded, as absent in version 1).
  const o = (ck.optimizer?.config ?? undefined) as (Nullable<SGDState> & { schedule?: unknown }) | undefined;
  // a resume needs both or neither
  if (o && (o.step == null) !== (o.lr == null)) throw checkpointError(`${path}: metadata 'optimizer' has ${o.step == null ? 'lr but no step' : 'step but no lr'}`);
  const rng = ck.rngState as Nullable<{ dropout: DropoutStream[]; seed: number }> | undefined;
  const order = ck.dataOrder as Nullable<DataPosition> | Int32Array | undefined;
  let optimizer: SGDState | null = null;
  if (o && o.step != null) {
    const { schedule: _, ...sgd } = o;
    optimizer = sgd as SGDState;
  }
  const momentum = ck.optimizer && Object.keys(ck.optimizer.momentum).length > 0 ? ck.optimizer.momentum : null;
  if (momentum) {
    const missing = Object.keys(ck.weights).filter((n) => !(n in momentum));
    if (missing.length > 0) {
      throw checkpointError(
        `${path}: the checkpoint holds momentum for ${Object.keys(momentum).length} of its ${Object.keys(ck.weights).length} weights ` +
          `(none for ${missing.slice(0, 5).map((n) => `'${n}'`).join(', ')}${missing.length > 5 ? ', ...' : ''})`,
      );
    }
  }
  return {
    config: config ?? (ck.config as C),
    step: ck.step,
    epoch: ck.epoch,
    weights: ck.weights,
    momentum,
    optimizer,
    schedule: o?.schedule !== undefined && o.schedule !== null ? (o.schedule as object) : null,
    dropout: rng?.dropout ?? null,
    seed: rng?.seed ?? null,
    dataOrder:
      order !== undefined && !(order instanceof Int32Array)
        ? {
            seed: order.seed ?? rng?.seed ?? 0,
            epoch: order.epoch ?? ck.epoch,
            batch: order.batch ?? 0,
            ...(order.batchSize != null ? { batchSize: order.batchSize } : {}),
            ...(order.worldSize != null ? { worldSize: order.worldSize } : {}),
          }
        : null,
  };
}

/**
 * Restores a training state into `target`. Everything that can refuse the state is checked
 * before anything changes: the weights against the store's names and shapes, the momentum, the
 * dropout streams against the model's Dropout layers, and the schedule's state. Returns the
 * position to continue from. `path` names the file the state came from: its refusals are
 * ERR_CHECKPOINT errors naming it; without it (a state built in memory) they are ERR_ARGUMENT.
 */
export function restoreTrainingState(state: TrainingState, target: TrainingTarget, path?: string): { step: number; epoch: number; batch: number } {
  const refuse = (message: string, cause?: unknown): Error =>
    path === undefined ? Object.assign(alexnetError('ERR_ARGUMENT', `restoreTrainingState: ${message}`), cause === undefined ? {} : { cause }) : checkpointError(`${path}: ${message}`, cause);
  const { store, optimizer, model } = target;
  const schedule = target.schedule ?? null;
  checkWeights(refuse, state, store);
  const names = dropoutNames(model);
  if (state.dropout !== null) {
    if (state.dropout.length !== names.length) {
      throw refuse(`metadata 'rng' has ${state.dropout.length} dropout streams but this model has ${names.length}${names.length > 0 ? ` (${names.join(', ')})` : ''}`);
    }
    state.dropout.forEach((d, i) => {
      if (d === null || typeof d !== 'object' || !Number.isSafeInteger(d.seed) || d.seed < 0 || !Number.isSafeInteger(d.offset) || d.offset < 0) {
        throw refuse(`metadata 'rng'.dropout[${i}] (for '${names[i]}') must be {seed, offset} of non-negative integers, got ${JSON.stringify(d)}`);
      }
    });
  }
  if (target.order !== undefined) checkDataOrder(refuse, state.dataOrder, target.order);
  if (state.schedule !== null) {
    if (schedule === null) throw refuse(`metadata 'optimizer'.schedule holds a schedule's state (${JSON.stringify(state.schedule)?.slice(0, 80)}) but this run has no schedule`);
    try {
      schedule.loadState(state.schedule as never);
    } catch (e) {
      throw refuse(`metadata 'optimizer'.schedule is not valid for this schedule (${(e as Error).message})`, e);
    }
  }
  // From here on nothing refuses the state.
  for (const e of store.layout) {
    copyInto(store.params, e.offset, Tensor.from(state.weights[e.name]!.data as Float32Array, [e.numel], { device: store.device }));
    const m = state.momentum?.[e.name];
    if (m) copyInto(store.momentum, e.offset, Tensor.from(m.data as Float32Array, [e.numel], { device: store.device }));
  }
  if (state.optimizer !== null) optimizer.loadState(state.optimizer);
  if (state.dropout !== null) loadDropoutState(model, Object.fromEntries(names.map((n, i) => [n, state.dropout![i]!])));
  return { step: state.step, epoch: state.dataOrder?.epoch ?? state.epoch, batch: state.dataOrder?.batch ?? 0 };
}

/**
 * A position inside an epoch names a batch of one shuffle cut into shards for one number of
 * ranks and into batches of one size: the run continuing it must shuffle with the same seed,
 * shard for as many ranks and cut the same batches. At an epoch boundary (batch 0) any of them
 * may change: the next epoch is shuffled and sharded afresh.
 */
function checkDataOrder(refuse: (message: string) => Error, order: DataPosition | null, run: { seed: number; batchSize: number; worldSize?: number }): void {
  if (order === null || order.batch === 0) return;
  const where = `the checkpoint stopped inside epoch ${order.epoch + 1} (before its batch ${order.batch + 1})`;
  if (order.seed !== run.seed) throw refuse(`${where} of the data order of seed ${order.seed}; this run's seed is ${run.seed}`);
  if (order.batchSize !== undefined && order.batchSize !== run.batchSize) {
    throw refuse(`${where} at batch size ${order.batchSize}; this run's batch size is ${run.batchSize}`);
  }
  const was = order.worldSize ?? 1;
  const now = run.worldSize ?? 1;
  if (was !== now) {
    throw refuse(`${where} with ${was} data-parallel rank${was > 1 ? 's' : ''}; this run has ${now} (resume with ${was}, or from a checkpoint at an epoch's end)`);
  }
}

/** The weights (and momentum) must be exactly the store's parameters, with their shapes and F32. */
function checkWeights(refuse: (message: string) => Error, state: TrainingState, store: ParameterStore): void {
  const have = new Set(store.layout.map((e) => e.name));
  const missing = store.layout.map((e) => e.name).filter((n) => state.weights[n] === undefined);
  if (missing.length > 0) throw refuse(`missing weight${missing.length > 1 ? 's' : ''} ${missing.map((n) => `'${n}'`).join(', ')}`);
  const extra = Object.keys(state.weights).filter((n) => !have.has(n));
  if (extra.length > 0) throw refuse(`unexpected weight${extra.length > 1 ? 's' : ''} ${extra.slice(0, 5).map((n) => `'${n}'`).join(', ')}${extra.length > 5 ? ', ...' : ''} (not part of this model)`);
  for (const e of store.layout) {
    for (const [kind, t] of [['weight', state.weights[e.name]], ['momentum', state.momentum?.[e.name]]] as const) {
      if (t === undefined) {
        if (kind === 'momentum' && state.momentum !== null) throw refuse(`no momentum for '${e.name}'`);
        continue;
      }
      if (t.shape.join() !== e.shape.join()) throw refuse(`${kind} '${e.name}' has shape [${t.shape.join(', ')}], expected [${e.shape.join(', ')}]`);
      if (!(t.data instanceof Float32Array) || t.data.length !== e.numel) throw refuse(`${kind} '${e.name}' must hold ${e.numel} float32 values`);
    }
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

/** Each field may be absent (version 1) or null (not recorded). */
type Nullable<T> = { [K in keyof T]?: T[K] | null };

/** The training-state version of a file's metadata: 1 without the key (see the file comment). */
function stateVersion(path: string, metadata: Readonly<Record<string, string>>): number {
  const v = metadata[VERSION_KEY];
  if (v === undefined) return 1;
  if (v !== '1' && v !== String(TRAINING_STATE_VERSION)) {
    throw checkpointError(`${path}: metadata '${VERSION_KEY}' is ${JSON.stringify(v).slice(0, 40)}; this version reads training states of versions 1 to ${TRAINING_STATE_VERSION}`);
  }
  return Number(v);
}

/** The fields each section holds from version 2 on (null where not recorded). */
const SECTION_FIELDS = {
  optimizer: ['step', 'lr', 'schedule'],
  rng: ['dropout', 'seed'],
  dataOrder: ['seed', 'epoch', 'batch', 'batchSize', 'worldSize'],
} as const;

/**
 * Checks the fields of the optimizer, rng and data-order metadata that readers use (the SGD
 * hyperparameters, the schedule, the dropout streams, the data position): a wrong type or a
 * non-finite number is an error, not silently ignored; from version 2 on, so is a missing field.
 */
function validateResumeMetadata(path: string, version: number, optimizer: object | undefined, rng: object | undefined, recipe: object | undefined): void {
  for (const [section, value] of [['optimizer', optimizer], ['rng', rng], ['dataOrder', recipe]] as const) {
    if (version < 2 || value === undefined) continue;
    const missing = SECTION_FIELDS[section].filter((k) => !(k in value));
    if (missing.length > 0) {
      throw checkpointError(`${path}: metadata '${section}' has no ${missing.map((k) => `'${k}'`).join(', ')} (a version ${version} training state records every field, null where it has no value: the file was edited or damaged)`);
    }
  }
  const present = (o: Record<string, unknown>, k: string): boolean => k in o && o[k] !== null;
  if (optimizer !== undefined) {
    const o = optimizer as Record<string, unknown>;
    if (present(o, 'lr')) finiteNumber(path, "'optimizer'.lr", o.lr, 0);
    if (present(o, 'step')) safeCount(path, "'optimizer'.step", o.step);
    for (const k of ['momentum', 'weightDecay', 'dampening']) if (k in o) finiteNumber(path, `'optimizer'.${k}`, o[k], 0);
    if (present(o, 'schedule') && (typeof o.schedule !== 'object' || Array.isArray(o.schedule))) {
      throw checkpointError(`${path}: metadata 'optimizer'.schedule must be a schedule's state (an object) or null, got ${JSON.stringify(o.schedule)?.slice(0, 40)}`);
    }
  }
  if (rng !== undefined) {
    const r = rng as Record<string, unknown>;
    if (present(r, 'seed')) finiteNumber(path, "'rng'.seed", r.seed);
    if (present(r, 'dropout')) {
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
    for (const k of ['batchSize', 'worldSize']) {
      if (present(d, k) && (!Number.isSafeInteger(d[k]) || (d[k] as number) < 1)) {
        throw checkpointError(`${path}: metadata 'dataOrder'.${k} must be a positive integer, got ${JSON.stringify(d[k])?.slice(0, 40)}`);
      }
    }
  }
}
