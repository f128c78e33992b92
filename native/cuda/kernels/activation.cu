// ReLU forward/backward, the fused bias + ReLU epilogue and the bias gradient.
#include "../../core/bf16.h"
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

// float32 or bfloat16 (uint16_t bits); the comparison in float32 (load, common.cuh), the value
// passed through untouched.
template <typename T>
__global__ void relu_forward_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t n) {
  // Not fmaxf: fmaxf(NaN, 0) is 0, and NaN must propagate (as in PyTorch and the CPU backend).
  GRID_STRIDE(i, n) {
    const T v = x[i];
    y[i] = load(v) <= 0.f ? T{0} : v;
  }
}

template <typename T>
__global__ void relu_backward_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ y,
                                     int64_t n) {
  // A NaN output passes its gradient (PyTorch's threshold_backward: y <= 0 ? 0 : dy).
  GRID_STRIDE(i, n) { dx[i] = load(y[i]) <= 0.f ? T{0} : dy[i]; }
}

template <typename T>
void relu_forward_launch(int device, T* y, const T* x, int64_t n, const char* name) {
  if (n == 0) return;
  relu_forward_kernel<T><<<blocks_for(n), kThreads, 0, stream_of(device)>>>(y, x, n);
  ALEXNET_CUDA_CHECK_LAUNCH(name);
}

template <typename T>
void relu_backward_launch(int device, T* dx, const T* dy, const T* y, int64_t n, const char* name) {
  if (n == 0) return;
  relu_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream_of(device)>>>(dx, dy, y, n);
  ALEXNET_CUDA_CHECK_LAUNCH(name);
}

}  // namespace

void relu_forward_bf16(int device, uint16_t* y, const uint16_t* x, int64_t n) {
  relu_forward_launch(device, y, x, n, "relu_forward_bf16_kernel");
}

void relu_backward_bf16(int device, uint16_t* dx, const uint16_t* dy, const uint16_t* y, int64_t n) {
  relu_backward_launch(device, dx, dy, y, n, "relu_backward_bf16_kernel");
}

void relu_forward(int device, float* y, const float* x, int64_t n) {
  relu_forward_launch(device, y, x, n, "relu_forward_kernel");
}

void relu_backward(int device, float* dx, const float* dy, const float* y, int64_t n) {
  relu_backward_launch(device, dx, dy, y, n, "relu_backward_kernel");
}


// ---- bias + ReLU epilogue and the bias gradient -------------------------------------------------
//
// y / dy are [N, C, S]: N images (or rows), C channels, S positions per plane (Ho*Wo after a
// convolution, 1 after a matrix product). The kernels below index planes, never flat elements:
// the channel of a plane comes from the grid (blockIdx), so the inner loops over a plane's
// positions have no division or modulo, and run on 32-bit indices wherever a plane fits (S <
// 2^30; the 64-bit kernels only exist for larger planes). S == 1 (a linear layer's [B, out])
// takes "row" kernels instead, whose threads run along the contiguous channel dimension.

