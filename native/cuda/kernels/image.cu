// 8-bit images to normalised float32 on the GPU: the batch crosses the bus as bytes (a quarter
// of the float32 size) and is normalised here, with the CPU's lookup table (identical floats).
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

// grid.y: one (image, channel) plane; grid.x strides over the plane's HW pixels. The plane's
// 256-entry row of the table is staged in shared memory.
__global__ void normalize_images_kernel(float* __restrict__ y, const uint8_t* __restrict__ x, int C,
                                        int HW, PixelLut lut) {
  __shared__ float table[256];
  const int plane = blockIdx.y;
  const int c = plane % C;
  for (int v = threadIdx.x; v < 256; v += blockDim.x) table[v] = lut.v[c][v];
  __syncthreads();
  const uint8_t* in = x + static_cast<int64_t>(plane) * HW;
  float* out = y + static_cast<int64_t>(plane) * HW;
  // 64-bit positions: HW may be up to 2^31 - 1, and an int p + 64 * 256 past INT_MAX would wrap negative
  GRID_STRIDE(p, HW) out[p] = table[in[p]];
}

}  // namespace

void normalize_images(int device, float* y, const uint8_t* x, int64_t N, int64_t C, int64_t HW,
                      const PixelLut& lut) {
  if (N == 0 || C == 0 || HW == 0) return;
  const int64_t planes = N * C;
  const int64_t per_plane = std::min<int64_t>((HW + kThreads - 1) / kThreads, 64);
  // grid.y is limited to 65535 planes per launch: launch in chunks of planes (C divides the chunk,
  // so the channel of a plane is still plane % C).
  const int64_t chunk = 65535 / C * C;
  for (int64_t first = 0; first < planes; first += chunk) {
    const int64_t count = std::min(chunk, planes - first);
    dim3 grid(static_cast<unsigned>(per_plane), static_cast<unsigned>(count));
    normalize_images_kernel<<<grid, kThreads, 0, stream_of(device)>>>(y + first * HW, x + first * HW,
                                                                       static_cast<int>(C), static_cast<int>(HW), lut);
    ALEXNET_CUDA_CHECK_LAUNCH("normalize_images_kernel");
  }
}

}  // namespace alexnet::cuda
