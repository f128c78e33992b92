export { Communicator, initDistributed, type ReduceOp } from './communicator.js';
export { DistributedSampler, type DistributedSamplerOptions } from './sampler.js';
