// normalizeImages(pixels: Uint8Array [N*C*H*W], shape [N, C, H, W], mean [C], std [C], device)
//   -> float32 [N, C, H, W] with y = (x / 255 - mean[c]) / std[c]
// The data pipeline's batches cross to the device as bytes: on CUDA the bytes go through pinned
// staging to the GPU (a quarter of the float32 traffic) and are normalised there; on the CPU the
// bytes are copied at once (the caller may reuse its array) and normalised on the worker.
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "../cpu/image.h"
#include "common.h"
#include "register.h"

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
  if (s.rank != 4) fail(code::kShape, op, ": expected shape [N, C, H, W] but got ", s.str());
  const int64_t N = s.dims[0], C = s.dims[1], HW = s.dims[2] * s.dims[3];
  if (C < 1 || C > cpu::kImageMaxChannels)
    fail(code::kShape, op, ": images have 1 to ", cpu::kImageMaxChannels, " channels but shape ", s.str(), " has ", C);
  if (HW >= (int64_t{1} << 31)) fail(code::kShape, op, ": an image plane of ", HW, " pixels is too large");
  if (static_cast<size_t>(s.numel()) != length)
    fail(code::kShape, op, ": shape ", s.str(), " holds ", s.numel(), " pixels but the array has ", length);
  const std::vector<double> mean = channel_values(info[2], C, op, "mean");
  const std::vector<double> stdev = channel_values(info[3], C, op, "std");
  for (int64_t c = 0; c < C; ++c)
    if (!(stdev[c] > 0)) fail(code::kArgument, op, ": std[", c, "] must be positive but got ", stdev[c]);
  Device dev{};
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    if (!info[4].IsString()) fail(code::kDevice, op, ": expected device to be a string such as 'cpu'");
    dev = Device::parse(info[4].As<Napi::String>().Utf8Value());
  }
  cpu::PixelLut lut{};
  for (int64_t c = 0; c < C; ++c)
    for (int v = 0; v < 256; ++v) lut.v[c][v] = static_cast<float>((v / 255.0 - mean[c]) / stdev[c]);

  Tensor y = Tensor::empty(s, DType::Float32, dev);
  const size_t bytes = static_cast<size_t>(s.numel());
  if (bytes == 0) return wrap(info.Env(), y);
  const uint8_t* src = static_cast<const uint8_t*>(data);
  if (dev.type == DeviceType::Cpu) {
    auto copy = std::shared_ptr<uint8_t[]>(new uint8_t[bytes]);
    std::memcpy(copy.get(), src, bytes);
    enqueue(dev, [y, copy, N, C, HW, lut] { cpu::normalize_images(y.f32(), copy.get(), N, C, HW, lut); });
    return wrap(info.Env(), y);
  }
#ifdef ALEXNET_WITH_CUDA
  cuda::PixelLutArg arg{};
  static_assert(sizeof(arg.v) == sizeof(lut.v), "the CUDA table mirrors the CPU's");
  std::memcpy(arg.v, lut.v, sizeof(arg.v));
  // Stream-ordered: the bytes land in a pool block, are normalised into y, and the block is
  // returned to the pool behind the kernel.
  void* staged = cuda::alloc(dev.index, bytes);
  try {
    cuda::upload(dev.index, staged, src, bytes);
    cuda::normalize_images(y.f32(), static_cast<const uint8_t*>(staged), N, C, HW, arg, cuda::stream(dev.index));
  } catch (...) {
    cuda::free(dev.index, staged);
    throw;
  }
  cuda::free(dev.index, staged);
#endif
  return wrap(info.Env(), y);
}

}  // namespace

void register_image(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "normalizeImages", NormalizeImages);
}

}  // namespace alexnet::binding
