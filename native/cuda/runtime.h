// The CUDA runtime layer: per-device stream, stream-ordered memory pool, pinned staging and
// asynchronous copies. Host C++ API with no CUDA types, so g++-compiled code can call it; the
// implementation (runtime.cu) exists only in builds with CUDA (ALEXNET_WITH_CUDA).
#pragma once

#include <cstddef>
#include <exception>
#include <functional>

namespace alexnet::cuda {

int device_count() noexcept;  // 0 when there is no driver or no device

// The compute stream of `device` (a cudaStream_t). Every operator on the device runs on it, in
// submission order, so host code never has to wait for one operator before launching the next.
void* stream(int device);

// Makes `device` current on the calling thread for the guard's lifetime.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// Stream-ordered allocation from the device's memory pool (cudaMallocAsync). The pool keeps
// freed memory (release threshold: unlimited), so after the first training step a step
// allocates nothing from the driver. Out of memory throws ERR_OUT_OF_MEMORY saying how much
// was asked and how much is free.
void* alloc(int device, size_t bytes);
// Stream-ordered free: safe while kernels that use the memory are still queued.
void free(int device, void* ptr) noexcept;
// Waits until the stream is idle, then hands the pool's unused memory back to the driver. For
// one-off large users (the benchmark's gigabyte-sized ceilings) that should not leave it
// reserved for the rest of the process.
void release_cached(int device);

// Host -> device, asynchronous: `src` is copied into pinned staging first (so the caller may
// reuse it at once), then copied on the stream.
void upload(int device, void* dst, const void* src, size_t bytes);
// Device -> device on the stream.
void copy(int device, void* dst, const void* src, size_t bytes);
// Device -> host: after all earlier work on the stream, copies `bytes` into `host_dst` and
// calls `done(nullptr)` (or `done(error)`) from a CUDA callback thread. Never blocks.
void download_async(int device, void* host_dst, const void* src, size_t bytes,
                    std::function<void(std::exception_ptr)> done);
// Calls `done` once all work queued so far on the stream has run. Never blocks.
void after_stream(int device, std::function<void(std::exception_ptr)> done);
// Blocks until the stream is idle (explicit synchronous reads only). Throws on a CUDA error.
void synchronize(int device);
// Throws the pending asynchronous error of the device, if any (after a kernel launch).
void check_last_error(const char* what, const char* file, int line);

// Free / total memory of the device, bytes.
void mem_info(int device, size_t* free_bytes, size_t* total_bytes);

}  // namespace alexnet::cuda

#define ALEXNET_CUDA_CHECK_LAUNCH(what) ::alexnet::cuda::check_last_error(what, __FILE__, __LINE__)
