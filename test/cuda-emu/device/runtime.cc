// The emulated device's CUDA runtime: the part of the CUDA runtime API the backend calls
// (native/cuda/runtime.cu, bench.cu, probe.cu), on the CPU, so that the whole CUDA backend runs
// without a GPU under test/cuda-emu/build.mjs --addon. Built with emu.cc into libcudaemu.so,
// which the emulated addon and the stand-in cuDNN and cuBLAS libraries all link.
//
// One device ("Emulated CUDA device (CPU; not a GPU)"), asynchronous as a GPU is: every
// stream's work goes, in the order it was queued, to one device thread, which runs the kernels
// (emu.cc's fibers), copies, memsets, the stand-in libraries' work and stream callbacks, while
// the host goes on. So a host that reads a buffer before the copy into it has run, or reuses a
// staging buffer too early, computes with what is there, as it would on a GPU.
//
// What is checked, as CUDA checks it (or as a GPU would fault):
//   - device memory: a registry of every allocation. New memory is filled with all one bits
//     (NaN as float, -1 as an integer), as a GPU's holds garbage. Copies and memsets must stay
//     inside one allocation of the right kind; the stand-in libraries check their pointers
//     (emu_device.h). A stream-ordered free takes effect in stream order.
//   - a kernel that touches unmapped memory (SIGSEGV on the device thread) is a sticky
//     cudaErrorIllegalAddress: every later call returns it, stream callbacks receive it.
//   - graph capture (cudaStreamCaptureModeThreadLocal and Global): work on the captured stream
//     is recorded, not run; from the capturing thread, calls that would synchronise or are not
//     capturable (cudaMalloc, cudaMallocHost, cudaMemcpy, stream / event / device synchronise,
//     cudaStreamAddCallback, a copy from pageable memory, work on the legacy stream) fail with
//     cudaErrorStreamCaptureUnsupported / Implicit and invalidate the capture, whose end is
//     then cudaErrorStreamCaptureInvalidated. cudaMallocAsync in a capture is the graph's
//     memory: live only between its allocation and free nodes while the graph runs.
//   - the device runs behind the host: no work starts sooner than EMU_DEVICE_LAG_US (default
//     2000) microseconds after it was queued, so a host that reuses or reads a buffer before
//     the work using it has run sees the consequence every time, not by chance.
//   - memory: the device has EMU_DEVICE_MEMORY_MB (default 4096) MiB; more is
//     cudaErrorMemoryAllocation. The default pool's counters follow cudaMallocAsync /
//     cudaFreeAsync at the time they are queued, reserved memory in 2 MiB steps.
//
// What it is not: a GPU. No timing, no weak memory model, no cuDNN or cuBLAS (stand-ins with
// naive arithmetic). It counts for nothing in the GPU check (test/cuda-emu/README.md).
#include <setjmp.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../include/emu.h"
#include "emu_device.h"

struct CUstream_st {
  unsigned flags = 0;
  bool capturing = false;
  bool invalidated = false;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id capturer;
  CUgraph_st* graph = nullptr;  // being captured into
  uint64_t last_ticket = 0;     // the last work queued on it
};

struct CUevent_st {
  uint64_t ticket = 0;  // the work that records it
  std::chrono::steady_clock::time_point at{};
  bool recorded = false;
};

namespace {

struct Node {
  std::string what;
  std::function<void()> run;
};

}  // namespace

struct CUgraph_st {
  std::vector<Node> nodes;
  std::vector<void*> allocs;  // graph memory (cudaMallocAsync in the capture), owned by the graph
};
struct CUgraphExec_st {
  std::vector<Node> nodes;
  std::vector<void*> allocs;
};
struct CUmemPoolHandle_st {};

