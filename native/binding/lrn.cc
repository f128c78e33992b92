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

// LRN keeps the input's shape.
Shape lrn_output_shape(const Tensor& x, const LrnParams&) { return x.shape(); }

}  // namespace

Napi::Value LrnForward(const Napi::CallbackInfo& info) {
  return forward_with_options(info, "localResponseNorm", lrn_options, lrn_output_shape, &Backend::lrn_forward);
}

Napi::Value LrnBackward(const Napi::CallbackInfo& info) {
  return backward_with_options(info, "localResponseNormBackward", lrn_options, lrn_output_shape,
                               &Backend::lrn_backward);
}

}  // namespace alexnet::binding
