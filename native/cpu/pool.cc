#include "pool.h"

#include <algorithm>
#include <vector>
#include <cmath>
#include <cstring>

#include "../core/bf16.h"
#include "../core/parallel.h"
#include "simd.h"

#if ALEXNET_SIMD_X86
#include <immintrin.h>
// avx512f alone, not simd.h's ALEXNET_TARGET_AVX512: that one also sets the tuning, and GCC
// inlines nothing (std::min included) across a change of tuning.
#define ALEXNET_POOL_AVX512 __attribute__((target("avx512f")))
#endif

namespace alexnet::cpu {

namespace {

constexpr int64_t kGrainElements = int64_t{1} << 14;

// Index (into the plane) of the window's maximum: the first in row-major order, NaN wins
// (like PyTorch); -1 for an empty window (cannot happen with padding <= kernel / 2).
inline int64_t window_argmax(const float* plane, int64_t oh, int64_t ow, const Pool2dParams& s) {
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

int64_t plane_grain(const Pool2dParams& s) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(s.Ho * s.Wo * s.kH * s.kW, 1));
}

}  // namespace

// NaN-propagating max (PyTorch's rule: a NaN in the window makes the output NaN). Branch-free,
// so the loops below vectorise.
inline float nan_max(float m, float v) { return (v > m || v != v) ? v : m; }

namespace {

// Columns [lo, hi) of the output whose windows lie inside the row (ow*sW - pW >= 0 and
// ow*sW - pW + kW <= W): the range of the vectorised row passes and of row_argmax.
struct InteriorColumns {
  int64_t lo, hi;
  explicit InteriorColumns(const Pool2dParams& s)
      : lo(std::min<int64_t>((s.pW + s.sW - 1) / s.sW, s.Wo)),
        hi(std::max<int64_t>(lo, std::min<int64_t>(s.Wo, (s.W - s.kW + s.pW) / s.sW + 1))) {}
};

// The maximum over output column ow's window in one input row, its columns clipped to the row.
inline float window_row_max(const float* row, int64_t ow, const Pool2dParams& s) {
  const int64_t w0 = ow * s.sW - s.pW;
  const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + s.kW, s.W);
  float m = -INFINITY;
  for (int64_t w = ws; w < we; ++w) m = nan_max(m, row[w]);
  return m;
}

// The output columns outside [c.lo, c.hi): those whose windows reach into the padding.
inline void border_columns(float* r, const float* row, const InteriorColumns& c, const Pool2dParams& s) {
  for (int64_t ow = 0; ow < c.lo; ++ow) r[ow] = window_row_max(row, ow, s);
  for (int64_t ow = c.hi; ow < s.Wo; ++ow) r[ow] = window_row_max(row, ow, s);
}

}  // namespace

// The row pass of one input row: r[ow] = max over the window's columns. The output columns
// whose windows lie inside the row are done k by k over all of them at once, which compiles
// to branch-free (vectorised) selects; the few border columns take the bounded loop.
template <int K>  // K == s.kW
void row_pass_fixed(float* r, const float* row, const Pool2dParams& s) {
  const InteriorColumns c(s);
  const int64_t sw = s.sW;
  const float* base = row - s.pW;
  for (int64_t ow = c.lo; ow < c.hi; ++ow) r[ow] = base[ow * sw];
  for (int k = 1; k < K; ++k)
    for (int64_t ow = c.lo; ow < c.hi; ++ow) r[ow] = nan_max(r[ow], base[ow * sw + k]);
  border_columns(r, row, c, s);
}

void row_pass(float* r, const float* row, const Pool2dParams& s) {
  switch (s.kW) {
    case 2: return row_pass_fixed<2>(r, row, s);
    case 3: return row_pass_fixed<3>(r, row, s);
    default:
      for (int64_t ow = 0; ow < s.Wo; ++ow) r[ow] = window_row_max(row, ow, s);
  }
}

