#include "runtime.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "../core/device.h"  // count_allocation, count_synchronization (DeviceCounters)
#include "../core/error.h"

namespace alexnet::cuda {

namespace {

Device cuda_device(int index) { return Device{DeviceType::Cuda, index}; }

// The calls DeviceCounters counts (native/core/device.h): every blocking wait of this file goes
// through these two.
cudaError_t counted_stream_sync(int device, cudaStream_t s) {
  count_synchronization(cuda_device(device));
  return cudaStreamSynchronize(s);
}

[[noreturn]] void throw_cuda(cudaError_t e, const char* what, const char* file, int line) {
  const char* code = e == cudaErrorMemoryAllocation ? alexnet::code::kOutOfMemory : alexnet::code::kCuda;
  fail(code, what, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ") at ", file, ":", line);
}

#define CUDA_CHECK(call)                                   \
  do {                                                     \
    cudaError_t err_ = (call);                             \
    if (err_ != cudaSuccess) throw_cuda(err_, #call, __FILE__, __LINE__); \
  } while (0)

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// "123456789 bytes (117.7 MiB)": exact for scripts, readable for people.
std::string bytes_text(uint64_t n) {
  char mib[48];
  std::snprintf(mib, sizeof mib, " (%.1f MiB)", static_cast<double>(n) / (1024.0 * 1024.0));
  return std::to_string(n) + " bytes" + mib;
}

// Pinned host buffers, reused by size class (cudaMallocHost is slow: milliseconds).
class PinnedPool {
 public:
  int device = 0;  // whose counters a new buffer counts in
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
    count_allocation(cuda_device(device));
    CUDA_CHECK(cudaMallocHost(&p, cls));
    std::lock_guard<std::mutex> lock(mutex_);
    sizes_[p] = cls;
    return p;
  }
  // Called from CUDA callbacks too: no CUDA calls, no exceptions out.
  void put(void* p) noexcept {
    if (p == nullptr) return;
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      free_[sizes_[p]].push_back(p);
    } catch (...) {
      // a failed bookkeeping allocation only loses the buffer for reuse
    }
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
  bool use_pool = true;
  cudaMemPool_t pool = nullptr;  // with use_pool
  // The pool's reservation after the last allocation: one that grows it is an allocation that
  // reached the driver (DeviceCounters). Atomic: alloc may be called from several threads.
  std::atomic<uint64_t> pool_reserved_seen{0};

  // Graph capture (graph_begin .. graph_end), under mem_mutex: what was allocated in the
  // capture, frees held back until it ends, the allocations of failed captures (no memory).
  bool capturing = false;
  std::unordered_set<void*> capture_allocs;
  std::vector<void*> held_frees;
  std::unordered_set<void*> phantom;
  std::map<int64_t, cudaGraphExec_t> graphs;
  int64_t next_graph = 1;
  PinnedPool pinned;

  // The cudaMalloc allocator (without use_pool). Every user of device memory works on
  // `stream`, so a block freed here may be handed to the next allocation at once: the new
  // owner's work is queued behind the old owner's, as with cudaFreeAsync/cudaMallocAsync on
  // one stream. Blocks go back to the driver (cudaFree) only after cudaStreamSynchronize, so
  // the stream never uses a freed pointer.
  std::mutex mem_mutex;
  std::unordered_map<void*, size_t> live;  // pointer -> rounded size
  std::multimap<size_t, void*> cached;     // freed blocks by rounded size
  uint64_t live_bytes = 0;
  uint64_t cached_bytes = 0;
  uint64_t peak_live_bytes = 0;      // MemoryStats' peaks for this allocator (the pool keeps its own)
  uint64_t peak_reserved_bytes = 0;

  void note_live(size_t n) {  // caller holds mem_mutex
    live_bytes += n;
    peak_live_bytes = std::max(peak_live_bytes, live_bytes);
    peak_reserved_bytes = std::max(peak_reserved_bytes, live_bytes + cached_bytes);
  }
};

std::mutex g_contexts_mutex;
std::map<int, std::unique_ptr<Context>>& contexts() {
  static auto* m = new std::map<int, std::unique_ptr<Context>>();  // leaked: outlives exit
  return *m;
}

bool pool_disabled_by_env() {
  const char* v = std::getenv("ALEXNET_CUDA_MEMPOOL");
  return v != nullptr && std::strcmp(v, "0") == 0;
}

bool pools_supported(int device) noexcept {
  int supported = 0;
  if (cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return supported != 0;
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
  ctx->pinned.device = device;
  DeviceGuard guard(device);
  CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
  // Virtual GPUs may lack memory pools while plain cudaMalloc works (and info()'s probe
  // passes): every cudaMallocAsync would fail there.
  ctx->use_pool = pools_supported(device) && !pool_disabled_by_env();
  if (ctx->use_pool) {
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&ctx->pool, device));
    uint64_t threshold = UINT64_MAX;  // keep freed memory in the pool
    CUDA_CHECK(cudaMemPoolSetAttribute(ctx->pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  }
  Context& ref = *ctx;
  m.emplace(device, std::move(ctx));
  return ref;
}

// --- stream callbacks --------------------------------------------------------------------------

// cudaStreamAddCallback rather than cudaLaunchHostFunc: a host function never runs once the
// context has an error, so a read waiting on one would never settle; a stream callback runs
// exactly once and receives the error.
struct StreamCall {
  std::function<void(cudaError_t)> fn;
};

void CUDART_CB run_stream_call(cudaStream_t, cudaError_t status, void* data) noexcept {
  // Runs on a driver thread: must not call CUDA, and no exception may cross the driver.
  StreamCall* call = static_cast<StreamCall*>(data);
  try {
    call->fn(status);
  } catch (...) {
  }
  try {
    delete call;
  } catch (...) {
  }
}

void add_callback(Context& ctx, std::function<void(cudaError_t)> fn) {
  auto* call = new StreamCall{std::move(fn)};
  cudaError_t e = cudaStreamAddCallback(ctx.stream, run_stream_call, call, 0);
  if (e != cudaSuccess) {
    delete call;
    throw_cuda(e, "cudaStreamAddCallback", __FILE__, __LINE__);
  }
}

// The pinned buffers of one read or upload: the data's staging and the snapshot of the
// device-error record (separate buffers, so that a power-of-two read stays in its size class).
// Handed to the completion callback once it is queued; on an error before that, returned to
// the pool by the destructor, after the stream has drained any copy already queued into them.
class Staging {
 public:
  Staging(Context& ctx, size_t data_bytes, bool with_record) : ctx_(ctx) {
    if (data_bytes) data_ = ctx.pinned.get(data_bytes);
    if (with_record) record_ = static_cast<DeviceErrorRecord*>(ctx.pinned.get(sizeof(DeviceErrorRecord)));
  }
  ~Staging() {
    if (data_ == nullptr && record_ == nullptr) return;
    if (queued_) {
      // Error path: a copy into the buffers may still be queued; let it finish (or fail)
      // before they can serve another read.
      counted_stream_sync(ctx_.device, ctx_.stream);
      cudaGetLastError();
    }
    ctx_.pinned.put(data_);
    ctx_.pinned.put(record_);
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  void* data() const { return data_; }
  DeviceErrorRecord* record() const { return record_; }
  void mark_queued() { queued_ = true; }
  // The stream has run everything queued into the buffers (after a synchronise).
  void mark_drained() { queued_ = false; }
  // The completion callback owns the buffers now.
  void release() {
    data_ = nullptr;
    record_ = nullptr;
  }

 private:
  Context& ctx_;
  void* data_ = nullptr;
  DeviceErrorRecord* record_ = nullptr;
  bool queued_ = false;
};

// The calling thread's error record on ctx's device. One per (thread, device), not one per
// device: operators are queued and reads are made on the JS thread of their environment, so
// a label error found in a worker_threads Worker's kernel is reported by that worker's next
// read, never by another thread's (as the CPU queue's per-thread error slots). Made on the
// thread's first use of the device; never freed (kernels queued by a thread that has ended
// may still write into it, and it is 32 bytes per thread and device).
DeviceErrorRecord* thread_record(Context& ctx) {
  thread_local std::map<int, DeviceErrorRecord*> records;  // device -> record
  auto it = records.find(ctx.device);
  if (it != records.end()) return it->second;
  DeviceGuard guard(ctx.device);
  void* record = nullptr;
  count_allocation(cuda_device(ctx.device));
  CUDA_CHECK(cudaMalloc(&record, sizeof(DeviceErrorRecord)));
  // On the stream, so every kernel (all on this non-blocking stream) sees it cleared.
  const cudaError_t e = cudaMemsetAsync(record, 0, sizeof(DeviceErrorRecord), ctx.stream);
  if (e != cudaSuccess) {
    cudaFree(record);
    CUDA_CHECK(e);
  }
  records.emplace(ctx.device, static_cast<DeviceErrorRecord*>(record));
  return static_cast<DeviceErrorRecord*>(record);
}

// Queues, behind all earlier work, the copy of the calling thread's device-error record into
// `snapshot` and the clearing of the record: each error is reported by exactly one read of
// that thread, the first after it.
void queue_record_snapshot(Context& ctx, DeviceErrorRecord* snapshot) {
  DeviceErrorRecord* record = thread_record(ctx);
  CUDA_CHECK(cudaMemcpyAsync(snapshot, record, sizeof(DeviceErrorRecord), cudaMemcpyDeviceToHost,
                             ctx.stream));
  CUDA_CHECK(cudaMemsetAsync(record, 0, sizeof(DeviceErrorRecord), ctx.stream));
}

// Queues what every read copies back, behind all earlier work on the stream: `bytes` from the
// device's `src` into the staging buffer (nothing when bytes is 0), then the thread's error
// record (see queue_record_snapshot). From here on the stream may write into the staging.
void queue_read(Context& ctx, Staging& staging, const void* src, size_t bytes) {
  staging.mark_queued();
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(staging.data(), src, bytes, cudaMemcpyDeviceToHost, ctx.stream));
  queue_record_snapshot(ctx, staging.record());
}

// --- allocation ------------------------------------------------------------------------------

[[noreturn]] void out_of_memory(Context& ctx, size_t bytes) {
  uint64_t reserved = 0, used = 0;
  if (ctx.use_pool) {
    if (cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrReservedMemCurrent, &reserved) != cudaSuccess ||
        cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrUsedMemCurrent, &used) != cudaSuccess)
      cudaGetLastError();
  } else {
    std::lock_guard<std::mutex> lock(ctx.mem_mutex);
    used = ctx.live_bytes;
    reserved = ctx.live_bytes + ctx.cached_bytes;
  }
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) cudaGetLastError();
  fail(alexnet::code::kOutOfMemory, "out of memory on cuda:", ctx.device, ": asked for ", bytes_text(bytes),
       "; ", ctx.use_pool ? "memory pool" : "cudaMalloc allocator", ": reserved ", bytes_text(reserved),
       ", used ", bytes_text(used), "; device: free ", bytes_text(free_b), ", total ", bytes_text(total_b));
}

