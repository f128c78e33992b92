// normalizeImages(pixels: Uint8Array [N*C*H*W], shape [N, C, H, W], mean [C], std [C], device)
//   -> float32 [N, C, H, W] with y = (x / 255 - mean[c]) / std[c]
// The data pipeline's batches cross to the device as bytes: on CUDA the bytes go through pinned
// staging to the GPU (a quarter of the float32 traffic) and are normalised there; on the CPU the
// bytes are copied at once (the caller may reuse its array) and normalised on the worker.
#include <vector>

#include "common.h"

namespace alexnet::binding {

namespace {

std::vector<double> channel_values(const Napi::Value& v, int64_t C, const char* op, const char* name) {
  if (!v.IsArray()) fail(code::kArgument, op, ": expected ", name, " to be an array of ", C, " numbers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() != static_cast<uint32_t>(C))
    fail(code::kArgument, op, ": expected ", name, " to have ", C, " entries (one per channel) but it has ", a.Length());
  std::vector<double> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) fail(code::kArgument, op, ": expected ", name, "[", i, "] to be a number");
    const double d = x.As<Napi::Number>().DoubleValue();
    check_finite(op, name, d);
    out.push_back(d);
  }
  return out;
}

}  // namespace

Napi::Value NormalizeImages(const Napi::CallbackInfo& info) {
  const char* op = "normalizeImages";
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    fail(code::kDtype, op, ": expected pixels to be a Uint8Array");
  // napi_get_typedarray_info gives the bytes of an array on a SharedArrayBuffer too (they are
  // copied before this call returns).
  size_t length = 0;
  void* data = nullptr;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(info.Env(), info[0], &type, &length, &data, nullptr, nullptr) != napi_ok)
    fail(code::kArgument, op, ": could not read the pixels array");
  Shape s = shape_arg(info[1], op, "shape");
  check_image_batch(op, s, length);
  const int64_t C = s.dims[1];
  const std::vector<double> mean = channel_values(info[2], C, op, "mean");
  const std::vector<double> stdev = channel_values(info[3], C, op, "std");
  const PixelLut lut = pixel_lut(op, mean, stdev);
  Device dev{};
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    if (!info[4].IsString()) fail(code::kDevice, op, ": expected device to be a string such as 'cpu'");
    dev = Device::parse(info[4].As<Napi::String>().Utf8Value());
  }

  Tensor y = Tensor::empty(s, DType::Float32, dev);
  if (s.numel() == 0) return wrap(info.Env(), y);
  // On the calling thread: the backend copies the bytes before it returns and orders the work.
  backend_for(dev).normalize_images(y, static_cast<const uint8_t*>(data), lut);
  return wrap(info.Env(), y);
}

}  // namespace alexnet::binding
