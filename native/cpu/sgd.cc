#include "sgd.h"

#include "../core/parallel.h"
#include "simd.h"

namespace alexnet::cpu {

namespace {

constexpr int64_t kGrain = 1 << 15;

// The update of elements [lo, hi), in double like the CUDA kernel. Streaming five arrays is
// memory-bound only once the double arithmetic is vectorised wide enough: hence the clones.
ALEXNET_SIMD_CLONES void plain_range(float* w, const float* g, int64_t lo, int64_t hi, double lr,
                                     double wd) {
  for (int64_t i = lo; i < hi; ++i) {
    const double gi = static_cast<double>(g[i]) + wd * static_cast<double>(w[i]);
    w[i] = static_cast<float>(static_cast<double>(w[i]) - lr * gi);
  }
}

// PyTorch: b = mu b + (1 - dampening) g (b = g on the first step); w -= lr (nesterov ? g + mu b : b)
ALEXNET_SIMD_CLONES void pytorch_range(float* w, const float* g, float* buf, int64_t lo,
                                       int64_t hi, double lr, double mu, double wd, double damp,
                                       bool first, bool nesterov) {
  for (int64_t i = lo; i < hi; ++i) {
    const double wi = w[i];
    const double gi = static_cast<double>(g[i]) + wd * wi;
    const double b = first ? gi : mu * static_cast<double>(buf[i]) + damp * gi;
    const double step = nesterov ? gi + mu * b : b;
    buf[i] = static_cast<float>(b);
    w[i] = static_cast<float>(wi - lr * step);
  }
}

// Krizhevsky et al.: v = mu v - lr (1 - dampening) g (v = that with v = 0 first); w += v
ALEXNET_SIMD_CLONES void krizhevsky_range(float* w, const float* g, float* buf, int64_t lo,
                                          int64_t hi, double lr, double mu, double wd,
                                          double damp, bool first) {
  for (int64_t i = lo; i < hi; ++i) {
    const double wi = w[i];
    const double gi = static_cast<double>(g[i]) + wd * wi;
    const double v = (first ? 0.0 : mu * static_cast<double>(buf[i])) - lr * damp * gi;
    buf[i] = static_cast<float>(v);
    w[i] = static_cast<float>(wi + v);
  }
}

}  // namespace

void sgd_step(float* w, const float* g, float* buf, int64_t n, const SgdParams& p) {
  const double lr = p.lr, mu = p.momentum, wd = p.weight_decay;
  const double damp = 1.0 - p.dampening;
  const bool first = p.first_step, nesterov = p.nesterov;
  if (mu == 0.0) {
    parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) { plain_range(w, g, lo, hi, lr, wd); });
  } else if (p.convention == SgdConvention::PyTorch) {
    parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
      pytorch_range(w, g, buf, lo, hi, lr, mu, wd, damp, first, nesterov);
    });
  } else {
    parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
      krizhevsky_range(w, g, buf, lo, hi, lr, mu, wd, damp, first);
    });
  }
}

}  // namespace alexnet::cpu
