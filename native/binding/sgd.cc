// SGD with momentum over flat buffers, in place (the update rules: native/core/sgd.h):
//   sgdStep(param, grad, momentumBuffer | null, {lr, momentum, dampening, weightDecay,
//           nesterov, convention: 'pytorch' | 'krizhevsky', firstStep}, paramBf16?, lr?)
//     paramBf16 (bfloat16, param's shape; null / undefined: none) gets bf16(param) after the
//     update, written by the same kernel pass, and is recorded as param's current copy
//     (refreshBf16Copy then has nothing to do until param is written again).
//     lr: optional int32 [2] tensor on the parameters' device holding a double's bits (see
//     native/core/sgd.h): the kernel reads the learning rate from it when it runs, in place of
//     options.lr (which is still checked).
//   sgdCheckOptions(options, caller = 'sgdStep') -> the options with the kernel's defaults filled
//     in: the same parsing and checks as sgdStep, so the SGD class fails at construction with
//     sgdStep's own messages instead of keeping a second copy of them in TypeScript.
#include <optional>
#include <string>

#include "common.h"

namespace alexnet::binding {

namespace {

// Reads and checks the options object of `op`: every option's type, then the rules of
// native/core/sgd.h (check_sgd_params). The one parser of SGD options.
SgdParams parse_sgd_options(const char* op, const Napi::Object& o) {
  SgdParams p;
  if (o.Get("lr").IsUndefined()) fail(code::kArgument, op, ": option 'lr' is required");
  p.lr = number_opt(o, "lr", 0.0, op);  // number_opt rejects NaN and infinities
  p.momentum = number_opt(o, "momentum", 0.0, op);
  p.dampening = number_opt(o, "dampening", 0.0, op);
  p.weight_decay = number_opt(o, "weightDecay", 0.0, op);
  p.nesterov = bool_opt(o, "nesterov", false, op);
  p.first_step = bool_opt(o, "firstStep", false, op);
  const std::string conv = string_opt(o, "convention", "pytorch", op);
  if (conv == "pytorch") p.convention = SgdConvention::PyTorch;
  else if (conv == "krizhevsky") p.convention = SgdConvention::Krizhevsky;
  else fail(code::kArgument, op, ": convention must be 'pytorch' or 'krizhevsky' but got '", conv, "'");
  check_sgd_params(op, p);
  return p;
}

}  // namespace

Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  const char* op = "sgdStep";
  const Tensor w = tensor_arg(info, 0, op, "param");
  const Tensor g = tensor_arg(info, 1, op, "grad");
  const std::optional<Tensor> buf = optional_tensor_arg(info, 2, op, "momentumBuffer");
  if (info.Length() < 4 || info[3].IsUndefined())
    fail(code::kArgument, op, ": expected options {lr, ...} as the fourth argument");
  const SgdParams p = parse_sgd_options(op, options_arg(info, 3, op));
  if (p.momentum != 0 && !buf)
    fail(code::kArgument, op, ": momentumBuffer is required when momentum is not 0 (momentum ", p.momentum, ")");

  check_same_device(op, {{"param", &w}, {"grad", &g}, {"momentumBuffer", buf ? &*buf : nullptr}});
  check_dtype(op, "param", w, DType::Float32);
  check_dtype(op, "grad", g, DType::Float32);
  check_shape(op, "grad", g, w.shape());
  if (buf) {
    check_dtype(op, "momentumBuffer", *buf, DType::Float32);
    check_shape(op, "momentumBuffer", *buf, w.shape());
  }
  // param and momentumBuffer are updated in place from grad: a shifted overlap corrupts the
  // update, and no meaningful step passes one tensor as two of them, so any overlap is refused.
  check_outputs_do_not_alias(op, {{"param", &w}, {"momentumBuffer", buf ? &*buf : nullptr}},
                             {{"grad", &g}});
  const std::optional<Tensor> w16 = optional_tensor_arg(info, 4, op, "paramBf16");
  if (w16) {
    check_same_device(op, {{"param", &w}, {"paramBf16", &*w16}});
    check_dtype(op, "paramBf16", *w16, DType::BFloat16);
    check_shape(op, "paramBf16", *w16, w.shape());
    check_outputs_do_not_alias(op, {{"paramBf16", &*w16}},
                               {{"param", &w}, {"grad", &g}, {"momentumBuffer", buf ? &*buf : nullptr}});
  }
  const std::optional<Tensor> lr = optional_tensor_arg(info, 5, op, "lr");
  if (lr) {
    check_same_device(op, {{"param", &w}, {"lr", &*lr}});
    check_dtype(op, "lr", *lr, DType::Int32);
    check_shape(op, "lr", *lr, Shape::of({2}));
  }
  const Tensor b = p.momentum != 0 ? *buf : Tensor();
  launch(w.device(), &Backend::sgd_step, w, g, b, w16 ? *w16 : Tensor(), lr ? *lr : Tensor(), p);
  return info.Env().Undefined();
}

// sgdCheckOptions(options, caller?): parse_sgd_options on its own, errors named after `caller`
// (default "sgdStep"). Returns the parsed options so the caller keeps exactly what was checked.
Napi::Value SgdCheckOptions(const Napi::CallbackInfo& info) {
  std::string caller = "sgdStep";
  if (info.Length() >= 2 && !info[1].IsUndefined()) {
    if (!info[1].IsString()) fail(code::kArgument, "sgdCheckOptions: expected caller to be a string");
    caller = info[1].As<Napi::String>().Utf8Value();
  }
  const char* op = caller.c_str();
  if (info.Length() < 1 || info[0].IsUndefined()) fail(code::kArgument, op, ": expected options {lr, ...}");
  const SgdParams p = parse_sgd_options(op, options_arg(info, 0, op));
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  r.Set("lr", p.lr);
  r.Set("momentum", p.momentum);
  r.Set("dampening", p.dampening);
  r.Set("weightDecay", p.weight_decay);
  r.Set("nesterov", p.nesterov);
  r.Set("convention", p.convention == SgdConvention::Krizhevsky ? "krizhevsky" : "pytorch");
  r.Set("firstStep", p.first_step);
  return r;
}

}  // namespace alexnet::binding
