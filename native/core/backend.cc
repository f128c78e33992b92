#include "backend.h"

#include "device.h"

namespace alexnet {

namespace {
// Zero-initialised before any static constructor runs, so a backend may register from one.
const Backend* g_backends[2] = {nullptr, nullptr};
size_t slot(DeviceType type) { return static_cast<size_t>(type) < 2 ? static_cast<size_t>(type) : 0; }
}  // namespace

void register_backend(DeviceType type, const Backend* backend) { g_backends[slot(type)] = backend; }

const Backend* find_backend(DeviceType type) { return g_backends[slot(type)]; }

const Backend& backend_for(Device device) {
  const Backend* b = find_backend(device.type);
  // No CUDA in this build: ERR_CUDA_UNAVAILABLE naming the device. (The CPU backend is always
  // linked in; its absence would be a build error, reported as an internal one.)
  if (b == nullptr && device.type != DeviceType::Cpu) device_runtime(device);
  ALEXNET_ASSERT(b != nullptr);
  return *b;
}

}  // namespace alexnet
