#include "dropout.h"

#include <algorithm>
#include <cstring>

#include "../core/bf16.h"
#include "../core/parallel.h"
#include "../core/rng.h"

namespace alexnet::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;

// v * m for one element: float32 exactly as multiplied, bfloat16 widened, multiplied, rounded once
inline float times(float v, float m) { return v * m; }
inline uint16_t times(uint16_t v, float m) { return bf16::from_float(bf16::to_float(v) * m); }

// c ? v : +0 as bit operations: GCC turns a select whose condition is random into a branch
// (which mispredicts half the time), but not an AND with a mask
inline float select_or_zero(bool c, float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  u &= 0u - static_cast<uint32_t>(c);
  std::memcpy(&v, &u, sizeof u);
  return v;
}
inline uint16_t select_or_zero(bool c, uint16_t v) { return v & static_cast<uint16_t>(0u - static_cast<uint32_t>(c)); }

inline bool positive(float v) { return !(v <= 0.f); }  // ReLU keeps x > 0 and NaN
inline bool positive(uint16_t v) { return !(bf16::to_float(v) <= 0.f); }

// The mask (scale or 0 from the counter-based bits of element offset + i, the same for every
// dtype) and y = x * mask; with p.relu, the mask is 0 where x <= 0 too and y = max(x, 0) * mask
// (0 there, exactly what ReLU then dropout give).
template <typename T, bool Relu>
void forward(T* y, float* mask, const T* x, int64_t n, const DropoutParams& p, uint64_t offset) {
  const uint64_t key = dropout_key(p.seed);
  const uint32_t threshold = p.threshold;
  const float scale = p.scale;
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    // Locals and restrict pointers: read through the closure, every value is reloaded after each
    // store (the stores might alias it) and nothing vectorises. In blocks that stay in L1, the
    // mask from the hash first, then x applied: the compiler keeps both loops free of branches
    // (a branch on keep, or on the sign of x, mispredicts half the time: one loop with branches
    // took the fused ReLU + dropout to 1.8x the CPU time of dropout alone on random signs).
    const uint64_t k = key, at = offset;
    const uint32_t th = threshold;
    const float sc = scale;
    float* __restrict__ mk = mask;
    const T* __restrict__ xs = x;
    T* __restrict__ ys = y;
    constexpr int64_t kBlock = 2048;
    for (int64_t b = lo; b < hi; b += kBlock) {
      const int64_t e = std::min(hi, b + kBlock);
      for (int64_t i = b; i < e; ++i)
        mk[i] = select_or_zero(dropout_bits24(k, at + static_cast<uint64_t>(i)) >= th, sc);
      for (int64_t i = b; i < e; ++i) {
        const T xi = xs[i];  // loads first, then the selects (a conditional load would not vectorise)
        const float mi = mk[i];
        if (Relu) {
          const bool pass = positive(xi);
          const float m = select_or_zero(pass, mi);
          mk[i] = m;
          ys[i] = times(select_or_zero(pass, xi), m);  // x <= 0: +0 * m = +0, as ReLU then dropout give
        } else {
          ys[i] = times(xi, mi);
        }
      }
    }
  });
}

// The stream position: the counter's value (read now, in queue order) plus p.offset, or p.offset;
// the counter advanced by p.advance after the draw.
template <typename T>
void forward(T* y, float* mask, const T* x, int64_t n, int32_t* counter, const DropoutParams& p) {
  const uint64_t base = counter != nullptr ? dropout_counter_read(counter) : 0;
  if (p.relu) forward<T, true>(y, mask, x, n, p, base + p.offset);
  else forward<T, false>(y, mask, x, n, p, base + p.offset);
  if (counter != nullptr) dropout_counter_write(counter, base + p.advance);
}

template <typename T>
void backward(T* dx, const T* dy, const float* mask, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = times(dy[i], mask[i]);
  });
}
}  // namespace

void dropout_forward(float* y, float* mask, const float* x, int64_t n, int32_t* counter, const DropoutParams& p) {
  forward(y, mask, x, n, counter, p);
}

void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n) { backward(dx, dy, mask, n); }

void dropout_forward_bf16(uint16_t* y, float* mask, const uint16_t* x, int64_t n, int32_t* counter,
                          const DropoutParams& p) {
  forward(y, mask, x, n, counter, p);
}

void dropout_backward_bf16(uint16_t* dx, const uint16_t* dy, const float* mask, int64_t n) {
  backward(dx, dy, mask, n);
}

}  // namespace alexnet::cpu