// MemoryStats of the device's allocator. The pool's own counters (cudaMemPoolAttr*) are kept at
// enqueue time of cudaMallocAsync / cudaFreeAsync, so they count the work queued so far; the
// high-water marks are reset by writing 0 to them (which sets them to the current values).
MemoryStats memory_stats(int device, bool reset_peak) {
  Context& ctx = context(device);
  MemoryStats s;
  if (ctx.use_pool) {
    DeviceGuard guard(device);
    uint64_t used = 0, reserved = 0, peak_used = 0, peak_reserved = 0;  // cuuint64_t (cuda.h): uint64_t
    CUDA_CHECK(cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrUsedMemCurrent, &used));
    CUDA_CHECK(cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
    CUDA_CHECK(cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrUsedMemHigh, &peak_used));
    CUDA_CHECK(cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrReservedMemHigh, &peak_reserved));
    s = MemoryStats{used, reserved, peak_used, peak_reserved};
    if (reset_peak) {
      uint64_t zero = 0;
      CUDA_CHECK(cudaMemPoolSetAttribute(ctx.pool, cudaMemPoolAttrUsedMemHigh, &zero));
      zero = 0;
      CUDA_CHECK(cudaMemPoolSetAttribute(ctx.pool, cudaMemPoolAttrReservedMemHigh, &zero));
    }
    return s;
  }
  std::lock_guard<std::mutex> lock(ctx.mem_mutex);
  s = MemoryStats{ctx.live_bytes, ctx.live_bytes + ctx.cached_bytes, ctx.peak_live_bytes, ctx.peak_reserved_bytes};
  if (reset_peak) {
    ctx.peak_live_bytes = ctx.live_bytes;
    ctx.peak_reserved_bytes = ctx.live_bytes + ctx.cached_bytes;
  }
  return s;
}

