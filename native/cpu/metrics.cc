#include "metrics.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "../core/parallel.h"
#include "loss.h"

namespace alexnet::cpu {

int32_t topk_correct(const float* logits, const int32_t* labels, int64_t B, int64_t C, int64_t k) {
  check_labels("topkCorrect", labels, B, C);
  std::atomic<int64_t> correct{0};
  parallel_for(0, B, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(C, 1)),
               [&](int64_t lo, int64_t hi) {
                 int64_t local = 0;
                 for (int64_t b = lo; b < hi; ++b) {
                   const float* z = logits + b * C;
                   const float t = z[labels[b]];
                   if (std::isnan(t)) continue;
                   int64_t greater = 0;
                   for (int64_t c = 0; c < C; ++c) greater += (z[c] > t || std::isnan(z[c])) ? 1 : 0;
                   if (greater < k) ++local;
                 }
                 correct += local;
               });
  return static_cast<int32_t>(correct.load());
}

}  // namespace alexnet::cpu
