#include "lrn.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/error.h"
#include "../core/parallel.h"

namespace alexnet::cpu {

namespace {

constexpr int64_t kBlock = 256;  // spatial positions per task

// The channels in c's window: [c - size/2, c + (size-1)/2] clipped to [0, C).
inline int64_t win_lo(int64_t c, const LrnParams& p) { return std::max<int64_t>(c - p.size / 2, 0); }
inline int64_t win_hi(int64_t c, const LrnParams& p) {  // exclusive
  return std::min<int64_t>(c + (p.size - 1) / 2 + 1, p.C);
}

// D[i] = k + alpha/size * sum_{c' in window(c)} x[c', i] over one block of positions.
void window_denominator(float* D,        // [b]
                        const float* x,  // [C, S] (one image, block start applied)
                        int64_t c, int64_t b, const LrnParams& p) {
  const float scale = p.alpha / static_cast<float>(p.size);
  for (int64_t i = 0; i < b; ++i) D[i] = 0.f;
  for (int64_t cc = win_lo(c, p); cc < win_hi(c, p); ++cc) {
    const float* row = x + cc * p.S;
    for (int64_t i = 0; i < b; ++i) D[i] += row[i] * row[i];
  }
  for (int64_t i = 0; i < b; ++i) D[i] = p.k + scale * D[i];
}

// q[i] = D[i]^-beta (a vectorisable form for the usual beta = 0.75).
void neg_pow(float* q, const float* D, int64_t b, float beta) {
  if (beta == 0.75f) {
    for (int64_t i = 0; i < b; ++i) q[i] = 1.f / std::sqrt(D[i] * std::sqrt(D[i]));
  } else {
    for (int64_t i = 0; i < b; ++i) q[i] = std::pow(D[i], -beta);
  }
}

template <typename Fn>
void for_blocks(const LrnParams& p, Fn fn) {
  const int64_t blocks = (p.S + kBlock - 1) / kBlock;
  const int64_t per_task = p.C * std::min(p.S, kBlock) * std::max<int64_t>(p.size, 1);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(per_task, 1));
  parallel_for(0, p.N * blocks, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t n = t / blocks, i0 = (t % blocks) * kBlock;
      fn(n, i0, std::min(kBlock, p.S - i0));
    }
  });
}

}  // namespace

void lrn_forward(float* y, const float* x, const LrnParams& p) {
  for_blocks(p, [&](int64_t n, int64_t i0, int64_t b) {
    float D[kBlock], q[kBlock];
    const float* xn = x + n * p.C * p.S + i0;
    float* yn = y + n * p.C * p.S + i0;
    for (int64_t c = 0; c < p.C; ++c) {
      window_denominator(D, xn, c, b, p);
      neg_pow(q, D, b, p.beta);
      const float* xr = xn + c * p.S;
      float* yr = yn + c * p.S;
      for (int64_t i = 0; i < b; ++i) yr[i] = xr[i] * q[i];
    }
  });
}

void lrn_backward(float* dx, const float* dy, const float* x, const LrnParams& p) {
  const float coef = 2.f * p.alpha * p.beta / static_cast<float>(p.size);
  for_blocks(p, [&](int64_t n, int64_t i0, int64_t b) {
    // q[c] = D_c^-beta and t[c] = dy_c x_c D_c^(-beta-1) for the block's positions.
    std::vector<float> q(static_cast<size_t>(p.C * b)), t(static_cast<size_t>(p.C * b));
    float D[kBlock];
    const int64_t base = n * p.C * p.S + i0;
    const float* xn = x + base;
    const float* gn = dy + base;
    float* dn = dx + base;
    for (int64_t c = 0; c < p.C; ++c) {
      window_denominator(D, xn, c, b, p);
      float* qc = q.data() + c * b;
      float* tc = t.data() + c * b;
      neg_pow(qc, D, b, p.beta);
      const float* xr = xn + c * p.S;
      const float* gr = gn + c * p.S;
      for (int64_t i = 0; i < b; ++i) tc[i] = gr[i] * xr[i] * qc[i] / D[i];
    }
    // Channel j is in window(c) for c in [j - (size-1)/2, j + size/2].
    for (int64_t j = 0; j < p.C; ++j) {
      const int64_t clo = std::max<int64_t>(j - (p.size - 1) / 2, 0);
      const int64_t chi = std::min<int64_t>(j + p.size / 2 + 1, p.C);
      for (int64_t i = 0; i < b; ++i) D[i] = 0.f;
      for (int64_t c = clo; c < chi; ++c) {
        const float* tc = t.data() + c * b;
        for (int64_t i = 0; i < b; ++i) D[i] += tc[i];
      }
      const float* qj = q.data() + j * b;
      const float* xr = xn + j * p.S;
      const float* gr = gn + j * p.S;
      float* dr = dn + j * p.S;
      for (int64_t i = 0; i < b; ++i) dr[i] = gr[i] * qj[i] - coef * xr[i] * D[i];
    }
  });
}

}  // namespace alexnet::cpu
