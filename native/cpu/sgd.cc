#include "sgd.h"

// No fused multiply-adds here: the update is specified as separate double roundings (the float64
// reference of test/reference/sgd.ts, bit for bit), and an FMA changes the float32 result where
// w - lr * g lands on a tie (about 2 in 10^4 elements at lr 0.1). Until the AVX builds were
// picked per call (simd.h), this file's target_clones only ever ran its baseline x86-64 build on
// CPUs other than Skylake-SP / Haswell themselves (arch= clones are chosen by CPU model), which
// has no FMA; with AVX2 / AVX-512 builds actually running, contraction must be off.
#pragma GCC optimize("fp-contract=off")

#include "../core/bf16.h"
#include "../core/parallel.h"
#include "simd.h"

namespace alexnet::cpu {

namespace {

constexpr int64_t kGrain = 1 << 15;

// The loops below take the bfloat16 copy as a template switch (kCopy: w16[i] = bf16(w[i]) after
// the update, in the same pass), inlined into each build of the functions that call them (simd.h).
#define ALEXNET_SGD_INLINE inline __attribute__((always_inline))

// The update of elements [lo, hi), in double like the CUDA kernel. Streaming five arrays is
// memory-bound only once the double arithmetic is vectorised wide enough: hence the builds per instruction set.
template <bool kCopy>
ALEXNET_SGD_INLINE void plain_loop(float* w, const float* g, uint16_t* w16, int64_t lo, int64_t hi, double lr,
                                   double wd) {
  for (int64_t i = lo; i < hi; ++i) {
    const double gi = static_cast<double>(g[i]) + wd * static_cast<double>(w[i]);
    const float wf = static_cast<float>(static_cast<double>(w[i]) - lr * gi);
    w[i] = wf;
    if constexpr (kCopy) w16[i] = bf16::from_float(wf);
  }
}
ALEXNET_SIMD_BODY void plain_range_body(float* w, const float* g, uint16_t* w16, int64_t lo, int64_t hi,
                                        double lr, double wd) {
  if (w16) plain_loop<true>(w, g, w16, lo, hi, lr, wd);
  else plain_loop<false>(w, g, w16, lo, hi, lr, wd);
}
ALEXNET_SIMD_DISPATCH(plain_range,
                      (float* w, const float* g, uint16_t* w16, int64_t lo, int64_t hi, double lr, double wd),
                      (w, g, w16, lo, hi, lr, wd))

// PyTorch: b = mu b + (1 - dampening) g (b = g on the first step); w -= lr (nesterov ? g + mu b : b)
template <bool kCopy>
ALEXNET_SGD_INLINE void pytorch_loop(float* w, const float* g, float* buf, uint16_t* w16, int64_t lo,
                                     int64_t hi, double lr, double mu, double wd, double damp,
                                     bool first, bool nesterov) {
  for (int64_t i = lo; i < hi; ++i) {
    const double wi = w[i];
    const double gi = static_cast<double>(g[i]) + wd * wi;
    const double b = first ? gi : mu * static_cast<double>(buf[i]) + damp * gi;
    const double step = nesterov ? gi + mu * b : b;
    buf[i] = static_cast<float>(b);
    const float wf = static_cast<float>(wi - lr * step);
    w[i] = wf;
    if constexpr (kCopy) w16[i] = bf16::from_float(wf);
  }
}
ALEXNET_SIMD_BODY void pytorch_range_body(float* w, const float* g, float* buf, uint16_t* w16, int64_t lo,
                                          int64_t hi, double lr, double mu, double wd, double damp,
                                          bool first, bool nesterov) {
  if (w16) pytorch_loop<true>(w, g, buf, w16, lo, hi, lr, mu, wd, damp, first, nesterov);
  else pytorch_loop<false>(w, g, buf, w16, lo, hi, lr, mu, wd, damp, first, nesterov);
}
ALEXNET_SIMD_DISPATCH(pytorch_range,
                      (float* w, const float* g, float* buf, uint16_t* w16, int64_t lo, int64_t hi, double lr,
                       double mu, double wd, double damp, bool first, bool nesterov),
                      (w, g, buf, w16, lo, hi, lr, mu, wd, damp, first, nesterov))

// Krizhevsky et al.: v = mu v - lr (1 - dampening) g (v = that with v = 0 first); w += v
template <bool kCopy>
ALEXNET_SGD_INLINE void krizhevsky_loop(float* w, const float* g, float* buf, uint16_t* w16, int64_t lo,
                                        int64_t hi, double lr, double mu, double wd, double damp,
                                        bool first) {
  for (int64_t i = lo; i < hi; ++i) {
    const double wi = w[i];
    const double gi = static_cast<double>(g[i]) + wd * wi;
    const double v = (first ? 0.0 : mu * static_cast<double>(buf[i])) - lr * damp * gi;
    buf[i] = static_cast<float>(v);
    const float wf = static_cast<float>(wi + v);
    w[i] = wf;
    if constexpr (kCopy) w16[i] = bf16::from_float(wf);
  }
}
ALEXNET_SIMD_BODY void krizhevsky_range_body(float* w, const float* g, float* buf, uint16_t* w16, int64_t lo,
                                             int64_t hi, double lr, double mu, double wd,
                                             double damp, bool first) {
  if (w16) krizhevsky_loop<true>(w, g, buf, w16, lo, hi, lr, mu, wd, damp, first);
  else krizhevsky_loop<false>(w, g, buf, w16, lo, hi, lr, mu, wd, damp, first);
}
ALEXNET_SIMD_DISPATCH(krizhevsky_range,
                      (float* w, const float* g, float* buf, uint16_t* w16, int64_t lo, int64_t hi, double lr,
                       double mu, double wd, double damp, bool first),
                      (w, g, buf, w16, lo, hi, lr, mu, wd, damp, first))

#undef ALEXNET_SGD_INLINE

}  // namespace

void sgd_step(float* w, const float* g, float* buf, uint16_t* w16, int64_t n, const SgdParams& p) {
  const double lr = p.lr, mu = p.momentum, wd = p.weight_decay;
  const double damp = 1.0 - p.dampening;
  const bool first = p.first_step, nesterov = p.nesterov;
  if (mu == 0.0) {
    parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) { plain_range(w, g, w16, lo, hi, lr, wd); });
  } else if (p.convention == SgdConvention::PyTorch) {
    parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
      pytorch_range(w, g, buf, w16, lo, hi, lr, mu, wd, damp, first, nesterov);
    });
  } else {
    parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
      krizhevsky_range(w, g, buf, w16, lo, hi, lr, mu, wd, damp, first);
    });
  }
}

}  // namespace alexnet::cpu
