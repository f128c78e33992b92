// Shared pieces of the Node-API binding: the Tensor handle class, argument readers with
// better-sqlite3-style messages, typed-error conversion and the launch helper.
//
// The binding parses and validates (docs/architecture.md, decision 8): it reads JS values,
// builds the core descriptors (native/core/ops/*.h, native/core/sgd.h), which validate
// themselves, and calls the backend of the tensors' device (native/core/backend.h). It knows no
// backend: no #ifdef, no backend header, no translation between backends' structs.
#pragma once

#include <napi.h>

#include <array>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "../core/backend.h"
#include "../core/check.h"
#include "../core/device.h"
#include "../core/tensor.h"

namespace alexnet::binding {

// The JS-visible handle of a native Tensor (`NativeTensor` in src/native.ts).
class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, const Tensor& t, bool owns_storage = true);
  static bool IsTensor(Napi::Env env, const Napi::Value& v);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

  // Throws ERR_DISPOSED naming `op`.
  const Tensor& tensor(const char* op) const;

 private:
  Napi::Value GetShape(const Napi::CallbackInfo& info);
  Napi::Value GetDtype(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value GetNbytes(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Data(const Napi::CallbackInfo& info);
  Napi::Value DataSync(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  void Release(Napi::Env env);

  // Methods throw alexnet::Error; this turns it into a JS error (node-addon-api passes only
  // Napi::Error through on its own).
  template <Napi::Value (TensorWrap::*M)(const Napi::CallbackInfo&)>
  Napi::Value Guard(const Napi::CallbackInfo& info);

  Tensor tensor_;
  bool disposed_ = false;
  size_t accounted_bytes_ = 0;  // reported to V8 as external memory
};

// --- argument readers (all throw alexnet::Error with the op's name) -----------------------

const Tensor& tensor_arg(const Napi::CallbackInfo& info, size_t i, const char* op,
                         const char* name);
// null / undefined -> nullopt
std::optional<Tensor> optional_tensor_arg(const Napi::CallbackInfo& info, size_t i,
                                          const char* op, const char* name);
// The options object at position i (undefined -> empty object).
Napi::Object options_arg(const Napi::CallbackInfo& info, size_t i, const char* op);
std::optional<Tensor> optional_tensor_opt(const Napi::Object& o, const char* key, const char* op);
int64_t int_opt(const Napi::Object& o, const char* key, int64_t fallback, const char* op);
double number_opt(const Napi::Object& o, const char* key, double fallback, const char* op);
double number_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
bool bool_opt(const Napi::Object& o, const char* key, bool fallback, const char* op);
std::string string_opt(const Napi::Object& o, const char* key, const std::string& fallback,
                       const char* op);
// Option 'memoryFormat' of the convolution and pooling operators: 'contiguous_format' (the
// default, also for undefined / null: [N, C, H, W]) -> false, 'channels_last' ([N, H, W, C])
// -> true (docs/architecture.md, decision 14); anything else is ERR_ARGUMENT.
bool channels_last_opt(const Napi::Object& o, const char* op);
// The same for a memory format given as a string argument (toMemoryFormat).
bool parse_memory_format(const std::string& s, const char* op);
// A number n (-> {n, n}) or a pair [a, b].
std::array<int64_t, 2> pair_opt(const Napi::Object& o, const char* key,
                                std::array<int64_t, 2> fallback, const char* op);
Shape shape_arg(const Napi::Value& v, const char* op, const char* name);

// --- results -------------------------------------------------------------------------------

inline Napi::Value wrap(Napi::Env env, const Tensor& t) { return TensorWrap::Wrap(env, t); }
inline Napi::Value wrap_optional(Napi::Env env, const std::optional<Tensor>& t) {
  return t ? wrap(env, *t) : env.Null();
}
// {name: tensor, ...}, in the order given, each a new handle that owns its storage.
inline Napi::Object wrap_object(Napi::Env env, std::initializer_list<std::pair<const char*, Tensor>> fields) {
  Napi::Object result = Napi::Object::New(env);
  for (const auto& [name, t] : fields) result.Set(name, wrap(env, t));
  return result;
}

// --- execution -----------------------------------------------------------------------------

// Enqueues `task` on the device's queue. The task captures Tensors by value, which keeps
// their storage alive until it has run even if JS disposes them first.
using ::alexnet::enqueue;  // enqueue(device, task): see core/device.h

// Enqueues `entry` of the device's backend table (native/core/backend.h) on the device's queue:
//   launch(x.device(), &Backend::relu_forward, y, x);
// The arguments (Tensors, descriptors, scalars) are copied into the task: Tensors keep their
// storage alive until it has run.
template <typename Entry, typename... Args>
void launch(Device device, Entry Backend::*entry, Args... args) {
  const Entry fn = backend_for(device).*entry;
  enqueue(device, [fn, args...] { fn(args...); });
}

// --- operators on one input with an options object -----------------------------------------
// forward(x, options) -> y and backward(gradOutput, input, output, options) -> gradInput: max
// pooling and LRN differ only in their descriptor, its reader and the output's shape.

// Checks the input x and reads the operator's descriptor from its options; `op` names the caller.
template <typename Params>
using OptionsReader = Params (*)(const char* op, const Tensor& x, const Napi::Object& options);
// The forward output's shape for input x.
template <typename Params>
using OutputShape = Shape (*)(const Tensor& x, const Params& p);

template <typename Params>
Napi::Value forward_with_options(const Napi::CallbackInfo& info, const char* op, OptionsReader<Params> read,
                                 OutputShape<Params> output_shape,
                                 void (*Backend::*forward)(const Tensor& y, const Tensor& x, const Params& p)) {
  const Tensor x = tensor_arg(info, 0, op, "input");
  const Params p = read(op, x, options_arg(info, 1, op));
  Tensor y = Tensor::empty(output_shape(x, p), DType::Float32, x.device());
  launch(x.device(), forward, y, x, p);
  return wrap(info.Env(), y);
}

template <typename Params>
Napi::Value backward_with_options(const Napi::CallbackInfo& info, const char* op, OptionsReader<Params> read,
                                  OutputShape<Params> output_shape,
                                  void (*Backend::*backward)(const Tensor& dx, const Tensor& dy, const Tensor& x,
                                                             const Tensor& y, const Params& p)) {
  const Tensor dy = tensor_arg(info, 0, op, "gradOutput");
  const Tensor x = tensor_arg(info, 1, op, "input");
  const Tensor y = tensor_arg(info, 2, op, "output");
  const Params p = read(op, x, options_arg(info, 3, op));
  check_grad_and_output(op, x, dy, y, output_shape(x, p));
  Tensor dx = Tensor::empty(x.shape(), DType::Float32, x.device());
  launch(x.device(), backward, dx, dy, x, y, p);
  return wrap(info.Env(), dx);
}

// Registers `fn` as exports[name]; alexnet::Error and std::exception thrown inside become JS
// errors with a `code` property. Every export is listed once, in native/binding/exports.def.
using Binding = std::function<Napi::Value(const Napi::CallbackInfo&)>;
void export_function(Napi::Env env, Napi::Object exports, const char* name, Binding fn);

// Converts an exception (from a task or a call) into the JS Error object it stands for.
Napi::Error to_js_error(Napi::Env env, std::exception_ptr e);

// Runs `work` on another thread and settles the returned promise on the JS thread with
// to_js(result), or rejects it with work's error (coded as usual). `start` hands the body to a
// thread: the CPU queue's worker (enqueue(Device{}, ...): in order with the other CPU work) or
// a thread of its own. The JS thread never waits. Used by the benchmark exports.
template <typename Result>
Napi::Promise promise_off_thread(Napi::Env env, const char* name, std::function<Result()> work,
                                 Napi::Value (*to_js)(Napi::Env, const Result&),
                                 const std::function<void(std::function<void()>)>& start) {
  auto deferred = Napi::Promise::Deferred::New(env);
  auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                            name, 0, 1);
  auto body = [work = std::move(work), to_js, tsfn, deferred]() mutable {
    auto result = std::make_shared<Result>();
    std::exception_ptr error;
    try {
      *result = work();
    } catch (...) {
      error = std::current_exception();
    }
    tsfn.BlockingCall([result, to_js, deferred, error](Napi::Env env, Napi::Function) {
      if (error) deferred.Reject(to_js_error(env, error).Value());
      else deferred.Resolve(to_js(env, *result));
    });
    tsfn.Release();
  };
  try {
    start(std::move(body));
  } catch (...) {
    tsfn.Release();
    throw;
  }
  return deferred.Promise();
}

}  // namespace alexnet::binding

namespace alexnet::binding {
// A promise that settles once all work queued on `device` before it has run (rejecting with
// a deferred task error, if one is pending).
Napi::Promise synchronize_device(Napi::Env env, Device device);

// Tensors with the names an error message gives them; nullptr entries are skipped.
using NamedTensors = std::initializer_list<std::pair<const char*, const Tensor*>>;
// Throws ERR_ARGUMENT when any output shares memory with any input or with another output
// (every operator that writes into caller-provided tensors calls it before enqueueing).
void check_outputs_do_not_alias(const char* op, NamedTensors outputs, NamedTensors inputs);
}  // namespace alexnet::binding
