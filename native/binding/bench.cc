// benchOps({batch, reps}) -> Promise of rows: the C++-driven per-operator benchmark
// (native/cpu/bench.h), run on the CPU queue's worker so the JS thread does not wait.
#include <memory>

#include "../cpu/bench.h"
#include "common.h"
#include "register.h"

namespace alexnet::binding {

namespace {

Napi::Value BenchOps(const Napi::CallbackInfo& info) {
  const char* op = "benchOps";
  Napi::Object o = options_arg(info, 0, op);
  const int64_t batch = int_opt(o, "batch", 16, op);
  const int64_t reps = int_opt(o, "reps", 5, op);
  if (batch < 1 || batch > 512) fail(code::kArgument, op, ": batch must be in [1, 512]");
  if (reps < 1 || reps > 100) fail(code::kArgument, op, ": reps must be in [1, 100]");
  auto rows = std::make_shared<std::vector<BenchRow>>();
  auto deferred = Napi::Promise::Deferred::New(info.Env());
  auto tsfn = Napi::ThreadSafeFunction::New(info.Env(), Napi::Function::New(info.Env(), [](const Napi::CallbackInfo&) {}),
                                            "alexnet.bench", 0, 1);
  enqueue(Device{}, [rows, batch, reps, tsfn, deferred]() mutable {
    std::exception_ptr error;
    try {
      *rows = cpu::bench_alexnet_ops(batch, static_cast<int>(reps));
    } catch (...) {
      error = std::current_exception();
    }
    tsfn.BlockingCall([rows, deferred, error](Napi::Env env, Napi::Function) {
      if (error) {
        deferred.Reject(to_js_error(env, error).Value());
        return;
      }
      Napi::Array out = Napi::Array::New(env, rows->size());
      for (size_t i = 0; i < rows->size(); ++i) {
        const BenchRow& r = (*rows)[i];
        Napi::Object row = Napi::Object::New(env);
        row.Set("name", r.name);
        row.Set("shape", r.shape);
        row.Set("ms", r.ms);
        row.Set("gflops", r.gflops);
        row.Set("gbps", r.gbps);
        row.Set("fraction", r.fraction);
        out.Set(static_cast<uint32_t>(i), row);
      }
      deferred.Resolve(out);
    });
    tsfn.Release();
  });
  return deferred.Promise();
}

}  // namespace

void register_bench(Napi::Env env, Napi::Object exports) { export_function(env, exports, "benchOps", BenchOps); }

}  // namespace alexnet::binding
