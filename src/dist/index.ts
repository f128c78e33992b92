export { Communicator, initDistributed, Work, type ReduceOp } from './communicator.js';
export { DEFAULT_BUCKET_MB, GradientReducer, planBuckets, type GradientBucket, type GradientReducerOptions } from './reducer.js';
export { DistributedSampler, type DistributedSamplerOptions } from './sampler.js';
