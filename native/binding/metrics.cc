#include "register.h"

namespace alexnet::binding {
void register_metrics(Napi::Env, Napi::Object) {}
}  // namespace alexnet::binding
