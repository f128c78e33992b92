// Inverted dropout's descriptor: the drop probability and the position in the counter-based
// random stream (native/core/rng.h), with the integer threshold and the scale every backend
// applies (computed once here, so the CPU and CUDA backends use the very same numbers).
//
// The stream position can live in device memory (issue 14: a CUDA graph replays the step with
// the same arguments, so a host offset would repeat the mask at every replay): a counter tensor,
// int32 [2] holding a uint64's bits (word 0 the low 32 bits, word 1 the high ones), read when the
// draw runs. Element i then uses counter (*counter + offset + i), and the same call adds `advance`
// to *counter after the draw, in queue order. Without a counter, element i uses offset + i: the
// same mask for the same sum.
//
// relu: the fused ReLU + dropout (Sequential's ReLU followed by Dropout): y = max(x, 0) * mask
// with NaN kept as ReLU keeps it, and the mask recorded for backward is the dropout mask where
// x > 0 (or NaN) and 0 elsewhere, so dropout_backward's dx = dy * mask is the gradient of both.
#pragma once

#include <cstdint>

#include "../rng.h"  // ALEXNET_HOST_DEVICE

namespace alexnet {

struct DropoutParams {
  double p = 0;          // drop probability, [0, 1)
  uint64_t seed = 0;     // [0, 2^53)
  uint64_t offset = 0;   // the counter of element 0
  uint32_t threshold = 0;  // dropout_threshold(p): keep(i) = bits(offset + i) >= threshold
  float scale = 1;         // dropout_scale(p): the kept elements' factor
  uint64_t advance = 0;    // with a counter tensor: added to it after the draw
  bool relu = false;       // max(x, 0) first, its derivative folded into the mask
};

// The counter tensor's two int32 words as the uint64 they hold, and back.
ALEXNET_HOST_DEVICE inline uint64_t dropout_counter_read(const int32_t* w) {
  return static_cast<uint64_t>(static_cast<uint32_t>(w[0])) | (static_cast<uint64_t>(static_cast<uint32_t>(w[1])) << 32);
}
ALEXNET_HOST_DEVICE inline void dropout_counter_write(int32_t* w, uint64_t v) {
  w[0] = static_cast<int32_t>(static_cast<uint32_t>(v));
  w[1] = static_cast<int32_t>(static_cast<uint32_t>(v >> 32));
}

// The descriptor of drop probability p at the start of the stream of seed 0 (the caller sets
// seed and offset). Throws ERR_ARGUMENT naming `op` unless p is in [0, 1).
DropoutParams dropout_params(const char* op, double p);

}  // namespace alexnet
