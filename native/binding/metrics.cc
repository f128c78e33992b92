// topkCorrect(logits [B,C], labels int32 [B], k) -> int32 [] : rows whose label is among the k
// largest logits (ties in the label's favour). A label outside [0, C) is reported by the task
// (the next read rejects with ERR_ARGUMENT, on CUDA through the device's error record) and the
// result is set to -1.
#include <cmath>

#include "common.h"

namespace alexnet::binding {

Napi::Value TopkCorrect(const Napi::CallbackInfo& info) {
  const char* op = "topkCorrect";
  const Tensor z = tensor_arg(info, 0, op, "logits");
  const Tensor labels = tensor_arg(info, 1, op, "labels");
  const double kd = number_arg(info, 2, op, "k");
  check_logits_labels(op, z, labels);
  const int64_t C = z.size(1);
  if (kd != std::floor(kd) || kd < 1 || kd > static_cast<double>(C))
    fail(code::kArgument, op, ": k must be an integer in [1, ", C, "] but got ", kd);
  const int64_t k = static_cast<int64_t>(kd);
  Tensor out = Tensor::empty(Shape{}, DType::Int32, z.device());
  launch(z.device(), &Backend::topk_correct, out, z, labels, k);
  return wrap(info.Env(), out);
}

}  // namespace alexnet::binding
