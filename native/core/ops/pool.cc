#include "pool.h"

#include "../check.h"

namespace alexnet {

int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad) {
  const int64_t span = in + 2 * pad - k;
  if (span < 0) return 0;
  return span / stride + 1;
}

void check_pool2d_input(const char* op, const Tensor& x) {
  if (x.dtype() != DType::Float32 && x.dtype() != DType::BFloat16)
    fail(code::kDtype, op, ": expected input to be float32 or bfloat16 but got ", dtype_name(x.dtype()));
  if (x.rank() != 4)
    fail(code::kShape, op, ": expected input of shape [N, C, H, W] (4 dimensions) but got shape ",
         x.shape().str());
}

Pool2dParams pool2d_params(const char* op, const Shape& x, std::array<int64_t, 2> k,
                           std::array<int64_t, 2> stride, std::array<int64_t, 2> padding, bool channels_last) {
  if (k[0] < 1 || k[1] < 1)
    fail(code::kArgument, op, ": kernelSize must be positive but got [", k[0], ", ", k[1], "]");
  if (stride[0] < 1 || stride[1] < 1)
    fail(code::kArgument, op, ": stride must be positive but got [", stride[0], ", ", stride[1], "]");
  if (padding[0] < 0 || padding[1] < 0)
    fail(code::kArgument, op, ": padding must be non-negative but got [", padding[0], ", ",
         padding[1], "]");
  if (padding[0] > k[0] / 2 || padding[1] > k[1] / 2)
    fail(code::kArgument, op, ": padding should be at most half of the kernel size but got padding [",
         padding[0], ", ", padding[1], "] for kernelSize [", k[0], ", ", k[1], "]");
  Pool2dParams s;
  s.channels_last = channels_last;
  if (channels_last) s.N = x[0], s.H = x[1], s.W = x[2], s.C = x[3];
  else s.N = x[0], s.C = x[1], s.H = x[2], s.W = x[3];
  s.kH = k[0], s.kW = k[1], s.sH = stride[0], s.sW = stride[1], s.pH = padding[0], s.pW = padding[1];
  if (s.H == 0 || s.W == 0)
    fail(code::kShape, op, ": expected input with non-zero height and width but got shape ", x.str());
  s.Ho = pool_out_size(s.H, s.kH, s.sH, s.pH);
  s.Wo = pool_out_size(s.W, s.kW, s.sW, s.pW);
  if (s.Ho <= 0 || s.Wo <= 0)
    fail(code::kShape, op, ": kernel size ", s.kH, "x", s.kW, " is larger than the padded input ",
         s.H + 2 * s.pH, "x", s.W + 2 * s.pW);
  return s;
}

}  // namespace alexnet
