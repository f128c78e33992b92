// A folder of images, one sub-folder per class (torchvision's ImageFolder layout), decoded with
// sharp and transformed as in Krizhevsky et al. 2012: resize the shorter side to 256, then a
// random 227x227 crop and a random horizontal flip for training, or the centre crop for
// evaluation; then per-channel mean/std normalisation of [0,1] pixels.
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Sharp, SharpOptions } from 'sharp';
import { checkInt, checkNormalization, dataError, normalizationLut, rngFor, type Dataset, type DataWarning, type Sample, type SampleContext } from './common.js';
import type { DatasetSpec, ImageFolderState, ResizeKernel, ResolvedTransform } from './spec.js';

export type { ImageFolderState, ResizeKernel, ResolvedTransform };

export const DEFAULT_EXTENSIONS: readonly string[] = ['jpg', 'jpeg', 'png', 'webp'];

export interface TransformOptions {
  /** Random crop and flip (training) or centre crop (evaluation). Default: split === 'train'. */
  train?: boolean;
  /** The shorter side is resized to this. Default 256. */
  resizeSize?: number;
  /** Side of the square crop. Default 227 (the paper); 224 for torchvision's AlexNet. */
  cropSize?: number;
  /** Random horizontal flip when training. Default true. */
  flip?: boolean;
  /** sharp's resampling kernel. Default 'linear' (torchvision's bilinear, antialiased). */
  kernel?: ResizeKernel;
  /** Per-channel normalisation of [0,1] pixels; ImageNet's by default. */
  mean?: readonly number[];
  std?: readonly number[];
}

export interface ImageFolderOptions extends TransformOptions {
  /** Sub-folder of root to use (root/<split>/<class>/...). */
  split?: string;
  /** File extensions to include (case-insensitive). Default jpg, jpeg, png, webp. */
  extensions?: readonly string[];
  /** Skip an unreadable image with a warning and use another sample instead of throwing. */
  skipCorrupt?: boolean;
  /** Receives warnings (skipped files); console.warn when absent. */
  onWarning?: (warning: DataWarning) => void;
}

/** Where the crop sits in the resized image, and whether it is mirrored. */
export interface CropParams {
  x: number;
  y: number;
  flip: boolean;
}

/** A decoded image with its shorter side resized: width*height*3 bytes, HWC RGB. */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
}

type SharpFactory = (input?: string | Buffer, options?: SharpOptions) => Sharp;
let sharpPromise: Promise<SharpFactory> | undefined;
/** sharp is loaded on first use, so importing the library does not load libvips. */
function loadSharp(): Promise<SharpFactory> {
  sharpPromise ??= import('sharp').then((m) => (m as unknown as { default: SharpFactory }).default);
  return sharpPromise;
}

const MAX_REPLACEMENT_TRIES = 16;

/**
 * The most bytes one decoded, resized image may have (2^28: 256 MiB, the same bound as a sample's
 * values). A resized image is held whole while its crop is taken, and its longer side grows with
 * the aspect ratio: a 700-byte 1x30000 PNG resized to a shorter side of 256 would be 256x7680000
 * pixels, 5.9 GB (which took sharp down with an abort). Checked from the header, before decoding.
 */
export const MAX_DECODED_BYTES = 2 ** 28;

export class ImageFolder implements Dataset {
  readonly root: string;
  readonly classNames: readonly string[];
  /** Paths relative to root. */
  readonly files: readonly string[];
  readonly labels: Int32Array;
  readonly transform: Readonly<ResolvedTransform>;
  readonly skipCorrupt: boolean;
  readonly sampleShape: readonly [number, number, number];
  #onWarning: ((warning: DataWarning) => void) | undefined;
  readonly #lut: [Float32Array, Float32Array, Float32Array];

