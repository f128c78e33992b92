// The Tensor class: a typed, disposable view of a native buffer on one device.
import { alexnetError } from './errors.js';
import { loadNative, type DType, type NativeTensor, type TypedArrayFor } from './native.js';

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export interface TensorOptions<D extends DType = DType> {
  dtype?: D;
  device?: Device | string;
}

const disposeSymbol: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose');

/** The options object of `op` (undefined -> {}); anything but a plain object is ERR_ARGUMENT. */
export function optionsOf<T extends object>(options: T | undefined, op: string): Partial<T> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw alexnetError('ERR_ARGUMENT', `${op}: expected options to be an object but got ${describe(options)}`);
  }
  return options;
}

/** A shape argument as a fresh array: any iterable of at most 4 entries (the addon checks the values). */
export function shapeOf(shape: unknown, op: string, name = 'shape'): number[] {
  const iterator = shape === null || shape === undefined ? undefined : (shape as Partial<Iterable<unknown>>)[Symbol.iterator];
  if (typeof shape === 'string' || typeof iterator !== 'function') {
    throw alexnetError('ERR_ARGUMENT', `${op}: expected ${name} to be an array of integers but got ${describe(shape)}`);
  }
  const out: unknown[] = [];
  // Entry by entry, so that an endless iterable ends at the fifth entry instead of hanging.
  for (const d of shape as Iterable<unknown>) {
    if (out.length === 4) throw alexnetError('ERR_SHAPE', `${op}: tensors have at most 4 dimensions but ${name} has more`);
    out.push(d);
  }
  return out as number[];
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object' || typeof v === 'function') return `a${typeof v === 'object' ? 'n object' : ' function'}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** options.dtype (default float32), checked so that the error names `op`. */
function dtypeOf(dtype: unknown, op: string): DType {
  if (dtype === undefined) return 'float32';
  if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'bfloat16') {
    throw alexnetError('ERR_DTYPE', `${op}: unsupported dtype ${describe(dtype)} (expected 'float32', 'int32' or 'bfloat16')`);
  }
  return dtype;
}

// What a typed array can hold (V8's limit on 64-bit Node 20), the addon's largest tensor too.
const MAX_NUMEL = 2 ** 32;

/** `data` as a Float32Array or Int32Array for Tensor.from, every element checked. */
function fromArray(data: unknown, dtype: 'float32' | 'int32'): Float32Array | Int32Array {
  const op = 'Tensor.from';
  if (dtype === 'float32' && data instanceof Float32Array) return data;
  if (dtype === 'int32' && data instanceof Int32Array) return data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    throw alexnetError('ERR_DTYPE', `${op}: expected data of numbers but got a ${data.constructor.name} (convert the BigInts first)`);
  }
  if (data === null || typeof data !== 'object' || ArrayBuffer.isView(data) === false && !('length' in data)) {
    throw alexnetError('ERR_ARGUMENT', `${op}: expected data to be an array of numbers or a typed array but got ${describe(data)}`);
  }
  if (data instanceof DataView) throw alexnetError('ERR_ARGUMENT', `${op}: expected data to be an array of numbers or a typed array, not a DataView`);
  const length = (data as ArrayLike<unknown>).length;
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 0 || length > MAX_NUMEL) {
    throw alexnetError('ERR_ARGUMENT', `${op}: data.length must be an integer in [0, ${MAX_NUMEL}] but is ${describe(length)}`);
  }
  const src = data as ArrayLike<unknown>;
  // Float32: every number rounds to the nearest float32, as Float32Array (and PyTorch) do:
  // beyond +-3.4e38 that is +-Infinity; NaN stays NaN. Int32: only integers in int32's range,
  // since Int32Array would wrap 3e9 to -1294967296 without a word.
  const out = dtype === 'int32' ? new Int32Array(length) : new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const v = src[i];
    if (typeof v !== 'number') {
      throw alexnetError('ERR_DTYPE', `${op}: ${dtype} data must hold numbers but element ${i} is ${describe(v)}`);
    }
    if (dtype === 'int32' && !(Number.isInteger(v) && v >= -2147483648 && v <= 2147483647)) {
      throw alexnetError('ERR_DTYPE', `${op}: int32 data must hold integers in [-2147483648, 2147483647] but element ${i} is ${v}`);
    }
    out[i] = v;
  }
  return out;
}

