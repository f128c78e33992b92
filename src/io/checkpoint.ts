// Training checkpoints: one safetensors file that PyTorch can read.
//
//   <name>                       the weights under their PyTorch names (features.0.weight, ...)
//   optimizer.momentum.<name>    the SGD momentum buffer of each parameter (when given)
//   trainer.data_order           the epoch's sample permutation, int32 (when given as an array)
//   __metadata__                 {"format": "pt", "checkpoint": "alexnet-node/1", "step": "123",
//                                 "epoch": "2", "config": "{...}", "rng": "{...}",
//                                 "dataOrder": "{...}", "optimizer": "{...}"}
//                                (plus CheckpointState.metadata: saveTrainingState's "stateVersion")
//
// "format": "pt" is what safetensors.torch.save_file writes, so tools that check it accept the
// file. In Python:
//
//   from safetensors.torch import load_file
//   sd = load_file("ckpt.safetensors")
//   model.load_state_dict({k: v for k, v in sd.items() if not k.startswith(("optimizer.", "trainer."))})
//
// The tensors come back as host typed arrays; the trainer makes device Tensors of them.
// Weights and momentum may be stored as BF16 (what saveCheckpoint writes for a bfloat16 Tensor,
// and what safetensors.torch writes for torch.bfloat16): loading widens them to float32, which
// is exact, so every reader of a checkpoint keeps getting Float32Arrays.
//
// Loading is defensive, as a checkpoint may come from anywhere: the header (tensor names,
// dtypes, shapes) and every metadata field are validated BEFORE any tensor data is read, against
// `expect` when given (a resume or an eval knows exactly which tensors it needs), so a crafted
// header declaring huge tensors is refused without allocating them. Each tensor's CRC-32 is
// verified (see safetensors.ts; `verify: false` skips it), and `requireFinite` refuses weights
// holding NaN or infinity, naming the tensor and the file.
import { checkpointError } from './errors.js';
import {
  readSafetensors,
  writeSafetensors,
  type SafetensorsHeaderEntry,
  type SafetensorsInput,
  type WriteSafetensorsOptions,
} from './safetensors.js';

export const CHECKPOINT_FORMAT = 'alexnet-node/1';
const MOMENTUM_PREFIX = 'optimizer.momentum.';
const DATA_ORDER_TENSOR = 'trainer.data_order';
const RESERVED_PREFIXES = ['optimizer.', 'trainer.'];
/** The metadata keys the format itself writes (CheckpointState.metadata may not set them). */
const METADATA_KEYS = ['format', 'checkpoint', 'step', 'epoch', 'config', 'optimizer', 'rng', 'dataOrder'];

/** Something with a shape that can hand its values to the host: a `Tensor`, for one. */
export interface TensorLike {
  readonly shape: readonly number[];
  /** 'bfloat16' makes data()'s Uint16Array raw bfloat16 patterns, written as BF16 */
  readonly dtype?: string;
  data(): Promise<Float32Array | Int32Array | Uint16Array>;
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
  /** Further metadata strings (keys the format uses above are refused); loadCheckpoint returns them in `metadata`. */
  metadata?: Record<string, string>;
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
  /** All metadata strings as stored (including any written by other tools; not the checksums). */
  metadata: Record<string, string>;
  /** Whether the tensors' CRC-32s were verified ('absent': a file written before checksums). */
  checksums: 'verified' | 'absent' | 'skipped';
}

/** What an `expect` function sees: the validated header, before any tensor data is read. */
export interface CheckpointHeader {
  config: object;
  step: number;
  epoch: number;
  /** The parsed 'optimizer', 'rng' and 'dataOrder' metadata objects, when present. */
  optimizer?: object;
  rng?: object;
  recipe?: object;
  tensors: ReadonlyMap<string, SafetensorsHeaderEntry>;
  metadata: Readonly<Record<string, string>>;
}

export interface LoadCheckpointOptions {
  /**
   * The weights the caller needs, with their shapes (or a function of the header that returns
   * them, and may throw to refuse the file). Checked before any data is read: a missing weight,
   * another shape, or a weight the caller does not know is an error.
   */
  expect?: Record<string, readonly number[]> | ((header: CheckpointHeader) => Record<string, readonly number[]> | undefined);
  /** Verify the tensors' CRC-32s (default true). */
  verify?: boolean;
  /** Refuse weights (and momentum) holding NaN or infinity (default false). */
  requireFinite?: boolean;
}

