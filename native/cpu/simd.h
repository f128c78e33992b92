// Several builds of the CPU's hot loops, picked at run time: a function defined with
// ALEXNET_SIMD_DISPATCH is compiled three times from one body (AVX-512, AVX2+FMA, baseline
// x86-64) and each call runs the build for simd_level() (isa.h): the CPU's best, or less under
// the process-wide cap (setCpuIsa / ALEXNET_CPU_ISA). One prebuilt binary is fast on new CPUs,
// still runs on old ones, and can run its AVX2 code on an AVX-512 CPU for comparison.
//
// (This replaced GCC's target_clones, whose loader-time choice cannot be capped, and whose arch=
// clones are picked by CPU model, __builtin_cpu_is("skylake-avx512") / ("haswell"), not by
// features: on every other CPU, the AMD EPYC (Zen 4) build machine included, only the baseline
// x86-64 build ever ran. Here the features decide.) The targets
// name instruction sets plus the matching tuning, not arch=: an arch= target cannot inline the
// shared body. tune=skylake-avx512, as target_clones' arch=skylake-avx512 did, keeps the
// vectoriser on 256-bit vectors for loops it vectorises itself (explicit 64-byte vector types
// still use zmm).
#pragma once

#include <cstdint>

#include "isa.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ALEXNET_SIMD_X86 1
#define ALEXNET_TARGET_AVX512                                                                      \
  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512cd,avx2,fma,bmi,bmi2,lzcnt,popcnt," \
                        "f16c,movbe,tune=skylake-avx512")))
#define ALEXNET_TARGET_AVX2 __attribute__((target("avx2,fma,bmi,bmi2,lzcnt,popcnt,f16c,movbe,tune=haswell")))
#else
#define ALEXNET_SIMD_X86 0
#endif

// ALEXNET_SIMD_DISPATCH(name, (params), (args)) defines `void name params`, which runs
// `name##_body args` (an always_inline function) in the build for simd_level().
#if ALEXNET_SIMD_X86
#define ALEXNET_SIMD_DISPATCH(name, params, args)                       \
  ALEXNET_TARGET_AVX512 void name##_avx512 params { name##_body args; } \
  ALEXNET_TARGET_AVX2 void name##_avx2 params { name##_body args; }     \
  void name##_base params { name##_body args; }                         \
  void name params {                                                    \
    switch (::alexnet::cpu::simd_level()) {                             \
      case ::alexnet::cpu::SimdLevel::Avx512:                           \
        ::alexnet::cpu::note_use(::alexnet::cpu::KernelUse::SimdAvx512);  \
        return name##_avx512 args;                                      \
      case ::alexnet::cpu::SimdLevel::Avx2:                             \
        ::alexnet::cpu::note_use(::alexnet::cpu::KernelUse::SimdAvx2);  \
        return name##_avx2 args;                                        \
      default:                                                          \
        ::alexnet::cpu::note_use(::alexnet::cpu::KernelUse::SimdBase);  \
        return name##_base args;                                        \
    }                                                                   \
  }
#else
#define ALEXNET_SIMD_DISPATCH(name, params, args) \
  void name params { name##_body args; }
#endif

#define ALEXNET_SIMD_BODY __attribute__((always_inline)) inline

namespace alexnet::cpu {

// The first n of 16 lanes as a 16-bit lane mask (AVX-512's __mmask16), n clamped to [0, 16]:
// the masked loads and stores at the end of a row.
__attribute__((always_inline)) inline uint16_t first_lanes16(int64_t n) {
  return n >= 16 ? uint16_t{0xFFFF} : n <= 0 ? uint16_t{0} : static_cast<uint16_t>((1u << n) - 1u);
}

}  // namespace alexnet::cpu
