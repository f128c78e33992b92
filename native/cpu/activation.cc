#include "activation.h"

#include "../core/parallel.h"

namespace alexnet::cpu {

namespace {
constexpr int64_t kGrain = 1 << 16;  // elementwise work below ~64K elements stays on one core
}

void relu_forward(float* y, const float* x, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
  });
}

void relu_backward(float* dx, const float* dy, const float* y, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    // dy is loaded unconditionally so the select vectorises (a conditional load would not)
    for (int64_t i = lo; i < hi; ++i) {
      const float g = dy[i];
      dx[i] = y[i] > 0.f ? g : 0.f;
    }
  });
}

}  // namespace alexnet::cpu
