// The parameter store (docs/architecture.md, decision 5): every parameter of a module, in registration order
// (the order of namedParameters(), i.e. of the state dict), laid out in ONE contiguous params
// buffer, with a gradient buffer and a momentum buffer of the same layout. Each Parameter's
// `data` and `grad` are rebound to views of those buffers, so an optimizer step is one sgdStep
// call, zeroing the gradients is one fill, and a checkpoint is three flat buffers plus the layout.
//
// Alignment: every parameter starts on a 256-byte boundary (a multiple of ALIGN_ELEMENTS floats
// from the start of the buffers, whose storage is itself at least 256-byte aligned on every
// device), so each weight and gradient view handed to cuDNN, cuBLAS or a vectorised CPU kernel is
// aligned as those libraries prefer, whatever the sizes of a custom network's layers. The gaps
// between parameters are zeros in all three buffers and stay zero under SGD (zero gradient, zero
// weight, zero momentum; weight decay of zero is zero). Checkpoints store each parameter by name,
// so the gaps never reach a file and the checkpoint format does not depend on them.
import { alexnetError } from '../errors.js';
import { copy, fill } from '../ops/elementwise.js';
import { Tensor, type Device } from '../tensor.js';
import { fmt, type F32, type Module, type Parameter } from './module.js';

export interface ParameterLayoutEntry {
  /** dotted state-dict name, e.g. 'features.0.weight' */
  name: string;
  /** first element inside the flat buffers */
  offset: number;
  shape: readonly number[];
  numel: number;
}

export interface ParameterStoreOptions {
  /** where the buffers live (default: the device of the first parameter, or 'cpu') */
  device?: Device | string;
  /** also keep the bfloat16 copy of the params buffer (precision 'bf16'; see enableBf16Copy) */
  bf16Copy?: boolean;
}

/** Parameters start at multiples of this many float32 elements (256 bytes). */
export const PARAMETER_ALIGN_ELEMENTS = 64;

const alignUp = (n: number): number => Math.ceil(n / PARAMETER_ALIGN_ELEMENTS) * PARAMETER_ALIGN_ELEMENTS;

/**
 * Runs `build`, which passes every tensor it makes through `keep`; when it throws, those tensors
 * are disposed before the error goes on (all of them made, or none left behind).
 */
function allOrNothing<T>(build: (keep: (t: F32) => F32) => T): T {
  const made: F32[] = [];
  try {
    return build((t) => (made.push(t), t));
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  }
}

export class ParameterStore {
  /** all parameter values, flat [numel] (zeros in the alignment gaps between parameters) */
  readonly params: F32;
  /** all gradients, same layout */
  readonly grads: F32;
  /** the optimizer's momentum buffer (PyTorch's b or Krizhevsky's v), same layout, zeros at first */
  readonly momentum: F32;
  readonly layout: readonly ParameterLayoutEntry[];
  /** elements in each flat buffer, alignment gaps included */
  readonly numel: number;
  /** elements that belong to parameters (numel less the alignment gaps) */
  readonly parameterCount: number;
  readonly device: string;
  readonly #entries: readonly [string, Parameter][];
  /** the devices of each Parameter's data and grad before create (unbind puts them back there) */
  readonly #homes: readonly (readonly [string, string])[];
  #params16: Tensor<'bfloat16'> | null = null;
  #disposed = false;

  private constructor(params: F32, grads: F32, momentum: F32, layout: ParameterLayoutEntry[], entries: [string, Parameter][], homes: [string, string][]) {
    this.params = params;
    this.grads = grads;
    this.momentum = momentum;
    this.layout = Object.freeze(layout.map((e) => Object.freeze(e)));
    this.numel = params.numel;
    this.parameterCount = layout.reduce((n, e) => n + e.numel, 0);
    this.device = params.device;
    this.#entries = entries;
    this.#homes = homes;
  }

