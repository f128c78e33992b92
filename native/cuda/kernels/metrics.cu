// Top-k correct counts: a row is correct when fewer than k logits are strictly greater than
// the logit of its label. NaN as on the CPU (native/cpu/metrics.cc): a NaN logit counts as
// greater, a row whose label logit is NaN is never correct.
#include "../ops.h"
#include "common.cuh"
#include "labels.cuh"

namespace alexnet::cuda {

namespace {

__global__ void topk_kernel(int32_t* __restrict__ correct, const float* __restrict__ logits /*[B,C]*/,
                            const int32_t* __restrict__ labels /*[B]*/, int64_t B, int64_t C, int64_t k) {
  GRID_STRIDE(b, B) {
    const int32_t label = labels[b];
    if (label < 0 || label >= C) continue;  // label_check_kernel reports it
    const float* row = logits + b * C;
    const float target = row[label];
    if (isnan(target)) continue;
    int64_t greater = 0;
    for (int64_t j = 0; j < C; ++j) greater += (row[j] > target || isnan(row[j])) ? 1 : 0;
    if (greater < k) atomicAdd(correct, 1);
  }
}

}  // namespace

void topk_correct(int device, int32_t* correct, const float* logits, const int32_t* labels, int64_t B,
                  int64_t C, int64_t k, DeviceErrorRecord* record) {
  const cudaStream_t s = stream_of(device);
  ALEXNET_CUDA_CALL(cudaMemsetAsync(correct, 0, sizeof(int32_t), s));
  if (B == 0) return;
  topk_kernel<<<blocks_for(B), kThreads, 0, s>>>(correct, logits, labels, B, C, k);
  ALEXNET_CUDA_CHECK_LAUNCH("topk_kernel");
  check_labels(record, labels, B, C, DeviceErrorOp::TopkCorrectLabel, nullptr, nullptr, correct, s);
}

}  // namespace alexnet::cuda
