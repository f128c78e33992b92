// The label check shared by the loss and the metric kernels: a label outside [0, C) cannot be
// thrown where a kernel finds it, so it goes to the device's error record (runtime.h), which
// the next read reports with the CPU's message. Included by loss.cu and metrics.cu (each gets
// its own copy of the kernel: anonymous namespace).
#pragma once

#include <math_constants.h>

#include <climits>

#include "common.cuh"

namespace alexnet::cuda {

namespace {

// One block. Finds the lowest row whose label is outside [0, C) (the row the CPU, scanning in
// order, reports); if there is one, poisons the outputs as the CPU does (loss and grad NaN,
// count -1) and claims the error record unless an earlier operator in stream order holds it.
// Launched after the operator's own kernels, so the poison is what stays.
__global__ void label_check_kernel(DeviceErrorRecord* __restrict__ record /*[1]*/,
                                   const int32_t* __restrict__ labels /*[B]*/, int64_t B, int64_t C,
                                   int32_t op, float* __restrict__ loss /*[1] or null*/,
                                   float* __restrict__ grad /*[B,C] or null*/,
                                   int32_t* __restrict__ count /*[1] or null*/) {
  __shared__ unsigned long long first_bad;
  if (threadIdx.x == 0) first_bad = ULLONG_MAX;
  __syncthreads();
  // Each thread walks its rows in increasing order, so its first hit is its lowest.
  for (int64_t b = threadIdx.x; b < B; b += blockDim.x) {
    const int32_t y = labels[b];
    if (y < 0 || y >= C) {
      atomicMin(&first_bad, static_cast<unsigned long long>(b));
      break;
    }
  }
  __syncthreads();
  const unsigned long long row = first_bad;
  if (row == ULLONG_MAX) return;
  if (grad != nullptr)
    for (int64_t i = threadIdx.x; i < B * C; i += blockDim.x) grad[i] = CUDART_NAN_F;
  if (threadIdx.x != 0) return;
  if (loss != nullptr) *loss = CUDART_NAN_F;
  if (count != nullptr) *count = -1;
  // Device memory, written by kernels on one stream only: the CAS keeps the first operator's
  // error until a read has taken it.
  if (atomicCAS(reinterpret_cast<int*>(&record->status), 0, 1) == 0) {
    record->op = op;
    record->row = static_cast<int64_t>(row);
    record->label = labels[row];
    record->classes = C;
  }
}

inline void check_labels(DeviceErrorRecord* record, const int32_t* labels, int64_t B, int64_t C,
                         DeviceErrorOp op, float* loss, float* grad, int32_t* count, cudaStream_t stream) {
  label_check_kernel<<<1, kThreads, 0, stream>>>(record, labels, B, C, static_cast<int32_t>(op), loss, grad,
                                                 count);
  ALEXNET_CUDA_CHECK_LAUNCH("label_check_kernel");
}

}  // namespace

}  // namespace alexnet::cuda
