#include "scratch.h"

#include <cstddef>
#include <vector>

#include "../core/device.h"  // count_allocation

namespace alexnet::cpu {

float* scratch(Scratch slot, int64_t n) {
  thread_local std::vector<float> buffers[static_cast<int>(Scratch::kCount)];
  std::vector<float>& b = buffers[static_cast<int>(slot)];
  if (static_cast<int64_t>(b.size()) < n) {
    count_allocation(Device{});
    b.clear();
    b.shrink_to_fit();  // release the old block before asking for the larger one
    b.resize(static_cast<std::size_t>(n));
  }
  return b.data();
}

const float* derived_or_scratch(const Tensor* w, const std::array<int64_t, 6>& key, int64_t n,
                                Scratch slot, const std::function<void(float*)>& fill) {
  if (w != nullptr && w->defined())
    if (const float* cached = w->derived(key, n, fill)) return cached;
  float* buf = scratch(slot, n);
  fill(buf);
  return buf;
}

}  // namespace alexnet::cpu