#if ALEXNET_SIMD_X86
// The AVX-512 row pass for AlexNet's windows (3 wide, stride 2), 16 output columns a step:
// two loads split into the even and odd columns (vpermt2ps), and the evens again from two
// columns on; then the same selects as nan_max, in the same order (w, w+1, w+2), so every
// result is the scalar pass's bit for bit (the first of equal values, the last NaN).
// Masked loads read only the window's columns, never past the row.
ALEXNET_POOL_AVX512 inline __m512 nan_max16(__m512 m, __m512 v) {
  const __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  return _mm512_mask_mov_ps(m, take, v);
}

ALEXNET_POOL_AVX512 void row_pass_k3s2_avx512(float* r,           // [Wo]
                                                const float* row,   // [W]
                                                const Pool2dParams& s) {
  const InteriorColumns c(s);
  const int64_t lo = c.lo, hi = c.hi;
  const float* base = row - s.pW;  // base[2 ow + k] is the window's column k (inside the row)
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t ow = lo; ow < hi; ow += 16) {
    const int64_t n = std::min<int64_t>(16, hi - ow);
    const float* p = base + 2 * ow;  // columns p[0 .. 2n] are read
    const __m512 a = _mm512_maskz_loadu_ps(first_lanes16(2 * n), p);
    const __m512 b = _mm512_maskz_loadu_ps(first_lanes16(2 * n - 16), p + 16);
    const __m512 c = _mm512_maskz_loadu_ps(first_lanes16(2 * n - 1), p + 2);
    const __m512 d = _mm512_maskz_loadu_ps(first_lanes16(2 * n - 17), p + 18);
    __m512 m = _mm512_permutex2var_ps(a, even, b);             // p[2i]
    m = nan_max16(m, _mm512_permutex2var_ps(a, odd, b));       // p[2i + 1]
    m = nan_max16(m, _mm512_permutex2var_ps(c, even, d));      // p[2i + 2]
    _mm512_mask_storeu_ps(r + ow, first_lanes16(n), m);
  }
  border_columns(r, row, c, s);
}

// The column pass in AVX-512: out[ow] = the rows' maxima folded in row order from -inf.
ALEXNET_POOL_AVX512 void column_pass_avx512(float* o, const float* rows, int64_t hs, int64_t he,
                                              int64_t Wo) {
  for (int64_t ow = 0; ow < Wo; ow += 16) {
    const __mmask16 k = first_lanes16(Wo - ow);
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (int64_t h = hs; h < he; ++h) m = nan_max16(m, _mm512_maskz_loadu_ps(k, rows + h * Wo + ow));
    _mm512_mask_storeu_ps(o + ow, k, m);
  }
}
#endif

// Forward is separable: a row pass takes the max over kW columns at each output column, then a
// column pass takes the max over kH of those rows. Both passes stream through memory; the
// windows' overlap (3x3 stride 2 reads most pixels twice) is not paid twice per pixel.
// Folding each row and then the rows keeps the row-major window order's result (the first of
// equal values, the last NaN), as the backward pass's arg-max does.
namespace {

// One plane: out [Ho, Wo] from plane [H, W], rows [H, Wo] scratch.
void forward_plane(float* out, const float* plane, float* rows, const Pool2dParams& s) {
#if ALEXNET_SIMD_X86
  if (simd_avx512()) {
    note_use(KernelUse::SimdAvx512);
    for (int64_t h = 0; h < s.H; ++h) {
      if (s.kW == 3 && s.sW == 2) row_pass_k3s2_avx512(rows + h * s.Wo, plane + h * s.W, s);
      else row_pass(rows + h * s.Wo, plane + h * s.W, s);
    }
    for (int64_t oh = 0; oh < s.Ho; ++oh) {
      const int64_t h0 = oh * s.sH - s.pH;
      column_pass_avx512(out + oh * s.Wo, rows, std::max<int64_t>(h0, 0), std::min(h0 + s.kH, s.H), s.Wo);
    }
    return;
  }
#endif
  for (int64_t h = 0; h < s.H; ++h) row_pass(rows + h * s.Wo, plane + h * s.W, s);
  for (int64_t oh = 0; oh < s.Ho; ++oh) {
    const int64_t h0 = oh * s.sH - s.pH;
    const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + s.kH, s.H);
    float* o = out + oh * s.Wo;
    for (int64_t ow = 0; ow < s.Wo; ++ow) o[ow] = -INFINITY;
    for (int64_t h = hs; h < he; ++h) {
      const float* r = rows + h * s.Wo;
      for (int64_t ow = 0; ow < s.Wo; ++ow) o[ow] = nan_max(o[ow], r[ow]);
    }
  }
}

}  // namespace

