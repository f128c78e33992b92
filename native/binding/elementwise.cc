#include "register.h"

namespace alexnet::binding {
void register_elementwise(Napi::Env, Napi::Object) {}
}  // namespace alexnet::binding
