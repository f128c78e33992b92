// Emulated checks of pool.cu (max pooling, bfloat16 in NCHW and channels last, float32) against
// a float64 reference written here from the CPU's rules (native/cpu/pool.cc, ops.h): PyTorch's
// windows (floor mode, padding never selected), forward exact; backward routes each window's
// dy to the window's first maximum in row-major order (the first NaN when there is one) and
// sums each input's share in float32 (bfloat16: rounded once).
#include <limits>

#include "../../native/cuda/ops.h"
#include "harness.h"

namespace {

using namespace emu_test;
namespace cu = alexnet::cuda;
using alexnet::Pool2dParams;

struct Geometry {
  int64_t N, C, H, W, kH, kW, sH, sW, pH, pW;
};

// AlexNet's 3x3 stride 2 (13 -> 6, 27 -> 13), 2x2 stride 2 on odd sizes (the last row and column
// are in no window), 3x3 stride 1 padding 1, a stride wider than the window (inputs in no
// window), a 5x5 padding 2, a 1x1, and channels across more than one warp.
const Geometry kGeometries[] = {
    {2, 3, 13, 13, 3, 3, 2, 2, 0, 0},  {1, 2, 27, 27, 3, 3, 2, 2, 0, 0}, {3, 2, 9, 11, 2, 2, 2, 2, 0, 0},
    {2, 3, 7, 10, 3, 3, 1, 1, 1, 1},   {1, 5, 8, 13, 3, 2, 1, 3, 1, 1},  {1, 2, 9, 7, 5, 5, 2, 2, 2, 2},
    {2, 3, 5, 6, 1, 1, 1, 1, 0, 0},    {2, 70, 5, 5, 3, 3, 2, 2, 0, 0},
};

Pool2dParams params(const Geometry& g, bool channels_last) {
  Pool2dParams p;
  p.N = g.N, p.C = g.C, p.H = g.H, p.W = g.W, p.kH = g.kH, p.kW = g.kW, p.sH = g.sH, p.sW = g.sW;
  p.pH = g.pH, p.pW = g.pW;
  p.Ho = (g.H + 2 * g.pH - g.kH) / g.sH + 1;
  p.Wo = (g.W + 2 * g.pW - g.kW) / g.sW + 1;
  p.channels_last = channels_last;
  return p;
}

std::string describe(const Pool2dParams& p, const char* mode) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "N%lld C%lld %lldx%lld k%lldx%lld s%lldx%lld p%lldx%lld %s %s",
                (long long)p.N, (long long)p.C, (long long)p.H, (long long)p.W, (long long)p.kH, (long long)p.kW,
                (long long)p.sH, (long long)p.sW, (long long)p.pH, (long long)p.pW,
                p.channels_last ? "channels-last" : "NCHW", mode);
  return buf;
}

// Offset of element (n, c, h, w) of a tensor [N, C, H, W] (channels last: stored [N, H, W, C]).
int64_t at(const Pool2dParams& p, int64_t n, int64_t c, int64_t h, int64_t w, int64_t H, int64_t W) {
  return p.channels_last ? ((n * H + h) * W + w) * p.C + c : ((n * p.C + c) * H + h) * W + w;
}

// Input values: random, drawn from a handful of values (ties everywhere, +0 and -0 among
// them), or random with NaNs and infinities sprinkled in. Every value is a bfloat16 one, so the
// same draws serve both element types.
enum Mode { kRandom, kTies, kNan };
const char* const kModeName[] = {"random", "ties", "nan"};
std::vector<float> draw_input(size_t n, Mode mode) {
  std::vector<float> v = from_bf16(to_bf16(uniform(n, -4.f, 4.f)));
  const float ties[] = {-1.f, -0.5f, -0.f, 0.f, 0.5f, 1.f};
  for (float& x : v) {
    if (mode == kTies) x = ties[randint(0, 5)];
    if (mode == kNan) {
      const int64_t r = randint(0, 99);
      if (r < 6) x = std::copysign(std::numeric_limits<float>::quiet_NaN(), r < 3 ? 1.f : -1.f);
      else if (r < 8) x = r == 6 ? INFINITY : -INFINITY;
    }
  }
  return v;
}

