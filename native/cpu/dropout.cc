#include "dropout.h"

#include "../core/bf16.h"
#include "../core/parallel.h"
#include "../core/rng.h"

namespace alexnet::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;

// v * m for one element: float32 exactly as multiplied, bfloat16 widened, multiplied, rounded once
inline float times(float v, float m) { return v * m; }
inline uint16_t times(uint16_t v, float m) { return bf16::from_float(bf16::to_float(v) * m); }

// The mask (scale or 0 from the counter-based bits of element offset + i, the same for every
// dtype) and y = x * mask.
template <typename T>
void forward(T* y, float* mask, const T* x, int64_t n, const DropoutParams& p) {
  const uint64_t key = dropout_key(p.seed), offset = p.offset;
  const uint32_t threshold = p.threshold;
  const float scale = p.scale;
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const bool keep = dropout_bits24(key, offset + static_cast<uint64_t>(i)) >= threshold;
      const float m = keep ? scale : 0.f;
      mask[i] = m;
      y[i] = times(x[i], m);
    }
  });
}

template <typename T>
void backward(T* dx, const T* dy, const float* mask, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = times(dy[i], mask[i]);
  });
}
}  // namespace

void dropout_forward(float* y, float* mask, const float* x, int64_t n, const DropoutParams& p) {
  forward(y, mask, x, n, p);
}

void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n) { backward(dx, dy, mask, n); }

void dropout_forward_bf16(uint16_t* y, float* mask, const uint16_t* x, int64_t n, const DropoutParams& p) {
  forward(y, mask, x, n, p);
}

void dropout_backward_bf16(uint16_t* dx, const uint16_t* dy, const float* mask, int64_t n) {
  backward(dx, dy, mask, n);
}

}  // namespace alexnet::cpu
