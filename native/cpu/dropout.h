// Inverted dropout on the CPU, with the counter-based, stateless random stream of
// native/core/rng.h (the CUDA kernel calls the same functions, so both backends draw exactly the
// same mask for the same seed and offset). The descriptor (p, seed, offset and the threshold and
// scale derived from p) is native/core/ops/dropout.h.
#pragma once

#include <cstdint>

#include "../core/ops/dropout.h"

namespace alexnet::cpu {

// mask[i] = keep(i) ? scale : 0; y[i] = x[i] * mask[i]   (keep(i) as in native/core/rng.h, at
// counter offset + i, or *counter + offset + i with a counter, which then advances by p.advance;
// p.relu: ReLU first, mask 0 where x <= 0; see native/core/ops/dropout.h)
void dropout_forward(float* y,           // [n]
                     float* mask,        // [n]
                     const float* x,     // [n]
                     int64_t n,
                     int32_t* counter,   // [2] (a uint64's bits) or null
                     const DropoutParams& p);

// dx = dy * mask
void dropout_backward(float* dx,         // [n]
                      const float* dy,   // [n]
                      const float* mask, // [n]
                      int64_t n);

// bfloat16 x, y, dy, dx; the mask float32, the very mask dropout_forward draws for the same
// descriptor (same seed and offset: same elements kept, same scale). Products in float32,
// rounded once: y = bf16(x * mask), dx = bf16(dy * mask).
void dropout_forward_bf16(uint16_t* y,          // [n]
                          float* mask,          // [n]
                          const uint16_t* x,    // [n]
                          int64_t n,
                          int32_t* counter,     // [2] or null
                          const DropoutParams& p);
void dropout_backward_bf16(uint16_t* dx,        // [n]
                           const uint16_t* dy,  // [n]
                           const float* mask,   // [n]
                           int64_t n);

}  // namespace alexnet::cpu
