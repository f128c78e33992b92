// topkCorrect(logits [B,C], labels int32 [B], k) -> int32 [] : rows whose label is among the k
// largest logits (ties in the label's favour). A label outside [0, C) is reported by the task
// (the next read rejects with ERR_ARGUMENT, on CUDA through the device's error record) and the
// result is set to -1.
#include <cmath>

#include "../cpu/metrics.h"
#include "common.h"
#include "register.h"

namespace alexnet::binding {

namespace {

Napi::Value TopkCorrect(const Napi::CallbackInfo& info) {
  const char* op = "topkCorrect";
  const Tensor z = tensor_arg(info, 0, op, "logits");
  const Tensor labels = tensor_arg(info, 1, op, "labels");
  const double kd = number_arg(info, 2, op, "k");
  check_logits_labels(op, z, labels);
  const int64_t B = z.size(0), C = z.size(1);
  if (kd != std::floor(kd) || kd < 1 || kd > static_cast<double>(C))
    fail(code::kArgument, op, ": k must be an integer in [1, ", C, "] but got ", kd);
  const int64_t k = static_cast<int64_t>(kd);
  Tensor out = Tensor::empty(Shape{}, DType::Int32, z.device());
  enqueue(z.device(), [out, z, labels, B, C, k] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(z.device()))
      return cuda::topk_correct(out.i32(), z.f32(), labels.i32(), B, C, k, cuda::error_record(z.device().index),
                                cuda::stream(z.device().index));
#endif
    out.i32()[0] = -1;
    out.i32()[0] = cpu::topk_correct(z.f32(), labels.i32(), B, C, k);
  });
  return wrap(info.Env(), out);
}

}  // namespace

void register_metrics(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "topkCorrect", TopkCorrect);
}

}  // namespace alexnet::binding
