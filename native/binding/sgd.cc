// SGD with momentum over flat buffers, in place (conventions in native/cpu/sgd.h):
//   sgdStep(param, grad, momentumBuffer | null, {lr, momentum, dampening, weightDecay,
//           nesterov, convention: 'pytorch' | 'krizhevsky', firstStep})
//   sgdCheckOptions(options, caller = 'sgdStep') -> the options with the kernel's defaults filled
//     in: the same parsing and checks as sgdStep, so the SGD class fails at construction with
//     sgdStep's own messages instead of keeping a second copy of them in TypeScript.
#include <optional>
#include <string>

#include "../cpu/sgd.h"
#include "common.h"
#include "register.h"

namespace alexnet::binding {

namespace {

// The one parser and validator of SGD options (the kernel's defaults: everything 0, 'pytorch').
// Only what the options alone decide is checked here; the buffers are sgdStep's business.
cpu::SgdParams parse_sgd_options(const char* op, const Napi::Object& o) {
  cpu::SgdParams p;
  if (o.Get("lr").IsUndefined()) fail(code::kArgument, op, ": option 'lr' is required");
  p.lr = number_opt(o, "lr", 0.0, op);  // number_opt rejects NaN and infinities
  p.momentum = number_opt(o, "momentum", 0.0, op);
  p.dampening = number_opt(o, "dampening", 0.0, op);
  p.weight_decay = number_opt(o, "weightDecay", 0.0, op);
  p.nesterov = bool_opt(o, "nesterov", false, op);
  p.first_step = bool_opt(o, "firstStep", false, op);
  const std::string conv = string_opt(o, "convention", "pytorch", op);
  if (conv == "pytorch") p.convention = cpu::SgdConvention::PyTorch;
  else if (conv == "krizhevsky") p.convention = cpu::SgdConvention::Krizhevsky;
  else fail(code::kArgument, op, ": convention must be 'pytorch' or 'krizhevsky' but got '", conv, "'");

  if (p.lr < 0) fail(code::kArgument, op, ": lr must be >= 0 but got ", p.lr);
  if (p.momentum < 0) fail(code::kArgument, op, ": momentum must be >= 0 but got ", p.momentum);
  if (p.dampening < 0 || p.dampening > 1)
    fail(code::kArgument, op, ": dampening must be in [0, 1] but got ", p.dampening);
  if (p.weight_decay < 0)
    fail(code::kArgument, op, ": weightDecay must be >= 0 but got ", p.weight_decay);
  if (p.nesterov) {
    if (p.convention == cpu::SgdConvention::Krizhevsky)
      fail(code::kArgument, op, ": nesterov momentum is not defined for the krizhevsky convention");
    if (p.momentum <= 0 || p.dampening != 0)
      fail(code::kArgument, op, ": nesterov momentum requires momentum > 0 and zero dampening (got momentum ",
           p.momentum, ", dampening ", p.dampening, ")");
  }
  return p;
}

Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  const char* op = "sgdStep";
  const Tensor w = tensor_arg(info, 0, op, "param");
  const Tensor g = tensor_arg(info, 1, op, "grad");
  const std::optional<Tensor> buf = optional_tensor_arg(info, 2, op, "momentumBuffer");
  if (info.Length() < 4 || info[3].IsUndefined())
    fail(code::kArgument, op, ": expected options {lr, ...} as the fourth argument");
  const cpu::SgdParams p = parse_sgd_options(op, options_arg(info, 3, op));
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
  const Tensor b = p.momentum != 0 ? *buf : Tensor();
  enqueue(w.device(), [w, g, b, p] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(w.device())) {
      const cuda::SgdParams cp{p.lr, p.momentum, p.dampening, p.weight_decay, p.nesterov,
                               p.convention == cpu::SgdConvention::Krizhevsky, p.first_step};
      return cuda::sgd_step(w.f32(), g.f32(), b.defined() ? b.f32() : nullptr, w.numel(), cp,
                            cuda::stream(w.device().index));
    }
#endif
    cpu::sgd_step(w.f32(), g.f32(), b.defined() ? b.f32() : nullptr, w.numel(), p);
  });
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
  const cpu::SgdParams p = parse_sgd_options(op, options_arg(info, 0, op));
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  r.Set("lr", p.lr);
  r.Set("momentum", p.momentum);
  r.Set("dampening", p.dampening);
  r.Set("weightDecay", p.weight_decay);
  r.Set("nesterov", p.nesterov);
  r.Set("convention", p.convention == cpu::SgdConvention::Krizhevsky ? "krizhevsky" : "pytorch");
  r.Set("firstStep", p.first_step);
  return r;
}

}  // namespace

void register_sgd(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "sgdStep", SgdStep);
  export_function(env, exports, "sgdCheckOptions", SgdCheckOptions);
}

}  // namespace alexnet::binding
