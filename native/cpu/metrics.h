// Accuracy counts on the CPU.
#pragma once

#include <cstdint>

namespace alexnet::cpu {

// Number of rows b whose label is among the k largest logits: row b counts when fewer than k
// entries of logits[b, :] are strictly greater than logits[b, labels[b]] (so ties go in the
// label's favour). A NaN logit counts as greater than everything (like torch.topk); a row whose
// label's own logit is NaN never counts. Labels are checked first (ERR_ARGUMENT naming the row).
// 1 <= k <= C.
int32_t topk_correct(const float* logits,    // [B, C]
                     const int32_t* labels,  // [B]
                     int64_t B, int64_t C, int64_t k);

}  // namespace alexnet::cpu
