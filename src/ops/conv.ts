import { loadNative, type NativeConv2dBackwardOptions, type Pair } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';
import type { MemoryFormat } from './layout.js';
import { gradientsOf, gradTargets, type WeightGradients, type WeightGradOptions } from './weight-grad.js';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** apply max(y, 0) to the output in the same pass (Conv+ReLU fusion; forward only) */
  relu?: boolean;
  /**
   * 'contiguous_format' (default): input and output [N, C, H, W]; 'channels_last': input
   * [N, H, W, C], output [N, Ho, Wo, O] (and so their gradients). The weight is [O, C/groups,
   * kH, kW] either way. On CUDA, cuDNN's NHWC kernels (see toMemoryFormat).
   */
  memoryFormat?: MemoryFormat;
}

/** Options of conv2d on bfloat16 inputs (as linear's). */
export interface Conv2dBf16Options<O extends 'float32' | 'bfloat16' = 'float32' | 'bfloat16'> extends Conv2dOptions {
  /**
   * The output's dtype: 'float32' (default) keeps the float32 sum plus bias, 'bfloat16' rounds
   * it once (on CUDA, with a bias: twice, see the README's precision section). Float32 inputs
   * give float32 only.
   */
  outDtype?: O;
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
  bias?: Tensor<'float32'> | null,
  options?: Conv2dOptions,
): Tensor<'float32'>;
/**
 * The bfloat16 form (mixed precision): input and weight bfloat16, bias float32; products exact,
 * summed in float32, the bias added, ReLU if asked, the result float32 or (outDtype) bfloat16.
 * On the CPU through AVX-512 BF16 (vdpbf16ps) where present, else widened to float32; on CUDA
 * through cuDNN with bfloat16 tensors and float compute.
 */
export function conv2d<O extends 'float32' | 'bfloat16' = 'float32'>(
  input: Tensor<'bfloat16'>,
  weight: Tensor<'bfloat16'>,
  bias?: Tensor<'float32'> | null,
  options?: Conv2dBf16Options<O>,
): Tensor<O>;
export function conv2d(input: Tensor, weight: Tensor, bias: Tensor | null = null, options: Conv2dBf16Options = {}): Tensor {
  const op = 'conv2d';
  const b = bias === null || bias === undefined ? null : handleOf(bias, op, 'bias');
  return new Tensor(
    loadNative().conv2dForward(handleOf(input, op, 'input'), handleOf(weight, op, 'weight'), b, options as Conv2dOptions),
  );
}

/** Gradients of conv2d with respect to its input, weight and bias, given gradOutput. */
export function conv2dBackward(
  gradOutput: Tensor<'float32'>,
  input: Tensor<'float32'>,
  weight: Tensor<'float32'>,
  options?: Conv2dBackwardOptions,
): Conv2dGradients;
/**
 * The bfloat16 form (gradOutput, input and weight all bfloat16): gradInput comes back bfloat16
 * (summed in float32, rounded once); gradWeight and gradBias are float32 (the float32 master
 * weights' gradients; a given gradWeight / gradBias must be float32).
 */
export function conv2dBackward(
  gradOutput: Tensor<'bfloat16'>,
  input: Tensor<'bfloat16'>,
  weight: Tensor<'bfloat16'>,
  options?: Conv2dBackwardOptions,
): Omit<Conv2dGradients, 'gradInput'> & { gradInput: Tensor<'bfloat16'> | null };
export function conv2dBackward(
  gradOutput: Tensor,
  input: Tensor,
  weight: Tensor,
  options: Conv2dBackwardOptions = {},
): Omit<Conv2dGradients, 'gradInput'> & { gradInput: Tensor | null } {
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
