// Emulated checks of convert.cu (float32 <-> bfloat16 and the bfloat16 epilogues) and layout.cu
// (NCHW <-> NHWC permutations). The bfloat16 rounding is checked against a reference written
// here in float64 (round to nearest even at the value's 2^-7 quantum, overflow past the largest
// finite bfloat16 to infinity, NaN quieted with sign and top payload bits kept: the rules
// native/core/bf16.h states), not against bf16.h's own functions.
#include <limits>

#include "../../native/cuda/ops.h"
#include "harness.h"

namespace {

using namespace emu_test;
namespace cu = alexnet::cuda;

using alexnet::bf16::bits_float;
using alexnet::bf16::float_bits;

// bfloat16 of a float32, from the value: the nearest multiple of the quantum 2^(e - 7) (e: the
// value's binade, at least -126 as bfloat16 shares float32's subnormal range), ties to even
// (rint in the default rounding mode); beyond the largest finite bfloat16, (2 - 2^-7) 2^127,
// infinity. A NaN keeps its sign and top 7 mantissa bits, with the quiet bit set.
uint16_t ref_bf16(float f) {
  const uint32_t u = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 31) << 15);
  if (std::isnan(f)) return sign | 0x7f80 | 0x0040 | ((u >> 16) & 0x7f);
  if (std::isinf(f)) return sign | 0x7f80;
  const double d = f;
  if (d == 0) return sign;
  int e;
  std::frexp(std::fabs(d), &e);  // |d| = m 2^e, m in [0.5, 1): binade e - 1
  const double q = std::ldexp(1.0, std::max(e - 1, -126) - 7);
  const double r = std::rint(d / q) * q;
  if (std::fabs(r) > std::ldexp(2.0 - std::ldexp(1.0, -7), 127)) return sign | 0x7f80;
  const uint32_t rb = float_bits(static_cast<float>(r));  // exact: 8 significant bits
  if ((rb & 0xffff) != 0) fail_at(__FILE__, __LINE__, "reference rounding left low bits");
  return static_cast<uint16_t>(rb >> 16);
}

// Patterns that decide the rounding rule: zeros, infinities, NaNs (quiet, signalling, payloads,
// negative), subnormals (the smallest, ties between bfloat16 subnormals, the largest rounding
// up to the smallest normal), ties to even on both sides, a carry into the next binade, and the
// largest floats (rounding to the largest bfloat16 or overflowing to infinity).
const uint32_t kSpecial[] = {
    0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0x7fa00000,
    0x7fbfffff, 0xff812345, 0x00000001, 0x80000001, 0x00008000, 0x00018000, 0x00007fff, 0x00008001,
    0x007fffff, 0x807fffff, 0x007f8000, 0x007e8000, 0x3f808000, 0x3f818000, 0x3f80ffff, 0x3f807fff,
    0xbf808000, 0xbf818000, 0x3fffffff, 0x3fff8000, 0x7f7fffff, 0xff7fffff, 0x7f7f7fff, 0x7f7f8000,
    0x7f7e8000, 0xff7f8000, 0x7f7e7fff, 0x00800000, 0x3f800000, 0x40490fdb,
};

// float inputs: the special patterns, random bit patterns (every class), random values, and
// random exact ties and near-ties (low half 0x8000, 0x7fff, 0x8001).
std::vector<float> conversion_inputs(size_t random_count) {
  std::vector<float> v;
  for (uint32_t u : kSpecial) v.push_back(bits_float(u));
  std::uniform_int_distribution<uint32_t> any;
  for (size_t i = 0; i < random_count; ++i) {
    const uint32_t u = any(rng());
    switch (i % 4) {
      case 0: v.push_back(bits_float(u)); break;
      case 1: v.push_back(uniform(1, -1e3f, 1e3f)[0]); break;
      case 2: v.push_back(bits_float((u & 0xffff0000u) | 0x8000u)); break;
      default: v.push_back(bits_float((u & 0xffff0000u) | (i % 8 < 4 ? 0x7fffu : 0x8001u))); break;
    }
  }
  return v;
}

