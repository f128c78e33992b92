import { loadNative, type Pair } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';
import type { MemoryFormat } from './layout.js';

export interface Pool2dOptions {
  kernelSize: Pair;
  stride?: Pair;
  padding?: Pair;
  /** 'contiguous_format' (default): [N, C, H, W]; 'channels_last': [N, H, W, C] in and out */
  memoryFormat?: MemoryFormat;
}

/**
 * 2-D max pooling (torch.nn.functional.max_pool2d): input [N, C, H, W] -> [N, C, Ho, Wo].
 * `stride` defaults to `kernelSize`; padding is implicit -inf and at most kernelSize / 2.
 * float32 or bfloat16 (exact: a maximum is one of the inputs), output in input's dtype.
 */
export function maxPool2d<D extends 'float32' | 'bfloat16' = 'float32'>(input: Tensor<D>, options: Pool2dOptions): Tensor<D> {
  return new Tensor<D>(loadNative().maxPool2dForward(handleOf(input, 'maxPool2d', 'input'), options));
}

/**
 * Gradient of maxPool2d: each output gradient goes to its window's (first) maximum. bfloat16
 * (every tensor bfloat16): each input's share summed in float32 and rounded once.
 */
export function maxPool2dBackward<D extends 'float32' | 'bfloat16' = 'float32'>(
  gradOutput: Tensor<D>,
  input: Tensor<D>,
  output: Tensor<D>,
  options: Pool2dOptions,
): Tensor<D> {
  const op = 'maxPool2dBackward';
  return new Tensor<D>(
    loadNative().maxPool2dBackward(handleOf(gradOutput, op, 'gradOutput'), handleOf(input, op, 'input'), handleOf(output, op, 'output'), options),
  );
}
