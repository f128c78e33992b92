// One SGD-with-momentum step over flat buffers, in place. The update formulas of both
// conventions ('pytorch', the default, and 'krizhevsky') are stated once, in native/core/sgd.h;
// the option checks live once, in native/binding/sgd.cc.
import { loadNative } from '../native.js';
import { handleOf, type Tensor } from '../tensor.js';

export type SgdConvention = 'pytorch' | 'krizhevsky';

/**
 * Options of the raw sgdStep operator. Every default is the kernel's: 0, false, 'pytorch' (as in
 * torch.optim.SGD). The SGD optimizer class takes the same fields less firstStep (SGDOptions),
 * with two defaults of its own, the AlexNet paper's: momentum 0.9, weight decay 5e-4.
 */
export interface SgdStepOptions {
  lr: number;
  /** default 0 (plain SGD; momentumBuffer may then be null); the SGD class: 0.9 */
  momentum?: number;
  /** in [0, 1], default 0 */
  dampening?: number;
  /** L2 weight decay, default 0; the SGD class: 5e-4 */
  weightDecay?: number;
  /** PyTorch convention only, with momentum > 0 and dampening 0; default false */
  nesterov?: boolean;
  /** default 'pytorch' */
  convention?: SgdConvention;
  /** true on the first step: PyTorch then starts the buffer at the gradient */
  firstStep?: boolean;
}

/**
 * @deprecated Renamed SgdStepOptions, so that it is not confused with the SGD class's
 * SGDOptions (other defaults). Kept because earlier versions exported it.
 */
export type SgdOptions = SgdStepOptions;

/**
 * Updates param (and momentumBuffer) in place from grad. momentumBuffer may be null only when
 * momentum is 0. Bad hyper-parameters throw ERR_ARGUMENT before anything is queued.
 * `paramBf16` (bfloat16, param's shape) gets bfloat16(param) after the update, written in the
 * same pass (the bfloat16 weights of precision 'bf16'), and counts as param's current copy for
 * refreshBf16Copy.
 */
export function sgdStep(
  param: Tensor<'float32'>,
  grad: Tensor<'float32'>,
  momentumBuffer: Tensor<'float32'> | null,
  options: SgdStepOptions,
  paramBf16: Tensor<'bfloat16'> | null = null,
): void {
  const op = 'sgdStep';
  loadNative().sgdStep(
    handleOf(param, op, 'param'),
    handleOf(grad, op, 'grad'),
    momentumBuffer === null ? null : handleOf(momentumBuffer, op, 'momentumBuffer'),
    options,
    paramBf16 === null ? null : handleOf(paramBf16, op, 'paramBf16'),
  );
}
