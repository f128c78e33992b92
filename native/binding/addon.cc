// Module entry point: defines the NativeTensor class and registers every operator family.
#include <napi.h>

#include "common.h"
#include "register.h"

namespace alexnet::binding {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeTensor", TensorWrap::Define(env));
  register_tensor(env, exports);
  register_info(env, exports);
  register_elementwise(env, exports);
  register_activation(env, exports);
  register_conv(env, exports);
  register_pool(env, exports);
  register_lrn(env, exports);
  register_linear(env, exports);
  register_dropout(env, exports);
  register_loss(env, exports);
  register_sgd(env, exports);
  register_metrics(env, exports);
  register_image(env, exports);
  register_bench(env, exports);
  register_cuda_abi(env, exports);
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
