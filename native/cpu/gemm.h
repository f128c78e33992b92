// Single-precision matrix product on the CPU, row-major:
//   C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C
// op(A) is A[M,K] (lda >= K) or, with trans_a, A[K,M] transposed (lda >= M); same for B.
// Goes through CBLAS (OpenBLAS) when the build found one, else through a portable blocked
// kernel; set_gemm_backend() switches at run time so tests cover both paths.
#pragma once

#include <cstdint>

namespace alexnet::cpu {

enum class GemmBackend { Blas, Portable };

bool blas_compiled();
const char* blas_name();          // "OpenBLAS 0.3.21 ..." or "portable (no BLAS found at build time)"
GemmBackend gemm_backend();
void set_gemm_backend(GemmBackend b);  // Blas without blas_compiled() throws ERR_ARGUMENT

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda,  // [M,K] or [K,M] when trans_a
           const float* B, int64_t ldb,  // [K,N] or [N,K] when trans_b
           float beta, float* C, int64_t ldc);  // [M,N]

// The portable kernel alone (used by sgemm when no BLAS, and tested directly).
void sgemm_portable(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc);

}  // namespace alexnet::cpu