// The allocator's unused memory back to the driver, once the stream no longer uses it.
void trim(Context& ctx) {
  CUDA_CHECK(counted_stream_sync(ctx.device, ctx.stream));
  if (ctx.use_pool) {
    CUDA_CHECK(cudaMemPoolTrimTo(ctx.pool, 0));
    uint64_t reserved = 0;
    if (cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrReservedMemCurrent, &reserved) != cudaSuccess) cudaGetLastError();
    ctx.pool_reserved_seen.store(reserved);
    return;
  }
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard<std::mutex> lock(ctx.mem_mutex);
    blocks.swap(ctx.cached);
    ctx.cached_bytes = 0;
  }
  cudaError_t first = cudaSuccess;
  for (auto& [size, p] : blocks) {
    cudaError_t e = cudaFree(p);
    if (e != cudaSuccess && first == cudaSuccess) first = e;
  }
  if (first != cudaSuccess) throw_cuda(first, "cudaFree", __FILE__, __LINE__);
}

// A failed allocation, or one larger than the whole device, is out of memory (some drivers
// answer an impossible size with an error other than cudaErrorMemoryAllocation).
bool is_out_of_memory(cudaError_t e, size_t bytes) {
  if (e == cudaErrorMemoryAllocation) return true;
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return e == cudaErrorInvalidValue && bytes > total_b;
}

