// The SGD-with-momentum update over all parameters in one launch (they live in one buffer).
// Conventions as in native/cpu/sgd: PyTorch's (default) and Krizhevsky et al. 2012.
#include "../ops.h"
#include "common.cuh"

namespace alexnet::cuda {

namespace {

__global__ void sgd_kernel(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ buf,
                           int64_t n, SgdParams p) {
  GRID_STRIDE(i, n) {
    if (p.krizhevsky) {
      // v <- mu v - wd lr w - (1 - d) lr g ; w <- w + v   (v starts at 0)
      const float v0 = (buf == nullptr || p.first_step) ? 0.f : buf[i];
      const float v = p.momentum * v0 - p.weight_decay * p.lr * w[i] - (1.f - p.dampening) * p.lr * g[i];
      if (buf != nullptr) buf[i] = v;
      w[i] += v;
    } else {
      float d = g[i] + p.weight_decay * w[i];
      if (p.momentum != 0.f) {
        const float b = p.first_step ? d : p.momentum * buf[i] + (1.f - p.dampening) * d;
        buf[i] = b;
        d = p.nesterov ? d + p.momentum * b : b;
      }
      w[i] -= p.lr * d;
    }
  }
}

}  // namespace

void sgd_step(float* w, const float* g, float* buf, int64_t n, const SgdParams& p, void* stream) {
  if (n == 0) return;
  sgd_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(w, g, buf, n, p);
  ALEXNET_CUDA_CHECK_LAUNCH("sgd_kernel");
}

}  // namespace alexnet::cuda