// The reference arg-max of every output window, as flat input offsets: the first NaN of the
// window if it holds one, otherwise the first element equal to the window's maximum (so of
// tied maxima, and of +0 and -0, the first).
std::vector<int64_t> reference_argmax(const std::vector<float>& x, const Pool2dParams& p) {
  std::vector<int64_t> arg(p.N * p.C * p.Ho * p.Wo);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t oh = 0; oh < p.Ho; ++oh)
        for (int64_t ow = 0; ow < p.Wo; ++ow) {
          std::vector<int64_t> window;  // offsets in row-major window order, inside the input
          for (int64_t kh = 0; kh < p.kH; ++kh)
            for (int64_t kw = 0; kw < p.kW; ++kw) {
              const int64_t h = oh * p.sH - p.pH + kh, w = ow * p.sW - p.pW + kw;
              if (h >= 0 && h < p.H && w >= 0 && w < p.W) window.push_back(at(p, n, c, h, w, p.H, p.W));
            }
          int64_t pick = -1;
          for (int64_t o : window)
            if (std::isnan(x[o])) {
              pick = o;
              break;
            }
          if (pick < 0) {
            double m = -std::numeric_limits<double>::infinity();
            for (int64_t o : window) m = std::max(m, static_cast<double>(x[o]));
            for (int64_t o : window)
              if (static_cast<double>(x[o]) == m) {
                pick = o;
                break;
              }
          }
          arg[at(p, n, c, oh, ow, p.Ho, p.Wo)] = pick;
        }
  return arg;
}

// dx in float64 (each input's routed dy summed), with the sum of magnitudes and the count of
// terms of each, for the float32 rounding bound.
struct Routed {
  std::vector<double> sum, mag;
  std::vector<int> terms;
};
Routed reference_backward(const std::vector<int64_t>& arg, const std::vector<float>& dy, size_t in_n) {
  Routed r{std::vector<double>(in_n, 0.0), std::vector<double>(in_n, 0.0), std::vector<int>(in_n, 0)};
  for (size_t o = 0; o < arg.size(); ++o) {
    r.sum[arg[o]] += dy[o];
    r.mag[arg[o]] += std::fabs(dy[o]);
    r.terms[arg[o]] += 1;
  }
  return r;
}
// Bound on a float32 running sum's error: (terms - 1) roundings, each within 2^-24 of the
// partial sum's magnitude (at most the sum of magnitudes).
double f32_bound(const Routed& r, size_t i) {
  return r.terms[i] <= 1 ? 0.0 : (r.terms[i] - 1) * std::ldexp(r.mag[i], -24);
}

void check_f32_backward(const std::string& what, const std::vector<float>& got, const Routed& r) {
  int shown = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = r.sum[i], tol = f32_bound(r, i);
    if (r.terms[i] == 0 ? (got[i] == 0.f && !std::signbit(got[i])) : std::fabs(got[i] - w) <= tol) continue;
    if (shown++ < 3) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "[%zu] = %.9g, want %.9g (+-%.3g, %d terms)", i, got[i], w, tol, r.terms[i]);
      EMU_CHECK(false, what + buf);
    }
  }
}

// A bfloat16 dx element is right when it is the rounding of some float32 sum within the bound
// of the float64 one: between the roundings of the bound's ends (rounding is monotonic).
void check_bf16_backward(const std::string& what, const std::vector<uint16_t>& got, const Routed& r) {
  namespace bf = alexnet::bf16;
  int shown = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = r.sum[i], tol = f32_bound(r, i);
    const float g = bf::to_float(got[i]);
    bool ok;
    if (r.terms[i] == 0) {
      ok = got[i] == 0;  // +0: never routed to
    } else {
      const float lo = bf::to_float(bf::from_float(static_cast<float>(w - tol)));
      const float hi = bf::to_float(bf::from_float(static_cast<float>(w + tol)));
      ok = g >= lo && g <= hi;
    }
    if (ok) continue;
    if (shown++ < 3) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "[%zu] = %.9g (0x%04x), want %.9g (+-%.3g, %d terms)", i, g, got[i], w, tol,
                    r.terms[i]);
      EMU_CHECK(false, what + buf);
    }
  }
}

// dy: nonzero, both signs, bfloat16 values (exact in both element types).
std::vector<float> draw_dy(size_t n) {
  std::vector<float> v = uniform(n, 0.25f, 2.f);
  for (float& x : v) x = randint(0, 1) ? x : -x;
  return from_bf16(to_bf16(v));
}

