// Per-operator benchmarks driven from C++: every AlexNet layer shape timed in a native loop (no
// JavaScript between repetitions), beside the machine's ceilings measured in the same run
// (sgemm 2048^3 for compute, a large memcpy for bandwidth).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace alexnet::cpu {

struct BenchRow {
  std::string name;    // "conv2.forward"
  std::string shape;   // "16x96x27x27 * 256x96x5x5"
  double ms = 0;       // best of the repetitions
  double gflops = 0;   // 0 for memory-bound operators
  double gbps = 0;     // bytes moved / time, for memory-bound operators
  double fraction = 0; // of the sgemm (compute) or memcpy (bandwidth) ceiling
};

// batch: AlexNet batch size; reps: timed repetitions per row (after one warm-up).
std::vector<BenchRow> bench_alexnet_ops(int64_t batch, int reps);

}  // namespace alexnet::cpu
