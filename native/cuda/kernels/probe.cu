// A trivial kernel launched once by probe(): if it runs and writes its answer back, the
// device, the driver and our fat binary agree with each other.
#include <cuda_runtime.h>

#include <string>

#include "../probe.h"

namespace alexnet::cuda {

namespace {

__global__ void probe_kernel(int* out /* [1] */) { *out = 0x5eed; }

std::string describe(const char* what, cudaError_t e) {
  return std::string(what) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
         ", error " + std::to_string(static_cast<int>(e)) + ")";
}

}  // namespace

ProbeResult probe() {
  ProbeResult r;
  r.compiled = true;
#ifdef ALEXNET_CUDA_ARCHS
  r.architectures = ALEXNET_CUDA_ARCHS;
#endif
  cudaRuntimeGetVersion(&r.runtime_version);
  cudaDriverGetVersion(&r.driver_version);  // leaves 0 when no driver is installed
  cudaError_t e = cudaGetDeviceCount(&r.device_count);
  if (e != cudaSuccess) {
    r.device_count = 0;
    r.reason = describe("cudaGetDeviceCount", e);
    cudaGetLastError();  // clear
    return r;
  }
  if (r.device_count == 0) {
    r.reason = "no CUDA device found";
    return r;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) r.device_name = prop.name;
  int* d = nullptr;
  int h = 0;
  if ((e = cudaMalloc(&d, sizeof(int))) != cudaSuccess) {
    r.reason = describe("cudaMalloc", e);
    return r;
  }
  probe_kernel<<<1, 1>>>(d);
  e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(d);
  if (e != cudaSuccess) {
    r.reason = describe("probe kernel", e);
    return r;
  }
  if (h != 0x5eed) {
    r.reason = "probe kernel ran but returned a wrong value";
    return r;
  }
  r.available = true;
  return r;
}

}  // namespace alexnet::cuda
