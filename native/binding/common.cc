#include "common.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <new>
#include <utility>

namespace alexnet::binding {

namespace {

struct AddonData {
  Napi::FunctionReference tensor_ctor;
};

AddonData& addon_data(Napi::Env env) {
  auto* data = env.GetInstanceData<AddonData>();
  ALEXNET_ASSERT(data != nullptr);
  return *data;
}

// Marker passed to the constructor from C++ (JS cannot make one).
struct WrapRequest {
  const Tensor* tensor;
  bool owns;
};

[[noreturn]] void arg_fail(const char* op, const std::string& what) {
  fail(code::kArgument, op, ": ", what);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TensorWrap

Napi::Function TensorWrap::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(
      env, "NativeTensor",
      {
          InstanceAccessor<&TensorWrap::Guard<&TensorWrap::GetShape>>("shape"),
          InstanceAccessor<&TensorWrap::Guard<&TensorWrap::GetDtype>>("dtype"),
          InstanceAccessor<&TensorWrap::Guard<&TensorWrap::GetDevice>>("device"),
          InstanceAccessor<&TensorWrap::Guard<&TensorWrap::GetDisposed>>("disposed"),
          InstanceAccessor<&TensorWrap::Guard<&TensorWrap::GetNbytes>>("nbytes"),
          InstanceMethod<&TensorWrap::Guard<&TensorWrap::Dispose>>("dispose"),
          InstanceMethod<&TensorWrap::Guard<&TensorWrap::Data>>("data"),
          InstanceMethod<&TensorWrap::Guard<&TensorWrap::DataSync>>("dataSync"),
          InstanceMethod<&TensorWrap::Guard<&TensorWrap::View>>("view"),
      });
  auto* data = new AddonData();
  data->tensor_ctor = Napi::Persistent(ctor);
  env.SetInstanceData<AddonData>(data);
  // A read's task copies into a typed array of this environment from the CPU worker. When the
  // environment is torn down (worker.terminate(), exit) its memory goes away: wait here until
  // every CPU task queued so far has run, so none writes into freed memory. (Tasks queued
  // before only; their hand-over to this environment then fails with napi_closing, see
  // settle_after.) The same for CUDA reads, which copy from the device's stream.
  env.AddCleanupHook([] { fence_all_devices(); });
  return ctor;
}

template <Napi::Value (TensorWrap::*M)(const Napi::CallbackInfo&)>
Napi::Value TensorWrap::Guard(const Napi::CallbackInfo& info) {
  try {
    return (this->*M)(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw to_js_error(info.Env(), std::current_exception());
  }
}

Napi::Object TensorWrap::Wrap(Napi::Env env, const Tensor& t, bool owns_storage) {
  WrapRequest req{&t, owns_storage};
  return addon_data(env).tensor_ctor.New({Napi::External<WrapRequest>::New(env, &req)});
}

bool TensorWrap::IsTensor(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) return false;
  return v.As<Napi::Object>().InstanceOf(addon_data(env).tensor_ctor.Value());
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    Napi::TypeError e = Napi::TypeError::New(
        info.Env(), "NativeTensor cannot be constructed directly; use empty() or fromData()");
    e.Set("code", code::kArgument);
    throw e;
  }
  const WrapRequest* req = info[0].As<Napi::External<WrapRequest>>().Data();
  tensor_ = *req->tensor;
  if (req->owns) {
    accounted_bytes_ = tensor_.storage()->bytes();
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(),
                                                  static_cast<int64_t>(accounted_bytes_));
  }
}

TensorWrap::~TensorWrap() {
  // Finalizer: the GC found this handle unreachable. Queued tasks still hold the storage.
  if (accounted_bytes_ != 0) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), -static_cast<int64_t>(accounted_bytes_));
  }
}

void TensorWrap::Release(Napi::Env env) {
  if (disposed_) return;
  disposed_ = true;
  tensor_ = Tensor();
  if (accounted_bytes_ != 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(accounted_bytes_));
    accounted_bytes_ = 0;
  }
}

const Tensor& TensorWrap::tensor(const char* op) const {
  if (disposed_) fail(code::kDisposed, op, ": tensor has been disposed");
  return tensor_;
}

Napi::Value TensorWrap::GetShape(const Napi::CallbackInfo& info) {
  const Tensor& t = tensor("shape");
  Napi::Array a = Napi::Array::New(info.Env(), static_cast<size_t>(t.rank()));
  for (int i = 0; i < t.rank(); ++i)
    a.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(t.size(i))));
  return a;
}

