// Softmax and the fused softmax cross-entropy loss (mean over the batch).
import { loadNative } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';

export interface SoftmaxCrossEntropyResult {
  /** the mean loss, a 0-d tensor (shape []) */
  loss: Tensor<'float32'>;
  /** d loss / d logits = (softmax(logits) - onehot(labels)) / B */
  gradLogits: Tensor<'float32'>;
}

/** Row-wise softmax of logits [B, C]. */
export function softmax(logits: Tensor<'float32'>): Tensor<'float32'> {
  return new Tensor(loadNative().softmax(handleOf(logits, 'softmax', 'logits')));
}

/**
 * Mean cross-entropy of logits [B, C] against int32 labels [B], with its gradient. A label
 * outside [0, C) cannot be seen before the work runs: the next `await ...data()` rejects with
 * ERR_ARGUMENT naming the row, and loss / gradLogits hold NaN.
 */
export function softmaxCrossEntropy(logits: Tensor<'float32'>, labels: Tensor<'int32'>): SoftmaxCrossEntropyResult {
  const op = 'softmaxCrossEntropy';
  const r = loadNative().softmaxCrossEntropy(handleOf(logits, op, 'logits'), handleOf(labels, op, 'labels'));
  return { loss: new Tensor(r.loss), gradLogits: new Tensor(r.gradLogits) };
}
