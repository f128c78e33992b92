// maxPool2d: maxPool2dForward(x, {kernelSize, stride?, padding?}) -> y
//            maxPool2dBackward(gradOutput, x, output, options) -> gradInput
// Backward gives each window's gradient to one input: its maximum. Ties: exactly one of the
// tied inputs receives it, so the total is conserved; the CPU takes the first in row-major
// window order (PyTorch's rule), CUDA takes cuDNN's choice (MAX_DETERMINISTIC: the same every
// run, but not documented to be the first). Without ties both backends agree. An empty batch
// or channel count gives empty outputs. The descriptor: native/core/ops/pool.h.
#include "common.h"

namespace alexnet::binding {

namespace {

Pool2dParams pool_params(const char* op, const Tensor& x, const Napi::Object& o) {
  check_pool2d_input(op, x);
  if (o.Get("kernelSize").IsUndefined())
    fail(code::kArgument, op, ": expected option 'kernelSize' (an integer or a pair of integers)");
  const auto k = pair_opt(o, "kernelSize", {1, 1}, op);
  const auto stride = pair_opt(o, "stride", k, op);
  const auto padding = pair_opt(o, "padding", {0, 0}, op);
  return pool2d_params(op, x.shape(), k, stride, padding);
}

Shape pool_output_shape(const Tensor&, const Pool2dParams& s) { return s.output_shape(); }

}  // namespace

Napi::Value MaxPool2dForward(const Napi::CallbackInfo& info) {
  return forward_with_options(info, "maxPool2d", pool_params, pool_output_shape, &Backend::max_pool2d_forward);
}

Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  return backward_with_options(info, "maxPool2dBackward", pool_params, pool_output_shape,
                               &Backend::max_pool2d_backward);
}

}  // namespace alexnet::binding
