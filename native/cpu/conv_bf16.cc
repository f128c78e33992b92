#include "conv_bf16.h"

#include <algorithm>
#include <cstring>

#include "../core/bf16.h"
#include "../core/parallel.h"
#include "bf16.h"
#include "conv.h"
#include "scratch.h"

namespace alexnet::cpu {

namespace {

// Elements (bfloat16 rows or float32 sums) per chunk of images: the chunk's buffers stay around
// 16-32 MB however large the batch.
constexpr int64_t kChunkElements = int64_t{8} << 20;
constexpr int64_t kCopyGrain = int64_t{1} << 14;

bool use_avx512() { return bf16_kernel() == Bf16Kernel::Avx512Bf16; }

int64_t images_per_chunk(const Conv2dParams& s, int64_t per_image) {
  return std::clamp<int64_t>(kChunkElements / std::max<int64_t>(per_image, 1), 1, std::max<int64_t>(s.N, 1));
}

uint16_t* bf16_scratch(Scratch slot, int64_t n) {
  return reinterpret_cast<uint16_t*>(scratch(slot, n / 2 + 1));
}

// dst[0, n) = src[0, n): one window row, 3 to 11 elements in AlexNet, where a call to memcpy
// costs more than the copy; the common widths compile to fixed-size moves.
inline void copy_window_row(uint16_t* dst, const uint16_t* src, int64_t n) {
  switch (n) {
    case 3: return std::memcpy(dst, src, 3 * sizeof(uint16_t)), void();
    case 5: return std::memcpy(dst, src, 5 * sizeof(uint16_t)), void();
    case 7: return std::memcpy(dst, src, 7 * sizeof(uint16_t)), void();
    case 11: return std::memcpy(dst, src, 11 * sizeof(uint16_t)), void();
    default: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(uint16_t));
  }
}

// rows[(n*Ho + oh)*Wo + ow][(c*kH + kh)*kW + kw] = x[n, c, oh*sH - pH + kh*dH, ow*sW - pW + kw*dW]
// (0 outside the input), for n in [0, nb).
void im2row(uint16_t* rows,        // [nb*Ho*Wo, C*kH*kW]
            const uint16_t* x,     // [nb, C, H, W]
            int64_t nb, const Conv2dParams& s) {
  const int64_t K = s.C * s.kH * s.kW;
  parallel_for(0, nb * s.Ho, std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(s.Wo * K, 1)),
               [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t n = t / s.Ho, oh = t % s.Ho;
      for (int64_t ow = 0; ow < s.Wo; ++ow) {
        uint16_t* row = rows + (t * s.Wo + ow) * K;
        const int64_t iw0 = ow * s.sW - s.pW;
        const bool inside = iw0 >= 0 && iw0 + (s.kW - 1) * s.dW < s.W;
        for (int64_t c = 0; c < s.C; ++c) {
          const uint16_t* plane = x + (n * s.C + c) * s.H * s.W;
          for (int64_t kh = 0; kh < s.kH; ++kh) {
            uint16_t* dst = row + (c * s.kH + kh) * s.kW;
            const int64_t ih = oh * s.sH - s.pH + kh * s.dH;
            if (ih < 0 || ih >= s.H) {
              std::memset(dst, 0, static_cast<size_t>(s.kW) * sizeof(uint16_t));
              continue;
            }
            const uint16_t* src = plane + ih * s.W;
            if (inside && s.dW == 1) {
              copy_window_row(dst, src + iw0, s.kW);
            } else {
              for (int64_t kw = 0; kw < s.kW; ++kw) {
                const int64_t iw = iw0 + kw * s.dW;
                dst[kw] = iw >= 0 && iw < s.W ? src[iw] : uint16_t{0};
              }
            }
          }
        }
      }
    }
  });
}

