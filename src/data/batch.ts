// Batch assembly (shared by the in-thread path and the worker threads) and rebuilding a
// dataset from its serialisable description.
import { dataError, type Batch, type Dataset, type DatasetSpec, type DataWarning, type SampleContext, type SampleInfo } from './common.js';
import { ImageFolder } from './folder.js';
import { SyntheticDataset } from './synthetic.js';

/** Rebuilds a dataset from `dataset.describe()` (inside a worker thread). */
export function datasetFromSpec(spec: DatasetSpec, onWarning?: (warning: DataWarning) => void): Dataset {
  switch (spec.kind) {
    case 'synthetic':
      return new SyntheticDataset(spec.options);
    case 'folder':
      return ImageFolder.fromState(spec.state, onWarning);
    default:
      throw dataError(`unknown dataset kind '${(spec as { kind: string }).kind}'`);
  }
}

export interface BatchRequest {
  indices: number[];
  epoch: number;
  seed: number;
  batchIndex: number;
  /** 'uint8': 8-bit pixels (the dataset's loadPixelsInto), normalised later on the device */
  format?: 'float32' | 'uint8';
}

/** The batch's transferable buffers (to post it from a worker thread without copying). */
export function batchBuffers(batch: Batch): ArrayBuffer[] {
  const images = batch.format === 'uint8' ? batch.pixels : batch.images;
  return [images.buffer as ArrayBuffer, batch.labels.buffer as ArrayBuffer];
}

/**
 * Fills labels and indices for the n samples of a batch, calling `load(k)` for each sample k
 * with up to `concurrency` loads in flight; `load` places the sample's image itself.
 */
async function loadSamples(
  req: BatchRequest,
  concurrency: number,
  load: (k: number) => SampleInfo | Promise<SampleInfo>,
): Promise<{ labels: Int32Array; indices: number[] }> {
  const n = req.indices.length;
  const labels = new Int32Array(n);
  const indices = new Array<number>(n);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      const k = next++;
      const r = load(k);
      const info = r instanceof Promise ? await r : r;
      // a label the int32 labels tensor cannot hold exactly (1.5, NaN, 2^32 + 1) would be
      // silently another class: refused, naming the sample
      const label = (info as SampleInfo | null | undefined)?.label;
      if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label > 0x7fffffff) {
        throw dataError(`sample ${req.indices[k]}: expected a label that is an integer in [0, 2^31), got ${typeof label === 'number' ? String(label) : typeof label}`);
      }
      labels[k] = label;
      indices[k] = info.index ?? req.indices[k]!;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, lane));
  return { labels, indices };
}

/** Loads the samples of one batch (up to `concurrency` decodes at once) into NCHW arrays. */
export async function assembleBatch(dataset: Dataset, req: BatchRequest, concurrency = 8): Promise<Batch> {
  const [C, H, W] = dataset.sampleShape;
  const n = req.indices.length;
  const per = C * H * W;
  const shape: [number, number, number, number] = [n, C, H, W];
  const ctx: SampleContext = { seed: req.seed, epoch: req.epoch };
  if (req.format === 'uint8') {
    const into = dataset.loadPixelsInto?.bind(dataset);
    const norm = dataset.normalization;
    if (!into || !norm) throw dataError("DataLoader: format 'uint8' needs a dataset with loadPixelsInto() and normalization (SyntheticDataset, ImageFolder)");
    const pixels = new Uint8Array(n * per);
    const { labels, indices } = await loadSamples(req, concurrency, (k) => into(req.indices[k]!, ctx, pixels, k * per));
    return { format: 'uint8', pixels, labels, indices, shape, batchIndex: req.batchIndex, epoch: req.epoch, mean: [...norm.mean], std: [...norm.std] };
  }
  const images = new Float32Array(n * per);
  const into = dataset.loadInto?.bind(dataset);
  const place = (k: number, s: { image: Float32Array; label: number; index?: number }): SampleInfo => {
    if (s === null || typeof s !== 'object' || !(s.image instanceof Float32Array)) {
      throw dataError(`sample ${req.indices[k]}: load() must return { image: Float32Array, label }, got ${s === null || typeof s !== 'object' ? String(s) : `an image of ${s.image === undefined ? 'undefined' : Object.prototype.toString.call(s.image)}`}`);
    }
    if (s.image.length !== per) {
      throw dataError(`sample ${req.indices[k]} has ${s.image.length} values, expected ${per} ([${C}, ${H}, ${W}])`);
    }
    images.set(s.image, k * per);
    return s;
  };
  const { labels, indices } = await loadSamples(req, concurrency, (k) => {
    if (into) return into(req.indices[k]!, ctx, images, k * per);
    const s = dataset.load(req.indices[k]!, ctx);
    return s instanceof Promise ? s.then((v) => place(k, v)) : place(k, s);
  });
  return { images, labels, indices, shape, batchIndex: req.batchIndex, epoch: req.epoch };
}
