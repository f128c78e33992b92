// Emulated checks of dropout.cu: the mask against the stream of native/core/rng.h (its
// dropout_key / dropout_bits24 / dropout_threshold / dropout_scale are the shared spec; the
// element-to-counter mapping, the ReLU fold, the products and the device counter's arithmetic
// are computed here on their own), y = x * mask (bf16: the float product, then bf16), dx = dy * mask.
#include <cstdint>
#include <limits>

#include "../../native/core/rng.h"
#include "../../native/cuda/ops.h"
#include "harness.h"

namespace {

using namespace emu_test;
namespace cu = alexnet::cuda;
namespace bf16 = alexnet::bf16;

// Sizes around the block (256) and odd ones; few launches (each spawns its block's threads, slow under TSan).
const int64_t kSizes[] = {1, 255, 257, 4099};

// x with a few NaNs, infinities and signed zeros among uniform values (ReLU's and dropout's edge cases).
std::vector<float> inputs(int64_t n) {
  std::vector<float> x = uniform(n, -2.f, 2.f);
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            0.f, -0.f};
  for (int64_t i = 0; i < n; ++i)
    if (randint(0, 40) == 0) x[i] = specials[randint(0, 5)];
  return x;
}

alexnet::DropoutParams params(double p, bool relu) {
  alexnet::DropoutParams d;
  d.p = p;
  d.seed = static_cast<uint64_t>(randint(0, (int64_t{1} << 53) - 1));
  d.offset = static_cast<uint64_t>(randint(0, int64_t{1} << 40));
  d.threshold = alexnet::dropout_threshold(p);
  d.scale = alexnet::dropout_scale(p);
  d.relu = relu;
  return d;
}

// The expected mask for a stream position `start` (element i draws counter start + i, mod 2^64).
std::vector<float> want_mask(const std::vector<float>& x, uint64_t seed, uint64_t start, double p, bool relu) {
  const uint64_t key = alexnet::dropout_key(seed);
  const uint32_t threshold = alexnet::dropout_threshold(p);
  const float scale = alexnet::dropout_scale(p);
  std::vector<float> m(x.size());
  uint64_t c = start;
  for (size_t i = 0; i < x.size(); ++i, ++c) {
    const bool keep = alexnet::dropout_bits24(key, c) >= threshold;
    const bool pass = !relu || x[i] > 0.f || std::isnan(x[i]);
    m[i] = keep && pass ? scale : 0.f;
  }
  return m;
}

// y = (ReLU'd x) * m: the product of two floats is exact in double, so one rounding to float.
float product(float v, float m) { return static_cast<float>(static_cast<double>(v) * static_cast<double>(m)); }
std::vector<float> want_y(const std::vector<float>& x, const std::vector<float>& m, bool relu) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const bool pass = !relu || x[i] > 0.f || std::isnan(x[i]);
    y[i] = product(pass ? x[i] : 0.f, m[i]);  // ReLU gives +0 where x <= 0
  }
  return y;
}

// The counter words as the uint64 they hold, by hand (word 0 low, word 1 high).
uint64_t counter_value(const int32_t w[2]) {
  return static_cast<uint64_t>(static_cast<uint32_t>(w[0])) + static_cast<uint64_t>(static_cast<uint32_t>(w[1])) * 4294967296ull;
}

double random_p() {
  switch (randint(0, 5)) {
    case 0: return 0.0;  // keeps everything, mask 1
    case 1: return 0.5;
    default: return std::uniform_real_distribution<double>(0.01, 0.95)(rng());
  }
}