  /** Lists root (or root/split): one sub-folder per class, sorted names = class indices. */
  static async open(root: string, options: ImageFolderOptions = {}): Promise<ImageFolder> {
    const transform = resolveTransform(options);
    // options of the wrong type were a TypeError without a code (or, for onWarning, one thrown in
    // the middle of an epoch by the first skipped file)
    if (options.split !== undefined && typeof options.split !== 'string') throw dataError(`ImageFolder: split must be a string, got ${typeof options.split}`);
    const ext = options.extensions ?? DEFAULT_EXTENSIONS;
    if (!Array.isArray(ext) || !ext.every((e) => typeof e === 'string')) throw dataError('ImageFolder: extensions must be an array of strings');
    if (options.onWarning !== undefined && typeof options.onWarning !== 'function') throw dataError(`ImageFolder: onWarning must be a function, got ${typeof options.onWarning}`);
    const dir = options.split === undefined ? root : join(root, options.split);
    const extensions = new Set(ext.map((e) => e.toLowerCase().replace(/^\./, '')));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      throw dataError(`ImageFolder: cannot read the folder '${dir}': ${(e as Error).message}`, dir, e);
    }
    const classNames: string[] = [];
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      // a dangling link or a link loop beside the class folders is not a class: left out, as
      // such links are inside them
      if (entry.isDirectory() || (entry.isSymbolicLink() && (await stat(join(dir, entry.name)).catch(() => undefined))?.isDirectory())) classNames.push(entry.name);
    }
    classNames.sort(byCodePoint);
    if (classNames.length === 0) throw dataError(`ImageFolder: '${dir}' has no class sub-folders`, dir);
    const files: string[] = [];
    const labels: number[] = [];
    const skipCorrupt = options.skipCorrupt ?? false;
    const onName = (path: string, why: string): void => {
      // a name the file system holds but a JavaScript string cannot (bytes that are not UTF-8)
      // would fail in the middle of an epoch: refused here, or left out with skipCorrupt
      if (!skipCorrupt) throw dataError(`ImageFolder: ${why}: '${path}' (rename it, or pass skipCorrupt to leave it out)`, path);
      const warning = { code: 'ERR_DATA' as const, message: `${why}: '${path}' (left out)`, file: path };
      if (options.onWarning) options.onWarning(warning);
      else console.warn(`alexnet data: ${warning.message}`);
    };
    for (let c = 0; c < classNames.length; c++) {
      const classDir = join(dir, classNames[c]!);
      const found = (await listImages(classDir, extensions, onName)).map((f) => relative(dir, f).split(sep).join('/')).sort(byCodePoint);
      if (found.length === 0) {
        throw dataError(`ImageFolder: class folder '${classDir}' holds no image with extension ${[...extensions].join('/')}`, classDir);
      }
      for (const f of found) {
        files.push(f);
        labels.push(c);
      }
    }
    return new ImageFolder(
      { root: dir, classNames, files, labels: Int32Array.from(labels), transform, skipCorrupt },
      options.onWarning,
    );
  }

  /** Rebuilds a dataset from `describe()`'s state (used by worker threads). */
  static fromState(state: ImageFolderState, onWarning?: (warning: DataWarning) => void): ImageFolder {
    return new ImageFolder(state, onWarning);
  }

  private constructor(state: ImageFolderState, onWarning?: (warning: DataWarning) => void) {
    this.root = state.root;
    this.classNames = state.classNames;
    this.files = state.files;
    this.labels = state.labels;
    this.transform = state.transform;
    this.skipCorrupt = state.skipCorrupt;
    this.#onWarning = onWarning;
    const C = state.transform.cropSize;
    this.sampleShape = [3, C, C];
    this.#lut = normalizationLut(state.transform.mean, state.transform.std);
  }

  get length(): number {
    return this.files.length;
  }

  /** Absolute path of sample i. */
  path(index: number): string {
    return join(this.root, this.files[index]!);
  }

  label(index: number): number {
    return this.labels[index]!;
  }

  /** Decodes image i (any channels → RGB, alpha dropped) and resizes its shorter side. */
  async decode(index: number): Promise<DecodedImage> {
    this.#checkIndex(index);
    const file = this.path(index);
    const sharp = await loadSharp();
    const R = this.transform.resizeSize;
    let out: { data: Buffer; info: { width: number; height: number; channels: number } };
    try {
      // A FIFO (or another special file) would block a decoder thread forever: refuse it first.
      // stat does not open the file, so it cannot block.
      const st = await stat(file);
      if (!st.isFile()) throw new Error(`not a regular file (it is ${st.isFIFO() ? 'a FIFO (named pipe)' : st.isDirectory() ? 'a directory' : 'a special file'})`);
      const img = sharp(file);
      // The header gives the size: an image whose resized form would not fit in memory is
      // refused here, before anything is decoded or allocated.
      const { width: w, height: h } = await img.metadata();
      if (!w || !h) throw new Error('the header gives no image size');
      const [rw, rh] = resizedSize(w, h, R);
      if (rw * rh * 3 > MAX_DECODED_BYTES) {
        throw new Error(`its ${w}x${h} pixels resized to a shorter side of ${R} would be ${rw}x${rh} (${rw * rh * 3} bytes, more than the ${MAX_DECODED_BYTES} allowed): an extreme aspect ratio`);
      }
      out = await img
        .resize(R, R, { fit: 'outside', kernel: this.transform.kernel })
        .removeAlpha()
        .toColourspace('srgb')
        .raw()
        .toBuffer({ resolveWithObject: true });
    } catch (e) {
      throw dataError(`ImageFolder: cannot decode '${file}': ${(e as Error).message}`, file, e);
    }
    const { width, height, channels } = out.info;
    let data: Uint8Array = out.data;
    if (channels !== 3) data = toRgb(out.data, width * height, channels, file);
    return { data, width, height };
  }

  /** The crop (and flip) of sample i for an image of the given resized size. */
  cropParams(index: number, ctx: SampleContext, width: number, height: number): CropParams {
    const C = this.transform.cropSize;
    if (width < C || height < C) {
      throw dataError(`ImageFolder: '${this.path(index)}' resized to ${width}x${height} is smaller than the ${C}x${C} crop`, this.path(index));
    }
    if (!this.transform.train) {
      return { x: Math.round((width - C) / 2), y: Math.round((height - C) / 2), flip: false };
    }
    const r = rngFor(ctx.seed, ctx.epoch, index, 0xc709);
    const x = Math.floor(r() * (width - C + 1));
    const y = Math.floor(r() * (height - C + 1));
    const flip = this.transform.flip && r() < 0.5;
    return { x, y, flip };
  }

  /** The per-channel normalisation apply() uses (applied on the device for 8-bit batches). */
  get normalization(): { mean: [number, number, number]; std: [number, number, number] } {
    return { mean: [...this.transform.mean], std: [...this.transform.std] };
  }

  /**
   * Crops, flips and normalises a decoded image into 3*C*C floats (CHW); into a Uint8Array it
   * crops and flips only (the 8-bit pixels, normalised later on the device).
   */
  apply<T extends Float32Array | Uint8Array = Float32Array>(img: DecodedImage, params: CropParams, out: T = new Float32Array(3 * this.transform.cropSize ** 2) as T, offset = 0): T {
    const C = this.transform.cropSize;
    const { data, width, height } = img;
    if (params.x < 0 || params.y < 0 || params.x + C > width || params.y + C > height) {
      throw dataError(`ImageFolder: crop ${C}x${C} at (${params.x}, ${params.y}) is outside the ${width}x${height} image`);
    }
    if (offset < 0 || offset + 3 * C * C > out.length) throw dataError('ImageFolder: output buffer too small');
    const plane = C * C;
    for (let c = 0; c < 3; c++) {
      const lut: ArrayLike<number> = out instanceof Uint8Array ? IDENTITY_LUT : this.#lut[c]!;
      const base = offset + c * plane;
      for (let yy = 0; yy < C; yy++) {
        const row = ((params.y + yy) * width + params.x) * 3 + c;
        const o = base + yy * C;
        if (params.flip) {
          for (let xx = 0; xx < C; xx++) out[o + xx] = lut[data[row + (C - 1 - xx) * 3]!]!;
        } else {
          for (let xx = 0; xx < C; xx++) out[o + xx] = lut[data[row + xx * 3]!]!;
        }
      }
    }
    return out;
  }

  /**
   * Sample i for (seed, epoch): decode, crop, flip, normalise. `override` replaces parts of the
   * drawn crop parameters (for tests and inspection). With skipCorrupt, an unreadable file is
   * reported through onWarning and another sample (drawn from (seed, epoch, index)) is used; the
   * returned `index` names it.
   */
  async load(index: number, ctx: SampleContext = { seed: 0, epoch: 0 }, override?: Partial<CropParams>): Promise<Sample & { index: number }> {
    const image = new Float32Array(3 * this.transform.cropSize ** 2);
    const info = await this.loadInto(index, ctx, image, 0, override);
    return { image, ...info };
  }

  /** load() as 8-bit pixels (cropped and flipped, not normalised) into out[offset, offset + 3*C*C). */
  loadPixelsInto(index: number, ctx: SampleContext, out: Uint8Array, offset: number, override?: Partial<CropParams>): Promise<{ label: number; index: number }> {
    return this.loadInto(index, ctx, out, offset, override);
  }

  /** load() writing into out[offset, offset + 3*C*C) (the DataLoader's batch buffer). */
  async loadInto(index: number, ctx: SampleContext, out: Float32Array | Uint8Array, offset: number, override?: Partial<CropParams>): Promise<{ label: number; index: number }> {
    let current = index;
    for (let attempt = 0; ; attempt++) {
      let img: DecodedImage;
      try {
        img = await this.decode(current);
      } catch (e) {
        if (!this.skipCorrupt || attempt >= MAX_REPLACEMENT_TRIES) {
          if (this.skipCorrupt) throw dataError(`ImageFolder: gave up after ${attempt + 1} unreadable images in a row; last: ${(e as Error).message}`, this.path(current), e);
          throw e;
        }
        const replacement = Math.floor(rngFor(ctx.seed, ctx.epoch, index, attempt, 0x5c1b)() * this.length);
        this.emitWarning({
          code: 'ERR_DATA',
          message: `${(e as Error).message} (skipped; using sample ${replacement} '${this.files[replacement]}' instead)`,
          file: this.path(current),
          index: current,
          replacement,
        });
        current = replacement;
        continue;
      }
      const params = { ...this.cropParams(current, ctx, img.width, img.height), ...override };
      this.apply(img, params, out, offset);
      return { label: this.label(current), index: current };
    }
  }

  emitWarning(warning: DataWarning): void {
    if (this.#onWarning) this.#onWarning(warning);
    else console.warn(`alexnet data: ${warning.message}`);
  }

  describe(): DatasetSpec {
    return {
      kind: 'folder',
      state: {
        root: this.root,
        classNames: [...this.classNames],
        files: [...this.files],
        labels: this.labels,
        transform: { ...this.transform, mean: [...this.transform.mean], std: [...this.transform.std] },
        skipCorrupt: this.skipCorrupt,
      },
    };
  }

  #checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw dataError(`ImageFolder: index ${index} out of range [0, ${this.length})`);
    }
  }
}

