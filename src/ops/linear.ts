// Fully connected layer (PyTorch layout: weight [out, in]) and a general matrix product.
import { loadNative } from '../native.js';
import { handleOf, optionsOf, Tensor } from '../tensor.js';

export interface LinearGradOptions {
  /** compute gradInput (default true; false for a first layer) */
  computeGradInput?: boolean;
  /** compute gradBias (default true; false for a layer without bias) */
  computeGradBias?: boolean;
  /** write the weight gradient here ([out, in]; may be a view into a gradient store) */
  gradWeight?: Tensor<'float32'>;
  /** write the bias gradient here ([out]) */
  gradBias?: Tensor<'float32'>;
  /** add into gradWeight / gradBias instead of overwriting them */
  accumulate?: boolean;
}

export interface LinearGrads {
  gradInput: Tensor<'float32'> | null;
  gradWeight: Tensor<'float32'>;
  gradBias: Tensor<'float32'> | null;
}

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/** y [B, out] = input [B, in] @ weight[out, in]^T + bias[out] */
export function linear(input: Tensor<'float32'>, weight: Tensor<'float32'>, bias?: Tensor<'float32'> | null): Tensor<'float32'> {
  return new Tensor(
    loadNative().linearForward(
      handleOf(input, 'linear', 'input'),
      handleOf(weight, 'linear', 'weight'),
      bias == null ? null : handleOf(bias, 'linear', 'bias'),
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
  options: LinearGradOptions = {},
): LinearGrads {
  const op = 'linearBackward';
  options = optionsOf(options, op);
  const r = loadNative().linearBackward(handleOf(gradOutput, op, 'gradOutput'), handleOf(input, op, 'input'), handleOf(weight, op, 'weight'), {
    computeGradInput: options.computeGradInput,
    computeGradBias: options.computeGradBias,
    accumulate: options.accumulate,
    gradWeight: options.gradWeight === undefined ? undefined : handleOf(options.gradWeight, op, 'gradWeight'),
    gradBias: options.gradBias === undefined ? undefined : handleOf(options.gradBias, op, 'gradBias'),
  });
  return {
    gradInput: r.gradInput === null ? null : new Tensor(r.gradInput),
    gradWeight: options.gradWeight ?? new Tensor(r.gradWeight),
    gradBias: r.gradBias === null ? null : (options.gradBias ?? new Tensor(r.gradBias)),
  };
}

/** c = op(a) @ op(b) for 2-D a, b (op transposes when transA / transB). */
export function matmul(a: Tensor<'float32'>, b: Tensor<'float32'>, options: MatmulOptions = {}): Tensor<'float32'> {
  return new Tensor(loadNative().matmul(handleOf(a, 'matmul', 'a'), handleOf(b, 'matmul', 'b'), options));
}
