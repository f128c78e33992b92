// The 2-D convolution's descriptor: geometry in PyTorch's layouts (input NCHW, weight OIHW),
// validated once here and taken as is by every backend (native/cpu/conv.h, native/cuda/dnn.h)
// and by the benchmarks. With channels_last (memoryFormat 'channels_last', docs/architecture.md
// decision 14) the input, output and their gradients are stored [N, H, W, C] instead; the weight
// and its gradient keep PyTorch's [O, C/groups, kH, kW] either way.
#pragma once

#include <array>
#include <cstdint>

#include "../tensor.h"

namespace alexnet {

struct Conv2dParams {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input [N, C, H, W]
  int64_t O = 0, kH = 0, kW = 0;       // weight [O, C/groups, kH, kW]
  int64_t sH = 1, sW = 1;              // stride
  int64_t pH = 0, pW = 0;              // zero padding (both sides)
  int64_t dH = 1, dW = 1;              // dilation
  int64_t groups = 1;
  int64_t Ho = 0, Wo = 0;              // output [N, O, Ho, Wo]
  bool channels_last = false;          // x, y stored [N, H, W, C] and [N, Ho, Wo, O]

  Shape input_shape() const { return channels_last ? Shape::of({N, H, W, C}) : Shape::of({N, C, H, W}); }
  Shape output_shape() const { return channels_last ? Shape::of({N, Ho, Wo, O}) : Shape::of({N, O, Ho, Wo}); }
  Shape weight_shape() const { return Shape::of({O, C / groups, kH, kW}); }
};

// floor((in + 2 pad - dil (k - 1) - 1) / stride) + 1; may be <= 0 (conv2d_params rejects that).
int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil);

// The operands before any option is read: float32 (or, with allow_bf16, both bfloat16), one
// device, both of rank 4. A mixed pair is refused with ERR_DTYPE naming `op`.
void check_conv2d_operands(const char* op, const Tensor& x, const Tensor& w, bool allow_bf16 = false);

// The descriptor of conv2d(x [N, C, H, W] (channels_last: [N, H, W, C]), w [O, C/groups, kH, kW])
// with the given stride, padding, dilation and groups. Throws ERR_ARGUMENT (a bad
// hyper-parameter) or ERR_SHAPE (shapes that do not fit together) naming `op`.
Conv2dParams conv2d_params(const char* op, const Shape& x, const Shape& w, std::array<int64_t, 2> stride,
                           std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation, int64_t groups,
                           bool channels_last = false);

}  // namespace alexnet
