// Emulated checks of sgd.cu against the update rules of native/core/sgd.h, written out here in
// double with one rounding per stored value (w, the momentum buffer, the bf16 copy), compared
// bit for bit: the rule fixes every double operation, so there is no tolerance to grant.
#pragma GCC optimize("fp-contract=off")  // the reference's products and sums rounded one by one

#include "../../native/cuda/ops.h"
#include "harness.h"

namespace {

using namespace emu_test;
namespace cu = alexnet::cuda;
namespace bf16 = alexnet::bf16;
using alexnet::SgdConvention;
using alexnet::SgdParams;

const int64_t kSizes[] = {1, 255, 257, 3001};

struct State {
  std::vector<float> w, buf;
};

// One element of sgd.h's statement, in double.
void reference(const SgdParams& p, double lr, float& w, float& b, const float g) {
  const double wd = p.weight_decay, mu = p.momentum;
  const double gp = static_cast<double>(g) + wd * static_cast<double>(w);  // g' = g + wd * w
  if (mu == 0) {
    w = static_cast<float>(static_cast<double>(w) - lr * gp);
    return;
  }
  if (p.convention == SgdConvention::PyTorch) {
    const double bn = p.first_step ? gp : mu * static_cast<double>(b) + (1.0 - p.dampening) * gp;
    const double step = p.nesterov ? gp + mu * bn : bn;
    b = static_cast<float>(bn);
    w = static_cast<float>(static_cast<double>(w) - lr * step);
  } else {
    const double v = mu * (p.first_step ? 0.0 : static_cast<double>(b)) - lr * (1.0 - p.dampening) * gp;
    b = static_cast<float>(v);
    w = static_cast<float>(static_cast<double>(w) + v);
  }
}

double pick(std::initializer_list<double> choices) {
  const int i = static_cast<int>(randint(0, static_cast<int64_t>(choices.size()) - 1));
  return *(choices.begin() + i);
}
double runif(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng()); }

void run_one(const SgdParams& p, int64_t n, bool copy, bool lr_on_device, bool buf_given) {
  std::vector<float> w = uniform(n, -2.f, 2.f), g = uniform(n, -1.f, 1.f), buf = uniform(n, -0.5f, 0.5f);
  std::vector<float> want_w = w, want_buf = buf;
  std::vector<uint16_t> w16(n, 0x7fc1);  // a NaN the kernel must overwrite
  const double device_lr = runif(1e-3, 0.5);
  SgdParams q = p;
  if (lr_on_device) q.lr = 1e9;  // must not be used
  const double lr = lr_on_device ? device_lr : q.lr;
  for (int64_t i = 0; i < n; ++i) reference(p, lr, want_w[i], want_buf[i], g[i]);
  cu::sgd_step(0, w.data(), g.data(), buf_given ? buf.data() : nullptr, copy ? w16.data() : nullptr,
               lr_on_device ? &device_lr : nullptr, n, q);
  char what[200];
  std::snprintf(what, sizeof what, "%s mu %g damp %g wd %g nesterov %d first %d lr %s n %lld",
                p.convention == SgdConvention::PyTorch ? "pytorch" : "krizhevsky", p.momentum, p.dampening,
                p.weight_decay, p.nesterov, p.first_step, lr_on_device ? "device" : "param", static_cast<long long>(n));
  expect_same((std::string("w: ") + what).c_str(), w.data(), want_w.data(), n);
  // momentum 0: the buffer is neither read nor written (want_buf stayed as given)
  if (buf_given) expect_same((std::string("buf: ") + what).c_str(), buf.data(), want_buf.data(), n);
  if (copy) {
    std::vector<uint16_t> want16(n);
    for (int64_t i = 0; i < n; ++i) want16[i] = bf16::from_float(want_w[i]);
    expect_same_bits((std::string("w_bf16: ") + what).c_str(), w16.data(), want16.data(), n);
  }
}

EMU_CASE(sgd_step_rules) {
  for (SgdConvention conv : {SgdConvention::PyTorch, SgdConvention::Krizhevsky})
    for (int variant = 0; variant < 6; ++variant) {
      // each size in each convention, the special variants at other sizes in each; few launches (TSan)
      const int64_t n = kSizes[(variant + (conv == SgdConvention::Krizhevsky ? 1 : 0)) % 4];
      SgdParams p;
      p.convention = conv;
      p.lr = runif(1e-3, 0.5);
      p.momentum = variant == 0 || variant == 5 ? 0.0 : pick({0.9, runif(0.1, 0.99)});
      p.weight_decay = pick({0.0, 5e-4, runif(1e-5, 0.1)});
      p.first_step = variant == 2;
      p.nesterov = conv == SgdConvention::PyTorch && p.momentum > 0 && variant == 3;
      p.dampening = p.nesterov ? 0.0 : pick({0.0, runif(0.0, 1.0), 1.0});
      const bool copy = randint(0, 1) == 1;
      const bool lr_on_device = variant == 4 || randint(0, 2) == 0;
      // momentum 0: the buffer may be null (sometimes given, to see that it stays untouched)
      const bool buf_given = p.momentum != 0 || randint(0, 1) == 1;
      run_one(p, n, copy, lr_on_device, buf_given);
    }
  // n == 0 launches nothing
  cu::sgd_step(0, nullptr, nullptr, nullptr, nullptr, nullptr, 0, SgdParams{});
}

// Several steps in a row, the buffer carried over, lr changing (the conventions part ways),
// lr from device memory written between steps (what a replayed graph sees).
EMU_CASE(sgd_step_sequence) {
  for (SgdConvention conv : {SgdConvention::PyTorch, SgdConvention::Krizhevsky}) {
    const int64_t n = 777;
    std::vector<float> w = uniform(n, -2.f, 2.f), buf(n, 123.f), want_w = w, want_buf = buf;
    std::vector<uint16_t> w16(n);
    SgdParams p;
    p.convention = conv;
    p.momentum = 0.9;
    p.weight_decay = 5e-4;
    p.nesterov = conv == SgdConvention::PyTorch;
    double lr = 0;
    for (int step = 0; step < 4; ++step) {
      p.first_step = step == 0;
      lr = runif(1e-3, 0.3);  // the device copy of lr, written before each step
      const std::vector<float> g = uniform(n, -1.f, 1.f);
      for (int64_t i = 0; i < n; ++i) reference(p, lr, want_w[i], want_buf[i], g[i]);
      cu::sgd_step(0, w.data(), g.data(), buf.data(), w16.data(), &lr, n, p);
    }
    expect_same("w after 4 steps", w.data(), want_w.data(), n);
    expect_same("buf after 4 steps", buf.data(), want_buf.data(), n);
    std::vector<uint16_t> want16(n);
    for (int64_t i = 0; i < n; ++i) want16[i] = bf16::from_float(want_w[i]);
    expect_same_bits("w_bf16 after 4 steps", w16.data(), want16.data(), n);
  }
}

}  // namespace