namespace emu {

namespace {

constexpr size_t kPoolChunk = size_t{2} << 20;

enum class Kind { Device, Pool, Graph, Pinned };

struct Allocation {
  size_t bytes = 0;
  Kind kind = Kind::Device;
  bool live = true;    // false: freed in stream order, or graph memory outside its graph's run
  bool mapped = false;  // pinned memory the device may use (cudaHostAllocMapped)
};

// The registry (never destroyed, as the queue: the device thread may use it to the exit).
struct Registry {
  std::mutex m;                           // guards this and the counters below
  std::map<uintptr_t, Allocation> allocs;  // by base address
};
Registry& M = *new Registry;
uint64_t g_device_bytes = 0;                     // cudaMalloc'd and graph memory held (the pool counts its own)
uint64_t g_pool_used = 0, g_pool_reserved = 0, g_pool_used_high = 0, g_pool_reserved_high = 0;
uint64_t g_pool_threshold = 0;

uint64_t device_memory_total() {
  static const uint64_t total = [] {
    const char* v = std::getenv("EMU_DEVICE_MEMORY_MB");
    const uint64_t mb = v != nullptr && *v ? std::strtoull(v, nullptr, 10) : 4096;
    return (mb == 0 ? 4096 : mb) << 20;
  }();
  return total;
}

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// How far the device runs behind the host: EMU_DEVICE_LAG_US microseconds (default 2000).
std::chrono::microseconds device_lag() {
  static const std::chrono::microseconds lag{[] {
    const char* v = std::getenv("EMU_DEVICE_LAG_US");
    return v != nullptr && *v ? std::strtoll(v, nullptr, 10) : 2000LL;
  }()};
  return lag;
}

// ---- the device thread's queue -----------------------------------------------------------------

struct Work {
  uint64_t ticket;
  std::chrono::steady_clock::time_point queued;
  std::string what;
  std::function<void()> run;                 // skipped once the device has faulted
  std::function<void(cudaError_t)> always;   // stream callbacks: run with the device's status
};

// Never destroyed: the device thread waits on it until the process is gone (a destructor run at
// exit would wait for that waiter forever).
struct DeviceQueue {
  std::mutex m;
  std::condition_variable work;  // work queued
  std::condition_variable done;  // work done
  std::deque<Work> items;
  uint64_t submitted = 0, completed = 0;
};
DeviceQueue& Q = *new DeviceQueue;
std::atomic<int> g_sticky{cudaSuccess};  // a device fault: every later call returns it
std::thread::id g_device_thread;

// The device thread's way out of a faulting kernel.
thread_local sigjmp_buf* t_fault_jump = nullptr;
thread_local volatile sig_atomic_t t_fault_addr_set = 0;
thread_local void* volatile t_fault_addr = nullptr;
struct sigaction g_previous_segv, g_previous_bus;

void on_fault(int sig, siginfo_t* info, void* uc) {
  if (t_fault_jump != nullptr) {
    t_fault_addr = info->si_addr;
    t_fault_addr_set = 1;
    siglongjmp(*t_fault_jump, 1);
  }
  // not ours: hand it on (V8's WebAssembly trap handler, or the default action)
  const struct sigaction& prev = sig == SIGSEGV ? g_previous_segv : g_previous_bus;
  if (prev.sa_flags & SA_SIGINFO) {
    prev.sa_sigaction(sig, info, uc);
  } else if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) {
    signal(sig, SIG_DFL);
    raise(sig);
  } else {
    prev.sa_handler(sig);
  }
}

void run_work(Work& w) {
  if (w.always) {
    w.always(static_cast<cudaError_t>(g_sticky.load()));
    return;
  }
  if (g_sticky.load() != cudaSuccess || !w.run) return;
  sigjmp_buf jump;
  if (sigsetjmp(jump, 1) == 0) {
    t_fault_jump = &jump;
    w.run();
    t_fault_jump = nullptr;
  } else {
    t_fault_jump = nullptr;
    t = ThreadState{};
    std::fprintf(stderr, "emu: %s faulted at address %p: the device's context now has cudaErrorIllegalAddress\n",
                 w.what.c_str(), t_fault_addr);
    g_sticky.store(cudaErrorIllegalAddress);
  }
}

void device_thread() {
  // Kernels fault on the fibers' stacks: the handler runs on a stack of its own.
  static char alt[1 << 16];
  stack_t ss{};
  ss.ss_sp = alt;
  ss.ss_size = sizeof alt;
  sigaltstack(&ss, nullptr);
  for (;;) {
    Work w;
    {
      std::unique_lock<std::mutex> lock(Q.m);
      Q.work.wait(lock, [] { return !Q.items.empty(); });
      w = std::move(Q.items.front());
      Q.items.pop_front();
    }
    // A GPU runs behind its host: nothing runs sooner than the lag after it was queued, so a host
    // that touches a buffer before waiting for the work that uses it is caught reliably.
    std::this_thread::sleep_until(w.queued + device_lag());
    run_work(w);
    {
      std::lock_guard<std::mutex> lock(Q.m);
      Q.completed = w.ticket;
    }
    Q.done.notify_all();
  }
}

void start_device() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa{};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_segv);
    sigaction(SIGBUS, &sa, &g_previous_bus);
    std::thread th(device_thread);
    g_device_thread = th.get_id();
    th.detach();  // lives to the process's exit, as a GPU's context does
  });
}

uint64_t submit(CUstream_st* s, std::string what, std::function<void()> run, std::function<void(cudaError_t)> always) {
  start_device();
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(Q.m);
    ticket = ++Q.submitted;
    Q.items.push_back(Work{ticket, std::chrono::steady_clock::now(), std::move(what), std::move(run), std::move(always)});
    if (s != nullptr) s->last_ticket = ticket;
  }
  Q.work.notify_one();
  return ticket;
}

void wait_for(uint64_t ticket) {
  if (std::this_thread::get_id() == g_device_thread) fail("a CUDA call that waits for the device, made from a stream callback");
  std::unique_lock<std::mutex> lock(Q.m);
  Q.done.wait(lock, [ticket] { return Q.completed >= ticket; });
}

// ---- errors and capture rules ------------------------------------------------------------------

cudaError_t ret(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}

