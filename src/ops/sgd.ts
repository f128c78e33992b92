// One SGD-with-momentum step over flat buffers, in place. Conventions ('pytorch', the default,
// or 'krizhevsky') are spelled out in native/cpu/sgd.h.
import { loadNative, type SgdOptions } from '../native.js';
import { handleOf, type Tensor } from '../tensor.js';

export type { SgdConvention, SgdOptions } from '../native.js';

/**
 * Updates param (and momentumBuffer) in place from grad. momentumBuffer may be null only when
 * momentum is 0. Bad hyper-parameters throw ERR_ARGUMENT before anything is queued.
 */
export function sgdStep(
  param: Tensor<'float32'>,
  grad: Tensor<'float32'>,
  momentumBuffer: Tensor<'float32'> | null,
  options: SgdOptions,
): void {
  const op = 'sgdStep';
  loadNative().sgdStep(
    handleOf(param, op, 'param'),
    handleOf(grad, op, 'grad'),
    momentumBuffer === null ? null : handleOf(momentumBuffer, op, 'momentumBuffer'),
    options,
  );
}
