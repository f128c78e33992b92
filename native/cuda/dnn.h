// The heavy operators on the GPU: convolution, pooling and LRN on cuDNN, matrix products on
// cuBLAS. Host C++ (compiled by g++ only in builds with CUDA). The calling convention of ops.h:
// the device first, then the outputs, the inputs and the core descriptor (native/core/ops/*.h,
// the very structs the CPU backend takes); everything runs on the device's
// compute stream (cuda::stream) through per-device cuDNN and cuBLAS handles bound to it. The
// functions may be called from more than one host thread (the JS thread, and the benchmark's
// thread in native/cuda/bench.cu): each holds its device's handles for the call.
//
// Descriptors and algorithms are cached per device, keyed by the full geometry and the math
// mode (float data throughout): a shape's first call makes its cuDNN descriptors and searches
// its algorithms, later calls only enqueue work. Cached descriptors live for the process.
//
// Channels last (Conv2dParams / Pool2dParams .channels_last, docs/architecture.md decision 14):
// x, y and their gradients are [N, H, W, C]-ordered and described to cuDNN as CUDNN_TENSOR_NHWC;
// the convolution's filter is described as NHWC too (KRSC), so that cuDNN's tensor-core kernels
// run without transposing inside; the weight stays PyTorch's [O, C/g, kH, kW] in memory and is
// transposed into a kept scratch per call, and the weight gradient comes back the same way
// (cuDNN writes KRSC to scratch, one transpose adds it into dw). The bias / ReLU epilogue sees y
// as [N*Ho*Wo, O]. Channels-last max pooling is our own kernel (kernels/pool.cu, in both dtypes;
// backend.cc routes it there): the pooling plans here are NCHW float32 only.
//
// Empty sizes behave as on the CPU (native/cpu): an empty batch or channel count makes the
// output empty (nothing to do; cuDNN would reject n = 0), a gradient summed over an empty
// batch is zero (unchanged when accumulating), and a matrix product with K = 0 is C = beta * C.
#pragma once

#include <cstdint>

#include "../core/ops/conv.h"
#include "../core/ops/linear.h"
#include "../core/ops/lrn.h"
#include "../core/ops/pool.h"

