// In-place elementwise operators (enqueued; they return undefined at once):
//   fill(t, value), copy(dst, src), scale(t, alpha), axpy(y, alpha, x)
// and the dtype conversion toDtype(x, dtype), which returns a new tensor
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "common.h"

namespace alexnet::binding {

namespace {

// A float32 scalar: finite (number_arg) and representable without overflowing to infinity.
float f32_scalar(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  const double v = number_arg(info, i, op, name);
  if (std::fabs(v) > static_cast<double>(FLT_MAX))
    fail(code::kArgument, op, ": ", name, " ", v, " is out of the float32 range");
  return static_cast<float>(v);
}

// True when a and b are the very same elements (same storage, same start).
bool same_elements(const Tensor& a, const Tensor& b) {
  return a.storage() == b.storage() && a.offset() == b.offset();
}

}  // namespace

Napi::Value Fill(const Napi::CallbackInfo& info) {
  const Tensor t = tensor_arg(info, 0, "fill", "tensor");
  const double v = number_arg(info, 1, "fill", "value");
  if (t.dtype() == DType::BFloat16)
    fail(code::kDtype, "fill: bfloat16 tensors are not filled directly (fill a float32 tensor and "
         "convert it with toDtype)");
  if (t.dtype() == DType::Int32) {
    if (v != std::floor(v) || v < -2147483648.0 || v > 2147483647.0)
      fail(code::kArgument, "fill: value ", v, " is not an int32 (the tensor is int32)");
    launch(t.device(), &Backend::fill_i32, t, static_cast<int32_t>(v));
  } else {
    launch(t.device(), &Backend::fill_f32, t, f32_scalar(info, 1, "fill", "value"));
  }
  return info.Env().Undefined();
}

Napi::Value Copy(const Napi::CallbackInfo& info) {
  const Tensor dst = tensor_arg(info, 0, "copy", "dst");
  const Tensor src = tensor_arg(info, 1, "copy", "src");
  check_same_device("copy", {{"dst", &dst}, {"src", &src}});
  if (dst.dtype() != src.dtype())
    fail(code::kDtype, "copy: dst is ", dtype_name(dst.dtype()), " but src is ",
         dtype_name(src.dtype()));
  if (dst.shape() != src.shape())
    fail(code::kShape, "copy: dst has shape ", dst.shape().str(), " but src has shape ",
         src.shape().str());
  launch(dst.device(), &Backend::copy, dst, src);
  return info.Env().Undefined();
}

// toDtype(x, dtype) -> a new tensor of x's shape holding x converted (float32 <-> bfloat16 by
// native/core/bf16.h; the same dtype gives a copy)
Napi::Value ToDtype(const Napi::CallbackInfo& info) {
  const char* op = "toDtype";
  const Tensor x = tensor_arg(info, 0, op, "input");
  if (info.Length() < 2 || !info[1].IsString()) fail(code::kDtype, op, ": expected dtype to be a string");
  const DType to = parse_dtype(info[1].As<Napi::String>().Utf8Value());
  const DType from = x.dtype();
  const bool ok = from == to || (from == DType::Float32 && to == DType::BFloat16) ||
                  (from == DType::BFloat16 && to == DType::Float32);
  if (!ok)
    fail(code::kDtype, op, ": no conversion from ", dtype_name(from), " to ", dtype_name(to),
         " (float32 <-> bfloat16 only)");
  Tensor y = Tensor::empty(x.shape(), to, x.device());
  launch(x.device(), &Backend::to_dtype, y, x);
  return wrap(info.Env(), y);
}

// toMemoryFormat(x, format) -> y: 'channels_last' reads x as [N, C, H, W] and gives its
// [N, H, W, C] permutation; 'contiguous_format' reads x as [N, H, W, C] and gives [N, C, H, W]
// (docs/architecture.md, decision 14). float32 or bfloat16, y in x's dtype.
Napi::Value ToMemoryFormat(const Napi::CallbackInfo& info) {
  const char* op = "toMemoryFormat";
  const Tensor x = tensor_arg(info, 0, op, "input");
  if (info.Length() < 2 || !info[1].IsString())
    fail(code::kArgument, op, ": expected memoryFormat to be 'contiguous_format' or 'channels_last'");
  const bool to_cl = parse_memory_format(info[1].As<Napi::String>().Utf8Value(), op);
  if (x.dtype() != DType::Float32 && x.dtype() != DType::BFloat16)
    fail(code::kDtype, op, ": expected input to be float32 or bfloat16 but got ", dtype_name(x.dtype()));
  if (x.rank() != 4)
    fail(code::kShape, op, ": expected input of shape ", to_cl ? "[N, C, H, W]" : "[N, H, W, C]",
         " (4 dimensions) but got shape ", x.shape().str());
  const Shape& s = x.shape();
  const Shape ys = to_cl ? Shape::of({s[0], s[2], s[3], s[1]}) : Shape::of({s[0], s[3], s[1], s[2]});
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  launch(x.device(), &Backend::to_memory_format, y, x, to_cl);
  return wrap(info.Env(), y);
}

// refreshBf16Copy(copy bfloat16, source float32): copy = bf16(source) unless the copy already
// holds the source's current values (core/tensor.h: record_copy / copy_is_current, decided on
// the device's queue when the task runs, in order with every write to source). Whole buffers
// are recorded; any other pair converts at every call. Returns nothing.
Napi::Value RefreshBf16Copy(const Napi::CallbackInfo& info) {
  const char* op = "refreshBf16Copy";
  const Tensor copy = tensor_arg(info, 0, op, "copy");
  const Tensor source = tensor_arg(info, 1, op, "source");
  check_dtype(op, "copy", copy, DType::BFloat16);
  check_dtype(op, "source", source, DType::Float32);
  check_same_device(op, {{"copy", &copy}, {"source", &source}});
  check_shape(op, "copy", copy, source.shape());
  check_outputs_do_not_alias(op, {{"copy", &copy}}, {{"source", &source}});
  const auto convert = backend_for(copy.device()).to_dtype;
  enqueue(copy.device(), [convert, copy, source] {
    if (copy_is_current(copy, source)) return;
    convert(copy, source);
    record_copy(copy, source);
  });
  return info.Env().Undefined();
}

Napi::Value Scale(const Napi::CallbackInfo& info) {
  const Tensor t = tensor_arg(info, 0, "scale", "tensor");
  check_dtype("scale", "tensor", t, DType::Float32);
  const float a = f32_scalar(info, 1, "scale", "alpha");
  launch(t.device(), &Backend::scale, t, a);
  return info.Env().Undefined();
}

Napi::Value Axpy(const Napi::CallbackInfo& info) {
  const Tensor y = tensor_arg(info, 0, "axpy", "y");
  const float a = f32_scalar(info, 1, "axpy", "alpha");
  const Tensor x = tensor_arg(info, 2, "axpy", "x");
  check_dtype("axpy", "y", y, DType::Float32);
  check_dtype("axpy", "x", x, DType::Float32);
  check_same_device("axpy", {{"y", &y}, {"x", &x}});
  if (y.shape() != x.shape())
    fail(code::kShape, "axpy: y has shape ", y.shape().str(), " but x has shape ", x.shape().str());
  if (overlaps(x, y) && !same_elements(x, y))
    fail(code::kArgument, "axpy: x and y partially overlap in memory (use the same tensor or disjoint ones)");
  launch(y.device(), &Backend::axpy, y, a, x);
  return info.Env().Undefined();
}

}  // namespace alexnet::binding
