// Local response normalisation across channels, PyTorch's LocalResponseNorm convention:
//   y_c = x_c / D_c^beta,  D_c = k + alpha / size * sum_{c' in [c - size/2, c + (size-1)/2]} x_c'^2
// (integer halves, window clipped to [0, C)). The descriptor, its limits and its validation,
// taken as is by every backend (native/cpu/lrn.h, native/cuda/dnn.h) and by the benchmarks.
#pragma once

#include <cstdint>

#include "../tensor.h"

namespace alexnet {

// The options every backend accepts. cuDNN's LRN rejects a window outside [CUDNN_LRN_MIN_N,
// CUDNN_LRN_MAX_N] = [1, 16], k < CUDNN_LRN_MIN_K = 1e-5 and beta < CUDNN_LRN_MIN_BETA = 0.01;
// the CPU would compute those, but a model that trains on one device must run on the other,
// so these limits are checked before dispatch, on every device.
constexpr int64_t kLrnMinSize = 1;
constexpr int64_t kLrnMaxSize = 16;
constexpr double kLrnMinK = 1e-5;
constexpr double kLrnMinBeta = 0.01;

struct LrnParams {
  int64_t N = 0, C = 0, S = 0;  // input [N, C, S] (S = H*W, or L for rank 3)
  int64_t size = 1;
  float alpha = 1e-4f, beta = 0.75f, k = 1.f;  // the kernels compute in float32
};

// Throws ERR_ARGUMENT "<op>: <option> must ..." naming the option and its limit when size,
// alpha, beta or k is outside what every backend accepts (alpha >= 0; alpha, beta, k finite).
void check_lrn_options(const char* op, int64_t size, double alpha, double beta, double k);

// The input before any option is read: float32 of rank 3 or 4.
void check_lrn_input(const char* op, const Tensor& x);
// The window as soon as it is read (before the other options): a positive integer.
void check_lrn_size(const char* op, int64_t size);

// The descriptor of local_response_norm(x [N, C, H, W] or [N, C, L]). `odd_size_only`: the
// device's backend computes odd windows only (Backend::lrn_odd_size_only). Throws ERR_ARGUMENT
// naming `op` and the option.
LrnParams lrn_params(const char* op, const Shape& x, int64_t size, double alpha, double beta, double k,
                     bool odd_size_only);

}  // namespace alexnet
