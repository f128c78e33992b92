import { loadNative } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';

/** See localResponseNorm for the defaults and limits. */
export interface LrnOptions {
  size: number;
  alpha?: number;
  beta?: number;
  k?: number;
}

/**
 * Local response normalisation across channels (torch.nn.functional.local_response_norm):
 * y_c = x_c / (k + alpha / size * sum_{c' near c} x_c'^2)^beta. Defaults alpha 1e-4, beta 0.75,
 * k 1 (Krizhevsky et al. 2012 use size 5, k 2, alpha 5e-4 in this convention, beta 0.75).
 *
 * Limits, the same on every device (cuDNN's, so a model that runs on the CPU runs on CUDA):
 * size an integer in [1, 16], k >= 1e-5, beta >= 0.01, alpha >= 0; anything else throws
 * ERR_ARGUMENT naming the option and the limit. On CUDA size must also be odd (cuDNN centres
 * an even window one channel later than PyTorch; the CPU computes PyTorch's even window).
 * An empty input gives an empty output.
 */
export function localResponseNorm(input: Tensor<'float32'>, options: LrnOptions): Tensor<'float32'> {
  return new Tensor(loadNative().lrnForward(handleOf(input, 'localResponseNorm', 'input'), options));
}

/** Gradient of localResponseNorm with respect to its input. */
export function localResponseNormBackward(
  gradOutput: Tensor<'float32'>,
  input: Tensor<'float32'>,
  output: Tensor<'float32'>,
  options: LrnOptions,
): Tensor<'float32'> {
  const op = 'localResponseNormBackward';
  return new Tensor(
    loadNative().lrnBackward(handleOf(gradOutput, op, 'gradOutput'), handleOf(input, op, 'input'), handleOf(output, op, 'output'), options),
  );
}
