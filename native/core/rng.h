// The counter-based random stream of dropout, shared by every backend: the CPU loop
// (native/cpu/dropout.cc) and the CUDA kernel (native/cuda/kernels/dropout.cu) call these same
// inline functions, so both draw the same mask for the same seed and offset.
//
// The stream (all arithmetic on unsigned 64-bit integers, modulo 2^64):
//
//   GAMMA = 0x9E3779B97F4A7C15
//   mix64(z):  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//              z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//              return z ^ (z >> 31)                          (SplitMix64's finaliser)
//   key       = mix64(seed + GAMMA)
//   bits(c)   = mix64(key + (c + 1) * GAMMA) >> 40           (top 24 bits, in [0, 2^24))
//   u(c)      = bits(c) / 2^24                               (uniform in [0, 1), exact in float)
//
// i.e. bits(c) is the top 24 bits of output number c of a SplitMix64 generator whose state
// starts at key. Element i of a call with (seed, offset) uses counter c = offset + i and is
// kept iff u(c) >= p, which is computed exactly in integers as
//
//   keep(i)   = bits(offset + i) >= threshold,   threshold = ceil(p * 2^24)   (p * 2^24 is exact
//                                                                              in double)
//   mask[i]   = keep(i) ? scale : 0,             scale = (float)(1.0 / (1.0 - p))  (computed in
//                                                                              double, rounded once)
//   y[i]      = x[i] * mask[i]                   (one float multiply)
//
// seed is an integer in [0, 2^53), offset an integer >= 0. p = 0 keeps everything (mask 1).
#pragma once

#include <cmath>
#include <cstdint>

// nvcc compiles these for the device too; g++ sees plain inline functions.
#ifdef __CUDACC__
#define ALEXNET_HOST_DEVICE __host__ __device__
#else
#define ALEXNET_HOST_DEVICE
#endif

namespace alexnet {

#define ALEXNET_DROPOUT_GAMMA 0x9E3779B97F4A7C15ull
inline constexpr uint64_t kDropoutGamma = ALEXNET_DROPOUT_GAMMA;

ALEXNET_HOST_DEVICE inline uint64_t dropout_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

ALEXNET_HOST_DEVICE inline uint64_t dropout_key(uint64_t seed) { return dropout_mix64(seed + ALEXNET_DROPOUT_GAMMA); }

// The 24 random bits of counter c for a stream with the given key.
ALEXNET_HOST_DEVICE inline uint32_t dropout_bits24(uint64_t key, uint64_t c) {
  return static_cast<uint32_t>(dropout_mix64(key + (c + 1) * ALEXNET_DROPOUT_GAMMA) >> 40);
}

// ceil(p * 2^24) for p in [0, 1) (host only: computed once per call, passed to the kernels)
inline uint32_t dropout_threshold(double p) { return static_cast<uint32_t>(std::ceil(p * 16777216.0)); }
// (float)(1 / (1 - p))
inline float dropout_scale(double p) { return static_cast<float>(1.0 / (1.0 - p)); }

}  // namespace alexnet
