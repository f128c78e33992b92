// maxPool2d: maxPool2dForward(x, {kernelSize, stride?, padding?}) -> y
//            maxPool2dBackward(gradOutput, x, output, options) -> gradInput
// Backward gives each window's gradient to one input: its maximum. Ties: exactly one of the
// tied inputs receives it, so the total is conserved; the CPU takes the first in row-major
// window order (PyTorch's rule), CUDA takes cuDNN's choice (MAX_DETERMINISTIC: the same every
// run, but not documented to be the first). Without ties both backends agree. An empty batch
// or channel count gives empty outputs. The descriptor: native/core/ops/pool.h.
// options.memoryFormat 'channels_last': every tensor [N, H, W, C]-ordered (decision 14).
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
  return pool2d_params(op, x.shape(), k, stride, padding, channels_last_opt(o, op));
}

Shape pool_output_shape(const Tensor&, const Pool2dParams& s) { return s.output_shape(); }

}  // namespace

// bfloat16: every tensor of the call bfloat16 (our kernels on both backends, the same rules).
Napi::Value MaxPool2dForward(const Napi::CallbackInfo& info) {
  const char* op = "maxPool2d";
  const Tensor x = tensor_arg(info, 0, op, "input");
  if (x.dtype() != DType::BFloat16)
    return forward_with_options(info, op, pool_params, pool_output_shape, &Backend::max_pool2d_forward);
  const Pool2dParams p = pool_params(op, x, options_arg(info, 1, op));
  Tensor y = Tensor::empty(p.output_shape(), DType::BFloat16, x.device());
  launch(x.device(), &Backend::max_pool2d_forward_bf16, y, x, p);
  return wrap(info.Env(), y);
}

Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  const char* op = "maxPool2dBackward";
  const Tensor x = tensor_arg(info, 1, op, "input");
  if (x.dtype() != DType::BFloat16)
    return backward_with_options(info, op, pool_params, pool_output_shape, &Backend::max_pool2d_backward);
  const Tensor dy = tensor_arg(info, 0, op, "gradOutput");
  const Tensor y = tensor_arg(info, 2, op, "output");
  const Pool2dParams p = pool_params(op, x, options_arg(info, 3, op));
  check_dtype(op, "gradOutput", dy, DType::BFloat16);
  check_dtype(op, "output", y, DType::BFloat16);
  check_same_device(op, {{"input", &x}, {"gradOutput", &dy}, {"output", &y}});
  check_shape(op, "gradOutput", dy, p.output_shape());
  check_shape(op, "output", y, p.output_shape());
  Tensor dx = Tensor::empty(x.shape(), DType::BFloat16, x.device());
  launch(x.device(), &Backend::max_pool2d_backward_bf16, dx, dy, x, y, p);
  return wrap(info.Env(), dx);
}

}  // namespace alexnet::binding