Napi::Value TensorWrap::GetDtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtype_name(tensor("dtype").dtype()));
}

Napi::Value TensorWrap::GetDevice(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tensor("device").device().str());
}

Napi::Value TensorWrap::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed_);
}

Napi::Value TensorWrap::GetNbytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(tensor("nbytes").nbytes()));
}

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env());  // idempotent
  return info.Env().Undefined();
}

namespace {

// The array data() / dataSync() return. Every tensor is at most kMaxNumel elements (checked
// when it is made), which V8 can hold; checked again here because V8 aborts the process, rather
// than throwing, when asked for a longer typed array.
Napi::TypedArray new_typed_array(Napi::Env env, DType dtype, size_t n, const char* op) {
  if (n > static_cast<size_t>(kMaxNumel))
    fail(code::kShape, op, ": a tensor of ", n, " elements does not fit in a typed array (at most ",
         kMaxNumel, ")");
  switch (dtype) {
    case DType::Int32: return Napi::Int32Array::New(env, n);
    case DType::BFloat16: return Napi::Uint16Array::New(env, n);  // the raw bfloat16 patterns
    case DType::Float32: break;
  }
  return Napi::Float32Array::New(env, n);
}

void* typed_array_data(const Napi::TypedArray& a) {
  return static_cast<char*>(a.ArrayBuffer().Data()) + a.ByteOffset();
}

struct ReadContext {
  explicit ReadContext(Napi::Promise::Deferred d) : deferred(std::move(d)) {}
  Napi::Promise::Deferred deferred;
  Napi::ObjectReference result;  // the typed array to resolve with; empty for synchronize()
  std::exception_ptr error = nullptr;
  // The tensor being read, kept alive until the promise settles on the JS thread, so its
  // storage is never freed from a CUDA callback (which may not call CUDA).
  Tensor keep_alive;
  // What a read of a device with its own runtime (CUDA) found; turned into a typed error on the
  // JS thread, where the runtime may be called (the error's text comes from cudaGetErrorName/
  // String). Null runtime: a CPU read.
  const DeviceRuntime* runtime = nullptr;
  int device_index = 0;
  ReadStatus status;
};

void settle(Napi::Env env, ReadContext* ctx) {
  if (!ctx->error && ctx->runtime != nullptr) {
    try {
      ctx->runtime->throw_read_status(ctx->device_index, ctx->status);
    } catch (...) {
      ctx->error = std::current_exception();
    }
  }
  if (ctx->error) {
    ctx->deferred.Reject(to_js_error(env, ctx->error).Value());
  } else {
    ctx->deferred.Resolve(ctx->result.IsEmpty() ? env.Undefined() : ctx->result.Value());
  }
  delete ctx;
}

// The read's environment is gone (its thread-safe function refused the call): free what does
// not belong to it. Its reference is not deleted (the environment frees it with itself), and
// off the CPU worker (a CUDA stream callback, which may not call CUDA) the kept tensor is
// leaked rather than freed.
void abandon(ReadContext* ctx, bool on_cpu_worker) noexcept {
  ctx->result.SuppressDestruct();
  if (!on_cpu_worker) new Tensor(std::move(ctx->keep_alive));  // deliberately leaked
  delete ctx;
}

// Settles a promise on the JS thread once all work queued on `device` before this call has
// run, after `body` (CPU: runs on the worker) or `download` (CUDA: a device->host copy on the
// stream) has filled `result`. The JS thread never waits. On CUDA the completion is a stream
// callback, which also runs after a device fault: the promise then rejects with ERR_CUDA
// instead of never settling.
Napi::Promise settle_after(Napi::Env env, Device device, Napi::Value result,
                           std::function<void()> body,
                           const Tensor* download_src = nullptr, void* download_dst = nullptr) {
  count_read(device);
  auto deferred = Napi::Promise::Deferred::New(env);
  auto* ctx = new ReadContext(deferred);
  if (result.IsObject()) ctx->result = Napi::Persistent(result.As<Napi::Object>());
  if (download_src != nullptr) ctx->keep_alive = *download_src;
  auto tsfn = Napi::ThreadSafeFunction::New(
      env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "alexnet.read", 0, 1);
  // Runs on a worker or CUDA callback thread: hand the result to the JS thread. Neither call
  // throws (node-addon-api returns statuses from both). When the environment is closing
  // (worker.terminate()) the call fails with napi_closing and the promise can never settle:
  // the context is dropped here without touching the dead environment.
  const bool on_cpu = device.type == DeviceType::Cpu;
  auto hand_over = [ctx, tsfn, on_cpu]() mutable {
    if (tsfn.BlockingCall([ctx](Napi::Env env, Napi::Function) { settle(env, ctx); }) != napi_ok)
      abandon(ctx, on_cpu);
    tsfn.Release();
  };
  if (device.type == DeviceType::Cpu) {
    Queue& queue = cpu_queue();
    queue.enqueue([ctx, hand_over, body = std::move(body), &queue]() mutable {
      std::exception_ptr error = queue.take_error();
      if (!error) {
        try {
          body();
        } catch (...) {
          error = std::current_exception();
        }
      }
      // Drop what the body holds (the tensor read) before the JS thread can go on: its storage
      // is then freed by the JS thread's dispose, in program order, not by this worker at some
      // moment after the promise settled (a warmed-up step reuses that block; DeviceCounters).
      body = nullptr;
      ctx->error = error;
      hand_over();
    });
    return deferred.Promise();
  }
  const DeviceRuntime* runtime = find_device_runtime(device.type);
  if (runtime == nullptr) {
    tsfn.Release();
    delete ctx;
    fail(code::kCudaUnavailable, "device ", device.str(), " is not available: this build has no CUDA support");
  }
  ctx->runtime = runtime;
  ctx->device_index = device.index;
  auto done = [ctx, hand_over](const ReadStatus& s) mutable {
    ctx->status = s;
    hand_over();
  };
  try {
    if (download_src != nullptr) {
      const Tensor src = *download_src;
      runtime->download_async(device.index, download_dst, src.cptr<char>(), src.nbytes(), std::move(done));
    } else {
      runtime->after_queue(device.index, std::move(done));
    }
  } catch (...) {
    // The read could not be queued (for instance the device has already faulted): the
    // promise rejects with the reason, as if the failure had come from the stream.
    tsfn.Release();
    Napi::Value error = to_js_error(env, std::current_exception()).Value();
    delete ctx;
    deferred.Reject(error);
  }
  return deferred.Promise();
}

}  // namespace