// Counts an allocation when the pool's reservation grew since the last one looked (the pool
// asked the driver for memory). Inside a stream capture the pool is not touched (the graph
// allocates when it is instantiated), so nothing is counted there.
void note_pool_growth(Context& ctx) noexcept {
  uint64_t reserved = 0;
  if (cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrReservedMemCurrent, &reserved) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  uint64_t seen = ctx.pool_reserved_seen.load();
  while (reserved > seen) {
    if (ctx.pool_reserved_seen.compare_exchange_weak(seen, reserved)) {
      count_allocation(cuda_device(ctx.device));
      return;
    }
  }
  if (reserved < seen) ctx.pool_reserved_seen.store(reserved);  // trimmed by the driver meanwhile
}

void* pool_alloc(Context& ctx, size_t bytes) {
  const size_t n = bytes == 0 ? 256 : bytes;
  void* p = nullptr;
  for (int attempt = 0; attempt < 2; ++attempt) {
    cudaError_t e = cudaMallocAsync(&p, n, ctx.stream);
    if (e == cudaSuccess) {
      std::lock_guard<std::mutex> lock(ctx.mem_mutex);
      if (ctx.capturing) {
        ctx.capture_allocs.insert(p);  // the graph's memory node: nothing reserved yet
      } else {
        note_pool_growth(ctx);
      }
      return p;
    }
    cudaGetLastError();  // not sticky: clear it so no later check reports it
    bool in_capture = false;
    {
      std::lock_guard<std::mutex> lock(ctx.mem_mutex);
      in_capture = ctx.capturing;
    }
    // no trimming inside a capture (it synchronises): the capture fails instead
    if (in_capture) throw_cuda(e, "cudaMallocAsync (in a graph capture)", __FILE__, __LINE__);
    if (!is_out_of_memory(e, n)) throw_cuda(e, "cudaMallocAsync", __FILE__, __LINE__);
    if (attempt == 0) trim(ctx);
  }
  out_of_memory(ctx, bytes);
}

