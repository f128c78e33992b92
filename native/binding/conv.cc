#include "register.h"

namespace alexnet::binding {
void register_conv(Napi::Env, Napi::Object) {}
}  // namespace alexnet::binding
