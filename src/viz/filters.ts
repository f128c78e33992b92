// The first convolution's kernels as an image grid, like figure 3 of Krizhevsky et al. (2012):
// each kernel min-max normalised on its own (over all its channels) to 0..255, input channels
// 0, 1, 2 as red, green, blue, enlarged by nearest neighbour, with thin gaps between kernels.
import sharp from 'sharp';
import { alexnetError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';

export interface FilterWeight {
  data: Float32Array | ArrayLike<number>;
  /** [outChannels, inChannels, kH, kW], inChannels 3 (RGB) or 1 (grey). */
  shape: readonly number[];
}

export interface RenderFiltersOptions {
  /** Pixels per kernel element (nearest neighbour); default 4. */
  scale?: number;
  /** Kernels per row; default ceil(sqrt(O * 8 / 3)), which is 16 for AlexNet's 96 (6 rows). */
  columns?: number;
  /** Pixels between kernels and around the border; default 1. */
  gap?: number;
  /** Colour of the gaps; default white. */
  background?: readonly [number, number, number];
}

export interface FilterImage {
  /** RGB bytes, row-major, `width * height * 3`. */
  data: Buffer;
  width: number;
  height: number;
  channels: 3;
  columns: number;
  rows: number;
}

/** The grid as raw RGB pixels. */
export function filtersImage(weight: FilterWeight, options: RenderFiltersOptions = {}): FilterImage {
  const shape = weight.shape;
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw alexnetError('ERR_SHAPE', `renderFilters: expected a weight of shape [O, 3, kH, kW], got [${String(shape)}]`);
  }
  const [o, c, kh, kw] = shape as [number, number, number, number];
  if (c !== 3 && c !== 1) throw alexnetError('ERR_SHAPE', `renderFilters: kernels need 3 (RGB) or 1 input channels, got ${c}`);
  if (weight.data.length !== o * c * kh * kw) {
    throw alexnetError('ERR_SHAPE', `renderFilters: shape [${shape.join(', ')}] holds ${o * c * kh * kw} values but data has ${weight.data.length}`);
  }
  const scale = options.scale ?? 4;
  const gap = options.gap ?? 1;
  const columns = Math.min(o, options.columns ?? Math.ceil(Math.sqrt((o * 8) / 3)));
  for (const [name, v, min] of [['scale', scale, 1], ['columns', columns, 1], ['gap', gap, 0]] as const) {
    if (!Number.isSafeInteger(v) || v < min) throw alexnetError('ERR_ARGUMENT', `renderFilters: ${name} must be an integer >= ${min}, got ${v}`);
  }
  const bg = options.background ?? [255, 255, 255];
  const rows = Math.ceil(o / columns);
  const cellW = kw * scale;
  const cellH = kh * scale;
  const width = columns * cellW + (columns + 1) * gap;
  const height = rows * cellH + (rows + 1) * gap;
  if (width * height > 2 ** 28) throw alexnetError('ERR_ARGUMENT', `renderFilters: a ${width}x${height} image is too large`);
  const img = Buffer.alloc(width * height * 3);
  for (let i = 0; i < img.length; i += 3) {
    img[i] = bg[0];
    img[i + 1] = bg[1];
    img[i + 2] = bg[2];
  }
  const per = c * kh * kw;
  const plane = kh * kw;
  for (let k = 0; k < o; k++) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < per; j++) {
      const v = weight.data[k * per + j]!;
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    const range = hi - lo;
    const byte = (v: number): number => (!Number.isFinite(v) ? 0 : range > 0 ? Math.round(((v - lo) / range) * 255) : 128);
    const x0 = gap + (k % columns) * (cellW + gap);
    const y0 = gap + Math.floor(k / columns) * (cellH + gap);
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        const base = k * per + y * kw + x;
        const r = byte(weight.data[base]!);
        const g = c === 3 ? byte(weight.data[base + plane]!) : r;
        const b = c === 3 ? byte(weight.data[base + 2 * plane]!) : r;
        for (let dy = 0; dy < scale; dy++) {
          let p = ((y0 + y * scale + dy) * width + x0 + x * scale) * 3;
          for (let dx = 0; dx < scale; dx++, p += 3) {
            img[p] = r;
            img[p + 1] = g;
            img[p + 2] = b;
          }
        }
      }
    }
  }
  return { data: img, width, height, channels: 3, columns, rows };
}

/** Writes the grid of `weight`'s kernels (shape [O, 3, kH, kW]) to `outPath` as a PNG. */
export async function renderFilters(
  weight: FilterWeight,
  outPath: string,
  options: RenderFiltersOptions = {},
): Promise<{ width: number; height: number; columns: number; rows: number }> {
  const im = filtersImage(weight, options);
  // written atomically (see plotMetrics)
  const png = await sharp(im.data, { raw: { width: im.width, height: im.height, channels: 3 } }).png().toBuffer();
  await writeFileAtomic(outPath, [png], { what: 'the PNG image', noun: 'PNG image' });
  return { width: im.width, height: im.height, columns: im.columns, rows: im.rows };
}