// The stream being captured by this thread, if any (ThreadLocal / Global captures restrict the
// capturing thread's unsafe calls; Global ones every thread's, which we do not need).
std::mutex& g_streams = *new std::mutex;
std::vector<CUstream_st*>& g_all_streams = *new std::vector<CUstream_st*>;

CUstream_st* my_capture() {
  std::lock_guard<std::mutex> lock(g_streams);
  for (CUstream_st* s : g_all_streams)
    if (s->capturing && (s->capturer == std::this_thread::get_id() || s->mode == cudaStreamCaptureModeGlobal) &&
        s->mode != cudaStreamCaptureModeRelaxed)
      return s;
  return nullptr;
}

// A call the capture does not allow: the capture is invalidated, the call fails.
bool refused_in_capture(const char* call, cudaError_t* e) {
  CUstream_st* s = my_capture();
  if (s == nullptr) return false;
  std::fprintf(stderr, "emu: %s during a stream capture: not capturable, the capture is invalidated\n", call);
  s->invalidated = true;
  *e = ret(cudaErrorStreamCaptureUnsupported);
  return true;
}

#define EMU_STICKY()                                                     \
  do {                                                                   \
    const int sticky_ = ::emu::g_sticky.load();                                 \
    if (sticky_ != cudaSuccess) return ret(static_cast<cudaError_t>(sticky_)); \
  } while (0)
#define EMU_NOT_IN_CAPTURE(call)                  \
  do {                                                  \
    cudaError_t capture_error_;                         \
    if (::emu::refused_in_capture(call, &capture_error_)) return capture_error_; \
  } while (0)

// Queues work on s, or records it while s is captured. Work on the legacy stream while this
// thread captures another is refused (an implicit synchronisation with the captured stream).
cudaError_t queue(CUstream_st* s, const char* what, std::function<void()> run) {
  if (s == nullptr) {
    if (my_capture() != nullptr) {
      std::fprintf(stderr, "emu: %s on the legacy stream during a capture: the capture is invalidated\n", what);
      my_capture()->invalidated = true;
      return ret(cudaErrorStreamCaptureImplicit);
    }
  } else if (s->capturing) {
    std::lock_guard<std::mutex> lock(g_streams);
    s->graph->nodes.push_back(Node{what, std::move(run)});
    return cudaSuccess;
  }
  submit(s, what, std::move(run), nullptr);
  return cudaSuccess;
}

// The allocation holding [p, p + bytes), or null.
Allocation* find(const void* p, size_t bytes, uintptr_t* base_out = nullptr) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = M.allocs.upper_bound(a);
  if (it == M.allocs.begin()) return nullptr;
  --it;
  if (a < it->first || a + std::max<size_t>(bytes, 1) > it->first + it->second.bytes) return nullptr;
  if (base_out) *base_out = it->first;
  return &it->second;
}

std::atomic<int> g_captures{0};  // streams being captured now

// Graph memory is not live outside its graph's run, but work being captured may name it (it
// runs only when the graph does, after the allocation node).
bool device_usable(const Allocation* al) {
  if (al == nullptr) return false;
  if (al->kind == Kind::Graph) return al->live || g_captures.load() > 0;
  return al->live && (al->kind != Kind::Pinned || al->mapped);
}

// What an allocation of `bytes` takes: whole 256-byte units, at least one (cudaMalloc's alignment).
size_t footprint(size_t bytes) { return round_up(std::max<size_t>(bytes, 1), 256); }
// The kinds g_device_bytes counts: pinned memory is the host's, pool memory is in the pool's counters.
bool counted(Kind kind) { return kind == Kind::Device || kind == Kind::Graph; }

void* new_memory(size_t bytes, Kind kind) {
  const size_t n = footprint(bytes);
  void* p = std::aligned_alloc(256, n);
  if (p == nullptr) return nullptr;
  std::memset(p, 0xff, n);  // a GPU's new memory holds garbage
  M.allocs[reinterpret_cast<uintptr_t>(p)] = Allocation{bytes, kind, true, false};
  if (counted(kind)) g_device_bytes += n;
  return p;
}

void release_memory(uintptr_t base) {  // caller holds M.m
  auto it = M.allocs.find(base);
  if (it == M.allocs.end()) return;
  if (counted(it->second.kind)) g_device_bytes -= footprint(it->second.bytes);
  M.allocs.erase(it);
  std::free(reinterpret_cast<void*>(base));
}

// Device memory in use: cudaMalloc'd and graph memory, and the pool's whole reservation.
uint64_t held_bytes() { return g_device_bytes + g_pool_reserved; }  // caller holds M.m

bool fits(size_t bytes) {  // caller holds M.m
  return round_up(bytes, 256) + held_bytes() <= device_memory_total();
}

void note_pool() {
  g_pool_used_high = std::max(g_pool_used_high, g_pool_used);
  if (g_pool_used > g_pool_reserved) g_pool_reserved = round_up(g_pool_used, kPoolChunk);
  g_pool_reserved_high = std::max(g_pool_reserved_high, g_pool_reserved);
}

}  // namespace