EMU_CASE(convert_float_to_bf16) {
  for (size_t count : {size_t{0}, size_t{218}, size_t{219}, size_t{4061}}) {  // n: 38, 256, 257, 4099
    const std::vector<float> x = conversion_inputs(count);
    std::vector<uint16_t> y(x.size(), 0x1234), want(x.size());
    for (size_t i = 0; i < x.size(); ++i) want[i] = ref_bf16(x[i]);
    cu::float_to_bf16(0, y.data(), x.data(), static_cast<int64_t>(x.size()));
    expect_same_bits("float_to_bf16 n=" + std::to_string(x.size()), y.data(), want.data(), x.size(), Nan::Exact);
  }
  cu::float_to_bf16(0, nullptr, nullptr, 0);
}

// Every one of the 65536 patterns: the float32 with those top bits, exactly.
EMU_CASE(convert_bf16_to_float) {
  std::vector<uint16_t> x(65536);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<uint16_t>(i);
  std::vector<float> y = uniform(x.size(), 1.f, 2.f), want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = bits_float(uint32_t{x[i]} << 16);
  cu::bf16_to_float(0, y.data(), x.data(), static_cast<int64_t>(x.size()));
  expect_same_bits("bf16_to_float", y.data(), want.data(), x.size(), Nan::Exact);
  // and an odd size, at an offset
  std::vector<float> y2 = uniform(1001, 1.f, 2.f);
  cu::bf16_to_float(0, y2.data(), x.data() + 0x7f00, 1001);
  expect_same_bits("bf16_to_float at 0x7f00", y2.data(), want.data() + 0x7f00, 1001, Nan::Exact);
}

// float32 a + b, from float64 (a float64 sum of two floats rounds to the float32 sum: float64
// has more than twice float32's precision).
float add_f32(float a, double b) { return static_cast<float>(static_cast<double>(a) + b); }

EMU_CASE(convert_bias_to_bf16) {
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {3, 7}, {1, 256}, {2, 257}, {5, 300}};
  for (auto [B, C] : shapes)
    for (bool with_bias : {false, true}) {
      const std::string what = "bias_to_bf16 B" + std::to_string(B) + " C" + std::to_string(C) +
                               (with_bias ? " bias" : " no bias");
      std::vector<float> sum = uniform(B * C, -3.f, 3.f);
      const std::vector<float> bias = uniform(C, -2.f, 2.f);
      // special patterns among the sums (NaN, infinities, subnormals, ties, overflow)
      for (size_t i = 0; i < sum.size(); i += 3) sum[i] = bits_float(kSpecial[(i / 3) % std::size(kSpecial)]);
      std::vector<uint16_t> y(B * C, 0x1234), want(B * C);
      for (int64_t i = 0; i < B * C; ++i) want[i] = ref_bf16(with_bias ? add_f32(sum[i], bias[i % C]) : sum[i]);
      cu::bias_to_bf16(0, y.data(), sum.data(), with_bias ? bias.data() : nullptr, B, C);
      // without a bias the sums are converted (NaN payloads kept); with one, a NaN is computed
      // (its payload is the hardware's), so NaN matches NaN there
      if (with_bias) expect_same_bits(what, y.data(), want.data(), y.size());
      else expect_same_bits(what, y.data(), want.data(), y.size(), Nan::Exact);
    }
}

EMU_CASE(convert_zero_bf16) {
  for (int64_t n : {1, 255, 256, 257, 3001}) {
    std::vector<uint16_t> y = to_bf16(uniform(n + 5, 1.f, 2.f));
    const std::vector<uint16_t> before = y;
    cu::zero_bf16(0, y.data(), n);
    for (int64_t i = 0; i < n; ++i) EMU_CHECK(y[i] == 0, "zero_bf16 n=" + std::to_string(n) + " at " + std::to_string(i));
    for (int64_t i = n; i < n + 5; ++i) EMU_CHECK(y[i] == before[i], "zero_bf16 wrote past n at " + std::to_string(i));
  }
  cu::zero_bf16(0, nullptr, 0);
}

