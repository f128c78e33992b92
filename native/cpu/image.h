// 8-bit images to normalised float32 (what torchvision's ToTensor + Normalize do, in one pass).
#pragma once

#include <cstdint>

#include "../core/ops/image.h"  // PixelLut

namespace alexnet::cpu {

// y[n, c, p] = lut[c][x[n, c, p]]
void normalize_images(float* y,          // [N, C, HW]
                      const uint8_t* x,  // [N, C, HW]
                      int64_t N, int64_t C, int64_t HW, const PixelLut& lut);

}  // namespace alexnet::cpu