namespace {

constexpr int64_t kSmallPlane = int64_t{1} << 30;  // below: 32-bit indices inside a plane
constexpr unsigned kMaxGridYZ = 65535;

// Threads along a plane: a power of two from 32 to kThreads covering S where it can.
inline unsigned plane_threads(int64_t S) {
  unsigned t = 32;
  while (t < static_cast<unsigned>(kThreads) && static_cast<int64_t>(t) < S) t *= 2;
  return t;
}

// grid.x: position blocks within a plane; grid.y: channels; grid.z: images. The loops stride
// over what the grid does not cover (more than 65535 channels or images).
template <typename Index>
__global__ void bias_relu_planes_kernel(float* __restrict__ y /*[N,C,S]*/,
                                        const float* __restrict__ bias /*[C] or null*/, int64_t N,
                                        int64_t C, Index S, bool relu) {
  const Index j0 = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
  const Index jstep = static_cast<Index>(gridDim.x) * blockDim.x;
  for (int64_t c = blockIdx.y; c < C; c += gridDim.y) {
    const float b = bias ? bias[c] : 0.f;
    for (int64_t n = blockIdx.z; n < N; n += gridDim.z) {
      float* __restrict__ plane = y + (n * C + c) * static_cast<int64_t>(S);
      for (Index j = j0; j < S; j += jstep) {
        const float v = bias ? plane[j] + b : plane[j];
        plane[j] = relu && v <= 0.f ? 0.f : v;  // not fmaxf, which turns NaN into 0
      }
    }
  }
}

// S == 1: y[n, c], one thread per channel (coalesced along c), grid.y over rows.
__global__ void bias_relu_rows_kernel(float* __restrict__ y /*[N,C]*/,
                                      const float* __restrict__ bias /*[C] or null*/, int64_t N,
                                      int C, bool relu) {
  const int c = static_cast<int>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const float b = bias ? bias[c] : 0.f;
  for (int64_t n = blockIdx.y; n < N; n += gridDim.y) {
    float* p = y + n * C + c;
    const float v = bias ? *p + b : *p;
    *p = relu && v <= 0.f ? 0.f : v;  // not fmaxf, which turns NaN into 0
  }
}

// How the bias gradient splits the images: P chunks of `chunk` consecutive images, so that
// about kTargetBlocks blocks share the work however few channels there are. A function of
// (N, C, S) only: the same shape always sums in the same order (bitwise deterministic).
constexpr int64_t kTargetBlocks = 1024;
constexpr int64_t kMaxParts = 256;
constexpr int kRowTile = 32, kRowLanes = 8;  // S == 1: 32 channels x 8 row lanes per block

struct BiasSplit {
  int64_t parts = 1, chunk = 0;
};

BiasSplit bias_split(int64_t N, int64_t C, int64_t S) {
  BiasSplit s;
  const int64_t column_blocks = S == 1 ? (C + kRowTile - 1) / kRowTile : C;
  const int64_t most = S == 1 ? (N + kRowLanes - 1) / kRowLanes : N;  // >= 1 row lane busy per chunk
  int64_t parts = (kTargetBlocks + column_blocks - 1) / std::max<int64_t>(column_blocks, 1);
  parts = std::max<int64_t>(1, std::min({parts, most, kMaxParts}));
  s.chunk = (N + parts - 1) / parts;
  s.parts = (N + s.chunk - 1) / s.chunk;  // no empty chunk
  return s;
}

// Sum of a block's kThreads partial sums, in a fixed tree order; the result in part[0].
__device__ void block_sum(float* part /*[kThreads], shared*/, unsigned t) {
  __syncthreads();
  for (unsigned stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (t < stride) part[t] += part[t + stride];
    __syncthreads();
  }
}

// Block (c = blockIdx.x, chunk p = blockIdx.y): threads (x along the plane, y across the
// chunk's images; blockDim.x * blockDim.y == kThreads). With one chunk the block writes
// db[c] (adding to it when accumulating); otherwise partial[c * parts + p].
template <typename Index>
__global__ void bias_grad_planes_kernel(float* __restrict__ dst, const float* __restrict__ dy /*[N,C,S]*/,
                                        int64_t N, int64_t C, Index S, int64_t chunk, int parts,
                                        bool accumulate) {
  __shared__ float part[kThreads];
  const int64_t c = blockIdx.x;
  const int p = static_cast<int>(blockIdx.y);
  const int64_t n0 = p * chunk, n1 = n0 + chunk < N ? n0 + chunk : N;
  float s = 0.f;
  for (int64_t n = n0 + threadIdx.y; n < n1; n += blockDim.y) {
    const float* __restrict__ plane = dy + (n * C + c) * static_cast<int64_t>(S);
    for (Index j = threadIdx.x; j < S; j += blockDim.x) s += plane[j];
  }
  const unsigned t = threadIdx.y * blockDim.x + threadIdx.x;
  part[t] = s;
  block_sum(part, t);
  if (t != 0) return;
  if (parts == 1) dst[c] = (accumulate ? dst[c] : 0.f) + part[0];
  else dst[c * parts + p] = part[0];
}

// S == 1: block (32 channels, chunk p); thread (x: channel, y: one of 8 row lanes).
__global__ void bias_grad_rows_kernel(float* __restrict__ dst, const float* __restrict__ dy /*[N,C]*/,
                                      int64_t N, int64_t C, int64_t chunk, int parts, bool accumulate) {
  __shared__ float part[kRowLanes][kRowTile + 1];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kRowTile + threadIdx.x;
  const int p = static_cast<int>(blockIdx.y);
  const int64_t n0 = p * chunk, n1 = n0 + chunk < N ? n0 + chunk : N;
  float s = 0.f;
  if (c < C)
    for (int64_t n = n0 + threadIdx.y; n < n1; n += kRowLanes) s += dy[n * C + c];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  float total = part[0][threadIdx.x];
  for (int k = 1; k < kRowLanes; ++k) total += part[k][threadIdx.x];
  if (parts == 1) dst[c] = (accumulate ? dst[c] : 0.f) + total;
  else dst[c * parts + p] = total;
}

// db[c] (+)= sum over p of partial[c, p], p in order.
__global__ void bias_grad_finish_kernel(float* __restrict__ db, const float* __restrict__ partial /*[C, parts]*/,
                                        int64_t C, int parts, bool accumulate) {
  GRID_STRIDE(c, C) {
    const float* row = partial + c * parts;
    float s = 0.f;
    for (int p = 0; p < parts; ++p) s += row[p];
    db[c] = (accumulate ? db[c] : 0.f) + s;
  }
}

}  // namespace

