// Softmax and fused softmax cross-entropy (mean over the batch):
//   softmax(logits [B,C]) -> probs [B,C]
//   softmaxCrossEntropy(logits [B,C], labels int32 [B]) -> {loss: [], gradLogits: [B,C]}
// Labels live on the device, so a label outside [0, C) is reported by the task: the error is
// kept (CPU: by the queue; CUDA: in the device's error record) and the next read rejects with
// it (ERR_ARGUMENT, the same message on both); loss and gradient become NaN.
#include "common.h"

namespace alexnet::binding {

Napi::Value Softmax(const Napi::CallbackInfo& info) {
  const char* op = "softmax";
  const Tensor z = tensor_arg(info, 0, op, "logits");
  check_dtype(op, "logits", z, DType::Float32);
  check_rank(op, "logits", z, 2);
  Tensor p = Tensor::empty(z.shape(), DType::Float32, z.device());
  launch(z.device(), &Backend::softmax_forward, p, z);
  return wrap(info.Env(), p);
}

Napi::Value SoftmaxCrossEntropy(const Napi::CallbackInfo& info) {
  const char* op = "softmaxCrossEntropy";
  const Tensor z = tensor_arg(info, 0, op, "logits");
  const Tensor labels = tensor_arg(info, 1, op, "labels");
  check_logits_labels(op, z, labels);
  if (z.size(0) == 0) fail(code::kShape, op, ": the batch is empty (logits ", z.shape().str(), ")");
  if (z.size(1) == 0) fail(code::kShape, op, ": logits has no classes (shape ", z.shape().str(), ")");
  Tensor loss = Tensor::empty(Shape{}, DType::Float32, z.device());
  Tensor grad = Tensor::empty(z.shape(), DType::Float32, z.device());
  launch(z.device(), &Backend::softmax_cross_entropy, loss, grad, z, labels);
  return wrap_object(info.Env(), {{"loss", loss}, {"gradLogits", grad}});
}

}  // namespace alexnet::binding
