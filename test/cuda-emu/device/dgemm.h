// The dense float64 product both stand-ins (fake_cudnn.cc, fake_cublas.cc) sum through: fast
// (cache blocks, 4x4 register tiles in GCC vector types, two threads over the rows when there is
// enough work) but with the naive order: each output element is computed by one thread, adding
// its products in ascending k, one multiply then one add. So blocking and thread count never
// change a result. Each library compiles its own copy (they share no code at run time).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace emu_dense {

// C[M x N] += A[M x K] * B[K x N], all row-major with the given leading dimensions. Every C element
// is computed by one thread, adding its K products one at a time in ascending k order (a plain
// multiply then add, as the naive loop does), so the result does not depend on blocking or on the
// thread count. The speed comes from packing B into 4-column panels, 4x4 register tiles and
// cache blocking over k and rows.
typedef double emu_d2 __attribute__((vector_size(16)));
inline emu_d2 ld2(const double* p) { emu_d2 v; std::memcpy(&v, p, sizeof v); return v; }
inline void st2(double* p, emu_d2 v) { std::memcpy(p, &v, sizeof v); }

inline void dgemm_rows(int64_t i0, int64_t i1, int64_t N, int64_t K, const double* A, int64_t lda, const double* Bp,
                const double* B, int64_t ldb, double* C, int64_t ldc) {
  constexpr int64_t KC = 128, MC = 64;
  const int64_t NP = N / 4;
  for (int64_t kb = 0; kb < K; kb += KC) {
    const int64_t ke = std::min(K, kb + KC), kn = ke - kb;
    for (int64_t mb = i0; mb < i1; mb += MC) {
      const int64_t me = std::min(i1, mb + MC);
      for (int64_t jp = 0; jp < NP; ++jp) {
        const double* bp = Bp + (jp * K + kb) * 4;
        int64_t i = mb;
        for (; i + 4 <= me; i += 4) {
          double* c0 = C + i * ldc + jp * 4;
          emu_d2 c[4][2];
          for (int r = 0; r < 4; ++r) {
            c[r][0] = ld2(c0 + r * ldc);
            c[r][1] = ld2(c0 + r * ldc + 2);
          }
          const double* a0 = A + i * lda + kb;
          for (int64_t k = 0; k < kn; ++k) {
            const emu_d2 b0 = ld2(bp + k * 4), b1 = ld2(bp + k * 4 + 2);
            for (int r = 0; r < 4; ++r) {
              const double a = a0[r * lda + k];
              const emu_d2 av = {a, a};
              c[r][0] += av * b0;
              c[r][1] += av * b1;
            }
          }
          for (int r = 0; r < 4; ++r) {
            st2(c0 + r * ldc, c[r][0]);
            st2(c0 + r * ldc + 2, c[r][1]);
          }
        }
        for (; i < me; ++i) {
          double* c0 = C + i * ldc + jp * 4;
          emu_d2 x0 = ld2(c0), x1 = ld2(c0 + 2);
          const double* a0 = A + i * lda + kb;
          for (int64_t k = 0; k < kn; ++k) {
            const emu_d2 av = {a0[k], a0[k]};
            x0 += av * ld2(bp + k * 4);
            x1 += av * ld2(bp + k * 4 + 2);
          }
          st2(c0, x0);
          st2(c0 + 2, x1);
        }
      }
      for (int64_t i = mb; i < me; ++i)
        for (int64_t j = NP * 4; j < N; ++j) {
          double v = C[i * ldc + j];
          for (int64_t k = kb; k < ke; ++k) v += A[i * lda + k] * B[k * ldb + j];
          C[i * ldc + j] = v;
        }
    }
  }
}

inline void dgemm_acc(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb, double* C,
               int64_t ldc) {
  if (M <= 0 || N <= 0 || K <= 0) return;
  const int64_t NP = N / 4;
  std::vector<double> Bp(static_cast<size_t>(NP * K * 4));
  for (int64_t jp = 0; jp < NP; ++jp)
    for (int64_t k = 0; k < K; ++k)
      for (int t = 0; t < 4; ++t) Bp[(jp * K + k) * 4 + t] = B[k * ldb + jp * 4 + t];
  // two threads on rows when there is enough work (each row belongs to one of them)
  if (M >= 16 && static_cast<double>(M) * N * K >= 4e6) {
    const int64_t half = (M / 2) & ~int64_t(3);
    std::thread t([&] { dgemm_rows(half, M, N, K, A, lda, Bp.data(), B, ldb, C, ldc); });
    dgemm_rows(0, half, N, K, A, lda, Bp.data(), B, ldb, C, ldc);
    t.join();
  } else {
    dgemm_rows(0, M, N, K, A, lda, Bp.data(), B, ldb, C, ldc);
  }
}

}  // namespace emu_dense
