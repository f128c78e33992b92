// The tables the ABI tests (test/cuda-abi, test/nccl-abi) read from the addon: our own
// declarations' enum values by name, and each type's sizeof / alignof / signedness, so a test
// pins them against the fact sheet (docs/cuda-abi.md, docs/nccl-abi.md).
#pragma once

#include <napi.h>

#include <type_traits>

namespace alexnet::binding {

struct AbiTables {
  explicit AbiTables(Napi::Env env)
      : enums(Napi::Object::New(env)),
        sizes(Napi::Object::New(env)),
        aligns(Napi::Object::New(env)),
        is_signed(Napi::Object::New(env)),
        env_(env) {}

  Napi::Object enums;      // { typeName: { ENUMERATOR: value } }
  Napi::Object sizes;      // { typeName: sizeof }
  Napi::Object aligns;     // { typeName: alignof }
  Napi::Object is_signed;  // { enumName: whether its underlying type is signed }

  // Records enum E's size, alignment and signedness; returns the object its values go in.
  template <typename E>
  Napi::Object add_enum(const char* name) {
    Napi::Object values = Napi::Object::New(env_);
    enums.Set(name, values);
    add_type<E>(name);
    is_signed.Set(name, std::is_signed<std::underlying_type_t<E>>::value);
    return values;
  }

  template <typename T>
  void add_type(const char* name) {
    sizes.Set(name, static_cast<double>(sizeof(T)));
    aligns.Set(name, static_cast<double>(alignof(T)));
  }

 private:
  Napi::Env env_;
};

}  // namespace alexnet::binding

// For the X-macro enum lists (ALEXNET_CUDNN_ENUMS(X), ...: X(type, list), list(Y): Y(NAME,
// value)), with an AbiTables named `abi` in scope: ALEXNET_CUDNN_ENUMS(ALEXNET_ABI_ENUM).
#define ALEXNET_ABI_ENUM_VALUE(name, value) values.Set(#name, static_cast<double>(name));
#define ALEXNET_ABI_ENUM(type, list)                       \
  {                                                        \
    Napi::Object values = abi.add_enum<type>(#type);       \
    list(ALEXNET_ABI_ENUM_VALUE)                           \
  }
