// conv2d: conv2dForward(x, weight, bias | null, options) -> y (options.relu: fused max(y, 0))
//         conv2dBackward(gradOutput, x, weight, options) -> {gradInput, gradWeight, gradBias}
// x and weight float32, or both bfloat16 (mixed precision): then the bias is float32, y float32
// or (options.outDtype) bfloat16, and backward takes a bfloat16 gradOutput and gives a bfloat16
// gradInput with float32 gradWeight / gradBias.
// options.memoryFormat 'channels_last': x, y and their gradients are [N, H, W, C]-ordered; the
// weight and its gradient keep [O, C/groups, kH, kW] (docs/architecture.md, decision 14).
// Everything is validated here, synchronously (the descriptor: native/core/ops/conv.h); the
// backend's kernels run on the device queue.
#include "common.h"

namespace alexnet::binding {

namespace {

// Checks x and weight and reads stride / padding / dilation / groups. `op` names the caller.
Conv2dParams conv_params(const char* op, const Tensor& x, const Tensor& w, const Napi::Object& o) {
  check_conv2d_operands(op, x, w, /*allow_bf16=*/true);
  const auto stride = pair_opt(o, "stride", {1, 1}, op);
  const auto padding = pair_opt(o, "padding", {0, 0}, op);
  const auto dilation = pair_opt(o, "dilation", {1, 1}, op);
  const int64_t groups = int_opt(o, "groups", 1, op);
  return conv2d_params(op, x.shape(), w.shape(), stride, padding, dilation, groups, channels_last_opt(o, op));
}

}  // namespace

Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  const char* op = "conv2d";
  const Tensor x = tensor_arg(info, 0, op, "input");
  const Tensor w = tensor_arg(info, 1, op, "weight");
  const std::optional<Tensor> bias = optional_tensor_arg(info, 2, op, "bias");
  const Napi::Object o = options_arg(info, 3, op);
  const Conv2dParams s = conv_params(op, x, w, o);
  if (bias) {
    check_dtype(op, "bias", *bias, DType::Float32);
    check_same_device(op, {{"input", &x}, {"bias", &*bias}});
    check_shape(op, "bias", *bias, Shape::of({s.O}));
  }
  const bool relu = bool_opt(o, "relu", false, op);
  const bool bf16 = x.dtype() == DType::BFloat16;
  DType out_dtype = DType::Float32;
  if (o.Has("outDtype") && !o.Get("outDtype").IsUndefined() && !o.Get("outDtype").IsNull()) {
    out_dtype = parse_dtype(string_opt(o, "outDtype", "float32", op));
    if (out_dtype == DType::Int32 || (!bf16 && out_dtype != DType::Float32))
      fail(code::kDtype, op, ": outDtype ", dtype_name(out_dtype), " is not available for ", dtype_name(x.dtype()),
           " inputs (float32 inputs give float32; bfloat16 inputs give float32 or bfloat16)");
  }
  Tensor y = Tensor::empty(s.output_shape(), out_dtype, x.device());
  const Tensor b = bias ? *bias : Tensor();
  launch(x.device(), bf16 ? &Backend::conv2d_forward_bf16 : &Backend::conv2d_forward, y, x, w, b, s, relu);
  return wrap(info.Env(), y);
}

Napi::Value Conv2dBackward(const Napi::CallbackInfo& info) {
  const char* op = "conv2dBackward";
  Napi::Env env = info.Env();
  const Tensor dy = tensor_arg(info, 0, op, "gradOutput");
  const Tensor x = tensor_arg(info, 1, op, "input");
  const Tensor w = tensor_arg(info, 2, op, "weight");
  const Napi::Object o = options_arg(info, 3, op);
  const Conv2dParams s = conv_params(op, x, w, o);
  const bool bf16 = x.dtype() == DType::BFloat16;
  // bfloat16 inputs take a bfloat16 gradOutput and give a bfloat16 gradInput; the weight and
  // bias gradients are float32 either way (they update float32 master weights).
  check_dtype(op, "gradOutput", dy, x.dtype());
  check_same_device(op, {{"input", &x}, {"gradOutput", &dy}});
  check_shape(op, "gradOutput", dy, s.output_shape());

  const bool want_dx = bool_opt(o, "computeGradInput", true, op);
  const bool want_db = bool_opt(o, "computeGradBias", true, op);
  const bool accumulate = bool_opt(o, "accumulate", false, op);
  const std::optional<Tensor> gw_opt = optional_tensor_opt(o, "gradWeight", op);
  const std::optional<Tensor> gb_opt = optional_tensor_opt(o, "gradBias", op);
  if (gw_opt) {
    check_dtype(op, "gradWeight", *gw_opt, DType::Float32);
    check_same_device(op, {{"input", &x}, {"gradWeight", &*gw_opt}});
    check_shape(op, "gradWeight", *gw_opt, w.shape());
  }
  if (gb_opt) {
    if (!want_db)
      fail(code::kArgument, op, ": option 'gradBias' was given but computeGradBias is false");
    check_dtype(op, "gradBias", *gb_opt, DType::Float32);
    check_same_device(op, {{"input", &x}, {"gradBias", &*gb_opt}});
    check_shape(op, "gradBias", *gb_opt, Shape::of({s.O}));
  }
  check_outputs_do_not_alias(op,
                             {{"gradWeight", gw_opt ? &*gw_opt : nullptr},
                              {"gradBias", gb_opt ? &*gb_opt : nullptr}},
                             {{"gradOutput", &dy}, {"input", &x}, {"weight", &w}});
  if (accumulate && !gw_opt)
    fail(code::kArgument, op, ": accumulate: true needs the option 'gradWeight' to add into");
  if (accumulate && want_db && !gb_opt)
    fail(code::kArgument, op,
         ": accumulate: true needs the option 'gradBias' to add into (or computeGradBias: false)");

  const Tensor dw = gw_opt ? *gw_opt : Tensor::empty(w.shape(), DType::Float32, x.device());
  const Tensor db = !want_db ? Tensor()
                    : gb_opt ? *gb_opt
                             : Tensor::empty(Shape::of({s.O}), DType::Float32, x.device());
  const Tensor dx = want_dx ? Tensor::empty(x.shape(), x.dtype(), x.device()) : Tensor();
  launch(x.device(), bf16 ? &Backend::conv2d_backward_bf16 : &Backend::conv2d_backward, dx, dw, db, dy, x, w, s,
         accumulate);

  Napi::Object result = Napi::Object::New(env);
  result.Set("gradInput", want_dx ? wrap(env, dx) : env.Null());
  // Preallocated gradients come back as the very handles that were passed in.
  result.Set("gradWeight", gw_opt ? o.Get("gradWeight") : wrap(env, dw));
  result.Set("gradBias", !want_db ? env.Null() : gb_opt ? o.Get("gradBias") : wrap(env, db));
  return result;
}

}  // namespace alexnet::binding
