#include "register.h"

namespace alexnet::binding {
void register_dropout(Napi::Env, Napi::Object) {}
}  // namespace alexnet::binding