// col[(c*kH + kh)*kW + kw][n*Ho*Wo + oh*Wo + ow] = x[n, c, oh*sH - pH + kh*dH, ow*sW - pW + kw*dW]
// (0 outside the input), for n in [0, nb): im2col's layout (conv.h), in bfloat16.
void im2col_bf16(uint16_t* col,       // [C*kH*kW, nb*Ho*Wo]
                 const uint16_t* x,   // [nb, C, H, W]
                 int64_t nb, const Conv2dParams& s) {
  const int64_t K = s.C * s.kH * s.kW, P = s.Ho * s.Wo, ld = nb * P;
  parallel_for(0, K * nb, std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(P, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t r = t / nb, n = t % nb;
      const int64_t kw = r % s.kW, kh = (r / s.kW) % s.kH, c = r / (s.kW * s.kH);
      const uint16_t* plane = x + (n * s.C + c) * s.H * s.W;
      uint16_t* dst = col + r * ld + n * P;
      for (int64_t oh = 0; oh < s.Ho; ++oh) {
        const int64_t ih = oh * s.sH - s.pH + kh * s.dH;
        uint16_t* row = dst + oh * s.Wo;
        if (ih < 0 || ih >= s.H) {
          std::memset(row, 0, static_cast<size_t>(s.Wo) * sizeof(uint16_t));
          continue;
        }
        const uint16_t* src = plane + ih * s.W;
        for (int64_t ow = 0; ow < s.Wo; ++ow) {
          const int64_t iw = ow * s.sW - s.pW + kw * s.dW;
          row[ow] = iw >= 0 && iw < s.W ? src[iw] : uint16_t{0};
        }
      }
    }
  });
}

// dw [O, C/g*kH*kW] (+)= dy_g [Og, N*Ho*Wo] @ col_g^T through the dot-product GEMM (both operands
// contiguous along the positions), in chunks of images, each chunk's float32 sums added to dw.
void backward_filter_avx512(float* dw, const uint16_t* dy, const uint16_t* x, const Conv2dParams& s,
                            bool accumulate) {
  const int64_t G = s.groups, Og = s.O / G, Kg = (s.C / G) * s.kH * s.kW, K = s.C * s.kH * s.kW;
  const int64_t P = s.Ho * s.Wo;
  const int64_t nb_max = images_per_chunk(s, P * std::max(K, s.O));
  uint16_t* col = bf16_scratch(Scratch::Bf16Rows, nb_max * P * K);
  uint16_t* dyg = nb_max > 1 ? bf16_scratch(Scratch::Bf16Weights, nb_max * P * s.O) : nullptr;
  for (int64_t n0 = 0; n0 < s.N; n0 += nb_max) {
    const int64_t nb = std::min(nb_max, s.N - n0);
    const int64_t ld = nb * P;
    im2col_bf16(col, x + n0 * s.C * s.H * s.W, nb, s);
    // dy as [O, nb*P]: one image's dy already is; several are gathered.
    const uint16_t* dyb = dy + n0 * s.O * P;
    if (nb > 1) {
      parallel_for(0, nb * s.O, std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(P, 1)), [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) {
          const int64_t n = t / s.O, o = t % s.O;
          std::memcpy(dyg + o * ld + n * P, dy + ((n0 + n) * s.O + o) * P, static_cast<size_t>(P) * sizeof(uint16_t));
        }
      });
      dyb = dyg;
    }
    const bool add = accumulate || n0 > 0;
    for (int64_t g = 0; g < G; ++g)
      gemm_bf16_nt(dw + g * Og * Kg, Kg, dyb + g * Og * ld, ld, col + g * Kg * ld, ld, Og, Kg, ld, add);
  }
}

// db[o] (+)= sum over n and positions of dy[n, o, :], widened (exact) and summed in double.
void bias_grad(float* db, const uint16_t* dy, const Conv2dParams& s, bool accumulate) {
  const int64_t P = s.Ho * s.Wo;
  parallel_for(0, s.O, std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(s.N * P, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      double acc = 0;
      for (int64_t n = 0; n < s.N; ++n) {
        const uint16_t* p = dy + (n * s.O + o) * P;
        float part = 0.f;
        for (int64_t i = 0; i < P; ++i) part += bf16::to_float(p[i]);
        acc += part;
      }
      db[o] = accumulate ? db[o] + static_cast<float>(acc) : static_cast<float>(acc);
    }
  });
}

