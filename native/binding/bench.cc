// benchOps({batch, reps, device}) -> Promise of rows: the C++-driven per-operator benchmark of
// the device's backend (Backend::bench_ops: native/cpu/bench.h, native/cuda/bench.h). The JS thread never
// waits: the CPU benchmark runs on the CPU queue's worker; the CUDA one, which waits on CUDA
// events, runs on a thread of its own that queues its work on the device's stream.
#include <thread>

#include "common.h"

namespace alexnet::binding {

namespace {

Napi::Value rows_to_js(Napi::Env env, const std::vector<BenchRow>& rows) {
  Napi::Array out = Napi::Array::New(env, rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const BenchRow& r = rows[i];
    Napi::Object row = Napi::Object::New(env);
    row.Set("name", r.name);
    row.Set("shape", r.shape);
    row.Set("ms", r.ms);
    row.Set("gflops", r.gflops);
    row.Set("gbps", r.gbps);
    row.Set("fraction", r.fraction);
    out.Set(static_cast<uint32_t>(i), row);
  }
  return out;
}

}  // namespace

Napi::Value BenchOps(const Napi::CallbackInfo& info) {
  const char* op = "benchOps";
  Napi::Env env = info.Env();
  Napi::Object o = options_arg(info, 0, op);
  const int64_t batch = int_opt(o, "batch", 16, op);
  const int64_t reps = int_opt(o, "reps", 5, op);
  const Device device = Device::parse(string_opt(o, "device", "cpu", op));  // ERR_DEVICE
  if (batch < 1 || batch > 512) fail(code::kArgument, op, ": batch must be in [1, 512]");
  if (reps < 1 || reps > 100) fail(code::kArgument, op, ": reps must be in [1, 100]");

  const Backend* backend = find_backend(device.type);
  if (backend == nullptr) {
    // No CUDA in this build: the promise rejects (ERR_CUDA_UNAVAILABLE), as a missing device does.
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(to_js_error(env, std::make_exception_ptr(Error(
                                         code::kCudaUnavailable,
                                         std::string(op) + ": device " + device.str() +
                                             " is not available: this build has no CUDA support "
                                             "(built without nvcc or with ALEXNET_CUDA=0)")))
                        .Value());
    return deferred.Promise();
  }
  const auto bench_ops = backend->bench_ops;
  const int index = device.index;
  if (device.type == DeviceType::Cpu) {
    // On the CPU queue's worker: the benchmark runs in order with the other CPU work.
    return promise_off_thread<std::vector<BenchRow>>(
        env, "alexnet.benchOps",
        [bench_ops, index, batch, reps] { return bench_ops(index, batch, static_cast<int>(reps)); },
        rows_to_js, [](std::function<void()> body) { enqueue(Device{}, std::move(body)); });
  }
  // A device with its own queue: a thread of its own, which waits on the device. A missing
  // device or missing cuDNN / cuBLAS rejects the promise (ERR_CUDA_UNAVAILABLE).
  return promise_off_thread<std::vector<BenchRow>>(
      env, "alexnet.benchOps",
      [op, bench_ops, index, batch, reps] {
        try {
          return bench_ops(index, batch, static_cast<int>(reps));
        } catch (const Error& e) {
          if (e.code() == code::kCudaUnavailable) fail(code::kCudaUnavailable, op, ": ", e.what());
          throw;
        }
      },
      rows_to_js, [](std::function<void()> body) { std::thread(std::move(body)).detach(); });
}

}  // namespace alexnet::binding
