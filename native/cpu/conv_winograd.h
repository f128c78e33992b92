// Winograd convolution on the CPU (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2015) for stride-1, dilation-1, ungrouped convolutions with square 3x3 kernels
// (F(4x4,3x3): 6x6 input tiles, 36 multiplies per 16 outputs instead of 144) and 5x5 kernels
// (F(4x4,5x5): 8x8 tiles, 64 per 16 instead of 400), any padding.
//
//   U[k][O][C]     = (G g G^T)[k]   for every filter g = w[o, c]   (k < a*a, the tile positions)
//   V[k][C][tiles] = (B^T d B)[k]   for every a x a input tile d of every channel (0 outside x)
//   M_k[O, tiles]  = U_k[O, C] @ V_k[C, tiles]      a*a independent sgemm calls (gemm.h)
//   y tile         = A^T M A (+ bias, ReLU)         only the outputs inside [Ho, Wo] are written
//
// The tiles are taken in blocks so that V and M stay within a bounded scratch budget; the
// transforms run on the fork-join pool, 16 tiles per vector (one tile per lane), and are
// compiled per instruction set (simd.h). At up to 64 tiles (a batch of 1-4 at 13x13, one image
// at 27x27) on AVX-512 or AVX2 (both builds; isa.h picks), the products are too thin for sgemm ([O x C] x [C x 16] at batch 1,
// each call paying OpenBLAS's packing and hand-off): they run on an own kernel instead (1-4
// vectors of tiles x 4-16 output channels in registers, the filters broadcast from a layout
// blocked by 16 output channels), the work split over those blocks of output channels, each
// block's a*a products and output transform done by one thread ('winograd-gemm' keeps sgemm). The backward data pass of the same shapes is the
// forward machinery applied to dy with the filters transposed (O <-> C) and flipped, padded by
// k - 1 - p. The weight gradient is the adjoint of the forward pass: dM = A dY A^T per tile, the
// a*a products dU_k[O, C] = dM_k @ V_k^T summed over the tiles (sgemm), dw = G^T dU G.
#pragma once

#include "conv.h"

namespace alexnet::cpu {

// The shape fits the kernel: groups 1, stride 1, dilation 1, a 3x3 or 5x5 kernel, something to do.
bool conv_winograd_supported(const Conv2dParams& s);

// Whether conv2d_forward / conv2d_backward (dx, dw) take Winograd under the current conv_algo():
// always where supported with 'winograd', by the measured rule with 'auto', never otherwise.
// `filters_cached`: the weight's tensor is known and the weight cache is on (the transformed
// filters are then made once, not per call; 'auto' takes small batches to Winograd only then).
// At up to 64 tiles on AVX-512 or AVX2 the tile-position products run on Winograd's own kernel rather
// than sgemm (not with 'winograd-gemm').
bool conv_winograd_forward_selected(const Conv2dParams& s, bool filters_cached = false);
bool conv_winograd_backward_data_selected(const Conv2dParams& s);  // also needs p <= k - 1
bool conv_winograd_weight_grad_selected(const Conv2dParams& s);

// y = conv2d(x, w) + bias, then max(y, 0) when `relu`. Requires conv_winograd_supported(s).
void conv2d_forward_winograd(float* y,           // [N, O, Ho, Wo]
                             const float* x,     // [N, C, H, W]
                             const float* w,     // [O, C, k, k]
                             const float* bias,  // [O] or nullptr
                             const Conv2dParams& s, bool relu,
                             const Tensor* wt = nullptr);  // w's tensor: transforms cached with it

// dx = gradient of conv2d with respect to x. Requires conv_winograd_supported(s) and p <= k - 1.
void conv2d_backward_data_winograd(float* dx,        // [N, C, H, W] (overwritten)
                                   const float* dy,  // [N, O, Ho, Wo]
                                   const float* w,   // [O, C, k, k]
                                   const Conv2dParams& s,
                                   const Tensor* wt = nullptr);

// dw (+)= gradient of conv2d with respect to w (any padding): the adjoints of the output and
// filter transforms around a*a products dU_k = dM_k @ V_k^T over the tiles.
// Requires conv_winograd_supported(s).
void conv2d_weight_grad_winograd(float* dw,        // [O, C, k, k]
                                 const float* dy,  // [N, O, Ho, Wo]
                                 const float* x,   // [N, C, H, W]
                                 const Conv2dParams& s, bool accumulate);

}  // namespace alexnet::cpu
