// The data pipeline: datasets (synthetic, image folder), transforms, and the DataLoader.
export {
  dataError,
  IMAGENET_MEAN,
  IMAGENET_STD,
  toRgb8,
  batchImages,
  hasPixels,
  normalizationLut,
  type FloatBatch,
  type PixelBatch,
  type Batch,
  type DataError,
  type Dataset,
  type DatasetSpec,
  type DataWarning,
  type Normalization,
  type Sample,
  type SampleContext,
  type SampleInfo,
} from './common.js';
export { SyntheticDataset, SYNTHETIC_CLASSES, type SyntheticOptions } from './synthetic.js';
export {
  ImageFolder,
  DEFAULT_EXTENSIONS,
  MAX_DECODED_BYTES,
  MAX_RESIZE_SIZE,
  resolveTransform,
  type CropParams,
  type DecodedImage,
  type ImageFolderOptions,
  type ImageFolderState,
  type ResizeKernel,
  type ResolvedTransform,
  type TransformOptions,
} from './folder.js';
export { assembleBatch, datasetFromSpec, type BatchRequest } from './batch.js';
export { DataLoader, resolveWorkerScript, type DataLoaderOptions, type EpochOptions, type ShardOptions } from './loader.js';
