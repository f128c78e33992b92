// conv2d: conv2dForward(x, weight, bias | null, options) -> y (options.relu: fused max(y, 0))
//         conv2dBackward(gradOutput, x, weight, options) -> {gradInput, gradWeight, gradBias}
// Everything is validated here, synchronously; the kernels run on the device queue.
#include "../cpu/conv.h"
#include "common.h"
#include "register.h"

namespace alexnet::binding {

namespace {

// Checks x and weight and reads stride / padding / dilation / groups. `op` names the caller.
cpu::Conv2dShape conv_shape(const char* op, const Tensor& x, const Tensor& w,
                            const Napi::Object& o) {
  check_dtype(op, "input", x, DType::Float32);
  check_dtype(op, "weight", w, DType::Float32);
  check_same_device(op, {{"input", &x}, {"weight", &w}});
  if (x.rank() != 4)
    fail(code::kShape, op, ": expected input of shape [N, C, H, W] (4 dimensions) but got shape ",
         x.shape().str());
  if (w.rank() != 4)
    fail(code::kShape, op,
         ": expected weight of shape [outChannels, inChannels/groups, kH, kW] (4 dimensions) but "
         "got shape ",
         w.shape().str());

  const auto stride = pair_opt(o, "stride", {1, 1}, op);
  const auto padding = pair_opt(o, "padding", {0, 0}, op);
  const auto dilation = pair_opt(o, "dilation", {1, 1}, op);
  const int64_t groups = int_opt(o, "groups", 1, op);
  if (stride[0] < 1 || stride[1] < 1)
    fail(code::kArgument, op, ": stride must be positive but got [", stride[0], ", ", stride[1], "]");
  if (padding[0] < 0 || padding[1] < 0)
    fail(code::kArgument, op, ": padding must be non-negative but got [", padding[0], ", ",
         padding[1], "]");
  if (dilation[0] < 1 || dilation[1] < 1)
    fail(code::kArgument, op, ": dilation must be positive but got [", dilation[0], ", ",
         dilation[1], "]");
  if (groups < 1) fail(code::kArgument, op, ": groups must be a positive integer but got ", groups);

  cpu::Conv2dShape s;
  s.N = x.size(0), s.C = x.size(1), s.H = x.size(2), s.W = x.size(3);
  s.O = w.size(0), s.kH = w.size(2), s.kW = w.size(3);
  s.sH = stride[0], s.sW = stride[1], s.pH = padding[0], s.pW = padding[1];
  s.dH = dilation[0], s.dW = dilation[1], s.groups = groups;

  if (s.C == 0 || s.H == 0 || s.W == 0)
    fail(code::kShape, op, ": expected input with non-zero channels, height and width but got shape ",
         x.shape().str());
  if (s.O == 0 || w.size(1) == 0 || s.kH == 0 || s.kW == 0)
    fail(code::kShape, op, ": expected a non-empty weight but got shape ", w.shape().str());
  if (s.C % groups != 0)
    fail(code::kShape, op, ": groups=", groups, " must divide the input channels but input has ",
         s.C, " channels");
  if (s.O % groups != 0)
    fail(code::kShape, op, ": groups=", groups,
         " must divide the output channels but weight has ", s.O, " output channels");
  if (w.size(1) * groups != s.C)
    fail(code::kShape, op, ": input has ", s.C, " channels but weight expects ", w.size(1) * groups,
         groups > 1 ? " (weight.shape[1] * groups)" : "");

  s.Ho = cpu::conv_out_size(s.H, s.kH, s.sH, s.pH, s.dH);
  s.Wo = cpu::conv_out_size(s.W, s.kW, s.sW, s.pW, s.dW);
  if (s.Ho <= 0 || s.Wo <= 0)
    fail(code::kShape, op, ": kernel size ", s.dH * (s.kH - 1) + 1, "x", s.dW * (s.kW - 1) + 1,
         s.dH > 1 || s.dW > 1 ? " (dilated)" : "", " is larger than the padded input ",
         s.H + 2 * s.pH, "x", s.W + 2 * s.pW);
  return s;
}

Shape output_shape(const cpu::Conv2dShape& s) { return Shape::of({s.N, s.O, s.Ho, s.Wo}); }

#ifdef ALEXNET_WITH_CUDA
cuda::ConvGeometry cuda_geometry(const cpu::Conv2dShape& s) {
  return cuda::ConvGeometry{s.N, s.C, s.H, s.W, s.O, s.kH, s.kW, s.sH, s.sW,
                            s.pH, s.pW, s.dH, s.dW, s.groups, s.Ho, s.Wo};
}
#endif

Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  const char* op = "conv2d";
  const Tensor x = tensor_arg(info, 0, op, "input");
  const Tensor w = tensor_arg(info, 1, op, "weight");
  const std::optional<Tensor> bias = optional_tensor_arg(info, 2, op, "bias");
  const Napi::Object o = options_arg(info, 3, op);
  const cpu::Conv2dShape s = conv_shape(op, x, w, o);
  if (bias) {
    check_dtype(op, "bias", *bias, DType::Float32);
    check_same_device(op, {{"input", &x}, {"bias", &*bias}});
    check_shape(op, "bias", *bias, Shape::of({s.O}));
  }
  const bool relu = bool_opt(o, "relu", false, op);
  Tensor y = Tensor::empty(output_shape(s), DType::Float32, x.device());
  const Tensor b = bias ? *bias : Tensor();
  enqueue(x.device(), [y, x, w, b, s, relu] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(x.device()))
      return cuda::conv2d_forward(x.device().index, y.f32(), x.f32(), w.f32(),
                                  b.defined() ? b.f32() : nullptr, cuda_geometry(s), relu);
#endif
    cpu::conv2d_forward(y.f32(), x.f32(), w.f32(), b.defined() ? b.f32() : nullptr, s, relu);
  });
  return wrap(info.Env(), y);
}

