// float32 <-> bfloat16 and the bfloat16 GEMM epilogue, by the rules of native/core/bf16.h (the
// same inline functions the CPU calls, so both give the same bits).
#include "../../core/bf16.h"
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

__global__ void float_to_bf16_kernel(uint16_t* __restrict__ y, const float* __restrict__ x, int64_t n) {
  GRID_STRIDE(i, n) { y[i] = bf16::from_float(x[i]); }
}

__global__ void bf16_to_float_kernel(float* __restrict__ y, const uint16_t* __restrict__ x, int64_t n) {
  GRID_STRIDE(i, n) { y[i] = bf16::to_float(x[i]); }
}

__global__ void bias_to_bf16_kernel(uint16_t* __restrict__ y, const float* __restrict__ sum,
                                    const float* __restrict__ bias, int64_t B, int64_t C) {
  GRID_STRIDE(i, B * C) { y[i] = bf16::from_float(bias != nullptr ? sum[i] + bias[i % C] : sum[i]); }
}

__global__ void bias_relu_bf16_kernel(uint16_t* __restrict__ y, const float* __restrict__ bias, int64_t C, int64_t S,
                                      int64_t n, bool relu) {
  GRID_STRIDE(i, n) {
    float v = bf16::to_float(y[i]) + (bias != nullptr ? bias[(i / S) % C] : 0.f);
    if (relu) v = v <= 0.f ? 0.f : v;  // keeps NaN, as bias_relu_forward
    y[i] = bf16::from_float(v);
  }
}

__global__ void zero_bf16_kernel(uint16_t* __restrict__ y, int64_t n) {
  GRID_STRIDE(i, n) { y[i] = 0; }
}

__global__ void bias_backward_bf16_kernel(float* __restrict__ db, const uint16_t* __restrict__ dy, int64_t B,
                                          int64_t C, bool accumulate) {
  GRID_STRIDE(c, C) {
    float s = 0.f;
    for (int64_t b = 0; b < B; ++b) s += bf16::to_float(dy[b * C + c]);
    db[c] = accumulate ? db[c] + s : s;
  }
}

}  // namespace

void float_to_bf16(int device, uint16_t* y, const float* x, int64_t n) {
  if (n == 0) return;
  float_to_bf16_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(y, x, n);
  ALEXNET_CUDA_CHECK_LAUNCH("float_to_bf16_kernel");
}

void bf16_to_float(int device, float* y, const uint16_t* x, int64_t n) {
  if (n == 0) return;
  bf16_to_float_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(y, x, n);
  ALEXNET_CUDA_CHECK_LAUNCH("bf16_to_float_kernel");
}

void bias_to_bf16(int device, uint16_t* y, const float* sum, const float* bias, int64_t B, int64_t C) {
  if (B * C == 0) return;
  bias_to_bf16_kernel<<<blocks_for(B * C), kThreads, 0, stream_of(device)>>>(y, sum, bias, B, C);
  ALEXNET_CUDA_CHECK_LAUNCH("bias_to_bf16_kernel");
}

void bias_relu_bf16(int device, uint16_t* y, const float* bias, int64_t N, int64_t C, int64_t S, bool relu) {
  const int64_t n = N * C * S;
  if (n == 0) return;
  bias_relu_bf16_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(y, bias, C, S, n, relu);
  ALEXNET_CUDA_CHECK_LAUNCH("bias_relu_bf16_kernel");
}

void zero_bf16(int device, uint16_t* y, int64_t n) {
  if (n == 0) return;
  zero_bf16_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(y, n);
  ALEXNET_CUDA_CHECK_LAUNCH("zero_bf16_kernel");
}

void bias_backward_bf16(int device, float* db, const uint16_t* dy, int64_t B, int64_t C, bool accumulate) {
  if (C == 0) return;
  bias_backward_bf16_kernel<<<blocks_for(C), kThreads, 0, stream_of(device)>>>(db, dy, B, C, accumulate);
  ALEXNET_CUDA_CHECK_LAUNCH("bias_backward_bf16_kernel");
}

}  // namespace alexnet::cuda