void run_bf16(bool channels_last) {
  for (const Geometry& g : kGeometries)
    for (Mode mode : {kRandom, kTies, kNan}) {
      const Pool2dParams p = params(g, channels_last);
      const std::string what = describe(p, kModeName[mode]);
      const size_t in_n = p.N * p.C * p.H * p.W, out_n = p.N * p.C * p.Ho * p.Wo;
      const std::vector<uint16_t> x = to_bf16(draw_input(in_n, mode));
      const std::vector<float> xf = from_bf16(x);
      const std::vector<int64_t> arg = reference_argmax(xf, p);

      std::vector<uint16_t> y = to_bf16(uniform(out_n, 5.f, 6.f));  // stale values, overwritten
      cu::max_pool2d_forward_bf16(0, y.data(), x.data(), p);
      std::vector<uint16_t> want(out_n);
      for (size_t o = 0; o < out_n; ++o) want[o] = x[arg[o]];
      expect_same_bits((what + " forward").c_str(), y.data(), want.data(), out_n);

      const std::vector<float> dyf = draw_dy(out_n);
      const std::vector<uint16_t> dy = to_bf16(dyf);
      std::vector<uint16_t> dx = to_bf16(uniform(in_n, 5.f, 6.f));
      cu::max_pool2d_backward_bf16(0, dx.data(), dy.data(), x.data(), p);
      check_bf16_backward(what + " backward", dx, reference_backward(arg, dyf, in_n));
    }
}

void run_f32(bool channels_last) {
  for (const Geometry& g : kGeometries)
    for (Mode mode : {kRandom, kTies, kNan}) {
      const Pool2dParams p = params(g, channels_last);
      const std::string what = describe(p, kModeName[mode]) + " f32";
      const size_t in_n = p.N * p.C * p.H * p.W, out_n = p.N * p.C * p.Ho * p.Wo;
      std::vector<float> x = draw_input(in_n, mode);
      if (mode == kRandom) x = uniform(in_n, -4.f, 4.f);  // full float32 precision
      const std::vector<int64_t> arg = reference_argmax(x, p);

      std::vector<float> y = uniform(out_n, 5.f, 6.f);
      cu::max_pool2d_forward_f32(0, y.data(), x.data(), p);
      std::vector<float> want(out_n);
      for (size_t o = 0; o < out_n; ++o) want[o] = x[arg[o]];
      // bitwise: the maximum's own bits (-0 and +0 apart), NaN as NaN
      int shown = 0;
      for (size_t o = 0; o < out_n; ++o) {
        const bool same = std::isnan(want[o]) ? std::isnan(y[o]) : std::memcmp(&y[o], &want[o], 4) == 0;
        if (!same && shown++ < 3)
          EMU_CHECK(same, what + " forward [" + std::to_string(o) + "] = " + std::to_string(y[o]) + ", want " +
                              std::to_string(want[o]));
      }

      std::vector<float> dy = uniform(out_n, 0.25f, 2.f);
      for (float& v : dy) v = randint(0, 1) ? v : -v;
      std::vector<float> dx = uniform(in_n, 5.f, 6.f);
      cu::max_pool2d_backward_f32(0, dx.data(), dy.data(), x.data(), p);
      check_f32_backward(what + " backward", dx, reference_backward(arg, dy, in_n));
    }
}

EMU_CASE(pool_bf16_nchw) { run_bf16(false); }
EMU_CASE(pool_bf16_channels_last) { run_bf16(true); }
// float32 is launched for channels last (cuDNN pools NCHW float32), but the kernel takes both.
EMU_CASE(pool_f32_channels_last) { run_f32(true); }
EMU_CASE(pool_f32_nchw) { run_f32(false); }

// The bfloat16 forward also checks its bits for -0: a window whose maxima are all zeros of
// both signs keeps the first one's sign (the CPU's comparison never takes an equal value).
EMU_CASE(pool_bf16_signed_zero_ties) {
  for (bool cl : {false, true}) {
    const Pool2dParams p = params({2, 3, 6, 7, 2, 2, 2, 2, 0, 0}, cl);
    const size_t in_n = p.N * p.C * p.H * p.W, out_n = p.N * p.C * p.Ho * p.Wo;
    std::vector<float> xf(in_n);
    for (float& v : xf) v = randint(0, 1) ? 0.f : -0.f;
    const std::vector<uint16_t> x = to_bf16(xf);
    std::vector<uint16_t> y(out_n, 0x3f80);
    cu::max_pool2d_forward_bf16(0, y.data(), x.data(), p);
    const std::vector<int64_t> arg = reference_argmax(xf, p);
    std::vector<uint16_t> want(out_n);
    for (size_t o = 0; o < out_n; ++o) want[o] = x[arg[o]];
    expect_same_bits(cl ? "signed zeros channels-last" : "signed zeros NCHW", y.data(), want.data(), out_n);
  }
}

}  // namespace
