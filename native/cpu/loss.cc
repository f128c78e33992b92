#include "loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/error.h"
#include "../core/parallel.h"

namespace alexnet::cpu {

namespace {

// Rows per chunk: about 64K elements of work.
int64_t row_grain(int64_t C) { return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(C, 1)); }

double row_max(const float* z, int64_t C) {
  double m = -INFINITY;
  for (int64_t c = 0; c < C; ++c) m = std::max(m, static_cast<double>(z[c]));
  return m;
}

}  // namespace

void softmax_forward(float* probs, const float* logits, int64_t B, int64_t C) {
  if (C <= 0) return;
  parallel_for(0, B, row_grain(C), [=](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const float* z = logits + b * C;
      float* p = probs + b * C;
      const double m = row_max(z, C);
      double sum = 0.0;
      for (int64_t c = 0; c < C; ++c) sum += std::exp(static_cast<double>(z[c]) - m);
      const double inv = 1.0 / sum;
      for (int64_t c = 0; c < C; ++c)
        p[c] = static_cast<float>(std::exp(static_cast<double>(z[c]) - m) * inv);
    }
  });
}

void check_labels(const char* op, const int32_t* labels, int64_t B, int64_t C) {
  for (int64_t b = 0; b < B; ++b) {
    if (labels[b] < 0 || labels[b] >= C)
      fail(code::kArgument, op, ": label ", labels[b], " at row ", b, " is out of range [0, ", C,
           ")");
  }
}

void softmax_cross_entropy(float* loss, float* grad, const float* logits, const int32_t* labels,
                           int64_t B, int64_t C) {
  try {
    check_labels("softmaxCrossEntropy", labels, B, C);
  } catch (...) {
    // Leave no stale values behind for a later read: the outputs become NaN.
    loss[0] = NAN;
    std::fill(grad, grad + B * C, NAN);
    throw;
  }
  std::vector<double> row_loss(static_cast<size_t>(B), 0.0);
  double* rl = row_loss.data();
  const double inv_b = 1.0 / static_cast<double>(B);
  parallel_for(0, B, row_grain(C), [=](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const float* z = logits + b * C;
      float* g = grad + b * C;
      const int32_t y = labels[b];
      const double m = row_max(z, C);
      double sum = 0.0;
      for (int64_t c = 0; c < C; ++c) sum += std::exp(static_cast<double>(z[c]) - m);
      const double lse = m + std::log(sum);
      rl[b] = lse - static_cast<double>(z[y]);
      const double inv = 1.0 / sum;
      for (int64_t c = 0; c < C; ++c) {
        const double p = std::exp(static_cast<double>(z[c]) - m) * inv;
        g[c] = static_cast<float>((p - (c == y ? 1.0 : 0.0)) * inv_b);
      }
    }
  });
  double total = 0.0;  // summed in row order: the result does not depend on the thread count
  for (int64_t b = 0; b < B; ++b) total += rl[b];
  loss[0] = static_cast<float>(total * inv_b);
}

}  // namespace alexnet::cpu
