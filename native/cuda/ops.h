// Launchers of our own CUDA kernels (native/cuda/kernels/*.cu). Plain C++ signatures: the
// stream is a cudaStream_t passed as void*, so g++-compiled bindings can call them. Each
// launches asynchronously on `stream` and checks the launch (typed error on failure).
// Semantics match the CPU reference in native/cpu/ exactly (same formulas, same RNG).
#pragma once

#include <cstdint>

#include "runtime.h"  // DeviceErrorRecord

namespace alexnet::cuda {

// --- activation.cu ---
void relu_forward(float* y /*[n]*/, const float* x /*[n]*/, int64_t n, void* stream);
void relu_backward(float* dx /*[n]*/, const float* dy /*[n]*/, const float* y /*[n]*/, int64_t n,
                   void* stream);
// y[n,c,:] = y[n,c,:] + bias[c] (no bias: + 0), then max(., 0) when relu: the fused epilogue
// after a convolution (S = Ho*Wo) or a GEMM (S = 1). One pass over y, no division per element.
void bias_relu_forward(float* y /*[N,C,S]*/, const float* bias /*[C] or null*/, int64_t N, int64_t C,
                       int64_t S, bool relu, void* stream);
// db[c] = (accumulate ? db[c] : 0) + sum over n, s of dy[n, c, s]   (bias gradient)
// Deterministic: the summation order depends on (N, C, S) only, so two runs agree bitwise. An
// empty sum (N or S == 0) gives zeros (db unchanged when accumulating). Large shapes sum in two
// passes through `scratch`, which must hold bias_backward_scratch(N, C, S) floats (null when
// that is 0); it must stay allocated until the launch has run (stream-ordered reuse is fine).
int64_t bias_backward_scratch(int64_t N, int64_t C, int64_t S);
void bias_backward(float* db /*[C]*/, const float* dy /*[N,C,S]*/, int64_t N, int64_t C, int64_t S,
                   bool accumulate, float* scratch /*[bias_backward_scratch(N,C,S)] or null*/,
                   void* stream);

// --- elementwise.cu ---
void fill(float* t /*[n]*/, float value, int64_t n, void* stream);
void fill_i32(int32_t* t /*[n]*/, int32_t value, int64_t n, void* stream);
void scale(float* t /*[n]*/, float alpha, int64_t n, void* stream);
void axpy(float* y /*[n]*/, float alpha, const float* x /*[n]*/, int64_t n, void* stream);

// --- dropout.cu --- (the RNG of native/cpu/dropout.h: same seed and offset, same mask)
void dropout_forward(float* y /*[n]*/, float* mask /*[n]*/, const float* x /*[n]*/, int64_t n,
                     uint32_t threshold, float scale, uint64_t seed, uint64_t offset, void* stream);
void dropout_backward(float* dx /*[n]*/, const float* dy /*[n]*/, const float* mask /*[n]*/,
                      int64_t n, void* stream);

// --- loss.cu ---
void softmax_forward(float* y /*[B,C]*/, const float* x /*[B,C]*/, int64_t B, int64_t C,
                     void* stream);
// loss[0] = mean_b(logsumexp(z_b) - z_b[label_b]); grad = (softmax(z) - onehot) / B.
// A label outside [0, C) is written to the device's error record (the next read rejects with
// the CPU's ERR_ARGUMENT message) and, as on the CPU, loss and grad become NaN.
void softmax_cross_entropy(float* loss /*[1]*/, float* grad /*[B,C]*/, const float* logits /*[B,C]*/,
                           const int32_t* labels /*[B]*/, int64_t B, int64_t C,
                           float* row_loss_scratch /*[B]*/, DeviceErrorRecord* record /*[1]*/,
                           void* stream);

// --- sgd.cu ---
struct SgdParams {  // as cpu::SgdParams; computed in double and rounded once, like the CPU
  double lr, momentum, dampening, weight_decay;
  bool nesterov, krizhevsky, first_step;
};
void sgd_step(float* w /*[n]*/, const float* g /*[n]*/, float* buf /*[n] or null*/, int64_t n,
              const SgdParams& p, void* stream);

// --- metrics.cu ---
// correct[0] = #rows whose label has fewer than k logits strictly greater than it (a NaN logit
// counts as greater; a NaN label logit is never correct), as on the CPU. A label outside
// [0, C) is written to the device's error record and correct[0] becomes -1, as on the CPU.
void topk_correct(int32_t* correct /*[1]*/, const float* logits /*[B,C]*/,
                  const int32_t* labels /*[B]*/, int64_t B, int64_t C, int64_t k,
                  DeviceErrorRecord* record /*[1]*/, void* stream);

}  // namespace alexnet::cuda

namespace alexnet::cuda {

// --- image.cu --- (the CPU's lookup table, native/cpu/image.h, passed by value: 3 KiB)
struct PixelLutArg {
  float v[3][256];
};
// y[n, c, p] = lut[c][x[n, c, p]]   (8-bit pixels to normalised floats); C <= 3, HW < 2^31
void normalize_images(float* y /*[N,C,HW]*/, const uint8_t* x /*[N,C,HW]*/, int64_t N, int64_t C,
                      int64_t HW, const PixelLutArg& lut, void* stream);

}  // namespace alexnet::cuda
