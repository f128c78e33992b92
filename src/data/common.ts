// Shared pieces of the data pipeline: the batch and sample formats, the dataset interface,
// the serialisable dataset description that crosses into worker threads, seeded random
// numbers derived from (seed, epoch, index), and per-channel normalisation.
import { mulberry32 } from '../random.js';
import type { DatasetSpec } from './spec.js';

/** One decoded, transformed, normalised image. */
export interface Sample {
  /** 3*H*W floats, CHW, normalised. */
  image: Float32Array;
  label: number;
}

/** What `loadInto` returns: the label, and the index actually loaded if it differs. */
export interface SampleInfo {
  label: number;
  index?: number;
}

/** What every batch carries besides its images. */
interface BatchBase {
  /** N class indices. */
  labels: Int32Array;
  /** The dataset index of each sample (a skipped corrupt file shows its replacement's index). */
  indices: number[];
  /** [N, 3, H, W]. */
  shape: [number, number, number, number];
  /** Position of this batch in the epoch (0-based). */
  batchIndex: number;
  epoch: number;
}

/** A batch of normalised float32 images (the DataLoader's default format). */
export interface FloatBatch extends BatchBase {
  format?: 'float32';
  /** N*3*H*W floats, NCHW, normalised. */
  images: Float32Array;
}

/**
 * A batch of 8-bit images before normalisation (DataLoader `format: 'uint8'`): a quarter of the
 * bytes to move between threads and to the device, normalised there (`normalizeImages`).
 */
export interface PixelBatch extends BatchBase {
  format: 'uint8';
  /** N*3*H*W bytes, NCHW, the pixels after cropping and flipping. */
  pixels: Uint8Array;
  /** The dataset's per-channel normalisation of [0,1] pixels, to apply on the device. */
  mean: [number, number, number];
  std: [number, number, number];
}

/** A batch of samples in plain host arrays (the trainer turns them into tensors). */
export type Batch = FloatBatch | PixelBatch;

/**
 * The normalisation as lookup tables: lut[c][v] = (v / 255 - mean[c]) / std[c], computed in
 * double and rounded once to float32 (what normalizeImages computes on every device).
 */
export function normalizationLut(mean: readonly number[], std: readonly number[]): [Float32Array, Float32Array, Float32Array] {
  return [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - mean[c]!) / std[c]!)) as [Float32Array, Float32Array, Float32Array];
}

/** The images of a batch as float32, normalising a pixel batch on the host (tests, tools). */
export function batchImages(batch: Batch): Float32Array {
  if (batch.format !== 'uint8') return batch.images;
  const { pixels } = batch;
  const plane = batch.shape[2] * batch.shape[3];
  const out = new Float32Array(pixels.length);
  const luts = normalizationLut(batch.mean, batch.std);
  for (let i = 0; i < pixels.length; i++) out[i] = luts[Math.floor(i / plane) % 3]![pixels[i]!]!;
  return out;
}

/** True when a dataset hands out 8-bit pixels and says how to normalise them (format 'uint8'). */
export function hasPixels(dataset: Dataset): boolean {
  return typeof dataset.loadPixelsInto === 'function' && dataset.normalization !== undefined;
}

/** What a dataset sample's random augmentation depends on. */
export interface SampleContext {
  seed: number;
  epoch: number;
}

/** A warning from the pipeline (a corrupt image skipped, ...). */
export interface DataWarning {
  code: 'ERR_DATA';
  message: string;
  file?: string;
  index?: number;
  replacement?: number;
}

export type { DatasetSpec };

/**
 * What the DataLoader needs from a dataset. `describe()` is required for worker threads
 * (`workers > 0`); any object with `length`, `sampleShape` and `load` works in-thread.
 */
