#include "conv_direct.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <utility>

#include "../core/parallel.h"
#include "scratch.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 intrinsics build their results from _mm512_undefined_ps(), which trips
// -Wmaybe-uninitialized once inlined (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define ALEXNET_DIRECT_CONV 1
#define ALEXNET_AVX512 __attribute__((target("avx512f")))
#else
#define ALEXNET_DIRECT_CONV 0
#endif

namespace alexnet::cpu {

namespace {

std::atomic<ConvAlgo> g_algo{ConvAlgo::Auto};

constexpr int64_t kBlock = 32;  // output channels per tile (two 16-lane vectors)
constexpr int kMaxP = 14;       // output columns per tile: 2*14 accumulators + 2 weight vectors

// The shape the kernel sees: an input that needs no padding (the caller pads), stride S.
struct Plan {
  int64_t N, C, H, W;  // (padded) input [N, C, H, W]
  int64_t O, kH, kW, S;
  int64_t Ho, Wo;
};

// wp[ob][c][kh][kw][j] = w[ob*32 + j][c][kh][kw] (0 for ob*32 + j >= O). With `flip`, the
// backward-data weights instead: wp[cb][o][kh][kw][j] = w[o][cb*32 + j][kH-1-kh][kW-1-kw], i.e.
// the packing of w transposed in its first two axes and rotated by 180 degrees.
void pack_weights(float* wp, const float* w, int64_t O, int64_t C, int64_t kH, int64_t kW,
                  bool flip) {
  const int64_t out = flip ? C : O, in = flip ? O : C, KK = kH * kW;
  const int64_t OB = (out + kBlock - 1) / kBlock;
  parallel_for(0, OB * in, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t ob = t / in, c = t % in;
      float* dst = wp + t * KK * kBlock;
      for (int64_t k = 0; k < KK; ++k)
        for (int64_t j = 0; j < kBlock; ++j) {
          const int64_t o = ob * kBlock + j;
          float v = 0.f;
          if (o < out) v = flip ? w[(c * C + o) * KK + (KK - 1 - k)] : w[(o * C + c) * KK + k];
          dst[k * kBlock + j] = v;
        }
    }
  });
}

// xp[n][c] = x[n][c] surrounded by pH rows and pW columns of zeros.
void pad_input(float* xp, const float* x, int64_t N, int64_t C, int64_t H, int64_t W,
               int64_t pH, int64_t pW) {
  const int64_t Hp = H + 2 * pH, Wp = W + 2 * pW;
  parallel_for(0, N * C, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      float* dst = xp + t * Hp * Wp;
      const float* src = x + t * H * W;
      std::memset(dst, 0, static_cast<size_t>(pH * Wp) * sizeof(float));
      for (int64_t h = 0; h < H; ++h) {
        float* row = dst + (pH + h) * Wp;
        std::memset(row, 0, static_cast<size_t>(pW) * sizeof(float));
        std::memcpy(row + pW, src + h * W, static_cast<size_t>(W) * sizeof(float));
        std::memset(row + pW + W, 0, static_cast<size_t>(pW) * sizeof(float));
      }
      std::memset(dst + (pH + H) * Wp, 0, static_cast<size_t>(pH * Wp) * sizeof(float));
    }
  });
}

#if ALEXNET_DIRECT_CONV

