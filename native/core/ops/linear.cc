#include "linear.h"

#include "../check.h"

namespace alexnet {

LinearParams linear_params(const char* op, const Tensor& x, const Tensor& w, bool allow_bf16) {
  if (allow_bf16 && (x.dtype() == DType::BFloat16 || w.dtype() == DType::BFloat16)) {
    if (x.dtype() != w.dtype())
      fail(code::kDtype, op, ": input is ", dtype_name(x.dtype()), " but weight is ", dtype_name(w.dtype()),
           " (a bfloat16 product needs both in bfloat16: convert the other with toDtype)");
  } else {
    check_dtype(op, "input", x, DType::Float32);
    check_dtype(op, "weight", w, DType::Float32);
  }
  check_rank(op, "input", x, 2);
  check_rank(op, "weight", w, 2);
  if (x.size(1) != w.size(1))
    fail(code::kShape, op, ": input has ", x.size(1), " features but weight expects ", w.size(1),
         " (input ", x.shape().str(), ", weight ", w.shape().str(), ")");
  return LinearParams{x.size(0), x.size(1), w.size(0)};
}

MatmulParams matmul_params(const char* op, const Tensor& a, const Tensor& b, bool ta, bool tb) {
  check_same_device(op, {{"a", &a}, {"b", &b}});
  check_dtype(op, "a", a, DType::Float32);
  check_dtype(op, "b", b, DType::Float32);
  check_rank(op, "a", a, 2);
  check_rank(op, "b", b, 2);
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1);
  const int64_t K2 = tb ? b.size(1) : b.size(0), N = tb ? b.size(0) : b.size(1);
  if (K != K2)
    fail(code::kShape, op, ": op(a) is [", M, ", ", K, "] but op(b) is [", K2, ", ", N,
         "]: inner dimensions differ (a ", a.shape().str(), ta ? " transposed" : "", ", b ",
         b.shape().str(), tb ? " transposed" : "", ")");
  return MatmulParams{M, N, K, ta, tb};
}

}  // namespace alexnet
