// 8-bit images to normalised float32 tensors (torchvision's ToTensor + Normalize in one pass).
import { alexnetError } from '../errors.js';
import { loadNative } from '../native.js';
import { Tensor, type Device } from '../tensor.js';

/**
 * `pixels` (N*C*H*W bytes, NCHW, C <= 3) as a float32 tensor [N, C, H, W] on `device` with
 * y = (x / 255 - mean[c]) / std[c]. The bytes are copied at once (the array may be reused);
 * on CUDA they cross to the GPU as bytes, a quarter of the float32 traffic, and are normalised
 * there. The per-channel table is computed in double and rounded once, so every backend gives
 * the same floats as the data pipeline's own float32 path.
 */
export function normalizeImages(
  pixels: Uint8Array,
  shape: readonly [number, number, number, number] | readonly number[],
  { mean, std, device = 'cpu' }: { mean: readonly number[]; std: readonly number[]; device?: Device | string },
): Tensor<'float32'> {
  if (!(pixels instanceof Uint8Array)) throw alexnetError('ERR_DTYPE', 'normalizeImages: expected pixels to be a Uint8Array');
  return new Tensor(loadNative().normalizeImages(pixels, [...shape], [...mean], [...std], String(device))) as Tensor<'float32'>;
}
