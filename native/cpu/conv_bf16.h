// 2-D convolution on bfloat16 inputs with float32 accumulation (the CPU side of issue 14's mixed
// precision), PyTorch layouts as conv.h. Every product of two bfloat16 values is exact in float32;
// the products are summed in float32, the float32 bias is added to the sum, and the output is
// stored as float32 or rounded once to bfloat16.
//
// Two paths, picked per call by bf16_kernel() (bf16.h; setBf16Kernel):
//  - AVX-512 BF16: the input unfolded in bfloat16 as rows [N*Ho*Wo, C*kH*kW] ("im2row": each
//    output position's receptive field contiguous, as linear's x rows are), then the vdpbf16ps
//    GEMM of the linear layer (gemm_bf16_nt: rows @ W_g^T, both operands contiguous along the
//    reduction), then bias, ReLU and the one rounding while scattering to [N, O, Ho, Wo].
//    Backward's dx: dy gathered to [N*Ho*Wo, O] in bfloat16 and W transposed to [C*kH*kW, O],
//    so that the same dot-product GEMM gives the column gradient in im2col's layout
//    [C*kH*kW, N*Ho*Wo]; conv.h's col2im folds it onto the input planes in float32, rounded once.
//    (linear's dx kernel on [positions, C*kH*kW] rows, folded with a strided gather, took 1.2-2.1x
//    as long on AlexNet's conv2-4, measured in one process.)
//  - portable: the operands widened to float32 (exact) and the float32 convolution of conv.h
//    (without Winograd, whose transforms would round the products), the output rounded once.
// The weight and bias gradients are float32 (the float32 master weights' gradients): on the
// AVX-512 BF16 path x unfolded in bfloat16 in im2col's layout and dy as [O, N*Ho*Wo] go through
// the same dot-product GEMM (both contiguous along the positions), its float32 sums added into
// dw chunk by chunk; on the portable path dy and x are widened to float32 (exact) and the float32
// weight gradient sums them.
// vdpbf16ps treats bfloat16 subnormal inputs (|v| < 2^-126) as zero (bf16.h).
#pragma once

#include <cstdint>

#include "../core/ops/conv.h"

namespace alexnet::cpu {

// y = conv2d(x, w) + bias (then max(y, 0) when relu); exactly one of y_f32, y_bf16 is non-null.
void conv2d_forward_bf16(float* y_f32,          // [N, O, Ho, Wo] or null
                         uint16_t* y_bf16,      // [N, O, Ho, Wo] or null
                         const uint16_t* x,     // [N, C, H, W]
                         const uint16_t* w,     // [O, C/groups, kH, kW]
                         const float* bias,     // [O] or null
                         const Conv2dParams& s, bool relu);

// The gradients of conv2d_forward_bf16 given dy: dx bfloat16 (rounded once; skipped when null),
// dw and db float32 (+= with accumulate; db skipped when null).
void conv2d_backward_bf16(uint16_t* dx,         // [N, C, H, W] or null
                          float* dw,            // [O, C/groups, kH, kW]
                          float* db,            // [O] or null
                          const uint16_t* dy,   // [N, O, Ho, Wo]
                          const uint16_t* x,    // [N, C, H, W]
                          const uint16_t* w,    // [O, C/groups, kH, kW]
                          const Conv2dParams& s, bool accumulate);

}  // namespace alexnet::cpu
