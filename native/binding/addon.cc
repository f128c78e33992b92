// Module entry point: defines the NativeTensor class and registers every export listed in
// exports.def (the one table of the addon's functions).
#include <napi.h>

#include "common.h"

namespace alexnet::binding {

#define ALEXNET_EXPORT(name, fn) Napi::Value fn(const Napi::CallbackInfo& info);
#include "exports.def"
#undef ALEXNET_EXPORT

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeTensor", TensorWrap::Define(env));
#define ALEXNET_EXPORT(name, fn) export_function(env, exports, #name, fn);
#include "exports.def"
#undef ALEXNET_EXPORT
  // Before this environment goes away (worker thread exit, process exit), let queued work
  // that may still report to it finish.
  env.AddCleanupHook([] {
    try {
      device_synchronize(Device{});
    } catch (...) {
    }
  });
  return exports;
}

}  // namespace alexnet::binding

static Napi::Object InitAlexnet(Napi::Env env, Napi::Object exports) {
  return alexnet::binding::Init(env, exports);
}

NODE_API_MODULE(alexnet, InitAlexnet)
