#include "dropout.h"

#include "../core/bf16.h"
#include "../core/parallel.h"
#include "../core/rng.h"

namespace alexnet::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;

// The mask (scale or 0 from the counter-based bits of element offset + i, the same for every
// dtype) and y[i] = apply(x[i], m): float32 multiplies, bfloat16 multiplies its widened value
// and rounds once.
template <typename T, typename Apply>
void dropout_forward_with(T* y, float* mask, const T* x, int64_t n, const DropoutParams& p, Apply apply) {
  const uint64_t key = dropout_key(p.seed), offset = p.offset;
  const uint32_t threshold = p.threshold;
  const float scale = p.scale;
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const bool keep = dropout_bits24(key, offset + static_cast<uint64_t>(i)) >= threshold;
      const float m = keep ? scale : 0.f;
      mask[i] = m;
      y[i] = apply(x[i], m);
    }
  });
}
}  // namespace

void dropout_forward(float* y, float* mask, const float* x, int64_t n, const DropoutParams& p) {
  dropout_forward_with(y, mask, x, n, p, [](float v, float m) { return v * m; });
}

void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * mask[i];
  });
}

void dropout_forward_bf16(uint16_t* y, float* mask, const uint16_t* x, int64_t n, const DropoutParams& p) {
  dropout_forward_with(y, mask, x, n, p, [](uint16_t v, float m) { return bf16::from_float(bf16::to_float(v) * m); });
}

void dropout_backward_bf16(uint16_t* dx, const uint16_t* dy, const float* mask, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = bf16::from_float(bf16::to_float(dy[i]) * mask[i]);
  });
}

}  // namespace alexnet::cpu
