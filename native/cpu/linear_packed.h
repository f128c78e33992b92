// The fully connected layer's forward product, y[M,N] = x[M,K] W[N,K]^T + bias (ReLU if
// asked), with W packed once into panels of 48 output features, [ceil(N/48)][K][48], and kept
// with W (the derived cache, tensor.h) while W is unchanged.
//
// Why: at batch 8-192 a general GEMM packs W into its own panels on every call (for fc6 that is
// a second pass over 151 MB and a write of as much), and the skinny kernel (gemm_skinny.h) reads
// the batch's rows from L2 for every group of four weight rows. Here each weight is read from
// memory once per call, in the order it is stored, and the batch's rows come from L1.
//
// The panels are made on the second call at one version of W, never on the first: inference
// and evaluation pay once for them, while a training loop, which writes W between its forward
// calls, keeps the unpacked kernels and never pays (DerivedCache::get's second_use).
#pragma once

#include <cstdint>

#include "../core/tensor.h"

namespace alexnet::cpu {

// Runs the product into y and returns true when this path serves it: a CPU with AVX-512 (under
// the cap of isa.h), kPackedMinRows <= M <= kPackedMaxRows, N and K large enough, and W's
// panels current. Returns false, having written nothing, otherwise (the caller runs sgemm).
bool linear_forward_packed(float* y,           // [M, N]
                           const float* x,     // [M, K]
                           const Tensor& w,    // [N, K] (float32, read through cf32)
                           const float* bias,  // [N] or nullptr
                           int64_t M, int64_t K, int64_t N, bool relu);

// Measured on fc6 and fc7 (bench/linear-packed.mjs): below 8 rows the weight stream alone
// decides and the skinny kernel keeps up with memory; past about 200 the partial sums of every
// row, kept in C between blocks of k, cost more than a general GEMM's packing saves.
constexpr int64_t kPackedMinRows = 8;
constexpr int64_t kPackedMaxRows = 192;

}  // namespace alexnet::cpu
