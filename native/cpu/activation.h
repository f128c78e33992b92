// ReLU on the CPU.
#pragma once

#include <cstdint>

namespace alexnet::cpu {

// y = max(x, 0)
void relu_forward(float* y,         // [n]
                  const float* x,   // [n]
                  int64_t n);

// dx = dy where y > 0, else 0 (y is the forward output; y > 0 <=> x > 0)
void relu_backward(float* dx,        // [n]
                   const float* dy,  // [n]
                   const float* y,   // [n]
                   int64_t n);

}  // namespace alexnet::cpu
