// What the per-operator benchmarks of every backend share (native/cpu/bench.cc and
// native/cuda/bench.cu): the row they report, the AlexNet layer shapes they time, and the
// arithmetic that turns a time into GFLOP/s, GB/s and a fraction of a ceiling. Both drivers time
// the same rows with the same flop and byte counts, so their tables compare line by line.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <utility>

namespace alexnet {

struct BenchRow {
  std::string name;    // "conv2.forward"
  std::string shape;   // "16x96x27x27 * 256x96x5x5"
  double ms = 0;       // best of the repetitions
  double gflops = 0;   // 0 for memory-bound operators
  double gbps = 0;     // bytes moved / time, for memory-bound operators
  double fraction = 0; // of the sgemm (compute) or memcpy (bandwidth) ceiling
};

// The five convolutions of AlexNet (square input H x H, square kernel k, stride s, padding p).
struct BenchConv {
  const char* name;
  int64_t C, H, O, k, s, p;
  int64_t out() const { return (H + 2 * p - k) / s + 1; }  // Ho = Wo
};
inline constexpr BenchConv kBenchConvs[] = {{"conv1", 3, 227, 96, 11, 4, 0},
                                            {"conv2", 96, 27, 256, 5, 1, 2},
                                            {"conv3", 256, 13, 384, 3, 1, 1},
                                            {"conv4", 384, 13, 384, 3, 1, 1},
                                            {"conv5", 384, 13, 256, 3, 1, 1}};

// The memory-bound operators (relu, maxpool1 3x3 stride 2, lrn1 size 5) run at conv1's output
// size [batch, 96, 55, 55].
inline constexpr int64_t kBenchActC = 96, kBenchActH = 55;
inline constexpr int64_t kBenchPoolK = 3, kBenchPoolS = 2;
inline constexpr int64_t kBenchLrnSize = 5;
inline constexpr double kBenchLrnAlpha = 5e-4, kBenchLrnBeta = 0.75, kBenchLrnK = 2.0;

// The three fully connected layers (x [B,in] @ w[out,in]^T).
struct BenchLinear {
  const char* name;
  int64_t in, out;
};
inline constexpr BenchLinear kBenchLinears[] = {{"fc6", 9216, 4096}, {"fc7", 4096, 4096}, {"fc8", 4096, 2}};

// "16x96x27x27"
inline std::string bench_dims(std::initializer_list<int64_t> d) {
  std::ostringstream os;
  bool first = true;
  for (int64_t v : d) {
    os << (first ? "" : "x") << v;
    first = false;
  }
  return os.str();
}

// A compute-bound row: `flop` floating-point operations in `ms`, as a fraction of the sgemm
// ceiling `peak_gflops`. `bytes` (optional) is the memory it must stream (the linear layers'
// weights), reported as GB/s beside it.
inline BenchRow compute_row(std::string name, std::string shape, double ms, double flop,
                            double peak_gflops, double bytes = 0) {
  const double gflops = flop / ms / 1e6;
  return {std::move(name), std::move(shape), ms, gflops, bytes / ms / 1e6, gflops / peak_gflops};
}

// A memory-bound row: `bytes` read plus written in `ms`, as a fraction of the memcpy ceiling
// `peak_gbps` (which also counts read + write).
inline BenchRow memory_row(std::string name, std::string shape, double ms, double bytes,
                           double peak_gbps) {
  const double gbps = bytes / ms / 1e6;
  return {std::move(name), std::move(shape), ms, 0, gbps, gbps / peak_gbps};
}

}  // namespace alexnet
