// Direct 2-D convolution on x86-64 with AVX-512 or AVX2 (no im2col, no column buffer).
//
// The output is computed in tiles of two vectors of output channels (32 with AVX-512, 16 with
// AVX2) x P consecutive output columns of one output row (P <= 14, or 6): 2*P accumulators stay
// in registers while the tile walks the reduction (c, kh, kw). Per reduction step the kernel
// loads the two vectors of packed weights and broadcasts one input value per output column, so
// each loaded value feeds 2*P or 2 fused multiply-adds. Inputs are read straight from NCHW
// (zero-padded into a scratch copy first when the layer pads), weights are repacked once per
// call into [O/32][C][kH][kW][32] (AVX2: blocks of 16), and the result is written as NCHW with
// the bias (and optionally ReLU) applied in the epilogue. This is the layout MLAS calls NCHWc for the
// weights only; activations keep PyTorch's layout.
//
// The same kernel runs the backward data pass of stride-1 convolutions: dx is the convolution
// of dy with the weights transposed (O <-> C) and flipped, padded by k - 1 - p.
#pragma once

#include "conv.h"

namespace alexnet::cpu {

enum class ConvAlgo { Auto, Im2col, Direct, DirectAvx2, Winograd, WinogradGemm };
enum class ConvIsa { None, Avx2, Avx512 };

// Process-wide choice (tests force each path): Auto and Direct use the direct kernel where
// supported, with the CPU's best instruction set; DirectAvx2 limits it to AVX2 (to compare the
// AVX2 build on an AVX-512 CPU); Im2col never uses it. Winograd takes conv_winograd.h wherever
// that applies and, elsewhere, the direct kernel like Auto; WinogradGemm does the same but always
// with the tile-position products through sgemm (not Winograd's own small-batch kernel).
ConvAlgo conv_algo();
void set_conv_algo(ConvAlgo a);

// The best instruction set this CPU offers the kernel (AVX-512, else AVX2 + FMA, else none)
// under the process-wide cap (isa.h: setCpuIsa('avx2') makes it AVX2), and the one the current
// conv_algo() will use.
ConvIsa conv_direct_cpu_isa();
ConvIsa conv_direct_isa();

// True when conv_direct_isa() is not None and the shape fits the kernel (groups 1, dilation
// 1, equal strides of 1, 2 or 4).
bool conv_direct_supported(const Conv2dParams& s);

// y = conv2d(x, w) + bias, then max(y, 0) when `relu`. Requires conv_direct_supported(s).
void conv2d_forward_direct(float* y,           // [N, O, Ho, Wo]
                           const float* x,     // [N, C, H, W]
                           const float* w,     // [O, C, kH, kW]
                           const float* bias,  // [O] or nullptr
                           const Conv2dParams& s, bool relu,
                           const Tensor* wt = nullptr);  // w's tensor: packed weights cached with it

// dx = gradient of conv2d with respect to x, for stride-1 shapes (conv_direct_supported and
// sH == sW == 1 and p <= k - 1).
bool conv_direct_backward_data_supported(const Conv2dParams& s);
void conv2d_backward_data_direct(float* dx,          // [N, C, H, W] (overwritten)
                                 const float* dy,    // [N, O, Ho, Wo]
                                 const float* w,     // [O, C, kH, kW]
                                 const Conv2dParams& s,
                                 const Tensor* wt = nullptr);

// dw (+)= gradient of conv2d with respect to its weights, on AVX-512 CPUs for square 3x3, 5x5
// and 11x11 kernels at stride 1 or 4 and at least one image per thread (each thread sums its
// images, then the partial sums are added).
bool conv_direct_weight_grad_supported(const Conv2dParams& s);
void conv2d_weight_grad_direct(float* dw,          // [O, C, kH, kW]
                               const float* dy,    // [N, O, Ho, Wo]
                               const float* x,     // [N, C, H, W]
                               const Conv2dParams& s, bool accumulate);

}  // namespace alexnet::cpu
