// The Tensor class: a typed, disposable view of a native buffer on one device.
import { alexnetError } from './errors.js';
import { loadNative, type DType, type NativeTensor, type TypedArrayFor } from './native.js';

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export interface TensorOptions<D extends DType = DType> {
  dtype?: D;
  device?: Device | string;
}

const disposeSymbol: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose');

export class Tensor<D extends DType = DType> {
  readonly #handle: NativeTensor;
  #shape: readonly number[] | undefined;

  /** Wraps a native handle (used by the operator wrappers). */
  constructor(handle: NativeTensor) {
    this.#handle = handle;
  }

  /** A tensor holding a copy of `data` (float32 unless an Int32Array is given or dtype says int32). */
  static from<D extends DType = 'float32'>(
    data: ArrayLike<number> | Float32Array | Int32Array,
    shape: readonly number[],
    options: TensorOptions<D> = {},
  ): Tensor<D> {
    const dtype = options.dtype ?? (data instanceof Int32Array ? 'int32' : 'float32');
    let array: Float32Array | Int32Array;
    if (dtype === 'int32') {
      array = data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
      if (!(data instanceof Int32Array)) {
        for (let i = 0; i < data.length; i++) {
          const v = (data as ArrayLike<number>)[i]!;
          if (!Number.isInteger(v)) throw alexnetError('ERR_DTYPE', `Tensor.from: int32 data must hold integers but element ${i} is ${v}`);
        }
      }
    } else if (dtype === 'float32') {
      array = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    } else {
      throw alexnetError('ERR_DTYPE', `Tensor.from: unsupported dtype '${String(dtype)}'`);
    }
    return new Tensor<D>(loadNative().fromData(array, [...shape], options.device));
  }

  /** An uninitialised tensor. */
  static empty<D extends DType = 'float32'>(shape: readonly number[], options: TensorOptions<D> = {}): Tensor<D> {
    return new Tensor<D>(loadNative().empty([...shape], options.dtype ?? 'float32', options.device));
  }

  static full(shape: readonly number[], value: number, options: TensorOptions<'float32'> = {}): Tensor<'float32'> {
    const t = Tensor.empty(shape, { ...options, dtype: 'float32' });
    loadNative().fill(t.handle, value);
    return t;
  }

  static zeros(shape: readonly number[], options: TensorOptions<'float32'> = {}): Tensor<'float32'> {
    return Tensor.full(shape, 0, options);
  }

  /** The native handle; throws if disposed. */
  get handle(): NativeTensor {
    if (this.#handle.disposed) throw alexnetError('ERR_DISPOSED', 'Tensor has been disposed');
    return this.#handle;
  }

  get shape(): readonly number[] {
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
    return this.#handle.disposed;
  }

  /** Resolves with a copy of the values once all work queued before this call has run. */
  data(): Promise<TypedArrayFor<D>> {
    return this.handle.data() as Promise<TypedArrayFor<D>>;
  }

  /** Blocks the JS thread until the value is ready. Prefer `await data()`. */
  dataSync(): TypedArrayFor<D> {
    return this.handle.dataSync() as TypedArrayFor<D>;
  }

  /** A view sharing storage: `shape`'s elements starting `offset` elements in. */
  view(offset: number, shape: readonly number[]): Tensor<D> {
    return new Tensor<D>(this.handle.view(offset, [...shape]));
  }

  /** The same elements with another shape (sharing storage). One dimension may be -1. */
  reshape(shape: readonly number[]): Tensor<D> {
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
    this.#handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return this.disposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }
}

// For runtimes where Symbol.dispose is not the built-in one.
if (disposeSymbol !== (Symbol as { dispose?: symbol }).dispose) {
  Object.defineProperty(Tensor.prototype, disposeSymbol, { value: Tensor.prototype.dispose });
}

/** Unwraps an operator argument with a message naming the operator and the argument. */
export function handleOf(x: unknown, op: string, name: string): NativeTensor {
  if (!(x instanceof Tensor)) throw alexnetError('ERR_ARGUMENT', `${op}: expected ${name} to be a Tensor`);
  return x.handle;
}

/** Waits until every operation queued so far on `device` has run. */
export function synchronize(device: Device | string = 'cpu'): Promise<void> {
  return loadNative().synchronize(device);
}
