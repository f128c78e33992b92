#include "conv.h"

#include <algorithm>
#include <cstring>

#include "../core/parallel.h"
#include "conv_direct.h"
#include "conv_winograd.h"
#include "gemm.h"
#include "scratch.h"

namespace alexnet::cpu {

namespace {

// Column-buffer budget per chunk of images, in floats (16M floats = 64 MB by default).
#ifndef ALEXNET_CONV_COL_BUDGET_MB
#define ALEXNET_CONV_COL_BUDGET_MB 64
#endif
constexpr int64_t kColBudget = (int64_t{ALEXNET_CONV_COL_BUDGET_MB} << 20) / 4;
// Outputs with at least this many positions per image get one GEMM per image, written in place.
#ifndef ALEXNET_CONV_DIRECT_HOWO
#define ALEXNET_CONV_DIRECT_HOWO 2048
#endif
constexpr int64_t kDirectHoWo = ALEXNET_CONV_DIRECT_HOWO;
// Aim for at least this many elements of copying per parallel chunk.
constexpr int64_t kCopyGrain = int64_t{1} << 14;

// 'auto' leaves stride-1 layers with few output positions in all (a batch of one or two at
// AlexNet's 13x13) to im2col + GEMM: the direct kernel packs the weights on every call and splits
// its work over images and rows, too little work to spread over the threads, while one GEMM of
// [O, C*kH*kW] x [C*kH*kW, N*Ho*Wo] keeps every core busy. Measured on the 2-core AMD EPYC build
// machine (AVX-512, OpenBLAS; alternating rounds in bench/cpu.mjs --paths, the machine shared),
// im2col's time over the direct kernel's, forward / both gradients:
//   batch   conv3        conv4        conv5
//   1       0.79 / 0.84  0.42 / 0.58  0.44 / 0.58
//   2       0.61 / 0.61  0.57 / 0.59  0.94 / 0.90
//   4       1.06 / 0.80  1.61 / 0.93  1.04 / 1.00
// so up to 512 positions (batch 3 at 13x13). Winograd, where 'auto' picks it, comes first; an
// explicit 'direct' keeps the direct kernel.
#ifndef ALEXNET_CONV_GEMM_MAX_POSITIONS
#define ALEXNET_CONV_GEMM_MAX_POSITIONS 512
#endif
//
// With the weight cache (setWeightCache, on by default) the forward pass no longer packs: the
// packed blocks stay with the weight until it changes. Then the direct kernel wins at a batch
// of one as well (bench/infer-paths.mjs --batch 1, alternating, the machine shared: conv3-5
// forward 1.9 / 4.4 / 2.0 ms direct against 3.9 / 5.8 / 2.9 ms im2col), so 'auto' keeps the
// direct kernel whenever the forward pass's packed weights come from the cache. (On AVX-512
// Winograd's own small-batch kernel comes before both there: conv_winograd.cc.)
bool auto_prefers_gemm(const Conv2dParams& s, bool packed_cached = false) {
  return !packed_cached && conv_algo() == ConvAlgo::Auto && gemm_backend() == GemmBackend::Blas &&
         s.sH == 1 && s.sW == 1 && s.N * s.Ho * s.Wo <= ALEXNET_CONV_GEMM_MAX_POSITIONS;
}

// Images per chunk: as many as fit the column budget, but enough that the GEMM's N dimension
// (nb*Ho*Wo) stays large enough to run at full speed (conv3-5 have only 13x13 outputs).
#ifndef ALEXNET_CONV_MIN_GEMM_N
#define ALEXNET_CONV_MIN_GEMM_N 2048
#endif
int64_t images_per_chunk(const Conv2dParams& s) {
  const int64_t HoWo = std::max<int64_t>(s.Ho * s.Wo, 1);
  const int64_t per_image = s.C * s.kH * s.kW * HoWo;
  const int64_t by_budget = kColBudget / std::max<int64_t>(per_image, 1);
  const int64_t by_gemm = std::min((ALEXNET_CONV_MIN_GEMM_N + HoWo - 1) / HoWo,
                                   4 * kColBudget / std::max<int64_t>(per_image, 1));
  return std::clamp<int64_t>(std::max(by_budget, by_gemm), 1, std::max<int64_t>(s.N, 1));
}

// The output columns ow whose input column ow*sW + off lies in [0, W): [lo, hi).
inline void valid_cols(const Conv2dParams& s, int64_t off, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s.sW - 1) / s.sW;
  hi = (s.W - 1 - off) >= 0 ? std::min(s.Wo, (s.W - 1 - off) / s.sW + 1) : 0;
  lo = std::min(lo, s.Wo);
  hi = std::max(hi, lo);
}

// dst[i] = src[i * S] (a constant stride lets the compiler unroll the gather).
template <int64_t S>
inline void gather(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i * S];
}