EMU_CASE(dropout_forward_f32_host_offset) {
  for (int64_t n : kSizes)
    for (bool relu : {false, true}) {
      const double p = random_p();
      const alexnet::DropoutParams d = params(p, relu);
      const std::vector<float> x = inputs(n);
      std::vector<float> y(n, 7.f), mask(n, 7.f);
      cu::dropout_forward(0, y.data(), mask.data(), x.data(), n, nullptr, d);
      const std::vector<float> m = want_mask(x, d.seed, d.offset, p, relu);
      expect_same_bits("mask", mask.data(), m.data(), n);
      expect_same_bits("y", y.data(), want_y(x, m, relu).data(), n);
      // the kept fraction is about 1 - p (a wrong threshold or key would shift it)
      if (n >= 1000 && !relu) {
        int64_t kept = 0;
        for (float v : mask) kept += v != 0.f;
        EMU_CHECK(std::fabs(kept / double(n) - (1 - p)) < 0.06, "kept fraction " + std::to_string(kept / double(n)) +
                                                                   " for p " + std::to_string(p));
      }
    }
  // an offset where offset + i crosses 2^32 and one where it wraps past 2^64
  for (uint64_t offset : {0xFFFFFF80ull, 0xFFFFFFFFFFFFFF00ull}) {
    alexnet::DropoutParams d = params(0.3, false);
    d.offset = offset;
    const int64_t n = 600;
    const std::vector<float> x = inputs(n);
    std::vector<float> y(n), mask(n);
    cu::dropout_forward(0, y.data(), mask.data(), x.data(), n, nullptr, d);
    const std::vector<float> m = want_mask(x, d.seed, offset, 0.3, false);
    expect_same_bits("mask (offset near 2^32 / 2^64)", mask.data(), m.data(), n);
    expect_same_bits("y (offset near 2^32 / 2^64)", y.data(), want_y(x, m, false).data(), n);
  }
  // n == 0 launches nothing and, without a counter, touches nothing
  cu::dropout_forward(0, nullptr, nullptr, nullptr, 0, nullptr, params(0.5, false));
}

// The device counter: element i draws *counter + offset + i; *counter += advance afterwards
// (carrying from word 0 into word 1, wrapping mod 2^64); advance 0 leaves it as it was.
EMU_CASE(dropout_forward_device_counter) {
  struct Start {
    uint64_t counter, advance;
  };
  const Start starts[] = {
      {static_cast<uint64_t>(randint(0, int64_t{1} << 31)), static_cast<uint64_t>(randint(1, 5000))},
      {0xFFFFFFF0ull, 0x100},                          // advance carries into the high word
      {0x00000001FFFFFFFFull, 1},                      // carry by one
      {0x12345678FFFFFE00ull, 0xFFFFFFFFull},          // the low word's full range
      {0xFFFFFFFFFFFFFFF0ull, 0x20},                   // wraps past 2^64
      {static_cast<uint64_t>(randint(0, int64_t{1} << 62)), 0},  // no advance
  };
  for (const Start& s : starts) {
    const int64_t n = randint(257, 700);
    const bool relu = randint(0, 1) == 1;
    const double p = random_p();
    alexnet::DropoutParams d = params(p, relu);
    d.advance = s.advance;
    int32_t counter[2];
    counter[0] = static_cast<int32_t>(static_cast<uint32_t>(s.counter & 0xFFFFFFFFu));
    counter[1] = static_cast<int32_t>(static_cast<uint32_t>(s.counter >> 32));
    const std::vector<float> x = inputs(n);
    std::vector<float> y(n), mask(n);
    cu::dropout_forward(0, y.data(), mask.data(), x.data(), n, counter, d);
    const std::vector<float> m = want_mask(x, d.seed, s.counter + d.offset, p, relu);
    expect_same_bits("mask (counter)", mask.data(), m.data(), n);
    expect_same_bits("y (counter)", y.data(), want_y(x, m, relu).data(), n);
    // advanced by hand, in 32-bit words with the carry
    const uint64_t lo = (s.counter & 0xFFFFFFFFu) + (s.advance & 0xFFFFFFFFu);
    const uint32_t want_lo = static_cast<uint32_t>(lo);
    const uint32_t want_hi = static_cast<uint32_t>((s.counter >> 32) + (s.advance >> 32) + (lo >> 32));
    EMU_CHECK(static_cast<uint32_t>(counter[0]) == want_lo && static_cast<uint32_t>(counter[1]) == want_hi,
              "counter after: " + std::to_string(counter_value(counter)) + ", want " +
                  std::to_string(s.counter + s.advance));
    // a second call with the advanced counter draws the following stream position
    if (s.advance != 0) {
      std::vector<float> y3(n), mask3(n);
      cu::dropout_forward(0, y3.data(), mask3.data(), x.data(), n, counter, d);
      const std::vector<float> m3 = want_mask(x, d.seed, s.counter + s.advance + d.offset, p, relu);
      expect_same_bits("mask (second draw)", mask3.data(), m3.data(), n);
      EMU_CHECK(counter_value(counter) == s.counter + 2 * s.advance, "counter after two draws");
    }
  }
  // n == 0 with a counter: no draw, the counter still advances
  int32_t counter[2] = {-1, 5};  // 0x5FFFFFFFF
  alexnet::DropoutParams d = params(0.5, false);
  d.advance = 3;
  cu::dropout_forward(0, nullptr, nullptr, nullptr, 0, counter, d);
  EMU_CHECK(counter[0] == 2 && counter[1] == 6, "n == 0 advance: " + std::to_string(counter_value(counter)));
}

