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

  #render(index: number, out: Float32Array | Uint8Array, offset: number): { label: number } {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw dataError(`SyntheticDataset: index ${index} out of range [0, ${this.length})`);
    }
    const label = this.label(index);
    const S = this.imageSize;
    const r = rngFor(this.seed, SPLIT_ID[this.split], index);

    // Colours: foreground and background from the same distribution, at least somewhat apart.
    let fg: [number, number, number];
    let bg: [number, number, number];
    do {
      fg = [r(), r(), r()];
      bg = [r(), r(), r()];
    } while (Math.hypot(fg[0] - bg[0], fg[1] - bg[1], fg[2] - bg[2]) < 0.35);

    // Equal-area size: the shape covers L*L pixels, with L*L in [3%, 20%] of the image.
    const area = (0.03 + 0.17 * r()) * S * S;
    const L = Math.sqrt(area);
    const theta = 2 * Math.PI * r();
    const cos = Math.cos(theta);
    const sin = Math.sin(theta);
    const period = Math.max(6, (6 + 8 * r()) * (S / 227));
    const phase = r() * period;

    const name = SYNTHETIC_CLASSES[label]!;
    let reach: number; // radius of a circle around the centre that contains the shape
    let inside: (dx: number, dy: number) => boolean;
    switch (name) {
      case 'disc': {
        const rho2 = (L * L) / Math.PI;
        reach = Math.sqrt(rho2);
        inside = (dx, dy) => dx * dx + dy * dy <= rho2;
        break;
      }
      case 'square': {
        const h = L / 2;
        reach = h * Math.SQRT2;
        inside = (dx, dy) => Math.abs(cos * dx + sin * dy) <= h && Math.abs(-sin * dx + cos * dy) <= h;
        break;
      }
      case 'triangle': {
        const a = L * Math.sqrt(4 / Math.sqrt(3)); // equilateral side with area L^2
        const circum = a / Math.sqrt(3);
        const inr = circum / 2;
        reach = circum;
        const n = [0, 1, 2].map((k) => theta + Math.PI / 2 + (2 * Math.PI * k) / 3).map((t) => [Math.cos(t), Math.sin(t)] as const);
        const [n0, n1, n2] = n as [readonly [number, number], readonly [number, number], readonly [number, number]];
        inside = (dx, dy) => n0[0] * dx + n0[1] * dy <= inr && n1[0] * dx + n1[1] * dy <= inr && n2[0] * dx + n2[1] * dy <= inr;
        break;
      }
      case 'cross': {
        const e = (L * 3) / Math.sqrt(20); // arm half-length; thickness 2e/3 gives area L^2
        const t = e / 3;
        reach = Math.hypot(e, t);
        inside = (dx, dy) => {
          const u = Math.abs(cos * dx + sin * dy);
          const v = Math.abs(-sin * dx + cos * dy);
          return (u <= t && v <= e) || (v <= t && u <= e);
        };
        break;
      }
      case 'ring': {
        const ro2 = (L * L) / (0.64 * Math.PI);
        const ri2 = 0.36 * ro2;
        reach = Math.sqrt(ro2);
        inside = (dx, dy) => {
          const d2 = dx * dx + dy * dy;
          return d2 <= ro2 && d2 >= ri2;
        };
        break;
      }
      case 'hstripes':
      case 'vstripes': {
        // Stripes (half foreground) inside a disc of twice the area; orientation is the class.
        const rho2 = (2 * L * L) / Math.PI;
        reach = Math.sqrt(rho2);
        const half = period / 2;
        const vertical = name === 'vstripes';
        inside = (dx, dy) => dx * dx + dy * dy <= rho2 && Math.floor(((vertical ? dx : dy) + phase) / half) % 2 === 0;
        break;
      }
      case 'checker': {
        const h = L / Math.SQRT2;
        reach = h * Math.SQRT2;
        const cell = period / 2;
        inside = (dx, dy) => Math.abs(dx) <= h && Math.abs(dy) <= h && (Math.floor((dx + phase) / cell) + Math.floor((dy + phase) / cell)) % 2 === 0;
        break;
      }
    }
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

    // Colour, noise, clamp to [0,1], then normalise (or round to 8 bits). A fast xorshift stream
    // for the noise.
    const plane = S * S;
    if (offset < 0 || offset + 3 * plane > out.length) throw dataError(`SyntheticDataset: output buffer too small`);
    let state = (Math.floor(r() * 4294967296) | 1) >>> 0;
    const amp = this.noise * 2 / 4294967296;
    const bytes = out instanceof Uint8Array;
    for (let c = 0; c < 3; c++) {
      const f = fg[c]!;
      const b = bg[c]!;
      const m = this.#mean[c]!;
      const inv = 1 / this.#std[c]!;
      const off = offset + c * plane;
      for (let p = 0; p < plane; p++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        let v = (mask[p] === 1 ? f : b) + ((state >>> 0) * amp - this.noise);
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        out[off + p] = bytes ? Math.round(v * 255) : (v - m) * inv;
      }
    }
    return { label };
  }

  load(index: number): Sample {
    return this.get(index);
  }

  describe(): DatasetSpec {
    return { kind: 'synthetic', options: { ...this.#options } };
  }
}