uint64_t globaltimer_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void fail(const char* what) {
  std::fprintf(stderr, "EMU FAIL: %s\n", what);
  std::fflush(stderr);
  std::_Exit(3);
}

void enqueue(CUstream_st* s, const char* what, std::function<void()> work) {
  const cudaError_t e = queue(s, what, std::move(work));
  if (e != cudaSuccess) last_error = e;
}

bool capturing(CUstream_st* s) { return s != nullptr && s->capturing; }

bool is_device_memory(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(M.m);
  return device_usable(find(p, bytes));
}

void require_device_memory(const void* p, size_t bytes, const char* what) {
  if (is_device_memory(p, bytes)) return;
  char msg[512];
  std::lock_guard<std::mutex> lock(M.m);
  uintptr_t base = 0;
  Allocation* inside = find(p, 0, &base);
  if (inside == nullptr)
    std::snprintf(msg, sizeof msg, "%s: %p (%zu bytes) is not device memory", what, p, bytes);
  else if (!inside->live)
    std::snprintf(msg, sizeof msg, "%s: %p is in an allocation already freed (or graph memory outside its graph)", what, p);
  else if (inside->kind == Kind::Pinned && !inside->mapped)
    std::snprintf(msg, sizeof msg, "%s: %p is pinned host memory that is not mapped for the device", what, p);
  else
    std::snprintf(msg, sizeof msg, "%s: %zu bytes from %p run past the end of its allocation (%zu bytes from %p)",
                  what, bytes, p, inside->bytes, reinterpret_cast<void*>(base));
  fail(msg);
}

void queue_grid(cudaStream_t s, dim3 grid, dim3 block, size_t shared_bytes, bool direct, std::function<void()> body) {
  const cudaError_t e = queue(s, "a kernel", [grid, block, shared_bytes, direct, body = std::move(body)]() {
    (direct ? run_grid_direct : run_grid)(grid, block, shared_bytes,
                                          [](void* c) { (*static_cast<const std::function<void()>*>(c))(); },
                                          const_cast<std::function<void()>*>(&body));
  });
  if (e != cudaSuccess) last_error = e;
}

}  // namespace emu

using emu::ret;

// ---- errors --------------------------------------------------------------------------------------

cudaError_t cudaGetLastError() {
  const int sticky = emu::g_sticky.load();
  if (sticky != cudaSuccess) return static_cast<cudaError_t>(sticky);
  const cudaError_t e = emu::last_error;
  emu::last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  const int sticky = emu::g_sticky.load();
  return sticky != cudaSuccess ? static_cast<cudaError_t>(sticky) : emu::last_error;
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    default: return "emulated device error";
  }
}

// ---- the device --------------------------------------------------------------------------------

namespace {
int g_current_device_dummy = 0;
thread_local int t_device = 0;
}  // namespace