/** The most resizeSize may be: a square image resized to it has at most MAX_DECODED_BYTES (9459). */
export const MAX_RESIZE_SIZE = Math.floor(Math.sqrt(MAX_DECODED_BYTES / 3));

/** The size of a w x h image resized so that its shorter side is r (sharp's fit 'outside'), rounded up. */
function resizedSize(w: number, h: number, r: number): [number, number] {
  const scale = Math.max(r / w, r / h);
  return [Math.max(r, Math.ceil(w * scale)), Math.max(r, Math.ceil(h * scale))];
}

export function resolveTransform(options: TransformOptions & { split?: string }): ResolvedTransform {
  const { mean, std } = checkNormalization(options, 'ImageFolder');
  const resizeSize = checkInt(options.resizeSize ?? 256, 'ImageFolder: resizeSize', 1);
  // every image is resized to at least resizeSize x resizeSize and held whole (MAX_DECODED_BYTES)
  if (resizeSize > MAX_RESIZE_SIZE) throw dataError(`ImageFolder: resizeSize must be at most ${MAX_RESIZE_SIZE}, got ${resizeSize}`);
  const cropSize = checkInt(options.cropSize ?? 227, 'ImageFolder: cropSize', 1);
  if (cropSize > resizeSize) throw dataError(`ImageFolder: cropSize ${cropSize} is larger than resizeSize ${resizeSize}`);
  const kernel = options.kernel ?? 'linear';
  if (!['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'].includes(kernel)) throw dataError(`ImageFolder: unknown kernel '${kernel}'`);
  return { train: options.train ?? options.split === 'train', resizeSize, cropSize, flip: options.flip ?? true, kernel, mean, std };
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The image files under dir, recursively, following symbolic links. Every folder is listed once
 * (by device and inode): a link back to a folder being listed (`x -> .`, `x -> ..`) is a cycle
 * and an error (it listed the same files 40 times over, or 2^40 times with two such links: a
 * hang), and a second link to a folder already listed adds nothing. A folder that cannot be read
 * is an ERR_DATA error naming it.
 */
async function listImages(dir: string, extensions: Set<string>, onName: (path: string, why: string) => void): Promise<string[]> {
  const out: string[] = [];
  const listed = new Set<string>();
  const walk = async (d: string, ancestors: readonly { id: string; path: string }[]): Promise<void> => {
    let entries: Dirent<Buffer>[];
    let id: string;
    try {
      const s = await stat(d);
      id = `${s.dev}:${s.ino}`;
      const again = ancestors.find((a) => a.id === id);
      if (again) throw dataError(`ImageFolder: a symbolic link cycle: '${d}' is the folder '${again.path}' that contains it; remove the link`, d);
      if (listed.has(id)) return;
      listed.add(id);
      entries = await readdir(d, { withFileTypes: true, encoding: 'buffer' });
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_DATA') throw e;
      throw dataError(`ImageFolder: cannot read the folder '${d}': ${(e as Error).message}`, d, e);
    }
    // sorted, so that which of two links to one folder is listed does not depend on the file system's order
    const names = entries.map((entry) => ({ entry, name: entry.name.toString('utf8') })).sort((a, b) => byCodePoint(a.name, b.name));
    for (const { entry, name } of names) {
      if (name.startsWith('.')) continue;
      const full = join(d, name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        const s = await stat(full).catch(() => undefined);
        isDir = s?.isDirectory() ?? false;
        isFile = s?.isFile() ?? false;
      }
      const dot = name.lastIndexOf('.');
      const image = isFile && dot >= 0 && extensions.has(name.slice(dot + 1).toLowerCase());
      if ((isDir || image) && !Buffer.from(name, 'utf8').equals(entry.name)) {
        onName(full, `the name of ${isDir ? 'a folder' : 'an image'} is not valid UTF-8`);
        continue;
      }
      if (isDir) await walk(full, [...ancestors, { id, path: d }]);
      else if (image) out.push(full);
    }
  };
  await walk(dir, []);
  return out;
}

/** v -> v: apply()'s table for 8-bit output. */
const IDENTITY_LUT = Uint8Array.from({ length: 256 }, (_, v) => v);

/** 1 (gray), 2 (gray+alpha) or 4 (RGBA) channels → RGB. sharp normally gives RGB already. */
function toRgb(src: Uint8Array, pixels: number, channels: number, file: string): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  if (channels === 1 || channels === 2) {
    for (let p = 0; p < pixels; p++) out[3 * p] = out[3 * p + 1] = out[3 * p + 2] = src[p * channels]!;
  } else if (channels >= 3) {
    for (let p = 0; p < pixels; p++) {
      out[3 * p] = src[p * channels]!;
      out[3 * p + 1] = src[p * channels + 1]!;
      out[3 * p + 2] = src[p * channels + 2]!;
    }
  } else {
    throw dataError(`ImageFolder: '${file}' decoded to ${channels} channels`, file);
  }
  return out;
}
