// 8-bit images to normalised float32 (torchvision's ToTensor + Normalize in one pass): the
// batch's validation and the per-channel lookup table every backend applies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../tensor.h"

namespace alexnet {

// The per-channel lookup table of the normalisation: lut[c][v] = (v / 255 - mean[c]) / std[c],
// computed in double and rounded once, so the CPU and CUDA backends give identical floats.
// Plain data (the CUDA kernel takes it by value: 3 KiB).
constexpr int kImageMaxChannels = 3;
struct PixelLut {
  float v[kImageMaxChannels][256];
};

// `pixels` bytes in the shape s = [N, C, H, W]: 1 to 3 channels, planes under 2^31 pixels.
// Throws ERR_SHAPE naming `op`.
void check_image_batch(const char* op, const Shape& s, size_t pixels);

// The table for mean[c], std[c] (C entries each). Throws ERR_ARGUMENT naming `op` unless every
// std is positive.
PixelLut pixel_lut(const char* op, const std::vector<double>& mean, const std::vector<double>& stdev);

}  // namespace alexnet