void max_pool2d_forward(float* y, const float* x, const Pool2dParams& s) {
  const int64_t HW = s.H * s.W, HoWo = s.Ho * s.Wo;
  parallel_for(0, s.N * s.C, plane_grain(s), [&](int64_t lo, int64_t hi) {
    std::vector<float> rows(static_cast<size_t>(s.H * s.Wo));  // [H, Wo] row-pass maxima
    for (int64_t p = lo; p < hi; ++p) forward_plane(y + p * HoWo, x + p * HW, rows.data(), s);
  });
}

// bfloat16: each plane widened to float32 (exact), pooled as above, and the maxima narrowed
// back; a maximum is one of the inputs, so narrowing is exact (a NaN comes back quiet).
void max_pool2d_forward_bf16(uint16_t* y, const uint16_t* x, const Pool2dParams& s) {
  const int64_t HW = s.H * s.W, HoWo = s.Ho * s.Wo;
  parallel_for(0, s.N * s.C, plane_grain(s), [&](int64_t lo, int64_t hi) {
    std::vector<float> rows(static_cast<size_t>(s.H * s.Wo)), in(static_cast<size_t>(HW)),
        out(static_cast<size_t>(HoWo));
    for (int64_t p = lo; p < hi; ++p) {
      const uint16_t* plane = x + p * HW;
      for (int64_t i = 0; i < HW; ++i) in[i] = bf16::to_float(plane[i]);
      forward_plane(out.data(), in.data(), rows.data(), s);
      uint16_t* o = y + p * HoWo;
      for (int64_t i = 0; i < HoWo; ++i) o[i] = bf16::from_float(out[i]);
    }
  });
}

namespace {

// The arg-max of every output window of row oh whose columns lie inside the input, as flat
// plane indices, for output columns [lo, hi): one branch-free pass per window position in
// row-major order (so ties keep the first, and a NaN wins unless one was already taken), which
// vectorises across output columns. Rows of the window outside the input are skipped.
ALEXNET_SIMD_BODY void row_argmax_body(int32_t* id,          // [Wo] (columns [lo, hi) written)
                                       float* m,             // [Wo] scratch: running maxima
                                       const float* plane,   // [H, W]
                                       int64_t oh, int64_t lo, int64_t hi, int64_t H, int64_t W,
                                       int64_t kH, int64_t kW, int64_t sH, int64_t sW, int64_t pH,
                                       int64_t pW) {
  const int64_t h0 = oh * sH - pH;
  const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + kH, H);
  bool first = true;
  for (int64_t h = hs; h < he; ++h)
    for (int64_t kw = 0; kw < kW; ++kw) {
      const int64_t off = h * W + kw - pW;  // plane index of column ow * sW + off
      const float* src = plane + off;
      if (first) {
        for (int64_t ow = lo; ow < hi; ++ow) {
          m[ow] = src[ow * sW];
          id[ow] = static_cast<int32_t>(off + ow * sW);
        }
        first = false;
        continue;
      }
      for (int64_t ow = lo; ow < hi; ++ow) {
        const float v = src[ow * sW], cur = m[ow];
        const bool take = (v > cur) | ((v != v) & (cur == cur));
        m[ow] = take ? v : cur;
        id[ow] = take ? static_cast<int32_t>(off + ow * sW) : id[ow];
      }
    }
}
ALEXNET_SIMD_DISPATCH(row_argmax,
                      (int32_t * id, float* m, const float* plane, int64_t oh, int64_t lo, int64_t hi, int64_t H,
                       int64_t W, int64_t kH, int64_t kW, int64_t sH, int64_t sW, int64_t pH, int64_t pW),
                      (id, m, plane, oh, lo, hi, H, W, kH, kW, sH, sW, pH, pW))

}  // namespace

