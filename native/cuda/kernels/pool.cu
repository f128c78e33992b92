// Max pooling on bfloat16 tensors, and on channels-last float32 ones (NCHW float32 is cuDNN's,
// native/cuda/dnn.cc), with the CPU's rules (native/cpu/pool.cc): PyTorch's MaxPool2d windows (implicit -inf padding), the
// first maximum in row-major window order, a NaN wins. Forward: one thread per output, exact.
// Backward: one thread per input element, which gathers dy from every window holding it whose
// arg-max it is (recomputed from x), summed in float32 in window order (and, bfloat16, rounded
// once); no atomics, so the result is the same every run. Against the CPU: forward bitwise; the
// backward's float32 sums agree to rounding (the CPU adds a row's border windows after its
// interior ones, so an input under 3 or more windows may sum in another order). Channels last (s.channels_last, decision 14):
// the same windows over [N, H, W, C]; a "plane" is then one (n, c) strided by C, and the
// threads of a warp take neighbouring channels, so their loads are coalesced.
#include "../../core/bf16.h"
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

// The element types go through float32 (load / store, common.cuh): exact both ways for a maximum.

// Element i of a tensor of N images with C channels of S positions, in NCHW order ([N, C, S])
// or channels last ([N, S, C]): its image n, channel c and position r in the channel's plane.
struct PlaneIndex {
  int64_t n, c, r;
};
__device__ inline PlaneIndex plane_index(int64_t i, int64_t C, int64_t S, bool channels_last) {
  if (channels_last) return {i / (S * C), i % C, (i / C) % S};
  const int64_t p = i / S;
  return {p / C, p % C, i - p * S};
}

// The first element of plane (n, c) of such a tensor; its positions lie C apart in channels
// last, 1 apart in NCHW.
template <typename T>
__device__ inline const T* plane_of(const T* t, int64_t n, int64_t c, int64_t C, int64_t S, bool channels_last) {
  return channels_last ? t + n * S * C + c : t + (n * C + c) * S;
}

// The arg-max (plane index h*W + w) of window (oh, ow) of `plane`, whose element (h, w) is
// plane[(h*W + w) * cs] (cs: 1 in NCHW, C in channels last), -1 for an empty window.
template <typename T>
__device__ int64_t window_argmax(const T* __restrict__ plane, int64_t cs, int64_t oh, int64_t ow,
                                 const Pool2dParams& s) {
  const int64_t h0 = oh * s.sH - s.pH, w0 = ow * s.sW - s.pW;
  const int64_t hs = h0 > 0 ? h0 : 0, he = h0 + s.kH < s.H ? h0 + s.kH : s.H;
  const int64_t ws = w0 > 0 ? w0 : 0, we = w0 + s.kW < s.W ? w0 + s.kW : s.W;
  int64_t best = -1;
  float m = 0.f;
  for (int64_t h = hs; h < he; ++h)
    for (int64_t w = ws; w < we; ++w) {
      const float v = load(plane[(h * s.W + w) * cs]);
      if (best < 0 || v > m || (v != v && m == m)) {
        m = v;
        best = h * s.W + w;
      }
    }
  return best;
}

template <typename T>
__global__ void max_pool2d_forward_kernel(T* __restrict__ y, const T* __restrict__ x, Pool2dParams s) {
  const int64_t HoWo = s.Ho * s.Wo;
  GRID_STRIDE(i, s.N * s.C * HoWo) {
    // output i is (n, c, oh, ow) in NCHW order, (n, oh, ow, c) in channels last
    const PlaneIndex o = plane_index(i, s.C, HoWo, s.channels_last);
    const int64_t oh = o.r / s.Wo, ow = o.r - oh * s.Wo;
    const int64_t cs = s.channels_last ? s.C : 1;
    const T* plane = plane_of(x, o.n, o.c, s.C, s.H * s.W, s.channels_last);
    const int64_t a = window_argmax(plane, cs, oh, ow, s);
    // through float32 and back, as the CPU does: exact, a bfloat16 NaN comes back quiet
    store(y + i, a < 0 ? -INFINITY : load(plane[a * cs]));
  }
}

template <typename T>
__global__ void max_pool2d_backward_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ x,
                                           Pool2dParams s) {
  const int64_t HW = s.H * s.W, HoWo = s.Ho * s.Wo;
  GRID_STRIDE(i, s.N * s.C * HW) {
    // input i is (n, c, h, w) in NCHW order, (n, h, w, c) in channels last
    const PlaneIndex e = plane_index(i, s.C, HW, s.channels_last);
    const int64_t r = e.r, h = r / s.W, w = r - h * s.W;
    const int64_t cs = s.channels_last ? s.C : 1;  // stride between neighbouring (h, w) of one channel
    const T* plane = plane_of(x, e.n, e.c, s.C, HW, s.channels_last);
    const T* g = plane_of(dy, e.n, e.c, s.C, HoWo, s.channels_last);
    // windows oh with oh*sH - pH <= h < oh*sH - pH + kH (likewise ow)
    const int64_t oh_lo = (h + s.pH - s.kH + 1 + s.sH - 1) >= 0 ? (h + s.pH - s.kH + 1 + s.sH - 1) / s.sH : 0;
    const int64_t oh_hi = (h + s.pH) / s.sH < s.Ho - 1 ? (h + s.pH) / s.sH : s.Ho - 1;
    const int64_t ow_lo = (w + s.pW - s.kW + 1 + s.sW - 1) >= 0 ? (w + s.pW - s.kW + 1 + s.sW - 1) / s.sW : 0;
    const int64_t ow_hi = (w + s.pW) / s.sW < s.Wo - 1 ? (w + s.pW) / s.sW : s.Wo - 1;
    float sum = 0.f;
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh)
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow)
        if (window_argmax(plane, cs, oh, ow, s) == r) sum += load(g[(oh * s.Wo + ow) * cs]);
    store(dx + i, sum);
  }
}

template <typename T>
void pool_forward(int device, T* y, const T* x, const Pool2dParams& p, const char* name) {
  const int64_t n = p.N * p.C * p.Ho * p.Wo;
  if (n == 0) return;
  max_pool2d_forward_kernel<T><<<blocks_for(n), kThreads, 0, stream_of(device)>>>(y, x, p);
  ALEXNET_CUDA_CHECK_LAUNCH(name);
}

template <typename T>
void pool_backward(int device, T* dx, const T* dy, const T* x, const Pool2dParams& p, const char* name) {
  const int64_t n = p.N * p.C * p.H * p.W;
  if (n == 0) return;
  max_pool2d_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream_of(device)>>>(dx, dy, x, p);
  ALEXNET_CUDA_CHECK_LAUNCH(name);
}

}  // namespace

void max_pool2d_forward_bf16(int device, uint16_t* y, const uint16_t* x, const Pool2dParams& p) {
  pool_forward(device, y, x, p, "max_pool2d_forward_kernel<bfloat16>");
}

void max_pool2d_backward_bf16(int device, uint16_t* dx, const uint16_t* dy, const uint16_t* x, const Pool2dParams& p) {
  pool_backward(device, dx, dy, x, p, "max_pool2d_backward_kernel<bfloat16>");
}

void max_pool2d_forward_f32(int device, float* y, const float* x, const Pool2dParams& p) {
  pool_forward(device, y, x, p, "max_pool2d_forward_kernel<float>");
}

void max_pool2d_backward_f32(int device, float* dx, const float* dy, const float* x, const Pool2dParams& p) {
  pool_backward(device, dx, dy, x, p, "max_pool2d_backward_kernel<float>");
}

}  // namespace alexnet::cuda
