// SGD with momentum over a ParameterStore: one sgdStep call updates every parameter. The two
// conventions, 'pytorch' (default) and 'krizhevsky', agree while lr is constant and differ once it
// changes; their formulas are stated once, in native/core/sgd.h. The options are checked once,
// by the addon (sgdCheckOptions runs sgdStep's own checks), so a bad one fails at construction.
import { alexnetError } from '../errors.js';
import { loadNative } from '../native.js';
import type { ParameterStore } from '../nn/store.js';
import { lrTensor, sgdStep, writeLrTensor, type SgdConvention, type SgdStepOptions } from '../ops/sgd.js';
import type { Tensor } from '../tensor.js';

/**
 * Options of the SGD optimizer (torch.optim.SGD's, named in camelCase): sgdStep's fields less
 * firstStep, which the class tracks itself. Two defaults differ from torch.optim.SGD's (momentum 0,
 * weight_decay 0) and from the raw sgdStep operator's (all 0): momentum 0.9 and weight decay 5e-4,
 * the recipe of Krizhevsky et al. 2012, because this package trains AlexNet. Every other default
 * is sgdStep's: dampening 0, nesterov false, convention 'pytorch'.
 */
export type SGDOptions = Omit<SgdStepOptions, 'firstStep'>;

/** The SGD class's defaults (the paper's), applied before the addon's checks. */
const SGD_DEFAULTS = { momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: false, convention: 'pytorch' } as const;

/** sgdStep's own option checks (errors named 'SGD'); returns the options as checked. */
function checked(options: SgdStepOptions): Required<SgdStepOptions> {
  return loadNative().sgdCheckOptions(options, 'SGD');
}

/** What a checkpoint keeps of the optimizer (the momentum buffer itself is store.momentum). */
export interface SGDState {
  /** steps taken so far (0: the next step is the first, which starts PyTorch's buffer at g') */
  step: number;
  lr: number;
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
  /** the learning rate in device memory (made at the first step), and the value it holds */
  #lrDevice: Tensor<'int32'> | null = null;
  #lrWritten = NaN;

  constructor(store: ParameterStore, options: SGDOptions) {
    if (store === null || typeof store !== 'object' || !('params' in store) || !('grads' in store)) {
      throw alexnetError('ERR_ARGUMENT', 'SGD: expected first argument to be a ParameterStore');
    }
    if (options === null || typeof options !== 'object') throw alexnetError('ERR_ARGUMENT', 'SGD: expected options with at least { lr }');
    this.store = store;
    const o = checked({
      lr: options.lr,
      momentum: options.momentum ?? SGD_DEFAULTS.momentum,
      dampening: options.dampening ?? SGD_DEFAULTS.dampening,
      weightDecay: options.weightDecay ?? SGD_DEFAULTS.weightDecay,
      nesterov: options.nesterov ?? SGD_DEFAULTS.nesterov,
      convention: options.convention ?? SGD_DEFAULTS.convention,
    });
    this.#lr = o.lr;
    this.momentum = o.momentum;
    this.dampening = o.dampening;
    this.weightDecay = o.weightDecay;
    this.nesterov = o.nesterov;
    this.convention = o.convention;
  }

  get lr(): number {
    return this.#lr;
  }
  set lr(v: number) {
    this.#lr = checked({ ...this.#options(), lr: v }).lr;
  }

  /** The options every step passes to sgdStep, less firstStep. */
  #options(): SgdStepOptions {
    return {
      lr: this.#lr,
      momentum: this.momentum,
      dampening: this.dampening,
      weightDecay: this.weightDecay,
      nesterov: this.nesterov,
      convention: this.convention,
    };
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this.#step;
  }

  /**
   * The learning rate in device memory that every step reads (int32 [2], a double's bits; see
   * sgdStep): `lr` as of the last step queued. A step reads it when it runs on the device, so
   * changing `lr` costs no new launch configuration: the next step() writes the tensor, in
   * queue order, when the value changed (a captured CUDA graph replays with the new value).
   */
  get lrTensor(): Tensor<'int32'> {
    return this.#syncLr();
  }

  #syncLr(): Tensor<'int32'> {
    if (this.#lrDevice === null || this.#lrDevice.disposed) {
      this.#lrDevice = lrTensor(this.#lr, this.store.params.device);
      this.#lrWritten = this.#lr;
    } else if (!Object.is(this.#lrWritten, this.#lr)) {
      writeLrTensor(this.#lrDevice, this.#lr);
      this.#lrWritten = this.#lr;
    }
    return this.#lrDevice;
  }

  /**
   * One update of every parameter from store.grads (one sgdStep call over the flat buffers);
   * with the store's bfloat16 copy (store.params16, precision 'bf16') written in the same pass.
   */
  step(): void {
    if (this.store.disposed) throw alexnetError('ERR_DISPOSED', 'SGD.step: the parameter store has been disposed');
    sgdStep(this.store.params, this.store.grads, this.momentum === 0 ? null : this.store.momentum, {
      ...this.#options(),
      firstStep: this.#step === 0,
    }, this.store.params16, this.#syncLr());
    this.#step++;
  }

  /** Frees the learning rate's device tensor (the store is the caller's); a later step makes it again. */
  dispose(): void {
    this.#lrDevice?.dispose();
    this.#lrDevice = null;
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
