// Launchers of our own CUDA kernels (native/cuda/kernels/*.cu). Plain C++ signatures, so
// g++-compiled code (the backend table, dnn.cc) can call them. One calling convention for every
// CUDA entry point, here and in dnn.h: the device first, then the outputs, the inputs, and the
// sizes or the core descriptor. Each launches asynchronously on the device's stream
// (cuda::stream(device)) and checks the launch (typed error on failure); the caller has made the
// device current. Semantics match the CPU reference in native/cpu/ exactly (same formulas, same
// RNG, same descriptors).
#pragma once

#include <cstdint>

#include "../core/ops/dropout.h"
#include "../core/ops/image.h"
#include "../core/ops/pool.h"
#include "../core/sgd.h"
#include "runtime.h"  // DeviceErrorRecord

namespace alexnet::cuda {

// --- activation.cu ---
void relu_forward(int device, float* y /*[n]*/, const float* x /*[n]*/, int64_t n);
void relu_backward(int device, float* dx /*[n]*/, const float* dy /*[n]*/, const float* y /*[n]*/, int64_t n);
// bfloat16 (raw patterns), the same rules, exact
void relu_forward_bf16(int device, uint16_t* y /*[n]*/, const uint16_t* x /*[n]*/, int64_t n);
void relu_backward_bf16(int device, uint16_t* dx /*[n]*/, const uint16_t* dy /*[n]*/, const uint16_t* y /*[n]*/,
                        int64_t n);
// y[n,c,:] = y[n,c,:] + bias[c] (no bias: + 0), then max(., 0) when relu: the fused epilogue
// after a convolution (S = Ho*Wo) or a GEMM (S = 1). One pass over y, no division per element.
void bias_relu_forward(int device, float* y /*[N,C,S]*/, const float* bias /*[C] or null*/, int64_t N,
                       int64_t C, int64_t S, bool relu);
// db[c] = (accumulate ? db[c] : 0) + sum over n, s of dy[n, c, s]   (bias gradient)
// Deterministic: the summation order depends on (N, C, S) only, so two runs agree bitwise. An
// empty sum (N or S == 0) gives zeros (db unchanged when accumulating). Large shapes sum in two
// passes through `scratch`, which must hold bias_backward_scratch(N, C, S) floats (null when
// that is 0); it must stay allocated until the launch has run (stream-ordered reuse is fine).
int64_t bias_backward_scratch(int64_t N, int64_t C, int64_t S);
void bias_backward(int device, float* db /*[C]*/, const float* dy /*[N,C,S]*/, int64_t N, int64_t C,
                   int64_t S, bool accumulate, float* scratch /*[bias_backward_scratch(N,C,S)] or null*/);

// --- elementwise.cu ---
void fill(int device, float* t /*[n]*/, float value, int64_t n);
void fill_i32(int device, int32_t* t /*[n]*/, int32_t value, int64_t n);
void scale(int device, float* t /*[n]*/, float alpha, int64_t n);
void axpy(int device, float* y /*[n]*/, float alpha, const float* x /*[n]*/, int64_t n);

// --- convert.cu --- (the rules of native/core/bf16.h, bit for bit like the CPU)
void float_to_bf16(int device, uint16_t* y /*[n]*/, const float* x /*[n]*/, int64_t n);
void bf16_to_float(int device, float* y /*[n]*/, const uint16_t* x /*[n]*/, int64_t n);
// y[b, j] = bf16(sum[b, j] + (bias ? bias[j] : 0)): a bfloat16 GEMM output's epilogue
void bias_to_bf16(int device, uint16_t* y /*[B,C]*/, const float* sum /*[B,C]*/, const float* bias /*[C] or null*/,
                  int64_t B, int64_t C);
void zero_bf16(int device, uint16_t* y /*[n]*/, int64_t n);
// y[n, c, s] = bf16(float(y[n, c, s]) + (bias ? bias[c] : 0)), then max(., 0) when relu: the
// epilogue of cuDNN's bfloat16 convolution output (a second rounding when there is a bias)
void bias_relu_bf16(int device, uint16_t* y /*[N,C,S]*/, const float* bias /*[C] or null*/, int64_t N, int64_t C,
                    int64_t S, bool relu);
// db[c] = (accumulate ? db[c] : 0) + sum over b of dy[b, c] (bfloat16 dy, summed in float32 in a
// fixed order: deterministic)
void bias_backward_bf16(int device, float* db /*[C]*/, const uint16_t* dy /*[B,C]*/, int64_t B, int64_t C,
                        bool accumulate);

// --- layout.cu --- (memory formats, decision 14: exact permutations, S = H*W)
// y[n, s, c] = x[n, c, s]: NCHW -> NHWC, and a weight [O, C/g, kH, kW] -> cuDNN's KRSC filter
void nchw_to_nhwc(int device, float* y /*[N,S,C]*/, const float* x /*[N,C,S]*/, int64_t N, int64_t C, int64_t S);
void nchw_to_nhwc_bf16(int device, uint16_t* y /*[N,S,C]*/, const uint16_t* x /*[N,C,S]*/, int64_t N, int64_t C,
                       int64_t S);
// y[n, c, s] = (accumulate ? y[n, c, s] : 0) + x[n, s, c]: NHWC -> NCHW, and a KRSC weight
// gradient added into PyTorch's [O, C/g, kH, kW]
void nhwc_to_nchw(int device, float* y /*[N,C,S]*/, const float* x /*[N,S,C]*/, int64_t N, int64_t C, int64_t S,
                  bool accumulate = false);
void nhwc_to_nchw_bf16(int device, uint16_t* y /*[N,C,S]*/, const uint16_t* x /*[N,S,C]*/, int64_t N, int64_t C,
                       int64_t S);

// --- dropout.cu --- (the RNG of native/core/rng.h: same seed and offset, same mask; counter
// null or the stream position in device memory, advanced by p.advance: native/core/ops/dropout.h)
void dropout_forward(int device, float* y /*[n]*/, float* mask /*[n]*/, const float* x /*[n]*/, int64_t n,
                     int32_t* counter /*[2] or null*/, const DropoutParams& p);
void dropout_backward(int device, float* dx /*[n]*/, const float* dy /*[n]*/, const float* mask /*[n]*/,
                      int64_t n);

// bfloat16 x, y, dy, dx; float32 mask, the same as dropout_forward's; products rounded once
void dropout_forward_bf16(int device, uint16_t* y /*[n]*/, float* mask /*[n]*/, const uint16_t* x /*[n]*/,
                          int64_t n, int32_t* counter /*[2] or null*/, const DropoutParams& p);
void dropout_backward_bf16(int device, uint16_t* dx /*[n]*/, const uint16_t* dy /*[n]*/,
                           const float* mask /*[n]*/, int64_t n);

// --- pool.cu --- (bfloat16 max pooling; float32 pooling is cuDNN's, dnn.h) The CPU's rules:
// forward exact; backward routes each window's gradient to its first maximum (row-major, a NaN
// wins), sums each input's share in float32 (no atomics: deterministic) and rounds it once.
// p.channels_last: every tensor [N, H, W, C]-ordered instead (the same windows and rules).
void max_pool2d_forward_bf16(int device, uint16_t* y /*[N,C,Ho,Wo]*/, const uint16_t* x /*[N,C,H,W]*/,
                             const Pool2dParams& p);
void max_pool2d_backward_bf16(int device, uint16_t* dx /*[N,C,H,W]*/, const uint16_t* dy /*[N,C,Ho,Wo]*/,
                              const uint16_t* x /*[N,C,H,W]*/, const Pool2dParams& p);
// The same kernels on float32 (the CPU's tie rule; forward bitwise, backward sums to float32
// rounding), for channels last (cuDNN pools NCHW float32)
void max_pool2d_forward_f32(int device, float* y /*[N,Ho,Wo,C]*/, const float* x /*[N,H,W,C]*/,
                            const Pool2dParams& p);
void max_pool2d_backward_f32(int device, float* dx /*[N,H,W,C]*/, const float* dy /*[N,Ho,Wo,C]*/,
                             const float* x /*[N,H,W,C]*/, const Pool2dParams& p);

// --- loss.cu ---
void softmax_forward(int device, float* y /*[B,C]*/, const float* x /*[B,C]*/, int64_t B, int64_t C);
// loss[0] = mean_b(logsumexp(z_b) - z_b[label_b]); grad = (softmax(z) - onehot) / B.
// A label outside [0, C) is written to the device's error record (the next read rejects with
// the CPU's ERR_ARGUMENT message) and, as on the CPU, loss and grad become NaN.
void softmax_cross_entropy(int device, float* loss /*[1]*/, float* grad /*[B,C]*/,
                           const float* logits /*[B,C]*/, const int32_t* labels /*[B]*/, int64_t B,
                           int64_t C, float* row_loss_scratch /*[B]*/, DeviceErrorRecord* record /*[1]*/);

// --- sgd.cu --- (the update rules of native/core/sgd.h, in double, rounded once, like the CPU)
// w_bf16: null, or written with bf16(w) after the update in the same pass;
// lr: the learning rate in device memory (a double, read by the kernel), or null for p.lr
void sgd_step(int device, float* w /*[n]*/, const float* g /*[n]*/, float* buf /*[n] or null*/,
              uint16_t* w_bf16 /*[n] or null*/, const double* lr /*[1] or null*/, int64_t n, const SgdParams& p);

// --- metrics.cu ---
// correct[0] = #rows whose label has fewer than k logits strictly greater than it (a NaN logit
// counts as greater; a NaN label logit is never correct), as on the CPU. A label outside
// [0, C) is written to the device's error record and correct[0] becomes -1, as on the CPU.
void topk_correct(int device, int32_t* correct /*[1]*/, const float* logits /*[B,C]*/,
                  const int32_t* labels /*[B]*/, int64_t B, int64_t C, int64_t k,
                  DeviceErrorRecord* record /*[1]*/);

}  // namespace alexnet::cuda

namespace alexnet::cuda {

// --- image.cu --- (the core's lookup table, native/core/ops/image.h, passed by value: 3 KiB)
// y[n, c, p] = lut[c][x[n, c, p]]   (8-bit pixels to normalised floats); C <= 3, HW < 2^31
void normalize_images(int device, float* y /*[N,C,HW]*/, const uint8_t* x /*[N,C,HW]*/, int64_t N, int64_t C,
                      int64_t HW, const PixelLut& lut);

}  // namespace alexnet::cuda
