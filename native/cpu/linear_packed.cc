#include "linear_packed.h"

#include <algorithm>

#include "../core/parallel.h"
#include "isa.h"
#include "scratch.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 intrinsics build their results from _mm512_undefined_ps(), which trips
// -Wmaybe-uninitialized once inlined (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define ALEXNET_LINEAR_PACKED 1
#define ALEXNET_AVX512 __attribute__((target("avx512f")))
#else
#define ALEXNET_LINEAR_PACKED 0
#endif

namespace alexnet::cpu {

#if ALEXNET_LINEAR_PACKED
namespace {

constexpr int kMR = 8;        // rows of x per tile: 8 x 3 accumulators, 3 panel vectors, 1 broadcast
constexpr int64_t kNR = 48;   // output features per panel (three vectors)
constexpr int64_t kKC = 128;  // k per block: a panel's block (24 KiB) stays in L1 for every row tile

// out[c][i] = in[i][c] for a 16 x 16 block of floats: in, rows 16 apart by `ld`; out, rows of
// 16 at `ldo`. Pairs, then quads, then 128-bit lanes twice (the usual four shuffle stages).
ALEXNET_AVX512 inline void transpose16(float* out, int64_t ldo, const float* in, int64_t ld) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(in + i * ld);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);      // columns 0,1 | 4,5 | 8,9 | 12,13 of rows i, i+1
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);  // columns 2,3 | 6,7 | 10,11 | 14,15
  }
  for (int i = 0; i < 16; i += 4) {  // u: one column of rows i..i+3 per 128-bit lane
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));      // 0 4 8 12
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));  // 1 5 9 13
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));  // 2 6 10 14
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));  // 3 7 11 15
  }
  // rows 0-3 with rows 4-7 (and 8-11 with 12-15): lanes 0 and 2 (columns c, c+8), 1 and 3 (c+4, c+12)
  for (int h = 0; h < 16; h += 8)
    for (int q = 0; q < 4; ++q) {
      t[h + 2 * q] = _mm512_shuffle_f32x4(r[h + q], r[h + 4 + q], 0x88);
      t[h + 2 * q + 1] = _mm512_shuffle_f32x4(r[h + q], r[h + 4 + q], 0xDD);
    }
  // t[2q] holds columns q and q+8, t[2q+1] columns q+4 and q+12 (rows 0-7; t[8 + ...] rows 8-15)
  for (int q = 0; q < 4; ++q) {
    _mm512_storeu_ps(out + q * ldo, _mm512_shuffle_f32x4(t[2 * q], t[8 + 2 * q], 0x88));
    _mm512_storeu_ps(out + (q + 8) * ldo, _mm512_shuffle_f32x4(t[2 * q], t[8 + 2 * q], 0xDD));
    _mm512_storeu_ps(out + (q + 4) * ldo, _mm512_shuffle_f32x4(t[2 * q + 1], t[8 + 2 * q + 1], 0x88));
    _mm512_storeu_ps(out + (q + 12) * ldo, _mm512_shuffle_f32x4(t[2 * q + 1], t[8 + 2 * q + 1], 0xDD));
  }
}

// wp[p][k][j] = w[p*48 + j][k], 0 past N. A panel goes in chunks of 256 k (a 48 KiB block that
// stays in cache while it is written) and each chunk in three groups of 16 rows, read as 16
// sequential 1 KiB runs and transposed 16 x 16 at a time; rows past N, and k past the last
// whole 16, go one float at a time.
ALEXNET_AVX512 void pack_panels(float* wp, const float* w, int64_t N, int64_t K) {
  constexpr int64_t kChunk = 256;
  const int64_t panels = (N + kNR - 1) / kNR;
  parallel_for(0, panels, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      float* dst = wp + p * K * kNR;
      const int64_t n0 = p * kNR, nr = std::min(kNR, N - n0);
      for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
        const int64_t kk = std::min(kChunk, K - k0);
        float* block = dst + k0 * kNR;
        for (int64_t g = 0; g < kNR; g += 16) {
          const int64_t rows = std::clamp<int64_t>(nr - g, 0, 16);
          int64_t k = 0;
          if (rows == 16)
            for (; k + 16 <= kk; k += 16) transpose16(block + k * kNR + g, kNR, w + (n0 + g) * K + k0 + k, K);
          for (int64_t j = 0; j < 16; ++j) {
            const float* src = w + (n0 + g + j) * K + k0;
            for (int64_t kt = k; kt < kk; ++kt) block[kt * kNR + g + j] = j < rows ? src[kt] : 0.f;
          }
        }
      }
    }
  });
}

