// Elementwise in-place operators on the CPU: fill, copy, scale, axpy.
// All are split over the thread pool for large sizes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace alexnet::cpu {

// t[i] = value
void fill_f32(float* t,          // [n]
              float value, int64_t n);
void fill_i32(int32_t* t,        // [n]
              int32_t value, int64_t n);

// dst = src, `bytes` bytes. Ranges that overlap are copied with one memmove (in order);
// disjoint ranges are copied in parallel chunks.
void copy_bytes(void* dst,        // [bytes]
                const void* src,  // [bytes]
                size_t bytes);

// t *= alpha
void scale_f32(float* t,         // [n]
               float alpha, int64_t n);

// y += alpha * x (x may be y itself; partial overlaps are rejected by the binding)
void axpy_f32(float* y,          // [n]
              float alpha,
              const float* x,    // [n]
              int64_t n);

}  // namespace alexnet::cpu