  /**
   * Moves every parameter of `module` into one store: the current values (and gradients) are
   * copied in, the Parameters' old tensors are disposed and `data` / `grad` become views.
   */
  static create(module: Module, options: ParameterStoreOptions = {}): ParameterStore {
    const entries = module.namedParameters();
    if (entries.length === 0) throw alexnetError('ERR_ARGUMENT', 'ParameterStore.create: the module has no parameters');
    const device = String(options.device ?? entries[0]![1].data.device);
    const layout: ParameterLayoutEntry[] = [];
    let total = 0;
    for (const [name, p] of entries) {
      total = alignUp(total);
      layout.push({ name, offset: total, shape: [...p.shape], numel: p.numel });
      total += p.numel;
    }
    const homes = entries.map(([, p]): [string, string] => [p.data.device, p.grad.device]);
    const onDevice = homes.every(([d, g]) => d === device && g === device);
    // The buffers and views are made (and filled) before any Parameter is rebound: a failure
    // here (out of memory, an unknown device) leaves the module as it was.
    const { params, grads, momentum, views } = allOrNothing((keep) => {
      let params: F32;
      let grads: F32;
      if (onDevice) {
        // zeros: the alignment gaps must hold finite values (a checkpoint checks every weight)
        params = keep(Tensor.zeros([total], { device }));
        grads = keep(Tensor.zeros([total], { device }));
      } else {
        // Another device: gather on the host once (a one-time, synchronous setup step).
        const hostP = new Float32Array(total);
        const hostG = new Float32Array(total);
        entries.forEach(([, p], i) => {
          const e = layout[i]!;
          hostP.set(p.data.dataSync() as Float32Array, e.offset);
          hostG.set(p.grad.dataSync() as Float32Array, e.offset);
        });
        params = keep(Tensor.from(hostP, [total], { device }));
        grads = keep(Tensor.from(hostG, [total], { device }));
      }
      const views = entries.map(([, p], i): [F32, F32] => {
        const e = layout[i]!;
        const v: [F32, F32] = [keep(params.view(e.offset, e.shape)), keep(grads.view(e.offset, e.shape))];
        if (onDevice) {
          copy(v[0], p.data);
          copy(v[1], p.grad);
        }
        return v;
      });
      return { params, grads, momentum: keep(Tensor.zeros([total], { device })), views };
    });
    entries.forEach(([, p], i) => {
      p.data.dispose();
      p.grad.dispose();
      [p.data, p.grad] = views[i]!;
    });
    const store = new ParameterStore(params, grads, momentum, layout, entries, homes);
    if (options.bf16Copy === true) {
      try {
        store.enableBf16Copy();
      } catch (e) {
        store.unbind();
        throw e;
      }
    }
    return store;
  }

  /**
   * The bfloat16 copy of `params` (same layout; precision 'bf16'), or null until
   * enableBf16Copy. The SGD step writes it in the pass that updates `params`; each Parameter's
   * bf16() is a view of it, converted again only after some other write to `params` (a load).
   */
  get params16(): Tensor<'bfloat16'> | null {
    return this.#params16;
  }

  /** Makes params16 (once) and binds every Parameter's bfloat16 copy to a view of it. Returns it. */
  enableBf16Copy(): Tensor<'bfloat16'> {
    this.#check();
    if (this.#params16 !== null) return this.#params16;
    const p16 = this.params.to('bfloat16');
    this.#params16 = p16;
    const whole = { copy: p16, source: this.params };
    this.#entries.forEach(([, p], i) => {
      const e = this.layout[i]!;
      p.bindBf16(p16.view(e.offset, e.shape), whole);
    });
    return p16;
  }

  /** Zeroes every gradient: one fill over the grads buffer. */
  zeroGrad(): void {
    this.#check();
    fill(this.grads, 0);
  }

  /** The layout entry of a parameter by its dotted name. */
  entry(name: string): ParameterLayoutEntry {
    const e = this.layout.find((x) => x.name === name);
    if (e === undefined) throw alexnetError('ERR_ARGUMENT', `ParameterStore: no parameter named '${name}'`);
    return e;
  }

  /** The Parameters, by name, in layout order. */
  namedParameters(): [string, Parameter][] {
    return [...this.#entries];
  }

  /** Checks that every Parameter is still bound to this store (nobody replaced data / grad). */
  verifyBindings(): void {
    this.#entries.forEach(([name, p], i) => {
      const e = this.layout[i]!;
      if (p.data.disposed || p.grad.disposed || p.data.numel !== e.numel) {
        throw alexnetError('ERR_ARGUMENT', `ParameterStore: parameter '${name}' ${fmt(e.shape)} is no longer bound to the store`);
      }
    });
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Frees the three buffers (the parameters' views stop working). Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const [, p] of this.#entries) {
      p.data.dispose();
      p.grad.dispose();
      p.disposeBf16();
    }
    this.#params16?.dispose();
    this.params.dispose();
    this.grads.dispose();
    this.momentum.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Undoes create (a Trainer whose options are refused after it made its store): every Parameter
   * gets its own tensors again, copies of its current values and gradient on the devices they
   * were on before create, and the buffers are freed. The module is then as it was before create
   * (the bfloat16 copies are made again on first use). Copies are made before anything is
   * rebound: when one fails, the store is still whole.
   */
  unbind(): void {
    this.#check();
    const own = (t: F32, device: string): F32 => (t.device === device ? t.to('float32') : Tensor.from(t.dataSync(), t.shape, { device }));
    const copies = allOrNothing((keep) =>
      this.#entries.map(([, p], i): [F32, F32] => {
        const [d, g] = this.#homes[i]!;
        return [keep(own(p.data, d)), keep(own(p.grad, g))];
      }),
    );
    this.dispose(); // the views, the bfloat16 copies and the buffers
    this.#entries.forEach(([, p], i) => {
      [p.data, p.grad] = copies[i]!;
    });
  }

  #check(): void {
    if (this.#disposed) throw alexnetError('ERR_DISPOSED', 'ParameterStore has been disposed');
  }
}