/** Largest element count of the data-order tensor (a permutation of the training set). */
export const MAX_DATA_ORDER = 100_000_000;

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
  if (data instanceof Uint16Array && isTensorLike(x) && x.dtype === 'bfloat16') return { dtype: 'BF16', shape, data };
  throw checkpointError(`${path}: ${what} must hold a Float32Array or an Int32Array (or be a bfloat16 Tensor)`);
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
  for (const [key, value] of Object.entries(state.metadata ?? {})) {
    if (METADATA_KEYS.includes(key)) throw checkpointError(`${path}: metadata key '${key}' is the checkpoint format's own`);
    if (typeof value !== 'string') throw checkpointError(`${path}: metadata '${key}' must be a string, got ${typeof value}`);
    metadata[key] = value;
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
  if (t.dtype === 'BF16' && t.data instanceof Uint16Array) {
    // bfloat16 is float32's top half: widening is a shift, exact for every pattern.
    const wide = new Uint32Array(t.data.length);
    for (let i = 0; i < wide.length; i++) wide[i] = t.data[i]! << 16;
    return { shape: t.shape, data: new Float32Array(wide.buffer) };
  }
  throw checkpointError(`${path}: tensor '${name}' has dtype ${t.dtype}; checkpoints hold F32, BF16 and I32 only`);
}

function countNonFinite(a: Float32Array): number {
  let bad = 0;
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) bad++;
  return bad;
}

