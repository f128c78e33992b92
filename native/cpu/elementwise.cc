#include "elementwise.h"

#include <algorithm>
#include <cstring>

#include "../core/parallel.h"

namespace alexnet::cpu {

namespace {
constexpr int64_t kGrain = 1 << 16;        // elements: below ~64K stay on one core
constexpr int64_t kCopyGrain = 1 << 18;    // bytes
}  // namespace

void fill_f32(float* t, float value, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) { std::fill(t + lo, t + hi, value); });
}

void fill_i32(int32_t* t, int32_t value, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) { std::fill(t + lo, t + hi, value); });
}

void copy_bytes(void* dst, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  const bool overlap = d < s + bytes && s < d + bytes;
  if (overlap) {
    std::memmove(d, s, bytes);
    return;
  }
  parallel_for(0, static_cast<int64_t>(bytes), kCopyGrain, [=](int64_t lo, int64_t hi) {
    std::memcpy(d + lo, s + lo, static_cast<size_t>(hi - lo));
  });
}

void scale_f32(float* t, float alpha, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) t[i] *= alpha;
  });
}

void axpy_f32(float* y, float alpha, const float* x, int64_t n) {
  parallel_for(0, n, kGrain, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] += alpha * x[i];
  });
}

}  // namespace alexnet::cpu
