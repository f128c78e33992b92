// 2-D max pooling on the CPU (NCHW), PyTorch's MaxPool2d semantics: implicit -inf padding,
// floor-mode output size, overlapping windows allowed. Parallel over the N*C planes.
#pragma once

#include <cstdint>

namespace alexnet::cpu {

struct Pool2dShape {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input [N, C, H, W]
  int64_t kH = 1, kW = 1;              // window
  int64_t sH = 1, sW = 1;              // stride
  int64_t pH = 0, pW = 0;              // padding (never selected: acts as -inf)
  int64_t Ho = 0, Wo = 0;              // output [N, C, Ho, Wo]
};

// floor((in + 2 pad - k) / stride) + 1; may be <= 0 (the caller rejects that).
int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad);

// y[n,c,oh,ow] = max of x over the window at (oh*sH - pH, ow*sW - pW) (NaN propagates)
void max_pool2d_forward(float* y,        // [N, C, Ho, Wo]
                        const float* x,  // [N, C, H, W]
                        const Pool2dShape& s);

// dx = sum over windows of dy routed to the window's arg-max, recomputed from x (ties: the
// first in row-major window order; overlapping windows accumulate). dx is overwritten.
void max_pool2d_backward(float* dx,        // [N, C, H, W]
                         const float* dy,  // [N, C, Ho, Wo]
                         const float* x,   // [N, C, H, W]
                         const Pool2dShape& s);

}  // namespace alexnet::cpu