// One tile: C[i][j] for i < MR, j < nr (<= 48), over one block of kc columns of x. The first
// block starts from the bias (or 0), later ones from the partial sums left in C; the last
// applies ReLU if asked.
template <int MR>
ALEXNET_AVX512 void tile(float* C, int64_t ldc,       // [MR, nr] at (m0, n0)
                         const float* A,               // [kc][MR]: x's rows interleaved, at k0
                         const float* Bp,              // [kc][48]: the panel at k0
                         const float* bias,            // [nr] at n0, or nullptr
                         const float* ahead,           // rows of the next block to fetch, or nullptr
                         int64_t every,                // one row of them per `every` steps of k
                         int64_t kc, int64_t nr, bool first, bool last, bool relu) {
  const __mmask16 m0 = first_lanes16(nr), m1 = first_lanes16(nr - 16), m2 = first_lanes16(nr - 32);
  __m512 acc[MR][3];
  if (first) {
    const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    const __m512 b2 = bias ? _mm512_maskz_loadu_ps(m2, bias + 32) : _mm512_setzero_ps();
    for (int i = 0; i < MR; ++i) acc[i][0] = b0, acc[i][1] = b1, acc[i][2] = b2;
  } else {
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = _mm512_maskz_loadu_ps(m0, C + i * ldc);
      acc[i][1] = _mm512_maskz_loadu_ps(m1, C + i * ldc + 16);
      acc[i][2] = _mm512_maskz_loadu_ps(m2, C + i * ldc + 32);
    }
  }
  int64_t wait = 0;
  for (int64_t k = 0; k < kc; ++k) {
    if (ahead && --wait <= 0) {  // the next row of the next block, every `every` steps
      _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(ahead + 16), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(ahead + 32), _MM_HINT_T1);
      ahead += kNR;
      wait = every;
    }
    const __m512 w0 = _mm512_loadu_ps(Bp + k * kNR);
    const __m512 w1 = _mm512_loadu_ps(Bp + k * kNR + 16);
    const __m512 w2 = _mm512_loadu_ps(Bp + k * kNR + 32);
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(A[k * MR + i]);
      acc[i][0] = _mm512_fmadd_ps(a, w0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, w1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(a, w2, acc[i][2]);
    }
  }
  if (last && relu)  // max(x, 0) with NaN kept: zero only the lanes below 0
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < 3; ++v)
        acc[i][v] = _mm512_mask_mov_ps(acc[i][v], _mm512_cmp_ps_mask(acc[i][v], _mm512_setzero_ps(), _CMP_LT_OQ),
                                       _mm512_setzero_ps());
  for (int i = 0; i < MR; ++i) {
    _mm512_mask_storeu_ps(C + i * ldc, m0, acc[i][0]);
    _mm512_mask_storeu_ps(C + i * ldc + 16, m1, acc[i][1]);
    _mm512_mask_storeu_ps(C + i * ldc + 32, m2, acc[i][2]);
  }
}

using TileFn = void (*)(float*, int64_t, const float*, const float*, const float*, const float*,
                        int64_t, int64_t, int64_t, bool, bool, bool);
constexpr TileFn kTiles[kMR] = {&tile<1>, &tile<2>, &tile<3>, &tile<4>,
                                &tile<5>, &tile<6>, &tile<7>, &tile<8>};

// x's rows in T = ceil(M / 8) near-equal tiles: tile t starts at row t * M / T (at most 8 rows).
inline int64_t tile_start(int64_t t, int64_t M, int64_t T) { return t * M / T; }

}  // namespace
#endif

bool linear_forward_packed(float* y, const float* x, const Tensor& w, const float* bias, int64_t M,
                           int64_t K, int64_t N, bool relu) {
#if ALEXNET_LINEAR_PACKED
  if (!simd_avx512() || M < kPackedMinRows || M > kPackedMaxRows || N < 256 || K < 256 ||
      !w.defined() || w.dtype() != DType::Float32 || w.numel() != N * K)
    return false;
  const int64_t panels = (N + kNR - 1) / kNR;
  const float* wsrc = w.cf32();
  const float* wp = w.derived({kLinearPacked, kNR, N, K, 0, 0}, panels * K * kNR,
                              [&](float* d) { pack_panels(d, wsrc, N, K); }, /*second_use=*/true);
  if (wp == nullptr) return false;
  note_use(KernelUse::LinearPackedAvx512);
  // x's row tiles interleaved, xp[m0 * K + k * rows + i] = x[m0 + i][k]: a tile's broadcasts at
  // one k are then one contiguous run, not `rows` loads 4*K bytes apart (which, K a multiple
  // of 1024, all fall in one L1 set).
  const int64_t tiles = (M + kMR - 1) / kMR;
  float* xp = scratch(Scratch::LinearRows, M * K);
  parallel_for(0, tiles, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t m0 = tile_start(t, M, tiles), rows = tile_start(t + 1, M, tiles) - m0;
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t k = 0; k < K; ++k) xp[m0 * K + k * rows + i] = x[(m0 + i) * K + k];
    }
  });
  parallel_for(0, panels, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const int64_t n0 = p * kNR, nr = std::min(kNR, N - n0);
      const float* panel = wp + p * K * kNR;
      for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const int64_t kc = std::min(kKC, K - k0);
        const bool first = k0 == 0, last = k0 + kc == K;
        // The next block (in this panel, or the next panel's first) is fetched into L2 while
        // this one is used: each row tile asks for its share of its rows, spread over its
        // steps, so memory stays busy through the whole block and not only its first tile.
        const float* next = !last ? panel + (k0 + kc) * kNR : p + 1 < hi ? panel + K * kNR : nullptr;
        const int64_t next_rows = !last ? std::min(kKC, K - k0 - kc) : std::min(kKC, K);
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t m0 = tile_start(t, M, tiles), rows = tile_start(t + 1, M, tiles) - m0;
          const int64_t share = (next_rows + tiles - 1) / tiles;
          const int64_t from = std::min(next_rows, t * share), count = std::min(next_rows, from + share) - from;
          const float* ahead = next != nullptr && count > 0 ? next + from * kNR : nullptr;
          const int64_t every = count > 0 ? (kc + count - 1) / count : 1;  // at most `count` rows
          kTiles[rows - 1](y + m0 * N + n0, N, xp + m0 * K + k0 * rows, panel + k0 * kNR,
                           bias ? bias + n0 : nullptr, ahead, every, kc, nr, first, last, relu);
        }
      }
    }
  });
  return true;
#else
  (void)y, (void)x, (void)w, (void)bias, (void)M, (void)K, (void)N, (void)relu;
  return false;
#endif
}

}  // namespace alexnet::cpu
