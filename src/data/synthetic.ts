// A synthetic image classification set that needs convolution to solve: each class is a shape
// (stripes, disc, square, triangle, ...) drawn at a random position, size and rotation, in a random
// foreground colour on a random background colour, plus pixel noise. Foreground and background
// colours are drawn from the same distribution for every class and the shape's area is drawn
// from the same range, so neither colour nor mean brightness tells the classes apart; only the
// spatial arrangement of pixels does. Deterministic from (seed, split, index); no files.
import { checkInt, checkNormalization, dataError, rngFor, type Dataset, type Sample } from './common.js';
import type { DatasetSpec, SyntheticOptions } from './spec.js';

export type { SyntheticOptions };

export const SYNTHETIC_CLASSES = ['hstripes', 'vstripes', 'disc', 'square', 'triangle', 'cross', 'ring', 'checker'] as const;

const SPLIT_ID = { train: 1, val: 2 } as const;

export class SyntheticDataset implements Dataset {
  readonly length: number;
  readonly numClasses: number;
  readonly imageSize: number;
  readonly seed: number;
  readonly split: 'train' | 'val';
  readonly noise: number;
  readonly classNames: readonly string[];
  readonly sampleShape: readonly [number, number, number];
  readonly #options: SyntheticOptions;
  readonly #mean: [number, number, number];
  readonly #std: [number, number, number];

  constructor(options: SyntheticOptions) {
    if (typeof options !== 'object' || options === null) throw dataError('SyntheticDataset: expected an options object');
    this.length = checkInt(options.size, 'SyntheticDataset: size', 0);
    this.numClasses = checkInt(options.numClasses ?? 2, 'SyntheticDataset: numClasses', 2);
    if (this.numClasses > SYNTHETIC_CLASSES.length) {
      throw dataError(`SyntheticDataset: numClasses must be at most ${SYNTHETIC_CLASSES.length} (${SYNTHETIC_CLASSES.join(', ')}), got ${this.numClasses}`);
    }
    this.imageSize = checkInt(options.imageSize ?? 227, 'SyntheticDataset: imageSize', 16);
    this.seed = checkInt(options.seed ?? 0, 'SyntheticDataset: seed', 0);
    this.split = options.split ?? 'train';
    if (!(this.split in SPLIT_ID)) throw dataError(`SyntheticDataset: split must be 'train' or 'val', got '${String(this.split)}'`);
    this.noise = options.noise ?? 0.1;
    if (!(Number.isFinite(this.noise) && this.noise >= 0)) throw dataError(`SyntheticDataset: noise must be >= 0, got ${this.noise}`);
    const { mean, std } = checkNormalization(options, 'SyntheticDataset');
    this.#mean = mean;
    this.#std = std;
    this.classNames = SYNTHETIC_CLASSES.slice(0, this.numClasses);
    this.sampleShape = [3, this.imageSize, this.imageSize];
    this.#options = { ...options, mean: [...mean], std: [...std] };
  }

  /** The class of sample i (classes are balanced: i mod numClasses). */
  label(index: number): number {
    return index % this.numClasses;
  }

  /** Renders sample i: image is 3*S*S floats (CHW, normalised). */
  get(index: number): Sample {
    const image = new Float32Array(3 * this.imageSize * this.imageSize);
    return { image, label: this.loadInto(index, undefined, image, 0).label };
  }

