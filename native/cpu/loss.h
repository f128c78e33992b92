// Softmax and the fused softmax cross-entropy loss (mean over the batch) on the CPU.
// Each row is computed in double after subtracting its maximum, so logits like 1e4 are fine.
#pragma once

#include <cstdint>

namespace alexnet::cpu {

// probs[b, :] = exp(z[b, :] - max_b) / sum(exp(z[b, :] - max_b))
void softmax_forward(float* probs,         // [B, C]
                     const float* logits,  // [B, C]
                     int64_t B, int64_t C);

// Throws ERR_ARGUMENT ("softmaxCrossEntropy: label 7 at row 2 is out of range [0, 5)") for the
// first row whose label is not in [0, C); nothing is written then.
void check_labels(const char* op,
                  const int32_t* labels,   // [B]
                  int64_t B, int64_t C);

// loss[0]        = (1/B) sum_b (logsumexp(z[b, :]) - z[b, labels[b]])
// grad[b, c]     = (softmax(z[b, :])[c] - [c == labels[b]]) / B
// Labels are checked first (check_labels); on a bad label loss and grad are set to NaN before
// the error is thrown. B >= 1, C >= 1.
void softmax_cross_entropy(float* loss,          // [] (one element)
                           float* grad,          // [B, C]
                           const float* logits,  // [B, C]
                           const int32_t* labels,// [B]
                           int64_t B, int64_t C);

}  // namespace alexnet::cpu
