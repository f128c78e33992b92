#include "bench.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <utility>

#include "../core/ops/linear.h"
#include "activation.h"
#include "conv.h"
#include "conv_direct.h"
#include "gemm.h"
#include "linear.h"
#include "lrn.h"
#include "pool.h"

namespace alexnet::cpu {

namespace {

double best_ms(int reps, const std::function<void()>& fn) {
  fn();  // warm-up: page faults, scratch buffers, BLAS threads
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}

std::vector<float> random_buffer(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& x : v) x = u(g);
  return v;
}

}  // namespace

std::vector<BenchRow> bench_alexnet_ops(int64_t B, int reps) {
  std::vector<BenchRow> rows;
  // Ceilings, in the same run.
  const int64_t n = 2048;
  auto a = random_buffer(static_cast<size_t>(n * n), 1), b = random_buffer(static_cast<size_t>(n * n), 2);
  std::vector<float> c(static_cast<size_t>(n * n));
  const double gemm_ms = best_ms(reps, [&] { sgemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n); });
  const double gemm_flop = 2.0 * n * n * n;
  const double peak_gflops = gemm_flop / gemm_ms / 1e6;
  rows.push_back(compute_row("sgemm (ceiling)", bench_dims({n, n, n}), gemm_ms, gemm_flop, peak_gflops));
  const size_t bytes = size_t{256} << 20;
  std::vector<char> src(bytes, 1), dst(bytes);
  const double copy_ms = best_ms(reps, [&] { std::memcpy(dst.data(), src.data(), bytes); });
  const double copy_bytes = 2.0 * static_cast<double>(bytes);  // read + write
  const double peak_gbps = copy_bytes / copy_ms / 1e6;
  rows.push_back(memory_row("memcpy (ceiling)", "256 MiB", copy_ms, copy_bytes, peak_gbps));

  // The convolutions, with the path conv_algo() selects (`suffix` names the path in the rows).
  auto bench_convs = [&](const std::string& suffix) {
    for (const BenchConv& cv : kBenchConvs) {
      // The descriptor the operator itself would run with (native/core/ops/conv.h).
      const Conv2dParams s = conv2d_params("benchOps", Shape::of({B, cv.C, cv.H, cv.H}),
                                           Shape::of({cv.O, cv.C, cv.k, cv.k}), {cv.s, cv.s}, {cv.p, cv.p}, {1, 1}, 1);
      auto x = random_buffer(static_cast<size_t>(B * cv.C * cv.H * cv.H), 3);
      auto w = random_buffer(static_cast<size_t>(cv.O * cv.C * cv.k * cv.k), 4);
      auto bias = random_buffer(static_cast<size_t>(cv.O), 5);
      std::vector<float> y(static_cast<size_t>(B * cv.O * s.Ho * s.Wo)), dx(x.size()), dw(w.size()), db(bias.size());
      const double flop = 2.0 * B * cv.O * s.Ho * s.Wo * cv.C * cv.k * cv.k;
      const std::string shape = bench_dims({B, cv.C, cv.H, cv.H}) + " * " + bench_dims({cv.O, cv.C, cv.k, cv.k});
      const double f = best_ms(reps, [&] { conv2d_forward(y.data(), x.data(), w.data(), bias.data(), s); });
      rows.push_back(compute_row(std::string(cv.name) + ".forward" + suffix, shape, f, flop, peak_gflops));
      const bool first = std::string(cv.name) == "conv1";  // the first layer needs no gradInput
      const double bw = best_ms(reps, [&] {
        conv2d_backward(first ? nullptr : dx.data(), dw.data(), db.data(), y.data(), x.data(), w.data(), s, false);
      });
      rows.push_back(compute_row(std::string(cv.name) + ".backward" + suffix, shape, bw, flop * (first ? 1 : 2), peak_gflops));
    }
  };
  bench_convs("");

  // memory-bound operators at conv1's output size
  {
    const int64_t C = kBenchActC, H = kBenchActH;
    const size_t count = static_cast<size_t>(B * C * H * H);
    auto x = random_buffer(count, 6);
    std::vector<float> y(count), dx(count);
    const std::string shape = bench_dims({B, C, H, H});
    const double r = best_ms(reps, [&] { relu_forward(y.data(), x.data(), static_cast<int64_t>(count)); });
    rows.push_back(memory_row("relu.forward", shape, r, 8.0 * count, peak_gbps));
    const double rbw = best_ms(reps, [&] { relu_backward(dx.data(), y.data(), x.data(), static_cast<int64_t>(count)); });
    rows.push_back(memory_row("relu.backward", shape, rbw, 12.0 * count, peak_gbps));
    const Pool2dParams ps = pool2d_params("benchOps", Shape::of({B, C, H, H}), {kBenchPoolK, kBenchPoolK},
                                          {kBenchPoolS, kBenchPoolS}, {0, 0});
    std::vector<float> py(static_cast<size_t>(B * C * ps.Ho * ps.Wo));
    const double pf = best_ms(reps, [&] { max_pool2d_forward(py.data(), x.data(), ps); });
    const double pbytes = 4.0 * (count + py.size());
    rows.push_back(memory_row("maxpool1.forward", shape, pf, pbytes, peak_gbps));
    const double pbw = best_ms(reps, [&] { max_pool2d_backward(dx.data(), py.data(), x.data(), ps); });
    rows.push_back(memory_row("maxpool1.backward", shape, pbw, 2 * pbytes, peak_gbps));
    const LrnParams lp = lrn_params("benchOps", Shape::of({B, C, H, H}), kBenchLrnSize, kBenchLrnAlpha,
                                    kBenchLrnBeta, kBenchLrnK, /*odd_size_only=*/false);
    const double lf = best_ms(reps, [&] { lrn_forward(y.data(), x.data(), lp); });
    rows.push_back(memory_row("lrn1.forward", shape, lf, 8.0 * count, peak_gbps));
    const double lbw = best_ms(reps, [&] { lrn_backward(dx.data(), y.data(), x.data(), lp); });
    rows.push_back(memory_row("lrn1.backward", shape, lbw, 12.0 * count, peak_gbps));
  }

  for (const BenchLinear& fc : kBenchLinears) {
    const LinearParams lin{B, fc.in, fc.out};
    auto x = random_buffer(static_cast<size_t>(B * fc.in), 7);
    auto w = random_buffer(static_cast<size_t>(fc.in * fc.out), 8);
    auto bias = random_buffer(static_cast<size_t>(fc.out), 9);
    std::vector<float> y(static_cast<size_t>(B * fc.out)), dx(x.size()), dw(w.size()), db(bias.size());
    const double flop = 2.0 * B * fc.in * fc.out;
    const std::string shape = bench_dims({B, fc.in}) + " * " + bench_dims({fc.out, fc.in}) + "^T";
    const double f = best_ms(reps, [&] { linear_forward(y.data(), x.data(), w.data(), bias.data(), lin.B, lin.in, lin.out); });
    rows.push_back(compute_row(std::string(fc.name) + ".forward", shape, f, flop, peak_gflops, 4.0 * w.size()));
    const double bw = best_ms(reps, [&] {
      linear_backward(dx.data(), dw.data(), db.data(), y.data(), x.data(), w.data(), lin.B, lin.in, lin.out, false);
    });
    rows.push_back(compute_row(std::string(fc.name) + ".backward", shape, bw, 2 * flop, peak_gflops, 8.0 * w.size()));
  }
  // When the direct kernel ran above, the alternatives in the same run, after the common rows:
  // im2col + GEMM, and on AVX-512 CPUs the kernel's AVX2 build.
  const ConvAlgo algo = conv_algo();
  if (algo != ConvAlgo::Im2col && conv_direct_isa() != ConvIsa::None) {
    struct RestoreAlgo {
      ConvAlgo a;
      ~RestoreAlgo() { set_conv_algo(a); }
    } restore{algo};
    const bool avx512 = conv_direct_isa() == ConvIsa::Avx512;
    set_conv_algo(ConvAlgo::Im2col);
    bench_convs(" (im2col)");
    if (avx512) {
      set_conv_algo(ConvAlgo::DirectAvx2);
      bench_convs(" (direct-avx2)");
    }
  }
  return rows;
}

}  // namespace alexnet::cpu
