// Local response normalisation across channels on the CPU, PyTorch's LocalResponseNorm:
//   y_c = x_c / D_c^beta,  D_c = k + alpha / size * sum_{c' in [c - size/2, c + (size-1)/2]} x_c'^2
// (integer halves, window clipped to [0, C)). Parallel over N and blocks of spatial positions.
// The descriptor, its limits and its validation are the core's (native/core/ops/lrn.h).
#pragma once

#include <cstdint>

#include "../core/ops/lrn.h"

namespace alexnet::cpu {

void lrn_forward(float* y,        // [N, C, S]
                 const float* x,  // [N, C, S]
                 const LrnParams& p);

// Exact gradient: dx_j = dy_j D_j^-beta
//   - (2 alpha beta / size) x_j sum_{c : j in window(c)} dy_c x_c D_c^(-beta-1).
// D is recomputed from x (the forward output is not needed).
void lrn_backward(float* dx,        // [N, C, S]
                  const float* dy,  // [N, C, S]
                  const float* x,   // [N, C, S]
                  const LrnParams& p);

}  // namespace alexnet::cpu
