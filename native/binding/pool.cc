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

}  // namespace

Napi::Value MaxPool2dForward(const Napi::CallbackInfo& info) {
  const char* op = "maxPool2d";
  const Tensor x = tensor_arg(info, 0, op, "input");
  const Pool2dParams s = pool_params(op, x, options_arg(info, 1, op));
  Tensor y = Tensor::empty(s.output_shape(), DType::Float32, x.device());
  launch(x.device(), &Backend::max_pool2d_forward, y, x, s);
  return wrap(info.Env(), y);
}

Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  const char* op = "maxPool2dBackward";
  const Tensor dy = tensor_arg(info, 0, op, "gradOutput");
  const Tensor x = tensor_arg(info, 1, op, "input");
  const Tensor y = tensor_arg(info, 2, op, "output");
  const Pool2dParams s = pool_params(op, x, options_arg(info, 3, op));
  check_grad_and_output(op, x, dy, y, s.output_shape());
  Tensor dx = Tensor::empty(x.shape(), DType::Float32, x.device());
  launch(x.device(), &Backend::max_pool2d_backward, dx, dy, x, y, s);
  return wrap(info.Env(), dx);
}

}  // namespace alexnet::binding