/** Reads a checkpoint written by `saveCheckpoint`, checking its structure (and `options.expect`). */
export async function loadCheckpoint(path: string, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  let parsed: { step: number; epoch: number; config: object; optimizer?: object; rng?: object; recipe?: object } | undefined;
  const inspect = (tensors: ReadonlyMap<string, SafetensorsHeaderEntry>, metadata: Readonly<Record<string, string>>): void => {
    const fmt = metadata.checkpoint;
    if (fmt !== CHECKPOINT_FORMAT) {
      throw checkpointError(
        fmt === undefined
          ? `${path}: not an alexnet-node checkpoint (no 'checkpoint' entry in __metadata__)`
          : `${path}: checkpoint format '${fmt}' is not supported (this version reads '${CHECKPOINT_FORMAT}')`,
      );
    }
    const object = (key: string): object | undefined => {
      const v = parseJson(path, metadata, key);
      if (v !== undefined && (v === null || typeof v !== 'object' || Array.isArray(v))) throw checkpointError(`${path}: metadata '${key}' must be a JSON object`);
      return v as object | undefined;
    };
    const config = object('config');
    if (config === undefined) throw checkpointError(`${path}: metadata 'config' is missing`);
    parsed = { step: parseCount(path, metadata, 'step'), epoch: parseCount(path, metadata, 'epoch'), config };
    const optimizer = object('optimizer');
    const rng = object('rng');
    const recipe = object('dataOrder');
    if (optimizer !== undefined) parsed.optimizer = optimizer;
    if (rng !== undefined) parsed.rng = rng;
    if (recipe !== undefined) parsed.recipe = recipe;

    // Tensor kinds, dtypes and the pairing of momentum with weights, from the header alone.
    const weightShapes = new Map<string, readonly number[]>();
    for (const [name, t] of tensors) {
      if (t.dtype !== 'F32' && t.dtype !== 'BF16' && t.dtype !== 'I32') throw checkpointError(`${path}: tensor '${name}' has dtype ${t.dtype}; checkpoints hold F32, BF16 and I32 only`);
      if (name === DATA_ORDER_TENSOR) {
        if (t.dtype !== 'I32' || t.shape.length !== 1) throw checkpointError(`${path}: '${name}' must be a 1-D I32 tensor`);
        if (t.shape[0]! > MAX_DATA_ORDER) throw checkpointError(`${path}: '${name}' holds ${t.shape[0]} entries, more than the ${MAX_DATA_ORDER} this reader accepts`);
        if (recipe !== undefined) throw checkpointError(`${path}: both a data-order tensor and a data-order recipe`);
      } else if (name.startsWith(MOMENTUM_PREFIX)) {
        continue;
      } else if (RESERVED_PREFIXES.some((p) => name.startsWith(p))) {
        throw checkpointError(`${path}: unknown tensor '${name}' under a reserved prefix`);
      } else weightShapes.set(name, t.shape);
    }
    if (weightShapes.size === 0) throw checkpointError(`${path}: the checkpoint holds no weights`);
    for (const [name, t] of tensors) {
      if (!name.startsWith(MOMENTUM_PREFIX)) continue;
      const w = name.slice(MOMENTUM_PREFIX.length);
      const ws = weightShapes.get(w);
      if (ws === undefined) throw checkpointError(`${path}: momentum for '${w}', which is not one of the weights`);
      if (t.shape.join() !== ws.join()) throw checkpointError(`${path}: momentum '${w}' has shape [${t.shape.join(', ')}] but the weight has [${ws.join(', ')}]`);
    }

    const expect = typeof options.expect === 'function' ? options.expect({ ...parsed, tensors, metadata }) : options.expect;
    if (expect !== undefined) {
      const missing = Object.keys(expect).filter((n) => !weightShapes.has(n));
      if (missing.length > 0) throw checkpointError(`${path}: missing weight${missing.length > 1 ? 's' : ''} ${missing.map((n) => `'${n}'`).join(', ')}`);
      for (const [name, shape] of Object.entries(expect)) {
        const got = weightShapes.get(name)!;
        if (got.join() !== shape.join()) throw checkpointError(`${path}: weight '${name}' has shape [${got.join(', ')}], expected [${shape.join(', ')}]`);
        const dt = tensors.get(name)!.dtype;
        if (dt !== 'F32' && dt !== 'BF16') throw checkpointError(`${path}: weight '${name}' has dtype ${dt}, expected F32 (or BF16, widened to float32)`);
      }
      const extra = [...weightShapes.keys()].filter((n) => !Object.prototype.hasOwnProperty.call(expect, n));
      if (extra.length > 0) throw checkpointError(`${path}: unexpected weight${extra.length > 1 ? 's' : ''} ${extra.slice(0, 5).map((n) => `'${n}'`).join(', ')}${extra.length > 5 ? ', ...' : ''} (not part of this model)`);
    }
  };

  const file = await readSafetensors(path, { inspect, ...(options.verify !== undefined ? { verify: options.verify } : {}) });
  const p = parsed!;
  const weights: Record<string, HostTensor> = {};
  const momentum: Record<string, HostTensor> = {};
  let dataOrder: Int32Array | DataOrderRecipe | undefined;
  for (const [name, t] of file.tensors) {
    if (name.startsWith(MOMENTUM_PREFIX)) momentum[name.slice(MOMENTUM_PREFIX.length)] = hostOf(path, name, t);
    else if (name === DATA_ORDER_TENSOR) dataOrder = hostOf(path, name, t).data as Int32Array;
    else weights[name] = hostOf(path, name, t);
  }
  if (options.requireFinite) {
    for (const [kind, dict] of [['weight', weights], ['momentum', momentum]] as const) {
      for (const [name, t] of Object.entries(dict)) {
        if (!(t.data instanceof Float32Array)) continue;
        const bad = countNonFinite(t.data);
        if (bad > 0) {
          throw checkpointError(
            `${path}: ${kind} '${name}' holds ${bad} NaN or infinite value${bad > 1 ? 's' : ''} (of ${t.data.length}): ` +
              'the checkpoint FILE holds a diverged or corrupted model; use an earlier checkpoint',
          );
        }
      }
    }
  }
  const out: LoadedCheckpoint = { weights, step: p.step, epoch: p.epoch, config: p.config, metadata: file.metadata, checksums: file.checksums };
  if (p.optimizer !== undefined || Object.keys(momentum).length > 0) {
    out.optimizer = { momentum, ...(p.optimizer !== undefined ? { config: p.optimizer } : {}) };
  }
  if (p.rng !== undefined) out.rngState = p.rng;
  if (p.recipe !== undefined) dataOrder = p.recipe as DataOrderRecipe;
  if (dataOrder !== undefined) out.dataOrder = dataOrder;
  return out;
}

const HEADER_ONLY = Symbol('header only');

/**
 * The validated header of a checkpoint (config, step, epoch, tensor entries, metadata) without
 * reading any tensor data: what a caller needs to decide what to build before loading.
 */
export async function readCheckpointHeader(path: string): Promise<CheckpointHeader> {
  let header: CheckpointHeader | undefined;
  try {
    await loadCheckpoint(path, {
      expect: (h) => {
        header = h;
        throw Object.assign(new Error('header read'), { code: HEADER_ONLY });
      },
    });
  } catch (e) {
    if ((e as { code?: unknown }).code !== HEADER_ONLY) throw e;
  }
  return header!;
}
