// What the backward of a layer with weights (conv2dBackward, linearBackward) is asked to compute
// and where to write, and what it returns: the addon treats both alike, so they share one
// definition of the options, of the result, and of the handle passing in between.
import type { NativeTensor } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';

export interface WeightGradOptions {
  /** compute gradInput (default true; false for a first layer) */
  computeGradInput?: boolean;
  /** compute gradBias (default true; false for a layer without bias) */
  computeGradBias?: boolean;
  /** write the weight gradient here (shape of weight; may be a view into a gradient store) */
  gradWeight?: Tensor<'float32'>;
  /** write the bias gradient here (shape [outChannels] / [out]) */
  gradBias?: Tensor<'float32'>;
  /** add into gradWeight / gradBias instead of overwriting them (both must then be given, gradBias unless computeGradBias is false) */
  accumulate?: boolean;
}

export interface WeightGradients {
  /** null when computeGradInput is false */
  gradInput: Tensor<'float32'> | null;
  gradWeight: Tensor<'float32'>;
  /** null when computeGradBias is false */
  gradBias: Tensor<'float32'> | null;
}

/** The addon's result of a weight backward. */
export interface NativeWeightGradients {
  gradInput: NativeTensor | null;
  gradWeight: NativeTensor;
  gradBias: NativeTensor | null;
}

/** The options' gradWeight / gradBias as native handles (undefined where not given), checked in that order. */
export function gradTargets(options: WeightGradOptions, op: string): { gradWeight?: NativeTensor; gradBias?: NativeTensor } {
  return {
    gradWeight: options.gradWeight === undefined ? undefined : handleOf(options.gradWeight, op, 'gradWeight'),
    gradBias: options.gradBias === undefined ? undefined : handleOf(options.gradBias, op, 'gradBias'),
  };
}

/** The addon's result as Tensors: a gradWeight / gradBias given in the options is returned as that same Tensor object. */
export function gradientsOf(r: NativeWeightGradients, given: WeightGradOptions | undefined): WeightGradients {
  return {
    gradInput: r.gradInput === null ? null : new Tensor(r.gradInput),
    gradWeight: given?.gradWeight ?? new Tensor(r.gradWeight),
    gradBias: r.gradBias === null ? null : (given?.gradBias ?? new Tensor(r.gradBias)),
  };
}
