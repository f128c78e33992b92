// Inverted dropout with a stateless counter-based random stream (documented in
// native/cpu/dropout.h and reimplemented in test/reference/dropout.ts): element i of a call
// is kept iff u(seed, offset + i) >= p, and the mask holds 0 or 1 / (1 - p).
import { loadNative } from '../native.js';
import { alexnetError } from '../errors.js';
import { handleOf, Tensor } from '../tensor.js';

export interface DropoutOptions {
  p: number;
  seed: number;
  /** element offset into the random stream (lets successive calls draw fresh masks); with a counter tensor, added to its value */
  offset?: number;
  /** ReLU fused in: output = max(input, 0) * mask, and the mask is 0 where input <= 0 too, so dropoutBackward gives the gradient of both */
  relu?: boolean;
  /** with a counter tensor: added to it after the draw, on the device (the next call's position) */
  advance?: number;
}

export interface DropoutResult<D extends 'float32' | 'bfloat16' = 'float32'> {
  /** input's dtype (bfloat16: input * mask computed in float32, rounded once) */
  output: Tensor<D>;
  /** 0 or 1/(1-p) per element, float32 for either input dtype (the same mask for the same seed and offset); pass it to dropoutBackward */
  mask: Tensor<'float32'>;
}

/**
 * output = input * mask (training mode; for evaluation just skip the call). `counter` (from
 * dropoutCounter, on input's device): the stream position in device memory, read when the draw
 * runs (element i at counter + offset + i) and advanced by `options.advance` after it, so a
 * captured CUDA graph draws a fresh mask at every replay; the masks equal those of the host
 * offset counter + offset.
 */
export function dropout<D extends 'float32' | 'bfloat16' = 'float32'>(
  input: Tensor<D>,
  options: DropoutOptions,
  counter: Tensor<'int32'> | null = null,
): DropoutResult<D> {
  const r = loadNative().dropoutForward(handleOf(input, 'dropout', 'input'), options, counter === null ? null : handleOf(counter, 'dropout', 'counter'));
  return { output: new Tensor<D>(r.output), mask: new Tensor<'float32'>(r.mask) };
}

const TWO32 = 2 ** 32;

/** A stream position (an integer in [0, 2^53)) as the two int32 words of its uint64 (low, high). */
function counterWords(offset: number): Int32Array {
  if (!Number.isSafeInteger(offset) || offset < 0) throw alexnetError('ERR_ARGUMENT', `dropoutCounter: expected an integer in [0, 2^53), got ${String(offset)}`);
  return Int32Array.of(offset % TWO32 | 0, Math.floor(offset / TWO32) | 0);
}

/** A dropout stream position in device memory for dropout(): int32 [2] holding the uint64 `offset`, on `device`. */
export function dropoutCounter(offset: number, device = 'cpu'): Tensor<'int32'> {
  return Tensor.from<'int32'>(counterWords(offset), [2], { dtype: 'int32', device });
}

/** Writes `offset` into a counter, in queue order (a draw queued before reads the old value). */
export function writeDropoutCounter(t: Tensor<'int32'>, offset: number): void {
  const src = dropoutCounter(offset, t.device);
  try {
    loadNative().copy(handleOf(t, 'writeDropoutCounter', 'counter'), src.handle);
  } finally {
    src.dispose();
  }
}

/** A counter's value (the two words read back as the integer they hold). */
export function counterValue(words: Int32Array): number {
  return (words[1]! >>> 0) * TWO32 + (words[0]! >>> 0);
}

/** gradInput = gradOutput * mask, in gradOutput's dtype (float32 or bfloat16; mask float32) */
export function dropoutBackward<D extends 'float32' | 'bfloat16' = 'float32'>(gradOutput: Tensor<D>, mask: Tensor<'float32'>): Tensor<D> {
  return new Tensor<D>(
    loadNative().dropoutBackward(handleOf(gradOutput, 'dropoutBackward', 'gradOutput'), handleOf(mask, 'dropoutBackward', 'mask')),
  );
}