  /** The per-channel normalisation applied by load / loadInto (and on the device for pixels). */
  get normalization(): { mean: [number, number, number]; std: [number, number, number] } {
    return { mean: [...this.#mean], std: [...this.#std] };
  }

  /** Renders sample i into out[offset, offset + 3*S*S), normalised. */
  loadInto(index: number, _ctx: unknown, out: Float32Array, offset: number): { label: number } {
    return this.#render(index, out, offset);
  }

  /**
   * Renders sample i as 8-bit pixels (CHW) into out[offset, offset + 3*S*S): the same image
   * rounded to 1/255 steps, before normalisation.
   */
  loadPixelsInto(index: number, _ctx: unknown, out: Uint8Array, offset: number): { label: number } {
    return this.#render(index, out, offset);
  }

  /**
   * Sample i: colours, size, rotation and stripe period drawn from the sample's own stream, the
   * class's shape placed and rasterised, then painted with noise into `out`.
   */
  #render(index: number, out: Float32Array | Uint8Array, offset: number): { label: number } {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw dataError(`SyntheticDataset: index ${index} out of range [0, ${this.length})`);
    }
    const label = this.label(index);
    const S = this.imageSize;
    const r = rngFor(this.seed, SPLIT_ID[this.split], index);
    // The order of the draws is part of the dataset's definition: colours, then the geometry,
    // then the position, then the noise stream's seed.
    const { fg, bg } = drawColours(r);
    const geometry = drawGeometry(r, S);
    const { reach, inside } = shapeOf(SYNTHETIC_CLASSES[label]!, geometry);
    const mask = rasterise(S, reach, inside, r);
    if (offset < 0 || offset + 3 * S * S > out.length) throw dataError(`SyntheticDataset: output buffer too small`);
    paint(out, offset, mask, fg, bg, { noise: this.noise, mean: this.#mean, std: this.#std }, r);
    return { label };
  }

  load(index: number): Sample {
    return this.get(index);
  }

  describe(): DatasetSpec {
    return { kind: 'synthetic', options: { ...this.#options } };
  }
}

type Rgb = [number, number, number];

/** Foreground and background colours from the same distribution, at least somewhat apart. */
function drawColours(r: () => number): { fg: Rgb; bg: Rgb } {
  let fg: Rgb;
  let bg: Rgb;
  do {
    fg = [r(), r(), r()];
    bg = [r(), r(), r()];
  } while (Math.hypot(fg[0] - bg[0], fg[1] - bg[1], fg[2] - bg[2]) < 0.35);
  return { fg, bg };
}

/** Size (side L of the equal-area square), rotation and stripe/checker period of one sample. */
interface Geometry {
  L: number;
  theta: number;
  cos: number;
  sin: number;
  period: number;
  phase: number;
}

/** Equal-area size: the shape covers L*L pixels, with L*L in [3%, 20%] of the image. */
function drawGeometry(r: () => number, S: number): Geometry {
  const area = (0.03 + 0.17 * r()) * S * S;
  const L = Math.sqrt(area);
  const theta = 2 * Math.PI * r();
  const period = Math.max(6, (6 + 8 * r()) * (S / 227));
  const phase = r() * period;
  return { L, theta, cos: Math.cos(theta), sin: Math.sin(theta), period, phase };
}

/**
 * A class's shape around the origin: `inside(dx, dy)` tests a pixel centre's offset, `reach` is
 * the radius of a circle that contains the shape.
 */
function shapeOf(name: (typeof SYNTHETIC_CLASSES)[number], g: Geometry): { reach: number; inside: (dx: number, dy: number) => boolean } {
  const { L, theta, cos, sin, period, phase } = g;
  switch (name) {
    case 'disc': {
      const rho2 = (L * L) / Math.PI;
      return { reach: Math.sqrt(rho2), inside: (dx, dy) => dx * dx + dy * dy <= rho2 };
    }
    case 'square': {
      const h = L / 2;
      return { reach: h * Math.SQRT2, inside: (dx, dy) => Math.abs(cos * dx + sin * dy) <= h && Math.abs(-sin * dx + cos * dy) <= h };
    }
    case 'triangle': {
      const a = L * Math.sqrt(4 / Math.sqrt(3)); // equilateral side with area L^2
      const circum = a / Math.sqrt(3);
      const inr = circum / 2;
      const n = [0, 1, 2].map((k) => theta + Math.PI / 2 + (2 * Math.PI * k) / 3).map((t) => [Math.cos(t), Math.sin(t)] as const);
      const [n0, n1, n2] = n as [readonly [number, number], readonly [number, number], readonly [number, number]];
      return { reach: circum, inside: (dx, dy) => n0[0] * dx + n0[1] * dy <= inr && n1[0] * dx + n1[1] * dy <= inr && n2[0] * dx + n2[1] * dy <= inr };
    }
    case 'cross': {
      const e = (L * 3) / Math.sqrt(20); // arm half-length; thickness 2e/3 gives area L^2
      const t = e / 3;
      return {
        reach: Math.hypot(e, t),
        inside: (dx, dy) => {
          const u = Math.abs(cos * dx + sin * dy);
          const v = Math.abs(-sin * dx + cos * dy);
          return (u <= t && v <= e) || (v <= t && u <= e);
        },
      };
    }
    case 'ring': {
      const ro2 = (L * L) / (0.64 * Math.PI);
      const ri2 = 0.36 * ro2;
      return {
        reach: Math.sqrt(ro2),
        inside: (dx, dy) => {
          const d2 = dx * dx + dy * dy;
          return d2 <= ro2 && d2 >= ri2;
        },
      };
    }
    case 'hstripes':
    case 'vstripes': {
      // Stripes (half foreground) inside a disc of twice the area; orientation is the class.
      const rho2 = (2 * L * L) / Math.PI;
      const half = period / 2;
      const vertical = name === 'vstripes';
      return { reach: Math.sqrt(rho2), inside: (dx, dy) => dx * dx + dy * dy <= rho2 && Math.floor(((vertical ? dx : dy) + phase) / half) % 2 === 0 };
    }
    case 'checker': {
      const h = L / Math.SQRT2;
      const cell = period / 2;
      return { reach: h * Math.SQRT2, inside: (dx, dy) => Math.abs(dx) <= h && Math.abs(dy) <= h && (Math.floor((dx + phase) / cell) + Math.floor((dy + phase) / cell)) % 2 === 0 };
    }
  }
}

/** Places the shape at a random centre that keeps it in the image and marks its pixels (S*S, 1 = inside). */
function rasterise(S: number, reach: number, inside: (dx: number, dy: number) => boolean, r: () => number): Uint8Array {
  const margin = Math.min(reach, S / 2 - 1);
  const cx = margin + (S - 2 * margin) * r();
  const cy = margin + (S - 2 * margin) * r();
  const mask = new Uint8Array(S * S);
  const x0 = Math.max(0, Math.floor(cx - reach));
  const x1 = Math.min(S - 1, Math.ceil(cx + reach));
  const y0 = Math.max(0, Math.floor(cy - reach));
  const y1 = Math.min(S - 1, Math.ceil(cy + reach));
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      if (inside(x + 0.5 - cx, dy)) mask[y * S + x] = 1;
    }
  }
  return mask;
}

/**
 * Colour, noise, clamp to [0,1], then normalise (float output) or round to 8 bits (byte
 * output), CHW at `offset`. A fast xorshift stream, seeded from `r`, for the noise.
 */
function paint(
  out: Float32Array | Uint8Array,
  offset: number,
  mask: Uint8Array,
  fg: Rgb,
  bg: Rgb,
  o: { noise: number; mean: Rgb; std: Rgb },
  r: () => number,
): void {
  const plane = mask.length;
  const noise = o.noise;
  let state = (Math.floor(r() * 4294967296) | 1) >>> 0;
  const amp = noise * 2 / 4294967296;
  const bytes = out instanceof Uint8Array;
  for (let c = 0; c < 3; c++) {
    const f = fg[c]!;
    const b = bg[c]!;
    const m = o.mean[c]!;
    const inv = 1 / o.std[c]!;
    const off = offset + c * plane;
    for (let p = 0; p < plane; p++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      let v = (mask[p] === 1 ? f : b) + ((state >>> 0) * amp - noise);
      v = v < 0 ? 0 : v > 1 ? 1 : v;
      out[off + p] = bytes ? Math.round(v * 255) : (v - m) * inv;
    }
  }
}