void* fallback_alloc(Context& ctx, size_t bytes) {
  const size_t n = round_up(std::max<size_t>(bytes, 1), 256);
  {
    std::lock_guard<std::mutex> lock(ctx.mem_mutex);
    auto it = ctx.cached.find(n);
    if (it != ctx.cached.end()) {
      void* p = it->second;
      ctx.cached.erase(it);
      ctx.cached_bytes -= n;
      ctx.live.emplace(p, n);
      ctx.note_live(n);
      return p;
    }
  }
  void* p = nullptr;
  for (int attempt = 0; attempt < 2; ++attempt) {
    count_allocation(cuda_device(ctx.device));
    cudaError_t e = cudaMalloc(&p, n);
    if (e == cudaSuccess) break;
    p = nullptr;
    cudaGetLastError();
    if (!is_out_of_memory(e, n)) throw_cuda(e, "cudaMalloc", __FILE__, __LINE__);
    if (attempt == 0) trim(ctx);
  }
  if (p == nullptr) out_of_memory(ctx, bytes);
  try {
    std::lock_guard<std::mutex> lock(ctx.mem_mutex);
    ctx.live.emplace(p, n);
    ctx.note_live(n);
  } catch (...) {
    cudaFree(p);  // nothing has used it yet
    throw;
  }
  return p;
}

// --- the fault used by tests ---------------------------------------------------------------

__global__ void debug_fault_kernel(int* bad, uint64_t delay_ns) {  // bad == null: spin only
  // The global timer gives the delay; the SM clock (under 5 GHz on any GPU) bounds the spin
  // should the timer not advance.
  uint64_t start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  const long long cycles0 = clock64();
  const long long max_cycles = static_cast<long long>(delay_ns) * 5;
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < delay_ns && clock64() - cycles0 < max_cycles);
  if (bad != nullptr) *reinterpret_cast<volatile int*>(bad) = 1;  // an address no allocation can have
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

DeviceErrorRecord* error_record(int device) { return thread_record(context(device)); }

void mem_info(int device, size_t* free_bytes, size_t* total_bytes) {
  DeviceGuard guard(device);
  *free_bytes = 0;
  *total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

const char* allocator_name(int device) noexcept {
  try {
    if (device < 0 || device >= device_count()) return "";
    {
      std::lock_guard<std::mutex> lock(g_contexts_mutex);
      auto it = contexts().find(device);
      if (it != contexts().end()) return it->second->use_pool ? "pool" : "cudaMalloc";
    }
    return pools_supported(device) && !pool_disabled_by_env() ? "pool" : "cudaMalloc";
  } catch (...) {
    return "";
  }
}

void* alloc(int device, size_t bytes) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  return ctx.use_pool ? pool_alloc(ctx, bytes) : fallback_alloc(ctx, bytes);
}

