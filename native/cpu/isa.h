// The CPU's instruction sets as our kernels see them: what the hardware offers, capped by a
// process-wide setting (setCpuIsa / ALEXNET_CPU_ISA), so that every kernel that dispatches on
// the CPU's features can be run with at most AVX2 on an AVX-512 machine: to compare the two
// builds, and to compare ours with a peer that only has AVX2. Every such dispatch (simd.h's
// ALEXNET_SIMD_DISPATCH, the direct and Winograd convolutions, the skinny GEMM, the bfloat16
// kernels) asks simd_level() on each call, so a change of the cap applies to the next call.
// OpenBLAS is not covered: it picks its kernels when it loads (OPENBLAS_CORETYPE).
#pragma once

#include <atomic>

namespace alexnet::cpu {

// What a kernel may use, lowest first: the x86-64 baseline (SSE2), AVX2 with FMA, AVX-512
// (F, VL, BW, DQ as on every AVX-512 CPU since Skylake-SP; AVX512-BF16 is asked separately).
enum class SimdLevel { Base, Avx2, Avx512 };

// The cap: Auto (none), Avx2 (no AVX-512, hence no AVX512-BF16), Avx512 (the same as Auto on
// today's CPUs, kept for symmetry).
enum class IsaCap { Auto, Avx2, Avx512 };

SimdLevel simd_hardware();   // the CPU's best level (with the OS saving the wider registers)
SimdLevel simd_level();      // min(hardware, cap): what kernels use now
IsaCap isa_cap();
void set_isa_cap(IsaCap cap);

const char* simd_level_name(SimdLevel l);  // "base", "avx2", "avx512"
const char* isa_cap_name(IsaCap c);        // "auto", "avx2", "avx512"
// "auto" / "avx2" / "avx512" -> the cap; false for anything else.
bool parse_isa_cap(const char* name, IsaCap* out);

// The environment's ALEXNET_CPU_ISA as read when the addon loaded: nullptr when unset; the
// cap it set, or (invalid value) left at Auto, in which case env_isa_cap_valid() is false.
const char* env_isa_cap();
bool env_isa_cap_valid();

inline bool simd_avx512() { return simd_level() == SimdLevel::Avx512; }
inline bool simd_avx2() { return simd_level() >= SimdLevel::Avx2; }

// Which builds of the kernels ran since the last reset (cpuKernelsUsed): how tests check that a
// capped run really took the AVX2 code. One flag per build, set on a kernel's first call after
// a reset: a read (the flag's cache line stays shared between threads) and, once, a store.
enum class KernelUse : int {
  SimdAvx512,          // ALEXNET_SIMD_DISPATCH functions (portable GEMM, SGD, pooling, Winograd
  SimdAvx2,            // transforms, bfloat16 conversions), by build
  SimdBase,
  DirectAvx512,        // direct convolution (forward, input gradient)
  DirectAvx2,
  DirectWgradAvx512,   // its weight gradient (AVX-512 only)
  WinogradOwnAvx512,   // Winograd's small-batch products kernel
  WinogradOwnAvx2,
  WinogradGatherAvx512,  // its vector gather of input tiles (AVX-512 only)
  SkinnyAvx512,        // the skinny GEMM of the fully connected layers
  SkinnyAvx2,          // (its AVX2 build: the forward shape only)
  Bf16Avx512,          // the AVX-512 BF16 conversions and products
  Bf16Amx,             // the AMX (tile) products of the packed bfloat16 GEMM
  LinearPackedAvx512,  // the linear layer's forward on its kept weight panels (linear_packed.h)
  kCount
};
extern std::atomic<bool> g_kernel_used[static_cast<int>(KernelUse::kCount)];
inline void note_use(KernelUse k) {
  std::atomic<bool>& f = g_kernel_used[static_cast<int>(k)];
  if (!f.load(std::memory_order_relaxed)) f.store(true, std::memory_order_relaxed);
}
const char* kernel_use_name(KernelUse k);  // "simd.avx512", "conv.direct.avx2", ...
void reset_kernel_use();

}  // namespace alexnet::cpu
