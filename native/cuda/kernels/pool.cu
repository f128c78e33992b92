// Max pooling on bfloat16 tensors (the float32 form is cuDNN's, native/cuda/dnn.cc), with the
// CPU's rules (native/cpu/pool.cc): PyTorch's MaxPool2d windows (implicit -inf padding), the
// first maximum in row-major window order, a NaN wins. Forward: one thread per output, exact.
// Backward: one thread per input element, which gathers dy from every window holding it whose
// arg-max it is (recomputed from x), summed in float32 in window order and rounded once; no
// atomics, so the result is the same every run.
#include "../../core/bf16.h"
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

// The arg-max (plane index) of window (oh, ow) of `plane`, -1 for an empty window.
__device__ int64_t window_argmax_bf16(const uint16_t* __restrict__ plane, int64_t oh, int64_t ow,
                                      const Pool2dParams& s) {
  const int64_t h0 = oh * s.sH - s.pH, w0 = ow * s.sW - s.pW;
  const int64_t hs = h0 > 0 ? h0 : 0, he = h0 + s.kH < s.H ? h0 + s.kH : s.H;
  const int64_t ws = w0 > 0 ? w0 : 0, we = w0 + s.kW < s.W ? w0 + s.kW : s.W;
  int64_t best = -1;
  float m = 0.f;
  for (int64_t h = hs; h < he; ++h)
    for (int64_t w = ws; w < we; ++w) {
      const float v = bf16::to_float(plane[h * s.W + w]);
      if (best < 0 || v > m || (v != v && m == m)) {
        m = v;
        best = h * s.W + w;
      }
    }
  return best;
}

__global__ void max_pool2d_forward_bf16_kernel(uint16_t* __restrict__ y, const uint16_t* __restrict__ x,
                                               Pool2dParams s) {
  const int64_t HoWo = s.Ho * s.Wo;
  GRID_STRIDE(i, s.N * s.C * HoWo) {
    const int64_t p = i / HoWo, r = i - p * HoWo, oh = r / s.Wo, ow = r - oh * s.Wo;
    const uint16_t* plane = x + p * s.H * s.W;
    const int64_t a = window_argmax_bf16(plane, oh, ow, s);
    // through float32 and back, as the CPU does: exact, a NaN comes back quiet
    y[i] = a < 0 ? bf16::from_float(-INFINITY) : bf16::from_float(bf16::to_float(plane[a]));
  }
}

__global__ void max_pool2d_backward_bf16_kernel(uint16_t* __restrict__ dx, const uint16_t* __restrict__ dy,
                                                const uint16_t* __restrict__ x, Pool2dParams s) {
  const int64_t HW = s.H * s.W;
  GRID_STRIDE(i, s.N * s.C * HW) {
    const int64_t p = i / HW, r = i - p * HW, h = r / s.W, w = r - h * s.W;
    const uint16_t* plane = x + p * HW;
    const uint16_t* g = dy + p * s.Ho * s.Wo;
    // windows oh with oh*sH - pH <= h < oh*sH - pH + kH (likewise ow)
    const int64_t oh_lo = (h + s.pH - s.kH + 1 + s.sH - 1) >= 0 ? (h + s.pH - s.kH + 1 + s.sH - 1) / s.sH : 0;
    const int64_t oh_hi = (h + s.pH) / s.sH < s.Ho - 1 ? (h + s.pH) / s.sH : s.Ho - 1;
    const int64_t ow_lo = (w + s.pW - s.kW + 1 + s.sW - 1) >= 0 ? (w + s.pW - s.kW + 1 + s.sW - 1) / s.sW : 0;
    const int64_t ow_hi = (w + s.pW) / s.sW < s.Wo - 1 ? (w + s.pW) / s.sW : s.Wo - 1;
    float sum = 0.f;
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh)
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow)
        if (window_argmax_bf16(plane, oh, ow, s) == r) sum += bf16::to_float(g[oh * s.Wo + ow]);
    dx[i] = bf16::from_float(sum);
  }
}

}  // namespace

void max_pool2d_forward_bf16(int device, uint16_t* y, const uint16_t* x, const Pool2dParams& p) {
  const int64_t n = p.N * p.C * p.Ho * p.Wo;
  if (n == 0) return;
  max_pool2d_forward_bf16_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(y, x, p);
  ALEXNET_CUDA_CHECK_LAUNCH("max_pool2d_forward_bf16_kernel");
}

void max_pool2d_backward_bf16(int device, uint16_t* dx, const uint16_t* dy, const uint16_t* x, const Pool2dParams& p) {
  const int64_t n = p.N * p.C * p.H * p.W;
  if (n == 0) return;
  max_pool2d_backward_bf16_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(dx, dy, x, p);
  ALEXNET_CUDA_CHECK_LAUNCH("max_pool2d_backward_bf16_kernel");
}

}  // namespace alexnet::cuda