namespace {

// One plane: d [H, W] (overwritten) from g [Ho, Wo] and plane [H, W]; id, m [Wo] scratch.
void backward_plane(float* d, const float* g, const float* plane, int32_t* id, float* m,
                    const InteriorColumns& c, bool small, const Pool2dParams& s) {
  const int64_t lo = c.lo, hi = c.hi;
  std::memset(d, 0, static_cast<size_t>(s.H * s.W) * sizeof(float));
  for (int64_t oh = 0; oh < s.Ho; ++oh) {
    const float* grow = g + oh * s.Wo;
    const int64_t h0 = oh * s.sH - s.pH;
    const bool fast = small && lo < hi && std::min(h0 + s.kH, s.H) > std::max<int64_t>(h0, 0);
    if (fast) {
      row_argmax(id, m, plane, oh, lo, hi, s.H, s.W, s.kH, s.kW, s.sH, s.sW, s.pH, s.pW);
      for (int64_t ow = lo; ow < hi; ++ow) d[id[ow]] += grow[ow];
    }
    for (int64_t ow = 0; ow < s.Wo; ++ow) {  // border columns (or all, off the fast path)
      if (fast && ow >= lo && ow < hi) continue;
      const int64_t i = window_argmax(plane, oh, ow, s);
      if (i >= 0) d[i] += grow[ow];
    }
  }
}

}  // namespace

// dx: zero, then each window's dy added at its arg-max. The windows inside the row take the
// vectorised row_argmax; the border ones (padding) the scalar window_argmax.
void max_pool2d_backward(float* dx, const float* dy, const float* x, const Pool2dParams& s) {
  const int64_t HW = s.H * s.W, HoWo = s.Ho * s.Wo;
  const InteriorColumns cols(s);
  const bool small = HW < (int64_t{1} << 31);  // plane indices fit int32
  parallel_for(0, s.N * s.C, plane_grain(s), [&](int64_t p0, int64_t p1) {
    std::vector<int32_t> id(static_cast<size_t>(s.Wo));
    std::vector<float> m(static_cast<size_t>(s.Wo));
    for (int64_t p = p0; p < p1; ++p)
      backward_plane(dx + p * HW, dy + p * HoWo, x + p * HW, id.data(), m.data(), cols, small, s);
  });
}

// bfloat16: x and dy widened per plane (exact), the same arg-max (the widened values compare as
// the bfloat16 ones do), the gradients routed and summed in float32, each input's sum rounded
// once to bfloat16.
void max_pool2d_backward_bf16(uint16_t* dx, const uint16_t* dy, const uint16_t* x, const Pool2dParams& s) {
  const int64_t HW = s.H * s.W, HoWo = s.Ho * s.Wo;
  const InteriorColumns cols(s);
  const bool small = HW < (int64_t{1} << 31);
  parallel_for(0, s.N * s.C, plane_grain(s), [&](int64_t p0, int64_t p1) {
    std::vector<int32_t> id(static_cast<size_t>(s.Wo));
    std::vector<float> m(static_cast<size_t>(s.Wo)), in(static_cast<size_t>(HW)),
        g(static_cast<size_t>(HoWo)), d(static_cast<size_t>(HW));
    for (int64_t p = p0; p < p1; ++p) {
      const uint16_t* xp = x + p * HW;
      const uint16_t* gp = dy + p * HoWo;
      for (int64_t i = 0; i < HW; ++i) in[i] = bf16::to_float(xp[i]);
      for (int64_t i = 0; i < HoWo; ++i) g[i] = bf16::to_float(gp[i]);
      backward_plane(d.data(), g.data(), in.data(), id.data(), m.data(), cols, small, s);
      uint16_t* dp = dx + p * HW;
      for (int64_t i = 0; i < HW; ++i) dp[i] = bf16::from_float(d[i]);
    }
  });
}

}  // namespace alexnet::cpu
