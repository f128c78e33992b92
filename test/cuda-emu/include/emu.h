// The CUDA kernel emulator: just enough of the CUDA programming model, on the host, to run our
// own kernels (native/cuda/kernels/*.cu) without a GPU, under AddressSanitizer + UBSan
// (out-of-bounds reads and writes of "device" memory, which here is host memory) or
// ThreadSanitizer (races: a missing __syncthreads, two blocks writing one element).
//
// The threads of a block are fibers run in turn by one scheduler (emu.cc); blocks run one after
// another. __syncthreads is a barrier over the block, a warp shuffle an exchange through a
// per-warp barrier. Each block gets its own __shared__ variables, fresh and filled with
// garbage. A barrier reached by part of a block while the rest has returned (a divergent
// __syncthreads), or a launch the GPU would refuse (a grid or block of zero, over the
// hardware's limits), is reported. build.mjs rewrites kernel launches
// (`k<<<grid, block, smem, stream>>>(args)`) to `::emu::launcher(grid, block, smem,
// stream)(k)(args)`, which runs the whole grid before it returns, and `__shared__`
// declarations to EMU_SHARED.
//
// What this cannot see: the device's memory model beyond what a barrier orders, timing, and
// everything cuDNN and cuBLAS do. It is not a GPU: the CUDA tests and scripts/gpu-check.sh are
// the check that counts (test/cuda-emu/README.md).
#pragma once

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <typeinfo>
#include <utility>

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct CUstream_st;
using cudaStream_t = CUstream_st*;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureImplicit = 906,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

#define __global__
#define __device__
#define __host__
#define __forceinline__
// `__shared__ T name[n];` is rewritten by build.mjs to `auto& name = EMU_SHARED(T[n]);`: one
// object per block, fresh and filled with garbage (all one bits) at the block's first use.
#define __launch_bounds__(...)
#define CUDART_CB

namespace emu {

struct Block;
struct ThreadState {
  uint3 tid{0, 0, 0};
  uint3 bid{0, 0, 0};
  dim3 bdim, gdim;
  unsigned linear = 0;  // threadIdx as one number (x fastest)
  Block* block = nullptr;
};
extern thread_local ThreadState t;

// A problem the GPU would also have (or compute-sanitizer would report): printed, then the
// process exits with status 3 (a kernel cannot go on sensibly after it).
[[noreturn]] void abort_kernel(const char* what);

void syncthreads();
void* shared_variable(const char* site, const char* type, size_t bytes);
template <typename T>
T& shared_variable(const char* site) {
  return *static_cast<T*>(shared_variable(site, typeid(T).name(), sizeof(T)));
}
#define EMU_STR2(x) #x
#define EMU_STR(x) EMU_STR2(x)
#define EMU_SHARED(...) ::emu::shared_variable<__VA_ARGS__>(__FILE__ ":" EMU_STR(__LINE__))
// The value lane (my lane ^ lane_mask) holds; every lane of the warp must take part.
uint64_t shfl_xor_bits(unsigned mask, uint64_t bits, int lane_mask, int width);

// Runs `body` once for every thread of every block (blocks in order); validates the geometry
// like a launch does, setting the error cudaGetLastError returns instead of running.
void run_grid(dim3 grid, dim3 block, size_t shared_bytes, void (*body)(void*), void* ctx);

// Dry run: launches are validated and counted but not run, and memsets and copies do nothing,
// so launchers can be called with the shapes of real training (gigabytes) and placeholder
// pointers to check the launch geometry they compute at scale.
void set_dry_run(bool on);
// Launches accepted so far (run or dry), and refused.
uint64_t launches_accepted();
uint64_t launches_refused();

// The launch check alone (run_grid's): false, with cudaErrorInvalidConfiguration as the calling
// thread's last error, for a launch the GPU would refuse.
bool validate_launch(dim3 grid, dim3 block, size_t shared_bytes);
extern thread_local cudaError_t last_error;

#ifdef EMU_DEVICE
// The emulated device (device/runtime.cc): a launch is validated at once (its error is the
// launching thread's, as cudaGetLastError after a launch reports it) and the grid queued on its
// stream, to run on the device's thread, or recorded into a graph while the stream is captured.
void queue_grid(cudaStream_t s, dim3 grid, dim3 block, size_t shared_bytes, bool direct, std::function<void()> body);
#endif

// Runs every thread of every block as a plain call, one after another, without fibers: for
// kernels with no barrier (build.mjs decides from the source: no __syncthreads or warp shuffle in
// the kernel or anything it calls). A barrier reached anyway stops the run.
void run_grid_direct(dim3 grid, dim3 block, size_t shared_bytes, void (*body)(void*), void* ctx);

template <typename Kernel>
struct Bound {
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;
  bool direct;
  Kernel kernel;
  template <typename... Args>
  void operator()(Args... args) const {
#ifdef EMU_DEVICE
    if (!validate_launch(grid, block, shared_bytes)) return;
    Kernel k = kernel;
    queue_grid(stream, grid, block, shared_bytes, direct, [k, args...]() { k(args...); });
#else
    auto call = [&]() { kernel(args...); };
    (direct ? run_grid_direct : run_grid)(grid, block, shared_bytes, [](void* c) { (*static_cast<decltype(call)*>(c))(); }, &call);
#endif
  }
};
struct Launcher {
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;
  bool direct;
  template <typename Kernel>
  Bound<Kernel> operator()(Kernel k) const {
    return Bound<Kernel>{grid, block, shared_bytes, stream, direct, k};
  }
};
inline Launcher launcher(dim3 grid, dim3 block, size_t shared_bytes = 0, cudaStream_t stream = nullptr) {
  return Launcher{grid, block, shared_bytes, stream, false};
}
inline Launcher direct_launcher(dim3 grid, dim3 block, size_t shared_bytes = 0, cudaStream_t stream = nullptr) {
  return Launcher{grid, block, shared_bytes, stream, true};
}

}  // namespace emu

