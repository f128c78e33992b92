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

// The bfloat16 forms (raw bfloat16 patterns), same rules: y = x where x > 0 or x is NaN (its bits
// kept), +0 where x <= 0; dx = dy where y > 0 or NaN, +0 where y <= 0. Exact: no rounding.
void relu_forward_bf16(uint16_t* y,         // [n]
                       const uint16_t* x,   // [n]
                       int64_t n);
void relu_backward_bf16(uint16_t* dx,        // [n]
                        const uint16_t* dy,  // [n]
                        const uint16_t* y,   // [n]
                        int64_t n);

}  // namespace alexnet::cpu
