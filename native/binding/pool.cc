#include "register.h"

namespace alexnet::binding {
void register_pool(Napi::Env, Napi::Object) {}
}  // namespace alexnet::binding
