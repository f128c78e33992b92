// Local response normalisation across channels on the CPU, PyTorch's LocalResponseNorm:
//   y_c = x_c / D_c^beta,  D_c = k + alpha / size * sum_{c' in [c - size/2, c + (size-1)/2]} x_c'^2
// (integer halves, window clipped to [0, C)). Parallel over N and blocks of spatial positions.
#pragma once

#include <cstdint>

namespace alexnet::cpu {

// The options every backend accepts. cuDNN's LRN rejects a window outside [CUDNN_LRN_MIN_N,
// CUDNN_LRN_MAX_N] = [1, 16], k < CUDNN_LRN_MIN_K = 1e-5 and beta < CUDNN_LRN_MIN_BETA = 0.01;
// the CPU would compute those, but a model that trains on one device must run on the other,
// so the binding checks these limits before dispatch, on every device.
constexpr int64_t kLrnMinSize = 1;
constexpr int64_t kLrnMaxSize = 16;
constexpr double kLrnMinK = 1e-5;
constexpr double kLrnMinBeta = 0.01;

// Throws ERR_ARGUMENT "<op>: <option> must ..." naming the option and its limit when size,
// alpha, beta or k is outside what every backend accepts (alpha >= 0; alpha, beta, k finite).
void check_lrn_options(const char* op, int64_t size, double alpha, double beta, double k);

struct LrnParams {
  int64_t N = 0, C = 0, S = 0;  // input [N, C, S] (S = H*W, or L for rank 3)
  int64_t size = 1;
  float alpha = 1e-4f, beta = 0.75f, k = 1.f;
};

void lrn_forward(float* y,        // [N, C, S]
                 const float* x,  // [N, C, S]
                 const LrnParams& p);

// Exact gradient: dx_j = dy_j D_j^-beta
//   - (2 alpha beta / size) x_j sum_{c : j in window(c)} dy_c x_c D_c^(-beta-1).
// D is recomputed from x (the forward output is not needed).
void lrn_backward(float* dx,        // [N, C, S]
                  const float* dy,  // [N, C, S]
                  const float* x,   // [N, C, S]
                  const LrnParams& p);

}  // namespace alexnet::cpu
