// 2-D convolution (+ bias) on the CPU, PyTorch layouts (NCHW input, OIHW weight). The path per
// call (setConvAlgorithm; 'auto' by default): large stride-1 3x3 and 5x5 layers take Winograd
// for the forward pass and both gradients (conv_winograd.h); on CPUs with AVX-512 or AVX2 the
// forward pass, the stride-1 input gradient and (AVX-512) the weight gradient of common kernel
// shapes run the direct kernels of conv_direct.h (their packed weights kept with the weight
// tensor between calls: scratch.h, derived_or_scratch), except that 'auto' gives stride-1 layers
// with few output positions (a batch of one or two at 13x13: auto_prefers_gemm in conv.cc) to
// im2col when the packing is not cached (the input gradient; setWeightCache(false));
// everything else (and every CPU without AVX2) takes im2col + GEMM:
//
// Several images are unfolded into one column matrix col [C*kH*kW, nb*Ho*Wo] (nb chosen so
// that col stays around 64 MB, and nb*Ho*Wo >= 2048 so that 13x13 layers still get wide GEMMs),
// so each group is one large GEMM
//   Y_g [O/g, nb*Ho*Wo] = W_g [O/g, C/g*kH*kW] @ col_g [C/g*kH*kW, nb*Ho*Wo]
// whose result is scattered into y [nb, O, Ho*Wo] together with the bias add (outputs with
// Ho*Wo >= 2048, like conv1's 55x55, get one GEMM per image written in place instead). Backward:
//   dW_g (+)= dY_g [O/g, nb*HoWo] @ col_g^T,  db = sum_{n,h,w} dY,
//   dcol_g = W_g^T @ dY_g, then col2im (parallel over input planes: no write races).
// The unfold/fold/scatter passes run on the fork-join pool; GEMMs run outside of it.
// The geometry is the core descriptor Conv2dParams (native/core/ops/conv.h), as on CUDA.
#pragma once

#include <cstdint>

#include "../core/ops/conv.h"
#include "../core/tensor.h"

namespace alexnet::cpu {

// y = conv2d(x, w) + bias, then max(y, 0) when `relu` (the fused Conv+ReLU epilogue). Runs the
// direct kernel (conv_direct.h) where it applies, im2col + GEMM otherwise.
void conv2d_forward(float* y,            // [N, O, Ho, Wo]
                    const float* x,      // [N, C, H, W]
                    const float* w,      // [O, C/groups, kH, kW]
                    const float* bias,   // [O] or nullptr
                    const Conv2dParams& s, bool relu = false,
                    const Tensor* wt = nullptr,  // w's tensor: its packed forms are cached with it
                    bool winograd = true);  // false: never Winograd (every product exact, summed in float32)

// Gradients of conv2d_forward given dy. dx and db may be nullptr (not computed). With
// `accumulate`, dw and db are added to instead of overwritten.
void conv2d_backward(float* dx,          // [N, C, H, W] or nullptr
                     float* dw,          // [O, C/groups, kH, kW]
                     float* db,          // [O] or nullptr
                     const float* dy,    // [N, O, Ho, Wo]
                     const float* x,     // [N, C, H, W]
                     const float* w,     // [O, C/groups, kH, kW]
                     const Conv2dParams& s, bool accumulate,
                     const Tensor* wt = nullptr,  // w's tensor, as for conv2d_forward
                     bool winograd = true);       // as for conv2d_forward

// The unfold step, exposed for tests and benchmarks: col[(c*kH + kh)*kW + kw][n*Ho*Wo + oh*Wo
// + ow] = x[n, c, oh*sH - pH + kh*dH, ow*sW - pW + kw*dW] (0 outside), for n in [0, nb).
void im2col(float* col,                  // [C*kH*kW, nb*Ho*Wo]
            const float* x,              // [nb, C, H, W]
            int64_t nb, const Conv2dParams& s);

// The fold step (adjoint of im2col): dx = sum of the col entries that read each input element.
void col2im(float* dx,                   // [nb, C, H, W] (overwritten)
            const float* col,            // [C*kH*kW, nb*Ho*Wo]
            int64_t nb, const Conv2dParams& s);

}  // namespace alexnet::cpu