Napi::Value TensorWrap::Data(const Napi::CallbackInfo& info) {
  const Tensor t = tensor("data");
  Napi::Env env = info.Env();
  Napi::TypedArray out = new_typed_array(env, t.dtype(), static_cast<size_t>(t.numel()), "data");
  void* dst = typed_array_data(out);
  // The typed array stays referenced by the context until the promise settles, so its
  // backing store is alive while the worker writes into it; JS cannot see it before then.
  return settle_after(env, t.device(), out, [t, dst]() { std::memcpy(dst, t.cptr<char>(), t.nbytes()); },
                      &t, dst);
}

Napi::Value TensorWrap::DataSync(const Napi::CallbackInfo& info) {
  const Tensor t = tensor("dataSync");
  Napi::TypedArray out = new_typed_array(info.Env(), t.dtype(), static_cast<size_t>(t.numel()), "dataSync");
  if (t.device().type == DeviceType::Cpu) {
    count_synchronization(t.device());
    cpu_queue().synchronize();  // explicit, user-requested wait
    std::memcpy(typed_array_data(out), t.cptr<char>(), t.nbytes());
    return out;
  }
  // Explicit, user-requested wait: on CUDA a stream synchronise, which returns a device fault
  // instead of waiting forever; throws it (or a label error of an earlier operator) as a typed
  // error.
  device_runtime(t.device()).download_sync(t.device().index, typed_array_data(out), t.cptr<char>(), t.nbytes());
  return out;
}

Napi::Value TensorWrap::View(const Napi::CallbackInfo& info) {
  const Tensor& t = tensor("view");
  if (info.Length() < 2 || !info[0].IsNumber()) arg_fail("view", "expected (offset, shape)");
  const double off = info[0].As<Napi::Number>().DoubleValue();
  // Bounded before the cast (a double beyond int64's range is undefined behaviour to convert).
  if (!(off >= 0) || off != std::floor(off) || off > static_cast<double>(kMaxNumel))
    fail(code::kArgument, "view: offset must be an integer in [0, ", t.numel(), "] but got ", off);
  Shape s = shape_arg(info[1], "view", "shape");
  return Wrap(info.Env(), t.view(static_cast<int64_t>(off), s), /*owns_storage=*/false);
}

