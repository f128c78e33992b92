#include "runtime.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../core/error.h"

namespace alexnet::cuda {

namespace {

[[noreturn]] void throw_cuda(cudaError_t e, const char* what, const char* file, int line) {
  const char* code = e == cudaErrorMemoryAllocation ? alexnet::code::kOutOfMemory : alexnet::code::kCuda;
  fail(code, what, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ") at ", file, ":", line);
}

#define CUDA_CHECK(call)                                   \
  do {                                                     \
    cudaError_t err_ = (call);                             \
    if (err_ != cudaSuccess) throw_cuda(err_, #call, __FILE__, __LINE__); \
  } while (0)

// Pinned host buffers, reused by size class (cudaMallocHost is slow: milliseconds).
class PinnedPool {
 public:
  void* get(size_t bytes) {
    const size_t cls = size_class(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        return p;
      }
    }
    void* p = nullptr;
    CUDA_CHECK(cudaMallocHost(&p, cls));
    std::lock_guard<std::mutex> lock(mutex_);
    sizes_[p] = cls;
    return p;
  }
  void put(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_[sizes_[p]].push_back(p);
  }

 private:
  static size_t size_class(size_t bytes) {
    size_t c = 4096;
    while (c < bytes) c <<= 1;
    return c;
  }
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;
  std::map<void*, size_t> sizes_;
};

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;
  PinnedPool pinned;
};

std::mutex g_contexts_mutex;
std::map<int, std::unique_ptr<Context>>& contexts() {
  static auto* m = new std::map<int, std::unique_ptr<Context>>();  // leaked: outlives exit
  return *m;
}

Context& context(int device) {
  std::lock_guard<std::mutex> lock(g_contexts_mutex);
  auto& m = contexts();
  auto it = m.find(device);
  if (it != m.end()) return *it->second;
  const int count = device_count();
  if (device < 0 || device >= count)
    fail(alexnet::code::kCudaUnavailable, "cuda:", device, " is not available (", count,
         " CUDA device(s) found)");
  auto ctx = std::make_unique<Context>();
  ctx->device = device;
  DeviceGuard guard(device);
  CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
  CUDA_CHECK(cudaDeviceGetDefaultMemPool(&ctx->pool, device));
  uint64_t threshold = UINT64_MAX;  // keep freed memory in the pool
  CUDA_CHECK(cudaMemPoolSetAttribute(ctx->pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  Context& ref = *ctx;
  m.emplace(device, std::move(ctx));
  return ref;
}

struct HostCall {
  std::function<void()> fn;
};

void CUDART_CB run_host_call(void* data) {
  std::unique_ptr<HostCall> call(static_cast<HostCall*>(data));
  call->fn();  // must not call CUDA
}

void launch_host(Context& ctx, std::function<void()> fn) {
  auto* call = new HostCall{std::move(fn)};
  cudaError_t e = cudaLaunchHostFunc(ctx.stream, run_host_call, call);
  if (e != cudaSuccess) {
    delete call;
    throw_cuda(e, "cudaLaunchHostFunc", __FILE__, __LINE__);
  }
}

}  // namespace

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

DeviceGuard::DeviceGuard(int device) {
  cudaGetDevice(&previous_);
  if (previous_ != device) {
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) throw_cuda(e, "cudaSetDevice", __FILE__, __LINE__);
  } else {
    previous_ = -1;
  }
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

void* stream(int device) { return context(device).stream; }

void mem_info(int device, size_t* free_bytes, size_t* total_bytes) {
  DeviceGuard guard(device);
  *free_bytes = 0;
  *total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

void* alloc(int device, size_t bytes) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  void* p = nullptr;
  cudaError_t e = cudaMallocAsync(&p, bytes == 0 ? 256 : bytes, ctx.stream);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    fail(alexnet::code::kOutOfMemory, "out of memory on cuda:", device, ": asked for ", bytes,
         " bytes, ", free_b, " bytes free of ", total_b);
  }
  if (e != cudaSuccess) throw_cuda(e, "cudaMallocAsync", __FILE__, __LINE__);
  return p;
}

void free(int device, void* ptr) noexcept {
  if (ptr == nullptr) return;
  try {
    Context& ctx = context(device);
    DeviceGuard guard(device);
    cudaFreeAsync(ptr, ctx.stream);
  } catch (...) {
  }
}

void release_cached(int device) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  CUDA_CHECK(cudaMemPoolTrimTo(ctx.pool, 0));
}

void upload(int device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  void* staging = ctx.pinned.get(bytes);
  std::memcpy(staging, src, bytes);
  CUDA_CHECK(cudaMemcpyAsync(dst, staging, bytes, cudaMemcpyHostToDevice, ctx.stream));
  Context* c = &ctx;
  launch_host(ctx, [c, staging] { c->pinned.put(staging); });
}

void copy(int device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream));
}

void download_async(int device, void* host_dst, const void* src, size_t bytes,
                    std::function<void(std::exception_ptr)> done) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  // Report an error left by earlier asynchronous work instead of copying garbage.
  cudaError_t pending = cudaGetLastError();
  if (pending != cudaSuccess) {
    try {
      throw_cuda(pending, "an earlier kernel", __FILE__, __LINE__);
    } catch (...) {
      done(std::current_exception());
      return;
    }
  }
  void* staging = bytes ? ctx.pinned.get(bytes) : nullptr;
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(staging, src, bytes, cudaMemcpyDeviceToHost, ctx.stream));
  Context* c = &ctx;
  launch_host(ctx, [c, staging, host_dst, bytes, done = std::move(done)] {
    if (bytes) {
      std::memcpy(host_dst, staging, bytes);
      c->pinned.put(staging);
    }
    done(nullptr);
  });
}

void after_stream(int device, std::function<void(std::exception_ptr)> done) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  launch_host(ctx, [done = std::move(done)] { done(nullptr); });
}

void synchronize(int device) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

void check_last_error(const char* what, const char* file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda(e, what, file, line);
}

}  // namespace alexnet::cuda
