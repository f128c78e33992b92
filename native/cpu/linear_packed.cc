#include "linear_packed.h"

#include <algorithm>

#include "../core/parallel.h"
#include "isa.h"
#include "scratch.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 intrinsics build their results from _mm512_undefined_ps(), which trips
// -Wmaybe-uninitialized once inlined, or -Wuninitialized in transpose16 compiled on its own
// (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#define ALEXNET_LINEAR_PACKED 1
#define ALEXNET_AVX512 __attribute__((target("avx512f")))
#define ALEXNET_AVX2 __attribute__((target("avx2,fma")))
#else
#define ALEXNET_LINEAR_PACKED 0
#endif

namespace alexnet::cpu {

#if ALEXNET_LINEAR_PACKED
namespace {

constexpr int kMR = 8;        // rows of x per tile: 8 x 3 accumulators, 3 panel vectors, 1 broadcast
constexpr int64_t kNR = 48;   // output features per panel (three vectors)
constexpr int64_t kKC = 128;  // k per block: a panel's block (24 KiB) stays in L1 for every row tile
// AVX2 (16 registers of 8 floats) reads the same panels a third at a time: tiles of 6 rows x 16
// features (12 accumulators, 2 panel vectors, 1 broadcast), the block still in L1 for all three.
constexpr int kMR2 = 6;
constexpr int64_t kSeg2 = 16;

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

// The same for an 8 x 8 block in AVX2: pairs, then quads, then the two 128-bit halves.
ALEXNET_AVX2 inline void transpose8(float* out, int64_t ldo, const float* in, int64_t ld) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in + i * ld);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // columns 0,1 | 4,5 of rows i, i+1
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // columns 2,3 | 6,7
  }
  for (int i = 0; i < 8; i += 4) {  // one column of rows i..i+3 per 128-bit half
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);          // 0 | 4
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);      // 1 | 5
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);  // 2 | 6
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);  // 3 | 7
  }
  for (int q = 0; q < 4; ++q) {  // rows 0-3 and 4-7 of column q, and of column q + 4
    _mm256_storeu_ps(out + q * ldo, _mm256_permute2f128_ps(r[q], r[4 + q], 0x20));
    _mm256_storeu_ps(out + (q + 4) * ldo, _mm256_permute2f128_ps(r[q], r[4 + q], 0x31));
  }
}

// wp[p][k][j] = w[p*48 + j][k], 0 past N. A panel goes in chunks of 256 k (a 48 KiB block that
// stays in cache while it is written) and each chunk in groups of G rows (16 with AVX-512, 8
// with AVX2), read as G sequential 1 KiB runs and transposed G x G at a time; rows past N, and k
// past the last whole G, go one float at a time. The panels are the same whichever packs them.
template <int64_t G>
void pack_panels(float* wp, const float* w, int64_t N, int64_t K,
                 void (*transpose)(float*, int64_t, const float*, int64_t)) {
  constexpr int64_t kChunk = 256;
  const int64_t panels = (N + kNR - 1) / kNR;
  parallel_for(0, panels, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      float* dst = wp + p * K * kNR;
      const int64_t n0 = p * kNR, nr = std::min(kNR, N - n0);
      for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
        const int64_t kk = std::min(kChunk, K - k0);
        float* block = dst + k0 * kNR;
        for (int64_t g = 0; g < kNR; g += G) {
          const int64_t rows = std::clamp<int64_t>(nr - g, 0, G);
          int64_t k = 0;
          if (rows == G)
            for (; k + G <= kk; k += G) transpose(block + k * kNR + g, kNR, w + (n0 + g) * K + k0 + k, K);
          for (int64_t j = 0; j < G; ++j) {
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

// The AVX2 tile: C[i][j] for i < MR (<= 6), j < nc (<= 16) from one third of a panel (Bp is
// its first column; the panel's rows stay 48 floats apart), as tile<> does for all of it.
ALEXNET_AVX2 inline __m256i first_lanes8(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::clamp<int64_t>(n, 0, 8))),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <int MR>
ALEXNET_AVX2 void tile_avx2(float* C, int64_t ldc,       // [MR, nc] at (m0, n0 + 16s)
                            const float* A,               // [kc][MR]: x's rows interleaved, at k0
                            const float* Bp,              // [kc][48]: the panel at k0, column 16s
                            const float* bias,            // [nc] at n0 + 16s, or nullptr
                            const float* ahead, int64_t every, int64_t kc, int64_t nc, bool first,
                            bool last, bool relu) {
  const bool whole = nc == kSeg2;  // masked loads and stores only at the last panel's tail
  const __m256i m0 = first_lanes8(nc), m1 = first_lanes8(nc - 8);
  const __m256 zero = _mm256_setzero_ps();
  __m256 acc[MR][2];
  if (first) {
    const __m256 b0 = bias ? _mm256_maskload_ps(bias, m0) : zero;
    const __m256 b1 = bias ? _mm256_maskload_ps(bias + 8, m1) : zero;
    for (int i = 0; i < MR; ++i) acc[i][0] = b0, acc[i][1] = b1;
  } else {
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = whole ? _mm256_loadu_ps(C + i * ldc) : _mm256_maskload_ps(C + i * ldc, m0);
      acc[i][1] = whole ? _mm256_loadu_ps(C + i * ldc + 8) : _mm256_maskload_ps(C + i * ldc + 8, m1);
    }
  }
  int64_t wait = 0;
  for (int64_t k = 0; k < kc; ++k) {
    if (ahead && --wait <= 0) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(ahead + 16), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(ahead + 32), _MM_HINT_T1);
      ahead += kNR;
      wait = every;
    }
    const __m256 w0 = _mm256_loadu_ps(Bp + k * kNR);
    const __m256 w1 = _mm256_loadu_ps(Bp + k * kNR + 8);
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(A + k * MR + i);
      acc[i][0] = _mm256_fmadd_ps(a, w0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, w1, acc[i][1]);
    }
  }
  if (last && relu)  // max(x, 0) with NaN kept: only the lanes below 0 become 0
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < 2; ++v) acc[i][v] = _mm256_blendv_ps(acc[i][v], zero, _mm256_cmp_ps(acc[i][v], zero, _CMP_LT_OQ));
  for (int i = 0; i < MR; ++i) {
    if (whole) {
      _mm256_storeu_ps(C + i * ldc, acc[i][0]);
      _mm256_storeu_ps(C + i * ldc + 8, acc[i][1]);
    } else {
      _mm256_maskstore_ps(C + i * ldc, m0, acc[i][0]);
      _mm256_maskstore_ps(C + i * ldc + 8, m1, acc[i][1]);
    }
  }
}

