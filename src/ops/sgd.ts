// One SGD-with-momentum step over flat buffers, in place. The update formulas of both
// conventions ('pytorch', the default, and 'krizhevsky') are stated once, in native/core/sgd.h;
// the option checks live once, in native/binding/sgd.cc.
import { loadNative } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';

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
 *
 * `lr`, when given, is the learning rate in device memory (lrTensor / writeLrTensor): the kernel
 * reads it when it runs, in place of options.lr (which is still checked), so work queued once
 * (a captured CUDA graph) follows every later write of it.
 */
export function sgdStep(
  param: Tensor<'float32'>,
  grad: Tensor<'float32'>,
  momentumBuffer: Tensor<'float32'> | null,
  options: SgdStepOptions,
  paramBf16: Tensor<'bfloat16'> | null = null,
  lr: Tensor<'int32'> | null = null,
): void {
  const op = 'sgdStep';
  loadNative().sgdStep(
    handleOf(param, op, 'param'),
    handleOf(grad, op, 'grad'),
    momentumBuffer === null ? null : handleOf(momentumBuffer, op, 'momentumBuffer'),
    options,
    paramBf16 === null ? null : handleOf(paramBf16, op, 'paramBf16'),
    lr === null ? null : handleOf(lr, op, 'lr'),
  );
}

/** A double's bits as two int32 words, in memory order (what an lr tensor holds). */
function lrWords(lr: number): Int32Array {
  return new Int32Array(new Float64Array([lr]).buffer);
}

/**
 * A learning rate in device memory for sgdStep: int32 [2] holding the bits of the double `lr`
 * (native/core/sgd.h), on `device`.
 */
export function lrTensor(lr: number, device = 'cpu'): Tensor<'int32'> {
  return Tensor.from<'int32'>(lrWords(lr), [2], { dtype: 'int32', device });
}

/**
 * Writes `lr` into an lr tensor, in queue order: a step queued before this call reads the old
 * value, a step queued after it the new one. Allocates no storage after the first call of a
 * process (a block of the size comes back from the allocator's cache).
 */
export function writeLrTensor(t: Tensor<'int32'>, lr: number): void {
  const src = lrTensor(lr, t.device);
  try {
    loadNative().copy(handleOf(t, 'writeLrTensor', 'lr'), src.handle);
  } finally {
    src.dispose();
  }
}