cudaError_t cudaGetDeviceCount(int* n) {
  if (n == nullptr) return ret(cudaErrorInvalidValue);
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  if (d == nullptr) return ret(cudaErrorInvalidValue);
  *d = t_device;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  if (d != 0) return ret(cudaErrorInvalidDevice);
  t_device = d;
  (void)g_current_device_dummy;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (p == nullptr) return ret(cudaErrorInvalidValue);
  if (d != 0) return ret(cudaErrorInvalidDevice);
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "Emulated CUDA device (CPU; not a GPU)");
  p->totalGlobalMem = emu::device_memory_total();
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 4;
  p->l2CacheSize = 1 << 20;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d) {
  if (v == nullptr) return ret(cudaErrorInvalidValue);
  if (d != 0) return ret(cudaErrorInvalidDevice);
  switch (a) {
    case cudaDevAttrL2CacheSize: *v = 1 << 20; return cudaSuccess;
    case cudaDevAttrMemoryPoolsSupported: {
      const char* v2 = std::getenv("EMU_DEVICE_NO_POOLS");
      *v = v2 != nullptr && std::strcmp(v2, "1") == 0 ? 0 : 1;
      return cudaSuccess;
    }
  }
  return ret(cudaErrorInvalidValue);
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  if (v == nullptr) return ret(cudaErrorInvalidValue);
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  if (v == nullptr) return ret(cudaErrorInvalidValue);
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  EMU_NOT_IN_CAPTURE("cudaDeviceSynchronize");
  uint64_t last;
  {
    std::lock_guard<std::mutex> lock(emu::Q.m);
    last = emu::Q.submitted;
  }
  emu::wait_for(last);
  EMU_STICKY();
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  EMU_STICKY();
  if (free_bytes == nullptr || total_bytes == nullptr) return ret(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(emu::M.m);
  const uint64_t total = emu::device_memory_total();
  const uint64_t held = emu::held_bytes();
  *total_bytes = total;
  *free_bytes = held >= total ? 0 : total - held;
  return cudaSuccess;
}

// ---- memory ------------------------------------------------------------------------------------

cudaError_t cudaMalloc(void** p, size_t bytes) {
  EMU_STICKY();
  EMU_NOT_IN_CAPTURE("cudaMalloc");
  if (p == nullptr) return ret(cudaErrorInvalidValue);
  *p = nullptr;
  std::lock_guard<std::mutex> lock(emu::M.m);
  if (!emu::fits(bytes)) return ret(cudaErrorMemoryAllocation);
  *p = emu::new_memory(bytes, emu::Kind::Device);
  return *p ? cudaSuccess : ret(cudaErrorMemoryAllocation);
}

namespace {
// cudaFree / cudaFreeHost: the device finishes all queued work first, then the memory goes
// (memory of another kind, or not an allocation's start, is cudaErrorInvalidValue).
cudaError_t free_after_device(void* p, emu::Kind kind) {
  if (p == nullptr) return cudaSuccess;
  uint64_t last;
  {
    std::lock_guard<std::mutex> lock(emu::Q.m);
    last = emu::Q.submitted;
  }
  emu::wait_for(last);
  std::lock_guard<std::mutex> lock(emu::M.m);
  auto it = emu::M.allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == emu::M.allocs.end() || it->second.kind != kind) return ret(cudaErrorInvalidValue);
  emu::release_memory(it->first);
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaFree(void* p) {
  EMU_STICKY();
  EMU_NOT_IN_CAPTURE("cudaFree");
  return free_after_device(p, emu::Kind::Device);
}

cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t s) {
  EMU_STICKY();
  if (p == nullptr) return ret(cudaErrorInvalidValue);
  *p = nullptr;
  if (s != nullptr && s->capturing) {
    // the graph's own memory: live only while the graph runs, between this node and its free
    std::lock_guard<std::mutex> lock(emu::M.m);
    if (!emu::fits(bytes)) return ret(cudaErrorMemoryAllocation);
    void* q = emu::new_memory(bytes, emu::Kind::Graph);
    if (q == nullptr) return ret(cudaErrorMemoryAllocation);
    emu::M.allocs[reinterpret_cast<uintptr_t>(q)].live = false;
    s->graph->allocs.push_back(q);
    s->graph->nodes.push_back(Node{"graph memory allocation", [q] {
                                     std::lock_guard<std::mutex> l(emu::M.m);
                                     emu::M.allocs[reinterpret_cast<uintptr_t>(q)].live = true;
                                   }});
    *p = q;
    return cudaSuccess;
  }
  if (s == nullptr && emu::my_capture() != nullptr) return ret(cudaErrorStreamCaptureImplicit);
  std::lock_guard<std::mutex> lock(emu::M.m);
  const size_t n = emu::footprint(bytes);
  // the pool's idle memory is usable; beyond it the pool grows
  if (emu::g_pool_used + n > emu::g_pool_reserved &&
      emu::round_up(emu::g_pool_used + n, emu::kPoolChunk) - emu::g_pool_reserved + emu::held_bytes() > emu::device_memory_total())
    return ret(cudaErrorMemoryAllocation);
  void* q = emu::new_memory(bytes, emu::Kind::Pool);
  if (q == nullptr) return ret(cudaErrorMemoryAllocation);
  emu::g_pool_used += n;
  emu::note_pool();
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
  EMU_STICKY();
  if (p == nullptr) return cudaSuccess;
  uintptr_t base = reinterpret_cast<uintptr_t>(p);
  emu::Kind kind;
  {
    std::lock_guard<std::mutex> lock(emu::M.m);
    auto it = emu::M.allocs.find(base);
    if (it == emu::M.allocs.end() || it->second.kind == emu::Kind::Pinned) return ret(cudaErrorInvalidValue);
    kind = it->second.kind;
  }
  if (s != nullptr && s->capturing) {
    bool ours;
    {
      std::lock_guard<std::mutex> lock(emu::g_streams);
      ours = std::find(s->graph->allocs.begin(), s->graph->allocs.end(), p) != s->graph->allocs.end();
    }
    if (!ours) {
      std::fprintf(stderr, "emu: cudaFreeAsync in a capture of memory the graph did not allocate: invalidated\n");
      s->invalidated = true;
      return ret(cudaErrorStreamCaptureUnsupported);
    }
    s->graph->nodes.push_back(Node{"graph memory free", [base] {
                                     std::lock_guard<std::mutex> l(emu::M.m);
                                     emu::M.allocs[base].live = false;
                                   }});
    return cudaSuccess;
  }
  if (kind == emu::Kind::Graph) return ret(cudaErrorInvalidValue);  // freed with its graph
  if (kind == emu::Kind::Pool) {
    std::lock_guard<std::mutex> lock(emu::M.m);
    emu::g_pool_used -= emu::footprint(emu::M.allocs[base].bytes);
  }
  // Stream-ordered: the memory goes when the work before it has run; whatever is queued later
  // and still uses it finds it freed.
  return emu::queue(s, "cudaFreeAsync", [base] {
    std::lock_guard<std::mutex> l(emu::M.m);
    emu::release_memory(base);
  });
}

cudaError_t cudaMallocHost(void** p, size_t bytes) {
  EMU_STICKY();
  EMU_NOT_IN_CAPTURE("cudaMallocHost");
  if (p == nullptr) return ret(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(emu::M.m);
  *p = emu::new_memory(bytes, emu::Kind::Pinned);
  return *p ? cudaSuccess : ret(cudaErrorMemoryAllocation);
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned flags) {
  const cudaError_t e = cudaMallocHost(p, bytes);
  if (e != cudaSuccess) return e;
  std::lock_guard<std::mutex> lock(emu::M.m);
  emu::M.allocs[reinterpret_cast<uintptr_t>(*p)].mapped = (flags & cudaHostAllocMapped) != 0;
  return cudaSuccess;
}
cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned flags) {
  EMU_STICKY();
  if (device == nullptr || flags != 0) return ret(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(emu::M.m);
  emu::Allocation* al = emu::find(host, 0);
  if (al == nullptr || al->kind != emu::Kind::Pinned || !al->mapped) return ret(cudaErrorInvalidValue);
  *device = host;  // unified addressing: the same address
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  EMU_STICKY();
  EMU_NOT_IN_CAPTURE("cudaFreeHost");
  return free_after_device(p, emu::Kind::Pinned);
}

namespace {

// Where a copy's end lies: device memory, pinned host memory, or the host's own (pageable).
enum class Side { Device, Pinned, Pageable, Bad };
Side side_of(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(emu::M.m);
  emu::Allocation* al = emu::find(p, bytes);
  if (al == nullptr) {
    return emu::find(p, 0) != nullptr ? Side::Bad : Side::Pageable;  // past an allocation's end: bad
  }
  if (al->kind == emu::Kind::Pinned) return Side::Pinned;
  return Side::Device;  // liveness is checked when the copy runs
}

void check_live_at_run(const void* p, size_t bytes, const char* what) {
  std::lock_guard<std::mutex> lock(emu::M.m);
  emu::Allocation* al = emu::find(p, bytes);
  if (al != nullptr && al->kind != emu::Kind::Pinned && !al->live) {
    char msg[256];
    std::snprintf(msg, sizeof msg, "%s: %p was freed before the copy ran", what, p);
    emu::fail(msg);
  }
}

cudaError_t copy_checked(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s, bool async) {
  EMU_STICKY();
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return ret(cudaErrorInvalidValue);
  const Side d = side_of(dst, bytes), r = side_of(src, bytes);
  if (d == Side::Bad || r == Side::Bad) {
    emu::fail("cudaMemcpy: a copy runs past the end of an allocation");
  }
  const bool dst_dev = d == Side::Device, src_dev = r == Side::Device;
  bool ok = true;
  switch (kind) {
    case cudaMemcpyHostToDevice: ok = dst_dev && !src_dev; break;
    case cudaMemcpyDeviceToHost: ok = !dst_dev && src_dev; break;
    case cudaMemcpyDeviceToDevice: ok = dst_dev && src_dev; break;
    case cudaMemcpyHostToHost: ok = !dst_dev && !src_dev; break;
    case cudaMemcpyDefault: ok = true; break;
  }
  if (!ok) {
    std::fprintf(stderr, "emu: cudaMemcpy%s: kind %d does not match the pointers (dst %s, src %s)\n", async ? "Async" : "",
                 int(kind), dst_dev ? "device" : "host", src_dev ? "device" : "host");
    return ret(cudaErrorInvalidValue);
  }
  const bool pageable = d == Side::Pageable || r == Side::Pageable;
  auto run = [dst, src, bytes] {
    check_live_at_run(dst, bytes, "a copy's destination");
    check_live_at_run(src, bytes, "a copy's source");
    std::memmove(dst, src, bytes);
  };
  if (!async) {
    EMU_NOT_IN_CAPTURE("cudaMemcpy");
    // on the legacy stream, which waits for the work before it
    const uint64_t t = emu::submit(nullptr, "cudaMemcpy", run, nullptr);
    emu::wait_for(t);
    EMU_STICKY();
    return cudaSuccess;
  }
  if (pageable) {
    if (s != nullptr && s->capturing) {
      std::fprintf(stderr, "emu: cudaMemcpyAsync from or to pageable host memory in a capture: invalidated\n");
      s->invalidated = true;
      return ret(cudaErrorStreamCaptureUnsupported);
    }
    // CUDA: the stream is synchronised first and the copy done before the call returns
    const uint64_t t = emu::submit(s, "cudaMemcpyAsync (pageable)", run, nullptr);
    emu::wait_for(t);
    EMU_STICKY();
    return cudaSuccess;
  }
  return emu::queue(s, "cudaMemcpyAsync", run);
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return copy_checked(dst, src, bytes, kind, nullptr, false);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  return copy_checked(dst, src, bytes, kind, s, true);
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
  EMU_STICKY();
  if (bytes == 0) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(emu::M.m);
    emu::Allocation* al = emu::find(p, bytes);
    if (al == nullptr || (al->kind == emu::Kind::Pinned && !al->mapped)) {
      char msg[160];
      std::snprintf(msg, sizeof msg, "cudaMemsetAsync: %p (%zu bytes) is not device memory", p, bytes);
      emu::fail(msg);
    }
  }
  return emu::queue(s, "cudaMemsetAsync", [p, value, bytes] {
    check_live_at_run(p, bytes, "cudaMemsetAsync");
    std::memset(p, value, bytes);
  });
}

// ---- the default memory pool -------------------------------------------------------------------

namespace {
CUmemPoolHandle_st g_pool;
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int d) {
  if (pool == nullptr) return ret(cudaErrorInvalidValue);
  if (d != 0) return ret(cudaErrorInvalidDevice);
  *pool = &g_pool;
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr a, void* v) {
  EMU_STICKY();
  if (pool != &g_pool || v == nullptr) return ret(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(emu::M.m);
  const uint64_t x = *static_cast<uint64_t*>(v);
  switch (a) {
    case cudaMemPoolAttrReleaseThreshold: emu::g_pool_threshold = x; return cudaSuccess;
    case cudaMemPoolAttrUsedMemHigh:
      if (x != 0) return ret(cudaErrorInvalidValue);
      emu::g_pool_used_high = emu::g_pool_used;
      return cudaSuccess;
    case cudaMemPoolAttrReservedMemHigh:
      if (x != 0) return ret(cudaErrorInvalidValue);
      emu::g_pool_reserved_high = emu::g_pool_reserved;
      return cudaSuccess;
    default: return ret(cudaErrorInvalidValue);
  }
}
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr a, void* v) {
  EMU_STICKY();
  if (pool != &g_pool || v == nullptr) return ret(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(emu::M.m);
  uint64_t x = 0;
  switch (a) {
    case cudaMemPoolAttrReleaseThreshold: x = emu::g_pool_threshold; break;
    case cudaMemPoolAttrReservedMemCurrent: x = emu::g_pool_reserved; break;
    case cudaMemPoolAttrReservedMemHigh: x = emu::g_pool_reserved_high; break;
    case cudaMemPoolAttrUsedMemCurrent: x = emu::g_pool_used; break;
    case cudaMemPoolAttrUsedMemHigh: x = emu::g_pool_used_high; break;
    default: return ret(cudaErrorInvalidValue);
  }
  *static_cast<uint64_t*>(v) = x;
  return cudaSuccess;
}
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t keep) {
  EMU_STICKY();
  if (pool != &g_pool) return ret(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(emu::M.m);
  const uint64_t floor = emu::round_up(emu::g_pool_used, emu::kPoolChunk);
  emu::g_pool_reserved = std::max<uint64_t>(floor, std::min<uint64_t>(emu::g_pool_reserved, emu::round_up(keep, emu::kPoolChunk)));
  if (emu::g_pool_used == 0 && keep == 0) emu::g_pool_reserved = 0;
  return cudaSuccess;
}

// ---- streams, callbacks, events ----------------------------------------------------------------

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  EMU_STICKY();
  if (s == nullptr || flags > 1) return ret(cudaErrorInvalidValue);
  auto* st = new CUstream_st;
  st->flags = flags;
  std::lock_guard<std::mutex> lock(emu::g_streams);
  emu::g_all_streams.push_back(st);
  *s = st;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (s == nullptr) return ret(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::mutex> lock(emu::g_streams);
  emu::g_all_streams.erase(std::remove(emu::g_all_streams.begin(), emu::g_all_streams.end(), s), emu::g_all_streams.end());
  return cudaSuccess;  // the stream object itself is kept: queued work may still name it
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (s != nullptr && s->capturing) {
    s->invalidated = true;
    return ret(cudaErrorStreamCaptureUnsupported);
  }
  EMU_NOT_IN_CAPTURE("cudaStreamSynchronize");
  uint64_t ticket;
  if (s == nullptr) {
    std::lock_guard<std::mutex> lock(emu::Q.m);
    ticket = emu::Q.submitted;
  } else {
    std::lock_guard<std::mutex> lock(emu::Q.m);
    ticket = s->last_ticket;
  }
  emu::wait_for(ticket);
  EMU_STICKY();
  return cudaSuccess;
}
cudaError_t cudaStreamAddCallback(cudaStream_t s, cudaStreamCallback_t cb, void* data, unsigned flags) {
  if (cb == nullptr || flags != 0) return ret(cudaErrorInvalidValue);
  if (s != nullptr && s->capturing) {
    s->invalidated = true;
    return ret(cudaErrorStreamCaptureUnsupported);
  }
  EMU_NOT_IN_CAPTURE("cudaStreamAddCallback");
  emu::submit(s, "a stream callback", nullptr, [s, cb, data](cudaError_t status) { cb(s, status, data); });
  return cudaSuccess;
}
cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void* data) {
  EMU_STICKY();
  if (fn == nullptr) return ret(cudaErrorInvalidValue);
  return emu::queue(s, "a host function", [fn, data] { fn(data); });
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t e, unsigned) {
  EMU_STICKY();
  if (e == nullptr) return ret(cudaErrorInvalidResourceHandle);
  return cudaSuccess;  // one device thread runs every stream's work in queue order
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  EMU_STICKY();
  if (e == nullptr) return ret(cudaErrorInvalidValue);
  *e = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  if (e == nullptr) return ret(cudaErrorInvalidResourceHandle);
  // freed once the device has passed its last record (a record still queued writes into it)
  emu::submit(nullptr, "cudaEventDestroy", nullptr, [e](cudaError_t) { delete e; });
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  EMU_STICKY();
  if (e == nullptr) return ret(cudaErrorInvalidResourceHandle);
  if (s != nullptr && s->capturing)
    return emu::queue(s, "cudaEventRecord", [e] { e->at = std::chrono::steady_clock::now(); });
  e->recorded = true;
  const cudaError_t r = emu::queue(s, "cudaEventRecord", [e] { e->at = std::chrono::steady_clock::now(); });
  if (r == cudaSuccess) {
    std::lock_guard<std::mutex> lock(emu::Q.m);
    e->ticket = emu::Q.submitted;
  }
  return r;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  EMU_STICKY();
  if (e == nullptr) return ret(cudaErrorInvalidResourceHandle);
  EMU_NOT_IN_CAPTURE("cudaEventSynchronize");
  emu::wait_for(e->ticket);
  EMU_STICKY();
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
  EMU_STICKY();
  if (ms == nullptr || start == nullptr || stop == nullptr) return ret(cudaErrorInvalidValue);
  {
    std::lock_guard<std::mutex> lock(emu::Q.m);
    if (!start->recorded || !stop->recorded) return ret(cudaErrorInvalidResourceHandle);
    if (emu::Q.completed < std::max(start->ticket, stop->ticket)) return ret(cudaErrorNotReady);
  }
  *ms = std::chrono::duration<float, std::milli>(stop->at - start->at).count();
  return cudaSuccess;
}

// ---- graphs ------------------------------------------------------------------------------------

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
  EMU_STICKY();
  if (s == nullptr) return ret(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot be captured
  std::lock_guard<std::mutex> lock(emu::g_streams);
  if (s->capturing) return ret(cudaErrorInvalidValue);
  s->capturing = true;
  s->invalidated = false;
  s->mode = mode;
  s->capturer = std::this_thread::get_id();
  s->graph = new CUgraph_st;
  ++emu::g_captures;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  if (s == nullptr || g == nullptr) return ret(cudaErrorInvalidValue);
  CUgraph_st* graph;
  bool invalidated;
  {
    std::lock_guard<std::mutex> lock(emu::g_streams);
    if (!s->capturing) return ret(cudaErrorInvalidValue);
    if (s->mode != cudaStreamCaptureModeRelaxed && s->capturer != std::this_thread::get_id())
      return ret(cudaErrorInvalidValue);  // cudaErrorStreamCaptureWrongThread
    s->capturing = false;
    --emu::g_captures;
    graph = s->graph;
    s->graph = nullptr;
    invalidated = s->invalidated;
  }
  if (invalidated) {
    *g = nullptr;
    std::lock_guard<std::mutex> lock(emu::M.m);
    for (void* p : graph->allocs) emu::release_memory(reinterpret_cast<uintptr_t>(p));
    delete graph;
    return ret(cudaErrorStreamCaptureInvalidated);
  }
  *g = graph;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long flags) {
  EMU_STICKY();
  if (e == nullptr || g == nullptr || flags > 1) return ret(cudaErrorInvalidValue);
  auto* exec = new CUgraphExec_st;
  exec->nodes = g->nodes;
  exec->allocs = g->allocs;  // the memory moves to the executable graph
  g->allocs.clear();
  *e = exec;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  if (g == nullptr) return ret(cudaErrorInvalidValue);
  {
    std::lock_guard<std::mutex> lock(emu::M.m);
    for (void* p : g->allocs) emu::release_memory(reinterpret_cast<uintptr_t>(p));
  }
  delete g;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  if (e == nullptr) return ret(cudaErrorInvalidValue);
  // once a launch of it still queued has run
  emu::submit(nullptr, "cudaGraphExecDestroy", nullptr, [e](cudaError_t) {
    {
      std::lock_guard<std::mutex> lock(emu::M.m);
      for (void* p : e->allocs) emu::release_memory(reinterpret_cast<uintptr_t>(p));
    }
    delete e;
  });
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
  EMU_STICKY();
  if (e == nullptr) return ret(cudaErrorInvalidValue);
  return emu::queue(s, "cudaGraphLaunch", [e] {
    {
      // AutoFreeOnLaunch: graph memory a previous launch left allocated is freed first
      std::lock_guard<std::mutex> lock(emu::M.m);
      for (void* p : e->allocs) emu::M.allocs[reinterpret_cast<uintptr_t>(p)].live = false;
    }
    for (Node& n : e->nodes) {
      if (emu::g_sticky.load() != cudaSuccess) return;
      n.run();
    }
  });
}

void __nanosleep(unsigned ns) {
  timespec ts{0, static_cast<long>(ns)};
  nanosleep(&ts, nullptr);
}
