// alexnet-node: AlexNet for Node.js on a native addon (CPU backend; CUDA when present).
export { Tensor, synchronize, memoryStats, deviceCounters, type Device, type DeviceCounters, type MemoryStats, type TensorOptions } from './tensor.js';
export * from './ops/index.js';
export { alexnetError, isAlexnetError, type AlexnetError, type ErrorCode } from './errors.js';
export { loadNative, nativePath, useDefaultOpenblasKernels, type BackendInfo, type BenchOpsOptions, type BenchRow, type ConvAlgorithm, type CpuIsa, type DistWorld, type DType, type MpiLibrary, type NcclLibrary } from './native.js';
export { backendInfo, packageVersion, setNumThreads, setGemmBackend, setConvAlgorithm, setWeightCache, setTf32, setCublasLtEpilogues, setDeterministic, isDeterministic, setBf16Kernel, setCpuIsa, cpuKernelsUsed, type Info } from './info.js';
export * from './nn/index.js';
export * from './optim/index.js';
export * from './models/alexnet.js';
export * from './data/index.js';
export * from './io/index.js';
export * from './viz/index.js';
export * from './dist/index.js';
export { Trainer, evaluate, GRAPH_WARMUP_STEPS, type EvalResult, type TrainerOptions, type TrainSummary, type TrainProgress, type ScheduleSpec } from './train/trainer.js';
export {
  captureTrainingState,
  loadTrainingState,
  restoreTrainingState,
  saveTrainingState,
  weightsAreFinite,
  type DataPosition,
  type DropoutStream,
  type LoadTrainingStateOptions,
  type ScheduleLike,
  type TrainingState,
  type TrainingTarget,
} from './train/state.js';
export {
  MAX_CLASSES,
  MAX_SYNTHETIC_SAMPLES,
  MAX_BATCH,
  modelFromCheckpoint,
  parseSchedule,
  readRunConfig,
  runConfig,
  validateRunConfig,
  type ModelFromCheckpointOptions,
  type RunConfig,
  type RunTrainOptions,
} from './train/run-config.js';
