// Inverted dropout's descriptor: the drop probability and the position in the counter-based
// random stream (native/core/rng.h), with the integer threshold and the scale every backend
// applies (computed once here, so the CPU and CUDA backends use the very same numbers).
#pragma once

#include <cstdint>

namespace alexnet {

struct DropoutParams {
  double p = 0;          // drop probability, [0, 1)
  uint64_t seed = 0;     // [0, 2^53)
  uint64_t offset = 0;   // the counter of element 0
  uint32_t threshold = 0;  // dropout_threshold(p): keep(i) = bits(offset + i) >= threshold
  float scale = 1;         // dropout_scale(p): the kept elements' factor
};

// The descriptor of drop probability p at the start of the stream of seed 0 (the caller sets
// seed and offset). Throws ERR_ARGUMENT naming `op` unless p is in [0, 1).
DropoutParams dropout_params(const char* op, double p);

}  // namespace alexnet
