// A small fork-join pool for the CPU kernels ("use both cores where it pays").
//
// parallel_for splits [begin, end) into at most num_threads() contiguous chunks of at least
// `grain` iterations and runs fn(lo, hi) on each, the calling thread taking one chunk. Work
// smaller than 2*grain runs inline. Between calls a helper watches for the next one for up to
// 1 ms (a network's pass is a train of calls with short gaps), then sleeps on a condition
// variable, so it does not compete for long with OpenBLAS's own threads (parallel.cc).
#pragma once

#include <cstdint>
#include <functional>

namespace alexnet {

int num_threads();
void set_num_threads(int n);  // clamps to [1, 64]
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace alexnet
