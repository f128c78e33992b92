// localResponseNorm: lrnForward(x, {size, alpha?, beta?, k?}) -> y
//                    lrnBackward(gradOutput, x, output, options) -> gradInput
// PyTorch's LocalResponseNorm convention (alpha is divided by size); defaults alpha = 1e-4,
// beta = 0.75, k = 1. Input [N, C, H, W] or [N, C, L]. Limits, on every device (cuDNN's, see
// native/cpu/lrn.h): size in [1, 16], k >= 1e-5, beta >= 0.01, alpha >= 0; on CUDA size odd.
// Empty inputs give empty outputs.
#include <cmath>
#include <limits>
#include <utility>

#include "../cpu/lrn.h"
#include "common.h"
#include "register.h"

namespace alexnet::binding {

namespace {

cpu::LrnParams lrn_params(const char* op, const Tensor& x, const Napi::Object& o) {
  check_dtype(op, "input", x, DType::Float32);
  if (x.rank() != 4 && x.rank() != 3)
    fail(code::kShape, op,
         ": expected input of shape [N, C, H, W] or [N, C, L] (3 or 4 dimensions) but got shape ",
         x.shape().str());
  if (o.Get("size").IsUndefined()) fail(code::kArgument, op, ": expected option 'size' (a positive integer)");
  const int64_t size = int_opt(o, "size", 1, op);
  if (size < 1) fail(code::kArgument, op, ": size must be a positive integer but got ", size);
  const double alpha = number_opt(o, "alpha", 1e-4, op);
  const double beta = number_opt(o, "beta", 0.75, op);
  const double k = number_opt(o, "k", 1.0, op);
  // The same limits on every device (cuDNN's), so what runs on the CPU runs on CUDA too.
  cpu::check_lrn_options(op, size, alpha, beta, k);
  // The kernels compute in float32: a value float32 cannot hold would become inf and turn
  // every output into 0 or NaN without a word.
  for (const auto& [name, v] : {std::pair<const char*, double>{"alpha", alpha}, {"beta", beta}, {"k", k}})
    if (v > std::numeric_limits<float>::max())
      fail(code::kArgument, op, ": ", name, " must be at most ", std::numeric_limits<float>::max(),
           " (float32's largest value) but got ", v);
  // The denominator D = k + alpha / size * sum x^2 is at least k, so D^-beta (forward) and
  // D^-(beta + 1) (backward) are at most k^-(beta + 1): if that overflows float32, a quiet
  // window gives inf, and the gradient inf * 0 = NaN.
  if (k < 1 && (beta + 1) * std::log(1 / k) >= std::log(static_cast<double>(std::numeric_limits<float>::max())))
    fail(code::kArgument, op, ": k = ", k, " with beta = ", beta,
         " overflows float32 (k^-(beta + 1) must stay below 3.4e38; raise k or lower beta)");
  if (on_cuda(x.device()) && size % 2 == 0)
    fail(code::kArgument, op, ": size must be odd on CUDA but got ", size,
         " (cuDNN centres an even window one channel later than PyTorch; the CPU computes PyTorch's)");
  cpu::LrnParams p;
  p.N = x.size(0), p.C = x.size(1), p.S = x.size(2) * (x.rank() == 4 ? x.size(3) : 1);
  p.size = size;
  p.alpha = static_cast<float>(alpha), p.beta = static_cast<float>(beta), p.k = static_cast<float>(k);
  return p;
}

Napi::Value LrnForward(const Napi::CallbackInfo& info) {
  const char* op = "localResponseNorm";
  const Tensor x = tensor_arg(info, 0, op, "input");
  const cpu::LrnParams p = lrn_params(op, x, options_arg(info, 1, op));
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  enqueue(x.device(), [y, x, p] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(x.device()))
      return cuda::lrn_forward(x.device().index, y.f32(), x.f32(), p.N, p.C, p.S, 1, p.size, p.alpha,
                               p.beta, p.k);
#endif
    cpu::lrn_forward(y.f32(), x.f32(), p);
  });
  return wrap(info.Env(), y);
}

Napi::Value LrnBackward(const Napi::CallbackInfo& info) {
  const char* op = "localResponseNormBackward";
  const Tensor dy = tensor_arg(info, 0, op, "gradOutput");
  const Tensor x = tensor_arg(info, 1, op, "input");
  const Tensor y = tensor_arg(info, 2, op, "output");
  const cpu::LrnParams p = lrn_params(op, x, options_arg(info, 3, op));
  check_grad_and_output(op, x, dy, y, x.shape());
  Tensor dx = Tensor::empty(x.shape(), DType::Float32, x.device());
  enqueue(x.device(), [dx, dy, x, y, p] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(x.device()))
      return cuda::lrn_backward(x.device().index, dx.f32(), dy.f32(), x.f32(), y.f32(), p.N, p.C,
                                p.S, 1, p.size, p.alpha, p.beta, p.k);
#endif
    cpu::lrn_backward(dx.f32(), dy.f32(), x.f32(), p);
  });
  return wrap(info.Env(), dx);
}

}  // namespace

void register_lrn(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "lrnForward", LrnForward);
  export_function(env, exports, "lrnBackward", LrnBackward);
}

}  // namespace alexnet::binding
