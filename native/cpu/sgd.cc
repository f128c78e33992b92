#include "sgd.h"

#include "../core/parallel.h"

namespace alexnet::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;
}

void sgd_step(float* w, const float* g, float* buf, int64_t n, const SgdParams& p) {
  const double lr = p.lr, mu = p.momentum, wd = p.weight_decay;
  const double damp = 1.0 - p.dampening;
  const bool first = p.first_step, nesterov = p.nesterov;
  if (mu == 0.0) {
    parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const double gi = static_cast<double>(g[i]) + wd * static_cast<double>(w[i]);
        w[i] = static_cast<float>(static_cast<double>(w[i]) - lr * gi);
      }
    });
    return;
  }
  if (p.convention == SgdConvention::PyTorch) {
    parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const double wi = w[i];
        const double gi = static_cast<double>(g[i]) + wd * wi;
        const double b = first ? gi : mu * static_cast<double>(buf[i]) + damp * gi;
        const double step = nesterov ? gi + mu * b : b;
        buf[i] = static_cast<float>(b);
        w[i] = static_cast<float>(wi - lr * step);
      }
    });
  } else {
    parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const double wi = w[i];
        const double gi = static_cast<double>(g[i]) + wd * wi;
        const double v = (first ? 0.0 : mu * static_cast<double>(buf[i])) - lr * damp * gi;
        buf[i] = static_cast<float>(v);
        w[i] = static_cast<float>(wi + v);
      }
    });
  }
}

}  // namespace alexnet::cpu
