// Inverted dropout with the counter-based RNG of native/core/rng.h (SplitMix64 over the
// element counter): the CPU and CUDA backends produce the same mask for the same seed/offset.
#include "../../core/bf16.h"
#include "../../core/rng.h"
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

__global__ void dropout_forward_kernel(float* __restrict__ y, float* __restrict__ mask,
                                       const float* __restrict__ x, int64_t n, uint32_t threshold,
                                       float scale, uint64_t key, uint64_t offset) {
  GRID_STRIDE(i, n) {
    const bool keep = dropout_bits24(key, offset + static_cast<uint64_t>(i)) >= threshold;
    const float m = keep ? scale : 0.f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

__global__ void dropout_backward_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                        const float* __restrict__ mask, int64_t n) {
  GRID_STRIDE(i, n) { dx[i] = dy[i] * mask[i]; }
}

__global__ void dropout_forward_bf16_kernel(uint16_t* __restrict__ y, float* __restrict__ mask,
                                            const uint16_t* __restrict__ x, int64_t n, uint32_t threshold,
                                            float scale, uint64_t key, uint64_t offset) {
  GRID_STRIDE(i, n) {
    const bool keep = dropout_bits24(key, offset + static_cast<uint64_t>(i)) >= threshold;
    const float m = keep ? scale : 0.f;
    mask[i] = m;
    y[i] = bf16::from_float(bf16::to_float(x[i]) * m);
  }
}

__global__ void dropout_backward_bf16_kernel(uint16_t* __restrict__ dx, const uint16_t* __restrict__ dy,
                                             const float* __restrict__ mask, int64_t n) {
  GRID_STRIDE(i, n) { dx[i] = bf16::from_float(bf16::to_float(dy[i]) * mask[i]); }
}

}  // namespace

void dropout_forward_bf16(int device, uint16_t* y, float* mask, const uint16_t* x, int64_t n,
                          const DropoutParams& p) {
  if (n == 0) return;
  dropout_forward_bf16_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(
      y, mask, x, n, p.threshold, p.scale, dropout_key(p.seed), p.offset);
  ALEXNET_CUDA_CHECK_LAUNCH("dropout_forward_bf16_kernel");
}

void dropout_backward_bf16(int device, uint16_t* dx, const uint16_t* dy, const float* mask, int64_t n) {
  if (n == 0) return;
  dropout_backward_bf16_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(dx, dy, mask, n);
  ALEXNET_CUDA_CHECK_LAUNCH("dropout_backward_bf16_kernel");
}

void dropout_forward(int device, float* y, float* mask, const float* x, int64_t n, const DropoutParams& p) {
  if (n == 0) return;
  dropout_forward_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(
      y, mask, x, n, p.threshold, p.scale, dropout_key(p.seed), p.offset);
  ALEXNET_CUDA_CHECK_LAUNCH("dropout_forward_kernel");
}

void dropout_backward(int device, float* dx, const float* dy, const float* mask, int64_t n) {
  if (n == 0) return;
  dropout_backward_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(dx, dy, mask, n);
  ALEXNET_CUDA_CHECK_LAUNCH("dropout_backward_kernel");
}

}  // namespace alexnet::cuda
