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

export interface DropoutResult {
  output: Tensor<'float32'>;
  /** 0 or 1/(1-p) per element; pass it to dropoutBackward */
  mask: Tensor<'float32'>;
}

/** output = input * mask (training mode; for evaluation just skip the call). */
export function dropout(input: Tensor<'float32'>, options: DropoutOptions): DropoutResult {
  const r = loadNative().dropoutForward(handleOf(input, 'dropout', 'input'), options);
  return { output: new Tensor(r.output), mask: new Tensor(r.mask) };
}

/** gradInput = gradOutput * mask */
export function dropoutBackward(gradOutput: Tensor<'float32'>, mask: Tensor<'float32'>): Tensor<'float32'> {
  return new Tensor(
    loadNative().dropoutBackward(handleOf(gradOutput, 'dropoutBackward', 'gradOutput'), handleOf(mask, 'dropoutBackward', 'mask')),
  );
}
