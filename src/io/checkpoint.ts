// Training checkpoints: one safetensors file that PyTorch can read.
//
//   <name>                       the weights under their PyTorch names (features.0.weight, ...)
//   optimizer.momentum.<name>    the SGD momentum buffer of each parameter (when given)
//   trainer.data_order           the epoch's sample permutation, int32 (when given as an array)
//   __metadata__                 {"format": "pt", "checkpoint": "alexnet-node/1", "step": "123",
//                                 "epoch": "2", "config": "{...}", "rng": "{...}",
//                                 "dataOrder": "{...}", "optimizer": "{...}"}
//
// "format": "pt" is what safetensors.torch.save_file writes, so tools that check it accept the
// file. In Python:
//
//   from safetensors.torch import load_file
//   sd = load_file("ckpt.safetensors")
//   model.load_state_dict({k: v for k, v in sd.items() if not k.startswith(("optimizer.", "trainer."))})
//
// The tensors come back as host typed arrays; the trainer makes device Tensors of them.
import { checkpointError } from './errors.js';
import { readSafetensors, writeSafetensors, type SafetensorsInput, type WriteSafetensorsOptions } from './safetensors.js';

export const CHECKPOINT_FORMAT = 'alexnet-node/1';
const MOMENTUM_PREFIX = 'optimizer.momentum.';
const DATA_ORDER_TENSOR = 'trainer.data_order';
const RESERVED_PREFIXES = ['optimizer.', 'trainer.'];

/** Something with a shape that can hand its values to the host: a `Tensor`, for one. */
export interface TensorLike {
  readonly shape: readonly number[];
  data(): Promise<Float32Array | Int32Array>;
}

/** Host values with their shape. */
export interface HostTensor {
  shape: readonly number[];
  data: Float32Array | Int32Array;
}

export type TensorSource = TensorLike | HostTensor;

/** Where the data order is a recipe rather than a list: the shuffle's seed and the position. */
export interface DataOrderRecipe {
  seed: number;
  epoch: number;
  batch: number;
  [key: string]: unknown;
}

export type DataOrder = readonly number[] | Int32Array | DataOrderRecipe;

export interface CheckpointState<T = TensorSource> {
  /** Parameters under their PyTorch state_dict names. */
  weights: Record<string, T>;
  /** Momentum buffers keyed by parameter name; `config` holds the hyperparameters (lr, momentum, ...). */
  optimizer?: { momentum: Record<string, T>; config?: object };
  /** Optimizer steps taken so far. */
  step: number;
  /** Completed epochs (or the current one; the trainer decides and says so in its docs). */
  epoch: number;
  /** The random generators' state, JSON-serialisable. */
  rngState?: object;
  /** The sample order: the permutation itself, or how to rebuild it. */
  dataOrder?: DataOrder;
  /** The model/training configuration, JSON-serialisable. */
  config: object;
}

/** What `loadCheckpoint` returns: every tensor as host values. */
export interface LoadedCheckpoint {
  weights: Record<string, HostTensor>;
  optimizer?: { momentum: Record<string, HostTensor>; config?: object };
  step: number;
  epoch: number;
  rngState?: object;
  dataOrder?: Int32Array | DataOrderRecipe;
  config: object;
  /** All metadata strings as stored (including any written by other tools). */
  metadata: Record<string, string>;
}

export interface LoadCheckpointOptions {
  /** Weights that must be present, with their shapes: a missing one or another shape is an error. */
  expect?: Record<string, readonly number[]>;
}

function isTensorLike(x: TensorSource): x is TensorLike {
  return typeof (x as TensorLike).data === 'function';
}

async function toHost(path: string, what: string, x: TensorSource | undefined): Promise<SafetensorsInput> {
  if (x === undefined || x === null || typeof x !== 'object' || !('shape' in x)) {
    throw checkpointError(`${path}: ${what} must be a Tensor or {shape, data}, got ${x === null ? 'null' : typeof x}`);
  }
  const data = isTensorLike(x) ? await x.data() : x.data;
  const shape = [...x.shape];
  if (data instanceof Float32Array) return { dtype: 'F32', shape, data };
  if (data instanceof Int32Array) return { dtype: 'I32', shape, data };
  throw checkpointError(`${path}: ${what} must hold a Float32Array or an Int32Array`);
}

