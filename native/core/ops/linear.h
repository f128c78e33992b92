// The fully connected layer's and the matrix product's descriptors (PyTorch's layout: weight is
// [out, in], y = x W^T + b), validated once here and taken as is by every backend
// (native/cpu/linear.h, native/cuda/dnn.h) and by the benchmarks.
#pragma once

#include <cstdint>

#include "../tensor.h"

namespace alexnet {

struct LinearParams {
  int64_t B = 0, in = 0, out = 0;  // x [B, in], weight [out, in], y [B, out]
  bool relu = false;  // y = max(x W^T + b, 0) in the same pass (NaN kept, as relu does)
  Shape output_shape() const { return Shape::of({B, out}); }
};

// x [B, in] and weight [out, in], float32 (or, with allow_bf16, both bfloat16; the caller
// checks that they share a device: its message lists every tensor of the call). Throws
// ERR_DTYPE / ERR_SHAPE naming `op`.
LinearParams linear_params(const char* op, const Tensor& x, const Tensor& w, bool allow_bf16 = false);

// c [M, N] = op(a) @ op(b), op(a) [M, K] (a is [K, M] when trans_a), op(b) [K, N] (b is
// [N, K] when trans_b).
struct MatmulParams {
  int64_t M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = false;
  Shape output_shape() const { return Shape::of({M, N}); }
};

// a and b float32 matrices on one device whose inner dimensions agree. Throws ERR_DEVICE /
// ERR_DTYPE / ERR_SHAPE naming `op`.
MatmulParams matmul_params(const char* op, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);

}  // namespace alexnet