// The output rows oh whose input row oh*sH - pH + kh*dH lies in [0, H): [lo, hi).
inline void valid_rows(const Conv2dParams& s, int64_t kh, int64_t& lo, int64_t& hi) {
  const int64_t off = kh * s.dH - s.pH;
  lo = off >= 0 ? 0 : (-off + s.sH - 1) / s.sH;
  hi = (s.H - 1 - off) >= 0 ? std::min(s.Ho, (s.H - 1 - off) / s.sH + 1) : 0;
  lo = std::min(lo, s.Ho);
  hi = std::max(hi, lo);
}

// One row of col for one image: dst[oh*Wo + ow] = plane[oh*sH - pH + kh*dH][ow*sW - pW + kw*dW].
void unfold_row(float* dst,          // [Ho*Wo]
                const float* plane,  // [H, W]
                int64_t kh, int64_t kw, const Conv2dParams& s) {
  const int64_t off = kw * s.dW - s.pW;
  int64_t lo, hi, rlo, rhi;
  valid_cols(s, off, lo, hi);
  valid_rows(s, kh, rlo, rhi);
  const size_t row_bytes = static_cast<size_t>(s.Wo) * sizeof(float);
  std::memset(dst, 0, static_cast<size_t>(rlo) * row_bytes);
  std::memset(dst + rhi * s.Wo, 0, static_cast<size_t>(s.Ho - rhi) * row_bytes);
  if (rlo == rhi) return;
  const int64_t ih0 = rlo * s.sH - s.pH + kh * s.dH;
  if (s.sW == 1 && s.sH * s.W == s.Wo) {
    // Source rows are exactly Wo apart, like the destination rows ("same" convolutions): one
    // copy from the first valid element to the last, then zero the edge columns it overran.
    if (lo < hi) {
      std::memcpy(dst + rlo * s.Wo + lo, plane + ih0 * s.W + off + lo,
                  static_cast<size_t>((rhi - 1 - rlo) * s.Wo + hi - lo) * sizeof(float));
    }
    if (lo > 0 || hi < s.Wo) {
      for (int64_t oh = rlo; oh < rhi; ++oh) {
        float* row = dst + oh * s.Wo;
        for (int64_t ow = 0; ow < lo; ++ow) row[ow] = 0.f;
        for (int64_t ow = std::max(hi, lo); ow < s.Wo; ++ow) row[ow] = 0.f;
      }
    }
    return;
  }
  for (int64_t oh = rlo; oh < rhi; ++oh) {
    float* row = dst + oh * s.Wo;
    const float* src = plane + (ih0 + (oh - rlo) * s.sH) * s.W + off;
    for (int64_t ow = 0; ow < lo; ++ow) row[ow] = 0.f;
    switch (s.sW) {
      case 1: gather<1>(row + lo, src + lo, hi - lo); break;
      case 2: gather<2>(row + lo, src + lo * 2, hi - lo); break;
      case 4: gather<4>(row + lo, src + lo * 4, hi - lo); break;
      default: {
        const int64_t sw = s.sW;
        for (int64_t ow = lo; ow < hi; ++ow) row[ow] = src[ow * sw];
      }
    }
    for (int64_t ow = hi; ow < s.Wo; ++ow) row[ow] = 0.f;
  }
}

// Adjoint of unfold_row: plane[...] += src[oh*Wo + ow].
void fold_row(float* plane,      // [H, W]
              const float* src,  // [Ho*Wo]
              int64_t kh, int64_t kw, const Conv2dParams& s) {
  const int64_t off = kw * s.dW - s.pW;
  int64_t lo, hi;
  valid_cols(s, off, lo, hi);
  for (int64_t oh = 0; oh < s.Ho; ++oh) {
    const int64_t ih = oh * s.sH - s.pH + kh * s.dH;
    if (ih < 0 || ih >= s.H) continue;
    float* dst = plane + ih * s.W + off;
    const float* row = src + oh * s.Wo;
    if (s.sW == 1) {
      for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += row[ow];
    } else {
      const int64_t sw = s.sW;
      for (int64_t ow = lo; ow < hi; ++ow) dst[ow * sw] += row[ow];
    }
  }
}

}  // namespace

void im2col(float* col, const float* x, int64_t nb, const Conv2dParams& s) {
  const int64_t K = s.C * s.kH * s.kW;
  const int64_t HoWo = s.Ho * s.Wo;
  const int64_t ld = nb * HoWo;
  const int64_t grain = std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(HoWo, 1));
  parallel_for(0, K * nb, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t r = t / nb, n = t % nb;  // consecutive t write consecutive memory
      const int64_t kw = r % s.kW, kh = (r / s.kW) % s.kH, c = r / (s.kW * s.kH);
      unfold_row(col + r * ld + n * HoWo, x + (n * s.C + c) * s.H * s.W, kh, kw, s);
    }
  });
}

