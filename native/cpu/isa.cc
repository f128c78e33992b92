#include "isa.h"

#include <atomic>
#include <cstdlib>
#include <cstddef>
#include <cstring>

namespace alexnet::cpu {

namespace {

SimdLevel detect() {
#if defined(__x86_64__) && defined(__GNUC__)
  // The compiler's runtime also checks that the OS saves the ymm / zmm state (XGETBV).
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return SimdLevel::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::Avx2;
#endif
  return SimdLevel::Base;
}

SimdLevel hardware() {
  static const SimdLevel h = detect();
  return h;
}

struct EnvCap {
  const char* value = nullptr;
  bool valid = true;
  IsaCap cap = IsaCap::Auto;
};

EnvCap read_env() {
  EnvCap e;
  e.value = std::getenv("ALEXNET_CPU_ISA");
  if (e.value != nullptr && e.value[0] != '\0') e.valid = parse_isa_cap(e.value, &e.cap);
  return e;
}

// Function-local: other files' static initialisers may ask before this file's have run.
const EnvCap& env() {
  static const EnvCap e = read_env();
  return e;
}

// The cap; -1 until first read, then the environment's (constant-initialised, so no order issue).
std::atomic<int> g_cap{-1};

}  // namespace

SimdLevel simd_hardware() { return hardware(); }

IsaCap isa_cap() {
  int c = g_cap.load(std::memory_order_relaxed);
  if (c < 0) {
    g_cap.compare_exchange_strong(c, static_cast<int>(env().cap));
    c = g_cap.load();
  }
  return static_cast<IsaCap>(c);
}

void set_isa_cap(IsaCap cap) { g_cap.store(static_cast<int>(cap)); }

SimdLevel simd_level() {
  const SimdLevel h = hardware();
  return isa_cap() == IsaCap::Avx2 && h > SimdLevel::Avx2 ? SimdLevel::Avx2 : h;
}

const char* simd_level_name(SimdLevel l) {
  return l == SimdLevel::Avx512 ? "avx512" : l == SimdLevel::Avx2 ? "avx2" : "base";
}
const char* isa_cap_name(IsaCap c) { return c == IsaCap::Avx512 ? "avx512" : c == IsaCap::Avx2 ? "avx2" : "auto"; }

bool parse_isa_cap(const char* name, IsaCap* out) {
  if (std::strcmp(name, "auto") == 0) *out = IsaCap::Auto;
  else if (std::strcmp(name, "avx2") == 0) *out = IsaCap::Avx2;
  else if (std::strcmp(name, "avx512") == 0) *out = IsaCap::Avx512;
  else return false;
  return true;
}

std::atomic<bool> g_kernel_used[static_cast<int>(KernelUse::kCount)] = {};

const char* kernel_use_name(KernelUse k) {
  static const char* const names[] = {"simd.avx512",
                                      "simd.avx2",
                                      "simd.base",
                                      "conv.direct.avx512",
                                      "conv.direct.avx2",
                                      "conv.direct.weightgrad.avx512",
                                      "conv.winograd.own.avx512",
                                      "conv.winograd.own.avx2",
                                      "conv.winograd.gather.avx512",
                                      "gemm.skinny.avx512",
                                      "gemm.skinny.avx2",
                                      "bf16.avx512",
                                      "bf16.amx",
                                      "linear.packed.avx512"};
  static_assert(sizeof(names) / sizeof(names[0]) == static_cast<size_t>(KernelUse::kCount));
  return names[static_cast<int>(k)];
}

void reset_kernel_use() {
  for (auto& f : g_kernel_used) f.store(false);
}

const char* env_isa_cap() { return env().value; }
bool env_isa_cap_valid() { return env().valid; }

}  // namespace alexnet::cpu
