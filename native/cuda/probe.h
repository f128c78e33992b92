// The CUDA toolchain probe: proves that nvcc-compiled code is linked in (with the CUDA
// runtime linked statically) and reports whether a usable GPU is present. The full CUDA
// backend (cuDNN / cuBLAS through dlopen) builds on this.
#pragma once

#include <string>

namespace alexnet::cuda {

struct ProbeResult {
  bool compiled = false;       // CUDA code is in this binary
  bool available = false;      // a device answered and ran a kernel
  int device_count = 0;
  int runtime_version = 0;     // CUDART_VERSION of the static runtime, e.g. 13000
  int driver_version = 0;      // 0 when there is no driver
  std::string device_name;     // of device 0
  std::string architectures;   // the SASS/PTX targets compiled in
  std::string reason;          // why unavailable, with the runtime's own error name
};

ProbeResult probe();

}  // namespace alexnet::cuda
