import { loadNative, type Pair } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';

export interface Pool2dOptions {
  kernelSize: Pair;
  stride?: Pair;
  padding?: Pair;
}

/**
 * 2-D max pooling (torch.nn.functional.max_pool2d): input [N, C, H, W] -> [N, C, Ho, Wo].
 * `stride` defaults to `kernelSize`; padding is implicit -inf and at most kernelSize / 2.
 */
export function maxPool2d(input: Tensor<'float32'>, options: Pool2dOptions): Tensor<'float32'> {
  return new Tensor(loadNative().maxPool2dForward(handleOf(input, 'maxPool2d', 'input'), options));
}

/** Gradient of maxPool2d: each output gradient goes to its window's (first) maximum. */
export function maxPool2dBackward(
  gradOutput: Tensor<'float32'>,
  input: Tensor<'float32'>,
  output: Tensor<'float32'>,
  options: Pool2dOptions,
): Tensor<'float32'> {
  const op = 'maxPool2dBackward';
  return new Tensor(
    loadNative().maxPool2dBackward(handleOf(gradOutput, op, 'gradOutput'), handleOf(input, op, 'input'), handleOf(output, op, 'output'), options),
  );
}
