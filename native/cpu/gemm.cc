#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "../core/error.h"
#include "../core/parallel.h"
#include "gemm_skinny.h"
#include "simd.h"

#ifdef ALEXNET_WITH_CBLAS
#include <cblas.h>
#endif

namespace alexnet::cpu {

namespace {
#ifdef ALEXNET_WITH_CBLAS
std::atomic<GemmBackend> g_backend{GemmBackend::Blas};
#else
std::atomic<GemmBackend> g_backend{GemmBackend::Portable};
#endif
}  // namespace

bool blas_compiled() {
#ifdef ALEXNET_WITH_CBLAS
  return true;
#else
  return false;
#endif
}

const char* blas_name() {
#if defined(ALEXNET_WITH_CBLAS) && defined(ALEXNET_OPENBLAS)
  static std::string name = std::string("OpenBLAS (") + openblas_get_config() + ")";
  return name.c_str();
#elif defined(ALEXNET_WITH_CBLAS)
  return "CBLAS";
#else
  return "portable (no BLAS found at build time)";
#endif
}

GemmBackend gemm_backend() { return g_backend.load(); }

void set_gemm_backend(GemmBackend b) {
  if (b == GemmBackend::Blas && !blas_compiled())
    fail(code::kArgument, "this build has no BLAS (it was built without one); only 'portable' is available");
  g_backend.store(b);
}

// ---------------------------------------------------------------------------------------------
// Portable kernel: pack op(A) into MR-row panels and op(B) into NR-column panels, then a
// register-blocked MR x NR micro-kernel that the compiler vectorises. Parallel over rows.

namespace {

constexpr int64_t MR = 6;
constexpr int64_t NR = 16;
constexpr int64_t KC = 256;
constexpr int64_t MC = 72;  // multiple of MR

inline float a_at(bool ta, const float* A, int64_t lda, int64_t i, int64_t k) {
  return ta ? A[k * lda + i] : A[i * lda + k];
}
inline float b_at(bool tb, const float* B, int64_t ldb, int64_t k, int64_t j) {
  return tb ? B[j * ldb + k] : B[k * ldb + j];
}

// Bp[panel][k][NR] for columns [0, N), depth [k0, k0+kc); zero padded.
void pack_b(bool tb, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t N, float* Bp) {
  const int64_t panels = (N + NR - 1) / NR;
  parallel_for(0, panels, 4, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* dst = Bp + p * kc * NR;
      const int64_t j0 = p * NR;
      const int64_t nr = std::min(NR, N - j0);
      for (int64_t k = 0; k < kc; ++k) {
        float* row = dst + k * NR;
        if (!tb && nr == NR) {
          std::memcpy(row, B + (k0 + k) * ldb + j0, sizeof(float) * NR);
        } else {
          for (int64_t j = 0; j < nr; ++j) row[j] = b_at(tb, B, ldb, k0 + k, j0 + j);
          for (int64_t j = nr; j < NR; ++j) row[j] = 0.f;
        }
      }
    }
  });
}

// Ap[panel][k][MR] for rows [i0, i0+mc), depth [k0, k0+kc); zero padded.
void pack_a(bool ta, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
            float* Ap) {
  for (int64_t p = 0; p * MR < mc; ++p) {
    float* dst = Ap + p * kc * MR;
    const int64_t mr = std::min(MR, mc - p * MR);
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t i = 0; i < mr; ++i) dst[k * MR + i] = a_at(ta, A, lda, i0 + p * MR + i, k0 + k);
      for (int64_t i = mr; i < MR; ++i) dst[k * MR + i] = 0.f;
    }
  }
}

// C[mr, nr] += alpha * Ap[kc, MR]^T @ Bp[kc, NR]. The MR x NR accumulator lives in registers
// as MR vectors of NR floats (GCC vector extensions: one zmm, two ymm or four xmm each).
typedef float vec16 __attribute__((vector_size(NR * sizeof(float))));

ALEXNET_SIMD_BODY void micro_kernel_body(int64_t kc, const float* __restrict Ap,
                                         const float* __restrict Bp, float alpha, float* C,
                                         int64_t ldc, int64_t mr, int64_t nr) {
  vec16 acc[MR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    vec16 b;
    std::memcpy(&b, Bp + k * NR, sizeof(b));
    const float* a = Ap + k * MR;
    for (int64_t i = 0; i < MR; ++i) acc[i] += a[i] * b;
  }
  if (mr == MR && nr == NR) {
    for (int64_t i = 0; i < MR; ++i) {
      vec16 c;
      std::memcpy(&c, C + i * ldc, sizeof(c));
      c += alpha * acc[i];
      std::memcpy(C + i * ldc, &c, sizeof(c));
    }
    return;
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) C[i * ldc + j] += alpha * acc[i][j];
}

ALEXNET_SIMD_DISPATCH(micro_kernel,
                      (int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float alpha,
                       float* C, int64_t ldc, int64_t mr, int64_t nr),
                      (kc, Ap, Bp, alpha, C, ldc, mr, nr))

}  // namespace

void sgemm_portable(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  // C = beta * C (beta == 0 overwrites, so NaN garbage in C does not leak through).
  parallel_for(0, M, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* c = C + i * ldc;
      if (beta == 0.f) std::fill(c, c + N, 0.f);
      else if (beta != 1.f) for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    }
  });
  if (K <= 0 || alpha == 0.f) return;
  const int64_t panels = (N + NR - 1) / NR;
  std::vector<float> Bp(static_cast<size_t>(std::min(KC, K) * panels * NR));
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min(KC, K - k0);
    pack_b(trans_b, B, ldb, k0, kc, N, Bp.data());
    const int64_t blocks = (M + MC - 1) / MC;
    parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      std::vector<float> Ap(static_cast<size_t>(MC * kc));
      for (int64_t blk = b0; blk < b1; ++blk) {
        const int64_t i0 = blk * MC;
        const int64_t mc = std::min(MC, M - i0);
        pack_a(trans_a, A, lda, i0, mc, k0, kc, Ap.data());
        for (int64_t p = 0; p < panels; ++p) {
          const int64_t j0 = p * NR;
          const int64_t nr = std::min(NR, N - j0);
          for (int64_t q = 0; q * MR < mc; ++q) {
            const int64_t mr = std::min(MR, mc - q * MR);
            micro_kernel(kc, Ap.data() + q * kc * MR, Bp.data() + p * kc * NR, alpha,
                         C + (i0 + q * MR) * ldc + j0, ldc, mr, nr);
          }
        }
      }
    });
  }
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  // The fully connected layers at small batch (one dimension <= 32) on either backend.
  if (sgemm_skinny(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
#ifdef ALEXNET_WITH_CBLAS
  if (g_backend.load() == GemmBackend::Blas) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // CBLAS leaves C untouched for K == 0 only when beta == 1; be explicit
      sgemm_portable(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(M), static_cast<int>(N),
                static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta,
                C, static_cast<int>(ldc));
    return;
  }
#endif
  sgemm_portable(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace alexnet::cpu
