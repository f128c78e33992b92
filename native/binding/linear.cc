// Fully connected layer and matrix product (descriptors: native/core/ops/linear.h):
//   linearForward(x [B,in], weight [out,in], bias [out] | null, outDtype?, relu?) -> y [B,out]
//     (x and weight float32, or both bfloat16 with a float32 bias and y float32 or bfloat16)
//   linearBackward(gradOutput [B,out], x, weight, options) -> {gradInput, gradWeight, gradBias}
//     (bfloat16 x, weight and gradOutput: gradInput bfloat16, gradWeight and gradBias float32)
//   matmul(a, b, {transA, transB}) -> c
#include <optional>

#include "common.h"

namespace alexnet::binding {

Napi::Value LinearForward(const Napi::CallbackInfo& info) {
  const char* op = "linear";
  const Tensor x = tensor_arg(info, 0, op, "input");
  const Tensor w = tensor_arg(info, 1, op, "weight");
  const std::optional<Tensor> bias = optional_tensor_arg(info, 2, op, "bias");
  check_same_device(op, {{"input", &x}, {"weight", &w}, {"bias", bias ? &*bias : nullptr}});
  LinearParams p = linear_params(op, x, w, /*allow_bf16=*/true);
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    if (!info[4].IsBoolean()) fail(code::kArgument, op, ": expected relu to be a boolean");
    p.relu = info[4].As<Napi::Boolean>().Value();
  }
  const bool bf16 = x.dtype() == DType::BFloat16;
  DType out_dtype = DType::Float32;
  if (info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull()) {
    if (!info[3].IsString()) fail(code::kDtype, op, ": expected outDtype to be a string");
    out_dtype = parse_dtype(info[3].As<Napi::String>().Utf8Value());
    if (out_dtype == DType::Int32 || (!bf16 && out_dtype != DType::Float32))
      fail(code::kDtype, op, ": outDtype ", dtype_name(out_dtype), " is not available for ", dtype_name(x.dtype()),
           " inputs (float32 inputs give float32; bfloat16 inputs give float32 or bfloat16)");
  }
  if (bias) {
    // The bias is float32 in both cases: it is added to the float32 sum.
    check_dtype(op, "bias", *bias, DType::Float32);
    check_shape(op, "bias", *bias, Shape::of({p.out}));
  }
  Tensor y = Tensor::empty(p.output_shape(), out_dtype, x.device());
  const Tensor b = bias.value_or(Tensor());
  launch(x.device(), bf16 ? &Backend::linear_forward_bf16 : &Backend::linear_forward, y, x, w, b, p);
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
  const LinearParams p = linear_params(op, x, w, /*allow_bf16=*/true);
  const bool bf16 = x.dtype() == DType::BFloat16;
  // bfloat16 inputs take a bfloat16 gradOutput and give a bfloat16 gradInput; the weight and
  // bias gradients are float32 either way (they update float32 master weights).
  check_dtype(op, "gradOutput", dy, x.dtype());
  check_shape(op, "gradOutput", dy, p.output_shape());
  if (gw) {
    check_dtype(op, "gradWeight", *gw, DType::Float32);
    check_shape(op, "gradWeight", *gw, w.shape());
  }
  if (gb) {
    if (!need_db) fail(code::kArgument, op, ": gradBias was given but computeGradBias is false");
    check_dtype(op, "gradBias", *gb, DType::Float32);
    check_shape(op, "gradBias", *gb, Shape::of({p.out}));
  }
  if (accumulate && !gw)
    fail(code::kArgument, op, ": accumulate needs the gradWeight tensor to add into");
  if (accumulate && need_db && !gb)
    fail(code::kArgument, op, ": accumulate needs the gradBias tensor to add into (or computeGradBias: false)");
  check_outputs_do_not_alias(op, {{"gradWeight", gw ? &*gw : nullptr}, {"gradBias", gb ? &*gb : nullptr}},
                             {{"gradOutput", &dy}, {"input", &x}, {"weight", &w}});

  const Device dev = x.device();
  Tensor dx = need_dx ? Tensor::empty(x.shape(), x.dtype(), dev) : Tensor();
  Tensor dw = gw ? *gw : Tensor::empty(w.shape(), DType::Float32, dev);
  Tensor db = need_db ? (gb ? *gb : Tensor::empty(Shape::of({p.out}), DType::Float32, dev)) : Tensor();
  launch(dev, bf16 ? &Backend::linear_backward_bf16 : &Backend::linear_backward, dx, dw, db, dy, x, w, p, accumulate);
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
  const MatmulParams p = matmul_params(op, a, b, ta, tb);
  Tensor c = Tensor::empty(p.output_shape(), DType::Float32, a.device());
  launch(a.device(), &Backend::matmul, c, a, b, p);
  return wrap(info.Env(), c);
}

}  // namespace alexnet::binding
