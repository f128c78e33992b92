// maxPool2d: maxPool2dForward(x, {kernelSize, stride?, padding?}) -> y
//            maxPool2dBackward(gradOutput, x, output, options) -> gradInput
// Backward gives each window's gradient to one input: its maximum. Ties: exactly one of the
// tied inputs receives it, so the total is conserved; the CPU takes the first in row-major
// window order (PyTorch's rule), CUDA takes cuDNN's choice (MAX_DETERMINISTIC: the same every
// run, but not documented to be the first). Without ties both backends agree. An empty batch
// or channel count gives empty outputs.
#include "../cpu/pool.h"
#include "common.h"
#include "register.h"

namespace alexnet::binding {

namespace {

cpu::Pool2dShape pool_shape(const char* op, const Tensor& x, const Napi::Object& o) {
  check_dtype(op, "input", x, DType::Float32);
  if (x.rank() != 4)
    fail(code::kShape, op, ": expected input of shape [N, C, H, W] (4 dimensions) but got shape ",
         x.shape().str());
  if (o.Get("kernelSize").IsUndefined())
    fail(code::kArgument, op, ": expected option 'kernelSize' (an integer or a pair of integers)");
  const auto k = pair_opt(o, "kernelSize", {1, 1}, op);
  const auto stride = pair_opt(o, "stride", k, op);
  const auto padding = pair_opt(o, "padding", {0, 0}, op);
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
  cpu::Pool2dShape s;
  s.N = x.size(0), s.C = x.size(1), s.H = x.size(2), s.W = x.size(3);
  s.kH = k[0], s.kW = k[1], s.sH = stride[0], s.sW = stride[1], s.pH = padding[0], s.pW = padding[1];
  if (s.H == 0 || s.W == 0)
    fail(code::kShape, op, ": expected input with non-zero height and width but got shape ",
         x.shape().str());
  s.Ho = cpu::pool_out_size(s.H, s.kH, s.sH, s.pH);
  s.Wo = cpu::pool_out_size(s.W, s.kW, s.sW, s.pW);
  if (s.Ho <= 0 || s.Wo <= 0)
    fail(code::kShape, op, ": kernel size ", s.kH, "x", s.kW, " is larger than the padded input ",
         s.H + 2 * s.pH, "x", s.W + 2 * s.pW);
  return s;
}

Shape output_shape(const cpu::Pool2dShape& s) { return Shape::of({s.N, s.C, s.Ho, s.Wo}); }

#ifdef ALEXNET_WITH_CUDA
cuda::PoolGeometry cuda_geometry(const cpu::Pool2dShape& s) {
  return cuda::PoolGeometry{s.N, s.C, s.H, s.W, s.kH, s.kW, s.sH, s.sW, s.pH, s.pW, s.Ho, s.Wo};
}
#endif

Napi::Value MaxPool2dForward(const Napi::CallbackInfo& info) {
  const char* op = "maxPool2d";
  const Tensor x = tensor_arg(info, 0, op, "input");
  const cpu::Pool2dShape s = pool_shape(op, x, options_arg(info, 1, op));
  Tensor y = Tensor::empty(output_shape(s), DType::Float32, x.device());
  enqueue(x.device(), [y, x, s] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(x.device()))
      return cuda::maxpool2d_forward(x.device().index, y.f32(), x.f32(), cuda_geometry(s));
#endif
    cpu::max_pool2d_forward(y.f32(), x.f32(), s);
  });
  return wrap(info.Env(), y);
}

Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  const char* op = "maxPool2dBackward";
  const Tensor dy = tensor_arg(info, 0, op, "gradOutput");
  const Tensor x = tensor_arg(info, 1, op, "input");
  const Tensor y = tensor_arg(info, 2, op, "output");
  const cpu::Pool2dShape s = pool_shape(op, x, options_arg(info, 3, op));
  check_grad_and_output(op, x, dy, y, output_shape(s));
  Tensor dx = Tensor::empty(x.shape(), DType::Float32, x.device());
  enqueue(x.device(), [dx, dy, x, y, s] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(x.device()))
      return cuda::maxpool2d_backward(x.device().index, dx.f32(), dy.f32(), x.f32(), y.f32(),
                                      cuda_geometry(s));
#endif
    cpu::max_pool2d_backward(dx.f32(), dy.f32(), x.f32(), s);
  });
  return wrap(info.Env(), dx);
}

}  // namespace

void register_pool(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "maxPool2dForward", MaxPool2dForward);
  export_function(env, exports, "maxPool2dBackward", MaxPool2dBackward);
}

}  // namespace alexnet::binding
