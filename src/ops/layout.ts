// Memory formats (docs/architecture.md, decision 14): PyTorch's names, 'contiguous_format'
// ([N, C, H, W], the default) and 'channels_last'. Unlike PyTorch, where a channels-last tensor
// keeps its logical NCHW shape and changes only its strides, our tensors are always contiguous,
// so a channels-last activation has the physical shape [N, H, W, C]; conv2d / maxPool2d are
// told which one they get by their `memoryFormat` option. Weights keep PyTorch's
// [O, C/groups, kH, kW] in both.
import { loadNative } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';

export type MemoryFormat = 'contiguous_format' | 'channels_last';

/**
 * The permutation of a 4-D activation into `format`: 'channels_last' takes x [N, C, H, W] and
 * gives [N, H, W, C]; 'contiguous_format' takes x [N, H, W, C] and gives [N, C, H, W] (a new
 * tensor either way; float32 or bfloat16, exact). Its own gradient is the opposite conversion.
 */
export function toMemoryFormat<D extends 'float32' | 'bfloat16' = 'float32'>(x: Tensor<D>, format: MemoryFormat): Tensor<D> {
  return new Tensor<D>(loadNative().toMemoryFormat(handleOf(x, 'toMemoryFormat', 'input'), format));
}
