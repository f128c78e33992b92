// 8-bit images to normalised float32 (what torchvision's ToTensor + Normalize do, in one pass).
#pragma once

#include <cstdint>

namespace alexnet::cpu {

// The per-channel lookup table of the normalisation: lut[c][v] = (v / 255 - mean[c]) / std[c],
// computed in double and rounded once, so the CPU and CUDA backends give identical floats.
constexpr int kImageMaxChannels = 3;
struct PixelLut {
  float v[kImageMaxChannels][256];
};

// y[n, c, p] = lut[c][x[n, c, p]]
void normalize_images(float* y,          // [N, C, HW]
                      const uint8_t* x,  // [N, C, HW]
                      int64_t N, int64_t C, int64_t HW, const PixelLut& lut);

}  // namespace alexnet::cpu