void free(int device, void* ptr) noexcept {
  if (ptr == nullptr) return;
  try {
    Context& ctx = context(device);
    if (!ctx.use_pool) {
      std::lock_guard<std::mutex> lock(ctx.mem_mutex);
      auto it = ctx.live.find(ptr);
      if (it == ctx.live.end()) return;
      const size_t n = it->second;
      ctx.live.erase(it);
      ctx.live_bytes -= n;
      ctx.cached.emplace(n, ptr);
      ctx.cached_bytes += n;
      return;
    }
    DeviceGuard guard(device);
    {
      std::lock_guard<std::mutex> lock(ctx.mem_mutex);
      if (ctx.phantom.erase(ptr) != 0) return;  // made in a failed capture: no memory behind it
      if (ctx.capturing) {
        if (ctx.capture_allocs.erase(ptr) == 0) {
          ctx.held_frees.push_back(ptr);  // from before the capture: freed once it ends
          return;
        }
        // the graph's own allocation: a free node (below)
      }
    }
    if (cudaFreeAsync(ptr, ctx.stream) != cudaSuccess) {
      // Nobody can be told from here (this runs in destructors). Clear the error so the next
      // check does not report it under another call's name; a sticky device fault stays and
      // the next read reports it.
      cudaGetLastError();
    }
  } catch (...) {
  }
}

void release_cached(int device) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  trim(ctx);
}

void upload(int device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  Staging staging(ctx, bytes, /*with_record=*/false);
  std::memcpy(staging.data(), src, bytes);
  CUDA_CHECK(cudaMemcpyAsync(dst, staging.data(), bytes, cudaMemcpyHostToDevice, ctx.stream));
  staging.mark_queued();
  Context* c = &ctx;
  void* data = staging.data();
  add_callback(ctx, [c, data](cudaError_t) { c->pinned.put(data); });
  staging.release();
}

void copy(int device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream));
}

void download_async(int device, void* host_dst, const void* src, size_t bytes, ReadDone done) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  Staging staging(ctx, bytes, /*with_record=*/true);
  queue_read(ctx, staging, src, bytes);
  Context* c = &ctx;
  void* data = staging.data();
  DeviceErrorRecord* snapshot = staging.record();
  add_callback(ctx, [c, data, snapshot, host_dst, bytes, done = std::move(done)](cudaError_t status) {
    ReadStatus s;
    s.error = static_cast<int>(status);
    if (status == cudaSuccess) {
      s.record = *snapshot;
      if (bytes) std::memcpy(host_dst, data, bytes);
    }
    c->pinned.put(data);
    c->pinned.put(snapshot);
    done(s);
  });
  staging.release();
}

void after_stream(int device, ReadDone done) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  Staging staging(ctx, 0, /*with_record=*/true);
  queue_read(ctx, staging, nullptr, 0);
  Context* c = &ctx;
  DeviceErrorRecord* snapshot = staging.record();
  add_callback(ctx, [c, snapshot, done = std::move(done)](cudaError_t status) {
    ReadStatus s;
    s.error = static_cast<int>(status);
    if (status == cudaSuccess) s.record = *snapshot;
    c->pinned.put(snapshot);
    done(s);
  });
  staging.release();
}

void download_sync(int device, void* host_dst, const void* src, size_t bytes) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  Staging staging(ctx, bytes, /*with_record=*/true);
  queue_read(ctx, staging, src, bytes);
  ReadStatus s;
  // A stream synchronise returns the device's error, where a wait on a host function would
  // wait forever.
  s.error = static_cast<int>(counted_stream_sync(device, ctx.stream));
  if (s.error == 0) {
    staging.mark_drained();
    s.record = *staging.record();
  }
  throw_read_status(device, s);  // the staging buffers go back to the pool on the way out
  if (bytes) std::memcpy(host_dst, staging.data(), bytes);
}

