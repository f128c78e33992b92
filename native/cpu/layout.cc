#include "layout.h"

#include <algorithm>

#include "../core/parallel.h"

namespace alexnet::cpu {

namespace {

// The transpose of one [rows, cols] matrix into [cols, rows], in 32x32
// blocks so that both sides stay in cache.
template <typename T>
void transpose(T* dst, const T* src, int64_t rows, int64_t cols) {
  constexpr int64_t kB = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kB)
    for (int64_t c0 = 0; c0 < cols; c0 += kB) {
      const int64_t r1 = std::min(rows, r0 + kB), c1 = std::min(cols, c0 + kB);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
    }
}

template <typename T>
void transpose_batch(T* dst, const T* src, int64_t N, int64_t rows, int64_t cols) {
  const int64_t plane = rows * cols;
  if (plane == 0) return;
  parallel_for(0, N, std::max<int64_t>(1, 65536 / plane), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) transpose(dst + n * plane, src + n * plane, rows, cols);
  });
}

}  // namespace

template <typename T>
void nchw_to_nhwc(T* y, const T* x, int64_t N, int64_t C, int64_t S) {
  transpose_batch(y, x, N, C, S);
}

template <typename T>
void nhwc_to_nchw(T* y, const T* x, int64_t N, int64_t C, int64_t S) {
  transpose_batch(y, x, N, S, C);
}

template void nchw_to_nhwc<float>(float*, const float*, int64_t, int64_t, int64_t);
template void nchw_to_nhwc<uint16_t>(uint16_t*, const uint16_t*, int64_t, int64_t, int64_t);
template void nhwc_to_nchw<float>(float*, const float*, int64_t, int64_t, int64_t);
template void nhwc_to_nchw<uint16_t>(uint16_t*, const uint16_t*, int64_t, int64_t, int64_t);

}  // namespace alexnet::cpu
