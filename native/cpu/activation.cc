#include "activation.h"

#include "../core/bf16.h"
#include "../core/parallel.h"

namespace alexnet::cpu {

namespace {
constexpr int64_t kGrain = 1 << 16;  // elementwise work below ~64K elements stays on one core
}

// NaN propagates, as in PyTorch: "x <= 0" is false for NaN, so NaN is kept (with "x > 0 ? x : 0"
// a NaN weight or activation would silently become 0 and hide a diverged model).
void relu_forward(float* y /*[n]*/, const float* x /*[n]*/, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = x[i] <= 0.f ? 0.f : x[i];
  });
}

// dx = dy where y > 0 or y is NaN, 0 where y <= 0: PyTorch's threshold_backward ("y <= 0 ? 0 :
// dy"), so a NaN output passes its gradient through rather than cutting it.
void relu_backward(float* dx /*[n]*/, const float* dy /*[n]*/, const float* y /*[n]*/, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    // dy is loaded unconditionally so the select vectorises (a conditional load would not)
    for (int64_t i = lo; i < hi; ++i) {
      const float g = dy[i];
      dx[i] = y[i] <= 0.f ? 0.f : g;
    }
  });
}

// bfloat16: the comparison on the widened value (exact), the kept value's bits copied as they are.
void relu_forward_bf16(uint16_t* y /*[n]*/, const uint16_t* x /*[n]*/, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = bf16::to_float(x[i]) <= 0.f ? uint16_t{0} : x[i];
  });
}

void relu_backward_bf16(uint16_t* dx /*[n]*/, const uint16_t* dy /*[n]*/, const uint16_t* y /*[n]*/, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const uint16_t g = dy[i];
      dx[i] = bf16::to_float(y[i]) <= 0.f ? uint16_t{0} : g;
    }
  });
}

}  // namespace alexnet::cpu