void throw_read_status(int device, const ReadStatus& s) {
  if (s.error != 0) {
    const auto e = static_cast<cudaError_t>(s.error);
    cudaGetLastError();  // a non-sticky error is consumed by this report; a sticky one stays
    fail(alexnet::code::kCuda, "cuda:", device, ": the device failed while running the work queued before this read: ",
         cudaGetErrorName(e), " (", cudaGetErrorString(e),
         "). After a device fault the CUDA context is unusable; restart the process to use the GPU again");
  }
  if (s.record.status == 0) return;
  const char* op = nullptr;
  switch (static_cast<DeviceErrorOp>(s.record.op)) {
    case DeviceErrorOp::SoftmaxCrossEntropyLabel: op = "softmaxCrossEntropy"; break;
    case DeviceErrorOp::TopkCorrectLabel: op = "topkCorrect"; break;
    default: break;
  }
  if (op == nullptr)
    fail(alexnet::code::kInternal, "cuda:", device, ": unknown device error record (op ", s.record.op, ")");
  // The CPU backend's message (native/cpu/loss.cc check_labels), word for word.
  fail(alexnet::code::kArgument, op, ": label ", s.record.label, " at row ", s.record.row,
       " is out of range [0, ", s.record.classes, ")");
}

void synchronize(int device) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  CUDA_CHECK(counted_stream_sync(device, ctx.stream));
}

void fence_all_streams() noexcept {
  std::vector<std::pair<int, cudaStream_t>> streams;
  {
    std::lock_guard<std::mutex> lock(g_contexts_mutex);
    for (const auto& [device, ctx] : contexts()) streams.emplace_back(device, ctx->stream);
  }
  for (const auto& [device, s] : streams) {
    int previous = -1;
    if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
    if (cudaSetDevice(device) == cudaSuccess) counted_stream_sync(device, s);  // an error: nothing to wait for
    if (previous >= 0) cudaSetDevice(previous);
    cudaGetLastError();  // this thread's (non-sticky) error state only; reads get theirs from the stream
  }
}

void check_last_error(const char* what, const char* file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda(e, what, file, line);
}

void debug_fault(int device, double delay_ms) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  const double ns = std::max(0.0, std::min(delay_ms, 60000.0)) * 1e6;
  // Address 16: inside the never-mapped first page of the device's address space.
  debug_fault_kernel<<<1, 1, 0, ctx.stream>>>(reinterpret_cast<int*>(uintptr_t{16}), static_cast<uint64_t>(ns));
  check_last_error("debug_fault_kernel", __FILE__, __LINE__);
}

void debug_stall(int device, double delay_ms) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  const double ns = std::max(0.0, std::min(delay_ms, 60000.0)) * 1e6;
  debug_fault_kernel<<<1, 1, 0, ctx.stream>>>(nullptr, static_cast<uint64_t>(ns));
  check_last_error("debug_fault_kernel", __FILE__, __LINE__);
}

// --- CUDA graphs -------------------------------------------------------------------------------

namespace {

// Ends the capture state of ctx (under the caller's DeviceGuard): queues the held-back frees
// and, when the capture failed, marks its allocations as having no memory.
void finish_capture(Context& ctx, bool ok) {
  std::vector<void*> frees;
  {
    std::lock_guard<std::mutex> lock(ctx.mem_mutex);
    ctx.capturing = false;
    if (!ok) ctx.phantom.insert(ctx.capture_allocs.begin(), ctx.capture_allocs.end());
    ctx.capture_allocs.clear();
    frees.swap(ctx.held_frees);
  }
  for (void* p : frees)
    if (cudaFreeAsync(p, ctx.stream) != cudaSuccess) cudaGetLastError();
}

}  // namespace

bool capturing(int device) noexcept {
  try {
    Context& ctx = context(device);
    std::lock_guard<std::mutex> lock(ctx.mem_mutex);
    return ctx.capturing;
  } catch (...) {
    return false;
  }
}

void graph_begin(int device) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  if (!ctx.use_pool)
    fail(alexnet::code::kCuda, "cuda:", device,
         ": CUDA graphs need the memory pool allocator (this device uses the cudaMalloc cache: no memory pools, or ALEXNET_CUDA_MEMPOOL=0)");
  thread_record(ctx);  // made now: its cudaMalloc cannot be captured
  {
    std::lock_guard<std::mutex> lock(ctx.mem_mutex);
    if (ctx.capturing) fail(alexnet::code::kCuda, "cuda:", device, ": a graph capture is already in progress");
  }
  CUDA_CHECK(cudaStreamBeginCapture(ctx.stream, cudaStreamCaptureModeThreadLocal));
  std::lock_guard<std::mutex> lock(ctx.mem_mutex);
  ctx.capturing = true;
}

