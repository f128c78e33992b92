// PyTorch-like layers over the functional operators, and the parameter store.
export * from './init.js';
export * from './module.js';
export * from './layers.js';
export * from './store.js';
