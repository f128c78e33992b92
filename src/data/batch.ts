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

async function assemblePixels(dataset: Dataset, req: BatchRequest, concurrency: number): Promise<Batch> {
  const [C, H, W] = dataset.sampleShape;
  const into = dataset.loadPixelsInto?.bind(dataset);
  const norm = dataset.normalization;
  if (!into || !norm) throw dataError('DataLoader: format \'uint8\' needs a dataset with loadPixelsInto() and normalization (SyntheticDataset, ImageFolder)');
  const n = req.indices.length;
  const per = C * H * W;
  const pixels = new Uint8Array(n * per);
  const labels = new Int32Array(n);
  const indices = new Array<number>(n);
  const ctx: SampleContext = { seed: req.seed, epoch: req.epoch };
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      const k = next++;
      const r = into(req.indices[k]!, ctx, pixels, k * per);
      const info: SampleInfo = r instanceof Promise ? await r : r;
      labels[k] = info.label;
      indices[k] = info.index ?? req.indices[k]!;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, lane));
  return {
    format: 'uint8', pixels, labels, indices, shape: [n, C, H, W], batchIndex: req.batchIndex, epoch: req.epoch,
    mean: [...norm.mean], std: [...norm.std],
  };
}

/** Loads the samples of one batch (up to `concurrency` decodes at once) into NCHW arrays. */
export async function assembleBatch(dataset: Dataset, req: BatchRequest, concurrency = 8): Promise<Batch> {
  if (req.format === 'uint8') return assemblePixels(dataset, req, concurrency);
  const [C, H, W] = dataset.sampleShape;
  const n = req.indices.length;
  const per = C * H * W;
  const images = new Float32Array(n * per);
  const labels = new Int32Array(n);
  const indices = new Array<number>(n);
  const ctx: SampleContext = { seed: req.seed, epoch: req.epoch };
  const place = (k: number, s: { image: Float32Array; label: number; index?: number }): void => {
    if (s.image.length !== per) {
      throw dataError(`sample ${req.indices[k]} has ${s.image.length} values, expected ${per} ([${C}, ${H}, ${W}])`);
    }
    images.set(s.image, k * per);
    labels[k] = s.label;
    indices[k] = s.index ?? req.indices[k]!;
  };
  const into = dataset.loadInto?.bind(dataset);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      const k = next++;
      if (into) {
        const r = into(req.indices[k]!, ctx, images, k * per);
        const info = r instanceof Promise ? await r : r;
        labels[k] = info.label;
        indices[k] = info.index ?? req.indices[k]!;
      } else {
        const s = dataset.load(req.indices[k]!, ctx);
        place(k, s instanceof Promise ? await s : s);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, lane));
  return { images, labels, indices, shape: [n, C, H, W], batchIndex: req.batchIndex, epoch: req.epoch };
}
