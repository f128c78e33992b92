import { loadNative } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';

/** Activation dtypes: float32, or bfloat16 (exact; every tensor of a call the same dtype). */
export type ActivationDType = 'float32' | 'bfloat16';

/** max(x, 0) (NaN kept), in x's dtype */
export function relu<D extends ActivationDType = 'float32'>(x: Tensor<D>): Tensor<D> {
  return new Tensor<D>(loadNative().reluForward(handleOf(x, 'relu', 'input')));
}

/** Gradient of relu given the forward output (gradOutput and output of one dtype). */
export function reluBackward<D extends ActivationDType = 'float32'>(gradOutput: Tensor<D>, output: Tensor<D>): Tensor<D> {
  return new Tensor<D>(
    loadNative().reluBackward(handleOf(gradOutput, 'reluBackward', 'gradOutput'), handleOf(output, 'reluBackward', 'output')),
  );
}
