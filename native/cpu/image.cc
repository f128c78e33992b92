#include "image.h"

#include "../core/parallel.h"

namespace alexnet::cpu {

void normalize_images(float* y, const uint8_t* x, int64_t N, int64_t C, int64_t HW, const PixelLut& lut) {
  // One (image, channel) plane per iteration: each plane reads one row of the table.
  parallel_for(0, N * C, 1, [=, &lut](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const float* table = lut.v[plane % C];
      const uint8_t* in = x + plane * HW;
      float* out = y + plane * HW;
      for (int64_t p = 0; p < HW; ++p) out[p] = table[in[p]];
    }
  });
}

}  // namespace alexnet::cpu