void bias_relu_forward(int device, float* y, const float* bias, int64_t N, int64_t C, int64_t S, bool relu) {
  if (N == 0 || C == 0 || S == 0 || (!bias && !relu)) return;
  const cudaStream_t s = stream_of(device);
  if (S == 1 && C < kSmallPlane) {
    const dim3 grid(static_cast<unsigned>((C + kThreads - 1) / kThreads),
                    static_cast<unsigned>(std::min<int64_t>(N, kMaxGridYZ)));
    bias_relu_rows_kernel<<<grid, kThreads, 0, s>>>(y, bias, N, static_cast<int>(C), relu);
    ALEXNET_CUDA_CHECK_LAUNCH("bias_relu_rows_kernel");
    return;
  }
  const unsigned threads = plane_threads(S);
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>((S + threads - 1) / threads, 4096)),
                  static_cast<unsigned>(std::min<int64_t>(C, kMaxGridYZ)),
                  static_cast<unsigned>(std::min<int64_t>(N, kMaxGridYZ)));
  if (S < kSmallPlane) {
    bias_relu_planes_kernel<int32_t><<<grid, threads, 0, s>>>(y, bias, N, C, static_cast<int32_t>(S), relu);
  } else {
    bias_relu_planes_kernel<int64_t><<<grid, threads, 0, s>>>(y, bias, N, C, S, relu);
  }
  ALEXNET_CUDA_CHECK_LAUNCH("bias_relu_planes_kernel");
}

int64_t bias_backward_scratch(int64_t N, int64_t C, int64_t S) {
  if (N == 0 || C == 0 || S == 0) return 0;
  const BiasSplit split = bias_split(N, C, S);
  return split.parts > 1 ? C * split.parts : 0;
}

void bias_backward(int device, float* db, const float* dy, int64_t N, int64_t C, int64_t S, bool accumulate,
                   float* scratch) {
  if (C == 0) return;
  if (N == 0 || S == 0) {  // an empty sum: zero, or db unchanged when accumulating
    if (!accumulate) fill(device, db, 0.f, C);
    return;
  }
  const cudaStream_t s = stream_of(device);
  const BiasSplit split = bias_split(N, C, S);
  const int parts = static_cast<int>(split.parts);
  if (parts > 1 && scratch == nullptr)
    fail(code::kCuda, "bias_backward: ", C * parts, " floats of scratch are needed but none were given");
  float* dst = parts > 1 ? scratch : db;
  if (S == 1) {
    const dim3 grid(static_cast<unsigned>((C + kRowTile - 1) / kRowTile), static_cast<unsigned>(parts));
    bias_grad_rows_kernel<<<grid, dim3(kRowTile, kRowLanes), 0, s>>>(dst, dy, N, C, split.chunk, parts,
                                                                    accumulate);
    ALEXNET_CUDA_CHECK_LAUNCH("bias_grad_rows_kernel");
  } else {
    const unsigned tx = plane_threads(S);
    const dim3 threads(tx, kThreads / tx);
    const dim3 grid(static_cast<unsigned>(C), static_cast<unsigned>(parts));
    if (S < kSmallPlane)
      bias_grad_planes_kernel<int32_t><<<grid, threads, 0, s>>>(dst, dy, N, C, static_cast<int32_t>(S),
                                                                split.chunk, parts, accumulate);
    else
      bias_grad_planes_kernel<int64_t><<<grid, threads, 0, s>>>(dst, dy, N, C, S, split.chunk, parts,
                                                                accumulate);
    ALEXNET_CUDA_CHECK_LAUNCH("bias_grad_planes_kernel");
  }
  if (parts > 1) {
    bias_grad_finish_kernel<<<blocks_for(C), kThreads, 0, s>>>(db, scratch, C, parts, accumulate);
    ALEXNET_CUDA_CHECK_LAUNCH("bias_grad_finish_kernel");
  }
}

}  // namespace alexnet::cuda
