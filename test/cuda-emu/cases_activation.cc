// Emulated checks of activation.cu (ReLU, the bias + ReLU epilogue, the bias gradient) against
// float64 references.
#include <limits>

#include "../../native/core/error.h"
#include "../../native/cuda/ops.h"
#include "harness.h"

namespace {

using namespace emu_test;
namespace cu = alexnet::cuda;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kEps = 1.0 / (1 << 23);  // float32's unit roundoff times 2

// Random values with a few NaNs, negative zeros and exact zeros sprinkled in (ReLU's edge cases).
std::vector<float> with_edges(size_t n) {
  std::vector<float> v = uniform(n, -2.f, 2.f);
  for (size_t i = 0; i < n; i += 17) v[i] = (i / 17) % 3 == 0 ? kNaN : (i / 17) % 3 == 1 ? -0.f : 0.f;
  return v;
}

const int64_t kSizes[] = {1, 255, 256, 257, 3001};

EMU_CASE(relu_forward_backward_f32) {
  for (int64_t n : kSizes) {
    const std::vector<float> x = with_edges(n), dy = uniform(n);
    std::vector<float> y(n, 9.f), dx(n, 9.f);
    cu::relu_forward(0, y.data(), x.data(), n);
    std::vector<double> want(n);
    for (int64_t i = 0; i < n; ++i) want[i] = x[i] <= 0.0 ? 0.0 : x[i];  // NaN stays NaN
    expect_close("relu y", y, want, 0, 0);
    cu::relu_backward(0, dx.data(), dy.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) want[i] = y[i] <= 0.0 ? 0.0 : dy[i];  // a NaN output passes dy
    expect_close("relu dx", dx, want, 0, 0);
  }
}

EMU_CASE(relu_forward_backward_bf16) {
  for (int64_t n : kSizes) {
    const std::vector<uint16_t> x = to_bf16(with_edges(n)), dy = to_bf16(uniform(n));
    std::vector<uint16_t> y(n, 0x1234), dx(n, 0x1234), want(n);
    cu::relu_forward_bf16(0, y.data(), x.data(), n);
    for (int64_t i = 0; i < n; ++i) want[i] = alexnet::bf16::to_float(x[i]) <= 0.f ? 0 : x[i];
    expect_same_bits("relu bf16 y", y.data(), want.data(), n);
    cu::relu_backward_bf16(0, dx.data(), dy.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) want[i] = alexnet::bf16::to_float(y[i]) <= 0.f ? 0 : dy[i];
    expect_same_bits("relu bf16 dx", dx.data(), want.data(), n);
  }
}

struct Shape {
  int64_t N, C, S;
};
// S == 1 takes the row kernels (C over 256: two column blocks), S > 1 the plane kernels (S over
// 256: a plane wider than a block); N over the chunking threshold splits the bias gradient into
// parts summed through the scratch.
// (Small enough that the sanitizers' emulation stays quick: every block is 256 fibers.)
const Shape kShapes[] = {{1, 1, 1}, {3, 5, 1}, {7, 300, 1}, {17, 300, 1}, {130, 3, 1},
                         {2, 5, 3025}, {4, 3, 37}, {20, 3, 7}, {1, 2, 1000}, {9, 1, 300}};

EMU_CASE(bias_relu_forward) {
  for (const Shape& s : kShapes) {
    for (int mode = 0; mode < 3; ++mode) {  // bias + relu, bias only, relu only
      const bool has_bias = mode != 2, relu = mode != 1;
      const int64_t n = s.N * s.C * s.S;
      std::vector<float> y = with_edges(n);
      const std::vector<float> y0 = y, bias = uniform(s.C);
      cu::bias_relu_forward(0, y.data(), has_bias ? bias.data() : nullptr, s.N, s.C, s.S, relu);
      std::vector<double> want(n);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t c = (i / s.S) % s.C;
        const double v = static_cast<double>(y0[i]) + (has_bias ? bias[c] : 0.0);
        want[i] = relu && v <= 0 ? 0.0 : v;
      }
      // One float addition: within half an ulp of the exact sum (atol for sums that cancel).
      expect_close("bias_relu y", y, want, 1e-30, kEps / 2);
    }
  }
}

EMU_CASE(bias_backward) {
  for (const Shape& s : kShapes) {
    const int64_t n = s.N * s.C * s.S;
    const std::vector<float> dy = uniform(n);
    std::vector<double> sum(s.C, 0.0), abs_sum(s.C, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = (i / s.S) % s.C;
      sum[c] += dy[i];
      abs_sum[c] += std::fabs(dy[i]);
    }
    const int64_t scratch_n = cu::bias_backward_scratch(s.N, s.C, s.S);
    for (bool accumulate : {false, true}) {
      std::vector<float> db = uniform(s.C), again;
      const std::vector<float> db0 = db;
      std::vector<float> scratch(static_cast<size_t>(scratch_n));  // exactly what it asks for (ASan checks)
      cu::bias_backward(0, db.data(), dy.data(), s.N, s.C, s.S, accumulate, scratch_n ? scratch.data() : nullptr);
      const double terms = static_cast<double>(s.N * s.S + 1);
      for (int64_t c = 0; c < s.C; ++c) {
        const double want = (accumulate ? db0[c] : 0.0) + sum[c];
        // Float32 summation of `terms` values in any order: |error| <= terms * eps * sum |x|.
        const double tol = terms * kEps * (abs_sum[c] + std::fabs(db0[c])) + 1e-30;
        if (!(std::fabs(db[c] - want) <= tol))
          EMU_CHECK(false, "db[" + std::to_string(c) + "] = " + std::to_string(db[c]) + ", want " +
                               std::to_string(want) + " (N " + std::to_string(s.N) + " C " +
                               std::to_string(s.C) + " S " + std::to_string(s.S) + ")");
      }
      // Deterministic: the same shape sums in the same order.
      again = db0;
      cu::bias_backward(0, again.data(), dy.data(), s.N, s.C, s.S, accumulate, scratch_n ? scratch.data() : nullptr);
      expect_same("bias_backward rerun", again.data(), db.data(), s.C);
    }
    if (scratch_n > 0) {  // no scratch where one is needed: a typed error, nothing written
      std::vector<float> db = uniform(s.C);
      bool threw = false;
      try {
        cu::bias_backward(0, db.data(), dy.data(), s.N, s.C, s.S, false, nullptr);
      } catch (const alexnet::Error& e) {
        threw = e.code() == "ERR_CUDA";
      }
      EMU_CHECK(threw, "bias_backward without its scratch must throw ERR_CUDA");
    }
  }
  // Empty sums: zeros, or db unchanged when accumulating.
  std::vector<float> db = uniform(4);
  const std::vector<float> db0 = db;
  cu::bias_backward(0, db.data(), nullptr, 0, 4, 9, true, nullptr);
  expect_same("empty accumulate", db.data(), db0.data(), 4);
  cu::bias_backward(0, db.data(), nullptr, 3, 4, 0, false, nullptr);
  std::vector<float> zeros(4, 0.f);
  expect_same("empty", db.data(), zeros.data(), 4);
}

}  // namespace