int64_t graph_end(int device) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  {
    std::lock_guard<std::mutex> lock(ctx.mem_mutex);
    if (!ctx.capturing) fail(alexnet::code::kCuda, "cuda:", device, ": no graph capture in progress");
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t e = cudaStreamEndCapture(ctx.stream, &graph);
  if (e != cudaSuccess || graph == nullptr) {
    cudaGetLastError();
    if (graph != nullptr) cudaGraphDestroy(graph);
    finish_capture(ctx, false);
    fail(alexnet::code::kCuda, "cuda:", device, ": the graph capture failed: ", cudaGetErrorName(e), " (",
         cudaGetErrorString(e), "); an operation that cannot be captured ran inside it");
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t ei = cudaGraphInstantiateWithFlags(&exec, graph, cudaGraphInstantiateFlagAutoFreeOnLaunch);
  cudaGraphDestroy(graph);
  if (ei != cudaSuccess) {
    cudaGetLastError();
    finish_capture(ctx, false);
    fail(alexnet::code::kCuda, "cuda:", device, ": cudaGraphInstantiateWithFlags failed: ", cudaGetErrorName(ei), " (",
         cudaGetErrorString(ei), ")");
  }
  finish_capture(ctx, true);
  std::lock_guard<std::mutex> lock(ctx.mem_mutex);
  const int64_t id = ctx.next_graph++;
  ctx.graphs.emplace(id, exec);
  return id;
}

void graph_launch(int device, int64_t id) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  cudaGraphExec_t exec = nullptr;
  {
    std::lock_guard<std::mutex> lock(ctx.mem_mutex);
    auto it = ctx.graphs.find(id);
    if (it == ctx.graphs.end()) fail(alexnet::code::kArgument, "cuda:", device, ": no CUDA graph ", id);
    exec = it->second;
  }
  CUDA_CHECK(cudaGraphLaunch(exec, ctx.stream));
}

void graph_destroy(int device, int64_t id) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  cudaGraphExec_t exec = nullptr;
  {
    std::lock_guard<std::mutex> lock(ctx.mem_mutex);
    auto it = ctx.graphs.find(id);
    if (it == ctx.graphs.end()) return;
    exec = it->second;
    ctx.graphs.erase(it);
  }
  // A replay in flight finishes first (the driver frees an executing graph on completion).
  if (cudaGraphExecDestroy(exec) != cudaSuccess) cudaGetLastError();
}

// --- registration with core ---------------------------------------------------------------------

namespace {

// core's enqueue(device, task) on a CUDA device: the task runs at once on the calling thread
// with the device current, and only launches work on the device's stream.
void run_with_device(int device, const std::function<void()>& task) {
  DeviceGuard guard(device);
  task();
}

DeviceRuntime runtime_hooks() {
  DeviceRuntime r{};
  r.alloc = &cuda::alloc;
  r.free = &cuda::free;
  r.run = run_with_device;
  r.synchronize = &cuda::synchronize;
  r.fence_all = &cuda::fence_all_streams;
  r.upload = &cuda::upload;
  r.download_async = &cuda::download_async;
  r.after_queue = &cuda::after_stream;
  r.download_sync = &cuda::download_sync;
  r.throw_read_status = &cuda::throw_read_status;
  r.memory_stats = &cuda::memory_stats;
  return r;
}

const DeviceRuntime kRuntime = runtime_hooks();

// While the addon loads (this file is linked into every build with CUDA): core's allocator,
// enqueue, synchronize, uploads and reads reach CUDA through these hooks only.
const DeviceRuntimeRegistration registration(DeviceType::Cuda, &kRuntime);

}  // namespace

}  // namespace alexnet::cuda
