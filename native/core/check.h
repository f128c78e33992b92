// Argument checks shared by every operator. Messages name the operator and the argument the
// way a PyTorch user would: "conv2d: input has 4 channels but weight expects 3".
#pragma once

#include <initializer_list>
#include <utility>

#include "tensor.h"

namespace alexnet {

inline void check_dtype(const char* op, const char* name, const Tensor& t, DType want) {
  if (t.dtype() != want)
    fail(code::kDtype, op, ": expected ", name, " to be ", dtype_name(want), " but got ",
         dtype_name(t.dtype()));
}

inline void check_rank(const char* op, const char* name, const Tensor& t, int rank) {
  if (t.rank() != rank)
    fail(code::kShape, op, ": expected ", name, " to have ", rank, " dimensions but got shape ",
         t.shape().str());
}

inline void check_shape(const char* op, const char* name, const Tensor& t, const Shape& want) {
  if (t.shape() != want)
    fail(code::kShape, op, ": expected ", name, " of shape ", want.str(), " but got ",
         t.shape().str());
}

// All tensors must live on the same device as the first one.
inline void check_same_device(const char* op,
                              std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  const std::pair<const char*, const Tensor*>* first = nullptr;
  for (const auto& p : ts) {
    if (p.second == nullptr || !p.second->defined()) continue;
    if (first == nullptr) {
      first = &p;
      continue;
    }
    if (p.second->device() != first->second->device())
      fail(code::kDevice, op, ": ", p.first, " is on ", p.second->device().str(), " but ",
           first->first, " is on ", first->second->device().str());
  }
}

// Whether two tensors share any element (views of one storage with intersecting ranges).
inline bool overlaps(const Tensor& a, const Tensor& b) {
  if (a.storage() != b.storage() || a.numel() == 0 || b.numel() == 0) return false;
  return a.offset() < b.offset() + b.numel() && b.offset() < a.offset() + a.numel();
}

// logits [B, C] float32 and labels [B] int32 on one device (classification losses and metrics).
inline void check_logits_labels(const char* op, const Tensor& logits, const Tensor& labels) {
  check_same_device(op, {{"logits", &logits}, {"labels", &labels}});
  check_dtype(op, "logits", logits, DType::Float32);
  check_dtype(op, "labels", labels, DType::Int32);
  check_rank(op, "logits", logits, 2);
  check_rank(op, "labels", labels, 1);
  if (labels.size(0) != logits.size(0))
    fail(code::kShape, op, ": logits has ", logits.size(0), " rows but labels has ", labels.size(0), " entries");
}

// The backward of a layer given its forward's input x and output y: gradOutput and output are
// float32 tensors of the forward output's shape, on x's device.
inline void check_grad_and_output(const char* op, const Tensor& x, const Tensor& dy, const Tensor& y,
                                  const Shape& out) {
  check_dtype(op, "gradOutput", dy, DType::Float32);
  check_dtype(op, "output", y, DType::Float32);
  check_same_device(op, {{"input", &x}, {"gradOutput", &dy}, {"output", &y}});
  check_shape(op, "gradOutput", dy, out);
  check_shape(op, "output", y, out);
}

inline void check_finite(const char* op, const char* name, double v) {
  if (!(v == v) || v == 1.0 / 0.0 || v == -1.0 / 0.0)
    fail(code::kArgument, op, ": ", name, " must be a finite number but got ", v);
}

}  // namespace alexnet