// One tile of 32 output channels x P output columns, over input channels [0, C) of `in`:
// acc [P][32] is initialised from the bias (or 0) when `first`, else continued; when `last`,
// the tile is finished (ReLU if asked) and written to y[j][p] for j < nvalid, p < P.
template <int P, int S>
ALEXNET_AVX512 void tile(float* y,                 // [nvalid][ystride], P columns written
                         float* acc,               // [P][32] partial sums (64-byte aligned)
                         const float* in,          // [C][plane] starting at the tile's corner
                         const float* wp,          // [C][kH][kW][32]
                         const float* bias,        // [32] or nullptr
                         int64_t C, int64_t kH, int64_t kW, int64_t plane, int64_t rowlen,
                         int64_t ystride, int64_t nvalid, bool first, bool last, bool relu) {
  __m512 a[P], b[P];
  if (first) {
    const __m512 b0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
    for (int p = 0; p < P; ++p) {
      a[p] = b0;
      b[p] = b1;
    }
  } else {
    for (int p = 0; p < P; ++p) {
      a[p] = _mm512_load_ps(acc + p * kBlock);
      b[p] = _mm512_load_ps(acc + p * kBlock + 16);
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    const float* chan = in + c * plane;
    for (int64_t kh = 0; kh < kH; ++kh) {
      const float* r = chan + kh * rowlen;
      for (int64_t kw = 0; kw < kW; ++kw) {
        const __m512 w0 = _mm512_loadu_ps(wp);
        const __m512 w1 = _mm512_loadu_ps(wp + 16);
        wp += kBlock;
        // Opaque to the optimiser: otherwise, with S == 1, GCC carries the values shared by
        // neighbouring kw steps in spilled scalars instead of re-broadcasting from L1.
        const float* rk = r + kw;
        asm("" : "+r"(rk));
        for (int p = 0; p < P; ++p) {
          const __m512 v = _mm512_set1_ps(rk[p * S]);
          a[p] = _mm512_fmadd_ps(v, w0, a[p]);
          b[p] = _mm512_fmadd_ps(v, w1, b[p]);
        }
      }
    }
  }
  if (last && relu) {
    const __m512 zero = _mm512_setzero_ps();
    for (int p = 0; p < P; ++p) {
      a[p] = _mm512_max_ps(zero, a[p]);  // the second operand wins on NaN: NaN stays NaN
      b[p] = _mm512_max_ps(zero, b[p]);
    }
  }
  for (int p = 0; p < P; ++p) {
    _mm512_store_ps(acc + p * kBlock, a[p]);
    _mm512_store_ps(acc + p * kBlock + 16, b[p]);
  }
  if (!last) return;
  for (int64_t j = 0; j < nvalid; ++j) {
    float* dst = y + j * ystride;
    for (int p = 0; p < P; ++p) dst[p] = acc[p * kBlock + j];
  }
}

using TileFn = void (*)(float*, float*, const float*, const float*, const float*, int64_t,
                        int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool);

template <int S, int... Ps>
constexpr std::array<TileFn, sizeof...(Ps)> tiles_for(std::integer_sequence<int, Ps...>) {
  return {&tile<Ps + 1, S>...};
}

TileFn tile_fn(int64_t S, int P) {
  static const auto s1 = tiles_for<1>(std::make_integer_sequence<int, kMaxP>{});
  static const auto s2 = tiles_for<2>(std::make_integer_sequence<int, kMaxP>{});
  static const auto s4 = tiles_for<4>(std::make_integer_sequence<int, kMaxP>{});
  switch (S) {
    case 1: return s1[P - 1];
    case 2: return s2[P - 1];
    default: return s4[P - 1];
  }
}

bool cpu_has_avx512() {
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
}

// Packed weights per block of input channels: about this many bytes, so that a block stays in
// the L1 cache while the tiles of a whole band of output rows reuse it.
#ifndef ALEXNET_DIRECT_WEIGHT_BLOCK_BYTES
#define ALEXNET_DIRECT_WEIGHT_BLOCK_BYTES 16384
#endif

// Runs the tiles over y [N, O, Ho, Wo]. Work items are (ob, n, band of output rows), in that
// order, so a thread's contiguous range keeps one block of packed weights hot while it walks
// images; within an item, input channels go in blocks (weights in L1) and the band's partial
// sums wait in a per-thread buffer between blocks.
void run(float* y, const float* x, const float* wp, const float* bias_padded, const Plan& p,
         bool relu) {
  const int64_t OB = (p.O + kBlock - 1) / kBlock;
  const int64_t KK = p.kH * p.kW;
  const int64_t plane = p.H * p.W, HoWo = p.Ho * p.Wo;
  const int64_t ntiles = (p.Wo + kMaxP - 1) / kMaxP;  // near-equal tiles of <= kMaxP columns
  const int64_t cb = std::clamp<int64_t>(ALEXNET_DIRECT_WEIGHT_BLOCK_BYTES / (KK * kBlock * 4), 1, p.C);
  // Enough bands for every thread to get several items even at batch 1.
  const int64_t want = 4 * num_threads();
  const int64_t bands = std::clamp<int64_t>((want + OB * p.N - 1) / (OB * p.N), 1, p.Ho);
  const int64_t band_rows = (p.Ho + bands - 1) / bands;
  const int64_t items = OB * p.N * bands;
  parallel_for(0, items, 1, [&](int64_t lo, int64_t hi) {
    float* acc = scratch(Scratch::TileSums, band_rows * ntiles * kMaxP * kBlock + 16);
    acc = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(acc) + 63) & ~uintptr_t{63});
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t band = t % bands, n = (t / bands) % p.N, ob = t / (bands * p.N);
      const int64_t oh0 = band * band_rows, oh1 = std::min(p.Ho, oh0 + band_rows);
      const int64_t nvalid = std::min(kBlock, p.O - ob * kBlock);
      const float* b = bias_padded ? bias_padded + ob * kBlock : nullptr;
      for (int64_t c0 = 0; c0 < p.C; c0 += cb) {
        const int64_t nc = std::min(cb, p.C - c0);
        const bool first = c0 == 0, last = c0 + nc == p.C;
        const float* w = wp + (ob * p.C + c0) * KK * kBlock;
        float* a = acc;
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const float* xin = x + (n * p.C + c0) * plane + oh * p.S * p.W;
          float* yrow = y + (n * p.O + ob * kBlock) * HoWo + oh * p.Wo;
          int64_t ow = 0;
          for (int64_t i = 0; i < ntiles; ++i) {
            const int P = static_cast<int>((p.Wo - ow + (ntiles - i) - 1) / (ntiles - i));
            tile_fn(p.S, P)(yrow + ow, a, xin + ow * p.S, w, b, nc, p.kH, p.kW, plane, p.W,
                            HoWo, nvalid, first, last, relu);
            ow += P;
            a += kMaxP * kBlock;
          }
        }
      }
    }
  });
}