void forward_avx512(float* y_f32, uint16_t* y_bf16, const uint16_t* x, const uint16_t* w, const float* bias,
                    const Conv2dParams& s, bool relu) {
  const int64_t G = s.groups, Og = s.O / G, Kg = (s.C / G) * s.kH * s.kW, K = s.C * s.kH * s.kW;
  const int64_t P = s.Ho * s.Wo;
  const int64_t nb_max = images_per_chunk(s, P * std::max(K, s.O));
  uint16_t* rows = bf16_scratch(Scratch::Bf16Rows, nb_max * P * K);
  float* sums = y_f32 != nullptr ? nullptr : scratch(Scratch::Bf16Sums, nb_max * P * s.O);
  for (int64_t n0 = 0; n0 < s.N; n0 += nb_max) {
    const int64_t nb = std::min(nb_max, s.N - n0);
    im2row(rows, x + n0 * s.C * s.H * s.W, nb, s);
    // y[n] [O, P]: group g's rows [g*Og, (g+1)*Og) = W_g @ rows[n][:, g*Kg..]^T, straight into
    // the output's layout (float32 y itself, or the float32 sums of a bfloat16 y)
    float* out = y_f32 != nullptr ? y_f32 + n0 * s.O * P : sums;
    for (int64_t n = 0; n < nb; ++n)
      for (int64_t g = 0; g < G; ++g)
        gemm_bf16_nt(out + (n * s.O + g * Og) * P, P, w + g * Og * Kg, Kg, rows + n * P * K + g * Kg, K, Og, P, Kg);
    // + bias, ReLU (keeps NaN, as the float32 path), in place, then rounded once for bfloat16
    if (bias != nullptr || relu) {
      parallel_for(0, nb * s.O, std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(P, 1)), [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) {
          float* row = out + t * P;
          const float b = bias != nullptr ? bias[t % s.O] : 0.f;
          if (relu)
            for (int64_t p = 0; p < P; ++p) {
              const float v = row[p] + b;
              row[p] = v <= 0.f ? 0.f : v;
            }
          else
            for (int64_t p = 0; p < P; ++p) row[p] += b;
        }
      });
    }
    if (y_f32 == nullptr) float_to_bf16(y_bf16 + n0 * s.O * P, sums, nb * s.O * P);
  }
}

void backward_data_avx512(uint16_t* dx, const uint16_t* dy, const uint16_t* w, const Conv2dParams& s) {
  const int64_t G = s.groups, Og = s.O / G, Kg = (s.C / G) * s.kH * s.kW;
  const int64_t P = s.Ho * s.Wo, CHW = s.C * s.H * s.W;
  const int64_t nb_max = images_per_chunk(s, std::max(P * std::max(Kg * G, s.O), CHW));
  uint16_t* dyt = bf16_scratch(Scratch::Bf16Rows, nb_max * P * s.O);
  float* dcol = scratch(Scratch::Bf16Sums, nb_max * P * Kg * G);
  float* dxf = scratch(Scratch::Bf16Grad, nb_max * CHW);
  // W_g^T [Kg, Og] per group, contiguous along the reduction (o) as gemm_bf16_nt wants
  uint16_t* wt = bf16_scratch(Scratch::Bf16Weights, s.O * Kg);
  parallel_for(0, G * Kg, std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(Og, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t g = t / Kg, k = t % Kg;
      for (int64_t o = 0; o < Og; ++o) wt[t * Og + o] = w[(g * Og + o) * Kg + k];
    }
  });
  for (int64_t n0 = 0; n0 < s.N; n0 += nb_max) {
    const int64_t nb = std::min(nb_max, s.N - n0);
    const int64_t ld = nb * P;
    // dyt [nb*P, O] = dy [nb, O, P] transposed per image
    parallel_for(0, ld, std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(s.O, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t n = t / P, p = t % P;
        const uint16_t* src = dy + (n0 + n) * s.O * P + p;
        uint16_t* dst = dyt + t * s.O;
        for (int64_t o = 0; o < s.O; ++o) dst[o] = src[o * P];
      }
    });
    // dcol [C*kH*kW, nb*P] (im2col's layout): group g's rows = W_g^T @ dy_g, i.e.
    // (rows of W_g^T) . (rows of dyt's group-g columns), both contiguous along o
    for (int64_t g = 0; g < G; ++g)
      gemm_bf16_nt(dcol + g * Kg * ld, ld, wt + g * Kg * Og, Og, dyt + g * Og, s.O, Kg, ld, Og);
    // folded back onto the input planes in float32 (conv.h's col2im), then rounded once
    col2im(dxf, dcol, nb, s);
    float_to_bf16(dx + n0 * CHW, dxf, nb * CHW);
  }
}

}  // namespace

