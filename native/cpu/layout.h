// Memory formats on the CPU: the permutation between PyTorch's contiguous [N, C, H, W] and
// channels-last [N, H, W, C] (docs/architecture.md, decision 14), for 4-byte (float32) and
// 2-byte (bfloat16 patterns) elements. The CPU's channels-last operators are its NCHW kernels
// between two of these (native/cpu/backend.cc): the readable reference the CUDA path is
// checked against, not a fast path.
#pragma once

#include <cstdint>

namespace alexnet::cpu {

// y[n, s, c] = x[n, c, s]   (S = H*W)
template <typename T>
void nchw_to_nhwc(T* y,        // [N, S, C]
                  const T* x,  // [N, C, S]
                  int64_t N, int64_t C, int64_t S);
// y[n, c, s] = x[n, s, c]
template <typename T>
void nhwc_to_nchw(T* y,        // [N, C, S]
                  const T* x,  // [N, S, C]
                  int64_t N, int64_t C, int64_t S);

}  // namespace alexnet::cpu