void col2im(float* dx, const float* col, int64_t nb, const Conv2dParams& s) {
  const int64_t HoWo = s.Ho * s.Wo;
  const int64_t HW = s.H * s.W;
  const int64_t ld = nb * HoWo;
  const int64_t work = s.kH * s.kW * HoWo;
  const int64_t grain = std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(work, 1));
  // One task per input plane (n, c): every write to that plane comes from this task.
  parallel_for(0, nb * s.C, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t n = t / s.C, c = t % s.C;
      float* plane = dx + t * HW;
      std::memset(plane, 0, static_cast<size_t>(HW) * sizeof(float));
      for (int64_t kh = 0; kh < s.kH; ++kh)
        for (int64_t kw = 0; kw < s.kW; ++kw) {
          const int64_t r = (c * s.kH + kh) * s.kW + kw;
          fold_row(plane, col + r * ld + n * HoWo, kh, kw, s);
        }
    }
  });
}

void conv2d_forward(float* y, const float* x, const float* w, const float* bias,
                    const Conv2dParams& s, bool relu, const Tensor* wt, bool winograd) {
  const bool cached = wt != nullptr && derived_cache_enabled();
  if (winograd && conv_winograd_forward_selected(s, cached))
    return conv2d_forward_winograd(y, x, w, bias, s, relu, wt);
  if (conv_direct_supported(s) && !auto_prefers_gemm(s, cached))
    return conv2d_forward_direct(y, x, w, bias, s, relu, wt);
  const int64_t G = s.groups;
  const int64_t Og = s.O / G;
  const int64_t Kg = (s.C / G) * s.kH * s.kW;
  const int64_t HoWo = s.Ho * s.Wo;
  const int64_t nb_max = images_per_chunk(s);
  float* col = scratch(Scratch::Columns, s.C * s.kH * s.kW * nb_max * HoWo);
  float* ybuf =
      nb_max > 1 && HoWo < kDirectHoWo ? scratch(Scratch::Staging, s.O * nb_max * HoWo) : nullptr;

  for (int64_t n0 = 0; n0 < s.N; n0 += nb_max) {
    const int64_t nb = std::min(nb_max, s.N - n0);
    const int64_t ld = nb * HoWo;
    im2col(col, x + n0 * s.C * s.H * s.W, nb, s);
    // With large outputs (conv1, conv2) one GEMM per image writes straight into y ([O, HoWo]
    // is y's own per-image layout) and only the bias is added after; small outputs (13x13)
    // need the batched GEMM [O, nb*HoWo] and a scatter into [nb, O, HoWo].
    const bool in_place = nb == 1 || HoWo >= kDirectHoWo;
    if (in_place) {
      for (int64_t n = 0; n < nb; ++n)
        for (int64_t g = 0; g < G; ++g)
          sgemm(false, false, Og, HoWo, Kg, 1.f, w + g * Og * Kg, Kg, col + g * Kg * ld + n * HoWo,
                ld, 0.f, y + ((n0 + n) * s.O + g * Og) * HoWo, HoWo);
    } else {
      for (int64_t g = 0; g < G; ++g)
        sgemm(false, false, Og, ld, Kg, 1.f, w + g * Og * Kg, Kg, col + g * Kg * ld, ld, 0.f,
              ybuf + g * Og * ld, ld);
    }
    if (in_place && !bias && !relu) continue;
    // Bias add and ReLU (in place), or scatter [O, nb, HoWo] -> [nb, O, HoWo] fused with them.
    const int64_t grain = std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(HoWo, 1));
    parallel_for(0, nb * s.O, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t n = t / s.O, o = t % s.O;
        float* dst = y + ((n0 + n) * s.O + o) * HoWo;
        const float b = bias ? bias[o] : 0.f;
        const float* src = in_place ? dst : ybuf + o * ld + n * HoWo;
        if (relu) {
          // "v <= 0 ? 0 : v" keeps NaN (PyTorch's ReLU does), whatever max's operand order
          for (int64_t i = 0; i < HoWo; ++i) {
            const float v = src[i] + b;
            dst[i] = v <= 0.f ? 0.f : v;
          }
        } else {
          for (int64_t i = 0; i < HoWo; ++i) dst[i] = src[i] + b;
        }
      }
    });
  }
}

