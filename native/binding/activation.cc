// relu: reluForward(x) -> y, reluBackward(dy, y) -> dx; float32 or bfloat16 (every tensor of a
// call the same dtype; the bfloat16 path is exact, like the float32 one)
#include "common.h"

namespace alexnet::binding {

namespace {

// float32 or bfloat16, else ERR_DTYPE naming the operator
DType activation_dtype(const char* op, const char* name, const Tensor& t) {
  if (t.dtype() != DType::Float32 && t.dtype() != DType::BFloat16)
    fail(code::kDtype, op, ": expected ", name, " to be float32 or bfloat16 but got ", dtype_name(t.dtype()));
  return t.dtype();
}

}  // namespace

Napi::Value ReluForward(const Napi::CallbackInfo& info) {
  const Tensor x = tensor_arg(info, 0, "relu", "input");
  const DType dt = activation_dtype("relu", "input", x);
  Tensor y = Tensor::empty(x.shape(), dt, x.device());
  launch(x.device(), dt == DType::BFloat16 ? &Backend::relu_forward_bf16 : &Backend::relu_forward, y, x);
  return wrap(info.Env(), y);
}

Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  const Tensor dy = tensor_arg(info, 0, "reluBackward", "gradOutput");
  const Tensor y = tensor_arg(info, 1, "reluBackward", "output");
  const DType dt = activation_dtype("reluBackward", "output", y);
  check_dtype("reluBackward", "gradOutput", dy, dt);
  check_same_device("reluBackward", {{"gradOutput", &dy}, {"output", &y}});
  check_shape("reluBackward", "gradOutput", dy, y.shape());
  Tensor dx = Tensor::empty(y.shape(), dt, y.device());
  launch(y.device(), dt == DType::BFloat16 ? &Backend::relu_backward_bf16 : &Backend::relu_backward, dx, dy, y);
  return wrap(info.Env(), dx);
}

}  // namespace alexnet::binding
