// Inverted dropout with a stateless counter-based random stream (documented in
// native/cpu/dropout.h and reimplemented in test/reference/dropout.ts): element i of a call
// is kept iff u(seed, offset + i) >= p, and the mask holds 0 or 1 / (1 - p).
import { loadNative } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';

export interface DropoutOptions {
  p: number;
  seed: number;
  /** element offset into the random stream (lets successive calls draw fresh masks) */
  offset?: number;
}

export interface DropoutResult<D extends 'float32' | 'bfloat16' = 'float32'> {
  /** input's dtype (bfloat16: input * mask computed in float32, rounded once) */
  output: Tensor<D>;
  /** 0 or 1/(1-p) per element, float32 for either input dtype (the same mask for the same seed and offset); pass it to dropoutBackward */
  mask: Tensor<'float32'>;
}

/** output = input * mask (training mode; for evaluation just skip the call). */
export function dropout<D extends 'float32' | 'bfloat16' = 'float32'>(input: Tensor<D>, options: DropoutOptions): DropoutResult<D> {
  const r = loadNative().dropoutForward(handleOf(input, 'dropout', 'input'), options);
  return { output: new Tensor<D>(r.output), mask: new Tensor<'float32'>(r.mask) };
}

/** gradInput = gradOutput * mask, in gradOutput's dtype (float32 or bfloat16; mask float32) */
export function dropoutBackward<D extends 'float32' | 'bfloat16' = 'float32'>(gradOutput: Tensor<D>, mask: Tensor<'float32'>): Tensor<D> {
  return new Tensor<D>(
    loadNative().dropoutBackward(handleOf(gradOutput, 'dropoutBackward', 'gradOutput'), handleOf(mask, 'dropoutBackward', 'mask')),
  );
}