export interface Dataset {
  readonly length: number;
  readonly classNames: readonly string[];
  /** [3, H, W] of every sample. */
  readonly sampleShape: readonly [number, number, number];
  load(index: number, ctx: SampleContext): Sample | Promise<Sample>;
  /**
   * Optional fast path: writes sample `index`'s image straight into `out` at `offset` (a batch
   * buffer) instead of allocating; returns its label (and the index actually used).
   */
  loadInto?(index: number, ctx: SampleContext, out: Float32Array, offset: number): SampleInfo | Promise<SampleInfo>;
  /**
   * Optional 8-bit path (DataLoader `format: 'uint8'`): writes sample `index`'s pixels, CHW,
   * after augmentation and before normalisation, into `out` at `offset`; `normalization` gives
   * the mean and std that turn them into what `load` returns.
   */
  loadPixelsInto?(index: number, ctx: SampleContext, out: Uint8Array, offset: number): SampleInfo | Promise<SampleInfo>;
  readonly normalization?: { mean: [number, number, number]; std: [number, number, number] };
  describe?(): DatasetSpec;
  /** Receives warnings (also those raised inside worker threads). */
  emitWarning?(warning: DataWarning): void;
}

export interface DataError extends Error {
  code: 'ERR_DATA';
  file?: string;
}

/** An error of the data pipeline (code 'ERR_DATA'); `file` names the offending file, if any. */
export function dataError(message: string, file?: string, cause?: unknown): DataError {
  const e = new Error(message, cause === undefined ? undefined : { cause }) as DataError;
  e.code = 'ERR_DATA';
  if (file !== undefined) e.file = file;
  return e;
}

/** ImageNet statistics of [0,1] RGB pixels (torchvision's defaults). */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/**
 * The inverse of the normalisation: a normalised CHW image (3*H*W floats) back to interleaved
 * 8-bit RGB (H*W*3 bytes, what sharp's raw input takes), clamped to [0, 255].
 */
export function toRgb8(
  image: Float32Array,
  width: number,
  height: number,
  mean: readonly number[] = IMAGENET_MEAN,
  std: readonly number[] = IMAGENET_STD,
): Uint8Array {
  const plane = width * height;
  const rgb = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++)
    for (let p = 0; p < plane; p++) rgb[p * 3 + c] = Math.max(0, Math.min(255, Math.round((image[c * plane + p]! * std[c]! + mean[c]!) * 255)));
  return rgb;
}

export interface Normalization {
  mean?: readonly number[];
  std?: readonly number[];
}

/** Checks mean/std (3 values each, std > 0) and returns them as tuples. */
export function checkNormalization(n: Normalization, what: string): { mean: [number, number, number]; std: [number, number, number] } {
  const mean = n.mean ?? IMAGENET_MEAN;
  const std = n.std ?? IMAGENET_STD;
  if (mean.length !== 3 || !mean.every(Number.isFinite)) throw dataError(`${what}: mean must be 3 finite numbers, got [${mean.join(', ')}]`);
  if (std.length !== 3 || !std.every((s) => Number.isFinite(s) && s > 0)) throw dataError(`${what}: std must be 3 positive numbers, got [${std.join(', ')}]`);
  return { mean: [mean[0]!, mean[1]!, mean[2]!], std: [std[0]!, std[1]!, std[2]!] };
}

/** 32-bit hash of a list of integers (murmur3-style mixing); order-sensitive. */
export function hash32(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const v of values) {
    // Fold values beyond 32 bits too (seeds may be large integers).
    const lo = v >>> 0;
    const hi = Math.floor(v / 4294967296) >>> 0;
    for (const w of hi === 0 ? [lo] : [lo, hi]) {
      let k = Math.imul(w, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h ^= k;
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A generator seeded from several integers, e.g. rngFor(seed, epoch, index). */
export function rngFor(...values: number[]): () => number {
  return mulberry32(hash32(...values));
}

/**
 * The most samples an epoch may have: its order is a JavaScript array, and V8 cannot hold a
 * packed array much beyond 2^27 elements (a longer one would take the process down with an
 * out-of-memory abort instead of an error).
 */
export const MAX_EPOCH_LENGTH = 100_000_000;

/** 0..n-1, shuffled by Fisher-Yates with `r` when given (the epoch orders of the DataLoader and the DistributedSampler). */
export function epochOrder(n: number, r: (() => number) | null): number[] {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_EPOCH_LENGTH)
    throw dataError(`an epoch of ${String(n)} samples: the length must be an integer in [0, ${MAX_EPOCH_LENGTH}]`);
  const order = Array.from({ length: n }, (_, i) => i);
  if (r === null) return order;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

export function checkInt(value: unknown, name: string, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw dataError(`${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}
