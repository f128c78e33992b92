import { loadNative } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';

/** max(x, 0) */
export function relu(x: Tensor<'float32'>): Tensor<'float32'> {
  return new Tensor(loadNative().reluForward(handleOf(x, 'relu', 'input')));
}

/** Gradient of relu given the forward output. */
export function reluBackward(gradOutput: Tensor<'float32'>, output: Tensor<'float32'>): Tensor<'float32'> {
  return new Tensor(
    loadNative().reluBackward(handleOf(gradOutput, 'reluBackward', 'gradOutput'), handleOf(output, 'reluBackward', 'output')),
  );
}
