// Direct 2-D convolution on x86-64 with AVX-512 (no im2col, no column buffer).
//
// The output is computed in tiles of 32 output channels x P consecutive output columns of one
// output row (P <= 14): 28 accumulators of 16 channels each stay in registers while the tile
// walks the whole reduction (c, kh, kw). Per reduction step the kernel loads two vectors of
// packed weights (the tile's 32 channels) and broadcasts one input value per output column, so
// each loaded value feeds 2*P or 2 fused multiply-adds. Inputs are read straight from NCHW
// (zero-padded into a scratch copy first when the layer pads), weights are repacked once per
// call into [O/32][C][kH][kW][32], and the result is written as NCHW with the bias (and
// optionally ReLU) applied in the epilogue. This is the layout MLAS calls NCHWc for the
// weights only; activations keep PyTorch's layout.
//
// The same kernel runs the backward data pass of stride-1 convolutions: dx is the convolution
// of dy with the weights transposed (O <-> C) and flipped, padded by k - 1 - p.
#pragma once

#include "conv.h"

namespace alexnet::cpu {

enum class ConvAlgo { Auto, Im2col, Direct };

// Process-wide choice (tests force each path): Auto uses the direct kernel where supported.
ConvAlgo conv_algo();
void set_conv_algo(ConvAlgo a);

// True when this build and CPU can run the kernel (x86-64 with AVX-512F).
bool conv_direct_available();

// True when conv_direct_available() and the shape fits the kernel (groups 1, dilation 1, stride
// 1, 2 or 4).
bool conv_direct_supported(const Conv2dShape& s);

// y = conv2d(x, w) + bias, then max(y, 0) when `relu`. Requires conv_direct_supported(s).
void conv2d_forward_direct(float* y,           // [N, O, Ho, Wo]
                           const float* x,     // [N, C, H, W]
                           const float* w,     // [O, C, kH, kW]
                           const float* bias,  // [O] or nullptr
                           const Conv2dShape& s, bool relu);

// dx = gradient of conv2d with respect to x, for stride-1 shapes (conv_direct_supported and
// sH == sW == 1 and p <= k - 1).
bool conv_direct_backward_data_supported(const Conv2dShape& s);
void conv2d_backward_data_direct(float* dx,          // [N, C, H, W] (overwritten)
                                 const float* dy,    // [N, O, Ho, Wo]
                                 const float* w,     // [O, C, kH, kW]
                                 const Conv2dShape& s);

}  // namespace alexnet::cpu