Napi::Promise synchronize_device(Napi::Env env, Device device) {
  return settle_after(env, device, env.Undefined(), [] {});
}

// ---------------------------------------------------------------------------------------------
// argument readers

const Tensor& tensor_arg(const Napi::CallbackInfo& info, size_t i, const char* op,
                         const char* name) {
  Napi::Value v = info[i];
  if (!TensorWrap::IsTensor(info.Env(), v))
    fail(code::kArgument, op, ": expected ", name, " to be a Tensor");
  return TensorWrap::Unwrap(v.As<Napi::Object>())->tensor(op);
}

std::optional<Tensor> optional_tensor_arg(const Napi::CallbackInfo& info, size_t i,
                                          const char* op, const char* name) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return std::nullopt;
  return tensor_arg(info, i, op, name);
}

Napi::Object options_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (i >= info.Length() || info[i].IsUndefined()) return Napi::Object::New(info.Env());
  if (!info[i].IsObject() || info[i].IsArray()) arg_fail(op, "expected options to be an object");
  return info[i].As<Napi::Object>();
}

std::optional<Tensor> optional_tensor_opt(const Napi::Object& o, const char* key, const char* op) {
  Napi::Value v = o.Get(key);
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  if (!TensorWrap::IsTensor(o.Env(), v))
    fail(code::kArgument, op, ": expected option '", key, "' to be a Tensor");
  return TensorWrap::Unwrap(v.As<Napi::Object>())->tensor(op);
}

double number_opt(const Napi::Object& o, const char* key, double fallback, const char* op) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) fail(code::kArgument, op, ": expected option '", key, "' to be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  check_finite(op, key, d);
  return d;
}

double number_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber())
    fail(code::kArgument, op, ": expected ", name, " to be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  check_finite(op, name, d);
  return d;
}

int64_t int_opt(const Napi::Object& o, const char* key, int64_t fallback, const char* op) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) fail(code::kArgument, op, ": expected option '", key, "' to be an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == std::floor(d)) || std::fabs(d) > 9.0e15)
    fail(code::kArgument, op, ": expected option '", key, "' to be an integer but got ", d);
  return static_cast<int64_t>(d);
}

bool bool_opt(const Napi::Object& o, const char* key, bool fallback, const char* op) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) fail(code::kArgument, op, ": expected option '", key, "' to be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string string_opt(const Napi::Object& o, const char* key, const std::string& fallback,
                       const char* op) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) fail(code::kArgument, op, ": expected option '", key, "' to be a string");
  return v.As<Napi::String>().Utf8Value();
}

bool parse_memory_format(const std::string& s, const char* op) {
  if (s == "channels_last") return true;
  if (s == "contiguous_format") return false;
  fail(code::kArgument, op, ": memoryFormat must be 'contiguous_format' or 'channels_last' but got ", quoted(s));
}

bool channels_last_opt(const Napi::Object& o, const char* op) {
  Napi::Value v = o.Get("memoryFormat");
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!v.IsString())
    fail(code::kArgument, op, ": expected option 'memoryFormat' to be 'contiguous_format' or 'channels_last'");
  return parse_memory_format(v.As<Napi::String>().Utf8Value(), op);
}

std::array<int64_t, 2> pair_opt(const Napi::Object& o, const char* key,
                                std::array<int64_t, 2> fallback, const char* op) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  auto as_int = [&](const Napi::Value& x) -> int64_t {
    if (!x.IsNumber()) fail(code::kArgument, op, ": expected option '", key, "' to be an integer or a pair of integers");
    double d = x.As<Napi::Number>().DoubleValue();
    if (!(d == std::floor(d)) || std::fabs(d) > 1.0e9)
      fail(code::kArgument, op, ": expected option '", key, "' to hold integers but got ", d);
    return static_cast<int64_t>(d);
  };
  if (v.IsNumber()) {
    int64_t n = as_int(v);
    return {n, n};
  }
  if (v.IsArray()) {
    Napi::Array a = v.As<Napi::Array>();
    if (a.Length() != 2) fail(code::kArgument, op, ": expected option '", key, "' to have 2 entries");
    return {as_int(a.Get(0u)), as_int(a.Get(1u))};
  }
  fail(code::kArgument, op, ": expected option '", key, "' to be an integer or a pair of integers");
}

