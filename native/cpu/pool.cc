#include "pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/parallel.h"

namespace alexnet::cpu {

namespace {

constexpr int64_t kGrainElements = int64_t{1} << 14;

// Index (into the plane) of the window's maximum: the first in row-major order, NaN wins
// (like PyTorch); -1 for an empty window (cannot happen with padding <= kernel / 2).
inline int64_t window_argmax(const float* plane, int64_t oh, int64_t ow, const Pool2dShape& s) {
  const int64_t h0 = oh * s.sH - s.pH, w0 = ow * s.sW - s.pW;
  const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + s.kH, s.H);
  const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + s.kW, s.W);
  int64_t best = -1;
  float m = 0.f;
  for (int64_t h = hs; h < he; ++h) {
    const float* row = plane + h * s.W;
    for (int64_t w = ws; w < we; ++w) {
      const float v = row[w];
      if (best < 0 || v > m || (std::isnan(v) && !std::isnan(m))) {
        m = v;
        best = h * s.W + w;
      }
    }
  }
  return best;
}

int64_t plane_grain(const Pool2dShape& s) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(s.Ho * s.Wo * s.kH * s.kW, 1));
}

}  // namespace

int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad) {
  const int64_t span = in + 2 * pad - k;
  if (span < 0) return 0;
  return span / stride + 1;
}

void max_pool2d_forward(float* y, const float* x, const Pool2dShape& s) {
  const int64_t HW = s.H * s.W, HoWo = s.Ho * s.Wo;
  parallel_for(0, s.N * s.C, plane_grain(s), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const float* plane = x + p * HW;
      float* out = y + p * HoWo;
      for (int64_t oh = 0; oh < s.Ho; ++oh)
        for (int64_t ow = 0; ow < s.Wo; ++ow) {
          const int64_t i = window_argmax(plane, oh, ow, s);
          out[oh * s.Wo + ow] = i >= 0 ? plane[i] : -INFINITY;
        }
    }
  });
}

void max_pool2d_backward(float* dx, const float* dy, const float* x, const Pool2dShape& s) {
  const int64_t HW = s.H * s.W, HoWo = s.Ho * s.Wo;
  parallel_for(0, s.N * s.C, plane_grain(s), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const float* plane = x + p * HW;
      const float* g = dy + p * HoWo;
      float* d = dx + p * HW;
      std::memset(d, 0, static_cast<size_t>(HW) * sizeof(float));
      for (int64_t oh = 0; oh < s.Ho; ++oh)
        for (int64_t ow = 0; ow < s.Wo; ++ow) {
          const int64_t i = window_argmax(plane, oh, ow, s);
          if (i >= 0) d[i] += g[oh * s.Wo + ow];
        }
    }
  });
}

}  // namespace alexnet::cpu
