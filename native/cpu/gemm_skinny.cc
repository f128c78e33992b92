#include "gemm_skinny.h"

#include <algorithm>

#include "../core/parallel.h"
#include "isa.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 intrinsics build their results from _mm512_undefined_ps(), which trips
// -Wmaybe-uninitialized once inlined (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define ALEXNET_SKINNY 1
#define ALEXNET_AVX512 __attribute__((target("avx512f")))
#else
#define ALEXNET_SKINNY 0
#endif

namespace alexnet::cpu {

#if ALEXNET_SKINNY

namespace {

constexpr int kMT = 6;        // rows of the small operand per tile
constexpr int64_t kNB = 4;    // rows of B per forward tile
constexpr int64_t kNC = 64;   // columns per input-grad / weight-grad tile (four vectors)
constexpr int64_t kKB = 16;   // rows of B per input-grad block

// C = alpha acc + beta C on masked lanes (beta == 0: C is not read, as in BLAS).
ALEXNET_AVX512 inline void store_out(float* c, __m512 acc, __mmask16 m, float alpha, float beta) {
  __m512 v = _mm512_mul_ps(acc, _mm512_set1_ps(alpha));
  if (beta != 0.f) v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, c), _mm512_set1_ps(beta), v);
  _mm512_mask_storeu_ps(c, m, v);
}

// Forward tile: C[m0+i][n0+j] for i < MT, j < nb: dot products of A rows with B rows over K.
template <int MT>
ALEXNET_AVX512 void forward_tile(float* C, int64_t ldc,        // [MT, nb] at (m0, n0)
                                 const float* A, int64_t lda,  // [MT, K] rows m0..
                                 const float* B, int64_t ldb,  // [nb, K] rows n0..
                                 int64_t nb, int64_t K, float alpha, float beta) {
  const float* b[kNB];
  for (int64_t j = 0; j < kNB; ++j) b[j] = B + std::min(j, nb - 1) * ldb;  // tail: repeat a row
  __m512 acc[MT][kNB];
  for (int i = 0; i < MT; ++i)
    for (int64_t j = 0; j < kNB; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = first_lanes16(K - k);
    __m512 bv[kNB];
    for (int64_t j = 0; j < kNB; ++j) bv[j] = _mm512_maskz_loadu_ps(m, b[j] + k);
    for (int i = 0; i < MT; ++i) {
      const __m512 av = _mm512_maskz_loadu_ps(m, A + i * lda + k);
      for (int64_t j = 0; j < kNB; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MT; ++i)
    for (int64_t j = 0; j < nb; ++j) {
      float* c = C + i * ldc + j;
      const float v = alpha * _mm512_reduce_add_ps(acc[i][j]);
      *c = beta != 0.f ? v + beta * *c : v;
    }
}

// Input-grad tile: C[i][n0 .. n0+64) (+)= sum_{k < kb} A[i][k] B[k][n0 ..] for a block of kb
// rows of B (read in order: kb short sequential streams). `first` starts from beta C (or 0),
// `last` applies alpha; in between the partial sums wait in C itself (in cache).
template <int MT>
ALEXNET_AVX512 void input_grad_tile(float* C, int64_t ldc,        // [MT, 64] at (m0, n0)
                                    const float* A, int64_t lda,  // [MT, kb] at column k0
                                    const float* B, int64_t ldb,  // [kb, 64] at (k0, n0)
                                    int64_t width, int64_t kb, float alpha, float beta,
                                    bool first, bool last) {
  __mmask16 mask[4];
  for (int v = 0; v < 4; ++v) mask[v] = first_lanes16(width - 16 * v);
  __m512 acc[MT][4];
  for (int i = 0; i < MT; ++i)
    for (int v = 0; v < 4; ++v) {
      if (!first) acc[i][v] = _mm512_maskz_loadu_ps(mask[v], C + i * ldc + 16 * v);
      else if (beta != 0.f)
        acc[i][v] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask[v], C + i * ldc + 16 * v), _mm512_set1_ps(beta / alpha));
      else acc[i][v] = _mm512_setzero_ps();
    }
  for (int64_t k = 0; k < kb; ++k) {
    const float* row = B + k * ldb;
    __m512 bv[4];
    for (int v = 0; v < 4; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], row + 16 * v);
    for (int i = 0; i < MT; ++i) {
      const __m512 a = _mm512_set1_ps(A[i * lda + k]);
      for (int v = 0; v < 4; ++v) acc[i][v] = _mm512_fmadd_ps(a, bv[v], acc[i][v]);
    }
  }
  const __m512 scale = _mm512_set1_ps(last ? alpha : 1.f);
  for (int i = 0; i < MT; ++i)
    for (int v = 0; v < 4; ++v)
      _mm512_mask_storeu_ps(C + i * ldc + 16 * v, mask[v], _mm512_mul_ps(acc[i][v], scale));
}