export class Tensor<D extends DType = DType> {
  readonly #handle: NativeTensor;
  #shape: readonly number[] | undefined;

  /** Wraps a native handle (used by the operator wrappers). */
  constructor(handle: NativeTensor) {
    this.#handle = handle;
  }

  /**
   * Whether `x` is a Tensor made by this class (false for a Proxy of one, or an object that only
   * inherits from Tensor.prototype: neither holds a native handle).
   */
  static isTensor(x: unknown): x is Tensor {
    return typeof x === 'object' && x !== null && #handle in x;
  }

  /** this.#handle, or ERR_ARGUMENT when `this` is not a real Tensor (see isTensor). */
  static #own(t: Tensor, what: string): NativeTensor {
    if (!Tensor.isTensor(t)) {
      throw alexnetError('ERR_ARGUMENT', `Tensor.${what}: called on an object that is not a Tensor (a Proxy or Object.create(Tensor.prototype) holds no native tensor)`);
    }
    return t.#handle;
  }

  /**
   * A tensor holding a copy of `data` (float32 unless an Int32Array is given or dtype says
   * int32 or bfloat16). Float32 data rounds to float32 (beyond +-3.4e38: +-Infinity); int32 data
   * must be integers in int32's range; anything but numbers is ERR_DTYPE. For bfloat16, a
   * Uint16Array holds the raw bfloat16 patterns (taken as they are); numbers round to float32
   * and then to bfloat16 (nearest even), as `Tensor.from(data).to('bfloat16')` does.
   */
  static from<D extends DType = 'float32'>(
    data: ArrayLike<number> | Float32Array | Int32Array | Uint16Array,
    shape: readonly number[],
    options: TensorOptions<D> = {},
  ): Tensor<D> {
    const o = optionsOf(options, 'Tensor.from');
    const dtype = o.dtype === undefined && data instanceof Int32Array ? 'int32' : dtypeOf(o.dtype, 'Tensor.from');
    const s = shapeOf(shape, 'Tensor.from');
    if (dtype === 'bfloat16') {
      if (data instanceof Uint16Array) return new Tensor<D>(loadNative().fromData(data, s, o.device));
      return Tensor.#converted(new Tensor<'float32'>(loadNative().fromData(fromArray(data, 'float32'), s, o.device)), 'bfloat16');
    }
    return new Tensor<D>(loadNative().fromData(fromArray(data, dtype), s, o.device));
  }

  /** `t` converted to `dtype`; `t` is disposed (also when the conversion throws). */
  static #converted<D extends DType>(t: Tensor, dtype: DType): Tensor<D> {
    try {
      return new Tensor<D>(loadNative().toDtype(t.handle, dtype));
    } finally {
      t.dispose();
    }
  }

  /** An uninitialised tensor. */
  static empty<D extends DType = 'float32'>(shape: readonly number[], options: TensorOptions<D> = {}): Tensor<D> {
    const o = optionsOf(options, 'Tensor.empty');
    return new Tensor<D>(loadNative().empty(shapeOf(shape, 'Tensor.empty'), dtypeOf(o.dtype, 'Tensor.empty'), o.device));
  }

  /**
   * A tensor filled with `value` (float32 unless dtype says int32, when value must be an integer,
   * or bfloat16, when value rounds to float32 and then to the nearest bfloat16).
   */
  static full<D extends DType = 'float32'>(shape: readonly number[], value: number, options: TensorOptions<D> = {}): Tensor<D> {
    return Tensor.#full('Tensor.full', shape, value, options);
  }

  /** A tensor of zeros (float32 unless dtype says int32 or bfloat16). */
  static zeros<D extends DType = 'float32'>(shape: readonly number[], options: TensorOptions<D> = {}): Tensor<D> {
    return Tensor.#full('Tensor.zeros', shape, 0, options);
  }

  static #full<D extends DType>(op: string, shape: readonly number[], value: number, options: TensorOptions<D> | undefined): Tensor<D> {
    const o = optionsOf(options, op);
    const dtype = dtypeOf(o.dtype, op);
    if (typeof value !== 'number') throw alexnetError('ERR_ARGUMENT', `${op}: expected value to be a number but got ${describe(value)}`);
    if (dtype === 'bfloat16') return Tensor.#converted(Tensor.#full(op, shape, value, { device: o.device }), 'bfloat16');
    if (dtype === 'int32' && !(Number.isInteger(value) && value >= -2147483648 && value <= 2147483647)) {
      throw alexnetError('ERR_ARGUMENT', `${op}: value must be an integer in int32's range for an int32 tensor but got ${value}`);
    }
    const t = new Tensor<D>(loadNative().empty(shapeOf(shape, op), dtype, o.device));
    try {
      loadNative().fill(t.handle, value);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  /** The native handle; throws if disposed. */
  get handle(): NativeTensor {
    if (Tensor.#own(this, 'handle').disposed) throw alexnetError('ERR_DISPOSED', 'Tensor has been disposed');
    return this.#handle;
  }

  get shape(): readonly number[] {
    Tensor.#own(this, 'shape');
    this.#shape ??= Object.freeze(this.handle.shape);
    return this.#shape;
  }
  get rank(): number {
    return this.shape.length;
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get dtype(): D {
    return this.handle.dtype as D;
  }
  get device(): string {
    return this.handle.device;
  }
  get disposed(): boolean {
    return Tensor.#own(this, 'disposed').disposed;
  }

  /** Resolves with a copy of the values once all work queued before this call has run. */
  data(): Promise<TypedArrayFor<D>> {
    return this.handle.data() as Promise<TypedArrayFor<D>>;
  }

  /** Blocks the JS thread until the value is ready. Prefer `await data()`. */
  dataSync(): TypedArrayFor<D> {
    return this.handle.dataSync() as TypedArrayFor<D>;
  }

  /**
   * A new tensor holding this one's values as `dtype` (PyTorch's `tensor.to(dtype)`, except that
   * the same dtype gives a copy, never `this`): float32 -> bfloat16 rounds to nearest, ties to
   * even (NaN stays a quiet NaN with its sign, +-inf stay, values past the largest bfloat16
   * become +-inf, subnormals round like normals); bfloat16 -> float32 is exact. int32 converts
   * to nothing else (ERR_DTYPE).
   */
  to<T extends DType>(dtype: T): Tensor<T> {
    Tensor.#own(this, 'to');
    if (typeof dtype !== 'string') throw alexnetError('ERR_DTYPE', `to: expected dtype to be a string but got ${describe(dtype)}`);
    return new Tensor<T>(loadNative().toDtype(this.handle, dtypeOf(dtype, 'to')));
  }

  /** `to('bfloat16')`, PyTorch's `tensor.bfloat16()`. */
  bfloat16(): Tensor<'bfloat16'> {
    return this.to('bfloat16');
  }

  /** `to('float32')`, PyTorch's `tensor.float()`. */
  float(): Tensor<'float32'> {
    return this.to('float32');
  }

  /** A view sharing storage: `shape`'s elements starting `offset` elements in. */
  view(offset: number, shape: readonly number[]): Tensor<D> {
    const h = this.handle;
    return new Tensor<D>(h.view(offset, shapeOf(shape, 'view')));
  }

  /** The same elements with another shape (sharing storage). One dimension may be -1. */
  reshape(shape: readonly number[]): Tensor<D> {
    Tensor.#own(this, 'reshape');
    shape = shapeOf(shape, 'reshape');
    const bad = shape.findIndex((d) => typeof d !== 'number' || !(d === -1 || (Number.isInteger(d) && d >= 0)));
    if (bad >= 0) {
      throw alexnetError('ERR_SHAPE', `reshape: shape must hold non-negative integers (or one -1) but entry ${bad} is ${describe(shape[bad])}`);
    }
    const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const holes = shape.filter((d) => d === -1).length;
    if (holes > 1) throw alexnetError('ERR_SHAPE', 'reshape: only one dimension may be -1');
    const full = shape.map((d) => (d === -1 ? this.numel / known : d));
    if (full.some((d) => !Number.isInteger(d) || d < 0) || full.reduce((a, b) => a * b, 1) !== this.numel) {
      throw alexnetError('ERR_SHAPE', `reshape: cannot view shape [${this.shape.join(', ')}] as [${shape.join(', ')}]`);
    }
    return this.view(0, full);
  }

  /** Frees the native memory (once the work queued on it has run). Idempotent. */
  dispose(): void {
    Tensor.#own(this, 'dispose').dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    if (!Tensor.isTensor(this)) return 'Tensor(not a tensor)';
    return this.disposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }
}

// For runtimes where Symbol.dispose is not the built-in one.
if (disposeSymbol !== (Symbol as { dispose?: symbol }).dispose) {
  Object.defineProperty(Tensor.prototype, disposeSymbol, { value: Tensor.prototype.dispose });
}

/** Unwraps an operator argument with a message naming the operator and the argument. */
export function handleOf(x: unknown, op: string, name: string): NativeTensor {
  if (!Tensor.isTensor(x)) throw alexnetError('ERR_ARGUMENT', `${op}: expected ${name} to be a Tensor`);
  return x.handle;
}

/** Waits until every operation queued so far on `device` has run. */
export function synchronize(device: Device | string = 'cpu'): Promise<void> {
  return loadNative().synchronize(device);
}

/** A device's tensor storage in bytes (see memoryStats). */
export interface MemoryStats {
  device: string;
  /** held by tensors now (PyTorch's memory_allocated) */
  usedBytes: number;
  /** kept by the allocator for tensors: used plus its cache of freed blocks (memory_reserved) */
  reservedBytes: number;
  /** the highest usedBytes since the start or the last reset (max_memory_allocated) */
  peakUsedBytes: number;
  /** the highest reservedBytes likewise (max_memory_reserved) */
  peakReservedBytes: number;
}

/**
 * The tensor storage of `device` as of the work queued so far; `resetPeak` starts the peaks
 * again from the current values (after reading them), as torch.cuda.reset_peak_memory_stats.
 * Operators' scratch (cuDNN workspaces, packed GEMM panels) is not tensor storage.
 */
export function memoryStats(device: Device | string = 'cpu', options: { resetPeak?: boolean } = {}): MemoryStats {
  return loadNative().memoryStats(device, options?.resetPeak ?? false);
}

/**
 * What a warmed-up training step must not do, counted per device since the process started
 * (compare two readings; native/core/device.h DeviceCounters says where each is counted).
 */
export interface DeviceCounters {
  device: string;
  /**
   * Requests for memory that reached the system or the driver: on the CPU the tensor
   * allocator's misses (its cache of freed blocks had none of the size) and the growth of a
   * kernel's scratch or derived-weights buffer; on CUDA cudaMalloc, a cudaMallocAsync that grew
   * the memory pool, cudaMallocHost of pinned staging.
   */
  allocations: number;
  /**
   * Blocking host waits on the device: dataSync(), the settings that wait for the queue; on
   * CUDA every cudaStreamSynchronize of the runtime.
   */
  synchronizations: number;
  /** Asynchronous read-backs: data() and synchronize() (the host is not blocked). */
  reads: number;
}

/** The counters of `device` (see DeviceCounters). */
export function deviceCounters(device: Device | string = 'cpu'): DeviceCounters {
  return loadNative().deviceCounters(device);
}
