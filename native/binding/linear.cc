// Fully connected layer and matrix product:
//   linearForward(x [B,in], weight [out,in], bias [out] | null) -> y [B,out]
//   linearBackward(gradOutput [B,out], x, weight, options) -> {gradInput, gradWeight, gradBias}
//   matmul(a, b, {transA, transB}) -> c
#include <optional>

#include "../cpu/linear.h"
#include "common.h"
#include "register.h"

namespace alexnet::binding {

namespace {

// x [B,in] and weight [out,in], float32, same device.
void check_x_weight(const char* op, const Tensor& x, const Tensor& w) {
  check_dtype(op, "input", x, DType::Float32);
  check_dtype(op, "weight", w, DType::Float32);
  check_rank(op, "input", x, 2);
  check_rank(op, "weight", w, 2);
  if (x.size(1) != w.size(1))
    fail(code::kShape, op, ": input has ", x.size(1), " features but weight expects ", w.size(1),
         " (input ", x.shape().str(), ", weight ", w.shape().str(), ")");
}

Napi::Value LinearForward(const Napi::CallbackInfo& info) {
  const char* op = "linear";
  const Tensor x = tensor_arg(info, 0, op, "input");
  const Tensor w = tensor_arg(info, 1, op, "weight");
  const std::optional<Tensor> bias = optional_tensor_arg(info, 2, op, "bias");
  check_same_device(op, {{"input", &x}, {"weight", &w}, {"bias", bias ? &*bias : nullptr}});
  check_x_weight(op, x, w);
  const int64_t B = x.size(0), in = x.size(1), out = w.size(0);
  if (bias) {
    check_dtype(op, "bias", *bias, DType::Float32);
    check_shape(op, "bias", *bias, Shape::of({out}));
  }
  Tensor y = Tensor::empty(Shape::of({B, out}), DType::Float32, x.device());
  const Tensor b = bias.value_or(Tensor());
  enqueue(x.device(), [y, x, w, b, B, in, out] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(x.device()))
      return cuda::linear_forward(x.device().index, y.f32(), x.f32(), w.f32(), b.defined() ? b.f32() : nullptr, B, in, out);
#endif
    cpu::linear_forward(y.f32(), x.f32(), w.f32(), b.defined() ? b.f32() : nullptr, B, in, out);
  });
  return wrap(info.Env(), y);
}