EMU_CASE(dropout_forward_bf16) {
  // every (relu, counter) pair once, each at another size
  const struct {
    int64_t n;
    bool relu, with_counter;
  } runs[] = {{31, false, false}, {256, true, true}, {257, false, true}, {3001, true, false}};
  for (const auto& r : runs) {
    const int64_t n = r.n;
    const bool relu = r.relu, with_counter = r.with_counter;
    const double p = random_p();
    alexnet::DropoutParams d = params(p, relu);
    d.advance = static_cast<uint64_t>(randint(0, 1 << 20));
    const uint64_t start = static_cast<uint64_t>(randint(0, int64_t{1} << 50)) | 0xFFFFFF00ull;
    int32_t counter[2] = {static_cast<int32_t>(static_cast<uint32_t>(start)), static_cast<int32_t>(start >> 32)};
    const std::vector<uint16_t> x = to_bf16(inputs(n));
    std::vector<uint16_t> y(n, 0x1234);
    std::vector<float> mask(n, 7.f);
    cu::dropout_forward_bf16(0, y.data(), mask.data(), x.data(), n, with_counter ? counter : nullptr, d);
    const std::vector<float> xf = from_bf16(x);
    const std::vector<float> m = want_mask(xf, d.seed, (with_counter ? start : 0) + d.offset, p, relu);
    expect_same_bits("bf16 mask", mask.data(), m.data(), n);
    // the float32 product (exact in double, rounded to float), then rounded to bf16
    std::vector<uint16_t> want(n);
    const std::vector<float> yf = want_y(xf, m, relu);
    for (int64_t i = 0; i < n; ++i) want[i] = bf16::from_float(yf[i]);
    expect_same_bits("bf16 y", y.data(), want.data(), n);  // +0 and -0 apart too
    if (with_counter) EMU_CHECK(counter_value(counter) == start + d.advance, "bf16 counter advanced");
  }
}

EMU_CASE(dropout_backward_f32_bf16) {
  for (int64_t n : {int64_t{1}, int64_t{257}, int64_t{3001}}) {
    const double p = random_p();
    const alexnet::DropoutParams d = params(p, randint(0, 1) == 1);
    const std::vector<float> x = inputs(n);
    std::vector<float> y(n), mask(n);
    cu::dropout_forward(0, y.data(), mask.data(), x.data(), n, nullptr, d);
    // a float mask from forward (0 or scale), or an arbitrary one: backward is dy * mask either way
    const bool from_forward = n != 257;
    const std::vector<float> mk = from_forward ? mask : uniform(n, -3.f, 3.f);
    const std::vector<float> dy = inputs(n);
    std::vector<float> dx(n, 7.f), want(n);
    cu::dropout_backward(0, dx.data(), dy.data(), mk.data(), n);
    for (int64_t i = 0; i < n; ++i) want[i] = product(dy[i], mk[i]);
    expect_same_bits("dx", dx.data(), want.data(), n);

    const std::vector<uint16_t> dyh = to_bf16(inputs(n));
    std::vector<uint16_t> dxh(n, 0x1234), wanth(n);
    cu::dropout_backward_bf16(0, dxh.data(), dyh.data(), mk.data(), n);
    for (int64_t i = 0; i < n; ++i) wanth[i] = bf16::from_float(product(bf16::to_float(dyh[i]), mk[i]));
    expect_same_bits("bf16 dx", dxh.data(), wanth.data(), n);
  }
  cu::dropout_backward(0, nullptr, nullptr, nullptr, 0);
  cu::dropout_backward_bf16(0, nullptr, nullptr, nullptr, 0);
}

}  // namespace
