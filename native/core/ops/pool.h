// The 2-D max pooling's descriptor (NCHW, PyTorch's MaxPool2d: implicit -inf padding, floor-mode
// output size, overlapping windows allowed), validated once here and taken as is by every
// backend (native/cpu/pool.h, native/cuda/dnn.h) and by the benchmarks. With channels_last the
// input and output are stored [N, H, W, C] and [N, Ho, Wo, C] (docs/architecture.md, decision 14).
#pragma once

#include <array>
#include <cstdint>

#include "../tensor.h"

namespace alexnet {

struct Pool2dParams {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input [N, C, H, W]
  int64_t kH = 1, kW = 1;              // window
  int64_t sH = 1, sW = 1;              // stride
  int64_t pH = 0, pW = 0;              // padding (never selected: acts as -inf)
  int64_t Ho = 0, Wo = 0;              // output [N, C, Ho, Wo]
  bool channels_last = false;          // x, y stored [N, H, W, C] and [N, Ho, Wo, C]

  Shape input_shape() const { return channels_last ? Shape::of({N, H, W, C}) : Shape::of({N, C, H, W}); }
  Shape output_shape() const { return channels_last ? Shape::of({N, Ho, Wo, C}) : Shape::of({N, C, Ho, Wo}); }
};

// floor((in + 2 pad - k) / stride) + 1; may be <= 0 (pool2d_params rejects that).
int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad);

// The input before any option is read: float32 or bfloat16, of rank 4.
void check_pool2d_input(const char* op, const Tensor& x);

// The descriptor of max_pool2d(x [N, C, H, W] (channels_last: [N, H, W, C])) with the given
// window, stride and padding. Throws ERR_ARGUMENT (a bad hyper-parameter) or ERR_SHAPE naming `op`.
Pool2dParams pool2d_params(const char* op, const Shape& x, std::array<int64_t, 2> kernel,
                           std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                           bool channels_last = false);

}  // namespace alexnet
