// fill, scale, axpy (copy is a cudaMemcpyAsync in runtime.cu).
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

template <typename T>
__global__ void fill_kernel(T* __restrict__ t, T v, int64_t n) {
  GRID_STRIDE(i, n) { t[i] = v; }
}

__global__ void scale_kernel(float* __restrict__ t, float a, int64_t n) {
  GRID_STRIDE(i, n) { t[i] *= a; }
}

__global__ void axpy_kernel(float* __restrict__ y, float a, const float* __restrict__ x, int64_t n) {
  GRID_STRIDE(i, n) { y[i] += a * x[i]; }
}

}  // namespace

void fill(int device, float* t, float value, int64_t n) {
  if (n == 0) return;
  fill_kernel<float><<<blocks_for(n), kThreads, 0, stream_of(device)>>>(t, value, n);
  ALEXNET_CUDA_CHECK_LAUNCH("fill_kernel");
}

void fill_i32(int device, int32_t* t, int32_t value, int64_t n) {
  if (n == 0) return;
  fill_kernel<int32_t><<<blocks_for(n), kThreads, 0, stream_of(device)>>>(t, value, n);
  ALEXNET_CUDA_CHECK_LAUNCH("fill_kernel<int32>");
}

void scale(int device, float* t, float alpha, int64_t n) {
  if (n == 0) return;
  scale_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(t, alpha, n);
  ALEXNET_CUDA_CHECK_LAUNCH("scale_kernel");
}

void axpy(int device, float* y, float alpha, const float* x, int64_t n) {
  if (n == 0) return;
  axpy_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(y, alpha, x, n);
  ALEXNET_CUDA_CHECK_LAUNCH("axpy_kernel");
}

}  // namespace alexnet::cuda
