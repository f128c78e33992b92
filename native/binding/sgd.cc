#include "register.h"

namespace alexnet::binding {
void register_sgd(Napi::Env, Napi::Object) {}
}  // namespace alexnet::binding
