#include "scratch.h"

#include <cstddef>
#include <vector>

namespace alexnet::cpu {

float* scratch(Scratch slot, int64_t n) {
  thread_local std::vector<float> buffers[static_cast<int>(Scratch::kCount)];
  std::vector<float>& b = buffers[static_cast<int>(slot)];
  if (static_cast<int64_t>(b.size()) < n) {
    b.clear();
    b.shrink_to_fit();  // release the old block before asking for the larger one
    b.resize(static_cast<std::size_t>(n));
  }
  return b.data();
}

}  // namespace alexnet::cpu