Napi::Value Conv2dBackward(const Napi::CallbackInfo& info) {
  const char* op = "conv2dBackward";
  Napi::Env env = info.Env();
  const Tensor dy = tensor_arg(info, 0, op, "gradOutput");
  const Tensor x = tensor_arg(info, 1, op, "input");
  const Tensor w = tensor_arg(info, 2, op, "weight");
  const Napi::Object o = options_arg(info, 3, op);
  const cpu::Conv2dShape s = conv_shape(op, x, w, o);
  check_dtype(op, "gradOutput", dy, DType::Float32);
  check_same_device(op, {{"input", &x}, {"gradOutput", &dy}});
  check_shape(op, "gradOutput", dy, output_shape(s));

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
  const Tensor dx = want_dx ? Tensor::empty(x.shape(), DType::Float32, x.device()) : Tensor();
  enqueue(x.device(), [dx, dw, db, dy, x, w, s, accumulate] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(x.device()))
      return cuda::conv2d_backward(x.device().index, dx.defined() ? dx.f32() : nullptr, dw.f32(),
                                   db.defined() ? db.f32() : nullptr, dy.f32(), x.f32(), w.f32(),
                                   cuda_geometry(s), accumulate);
#endif
    cpu::conv2d_backward(dx.defined() ? dx.f32() : nullptr, dw.f32(),
                         db.defined() ? db.f32() : nullptr, dy.f32(), x.f32(), w.f32(), s,
                         accumulate);
  });

  Napi::Object result = Napi::Object::New(env);
  result.Set("gradInput", want_dx ? wrap(env, dx) : env.Null());
  // Preallocated gradients come back as the very handles that were passed in.
  result.Set("gradWeight", gw_opt ? o.Get("gradWeight") : wrap(env, dw));
  result.Set("gradBias", !want_db ? env.Null() : gb_opt ? o.Get("gradBias") : wrap(env, db));
  return result;
}

}  // namespace

void register_conv(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "conv2dForward", Conv2dForward);
  export_function(env, exports, "conv2dBackward", Conv2dBackward);
}

}  // namespace alexnet::binding
