#include "lrn.h"

#include <cmath>
#include <limits>
#include <utility>

#include "../check.h"

namespace alexnet {

void check_lrn_options(const char* op, int64_t size, double alpha, double beta, double k) {
  if (size < kLrnMinSize || size > kLrnMaxSize)
    fail(code::kArgument, op, ": size must be an integer in [", kLrnMinSize, ", ", kLrnMaxSize,
         "] (cuDNN's window limits, applied on every device) but got ", size);
  if (!std::isfinite(alpha) || alpha < 0)
    fail(code::kArgument, op, ": alpha must be non-negative and finite but got ", alpha);
  if (!std::isfinite(k) || k < kLrnMinK)
    fail(code::kArgument, op, ": k must be at least ", kLrnMinK,
         " (cuDNN's CUDNN_LRN_MIN_K, applied on every device) but got ", k);
  if (!std::isfinite(beta) || beta < kLrnMinBeta)
    fail(code::kArgument, op, ": beta must be at least ", kLrnMinBeta,
         " (cuDNN's CUDNN_LRN_MIN_BETA, applied on every device) but got ", beta);
}

void check_lrn_input(const char* op, const Tensor& x) {
  check_dtype(op, "input", x, DType::Float32);
  if (x.rank() != 4 && x.rank() != 3)
    fail(code::kShape, op,
         ": expected input of shape [N, C, H, W] or [N, C, L] (3 or 4 dimensions) but got shape ",
         x.shape().str());
}

void check_lrn_size(const char* op, int64_t size) {
  if (size < 1) fail(code::kArgument, op, ": size must be a positive integer but got ", size);
}

LrnParams lrn_params(const char* op, const Shape& x, int64_t size, double alpha, double beta, double k,
                     bool odd_size_only) {
  check_lrn_size(op, size);
  // The same limits on every device (cuDNN's), so what runs on the CPU runs on CUDA too.
  check_lrn_options(op, size, alpha, beta, k);
  // The kernels compute in float32: a value float32 cannot hold would become inf and turn
  // every output into 0 or NaN without a word.
  for (const auto& [name, v] : {std::pair<const char*, double>{"alpha", alpha}, {"beta", beta}, {"k", k}})
    if (v > std::numeric_limits<float>::max())
      fail(code::kArgument, op, ": ", name, " must be at most ", std::numeric_limits<float>::max(),
           " (float32's largest value) but got ", v);
  // The denominator D = k + alpha / size * sum x^2 is at least k, so D^-beta (forward) and
  // D^-(beta + 1) (backward) are at most k^-(beta + 1): if that overflows float32, a quiet
  // window gives inf, and the gradient inf * 0 = NaN.
  if (k < 1 && (beta + 1) * std::log(1 / k) >= std::log(static_cast<double>(std::numeric_limits<float>::max())))
    fail(code::kArgument, op, ": k = ", k, " with beta = ", beta,
         " overflows float32 (k^-(beta + 1) must stay below 3.4e38; raise k or lower beta)");
  if (odd_size_only && size % 2 == 0)
    fail(code::kArgument, op, ": size must be odd on CUDA but got ", size,
         " (cuDNN centres an even window one channel later than PyTorch; the CPU computes PyTorch's)");
  LrnParams p;
  p.N = x[0], p.C = x[1], p.S = x[2] * (x.rank == 4 ? x[3] : 1);
  p.size = size;
  p.alpha = static_cast<float>(alpha), p.beta = static_cast<float>(beta), p.k = static_cast<float>(k);
  return p;
}

}  // namespace alexnet