Napi::Value LinearBackward(const Napi::CallbackInfo& info) {
  const char* op = "linearBackward";
  const Tensor dy = tensor_arg(info, 0, op, "gradOutput");
  const Tensor x = tensor_arg(info, 1, op, "input");
  const Tensor w = tensor_arg(info, 2, op, "weight");
  Napi::Object o = options_arg(info, 3, op);
  const bool need_dx = bool_opt(o, "computeGradInput", true, op);
  const bool need_db = bool_opt(o, "computeGradBias", true, op);
  const bool accumulate = bool_opt(o, "accumulate", false, op);
  std::optional<Tensor> gw = optional_tensor_opt(o, "gradWeight", op);
  std::optional<Tensor> gb = optional_tensor_opt(o, "gradBias", op);
  check_same_device(op, {{"gradOutput", &dy},
                         {"input", &x},
                         {"weight", &w},
                         {"gradWeight", gw ? &*gw : nullptr},
                         {"gradBias", gb ? &*gb : nullptr}});
  check_x_weight(op, x, w);
  const int64_t B = x.size(0), in = x.size(1), out = w.size(0);
  check_dtype(op, "gradOutput", dy, DType::Float32);
  check_shape(op, "gradOutput", dy, Shape::of({B, out}));
  if (gw) {
    check_dtype(op, "gradWeight", *gw, DType::Float32);
    check_shape(op, "gradWeight", *gw, w.shape());
  }
  if (gb) {
    if (!need_db) fail(code::kArgument, op, ": gradBias was given but computeGradBias is false");
    check_dtype(op, "gradBias", *gb, DType::Float32);
    check_shape(op, "gradBias", *gb, Shape::of({out}));
  }
  if (accumulate && !gw)
    fail(code::kArgument, op, ": accumulate needs the gradWeight tensor to add into");
  if (accumulate && need_db && !gb)
    fail(code::kArgument, op, ": accumulate needs the gradBias tensor to add into (or computeGradBias: false)");
  check_outputs_do_not_alias(op, {{"gradWeight", gw ? &*gw : nullptr}, {"gradBias", gb ? &*gb : nullptr}},
                             {{"gradOutput", &dy}, {"input", &x}, {"weight", &w}});

  const Device dev = x.device();
  Tensor dx = need_dx ? Tensor::empty(x.shape(), DType::Float32, dev) : Tensor();
  Tensor dw = gw ? *gw : Tensor::empty(w.shape(), DType::Float32, dev);
  Tensor db = need_db ? (gb ? *gb : Tensor::empty(Shape::of({out}), DType::Float32, dev)) : Tensor();
  enqueue(dev, [dev, dx, dw, db, dy, x, w, B, in, out, accumulate] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(dev))
      return cuda::linear_backward(dev.index, dx.defined() ? dx.f32() : nullptr, dw.f32(),
                                   db.defined() ? db.f32() : nullptr, dy.f32(), x.f32(), w.f32(), B, in, out,
                                   accumulate);
#endif
    cpu::linear_backward(dx.defined() ? dx.f32() : nullptr, dw.f32(),
                         db.defined() ? db.f32() : nullptr, dy.f32(), x.f32(), w.f32(), B, in, out,
                         accumulate);
  });
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("gradInput", dx.defined() ? wrap(env, dx) : env.Null());
  // A caller-provided gradWeight/gradBias comes back as a new handle on the same memory that
  // does not own (or account for) the storage.
  result.Set("gradWeight", TensorWrap::Wrap(env, dw, /*owns_storage=*/!gw));
  result.Set("gradBias",
             db.defined() ? Napi::Value(TensorWrap::Wrap(env, db, /*owns_storage=*/!gb)) : env.Null());
  return result;
}

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  const char* op = "matmul";
  const Tensor a = tensor_arg(info, 0, op, "a");
  const Tensor b = tensor_arg(info, 1, op, "b");
  Napi::Object o = options_arg(info, 2, op);
  const bool ta = bool_opt(o, "transA", false, op);
  const bool tb = bool_opt(o, "transB", false, op);
  check_same_device(op, {{"a", &a}, {"b", &b}});
  check_dtype(op, "a", a, DType::Float32);
  check_dtype(op, "b", b, DType::Float32);
  check_rank(op, "a", a, 2);
  check_rank(op, "b", b, 2);
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1);
  const int64_t K2 = tb ? b.size(1) : b.size(0), N = tb ? b.size(0) : b.size(1);
  if (K != K2)
    fail(code::kShape, op, ": op(a) is [", M, ", ", K, "] but op(b) is [", K2, ", ", N,
         "]: inner dimensions differ (a ", a.shape().str(), ta ? " transposed" : "", ", b ",
         b.shape().str(), tb ? " transposed" : "", ")");
  Tensor c = Tensor::empty(Shape::of({M, N}), DType::Float32, a.device());
  enqueue(a.device(), [c, a, b, M, N, K, ta, tb] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(a.device()))
      return cuda::gemm(a.device().index, ta, tb, M, N, K, 1.f, a.f32(), ta ? M : K, b.f32(), tb ? K : N, 0.f, c.f32(), N);
#endif
    cpu::matmul(c.f32(), a.f32(), b.f32(), M, N, K, ta, tb);
  });
  return wrap(info.Env(), c);
}

}  // namespace

void register_linear(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "linearForward", LinearForward);
  export_function(env, exports, "linearBackward", LinearBackward);
  export_function(env, exports, "matmul", Matmul);
}

}  // namespace alexnet::binding
