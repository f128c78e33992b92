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

__device__ __forceinline__ bool positive(float v) { return !(v <= 0.f); }  // ReLU keeps x > 0 and NaN
__device__ __forceinline__ bool positive(uint16_t v) { return !(bf16::to_float(v) <= 0.f); }

// The mask (scale or 0 from the counter bits of element offset + i: the same for every dtype)
// and y = x * mask; with Relu, the mask is 0 where x <= 0 too and y = max(x, 0) * mask. The
// stream position is offset, plus the counter's value when there is one (read by every thread;
// advanced by dropout_advance_kernel, queued behind this kernel).
template <typename T, bool Relu>
__global__ void dropout_forward_kernel(T* __restrict__ y, float* __restrict__ mask, const T* __restrict__ x,
                                       int64_t n, uint32_t threshold, float scale, uint64_t key, uint64_t offset,
                                       const int32_t* __restrict__ counter) {
  const uint64_t base = offset + (counter != nullptr ? dropout_counter_read(counter) : 0);
  GRID_STRIDE(i, n) {
    const bool keep = dropout_bits24(key, base + static_cast<uint64_t>(i)) >= threshold;
    // selects, not branches: the signs of x are as random as the mask (a branch mispredicts
    // half the time and made this pass slower than ReLU and dropout apart)
    const bool pass = !Relu || positive(x[i]);
    const float m = keep && pass ? scale : 0.f;
    mask[i] = m;
    y[i] = times(pass ? x[i] : T(0), m);  // x <= 0: +0 * m = +0, as ReLU then dropout give
  }
}

// *counter += advance (one thread): the next draw's stream position, on the device, so a
// captured step draws a fresh mask at every replay.
__global__ void dropout_advance_kernel(int32_t* counter, uint64_t advance) {
  dropout_counter_write(counter, dropout_counter_read(counter) + advance);
}

template <typename T>
__global__ void dropout_backward_kernel(T* __restrict__ dx, const T* __restrict__ dy,
                                        const float* __restrict__ mask, int64_t n) {
  GRID_STRIDE(i, n) { dx[i] = times(dy[i], mask[i]); }
}

template <typename T>
void forward(int device, T* y, float* mask, const T* x, int64_t n, int32_t* counter, const DropoutParams& p) {
  if (n > 0) {
    auto kernel = p.relu ? dropout_forward_kernel<T, true> : dropout_forward_kernel<T, false>;
    kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(y, mask, x, n, p.threshold, p.scale,
                                                              dropout_key(p.seed), p.offset, counter);
    ALEXNET_CUDA_CHECK_LAUNCH("dropout_forward_kernel");
  }
  if (counter != nullptr && p.advance != 0) {
    dropout_advance_kernel<<<1, 1, 0, stream_of(device)>>>(counter, p.advance);
    ALEXNET_CUDA_CHECK_LAUNCH("dropout_advance_kernel");
  }
}

template <typename T>
void backward(int device, T* dx, const T* dy, const float* mask, int64_t n) {
  if (n == 0) return;
  dropout_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream_of(device)>>>(dx, dy, mask, n);
  ALEXNET_CUDA_CHECK_LAUNCH("dropout_backward_kernel");
}

}  // namespace

void dropout_forward(int device, float* y, float* mask, const float* x, int64_t n, int32_t* counter,
                     const DropoutParams& p) {
  forward(device, y, mask, x, n, counter, p);
}

void dropout_backward(int device, float* dx, const float* dy, const float* mask, int64_t n) {
  backward(device, dx, dy, mask, n);
}

void dropout_forward_bf16(int device, uint16_t* y, float* mask, const uint16_t* x, int64_t n, int32_t* counter,
                          const DropoutParams& p) {
  forward(device, y, mask, x, n, counter, p);
}

void dropout_backward_bf16(int device, uint16_t* dx, const uint16_t* dy, const float* mask, int64_t n) {
  backward(device, dx, dy, mask, n);
}

}  // namespace alexnet::cuda
