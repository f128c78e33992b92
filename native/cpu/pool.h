// 2-D max pooling on the CPU (NCHW), PyTorch's MaxPool2d semantics: implicit -inf padding,
// floor-mode output size, overlapping windows allowed. Parallel over the N*C planes.
// The geometry is the core descriptor Pool2dParams (native/core/ops/pool.h), as on CUDA.
#pragma once

#include <cstdint>

#include "../core/ops/pool.h"

namespace alexnet::cpu {

// y[n,c,oh,ow] = max of x over the window at (oh*sH - pH, ow*sW - pW) (NaN propagates)
void max_pool2d_forward(float* y,        // [N, C, Ho, Wo]
                        const float* x,  // [N, C, H, W]
                        const Pool2dParams& s);

// dx = sum over windows of dy routed to the window's arg-max, recomputed from x (ties: the
// first in row-major window order; overlapping windows accumulate). dx is overwritten.
void max_pool2d_backward(float* dx,        // [N, C, H, W]
                         const float* dy,  // [N, C, Ho, Wo]
                         const float* x,   // [N, C, H, W]
                         const Pool2dParams& s);

// The bfloat16 forms (raw patterns): the same windows and arg-max (ties: the first), exact in
// forward (a maximum is one of the inputs); backward sums each input's routed gradients in
// float32 and rounds the sum once.
void max_pool2d_forward_bf16(uint16_t* y,        // [N, C, Ho, Wo]
                             const uint16_t* x,  // [N, C, H, W]
                             const Pool2dParams& s);
void max_pool2d_backward_bf16(uint16_t* dx,        // [N, C, H, W]
                              const uint16_t* dy,  // [N, C, Ho, Wo]
                              const uint16_t* x,   // [N, C, H, W]
                              const Pool2dParams& s);

}  // namespace alexnet::cpu
