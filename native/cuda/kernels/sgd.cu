// The SGD-with-momentum update over all parameters in one launch (they live in one buffer).
// The update rules of native/core/sgd.h, with exactly the arithmetic of native/cpu/sgd.cc: double
// precision, rounded once per element.
#include "../../core/bf16.h"
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

// The double operations one by one, each rounded: nvcc contracts a * b + c into one fused
// multiply-add by default (--fmad=true; ptxas may fuse even a plain mul.f64 / sub.f64 pair), which
// rounds once where sgd.h and the CPU (built with fp-contract=off) round twice. On random inputs
// that changed the stored float32 w or momentum buffer in about 1.2 of 10^4 elements with
// momentum 0.9 and weight decay 5e-4; __dmul_rn / __dadd_rn / __dsub_rn are never fused.
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double sub(double a, double b) { return __dsub_rn(a, b); }

// w16: null, or gets bf16(w) after the update (the bfloat16 copy of the weights, same pass).
__global__ void sgd_kernel(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ buf,
                           uint16_t* __restrict__ w16, const double* __restrict__ lr_device, int64_t n,
                           SgdParams p) {
  const double lr = lr_device != nullptr ? *lr_device : p.lr, mu = p.momentum, wd = p.weight_decay, damp = 1.0 - p.dampening;
  GRID_STRIDE(i, n) {
    const double wi = w[i];
    const double gi = add(static_cast<double>(g[i]), mul(wd, wi));
    if (mu == 0.0) {  // plain SGD in both conventions; the buffer is not touched
      w[i] = static_cast<float>(sub(wi, mul(lr, gi)));
    } else if (p.convention != SgdConvention::Krizhevsky) {  // PyTorch: b <- mu b + (1-d) g' (b = g' at first); w <- w - lr (nesterov ? g' + mu b : b)
      const double b = p.first_step ? gi : add(mul(mu, static_cast<double>(buf[i])), mul(damp, gi));
      const double step = p.nesterov ? add(gi, mul(mu, b)) : b;
      buf[i] = static_cast<float>(b);
      w[i] = static_cast<float>(sub(wi, mul(lr, step)));
    } else {  // Krizhevsky 2012: v <- mu v - lr (1-d) (g + wd w); w <- w + v
      const double v = sub(p.first_step ? 0.0 : mul(mu, static_cast<double>(buf[i])), mul(mul(lr, damp), gi));
      buf[i] = static_cast<float>(v);
      w[i] = static_cast<float>(add(wi, v));
    }
    if (w16 != nullptr) w16[i] = bf16::from_float(w[i]);
  }
}

}  // namespace

void sgd_step(int device, float* w, const float* g, float* buf, uint16_t* w16, const double* lr, int64_t n,
              const SgdParams& p) {
  if (n == 0) return;
  sgd_kernel<<<blocks_for(n), kThreads, 0, stream_of(device)>>>(w, g, buf, w16, lr, n, p);
  ALEXNET_CUDA_CHECK_LAUNCH("sgd_kernel");
}

}  // namespace alexnet::cuda
