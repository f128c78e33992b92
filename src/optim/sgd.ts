// SGD with momentum over a ParameterStore: one sgdStep call updates every parameter. The two
// conventions are named (DESIGN.md, native/cpu/sgd.h):
//   'pytorch' (default): g' = g + wd w; b = first ? g' : mu b + (1 - dampening) g';
//                        (nesterov: g' += mu b, else g' = b); w -= lr g'
//   'krizhevsky':        v = mu v - lr (1 - dampening) (g + wd w); w += v
// They agree while lr is constant and differ once it changes.
import { alexnetError } from '../errors.js';
import type { ParameterStore } from '../nn/store.js';
import { sgdStep, type SgdConvention } from '../ops/sgd.js';

export interface SGDOptions {
  lr: number;
  /** default 0.9 (the paper's) */
  momentum?: number;
  /** default 0 */
  dampening?: number;
  /** L2 weight decay, default 5e-4 (the paper's) */
  weightDecay?: number;
  /** PyTorch convention only; default false */
  nesterov?: boolean;
  /** default 'pytorch' */
  convention?: SgdConvention;
}

/** What a checkpoint keeps of the optimizer (the momentum buffer itself is store.momentum). */
export interface SGDState {
  /** steps taken so far (0: the next step is the first, which starts PyTorch's buffer at g') */
  step: number;
  lr: number;
}

function finite(v: unknown, what: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw alexnetError('ERR_ARGUMENT', `SGD: ${what} must be a finite number >= ${min}, got ${String(v)}`);
  return v;
}

export class SGD {
  readonly store: ParameterStore;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  readonly convention: SgdConvention;
  #lr: number;
  #step = 0;

  constructor(store: ParameterStore, options: SGDOptions) {
    if (store === null || typeof store !== 'object' || !('params' in store) || !('grads' in store)) {
      throw alexnetError('ERR_ARGUMENT', 'SGD: expected first argument to be a ParameterStore');
    }
    if (options === null || typeof options !== 'object') throw alexnetError('ERR_ARGUMENT', 'SGD: expected options with at least { lr }');
    this.store = store;
    this.#lr = finite(options.lr, 'lr');
    this.momentum = finite(options.momentum ?? 0.9, 'momentum');
    this.dampening = finite(options.dampening ?? 0, 'dampening');
    this.weightDecay = finite(options.weightDecay ?? 5e-4, 'weightDecay');
    this.nesterov = options.nesterov ?? false;
    this.convention = options.convention ?? 'pytorch';
    if (this.convention !== 'pytorch' && this.convention !== 'krizhevsky') {
      throw alexnetError('ERR_ARGUMENT', `SGD: convention must be 'pytorch' or 'krizhevsky', got ${String(this.convention)}`);
    }
    if (this.nesterov && (this.convention !== 'pytorch' || this.momentum <= 0 || this.dampening !== 0)) {
      throw alexnetError('ERR_ARGUMENT', "SGD: nesterov needs convention 'pytorch', momentum > 0 and dampening 0");
    }
  }

  get lr(): number {
    return this.#lr;
  }
  set lr(v: number) {
    this.#lr = finite(v, 'lr');
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this.#step;
  }

  /** One update of every parameter from store.grads (one sgdStep call over the flat buffers). */
  step(): void {
    if (this.store.disposed) throw alexnetError('ERR_DISPOSED', 'SGD.step: the parameter store has been disposed');
    sgdStep(this.store.params, this.store.grads, this.momentum === 0 ? null : this.store.momentum, {
      lr: this.#lr,
      momentum: this.momentum,
      dampening: this.dampening,
      weightDecay: this.weightDecay,
      nesterov: this.nesterov,
      convention: this.convention,
      firstStep: this.#step === 0,
    });
    this.#step++;
  }

  /** Zeroes every gradient (one fill). */
  zeroGrad(): void {
    this.store.zeroGrad();
  }

  state(): SGDState {
    return { step: this.#step, lr: this.#lr };
  }

  /** Restores state() (restore store.momentum alongside, or the next step starts from zeros). */
  loadState(state: SGDState): void {
    if (state === null || typeof state !== 'object' || !Number.isSafeInteger(state.step) || state.step < 0) {
      throw alexnetError('ERR_ARGUMENT', `SGD.loadState: expected { step: integer >= 0, lr }, got ${JSON.stringify(state)}`);
    }
    this.lr = state.lr;
    this.#step = state.step;
  }
}
