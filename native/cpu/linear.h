// Fully connected layer and a general matrix product on the CPU (through cpu::sgemm, so
// OpenBLAS or the portable kernel, whichever setGemmBackend chose).
// Layout follows PyTorch: weight is [out, in], y = x W^T + b.
#pragma once

#include <cstdint>

namespace alexnet::cpu {

// y = x @ w^T + bias   (bias may be null)
void linear_forward(float* y,            // [B, out]
                    const float* x,      // [B, in]
                    const float* w,      // [out, in]
                    const float* bias,   // [out] or null
                    int64_t B, int64_t in, int64_t out);

// dx = dy @ w            (skipped when dx is null)
// dw = dy^T @ x          (+= when accumulate)
// db = sum_b dy[b, :]    (skipped when db is null; += when accumulate)
void linear_backward(float* dx,          // [B, in] or null
                     float* dw,          // [out, in]
                     float* db,          // [out] or null
                     const float* dy,    // [B, out]
                     const float* x,     // [B, in]
                     const float* w,     // [out, in]
                     int64_t B, int64_t in, int64_t out, bool accumulate);

// c = op(a) @ op(b); op(a) is [M, K] (a is [K, M] when trans_a), op(b) is [K, N]
// (b is [N, K] when trans_b). K == 0 gives zeros.
void matmul(float* c,                    // [M, N]
            const float* a,              // [M, K] or [K, M]
            const float* b,              // [K, N] or [N, K]
            int64_t M, int64_t N, int64_t K, bool trans_a, bool trans_b);

}  // namespace alexnet::cpu
