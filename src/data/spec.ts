// The serialisable description of a dataset that crosses into worker threads (DatasetSpec) and
// the plain option and state types it is made of. They live here, apart from the datasets, so
// that common.ts (the Dataset interface) and the datasets (folder.ts, synthetic.ts) each import
// this file and not each other.

export interface SyntheticOptions {
  /** Number of samples. */
  size: number;
  /** 2..8 classes, in the order of SYNTHETIC_CLASSES. Default 2 (horizontal vs vertical stripes). */
  numClasses?: number;
  /** Side of the square image. Default 227. */
  imageSize?: number;
  seed?: number;
  split?: 'train' | 'val';
  /** Amplitude of the uniform pixel noise on [0,1] pixels. Default 0.1. */
  noise?: number;
  /** Per-channel normalisation of [0,1] pixels; ImageNet's by default. */
  mean?: readonly number[];
  std?: readonly number[];
}

export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';

export interface ResolvedTransform {
  train: boolean;
  resizeSize: number;
  cropSize: number;
  flip: boolean;
  kernel: ResizeKernel;
  mean: [number, number, number];
  std: [number, number, number];
}

/** Everything a worker thread needs to rebuild the dataset (plain, structured-cloneable). */
export interface ImageFolderState {
  root: string;
  classNames: string[];
  /** Paths relative to root, '/'-separated, sorted. */
  files: string[];
  labels: Int32Array;
  transform: ResolvedTransform;
  skipCorrupt: boolean;
}

/** Serialisable description of a dataset, so a worker thread can rebuild it. */
export type DatasetSpec =
  | { kind: 'synthetic'; options: SyntheticOptions }
  | { kind: 'folder'; state: ImageFolderState };
