// Per-thread scratch buffers for the CPU kernels, reused across calls so that a training loop
// does not page-fault fresh megabytes every layer. Each use has its own slot (so buffers that
// live at the same time never alias); a slot grows on demand and is never shrunk.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "../core/tensor.h"

namespace alexnet::cpu {

enum class Scratch {
  Columns,        // im2col's column matrix (conv.cc)
  Staging,        // conv.cc: the batched GEMM's output, or dY gathered to [O, nb*HoWo]
  PackedWeights,  // conv_direct.cc: weights repacked into 32-channel blocks
  PackedBias,     // conv_direct.cc: the bias padded to whole blocks
  PaddedInput,    // conv_direct.cc: the zero-padded input (or dy)
  TileSums,       // conv_direct.cc: a band's partial sums between input-channel blocks
  WinogradFilters,   // conv_winograd.cc: the transformed filters U [a*a][O][C]
  WinogradInput,     // conv_winograd.cc: a block of transformed input tiles V [a*a][C][tiles]
  WinogradProducts,  // conv_winograd.cc: the block's products M [a*a][O][tiles] (or, small
                     // batches, one thread's [a*a][16][tiles] of a block of 16 channels)
  Bf16Input,         // bf16.cc: the portable path's float32 copy of x
  Bf16Weights,       // bf16.cc, conv_bf16.cc: the portable path's float32 copy of w (conv_bf16.cc dx: W^T in bfloat16)
  Bf16Output,        // bf16.cc: the float32 sums of a bfloat16 output (backward: dy widened)
  Bf16Rows,          // conv_bf16.cc: bfloat16 im2row rows [positions, C*kH*kW] (forward), dy as [positions, O] (backward)
  Bf16Sums,          // conv_bf16.cc: the float32 GEMM output (forward [positions, O], backward [C*kH*kW, positions])
  Bf16Grad,          // conv_bf16.cc: float32 dx before its one rounding
  Bf16Packed,        // gemm_bf16.cc: a block of B packed into [k pair][48 columns] panels (AMX: 32)
  Bf16AmxEdge,       // gemm_bf16.cc: rows of A zero-padded to a whole tile (the AMX path's edges)
  LinearRows,        // linear_packed.cc: x's rows interleaved per row tile
  kCount
};

// At least n floats, valid until the same slot is asked for again on this thread.
float* scratch(Scratch slot, int64_t n);

// n floats derived from the weight tensor `w` (its values as the kernel's raw pointer reads
// them) by fill(buffer): kept with w's storage between calls, until w is next written
// (Tensor::derived), when w is given and the cache allows; otherwise filled into `slot` on every
// call. `key` names the layout (kind of derivation, block sizes, the shape it reads w as).
const float* derived_or_scratch(const Tensor* w, const std::array<int64_t, 6>& key, int64_t n,
                                Scratch slot, const std::function<void(float*)>& fill);

// Kinds of derived weights (the first element of a key).
enum DerivedKind : int64_t {
  kDirectForward = 1,   // conv_direct.cc: pack_weights
  kDirectBackward = 2,  // conv_direct.cc: pack_weights, flipped
  kWinogradForward = 3, // conv_winograd.cc: transform_filters
  kWinogradBackward = 4,
  kWinogradForwardBlocked = 5,  // conv_winograd.cc: the same, blocked for its own products kernel
  kWinogradBackwardBlocked = 6,
  kLinearPacked = 7,    // linear_packed.cc: pack_panels
};

}  // namespace alexnet::cpu
