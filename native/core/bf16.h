// bfloat16 <-> float32, bit for bit, shared by every backend: the CPU kernels
// (native/cpu/bf16.cc, their portable path and the fix-up of the AVX-512 path) and the CUDA
// kernel (native/cuda/kernels/convert.cu) call these same inline functions, and
// test/reference/bf16.ts reimplements them in JS.
//
// bfloat16 is the top half of a float32: sign, the same 8 exponent bits, 7 mantissa bits.
//
//   to_float(h)  = bits (h << 16) as float32                  exact, every pattern (NaN payloads,
//                                                              subnormals and infinities included)
//   from_float(f), with u = the bits of f:
//     NaN         -> (u >> 16) | 0x0040                       quiet NaN, sign and the top 6
//                                                              payload bits kept
//     otherwise   -> (u + 0x7FFF + ((u >> 16) & 1)) >> 16     round to nearest, ties to even
//
// The rounding is one integer add: it works across binades (a mantissa carry bumps the
// exponent), rounds subnormals like normals (bf16 keeps float32's exponent range, so every
// float32 subnormal rounds to a bf16 subnormal or to zero / the smallest normal), and turns
// values at or beyond the midpoint above the largest finite bf16 (0x7F7F, 3.3895e38) into
// infinity; +-inf stay +-inf (0x7F800000 + 0x7FFF has no carry into the sign).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define ALEXNET_HD __host__ __device__ __forceinline__
#else
#define ALEXNET_HD inline
#endif

namespace alexnet::bf16 {

ALEXNET_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

ALEXNET_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

ALEXNET_HD uint16_t from_bits(uint32_t u) {
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

ALEXNET_HD uint16_t from_float(float f) { return from_bits(float_bits(f)); }

ALEXNET_HD float to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

}  // namespace alexnet::bf16

#undef ALEXNET_HD
