// localResponseNorm: lrnForward(x, {size, alpha?, beta?, k?}) -> y
//                    lrnBackward(gradOutput, x, output, options) -> gradInput
// PyTorch's LocalResponseNorm convention (alpha is divided by size); defaults alpha = 1e-4,
// beta = 0.75, k = 1. Input [N, C, H, W] or [N, C, L]. Limits, on every device (cuDNN's, see
// native/core/ops/lrn.h): size in [1, 16], k >= 1e-5, beta >= 0.01, alpha >= 0; on CUDA size
// odd. Empty inputs give empty outputs.
#include "common.h"

namespace alexnet::binding {

namespace {

LrnParams lrn_options(const char* op, const Tensor& x, const Napi::Object& o) {
  check_lrn_input(op, x);
  if (o.Get("size").IsUndefined()) fail(code::kArgument, op, ": expected option 'size' (a positive integer)");
  const int64_t size = int_opt(o, "size", 1, op);
  check_lrn_size(op, size);
  const double alpha = number_opt(o, "alpha", 1e-4, op);
  const double beta = number_opt(o, "beta", 0.75, op);
  const double k = number_opt(o, "k", 1.0, op);
  return lrn_params(op, x.shape(), size, alpha, beta, k, backend_for(x.device()).lrn_odd_size_only);
}

}  // namespace

Napi::Value LrnForward(const Napi::CallbackInfo& info) {
  const char* op = "localResponseNorm";
  const Tensor x = tensor_arg(info, 0, op, "input");
  const LrnParams p = lrn_options(op, x, options_arg(info, 1, op));
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  launch(x.device(), &Backend::lrn_forward, y, x, p);
  return wrap(info.Env(), y);
}

Napi::Value LrnBackward(const Napi::CallbackInfo& info) {
  const char* op = "localResponseNormBackward";
  const Tensor dy = tensor_arg(info, 0, op, "gradOutput");
  const Tensor x = tensor_arg(info, 1, op, "input");
  const Tensor y = tensor_arg(info, 2, op, "output");
  const LrnParams p = lrn_options(op, x, options_arg(info, 3, op));
  check_grad_and_output(op, x, dy, y, x.shape());
  Tensor dx = Tensor::empty(x.shape(), DType::Float32, x.device());
  launch(x.device(), &Backend::lrn_backward, dx, dy, x, y, p);
  return wrap(info.Env(), dx);
}

}  // namespace alexnet::binding
