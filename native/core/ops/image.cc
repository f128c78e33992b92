#include "image.h"

namespace alexnet {

void check_image_batch(const char* op, const Shape& s, size_t length) {
  if (s.rank != 4) fail(code::kShape, op, ": expected shape [N, C, H, W] but got ", s.str());
  const int64_t C = s.dims[1], HW = s.dims[2] * s.dims[3];
  if (C < 1 || C > kImageMaxChannels)
    fail(code::kShape, op, ": images have 1 to ", kImageMaxChannels, " channels but shape ", s.str(), " has ", C);
  if (HW >= (int64_t{1} << 31)) fail(code::kShape, op, ": an image plane of ", HW, " pixels is too large");
  if (static_cast<size_t>(s.numel()) != length)
    fail(code::kShape, op, ": shape ", s.str(), " holds ", s.numel(), " pixels but the array has ", length);
}

PixelLut pixel_lut(const char* op, const std::vector<double>& mean, const std::vector<double>& stdev) {
  const size_t C = stdev.size();
  for (size_t c = 0; c < C; ++c)
    if (!(stdev[c] > 0)) fail(code::kArgument, op, ": std[", c, "] must be positive but got ", stdev[c]);
  PixelLut lut{};
  for (size_t c = 0; c < C; ++c)
    for (int v = 0; v < 256; ++v) lut.v[c][v] = static_cast<float>((v / 255.0 - mean[c]) / stdev[c]);
  return lut;
}

}  // namespace alexnet
