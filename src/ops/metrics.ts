// Accuracy counts.
import { loadNative } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';

/**
 * How many rows of logits [B, C] have their int32 label among the k largest logits (ties count
 * in the label's favour): an int32 0-d tensor.
 */
export function topkCorrect(logits: Tensor<'float32'>, labels: Tensor<'int32'>, k: number): Tensor<'int32'> {
  return new Tensor(loadNative().topkCorrect(handleOf(logits, 'topkCorrect', 'logits'), handleOf(labels, 'topkCorrect', 'labels'), k));
}
