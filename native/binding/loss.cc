// Softmax and fused softmax cross-entropy (mean over the batch):
//   softmax(logits [B,C]) -> probs [B,C]
//   softmaxCrossEntropy(logits [B,C], labels int32 [B]) -> {loss: [], gradLogits: [B,C]}
// Labels live on the device, so a label outside [0, C) is reported by the task: the error is
// kept (CPU: by the queue; CUDA: in the device's error record) and the next read rejects with
// it (ERR_ARGUMENT, the same message on both); loss and gradient become NaN.
#include "../cpu/loss.h"
#include "common.h"
#include "register.h"

namespace alexnet::binding {

namespace {

Napi::Value Softmax(const Napi::CallbackInfo& info) {
  const char* op = "softmax";
  const Tensor z = tensor_arg(info, 0, op, "logits");
  check_dtype(op, "logits", z, DType::Float32);
  check_rank(op, "logits", z, 2);
  Tensor p = Tensor::empty(z.shape(), DType::Float32, z.device());
  enqueue(z.device(), [p, z] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(z.device()))
      return cuda::softmax_forward(p.f32(), z.f32(), z.size(0), z.size(1), cuda::stream(z.device().index));
#endif
    cpu::softmax_forward(p.f32(), z.f32(), z.size(0), z.size(1));
  });
  return wrap(info.Env(), p);
}

Napi::Value SoftmaxCrossEntropy(const Napi::CallbackInfo& info) {
  const char* op = "softmaxCrossEntropy";
  const Tensor z = tensor_arg(info, 0, op, "logits");
  const Tensor labels = tensor_arg(info, 1, op, "labels");
  check_logits_labels(op, z, labels);
  const int64_t B = z.size(0), C = z.size(1);
  if (B == 0) fail(code::kShape, op, ": the batch is empty (logits ", z.shape().str(), ")");
  if (C == 0) fail(code::kShape, op, ": logits has no classes (shape ", z.shape().str(), ")");
  Tensor loss = Tensor::empty(Shape{}, DType::Float32, z.device());
  Tensor grad = Tensor::empty(z.shape(), DType::Float32, z.device());
#ifdef ALEXNET_WITH_CUDA
  // Per-row losses before the (deterministic) mean; freed behind the kernels on the stream.
  const Tensor scratch = on_cuda(z.device()) ? Tensor::empty(Shape::of({B}), DType::Float32, z.device()) : Tensor();
#endif
  enqueue(z.device(), [loss, grad, z, labels, B, C
#ifdef ALEXNET_WITH_CUDA
                       , scratch
#endif
  ] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(z.device()))
      return cuda::softmax_cross_entropy(loss.f32(), grad.f32(), z.f32(), labels.i32(), B, C, scratch.f32(),
                                         cuda::error_record(z.device().index), cuda::stream(z.device().index));
#endif
    cpu::softmax_cross_entropy(loss.f32(), grad.f32(), z.f32(), labels.i32(), B, C);
  });
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("loss", wrap(env, loss));
  result.Set("gradLogits", wrap(env, grad));
  return result;
}

}  // namespace

void register_loss(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "softmax", Softmax);
  export_function(env, exports, "softmaxCrossEntropy", SoftmaxCrossEntropy);
}

}  // namespace alexnet::binding