#define threadIdx (::emu::t.tid)
#define blockIdx (::emu::t.bid)
#define blockDim (::emu::t.bdim)
#define gridDim (::emu::t.gdim)

inline void __syncthreads() { ::emu::syncthreads(); }

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  static_assert(sizeof(T) <= 8, "shuffle of a value over 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = ::emu::shfl_xor_bits(mask, bits, lane_mask, width);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

// Device atomics on global or shared memory. Relaxed, as CUDA's atomicAdd / atomicCAS are: they
// order nothing else, so ThreadSanitizer sees no happens-before through them (a kernel that
// relied on one to publish other writes would be reported, as it would be wrong on a GPU).
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline float atomicAdd(float* p, float v) {
  float old, desired;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  do {
    desired = old + v;
  } while (!__atomic_compare_exchange(p, &old, &desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}
template <typename T>
inline T atomicMin(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v < old && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
template <typename T>
inline T atomicMax(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v > old && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
template <typename T>
inline T atomicCAS(T* p, T compare, T value) {
  __atomic_compare_exchange_n(p, &compare, value, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;  // the old value either way
}

// CUDA's device math is in the global namespace.
using std::isfinite;
using std::isinf;
using std::isnan;

namespace emu {
template <typename To, typename From>
inline To bits_as(From v) {  // C++20's std::bit_cast, for C++17
  static_assert(sizeof(To) == sizeof(From), "bits_as: sizes differ");
  To out;
  std::memcpy(&out, &v, sizeof(To));
  return out;
}
}  // namespace emu
inline float __int_as_float(int i) { return emu::bits_as<float>(i); }
inline int __float_as_int(float f) { return emu::bits_as<int>(f); }
inline float __uint_as_float(unsigned u) { return emu::bits_as<float>(u); }
inline unsigned __float_as_uint(float f) { return emu::bits_as<unsigned>(f); }

// Double arithmetic with the rounding spelled out (the device never fuses these into an FMA;
// not inlined, so a host compiler told to contract, -mfma -ffp-contract=fast, cannot fuse them either).
__attribute__((noinline)) inline double __dadd_rn(double a, double b) { return a + b; }
__attribute__((noinline)) inline double __dsub_rn(double a, double b) { return a - b; }
__attribute__((noinline)) inline double __dmul_rn(double a, double b) { return a * b; }

// The runtime calls our launchers make.
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);

#ifdef EMU_DEVICE
// ---- the emulated device's runtime (device/runtime.cc): the rest of the CUDA runtime API the
// backend calls (native/cuda/runtime.cu, bench.cu, probe.cu), with CUDA's names and values.
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
struct CUmemPoolHandle_st;
using cudaEvent_t = CUevent_st*;
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;
using cudaMemPool_t = CUmemPoolHandle_st*;
using cudaStreamCallback_t = void (*)(cudaStream_t, cudaError_t, void*);
using cudaHostFn_t = void (*)(void*);

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor;
  int multiProcessorCount;
  int l2CacheSize;
};
enum cudaDeviceAttr { cudaDevAttrL2CacheSize = 38, cudaDevAttrMemoryPoolsSupported = 115 };
enum cudaMemPoolAttr {
  cudaMemPoolReuseFollowEventDependencies = 1,
  cudaMemPoolReuseAllowOpportunistic = 2,
  cudaMemPoolReuseAllowInternalDependencies = 3,
  cudaMemPoolAttrReleaseThreshold = 4,
  cudaMemPoolAttrReservedMemCurrent = 5,
  cudaMemPoolAttrReservedMemHigh = 6,
  cudaMemPoolAttrUsedMemCurrent = 7,
  cudaMemPoolAttrUsedMemHigh = 8,
};
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
constexpr unsigned cudaStreamDefault = 0, cudaStreamNonBlocking = 1;
constexpr unsigned cudaHostAllocDefault = 0, cudaHostAllocPortable = 1, cudaHostAllocMapped = 2;
constexpr unsigned long long cudaGraphInstantiateFlagAutoFreeOnLaunch = 1;

cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d);
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d);
cudaError_t cudaRuntimeGetVersion(int* v);
cudaError_t cudaDriverGetVersion(int* v);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMalloc(void** p, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** p, size_t bytes) { return cudaMalloc(reinterpret_cast<void**>(p), bytes); }
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t s);
cudaError_t cudaFreeAsync(void* p, cudaStream_t s);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned flags);
cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned flags);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int d);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr a, void* v);
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr a, void* v);
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t keep);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamAddCallback(cudaStream_t s, cudaStreamCallback_t cb, void* data, unsigned flags);
cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void* data);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g);
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long flags);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e);
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s);

// Device code's clocks: the PTX `globaltimer` register (build.mjs rewrites the inline assembly
// that reads it to this) and clock64(), both from the host's monotonic clock.
namespace emu {
uint64_t globaltimer_ns();
}
inline long long clock64() { return static_cast<long long>(::emu::globaltimer_ns()); }
void __nanosleep(unsigned ns);
#endif