function jsonString(path: string, field: string, value: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch (e) {
    throw checkpointError(`${path}: ${field} is not JSON-serialisable (${(e as Error).message})`, e);
  }
  if (s === undefined) throw checkpointError(`${path}: ${field} is not JSON-serialisable`);
  return s;
}

function count(path: string, field: string, v: unknown): string {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw checkpointError(`${path}: ${field} must be a non-negative integer, got ${String(v)}`);
  return String(v);
}

/** Writes a checkpoint atomically (see the file comment for the layout). */
export async function saveCheckpoint(path: string, state: CheckpointState, options: WriteSafetensorsOptions = {}): Promise<void> {
  if (state === null || typeof state !== 'object') throw checkpointError(`${path}: saveCheckpoint expects a state object`);
  const tensors: Record<string, SafetensorsInput> = {};
  const weightNames = Object.keys(state.weights ?? {});
  if (weightNames.length === 0) throw checkpointError(`${path}: a checkpoint needs at least one weight`);
  for (const name of weightNames) {
    if (RESERVED_PREFIXES.some((p) => name.startsWith(p))) {
      throw checkpointError(`${path}: weight name '${name}' uses a reserved prefix (${RESERVED_PREFIXES.join(', ')})`);
    }
    tensors[name] = await toHost(path, `weight '${name}'`, state.weights[name]);
  }
  const metadata: Record<string, string> = {
    format: 'pt',
    checkpoint: CHECKPOINT_FORMAT,
    step: count(path, 'step', state.step),
    epoch: count(path, 'epoch', state.epoch),
    config: jsonString(path, 'config', state.config ?? {}),
  };
  if (state.optimizer !== undefined) {
    for (const [name, m] of Object.entries(state.optimizer.momentum ?? {})) {
      const w = tensors[name];
      if (w === undefined) throw checkpointError(`${path}: momentum for '${name}', which is not one of the weights`);
      const h = await toHost(path, `momentum '${name}'`, m);
      if (h.shape.join() !== w.shape.join()) {
        throw checkpointError(`${path}: momentum '${name}' has shape [${h.shape.join(', ')}] but the weight has [${w.shape.join(', ')}]`);
      }
      tensors[MOMENTUM_PREFIX + name] = h;
    }
    metadata.optimizer = jsonString(path, 'optimizer.config', state.optimizer.config ?? {});
  }
  if (state.rngState !== undefined) metadata.rng = jsonString(path, 'rngState', state.rngState);
  if (state.dataOrder !== undefined) {
    const d = state.dataOrder;
    if (d instanceof Int32Array || Array.isArray(d)) {
      const arr = d instanceof Int32Array ? d : Int32Array.from(d as readonly number[]);
      if (!(d instanceof Int32Array) && (d as readonly number[]).some((v, i) => v !== arr[i])) {
        throw checkpointError(`${path}: dataOrder must hold int32 integers`);
      }
      tensors[DATA_ORDER_TENSOR] = { dtype: 'I32', shape: [arr.length], data: arr };
    } else {
      metadata.dataOrder = jsonString(path, 'dataOrder', d);
    }
  }
  await writeSafetensors(path, tensors, metadata, options);
}

function parseJson(path: string, metadata: Record<string, string>, key: string): unknown {
  const s = metadata[key];
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s);
  } catch (e) {
    throw checkpointError(`${path}: metadata '${key}' is not valid JSON (${(e as Error).message})`, e);
  }
}

function parseCount(path: string, metadata: Record<string, string>, key: string): number {
  const s = metadata[key];
  if (s === undefined) throw checkpointError(`${path}: metadata '${key}' is missing (not an alexnet-node checkpoint?)`);
  const v = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(v)) throw checkpointError(`${path}: metadata '${key}' must be a non-negative integer, got '${s}'`);
  return v;
}

