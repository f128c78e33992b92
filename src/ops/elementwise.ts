// In-place elementwise operators. Each is enqueued on the tensor's device and returns at once;
// the change is visible to the next `await t.data()` (operators run in call order).
import { loadNative } from '../native.js';
import { handleOf, type Tensor } from '../tensor.js';

/** t[:] = value (float32, or int32 with an integer value). */
export function fill(t: Tensor, value: number): void {
  loadNative().fill(handleOf(t, 'fill', 'tensor'), value);
}

/** dst[:] = src (same shape and dtype). */
export function copy<D extends Tensor>(dst: D, src: D): void {
  loadNative().copy(handleOf(dst, 'copy', 'dst'), handleOf(src, 'copy', 'src'));
}

/** t *= alpha */
export function scale(t: Tensor<'float32'>, alpha: number): void {
  loadNative().scale(handleOf(t, 'scale', 'tensor'), alpha);
}

/** y += alpha * x */
export function axpy(y: Tensor<'float32'>, alpha: number, x: Tensor<'float32'>): void {
  loadNative().axpy(handleOf(y, 'axpy', 'y'), alpha, handleOf(x, 'axpy', 'x'));
}

/**
 * copy = bfloat16(source), unless `copy` already holds the bfloat16 of source's current values:
 * the addon records, per buffer, which float32 buffer and which of its write versions a copy was
 * made from (by this call or by sgdStep's `paramBf16`), and any write to the source since (a step,
 * a load, a fill, a copy into it) makes the next call convert again. Only whole buffers are
 * recorded (a store's flat buffers); views of part of one convert at every call.
 */
export function refreshBf16Copy(copy: Tensor<'bfloat16'>, source: Tensor<'float32'>): void {
  const op = 'refreshBf16Copy';
  loadNative().refreshBf16Copy(handleOf(copy, op, 'copy'), handleOf(source, op, 'source'));
}
