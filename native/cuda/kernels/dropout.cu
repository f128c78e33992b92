// Inverted dropout with the counter-based RNG of native/core/rng.h (SplitMix64 over the
// element counter): the CPU and CUDA backends produce the same mask for the same seed/offset.
#include "../../core/bf16.h"
#include "../../core/rng.h"
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

// v * m for one element: float32 exactly as multiplied, bfloat16 widened, multiplied, rounded once
__device__ __forceinline__ float times(float v, float m) { return v * m; }
__device__ __forceinline__ uint16_t times(uint16_t v, float m) { return bf16::from_float(bf16::to_float(v) * m); }

// The mask (scale or 0 from the counter bits of element offset + i: the same for every dtype)
// and y = x * mask.
template <typename T>
__global__ void dropout_forward_kernel(T* __restrict__ y, float* __restrict__ mask, const T* __restrict__ x,
                                       int64_t n, uint32_t threshold, float scale, uint64_t key, uint64_t offset) {
  GRID_STRIDE(i, n) {
    const bool keep = dropout_bits24(key, offset + static_cast<uint64_t>(i)) >= threshold;
    const float m = keep ? scale : 0.f;
    mask[i] = m;
    y[i] = times(x[i], m);
  }
}

template <typename T>
__global__ void dropout_backward_kernel(T* __restrict__ dx, const T* __restrict__ dy,
                                        const float* __restrict__ mask, int64_t n) {
  GRID_STRIDE(i, n) { dx[i] = times(dy[i], mask[i]); }
}

template <typename T>
void forward(int device, T* y, float* mask, const T* x, int64_t n, const DropoutParams& p) {
  if (n == 0) return;
  dropout_forward_kernel<T><<<blocks_for(n), kThreads, 0, stream_of(device)>>>(
      y, mask, x, n, p.threshold, p.scale, dropout_key(p.seed), p.offset);
  ALEXNET_CUDA_CHECK_LAUNCH("dropout_forward_kernel");
}

template <typename T>
void backward(int device, T* dx, const T* dy, const float* mask, int64_t n) {
  if (n == 0) return;
  dropout_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream_of(device)>>>(dx, dy, mask, n);
  ALEXNET_CUDA_CHECK_LAUNCH("dropout_backward_kernel");
}

}  // namespace

void dropout_forward(int device, float* y, float* mask, const float* x, int64_t n, const DropoutParams& p) {
  forward(device, y, mask, x, n, p);
}

void dropout_backward(int device, float* dx, const float* dy, const float* mask, int64_t n) {
  backward(device, dx, dy, mask, n);
}

void dropout_forward_bf16(int device, uint16_t* y, float* mask, const uint16_t* x, int64_t n,
                          const DropoutParams& p) {
  forward(device, y, mask, x, n, p);
}

void dropout_backward_bf16(int device, uint16_t* dx, const uint16_t* dy, const float* mask, int64_t n) {
  backward(device, dx, dy, mask, n);
}

}  // namespace alexnet::cuda
