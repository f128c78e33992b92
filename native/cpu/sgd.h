// SGD with momentum on the CPU, in place over flat buffers: the update rules of
// native/core/sgd.h (both conventions, nesterov, the first step, dampening), computed in double
// per element and rounded once, like the CUDA kernel.
#pragma once

#include <cstdint>

#include "../core/sgd.h"

namespace alexnet::cpu {

void sgd_step(float* w,          // [n] parameters, updated in place
              const float* g,    // [n] gradients
              float* buf,        // [n] momentum buffer (b or v), updated in place; null iff momentum == 0
              uint16_t* w_bf16,  // [n] or null: gets bf16(w) after the update, in the same pass
              int64_t n, const SgdParams& params);

}  // namespace alexnet::cpu