namespace alexnet::cuda {

// TF32 tensor-op math for FP32 convolutions and matrix products (default on; off = strict FP32).
void set_tf32(bool on);
bool tf32();

// Deterministic mode (default off): the convolution algorithms are chosen among those cuDNN
// reports as CUDNN_DETERMINISTIC (its backward-filter and backward-data searches otherwise may
// pick algorithms that accumulate with atomics, whose float sums vary from run to run). Max
// pooling always runs CUDNN_POOLING_MAX_DETERMINISTIC, cuBLAS is deterministic on one stream,
// and our kernels' only atomics are on integers. Plans are kept per mode: switching back and
// forth searches each shape once per mode.
void set_deterministic(bool on);
bool deterministic();

// How many cuDNN descriptors this process has made (every kind, every device). Tests check
// that repeating a call with the same shape makes none (the per-shape caches).
uint64_t descriptors_created();

// y = conv(x, w) + b ; b may be null. Algorithms are chosen once per geometry (cudnnFind*Ex,
// fastest successful) and cached; the workspace is one per-device buffer that grows as needed.
void conv2d_forward(int device, float* y /*[N,O,Ho,Wo]*/, const float* x /*[N,C,H,W]*/,
                    const float* w /*[O,C/g,kH,kW]*/, const float* b /*[O] or null*/,
                    const Conv2dParams& g, bool relu);
// dx (may be null: not wanted) = conv_transpose(dy, w); dw (+)= corr(x, dy); db (+)= sum(dy).
void conv2d_backward(int device, float* dx /*[N,C,H,W] or null*/, float* dw /*[O,C/g,kH,kW]*/,
                     float* db /*[O] or null*/, const float* dy /*[N,O,Ho,Wo]*/,
                     const float* x /*[N,C,H,W]*/, const float* w /*[O,C/g,kH,kW]*/, const Conv2dParams& g,
                     bool accumulate);

// conv2d on bfloat16 x and w (float32 bias), y float32 or bfloat16 (exactly one non-null).
// bfloat16 y: cuDNN with bfloat16 tensors and filters and float compute (CUDNN_DATA_BFLOAT16,
// convolution descriptor CUDNN_DATA_FLOAT) writes the rounded sums, then our epilogue adds the
// float32 bias and applies the ReLU, rounding a second time when there is a bias (cuDNN's
// bfloat16 configuration has no float32 output to add it to first: the CPU rounds once).
// float32 y: x and w widened to float32 (exact) and the float32 plan (products exact in FP32
// and TF32 alike), the bias added in float32: the CPU's contract.
void conv2d_forward_bf16(int device, float* y_f32 /*[N,O,Ho,Wo] or null*/, uint16_t* y_bf16 /*[N,O,Ho,Wo] or null*/,
                         const uint16_t* x /*[N,C,H,W]*/, const uint16_t* w /*[O,C/g,kH,kW]*/,
                         const float* b /*[O] or null*/, const Conv2dParams& g, bool relu);
// Gradients of conv2d_forward_bf16: dx (may be null) bfloat16 from cuDNN's bfloat16 backward-data
// (float compute, rounded once); dw (+)= corr(x, dy) float32 and db (+)= sum(dy) float32, from x
// and dy widened to float32 (cuDNN's bfloat16 configuration would write a bfloat16 dw).
void conv2d_backward_bf16(int device, uint16_t* dx /*[N,C,H,W] or null*/, float* dw /*[O,C/g,kH,kW]*/,
                          float* db /*[O] or null*/, const uint16_t* dy /*[N,O,Ho,Wo]*/, const uint16_t* x /*[N,C,H,W]*/,
                          const uint16_t* w /*[O,C/g,kH,kW]*/, const Conv2dParams& g, bool accumulate);

void maxpool2d_forward(int device, float* y /*[N,C,Ho,Wo]*/, const float* x /*[N,C,H,W]*/,
                       const Pool2dParams& g);
// CUDNN_POOLING_MAX_DETERMINISTIC (no atomics where windows overlap: two runs agree bitwise).
// Ties: each window's gradient goes to exactly one of its tied maxima, so the total is
// conserved; which one is cuDNN's choice and may differ from the CPU's (the first in row-major
// order). Without ties both backends agree exactly.
void maxpool2d_backward(int device, float* dx /*[N,C,H,W]*/, const float* dy /*[N,C,Ho,Wo]*/,
                        const float* x /*[N,C,H,W]*/, const float* y /*[N,C,Ho,Wo]*/,
                        const Pool2dParams& g);

// Cross-channel LRN, PyTorch's convention (alpha / size), on [N, C, S] as cuDNN's 4-D tensor
// [N, C, S, 1]. cuDNN's limits (kLrn* in native/core/ops/lrn.h, checked by lrn_params on every
// device): size in [1, 16], k >= 1e-5, beta >= 0.01; and here size must also be odd, since cuDNN
// centres an even window one channel later than PyTorch does (Backend::lrn_odd_size_only).
void lrn_forward(int device, float* y /*[N,C,S]*/, const float* x /*[N,C,S]*/, const LrnParams& p);
void lrn_backward(int device, float* dx /*[N,C,S]*/, const float* dy /*[N,C,S]*/, const float* x /*[N,C,S]*/,
                  const float* y /*[N,C,S]*/, const LrnParams& p);

// Row-major C[M,N] = alpha * op(A) @ op(B) + beta * C on cuBLAS (cublasGemmEx; TF32 compute
// unless strict FP32 was asked for).
void gemm(int device, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A /*[M,K] or [K,M]*/, int64_t lda, const float* B /*[K,N] or [N,K]*/,
          int64_t ldb, float beta, float* C /*[M,N]*/, int64_t ldc);
// The same with the math mode chosen for this call (tf32 true: TF32 compute, false: strict
// FP32) instead of setTf32's process-wide one: the benchmark's ceilings measure both.
void gemm_with_math(int device, bool tf32, bool trans_a, bool trans_b, int64_t M, int64_t N,
                    int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                    int64_t ldb, float beta, float* C, int64_t ldc);

// y = x @ w^T + b
void linear_forward(int device, float* y /*[B,out]*/, const float* x /*[B,in]*/, const float* w /*[out,in]*/,
                    const float* b /*[out] or null*/, const LinearParams& p);
// y = x @ w^T + b with bfloat16 x and w: cublasGemmEx with CUDA_R_16BF inputs and
// CUBLAS_COMPUTE_32F; y float32 (y_f32) or bfloat16 (y_bf16, the float32 sum plus bias rounded
// once, through the handle's workspace). Exactly one of y_f32, y_bf16 is non-null.
void linear_forward_bf16(int device, float* y_f32 /*[B,out] or null*/, uint16_t* y_bf16 /*[B,out] or null*/,
                         const uint16_t* x /*[B,in]*/, const uint16_t* w /*[out,in]*/,
                         const float* b /*[out] or null*/, const LinearParams& p);
// The bfloat16 gradients (cublasGemmEx, 16BF inputs, 32F compute): dx = dy @ w as bfloat16 (may be
// null); dw (+)= dy^T @ x in float32; db (+)= sum_b dy in float32 (may be null)
void linear_backward_bf16(int device, uint16_t* dx /*[B,in] or null*/, float* dw /*[out,in]*/,
                          float* db /*[out] or null*/, const uint16_t* dy /*[B,out]*/, const uint16_t* x /*[B,in]*/,
                          const uint16_t* w /*[out,in]*/, const LinearParams& p, bool accumulate);
// dx = dy @ w (dx may be null); dw (+)= dy^T @ x; db (+)= sum_b dy (db may be null)
void linear_backward(int device, float* dx /*[B,in] or null*/, float* dw /*[out,in]*/, float* db /*[out] or null*/,
                     const float* dy /*[B,out]*/, const float* x /*[B,in]*/, const float* w /*[out,in]*/,
                     const LinearParams& p, bool accumulate);

}  // namespace alexnet::cuda
