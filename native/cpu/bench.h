// Per-operator benchmarks driven from C++: every AlexNet layer shape timed in a native loop (no
// JavaScript between repetitions), beside the machine's ceilings measured in the same run
// (sgemm 2048^3 for compute, a large memcpy for bandwidth). The rows and their flop / byte
// counts are shared with the CUDA benchmark (native/core/bench.h).
#pragma once

#include <cstdint>
#include <vector>

#include "../core/bench.h"

namespace alexnet::cpu {

// batch: AlexNet batch size; reps: timed repetitions per row (after one warm-up).
std::vector<BenchRow> bench_alexnet_ops(int64_t batch, int reps);

}  // namespace alexnet::cpu
