// Inverted dropout (the random stream is documented in native/cpu/dropout.h):
//   dropoutForward(x, {p, seed, offset = 0}) -> {output, mask}
//   dropoutBackward(gradOutput, mask) -> gradInput
#include <cmath>

#include "../cpu/dropout.h"
#include "common.h"
#include "register.h"

namespace alexnet::binding {

namespace {

constexpr double kTwo53 = 9007199254740992.0;

// A required number option.
double required_number(const Napi::Object& o, const char* key, const char* op) {
  if (o.Get(key).IsUndefined()) fail(code::kArgument, op, ": option '", key, "' is required");
  return number_opt(o, key, 0.0, op);  // checks type and finiteness
}

// An integer option in [0, 2^53).
uint64_t counter_opt(const Napi::Object& o, const char* key, bool required, const char* op) {
  if (!required && o.Get(key).IsUndefined()) return 0;
  const double v = required_number(o, key, op);
  if (v != std::floor(v) || v < 0 || v >= kTwo53)
    fail(code::kArgument, op, ": option '", key, "' must be an integer in [0, 2^53) but got ", v);
  return static_cast<uint64_t>(v);
}

Napi::Value DropoutForward(const Napi::CallbackInfo& info) {
  const char* op = "dropout";
  const Tensor x = tensor_arg(info, 0, op, "input");
  if (info.Length() < 2 || info[1].IsUndefined())
    fail(code::kArgument, op, ": expected options {p, seed} as the second argument");
  Napi::Object o = options_arg(info, 1, op);
  check_dtype(op, "input", x, DType::Float32);
  const double p = required_number(o, "p", op);
  if (!(p >= 0.0 && p < 1.0))
    fail(code::kArgument, op, ": p must be in [0, 1) but got ", p);
  const uint64_t seed = counter_opt(o, "seed", true, op);
  const uint64_t offset = counter_opt(o, "offset", false, op);
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  Tensor mask = Tensor::empty(x.shape(), DType::Float32, x.device());
  enqueue(x.device(), [y, mask, x, p, seed, offset] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(x.device()))
      return cuda::dropout_forward(y.f32(), mask.f32(), x.f32(), x.numel(), cpu::dropout_threshold(p),
                                   cpu::dropout_scale(p), seed, offset, cuda::stream(x.device().index));
#endif
    cpu::dropout_forward(y.f32(), mask.f32(), x.f32(), x.numel(), p, seed, offset);
  });
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("output", wrap(env, y));
  result.Set("mask", wrap(env, mask));
  return result;
}

Napi::Value DropoutBackward(const Napi::CallbackInfo& info) {
  const char* op = "dropoutBackward";
  const Tensor dy = tensor_arg(info, 0, op, "gradOutput");
  const Tensor mask = tensor_arg(info, 1, op, "mask");
  check_same_device(op, {{"gradOutput", &dy}, {"mask", &mask}});
  check_dtype(op, "gradOutput", dy, DType::Float32);
  check_dtype(op, "mask", mask, DType::Float32);
  check_shape(op, "gradOutput", dy, mask.shape());
  Tensor dx = Tensor::empty(dy.shape(), DType::Float32, dy.device());
  enqueue(dy.device(), [dx, dy, mask] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(dy.device()))
      return cuda::dropout_backward(dx.f32(), dy.f32(), mask.f32(), dy.numel(), cuda::stream(dy.device().index));
#endif
    cpu::dropout_backward(dx.f32(), dy.f32(), mask.f32(), dy.numel());
  });
  return wrap(info.Env(), dx);
}

}  // namespace

void register_dropout(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "dropoutForward", DropoutForward);
  export_function(env, exports, "dropoutBackward", DropoutBackward);
}

}  // namespace alexnet::binding