// y = bf16(float(y) + bias[c]) (no bias: + 0), then max(., 0) with ReLU, which keeps NaN.
EMU_CASE(convert_bias_relu_bf16) {
  struct Shape {
    int64_t N, C, S;
  };
  const Shape shapes[] = {{1, 1, 1}, {2, 3, 100}, {1, 96, 13}, {3, 5, 257}, {130, 7, 1}};
  for (const Shape& s : shapes)
    for (bool with_bias : {false, true})
      for (bool relu : {false, true}) {
        const std::string what = "bias_relu_bf16 N" + std::to_string(s.N) + " C" + std::to_string(s.C) + " S" +
                                 std::to_string(s.S) + (with_bias ? " bias" : "") + (relu ? " relu" : "");
        const int64_t n = s.N * s.C * s.S;
        std::vector<float> yf = uniform(n, -4.f, 4.f);
        // NaNs, infinities and signed zeros among y; a NaN bias channel when there are several
        for (int64_t i = 0; i < n; i += 7) {
          const float specials[] = {NAN, -NAN, INFINITY, -INFINITY, 0.f, -0.f};
          yf[i] = specials[(i / 7) % 6];
        }
        std::vector<uint16_t> y = to_bf16(yf);
        const std::vector<uint16_t> y0 = y;
        std::vector<float> bias = uniform(s.C, -2.f, 2.f);
        if (s.C > 2) bias[1] = NAN;
        std::vector<uint16_t> want(n);
        for (int64_t i = 0; i < n; ++i) {
          const double b = with_bias ? bias[(i / s.S) % s.C] : 0.0;
          float v = add_f32(alexnet::bf16::to_float(y0[i]), b);
          if (relu) v = v <= 0.f ? 0.f : v;
          want[i] = ref_bf16(v);
        }
        cu::bias_relu_bf16(0, y.data(), with_bias ? bias.data() : nullptr, s.N, s.C, s.S, relu);
        expect_same_bits(what, y.data(), want.data(), n);
      }
}

// db[c] = (accumulate ? db[c] : 0) + sum over b of dy[b, c], in float32 (within the float32
// bound of a running sum), the same bits on a second run (a fixed order), NaN in a NaN column.
EMU_CASE(convert_bias_backward_bf16) {
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {3, 255}, {130, 257}, {7, 1000}, {64, 33}};
  for (auto [B, C] : shapes)
    for (bool accumulate : {false, true}) {
      const std::string what = "bias_backward_bf16 B" + std::to_string(B) + " C" + std::to_string(C) +
                               (accumulate ? " accumulate" : "");
      std::vector<float> dyf = uniform(B * C, -2.f, 2.f);
      const int64_t nan_col = C > 4 ? 3 : -1;
      if (nan_col >= 0) dyf[(B - 1) * C + nan_col] = NAN;
      const std::vector<uint16_t> dy = to_bf16(dyf);
      const std::vector<float> db0 = uniform(C, -5.f, 5.f);
      std::vector<float> db = db0;
      cu::bias_backward_bf16(0, db.data(), dy.data(), B, C, accumulate);
      int shown = 0;
      for (int64_t c = 0; c < C; ++c) {
        double want = accumulate ? db0[c] : 0.0, mag = accumulate ? std::fabs(db0[c]) : 0.0;
        for (int64_t b = 0; b < B; ++b) {
          want += alexnet::bf16::to_float(dy[b * C + c]);
          mag += std::fabs(alexnet::bf16::to_float(dy[b * C + c]));
        }
        const double tol = (B + accumulate) * std::ldexp(mag, -24);
        const bool ok = c == nan_col ? std::isnan(db[c]) : std::fabs(db[c] - want) <= tol;
        if (!ok && shown++ < 3)
          EMU_CHECK(ok, what + " db[" + std::to_string(c) + "] = " + std::to_string(db[c]) + ", want " +
                            std::to_string(want));
      }
      std::vector<float> again = db0;
      cu::bias_backward_bf16(0, again.data(), dy.data(), B, C, accumulate);
      expect_same_bits(what + " second run", again.data(), db.data(), C, Nan::Exact);
    }
}

// --- layout.cu ---

struct LayoutShape {
  int64_t N, C, S;
};
// Not multiples of the 32x32 tile (C = 3, 96 with S = 55, 33 x 31), exact tiles, one row or
// column, N > 1.
const LayoutShape kLayouts[] = {{1, 1, 1},  {2, 3, 300}, {1, 96, 55}, {3, 33, 31}, {2, 64, 64},
                                {1, 1, 257}, {2, 257, 1}, {1, 32, 32}, {4, 5, 40},  {2, 40, 33}};

