// In-place elementwise operators (enqueued; they return undefined at once):
//   fill(t, value), copy(dst, src), scale(t, alpha), axpy(y, alpha, x)
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "../cpu/elementwise.h"
#include "common.h"
#include "register.h"

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

Napi::Value Fill(const Napi::CallbackInfo& info) {
  const Tensor t = tensor_arg(info, 0, "fill", "tensor");
  const double v = number_arg(info, 1, "fill", "value");
  if (t.dtype() == DType::Int32) {
    if (v != std::floor(v) || v < -2147483648.0 || v > 2147483647.0)
      fail(code::kArgument, "fill: value ", v, " is not an int32 (the tensor is int32)");
    const int32_t iv = static_cast<int32_t>(v);
    enqueue(t.device(), [t, iv] {
#ifdef ALEXNET_WITH_CUDA
      if (on_cuda(t.device())) return cuda::fill_i32(t.i32(), iv, t.numel(), cuda::stream(t.device().index));
#endif
      cpu::fill_i32(t.i32(), iv, t.numel());
    });
  } else {
    const float fv = f32_scalar(info, 1, "fill", "value");
    enqueue(t.device(), [t, fv] {
#ifdef ALEXNET_WITH_CUDA
      if (on_cuda(t.device())) return cuda::fill(t.f32(), fv, t.numel(), cuda::stream(t.device().index));
#endif
      cpu::fill_f32(t.f32(), fv, t.numel());
    });
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
  enqueue(dst.device(), [dst, src] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(dst.device())) return cuda::copy(dst.device().index, dst.ptr<char>(), src.ptr<char>(), dst.nbytes());
#endif
    cpu::copy_bytes(dst.ptr<char>(), src.ptr<char>(), dst.nbytes());
  });
  return info.Env().Undefined();
}

Napi::Value Scale(const Napi::CallbackInfo& info) {
  const Tensor t = tensor_arg(info, 0, "scale", "tensor");
  check_dtype("scale", "tensor", t, DType::Float32);
  const float a = f32_scalar(info, 1, "scale", "alpha");
  enqueue(t.device(), [t, a] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(t.device())) return cuda::scale(t.f32(), a, t.numel(), cuda::stream(t.device().index));
#endif
    cpu::scale_f32(t.f32(), a, t.numel());
  });
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
  enqueue(y.device(), [y, a, x] {
#ifdef ALEXNET_WITH_CUDA
    if (on_cuda(y.device())) return cuda::axpy(y.f32(), a, x.f32(), y.numel(), cuda::stream(y.device().index));
#endif
    cpu::axpy_f32(y.f32(), a, x.f32(), y.numel());
  });
  return info.Env().Undefined();
}

}  // namespace

void register_elementwise(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "fill", Fill);
  export_function(env, exports, "copy", Copy);
  export_function(env, exports, "scale", Scale);
  export_function(env, exports, "axpy", Axpy);
}

}  // namespace alexnet::binding
