// Shared helpers for our kernels: launch geometry and the launch check.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "../../core/bf16.h"
#include "../../core/error.h"
#include "../runtime.h"

namespace alexnet::cuda {

constexpr int kThreads = 256;

// The element types of our kernels: float32 as is, bfloat16 (uint16_t bits) through float32,
// exact on the way in, rounded to nearest even (once) on the way out.
__device__ inline float load(const float v) { return v; }
__device__ inline float load(const uint16_t v) { return bf16::to_float(v); }
__device__ inline void store(float* p, float v) { *p = v; }
__device__ inline void store(uint16_t* p, float v) { *p = bf16::from_float(v); }

// Enough blocks to fill the GPU for a grid-stride loop over n elements (capped; the loop covers the rest).
inline unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(b, 65535)));
}

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }
// The compute stream of `device`, where every launcher queues its kernels.
inline cudaStream_t stream_of(int device) { return as_stream(stream(device)); }

// Throws a typed error for a failed CUDA runtime call made by a launcher.
inline void check_call(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess) {
    cudaGetLastError();
    ::alexnet::fail(::alexnet::code::kCuda, what, " failed: ", cudaGetErrorName(e), " (",
                    cudaGetErrorString(e), ") at ", file, ":", line);
  }
}
#define ALEXNET_CUDA_CALL(call) ::alexnet::cuda::check_call((call), #call, __FILE__, __LINE__)

#define GRID_STRIDE(i, n)                                                              \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

}  // namespace alexnet::cuda
