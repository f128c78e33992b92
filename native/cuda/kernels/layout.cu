// Memory formats on CUDA (docs/architecture.md, decision 14): the permutation between
// [N, C, S] (PyTorch's contiguous NCHW, or a weight's [O, C/groups, kH*kW]) and [N, S, C]
// (channels last, or the KRSC filter cuDNN's NHWC convolutions read), as a batch of matrix
// transposes through 32x32 tiles in shared memory, so that both the reads and the writes are
// coalesced. Exact: values are moved, never computed (NaN patterns included).
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

constexpr int kTile = 32;
constexpr int kRowsPerPass = 8;  // blockDim.y: each thread moves kTile / kRowsPerPass elements

// dst[n, c, r] = (Accumulate ? dst[n, c, r] : 0) + src[n, r, c] for src [N, rows, cols].
template <typename T, bool Accumulate>
__global__ void transpose_kernel(T* __restrict__ dst, const T* __restrict__ src, int64_t N, int64_t rows,
                                 int64_t cols) {
  __shared__ T tile[kTile][kTile + 1];  // +1: no bank conflicts on the transposed read
  const int64_t plane = rows * cols;
  for (int64_t n = blockIdx.z; n < N; n += gridDim.z) {
    const T* s = src + n * plane;
    T* d = dst + n * plane;
    for (int64_t r0 = static_cast<int64_t>(blockIdx.y) * kTile; r0 < rows; r0 += static_cast<int64_t>(gridDim.y) * kTile) {
      const int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTile;
      for (int k = threadIdx.y; k < kTile; k += kRowsPerPass) {
        const int64_t r = r0 + k, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[k][threadIdx.x] = s[r * cols + c];
      }
      __syncthreads();
      for (int k = threadIdx.y; k < kTile; k += kRowsPerPass) {
        const int64_t c = c0 + k, r = r0 + threadIdx.x;
        if (r < rows && c < cols) {
          if constexpr (Accumulate) d[c * rows + r] += tile[threadIdx.x][k];
          else d[c * rows + r] = tile[threadIdx.x][k];
        }
      }
      __syncthreads();
    }
  }
}

template <typename T, bool Accumulate>
void transpose(int device, T* dst, const T* src, int64_t N, int64_t rows, int64_t cols, const char* name) {
  if (N == 0 || rows == 0 || cols == 0) return;
  // cols <= 2^32 (kMaxNumel): gx < 2^27 fits grid.x; y and z loop past 65535
  const int64_t gx = (cols + kTile - 1) / kTile, gy = (rows + kTile - 1) / kTile;
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(std::min<int64_t>(gy, 65535)),
                  static_cast<unsigned>(std::min<int64_t>(N, 65535)));
  transpose_kernel<T, Accumulate><<<grid, dim3(kTile, kRowsPerPass), 0, stream_of(device)>>>(dst, src, N, rows, cols);
  ALEXNET_CUDA_CHECK_LAUNCH(name);
}

}  // namespace

void nchw_to_nhwc(int device, float* y, const float* x, int64_t N, int64_t C, int64_t S) {
  transpose<float, false>(device, y, x, N, C, S, "nchw_to_nhwc");
}
void nchw_to_nhwc_bf16(int device, uint16_t* y, const uint16_t* x, int64_t N, int64_t C, int64_t S) {
  transpose<uint16_t, false>(device, y, x, N, C, S, "nchw_to_nhwc_bf16");
}
void nhwc_to_nchw(int device, float* y, const float* x, int64_t N, int64_t C, int64_t S, bool accumulate) {
  if (accumulate) transpose<float, true>(device, y, x, N, S, C, "nhwc_to_nchw (accumulate)");
  else transpose<float, false>(device, y, x, N, S, C, "nhwc_to_nchw");
}
void nhwc_to_nchw_bf16(int device, uint16_t* y, const uint16_t* x, int64_t N, int64_t C, int64_t S) {
  transpose<uint16_t, false>(device, y, x, N, S, C, "nhwc_to_nchw_bf16");
}

}  // namespace alexnet::cuda
