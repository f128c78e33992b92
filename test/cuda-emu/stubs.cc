// The part of native/cuda/runtime.h our kernel launchers call, for the emulator: one "stream"
// (launches run before they return) and the launch check.
#include "../../native/core/error.h"
#include "../../native/cuda/runtime.h"
#include "include/emu.h"

namespace alexnet::cuda {

void* stream(int) { return nullptr; }

void check_last_error(const char* what, const char* file, int line) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    fail(code::kCuda, what, " failed: ", cudaGetErrorName(e), " at ", file, ":", line);
}

}  // namespace alexnet::cuda
