// Inverted dropout (the random stream is documented in native/core/rng.h, the descriptor in
// native/core/ops/dropout.h):
//   dropoutForward(x, {p, seed, offset = 0, relu = false, advance = 0}, counter?) -> {output, mask}
//   dropoutBackward(gradOutput, mask) -> gradInput
// input float32 or bfloat16: output and gradInput take its dtype, the mask is float32 either way
// (the same mask for the same seed and offset). counter: int32 [2] on x's device holding the
// stream position's uint64 bits, read when the draw runs (element i at counter + offset + i) and
// advanced by `advance` after it, in queue order (so a captured CUDA graph draws a fresh mask at
// each replay); `advance` needs a counter. relu: the fused ReLU + dropout (its mask is also 0 where
// x <= 0, so dropoutBackward gives the gradient of both).
#include <cmath>

#include "common.h"

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

}  // namespace

Napi::Value DropoutForward(const Napi::CallbackInfo& info) {
  const char* op = "dropout";
  const Tensor x = tensor_arg(info, 0, op, "input");
  if (info.Length() < 2 || info[1].IsUndefined())
    fail(code::kArgument, op, ": expected options {p, seed} as the second argument");
  Napi::Object o = options_arg(info, 1, op);
  if (x.dtype() != DType::Float32 && x.dtype() != DType::BFloat16)
    fail(code::kDtype, op, ": expected input to be float32 or bfloat16 but got ", dtype_name(x.dtype()));
  const bool bf16 = x.dtype() == DType::BFloat16;
  DropoutParams params = dropout_params(op, required_number(o, "p", op));
  params.seed = counter_opt(o, "seed", true, op);
  params.offset = counter_opt(o, "offset", false, op);
  params.advance = counter_opt(o, "advance", false, op);
  params.relu = bool_opt(o, "relu", false, op);
  const std::optional<Tensor> counter = optional_tensor_arg(info, 2, op, "counter");
  if (counter) {
    check_same_device(op, {{"input", &x}, {"counter", &*counter}});
    check_dtype(op, "counter", *counter, DType::Int32);
    check_shape(op, "counter", *counter, Shape::of({2}));
  } else if (params.advance != 0) {
    fail(code::kArgument, op, ": option 'advance' needs a counter tensor (the third argument)");
  }
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mask = Tensor::empty(x.shape(), DType::Float32, x.device());
  launch(x.device(), bf16 ? &Backend::dropout_forward_bf16 : &Backend::dropout_forward, y, mask, x,
         counter ? *counter : Tensor(), params);
  return wrap_object(info.Env(), {{"output", y}, {"mask", mask}});
}

Napi::Value DropoutBackward(const Napi::CallbackInfo& info) {
  const char* op = "dropoutBackward";
  const Tensor dy = tensor_arg(info, 0, op, "gradOutput");
  const Tensor mask = tensor_arg(info, 1, op, "mask");
  check_same_device(op, {{"gradOutput", &dy}, {"mask", &mask}});
  if (dy.dtype() != DType::Float32 && dy.dtype() != DType::BFloat16)
    fail(code::kDtype, op, ": expected gradOutput to be float32 or bfloat16 but got ", dtype_name(dy.dtype()));
  check_dtype(op, "mask", mask, DType::Float32);
  check_shape(op, "gradOutput", dy, mask.shape());
  const bool bf16 = dy.dtype() == DType::BFloat16;
  Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
  launch(dy.device(), bf16 ? &Backend::dropout_backward_bf16 : &Backend::dropout_backward, dx, dy, mask);
  return wrap(info.Env(), dx);
}

}  // namespace alexnet::binding
