#include "conv.h"

#include "../check.h"

namespace alexnet {

int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  const int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  if (span < 0) return 0;
  return span / stride + 1;
}

void check_conv2d_operands(const char* op, const Tensor& x, const Tensor& w, bool allow_bf16) {
  if (allow_bf16 && (x.dtype() == DType::BFloat16 || w.dtype() == DType::BFloat16)) {
    if (x.dtype() != w.dtype())
      fail(code::kDtype, op, ": input is ", dtype_name(x.dtype()), " but weight is ", dtype_name(w.dtype()),
           " (a bfloat16 convolution needs both in bfloat16: convert the other with toDtype)");
  } else {
    check_dtype(op, "input", x, DType::Float32);
    check_dtype(op, "weight", w, DType::Float32);
  }
  check_same_device(op, {{"input", &x}, {"weight", &w}});
  if (x.rank() != 4)
    fail(code::kShape, op, ": expected input of shape [N, C, H, W] (4 dimensions) but got shape ",
         x.shape().str());
  if (w.rank() != 4)
    fail(code::kShape, op,
         ": expected weight of shape [outChannels, inChannels/groups, kH, kW] (4 dimensions) but "
         "got shape ",
         w.shape().str());
}

Conv2dParams conv2d_params(const char* op, const Shape& x, const Shape& w, std::array<int64_t, 2> stride,
                           std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation, int64_t groups,
                           bool channels_last) {
  if (stride[0] < 1 || stride[1] < 1)
    fail(code::kArgument, op, ": stride must be positive but got [", stride[0], ", ", stride[1], "]");
  if (padding[0] < 0 || padding[1] < 0)
    fail(code::kArgument, op, ": padding must be non-negative but got [", padding[0], ", ",
         padding[1], "]");
  if (dilation[0] < 1 || dilation[1] < 1)
    fail(code::kArgument, op, ": dilation must be positive but got [", dilation[0], ", ",
         dilation[1], "]");
  if (groups < 1) fail(code::kArgument, op, ": groups must be a positive integer but got ", groups);

  Conv2dParams s;
  s.channels_last = channels_last;
  if (channels_last) s.N = x[0], s.H = x[1], s.W = x[2], s.C = x[3];
  else s.N = x[0], s.C = x[1], s.H = x[2], s.W = x[3];
  s.O = w[0], s.kH = w[2], s.kW = w[3];
  s.sH = stride[0], s.sW = stride[1], s.pH = padding[0], s.pW = padding[1];
  s.dH = dilation[0], s.dW = dilation[1], s.groups = groups;

  if (s.C == 0 || s.H == 0 || s.W == 0)
    fail(code::kShape, op, ": expected input with non-zero channels, height and width but got shape ",
         x.str());
  if (s.O == 0 || w[1] == 0 || s.kH == 0 || s.kW == 0)
    fail(code::kShape, op, ": expected a non-empty weight but got shape ", w.str());
  if (s.C % groups != 0)
    fail(code::kShape, op, ": groups=", groups, " must divide the input channels but input has ",
         s.C, " channels");
  if (s.O % groups != 0)
    fail(code::kShape, op, ": groups=", groups,
         " must divide the output channels but weight has ", s.O, " output channels");
  if (w[1] * groups != s.C)
    fail(code::kShape, op, ": input has ", s.C, " channels but weight expects ", w[1] * groups,
         groups > 1 ? " (weight.shape[1] * groups)" : "");

  s.Ho = conv_out_size(s.H, s.kH, s.sH, s.pH, s.dH);
  s.Wo = conv_out_size(s.W, s.kW, s.sW, s.pW, s.dW);
  if (s.Ho <= 0 || s.Wo <= 0)
    fail(code::kShape, op, ": kernel size ", s.dH * (s.kH - 1) + 1, "x", s.dW * (s.kW - 1) + 1,
         s.dH > 1 || s.dW > 1 ? " (dilated)" : "", " is larger than the padded input ",
         s.H + 2 * s.pH, "x", s.W + 2 * s.pW);
  return s;
}

}  // namespace alexnet