void conv2d_forward_bf16(float* y_f32, uint16_t* y_bf16, const uint16_t* x, const uint16_t* w, const float* bias,
                         const Conv2dParams& s, bool relu) {
  if (s.N == 0 || s.O == 0) return;  // y is empty
  if (use_avx512()) return forward_avx512(y_f32, y_bf16, x, w, bias, s, relu);
  // Portable: widened to float32 (exact), the float32 convolution without Winograd, one rounding.
  const int64_t xn = s.N * s.C * s.H * s.W, wn = s.O * (s.C / s.groups) * s.kH * s.kW;
  const int64_t yn = s.N * s.O * s.Ho * s.Wo;
  float* xf = scratch(Scratch::Bf16Input, xn);
  float* wf = scratch(Scratch::Bf16Weights, wn);
  bf16_to_float(xf, x, xn);
  bf16_to_float(wf, w, wn);
  float* y = y_f32 != nullptr ? y_f32 : scratch(Scratch::Bf16Output, yn);
  conv2d_forward(y, xf, wf, bias, s, relu, /*wt=*/nullptr, /*winograd=*/false);
  if (y_bf16 != nullptr) float_to_bf16(y_bf16, y, yn);
}

void conv2d_backward_bf16(uint16_t* dx, float* dw, float* db, const uint16_t* dy, const uint16_t* x,
                          const uint16_t* w, const Conv2dParams& s, bool accumulate) {
  const int64_t xn = s.N * s.C * s.H * s.W, wn = s.O * (s.C / s.groups) * s.kH * s.kW;
  const int64_t yn = s.N * s.O * s.Ho * s.Wo;
  if (s.N == 0) {
    if (!accumulate) {  // empty sums
      std::memset(dw, 0, static_cast<size_t>(wn) * sizeof(float));
      if (db != nullptr) std::memset(db, 0, static_cast<size_t>(s.O) * sizeof(float));
    }
    return;
  }
  if (use_avx512()) {
    // dw: float32 sums of exact products straight from the bfloat16 operands; db likewise.
    backward_filter_avx512(dw, dy, x, s, accumulate);
    if (db != nullptr) bias_grad(db, dy, s, accumulate);
    if (dx != nullptr) backward_data_avx512(dx, dy, w, s);
    return;
  }
  // Portable: dy and x widened (exact), the float32 gradients without Winograd.
  float* dyf = scratch(Scratch::Bf16Output, yn);
  float* xf = scratch(Scratch::Bf16Input, xn);
  bf16_to_float(dyf, dy, yn);
  bf16_to_float(xf, x, xn);
  if (dx == nullptr) {
    conv2d_backward(nullptr, dw, db, dyf, xf, nullptr, s, accumulate, nullptr, /*winograd=*/false);
    return;
  }
  // Portable dx: the float32 input gradient of the widened operands, rounded once.
  float* wf = scratch(Scratch::Bf16Weights, wn);
  float* dxf = scratch(Scratch::Bf16Grad, xn);
  bf16_to_float(wf, w, wn);
  conv2d_backward(dxf, dw, db, dyf, xf, wf, s, accumulate, nullptr, /*winograd=*/false);
  float_to_bf16(dx, dxf, xn);
}

}  // namespace alexnet::cpu
