// relu: reluForward(x) -> y, reluBackward(dy, y) -> dx
#include "../cpu/activation.h"
#include "common.h"
#include "register.h"

namespace alexnet::binding {

namespace {

Napi::Value ReluForward(const Napi::CallbackInfo& info) {
  const Tensor x = tensor_arg(info, 0, "relu", "input");
  check_dtype("relu", "input", x, DType::Float32);
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  enqueue(x.device(), [x, y] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(x.device()))
      return cuda::relu_forward(y.f32(), x.f32(), x.numel(), cuda::stream(x.device().index));
#endif
    cpu::relu_forward(y.f32(), x.f32(), x.numel());
  });
  return wrap(info.Env(), y);
}

Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  const Tensor dy = tensor_arg(info, 0, "reluBackward", "gradOutput");
  const Tensor y = tensor_arg(info, 1, "reluBackward", "output");
  check_dtype("reluBackward", "gradOutput", dy, DType::Float32);
  check_dtype("reluBackward", "output", y, DType::Float32);
  check_same_device("reluBackward", {{"gradOutput", &dy}, {"output", &y}});
  check_shape("reluBackward", "gradOutput", dy, y.shape());
  Tensor dx = Tensor::empty(y.shape(), DType::Float32, y.device());
  enqueue(y.device(), [dx, dy, y] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(y.device()))
      return cuda::relu_backward(dx.f32(), dy.f32(), y.f32(), y.numel(), cuda::stream(y.device().index));
#endif
    cpu::relu_backward(dx.f32(), dy.f32(), y.f32(), y.numel());
  });
  return wrap(info.Env(), dx);
}

}  // namespace

void register_activation(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "reluForward", ReluForward);
  export_function(env, exports, "reluBackward", ReluBackward);
}

}  // namespace alexnet::binding
