// 8-bit images to normalised float32 tensors (torchvision's ToTensor + Normalize in one pass).
import { alexnetError } from '../errors.js';
import { loadNative } from '../native.js';
import { optionsOf, shapeOf, Tensor, type Device } from '../tensor.js';

export interface NormalizeImagesOptions {
  /** per-channel mean of the [0, 1] pixels, one number per channel */
  mean: readonly number[];
  /** per-channel standard deviation, one positive number per channel */
  std: readonly number[];
  device?: Device | string;
}

/** An array of numbers (the addon checks the count, finiteness and sign). */
function channelValues(v: unknown, name: string): number[] {
  if (!Array.isArray(v)) throw alexnetError('ERR_ARGUMENT', `normalizeImages: expected ${name} to be an array of numbers (one per channel)`);
  return v.map((x, i) => {
    if (typeof x !== 'number') throw alexnetError('ERR_ARGUMENT', `normalizeImages: expected ${name}[${i}] to be a number`);
    return x;
  });
}

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
  options: NormalizeImagesOptions,
): Tensor<'float32'> {
  if (!(pixels instanceof Uint8Array)) throw alexnetError('ERR_DTYPE', 'normalizeImages: expected pixels to be a Uint8Array');
  if (options === undefined) throw alexnetError('ERR_ARGUMENT', 'normalizeImages: expected options { mean, std, device? }');
  const o = optionsOf(options, 'normalizeImages');
  const device = o.device ?? 'cpu';
  if (typeof device !== 'string') throw alexnetError('ERR_DEVICE', "normalizeImages: expected device to be a string such as 'cpu'");
  const mean = channelValues(o.mean, 'mean');
  const std = channelValues(o.std, 'std');
  return new Tensor(loadNative().normalizeImages(pixels, shapeOf(shape, 'normalizeImages'), mean, std, device)) as Tensor<'float32'>;
}
