// Typed operator wrappers, one file per family (mirrors native/cpu and native/binding).
export * from './activation.js';
export * from './elementwise.js';
export * from './layout.js';
export * from './conv.js';
export * from './pool.js';
export * from './lrn.js';
export * from './linear.js';
export * from './dropout.js';
export * from './loss.js';
export * from './sgd.js';
export * from './metrics.js';
export * from './image.js';