namespace {

// The im2col + GEMM backward pass, in chunks of images: dW (+)= dY col^T when dw is given (the
// columns of x are then unfolded), dx = col2im(W^T dY) when dx is given.
void gemm_backward(float* dx,          // [N, C, H, W] or nullptr
                   float* dw,          // [O, C/groups, kH, kW] or nullptr
                   const float* dy, const float* x, const float* w, const Conv2dParams& s,
                   bool accumulate) {
  const int64_t G = s.groups;
  const int64_t Og = s.O / G;
  const int64_t Kg = (s.C / G) * s.kH * s.kW;
  const int64_t HoWo = s.Ho * s.Wo;
  const int64_t grain = std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(HoWo, 1));
  const int64_t nb_max = images_per_chunk(s);
  float* col = scratch(Scratch::Columns, s.C * s.kH * s.kW * nb_max * HoWo);
  float* dybuf = nb_max > 1 ? scratch(Scratch::Staging, s.O * nb_max * HoWo) : nullptr;

  for (int64_t n0 = 0; n0 < s.N; n0 += nb_max) {
    const int64_t nb = std::min(nb_max, s.N - n0);
    const int64_t ld = nb * HoWo;
    if (dw) im2col(col, x + n0 * s.C * s.H * s.W, nb, s);
    // dY as [O, nb*HoWo]: with one image that is dy itself; else gather [nb, O] -> [O, nb].
    const float* dyb = dy + n0 * s.O * HoWo;
    if (nb > 1) {
      parallel_for(0, nb * s.O, grain, [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) {
          const int64_t n = t / s.O, o = t % s.O;
          std::memcpy(dybuf + o * ld + n * HoWo, dy + ((n0 + n) * s.O + o) * HoWo,
                      static_cast<size_t>(HoWo) * sizeof(float));
        }
      });
      dyb = dybuf;
    }
    const float beta = (n0 == 0 && !accumulate) ? 0.f : 1.f;
    if (dw)
      for (int64_t g = 0; g < G; ++g)
        sgemm(false, true, Og, Kg, ld, 1.f, dyb + g * Og * ld, ld, col + g * Kg * ld, ld, beta,
              dw + g * Og * Kg, Kg);
    if (dx) {
      // dcol overwrites col (no longer needed), then fold it back into dx.
      for (int64_t g = 0; g < G; ++g)
        sgemm(true, false, Kg, ld, Og, 1.f, w + g * Og * Kg, Kg, dyb + g * Og * ld, ld, 0.f,
              col + g * Kg * ld, ld);
      col2im(dx + n0 * s.C * s.H * s.W, col, nb, s);
    }
  }
}

}  // namespace

void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const Conv2dParams& s, bool accumulate, const Tensor* wt,
                     bool winograd) {
  const int64_t Kg = (s.C / s.groups) * s.kH * s.kW;
  const int64_t HoWo = s.Ho * s.Wo;

  // db[o] (+)= sum_{n, hw} dy[n, o, hw], accumulated in double.
  if (db) {
    parallel_for(0, s.O, std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(s.N * HoWo, 1)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t o = lo; o < hi; ++o) {
                     double acc = 0;
                     for (int64_t n = 0; n < s.N; ++n) {
                       const float* p = dy + (n * s.O + o) * HoWo;
                       float part = 0.f;
                       for (int64_t i = 0; i < HoWo; ++i) part += p[i];
                       acc += part;
                     }
                     db[o] = accumulate ? db[o] + static_cast<float>(acc) : static_cast<float>(acc);
                   }
                 });
  }
  if (s.N == 0) {
    if (!accumulate) std::memset(dw, 0, static_cast<size_t>(s.O * Kg) * sizeof(float));
    return;
  }

  // The direct kernel takes the input gradient of stride-1 layers (a convolution of dy with
  // the flipped, transposed weights) and the weight gradient of the shapes it covers; im2col +
  // GEMM does whatever is left. Winograd (conv_winograd.h), where selected, takes the input
  // gradient and the weight gradient before either.
  const bool dx_winograd = winograd && dx && conv_winograd_backward_data_selected(s);
  const bool dx_direct = dx && !dx_winograd && conv_direct_backward_data_supported(s) && !auto_prefers_gemm(s);
  const bool dw_winograd = winograd && dw && conv_winograd_weight_grad_selected(s);
  const bool dw_direct = !dw_winograd && conv_direct_weight_grad_supported(s);
  if (dw_winograd) conv2d_weight_grad_winograd(dw, dy, x, s, accumulate);
  if (dw_direct) conv2d_weight_grad_direct(dw, dy, x, s, accumulate);
  float* const dx_gemm = dx_direct || dx_winograd ? nullptr : dx;
  float* const dw_gemm = dw_direct || dw_winograd ? nullptr : dw;
  if (dx_gemm || dw_gemm) gemm_backward(dx_gemm, dw_gemm, dy, x, w, s, accumulate);
  if (dx_direct) conv2d_backward_data_direct(dx, dy, w, s, wt);
  if (dx_winograd) conv2d_backward_data_winograd(dx, dy, w, s, wt);
}

}  // namespace alexnet::cpu
