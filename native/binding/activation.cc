// relu: reluForward(x) -> y, reluBackward(dy, y) -> dx
#include "common.h"

namespace alexnet::binding {

Napi::Value ReluForward(const Napi::CallbackInfo& info) {
  const Tensor x = tensor_arg(info, 0, "relu", "input");
  check_dtype("relu", "input", x, DType::Float32);
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  launch(x.device(), &Backend::relu_forward, y, x);
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
  launch(y.device(), &Backend::relu_backward, dx, dy, y);
  return wrap(info.Env(), dx);
}

}  // namespace alexnet::binding
