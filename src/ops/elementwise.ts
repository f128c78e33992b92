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
