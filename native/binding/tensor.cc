// Creating tensors and waiting on devices.
#include "common.h"

namespace alexnet::binding {

namespace {

Device device_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (i >= info.Length() || info[i].IsUndefined()) return Device{};
  if (!info[i].IsString()) fail(code::kDevice, op, ": expected device to be a string such as 'cpu'");
  return Device::parse(info[i].As<Napi::String>().Utf8Value());
}

}  // namespace

// empty(shape, dtype = 'float32', device = 'cpu') -> uninitialised tensor
Napi::Value Empty(const Napi::CallbackInfo& info) {
  Shape s = shape_arg(info[0], "empty", "shape");
  DType dt = DType::Float32;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsString()) fail(code::kDtype, "empty: expected dtype to be a string");
    dt = parse_dtype(info[1].As<Napi::String>().Utf8Value());
  }
  Device dev = device_arg(info, 2, "empty");
  return wrap(info.Env(), Tensor::empty(s, dt, dev));
}

// fromData(Float32Array | Int32Array | Uint16Array, shape, device = 'cpu') -> tensor holding a
// copy (a Uint16Array holds raw bfloat16 patterns and makes a bfloat16 tensor)
Napi::Value FromData(const Napi::CallbackInfo& info) {
  const char* op = "fromData";
  if (info.Length() < 1 || !info[0].IsTypedArray())
    fail(code::kArgument, op, ": expected data to be a Float32Array, Int32Array or Uint16Array (bfloat16 bits)");
  // napi_get_typedarray_info gives the element pointer for arrays on an ArrayBuffer and on a
  // SharedArrayBuffer alike (Napi::TypedArray::ArrayBuffer() fails on a shared one). We copy
  // before returning, so a shared buffer is safe to read from here.
  napi_typedarray_type type;
  size_t length = 0;
  void* src = nullptr;
  if (napi_get_typedarray_info(info.Env(), info[0], &type, &length, &src, nullptr, nullptr) != napi_ok)
    fail(code::kArgument, op, ": could not read the data array");
  DType dt;
  if (type == napi_float32_array) dt = DType::Float32;
  else if (type == napi_int32_array) dt = DType::Int32;
  else if (type == napi_uint16_array) dt = DType::BFloat16;
  else fail(code::kDtype, op, ": expected data to be a Float32Array, Int32Array or Uint16Array (bfloat16 bits)");
  Shape s = shape_arg(info[1], op, "shape");
  if (static_cast<size_t>(s.numel()) != length)
    fail(code::kShape, op, ": shape ", s.str(), " holds ", s.numel(), " elements but the array has ",
         length);
  Device dev = device_arg(info, 2, op);
  Tensor t = Tensor::empty(s, dt, dev);
  if (t.nbytes() == 0) return wrap(info.Env(), t);  // an empty array may have no buffer at all
  // The caller may reuse its array as soon as we return: the CPU copy is synchronous; the CUDA
  // upload goes through pinned staging and is asynchronous on the device's stream.
  device_upload(dev, t.ptr<char>(), src, t.nbytes());
  return wrap(info.Env(), t);
}

// synchronize(device = 'cpu') -> Promise<void>
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  return synchronize_device(info.Env(), device_arg(info, 0, "synchronize"));
}

// memoryStats(device = 'cpu', resetPeak = false) -> { usedBytes, reservedBytes, peakUsedBytes,
// peakReservedBytes }: the device's tensor storage (core/device.h MemoryStats) as of the work
// queued so far; resetPeak starts the peaks again from the current values after reading them.
Napi::Value MemoryStatsOf(const Napi::CallbackInfo& info) {
  const char* op = "memoryStats";
  Device dev = device_arg(info, 0, op);
  bool reset = false;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsBoolean()) fail(code::kArgument, op, ": expected resetPeak to be a boolean");
    reset = info[1].As<Napi::Boolean>().Value();
  }
  const MemoryStats s = device_memory_stats(dev, reset);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("device", dev.str());
  out.Set("usedBytes", static_cast<double>(s.used));
  out.Set("reservedBytes", static_cast<double>(s.reserved));
  out.Set("peakUsedBytes", static_cast<double>(s.peak_used));
  out.Set("peakReservedBytes", static_cast<double>(s.peak_reserved));
  return out;
}

// deviceCounters(device = 'cpu') -> { allocations, synchronizations, reads }: the device's
// DeviceCounters (core/device.h) since the process started.
Napi::Value DeviceCountersOf(const Napi::CallbackInfo& info) {
  Device dev = device_arg(info, 0, "deviceCounters");
  if (dev.type != DeviceType::Cpu) device_runtime(dev);  // ERR_CUDA_UNAVAILABLE in a build without CUDA
  const DeviceCounters c = device_counters(dev);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("device", dev.str());
  out.Set("allocations", static_cast<double>(c.allocations));
  out.Set("synchronizations", static_cast<double>(c.synchronizations));
  out.Set("reads", static_cast<double>(c.reads));
  return out;
}

// pending(device = 'cpu') -> number of tasks queued or running (for tests and diagnostics)
Napi::Value Pending(const Napi::CallbackInfo& info) {
  Device dev = device_arg(info, 0, "pending");
  return Napi::Number::New(info.Env(), static_cast<double>(device_pending(dev)));
}

// externalMemory() -> the external memory V8 has been told about, in bytes (what the GC
// weighs when deciding to collect; tensors add their storage size and remove it on dispose).
Napi::Value ExternalMemory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           static_cast<double>(Napi::MemoryManagement::AdjustExternalMemory(info.Env(), 0)));
}

}  // namespace alexnet::binding
