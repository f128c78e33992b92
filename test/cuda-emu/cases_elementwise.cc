// Emulated checks of elementwise.cu and activation.cu against float64 references.
#include "../../native/cuda/ops.h"
#include "harness.h"

namespace {

using namespace emu_test;
namespace cu = alexnet::cuda;

// Sizes around the block (256) and the grid-stride step, and a few odd ones.
const int64_t kSizes[] = {1, 31, 255, 256, 257, 1000, 4099};

EMU_CASE(fill_scale_axpy) {
  for (int64_t n : kSizes) {
    std::vector<float> t = uniform(n);
    const float v = uniform(1)[0];
    cu::fill(0, t.data(), v, n);
    std::vector<double> want(n, v);
    expect_close("fill", t, want, 0, 0);

    std::vector<int32_t> ti(n, 7);
    cu::fill_i32(0, ti.data(), -3, n);
    for (int64_t i = 0; i < n; ++i) EMU_CHECK(ti[i] == -3, "fill_i32 at " + std::to_string(i));

    std::vector<float> s = uniform(n);
    const float a = uniform(1, -3, 3)[0];
    for (int64_t i = 0; i < n; ++i) want[i] = static_cast<double>(static_cast<float>(s[i] * a));
    cu::scale(0, s.data(), a, n);
    expect_close("scale", s, want, 0, 0);

    std::vector<float> y = uniform(n), x = uniform(n);
    // y + a*x in float: the product may be fused (one rounding) or not, so 1 ulp of slack.
    for (int64_t i = 0; i < n; ++i) want[i] = static_cast<double>(y[i]) + static_cast<double>(a) * x[i];
    cu::axpy(0, y.data(), a, x.data(), n);
    expect_close("axpy", y, want, 1e-6, 1e-6);
  }
  // n == 0 launches nothing (a grid of 0 blocks would be refused by the GPU).
  cu::fill(0, nullptr, 1.f, 0);
  cu::scale(0, nullptr, 2.f, 0);
  cu::axpy(0, nullptr, 2.f, nullptr, 0);
}

}  // namespace