#endif  // ALEXNET_DIRECT_CONV

}  // namespace

ConvAlgo conv_algo() { return g_algo.load(); }
void set_conv_algo(ConvAlgo a) { g_algo.store(a); }

bool conv_direct_available() {
#if ALEXNET_DIRECT_CONV
  return cpu_has_avx512();
#else
  return false;
#endif
}

bool conv_direct_supported(const Conv2dShape& s) {
#if ALEXNET_DIRECT_CONV
  return cpu_has_avx512() && s.groups == 1 && s.dH == 1 && s.dW == 1 && s.sH == s.sW &&
         (s.sH == 1 || s.sH == 2 || s.sH == 4) && s.Ho > 0 && s.Wo > 0 && s.N > 0;
#else
  (void)s;
  return false;
#endif
}

bool conv_direct_backward_data_supported(const Conv2dShape& s) {
  return conv_direct_supported(s) && s.sH == 1 && s.pH <= s.kH - 1 && s.pW <= s.kW - 1;
}

void conv2d_forward_direct(float* y, const float* x, const float* w, const float* bias,
                           const Conv2dShape& s, bool relu) {
#if ALEXNET_DIRECT_CONV
  const int64_t OB = (s.O + kBlock - 1) / kBlock;
  float* wp = scratch(Scratch::PackedWeights, OB * kBlock * s.C * s.kH * s.kW + OB * kBlock);
  pack_weights(wp, w, s.O, s.C, s.kH, s.kW, false);
  float* bp = nullptr;
  if (bias) {
    bp = wp + OB * kBlock * s.C * s.kH * s.kW;
    std::fill(bp, bp + OB * kBlock, 0.f);
    std::copy(bias, bias + s.O, bp);
  }
  const float* xin = x;
  const int64_t Hp = s.H + 2 * s.pH, Wp = s.W + 2 * s.pW;
  if (s.pH || s.pW) {
    float* xp = scratch(Scratch::PaddedInput, s.N * s.C * Hp * Wp);
    pad_input(xp, x, s.N, s.C, s.H, s.W, s.pH, s.pW);
    xin = xp;
  }
  run(y, xin, wp, bp, Plan{s.N, s.C, Hp, Wp, s.O, s.kH, s.kW, s.sH, s.Ho, s.Wo}, relu);
#else
  (void)y, (void)x, (void)w, (void)bias, (void)s, (void)relu;
#endif
}

void conv2d_backward_data_direct(float* dx, const float* dy, const float* w, const Conv2dShape& s) {
#if ALEXNET_DIRECT_CONV
  const int64_t CB = (s.C + kBlock - 1) / kBlock;
  float* wp = scratch(Scratch::PackedWeights, CB * kBlock * s.O * s.kH * s.kW);
  pack_weights(wp, w, s.O, s.C, s.kH, s.kW, true);
  const int64_t qH = s.kH - 1 - s.pH, qW = s.kW - 1 - s.pW;
  const int64_t Hp = s.Ho + 2 * qH, Wp = s.Wo + 2 * qW;
  const float* dyin = dy;
  if (qH || qW) {
    float* dyp = scratch(Scratch::PaddedInput, s.N * s.O * Hp * Wp);
    pad_input(dyp, dy, s.N, s.O, s.Ho, s.Wo, qH, qW);
    dyin = dyp;
  }
  run(dx, dyin, wp, nullptr, Plan{s.N, s.O, Hp, Wp, s.C, s.kH, s.kW, 1, s.H, s.W}, false);
#else
  (void)dx, (void)dy, (void)w, (void)s;
#endif
}

}  // namespace alexnet::cpu
