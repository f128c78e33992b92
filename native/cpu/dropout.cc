#include "dropout.h"

#include <cmath>

#include "../core/parallel.h"

namespace alexnet::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;
}

uint32_t dropout_threshold(double p) {
  return static_cast<uint32_t>(std::ceil(p * 16777216.0));
}

float dropout_scale(double p) { return static_cast<float>(1.0 / (1.0 - p)); }

void dropout_forward(float* y, float* mask, const float* x, int64_t n, double p, uint64_t seed,
                     uint64_t offset) {
  const uint64_t key = dropout_key(seed);
  const uint32_t threshold = dropout_threshold(p);
  const float scale = dropout_scale(p);
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const bool keep = dropout_bits24(key, offset + static_cast<uint64_t>(i)) >= threshold;
      const float m = keep ? scale : 0.f;
      mask[i] = m;
      y[i] = x[i] * m;
    }
  });
}

void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * mask[i];
  });
}

}  // namespace alexnet::cpu
