// The packed vdpbf16ps GEMM (gemm_bf16.cc) behind gemm_bf16_nt / gemm_bf16_nn (bf16.h). Only
// with bf16_hardware(): the callers check.
#pragma once

#include <cstdint>

namespace alexnet::cpu {

// With AMX (bf16_amx()) the packed GEMM runs its tiles from this many rows, a row group of its
// micro-kernel (two tiles of 16); fewer rows take its AVX-512 kernel.
constexpr int64_t kAmxMinRows = 32;

// C [M, N] (+= with accumulate, else =) A [M, K] @ B, float32 sums of exact bfloat16 products,
// B [N, K] (row stride ldb) when b_nk, else B [K, N] (row stride ldb). Any M, N, K >= 0
// (K == 0 gives zeros); the threads split C.
void gemm_bf16_packed(float* c,            // [M, N], row stride ldc
                      int64_t ldc,
                      const uint16_t* a,   // [M, K], row stride lda
                      int64_t lda,
                      const uint16_t* b,   // [N, K] or [K, N], row stride ldb
                      int64_t ldb, bool b_nk, int64_t M, int64_t N, int64_t K, bool accumulate);

}  // namespace alexnet::cpu