function hostOf(path: string, name: string, t: { dtype: string; shape: number[]; data: unknown }): HostTensor {
  if (t.dtype === 'F32' && t.data instanceof Float32Array) return { shape: t.shape, data: t.data };
  if (t.dtype === 'I32' && t.data instanceof Int32Array) return { shape: t.shape, data: t.data };
  throw checkpointError(`${path}: tensor '${name}' has dtype ${t.dtype}; checkpoints hold F32 and I32 only`);
}

/** Reads a checkpoint written by `saveCheckpoint`, checking its structure (and `options.expect`). */
export async function loadCheckpoint(path: string, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  const file = await readSafetensors(path);
  const { metadata } = file;
  const fmt = metadata.checkpoint;
  if (fmt !== CHECKPOINT_FORMAT) {
    throw checkpointError(
      fmt === undefined
        ? `${path}: not an alexnet-node checkpoint (no 'checkpoint' entry in __metadata__)`
        : `${path}: checkpoint format '${fmt}' is not supported (this version reads '${CHECKPOINT_FORMAT}')`,
    );
  }
  const weights: Record<string, HostTensor> = {};
  const momentum: Record<string, HostTensor> = {};
  let dataOrder: Int32Array | DataOrderRecipe | undefined;
  for (const [name, t] of file.tensors) {
    if (name.startsWith(MOMENTUM_PREFIX)) momentum[name.slice(MOMENTUM_PREFIX.length)] = hostOf(path, name, t);
    else if (name === DATA_ORDER_TENSOR) {
      const h = hostOf(path, name, t);
      if (!(h.data instanceof Int32Array) || h.shape.length !== 1) throw checkpointError(`${path}: '${name}' must be a 1-D I32 tensor`);
      dataOrder = h.data;
    } else if (RESERVED_PREFIXES.some((p) => name.startsWith(p))) {
      throw checkpointError(`${path}: unknown tensor '${name}' under a reserved prefix`);
    } else weights[name] = hostOf(path, name, t);
  }
  if (Object.keys(weights).length === 0) throw checkpointError(`${path}: the checkpoint holds no weights`);
  for (const [name, shape] of Object.entries(options.expect ?? {})) {
    const w = weights[name];
    if (w === undefined) {
      const missing = Object.keys(options.expect!).filter((n) => weights[n] === undefined);
      throw checkpointError(`${path}: missing weight${missing.length > 1 ? 's' : ''} ${missing.map((n) => `'${n}'`).join(', ')}`);
    }
    if (w.shape.join() !== shape.join()) {
      throw checkpointError(`${path}: weight '${name}' has shape [${w.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
  }
  for (const [name, m] of Object.entries(momentum)) {
    const w = weights[name];
    if (w === undefined) throw checkpointError(`${path}: momentum for '${name}', which is not one of the weights`);
    if (m.shape.join() !== w.shape.join()) throw checkpointError(`${path}: momentum '${name}' has shape [${m.shape.join(', ')}] but the weight has [${w.shape.join(', ')}]`);
  }

  const object = (key: string): object | undefined => {
    const v = parseJson(path, metadata, key);
    if (v !== undefined && (v === null || typeof v !== 'object')) throw checkpointError(`${path}: metadata '${key}' must be a JSON object`);
    return v as object | undefined;
  };
  const config = object('config');
  if (config === undefined) throw checkpointError(`${path}: metadata 'config' is missing`);
  const out: LoadedCheckpoint = {
    weights,
    step: parseCount(path, metadata, 'step'),
    epoch: parseCount(path, metadata, 'epoch'),
    config,
    metadata,
  };
  const optimizerConfig = object('optimizer');
  if (optimizerConfig !== undefined || Object.keys(momentum).length > 0) {
    out.optimizer = { momentum, ...(optimizerConfig !== undefined ? { config: optimizerConfig } : {}) };
  }
  const rng = object('rng');
  if (rng !== undefined) out.rngState = rng;
  const recipe = object('dataOrder');
  if (recipe !== undefined && dataOrder !== undefined) throw checkpointError(`${path}: both a data-order tensor and a data-order recipe`);
  if (recipe !== undefined) dataOrder = recipe as DataOrderRecipe;
  if (dataOrder !== undefined) out.dataOrder = dataOrder;
  return out;
}
