// Function multi-versioning for the CPU's hot loops: a function marked ALEXNET_SIMD_CLONES is
// compiled three times (AVX-512, AVX2+FMA, baseline x86-64) and the loader picks the one the
// CPU supports, so one prebuilt binary is fast on new CPUs and still runs on old ones.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define ALEXNET_SIMD_CLONES \
  __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
#else
#define ALEXNET_SIMD_CLONES
#endif
