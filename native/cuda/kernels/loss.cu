// Row-wise softmax and the fused softmax cross-entropy (forward and backward in one pass).
// One block per row; the row's max and sum of exponentials are block reductions.
#include <math_constants.h>

#include "../ops.h"
#include "common.cuh"
#include "labels.cuh"

namespace alexnet::cuda {

namespace {

// Block-wide reduction with `op` (max or sum) through warp shuffles and one shared slot per
// warp; every thread gets the result.
template <typename Op>
__device__ float block_reduce(float v, float identity, Op op, float* shared /*[32]*/) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffff, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = threadIdx.x < warps ? shared[threadIdx.x] : identity;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffff, v, o));
  if (threadIdx.x == 0) shared[0] = v;
  __syncthreads();
  v = shared[0];
  __syncthreads();
  return v;
}

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};

__device__ float block_reduce_max(float v, float* shared) { return block_reduce(v, -CUDART_INF_F, MaxOp{}, shared); }
__device__ float block_reduce_sum(float v, float* shared) { return block_reduce(v, 0.f, SumOp{}, shared); }

// The row's maximum m and sum of exp(x - m), for a numerically stable softmax (one block a row).
__device__ void row_max_sumexp(const float* row /*[C]*/, int64_t C, float* shared /*[32]*/, float* m_out,
                               float* s_out) {
  float m = -CUDART_INF_F;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, row[j]);
  m = block_reduce_max(m, shared);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) s += expf(row[j] - m);
  *m_out = m;
  *s_out = block_reduce_sum(s, shared);
}

__global__ void softmax_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t C) {
  __shared__ float shared[32];
  const float* row = x + blockIdx.x * C;
  float* out = y + blockIdx.x * C;
  float m, s;
  row_max_sumexp(row, C, shared, &m, &s);
  const float inv = 1.f / s;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) out[j] = expf(row[j] - m) * inv;
}

__global__ void xent_kernel(float* __restrict__ row_loss, float* __restrict__ grad,
                            const float* __restrict__ logits, const int32_t* __restrict__ labels,
                            int64_t B, int64_t C) {
  __shared__ float shared[32];
  const float* row = logits + blockIdx.x * C;
  float* g = grad + blockIdx.x * C;
  const int32_t label = labels[blockIdx.x];
  const bool valid = label >= 0 && label < C;
  float m, s;
  row_max_sumexp(row, C, shared, &m, &s);
  const float inv = 1.f / s;
  const float invB = 1.f / static_cast<float>(B);
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
    const float p = expf(row[j] - m) * inv;
    g[j] = valid ? (p - (j == label ? 1.f : 0.f)) * invB : CUDART_NAN_F;
  }
  if (threadIdx.x == 0) row_loss[blockIdx.x] = valid ? (m + logf(s)) - row[label] : CUDART_NAN_F;
}

// Deterministic mean of B row losses (one block; B is a batch size).
__global__ void mean_kernel(float* __restrict__ loss, const float* __restrict__ row_loss, int64_t B) {
  __shared__ float shared[32];
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < B; i += blockDim.x) s += row_loss[i];
  s = block_reduce_sum(s, shared);
  if (threadIdx.x == 0) loss[0] = s / static_cast<float>(B);
}

}  // namespace

void softmax_forward(int device, float* y, const float* x, int64_t B, int64_t C) {
  if (B == 0 || C == 0) return;
  softmax_kernel<<<static_cast<unsigned>(B), kThreads, 0, stream_of(device)>>>(y, x, C);
  ALEXNET_CUDA_CHECK_LAUNCH("softmax_kernel");
}

void softmax_cross_entropy(int device, float* loss, float* grad, const float* logits, const int32_t* labels,
                           int64_t B, int64_t C, float* row_loss_scratch, DeviceErrorRecord* record) {
  if (B == 0) return;
  const cudaStream_t s = stream_of(device);
  xent_kernel<<<static_cast<unsigned>(B), kThreads, 0, s>>>(row_loss_scratch, grad, logits, labels, B, C);
  ALEXNET_CUDA_CHECK_LAUNCH("xent_kernel");
  mean_kernel<<<1, kThreads, 0, s>>>(loss, row_loss_scratch, B);
  ALEXNET_CUDA_CHECK_LAUNCH("mean_kernel");
  check_labels(record, labels, B, C, DeviceErrorOp::SoftmaxCrossEntropyLabel, loss, grad, nullptr, s);
}

}  // namespace alexnet::cuda