// Values: random, with NaN patterns (payloads, signalling, negative) and -0 to carry bit for bit.
std::vector<float> layout_values(size_t n) {
  std::vector<float> v = uniform(n, -3.f, 3.f);
  const uint32_t odd[] = {0x7fc00001, 0xffa00000, 0x7f800001, 0x80000000, 0x00000001, 0xff800000};
  for (size_t i = 5; i < n; i += 11) v[i] = bits_float(odd[(i / 11) % 6]);
  return v;
}

EMU_CASE(layout_nchw_to_nhwc) {
  for (const LayoutShape& s : kLayouts) {
    const std::string what = " N" + std::to_string(s.N) + " C" + std::to_string(s.C) + " S" + std::to_string(s.S);
    const int64_t n = s.N * s.C * s.S;
    const std::vector<float> x = layout_values(n);
    const std::vector<uint16_t> xb = to_bf16(uniform(n, -3.f, 3.f));
    std::vector<float> y = uniform(n, 7.f, 8.f), want(n);
    std::vector<uint16_t> yb(n, 0x1234), wantb(n);
    for (int64_t b = 0; b < s.N; ++b)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t r = 0; r < s.S; ++r) {
          want[(b * s.S + r) * s.C + c] = x[(b * s.C + c) * s.S + r];
          wantb[(b * s.S + r) * s.C + c] = xb[(b * s.C + c) * s.S + r];
        }
    cu::nchw_to_nhwc(0, y.data(), x.data(), s.N, s.C, s.S);
    expect_same_bits("nchw_to_nhwc" + what, y.data(), want.data(), n, Nan::Exact);
    cu::nchw_to_nhwc_bf16(0, yb.data(), xb.data(), s.N, s.C, s.S);
    expect_same_bits("nchw_to_nhwc_bf16" + what, yb.data(), wantb.data(), n, Nan::Exact);
  }
}

EMU_CASE(layout_nhwc_to_nchw) {
  for (const LayoutShape& s : kLayouts) {
    const std::string what = " N" + std::to_string(s.N) + " C" + std::to_string(s.C) + " S" + std::to_string(s.S);
    const int64_t n = s.N * s.C * s.S;
    const std::vector<float> x = layout_values(n);  // [N, S, C]
    const std::vector<uint16_t> xb = to_bf16(uniform(n, -3.f, 3.f));
    std::vector<float> want(n);
    std::vector<uint16_t> wantb(n);
    for (int64_t b = 0; b < s.N; ++b)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t r = 0; r < s.S; ++r) {
          want[(b * s.C + c) * s.S + r] = x[(b * s.S + r) * s.C + c];
          wantb[(b * s.C + c) * s.S + r] = xb[(b * s.S + r) * s.C + c];
        }
    std::vector<float> y = uniform(n, 7.f, 8.f);
    cu::nhwc_to_nchw(0, y.data(), x.data(), s.N, s.C, s.S);
    expect_same_bits("nhwc_to_nchw" + what, y.data(), want.data(), n, Nan::Exact);
    std::vector<uint16_t> yb(n, 0x1234);
    cu::nhwc_to_nchw_bf16(0, yb.data(), xb.data(), s.N, s.C, s.S);
    expect_same_bits("nhwc_to_nchw_bf16" + what, yb.data(), wantb.data(), n, Nan::Exact);

    // accumulate: y + the permuted x, one float32 addition each (a NaN computed: NaN matches NaN)
    const std::vector<float> y0 = uniform(n, -3.f, 3.f);
    std::vector<double> wanta(n);
    for (int64_t i = 0; i < n; ++i) wanta[i] = add_f32(y0[i], want[i]);
    std::vector<float> ya = y0;
    cu::nhwc_to_nchw(0, ya.data(), x.data(), s.N, s.C, s.S, /*accumulate=*/true);
    expect_close(("nhwc_to_nchw accumulate" + what).c_str(), ya, wanta, 0, 0);
  }
}

}  // namespace
