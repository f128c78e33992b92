// ReLU forward/backward and the fused bias + ReLU epilogue.
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

__global__ void relu_forward_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t n) {
  GRID_STRIDE(i, n) { y[i] = fmaxf(x[i], 0.f); }
}

__global__ void relu_backward_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                     const float* __restrict__ y, int64_t n) {
  GRID_STRIDE(i, n) { dx[i] = y[i] > 0.f ? dy[i] : 0.f; }
}

__global__ void bias_relu_kernel(float* __restrict__ y, const float* __restrict__ bias, int64_t C,
                                 int64_t S, int64_t n, bool relu) {
  GRID_STRIDE(i, n) {
    const float v = bias ? y[i] + bias[(i / S) % C] : y[i];
    y[i] = relu ? fmaxf(v, 0.f) : v;
  }
}

}  // namespace

void relu_forward(float* y, const float* x, int64_t n, void* stream) {
  if (n == 0) return;
  relu_forward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(y, x, n);
  ALEXNET_CUDA_CHECK_LAUNCH("relu_forward_kernel");
}

void relu_backward(float* dx, const float* dy, const float* y, int64_t n, void* stream) {
  if (n == 0) return;
  relu_backward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(dx, dy, y, n);
  ALEXNET_CUDA_CHECK_LAUNCH("relu_backward_kernel");
}

void bias_relu_forward(float* y, const float* bias, int64_t N, int64_t C, int64_t S, bool relu,
                       void* stream) {
  const int64_t n = N * C * S;
  if (n == 0) return;
  bias_relu_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(y, bias, C, S, n, relu);
  ALEXNET_CUDA_CHECK_LAUNCH("bias_relu_kernel");
}

}  // namespace alexnet::cuda

namespace alexnet::cuda {

namespace {

// One block per channel: a deterministic tree reduction over N*S values.
__global__ void bias_backward_kernel(float* __restrict__ db, const float* __restrict__ dy, int64_t N,
                                     int64_t C, int64_t S, bool accumulate) {
  __shared__ float partial[kThreads];
  const int64_t c = blockIdx.x;
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < N * S; i += blockDim.x) {
    const int64_t n = i / S, j = i % S;
    s += dy[(n * C + c) * S + j];
  }
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[c] = (accumulate ? db[c] : 0.f) + partial[0];
}

}  // namespace

void bias_backward(float* db, const float* dy, int64_t N, int64_t C, int64_t S, bool accumulate,
                   void* stream) {
  if (C == 0) return;
  bias_backward_kernel<<<static_cast<unsigned>(C), kThreads, 0, as_stream(stream)>>>(db, dy, N, C, S,
                                                                                    accumulate);
  ALEXNET_CUDA_CHECK_LAUNCH("bias_backward_kernel");
}

}  // namespace alexnet::cuda