Shape shape_arg(const Napi::Value& v, const char* op, const char* name) {
  if (!v.IsArray()) fail(code::kArgument, op, ": expected ", name, " to be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > static_cast<uint32_t>(kMaxRank))
    fail(code::kShape, op, ": tensors have at most ", kMaxRank, " dimensions but ", name, " has ",
         a.Length());
  Shape s;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber())
      fail(code::kShape, op, ": ", name, " must hold non-negative integers but entry ", i, " is not a number");
    const double d = x.As<Napi::Number>().DoubleValue();
    // Bounded before the cast (each dimension fits an int, as cuDNN's descriptors need); the
    // product is checked below, overflow-safe.
    if (!(d >= 0) || d != std::floor(d) || d > 2147483647.0)
      fail(code::kShape, op, ": ", name, " must hold non-negative integers of at most 2147483647",
           " but entry ", i, " is ", d);
    s.dims[static_cast<size_t>(s.rank++)] = static_cast<int64_t>(d);
  }
  check_shape_size(s, op);
  return s;
}

// ---------------------------------------------------------------------------------------------
// errors

Napi::Error to_js_error(Napi::Env env, std::exception_ptr e) {
  std::string code = code::kInternal;
  std::string message = "unknown native error";
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    code = err.code();
    message = err.what();
  } catch (const std::bad_alloc&) {
    code = code::kOutOfMemory;
    message = "out of memory (a native allocation failed)";
  } catch (const Napi::Error& err) {
    return err;
  } catch (const std::exception& err) {
    message = err.what();
  } catch (...) {
  }
  Napi::Error js = Napi::Error::New(env, message);
  js.Set("code", Napi::String::New(env, code));
  return js;
}

namespace {
// "conv2d: ..." or "Tensor.view: ...": the message starts with a name (no spaces) and a colon.
bool names_an_operator(const std::string& message) {
  const size_t colon = message.find(": ");
  if (colon == std::string::npos || colon == 0) return false;
  for (size_t i = 0; i < colon; ++i) {
    const char c = message[i];
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  }
  return true;
}
}  // namespace

void export_function(Napi::Env env, Napi::Object exports, const char* name, Binding fn) {
  const std::string prefix = std::string(name) + ":";
  exports.Set(name, Napi::Function::New(
                        env,
                        [fn, prefix](const Napi::CallbackInfo& info) -> Napi::Value {
                          try {
                            return fn(info);
                          } catch (const Napi::Error&) {
                            throw;
                          } catch (const Error& e) {
                            // Shape errors raised below the binding (an output tensor too large
                            // to create) get the operator's name here. Other errors keep their
                            // text: a library failure names its call ("cudnnX failed: ...").
                            const std::string what = e.what();
                            if (e.code() != code::kShape || names_an_operator(what))
                              throw to_js_error(info.Env(), std::current_exception());
                            throw to_js_error(info.Env(), std::make_exception_ptr(Error(e.code(), prefix + " " + what)));
                          } catch (...) {
                            throw to_js_error(info.Env(), std::current_exception());
                          }
                        },
                        name));
}

}  // namespace alexnet::binding

namespace alexnet::binding {

// An operator that writes into tensors the caller passes (preallocated gradients, in-place
// updates) reads its inputs while it writes: an output sharing memory with an input gives wrong
// results silently, and two outputs sharing memory race. So every such operator rejects any
// overlap up front, with the names of both tensors. Absent (nullptr / undefined) tensors are
// skipped.
void check_outputs_do_not_alias(const char* op, NamedTensors outputs, NamedTensors inputs) {
  for (auto o = outputs.begin(); o != outputs.end(); ++o) {
    if (o->second == nullptr || !o->second->defined()) continue;
    for (const auto& in : inputs) {
      if (in.second == nullptr || !in.second->defined()) continue;
      if (overlaps(*o->second, *in.second))
        fail(code::kArgument, op, ": ", o->first, " overlaps an input tensor (", in.first,
             ") in memory; an output must not share memory with an input or another output");
    }
    for (auto p = o + 1; p != outputs.end(); ++p) {  // initializer_list iterators are pointers
      if (p->second == nullptr || !p->second->defined()) continue;
      if (overlaps(*o->second, *p->second))
        fail(code::kArgument, op, ": ", o->first, " and ", p->first,
             " overlap in memory; an output must not share memory with an input or another output");
    }
  }
}

}  // namespace alexnet::binding
