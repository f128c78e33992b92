// Matrix products with one tiny dimension, on x86-64 with AVX-512 (the forward shape also with
// AVX2, for CPUs without AVX-512 and under the cap of isa.h): the fully connected layers
// at small batch. There the work is bound by streaming the weight matrix once (fc6 is 151 MB),
// and a general GEMM spends its time packing it into panels instead. Three shapes, named by the
// layer pass they serve (row-major, as in gemm.h):
//   forward     C[M,N] = alpha A[M,K] B[N,K]^T + beta C   (M <= 32: y = x W^T)
//   input grad  C[M,N] = alpha A[M,K] B[K,N]   + beta C   (M <= 32: dx = dy W)
//   weight grad C[M,N] = alpha A[K,M]^T B[K,N] + beta C   (K <= 32: dW (+)= dy^T x)
// Each reads the large operand once from memory, keeps the small one in cache, and writes C
// once. sgemm() (gemm.h) calls sgemm_skinny first and falls back to the general kernels when it
// returns false.
#pragma once

#include <cstdint>

namespace alexnet::cpu {

// Runs the product and returns true when the shape is one of the three above, the arrays are
// large enough to pay off and the CPU has AVX-512 (the forward shape: AVX2); returns false (and does nothing) otherwise.
bool sgemm_skinny(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda,  // [M,K] or [K,M] when trans_a
                  const float* B, int64_t ldb,  // [K,N] or [N,K] when trans_b
                  float beta, float* C, int64_t ldc);  // [M,N]

}  // namespace alexnet::cpu