constexpr TileFn kTiles2[kMR2] = {&tile_avx2<1>, &tile_avx2<2>, &tile_avx2<3>,
                                  &tile_avx2<4>, &tile_avx2<5>, &tile_avx2<6>};

// x's rows in T = ceil(M / mr) near-equal tiles: tile t starts at row t * M / T (at most mr rows).
inline int64_t tile_start(int64_t t, int64_t M, int64_t T) { return t * M / T; }

}  // namespace
#endif

bool linear_forward_packed(float* y, const float* x, const Tensor& w, const float* bias, int64_t M,
                           int64_t K, int64_t N, bool relu) {
#if ALEXNET_LINEAR_PACKED
  const bool avx512 = simd_avx512();
  if (!(avx512 || simd_avx2()) || M < kPackedMinRows || M > kPackedMaxRows || N < 256 || K < 256 ||
      !w.defined() || w.dtype() != DType::Float32 || w.numel() != N * K)
    return false;
  const int64_t panels = (N + kNR - 1) / kNR;
  const float* wsrc = w.cf32();
  const float* wp = w.derived({kLinearPacked, kNR, N, K, 0, 0}, panels * K * kNR, [&](float* d) {
    if (avx512) pack_panels<16>(d, wsrc, N, K, &transpose16);
    else pack_panels<8>(d, wsrc, N, K, &transpose8);
  }, /*second_use=*/true);
  if (wp == nullptr) return false;
  note_use(avx512 ? KernelUse::LinearPackedAvx512 : KernelUse::LinearPackedAvx2);
  // x's row tiles interleaved, xp[m0 * K + k * rows + i] = x[m0 + i][k]: a tile's broadcasts at
  // one k are then one contiguous run, not `rows` loads 4*K bytes apart (which, K a multiple
  // of 1024, all fall in one L1 set).
  const int64_t mr = avx512 ? kMR : kMR2;
  const int64_t tiles = (M + mr - 1) / mr;
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
      // AVX-512 takes a panel's 48 columns in one tile; AVX2 in thirds of 16 (as many as hold
      // columns of W), each row tile going over all of them while its rows are in L1
      const int64_t segs = avx512 ? 1 : (nr + kSeg2 - 1) / kSeg2;
      const int64_t units = tiles * segs;
      const float* panel = wp + p * K * kNR;
      for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const int64_t kc = std::min(kKC, K - k0);
        const bool first = k0 == 0, last = k0 + kc == K;
        // The next block (in this panel, or the next panel's first) is fetched into L2 while
        // this one is used: each tile asks for its share of its rows, spread over its steps, so
        // memory stays busy through the whole block and not only its first tile.
        const float* next = !last ? panel + (k0 + kc) * kNR : p + 1 < hi ? panel + K * kNR : nullptr;
        const int64_t next_rows = !last ? std::min(kKC, K - k0 - kc) : std::min(kKC, K);
        const int64_t share = (next_rows + units - 1) / units;
        for (int64_t u = 0; u < units; ++u) {
          const int64_t t = u / segs, s = u % segs;
          const int64_t m0 = tile_start(t, M, tiles), rows = tile_start(t + 1, M, tiles) - m0;
          const int64_t from = std::min(next_rows, u * share), count = std::min(next_rows, from + share) - from;
          const float* ahead = next != nullptr && count > 0 ? next + from * kNR : nullptr;
          const int64_t every = count > 0 ? (kc + count - 1) / count : 1;  // at most `count` rows
          const int64_t c0 = s * kSeg2;  // the tile's first column in the panel
          (avx512 ? kTiles : kTiles2)[rows - 1](y + m0 * N + n0 + c0, N, xp + m0 * K + k0 * rows, panel + k0 * kNR + c0,
                                                bias ? bias + n0 + c0 : nullptr, ahead, every, kc,
                                                avx512 ? nr : std::min(kSeg2, nr - c0), first, last, relu);
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
