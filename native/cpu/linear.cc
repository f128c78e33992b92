#include "linear.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../core/parallel.h"
#include "gemm.h"

namespace alexnet::cpu {

namespace {
inline int64_t ld(int64_t cols) { return std::max<int64_t>(cols, 1); }
}  // namespace

void linear_forward(float* y, const float* x, const float* w, const float* bias, int64_t B,
                    int64_t in, int64_t out) {
  if (B <= 0 || out <= 0) return;
  if (bias != nullptr) {
    // Start every row of y at the bias, then add x W^T on top (beta = 1).
    parallel_for(0, B, std::max<int64_t>(1, (1 << 14) / out), [=](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) std::memcpy(y + b * out, bias, sizeof(float) * out);
    });
  }
  sgemm(false, true, B, out, in, 1.f, x, ld(in), w, ld(in), bias != nullptr ? 1.f : 0.f, y,
        ld(out));
}

void linear_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, int64_t B, int64_t in, int64_t out, bool accumulate) {
  const float beta = accumulate ? 1.f : 0.f;
  // dx[B, in] = dy[B, out] @ w[out, in]
  if (dx != nullptr) sgemm(false, false, B, in, out, 1.f, dy, ld(out), w, ld(in), 0.f, dx, ld(in));
  // dw[out, in] = dy^T[out, B] @ x[B, in]   (B == 0 gives zeros, or leaves dw when accumulating)
  sgemm(true, false, out, in, B, 1.f, dy, ld(out), x, ld(in), beta, dw, ld(in));
  if (db != nullptr) {
    // Column sums of dy, in double, each thread owning a slice of the columns.
    parallel_for(0, out, 256, [=](int64_t lo, int64_t hi) {
      std::vector<double> acc(static_cast<size_t>(hi - lo), 0.0);
      for (int64_t b = 0; b < B; ++b) {
        const float* row = dy + b * out;
        for (int64_t j = lo; j < hi; ++j) acc[static_cast<size_t>(j - lo)] += row[j];
      }
      for (int64_t j = lo; j < hi; ++j) {
        const double s = acc[static_cast<size_t>(j - lo)];
        db[j] = accumulate ? static_cast<float>(db[j] + s) : static_cast<float>(s);
      }
    });
  }
}

void matmul(float* c, const float* a, const float* b, int64_t M, int64_t N, int64_t K,
            bool trans_a, bool trans_b) {
  sgemm(trans_a, trans_b, M, N, K, 1.f, a, trans_a ? ld(M) : ld(K), b, trans_b ? ld(K) : ld(N),
        0.f, c, ld(N));
}

}  // namespace alexnet::cpu
