#include "register.h"

namespace alexnet::binding {
void register_lrn(Napi::Env, Napi::Object) {}
}  // namespace alexnet::binding