// Weight-grad tile: C[m0+i][n0 ..) = sum_{k < K} a(i, k) B[k][n0 ..] with K small; a(i, k) is
// A[k][m0+i] (trans_a) or A[m0+i][k].
template <int MT>
ALEXNET_AVX512 void weight_grad_tile(float* C, int64_t ldc,        // [MT, 64]
                                     const float* A, int64_t lda, bool trans_a,
                                     const float* B, int64_t ldb,  // [K, 64]
                                     int64_t width, int64_t K, float alpha, float beta) {
  __mmask16 mask[4];
  for (int v = 0; v < 4; ++v) mask[v] = first_lanes16(width - 16 * v);
  __m512 acc[MT][4];
  for (int i = 0; i < MT; ++i)
    for (int v = 0; v < 4; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const float* row = B + k * ldb;
    __m512 bv[4];
    for (int v = 0; v < 4; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], row + 16 * v);
    for (int i = 0; i < MT; ++i) {
      const __m512 a = _mm512_set1_ps(trans_a ? A[k * lda + i] : A[i * lda + k]);
      for (int v = 0; v < 4; ++v) acc[i][v] = _mm512_fmadd_ps(a, bv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < MT; ++i)
    for (int v = 0; v < 4; ++v) store_out(C + i * ldc + 16 * v, acc[i][v], mask[v], alpha, beta);
}

// Calls tile<MT> for MT = rows (1..kMT).
template <template <int> class Tile, typename... Args>
void by_rows(int rows, Args... args) {
  switch (rows) {
    case 1: return Tile<1>::run(args...);
    case 2: return Tile<2>::run(args...);
    case 3: return Tile<3>::run(args...);
    case 4: return Tile<4>::run(args...);
    case 5: return Tile<5>::run(args...);
    default: return Tile<6>::run(args...);
  }
}
template <int MT> struct Forward {
  template <typename... Args> static void run(Args... a) { forward_tile<MT>(a...); }
};
template <int MT> struct InputGrad {
  template <typename... Args> static void run(Args... a) { input_grad_tile<MT>(a...); }
};
template <int MT> struct WeightGrad {
  template <typename... Args> static void run(Args... a) { weight_grad_tile<MT>(a...); }
};

// Near-equal row tiles of at most `most` rows: 16 rows -> 6, 5, 5 (kMT).
inline int tile_rows(int64_t M, int64_t m0, int64_t most = kMT) {
  const int64_t left = M - m0, tiles = (left + most - 1) / most;
  return static_cast<int>((left + tiles - 1) / tiles);
}

// ---- the forward shape in AVX2 (the fully connected layers' inference at small batch) ----
// The same dot-product tiles with 8-float vectors and 16 registers: MT <= 4 rows of A x 3 rows
// of B (12 accumulators, 3 + 1 loads per 12 multiply-adds).
constexpr int kMT2 = 4;
constexpr int64_t kNB2 = 3;

#define ALEXNET_AVX2 __attribute__((target("avx2,fma")))

ALEXNET_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int MT>
ALEXNET_AVX2 void forward_tile_avx2(float* C, int64_t ldc,        // [MT, nb] at (m0, n0)
                                    const float* A, int64_t lda,  // [MT, K] rows m0..
                                    const float* B, int64_t ldb,  // [nb, K] rows n0..
                                    int64_t nb, int64_t K, float alpha, float beta) {
  const float* b[kNB2];
  for (int64_t j = 0; j < kNB2; ++j) b[j] = B + std::min(j, nb - 1) * ldb;  // tail: repeat a row
  __m256 acc[MT][kNB2];
  for (int i = 0; i < MT; ++i)
    for (int64_t j = 0; j < kNB2; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 bv[kNB2];
    for (int64_t j = 0; j < kNB2; ++j) bv[j] = _mm256_loadu_ps(b[j] + k);
    for (int i = 0; i < MT; ++i) {
      const __m256 av = _mm256_loadu_ps(A + i * lda + k);
      for (int64_t j = 0; j < kNB2; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  if (k < K) {  // the last K % 8 columns, masked (nothing past a row is read)
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(K - k)),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 bv[kNB2];
    for (int64_t j = 0; j < kNB2; ++j) bv[j] = _mm256_maskload_ps(b[j] + k, m);
    for (int i = 0; i < MT; ++i) {
      const __m256 av = _mm256_maskload_ps(A + i * lda + k, m);
      for (int64_t j = 0; j < kNB2; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MT; ++i)
    for (int64_t j = 0; j < nb; ++j) {
      float* c = C + i * ldc + j;
      const float v = alpha * hsum(acc[i][j]);
      *c = beta != 0.f ? v + beta * *c : v;
    }
}

void forward_avx2(int rows, float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                  int64_t ldb, int64_t nb, int64_t K, float alpha, float beta) {
  switch (rows) {
    case 1: return forward_tile_avx2<1>(C, ldc, A, lda, B, ldb, nb, K, alpha, beta);
    case 2: return forward_tile_avx2<2>(C, ldc, A, lda, B, ldb, nb, K, alpha, beta);
    case 3: return forward_tile_avx2<3>(C, ldc, A, lda, B, ldb, nb, K, alpha, beta);
    default: return forward_tile_avx2<4>(C, ldc, A, lda, B, ldb, nb, K, alpha, beta);
  }
}

constexpr int64_t kMinWork = int64_t{1} << 18;  // elements of the large operand

}  // namespace

bool sgemm_skinny(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc) {
  if (M <= 0 || N <= 0 || K <= 0) return false;
  const bool forward = !trans_a && trans_b && M <= 32 && N >= 64 && K >= 256 && N * K >= kMinWork;
  // AVX2 (a CPU without AVX-512, or the cap of isa.h): the forward shape only; the general
  // kernels take the other two.
  if (!simd_avx512()) {
    if (!forward || !simd_avx2()) return false;
    note_use(KernelUse::SkinnyAvx2);
    parallel_for(0, (N + kNB2 - 1) / kNB2, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t n0 = t * kNB2, nb = std::min(kNB2, N - n0);
        for (int64_t m0 = 0; m0 < M;) {
          const int rows = tile_rows(M, m0, kMT2);
          forward_avx2(rows, C + m0 * ldc + n0, ldc, A + m0 * lda, lda, B + n0 * ldb, ldb, nb, K, alpha, beta);
          m0 += rows;
        }
      }
    });
    return true;
  }

  if (forward) {
    // forward: one task per block of 4 B rows; every tile of A rows reuses it from cache
    parallel_for(0, (N + kNB - 1) / kNB, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t n0 = t * kNB, nb = std::min(kNB, N - n0);
        for (int64_t m0 = 0; m0 < M;) {
          const int rows = tile_rows(M, m0);
          by_rows<Forward>(rows, C + m0 * ldc + n0, ldc, A + m0 * lda, lda, B + n0 * ldb, ldb, nb, K,
                           alpha, beta);
          m0 += rows;
        }
      }
    });
    note_use(KernelUse::SkinnyAvx512);
    return true;
  }
  if (!trans_a && !trans_b && M <= 32 && N >= 64 && K >= 64 && N * K >= kMinWork &&
      alpha != 0.f) {
    // input grad: each thread owns a range of 64-column strips of C and walks B in blocks of
    // kKB rows, so B streams from memory in order, once; the partial sums stay in C (cache)
    const int64_t strips = (N + kNC - 1) / kNC;
    parallel_for(0, strips, 4, [&](int64_t lo, int64_t hi) {
      for (int64_t k0 = 0; k0 < K; k0 += kKB) {
        const int64_t kb = std::min(kKB, K - k0);
        for (int64_t t = lo; t < hi; ++t) {
          const int64_t n0 = t * kNC, width = std::min(kNC, N - n0);
          for (int64_t m0 = 0; m0 < M;) {
            const int rows = tile_rows(M, m0);
            by_rows<InputGrad>(rows, C + m0 * ldc + n0, ldc, A + m0 * lda + k0, lda,
                               B + k0 * ldb + n0, ldb, width, kb, alpha, beta, k0 == 0,
                               k0 + kb == K);
            m0 += rows;
          }
        }
      }
    });
    note_use(KernelUse::SkinnyAvx512);
    return true;
  }
  if (!trans_b && K <= 32 && M >= 64 && N >= 64 && M * N >= kMinWork) {
    // weight grad: one task per tile of C rows, sweeping the (cached) K x N operand
    const int64_t tiles = (M + kMT - 1) / kMT;
    parallel_for(0, tiles, 8, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t m0 = t * kMT;
        const int rows = static_cast<int>(std::min<int64_t>(kMT, M - m0));
        const float* a = trans_a ? A + m0 : A + m0 * lda;
        for (int64_t n0 = 0; n0 < N; n0 += kNC)
          by_rows<WeightGrad>(rows, C + m0 * ldc + n0, ldc, a, lda, trans_a, B + n0, ldb,
                              std::min(kNC, N - n0), K, alpha, beta);
      }
    });
    note_use(KernelUse::SkinnyAvx512);
    return true;
  }
  return false;
}

#else

bool sgemm_skinny(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                  const float*, int64_t, float, float*, int64_t) {
  return false;
}

#endif

}  // namespace alexnet::cpu
