// Fully connected layer (PyTorch layout: weight [out, in]) and a general matrix product.
import { loadNative } from '../native.js';
import { handleOf, optionsOf, Tensor } from '../tensor.js';
import { gradientsOf, gradTargets, type WeightGradients, type WeightGradOptions } from './weight-grad.js';

/** Options of linearBackward: what to compute and where to write (as conv2dBackward's). */
export type LinearGradOptions = WeightGradOptions;

/** What linearBackward returns (as conv2dBackward). */
export type LinearGrads = WeightGradients;

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/** Options of linear on float32 inputs. */
export interface LinearFloatOptions {
  /**
   * y = max(x W^T + b, 0) in the same call (NaN kept, as relu does): Sequential fuses Linear +
   * ReLU so. On the CPU the ReLU runs over y while it is still in cache; on CUDA it is the bias
   * kernel's epilogue, or cuBLASLt's (setCublasLtEpilogues).
   */
  relu?: boolean;
}

/** Options of linear on bfloat16 inputs. */
export interface LinearOptions<O extends 'float32' | 'bfloat16' = 'float32' | 'bfloat16'> extends LinearFloatOptions {
  /**
   * The output's dtype for bfloat16 inputs: 'float32' (default) keeps the float32 sum,
   * 'bfloat16' rounds it (plus the bias) once. Float32 inputs give float32 only.
   */
  outDtype?: O;
}

/**
 * y [B, out] = input [B, in] @ weight[out, in]^T + bias[out]. With input and weight both
 * bfloat16 (mixed precision): products exact, summed in float32, the float32 bias added, and
 * the result float32 or (outDtype) bfloat16; on the CPU through AVX-512 BF16 (vdpbf16ps) where
 * present, else converted to float32 for sgemm; on CUDA through cuBLAS with bfloat16 inputs and
 * float32 compute.
 */
export function linear(input: Tensor<'float32'>, weight: Tensor<'float32'>, bias?: Tensor<'float32'> | null, options?: LinearFloatOptions): Tensor<'float32'>;
export function linear<O extends 'float32' | 'bfloat16' = 'float32'>(
  input: Tensor<'bfloat16'>,
  weight: Tensor<'bfloat16'>,
  bias?: Tensor<'float32'> | null,
  options?: LinearOptions<O>,
): Tensor<O>;
export function linear(input: Tensor, weight: Tensor, bias?: Tensor | null, options?: LinearOptions): Tensor {
  const o = optionsOf(options, 'linear');
  return new Tensor(
    loadNative().linearForward(
      handleOf(input, 'linear', 'input'),
      handleOf(weight, 'linear', 'weight'),
      bias == null ? null : handleOf(bias, 'linear', 'bias'),
      o.outDtype,
      o.relu,
    ),
  );
}

/**
 * Gradients of linear: gradInput = gradOutput @ weight, gradWeight = gradOutput^T @ input,
 * gradBias = column sums of gradOutput. A gradWeight / gradBias given in the options is written
 * (or added into) and returned as the same Tensor object.
 */
export function linearBackward(
  gradOutput: Tensor<'float32'>,
  input: Tensor<'float32'>,
  weight: Tensor<'float32'>,
  options?: LinearGradOptions,
): LinearGrads;
/**
 * The bfloat16 form (gradOutput, input and weight all bfloat16): gradInput = gradOutput @ weight
 * comes back bfloat16 (summed in float32, rounded once); gradWeight and gradBias are float32 (the
 * float32 master weights' gradients; a given gradWeight / gradBias must be float32).
 */
export function linearBackward(
  gradOutput: Tensor<'bfloat16'>,
  input: Tensor<'bfloat16'>,
  weight: Tensor<'bfloat16'>,
  options?: LinearGradOptions,
): Omit<LinearGrads, 'gradInput'> & { gradInput: Tensor<'bfloat16'> | null };
export function linearBackward(
  gradOutput: Tensor,
  input: Tensor,
  weight: Tensor,
  options: LinearGradOptions = {},
): Omit<LinearGrads, 'gradInput'> & { gradInput: Tensor | null } {
  const op = 'linearBackward';
  options = optionsOf(options, op);
  const r = loadNative().linearBackward(handleOf(gradOutput, op, 'gradOutput'), handleOf(input, op, 'input'), handleOf(weight, op, 'weight'), {
    computeGradInput: options.computeGradInput,
    computeGradBias: options.computeGradBias,
    accumulate: options.accumulate,
    ...gradTargets(options, op),
  });
  return gradientsOf(r, options);
}
/** c = op(a) @ op(b) for 2-D a, b (op transposes when transA / transB). */
export function matmul(a: Tensor<'float32'>, b: Tensor<'float32'>, options: MatmulOptions = {}): Tensor<'float32'> {
  return new Tensor(loadNative().matmul(handleOf(a, 'matmul', 'a'), handleOf(b, 'matmul', 'b'), options));
}
