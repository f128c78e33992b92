import { loadNative, type NativeConv2dBackwardOptions, type Pair } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';
import { gradientsOf, gradTargets, type WeightGradients, type WeightGradOptions } from './weight-grad.js';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** apply max(y, 0) to the output in the same pass (Conv+ReLU fusion; forward only) */
  relu?: boolean;
}

/** Options of conv2dBackward (the forward options plus what to compute and where to write). */
export interface Conv2dBackwardOptions extends Conv2dOptions, WeightGradOptions {}

/** What conv2dBackward returns (as linearBackward). */
export type Conv2dGradients = WeightGradients;

/**
 * 2-D convolution (cross-correlation, like torch.nn.functional.conv2d):
 * input [N, C, H, W], weight [O, C/groups, kH, kW], bias [O] -> [N, O, Ho, Wo].
 */
export function conv2d(
  input: Tensor<'float32'>,
  weight: Tensor<'float32'>,
  bias: Tensor<'float32'> | null = null,
  options: Conv2dOptions = {},
): Tensor<'float32'> {
  const op = 'conv2d';
  const b = bias === null || bias === undefined ? null : handleOf(bias, op, 'bias');
  return new Tensor(loadNative().conv2dForward(handleOf(input, op, 'input'), handleOf(weight, op, 'weight'), b, options));
}

/** Gradients of conv2d with respect to its input, weight and bias, given gradOutput. */
export function conv2dBackward(
  gradOutput: Tensor<'float32'>,
  input: Tensor<'float32'>,
  weight: Tensor<'float32'>,
  options: Conv2dBackwardOptions = {},
): Conv2dGradients {
  const op = 'conv2dBackward';
  let nativeOptions: unknown = options;
  if (options !== null && typeof options === 'object' && (options.gradWeight !== undefined || options.gradBias !== undefined)) {
    nativeOptions = { ...options, ...gradTargets(options, op) };
  }
  const r = loadNative().conv2dBackward(
    handleOf(gradOutput, op, 'gradOutput'),
    handleOf(input, op, 'input'),
    handleOf(weight, op, 'weight'),
    nativeOptions as NativeConv2dBackwardOptions,
  );
  return gradientsOf(r, options);
}
