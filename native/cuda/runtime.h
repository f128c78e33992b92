// The CUDA runtime layer: per-device stream, stream-ordered allocation, pinned staging,
// asynchronous copies, and the completion path of reads. Host C++ API with no CUDA types, so
// g++-compiled code can call it; the implementation (runtime.cu) exists only in builds with
// CUDA (ALEXNET_WITH_CUDA).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "../core/device.h"  // DeviceErrorRecord, ReadStatus, ReadDone, DeviceRuntime

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

// --- memory ----------------------------------------------------------------------------------

// Stream-ordered allocation. With memory pools (the default where the device supports them:
// cudaDevAttrMemoryPoolsSupported) it is cudaMallocAsync from the device's default pool, which
// keeps freed memory (release threshold: unlimited), so after the first training step a step
// allocates nothing from the driver. Without pools, or with ALEXNET_CUDA_MEMPOOL=0, it is
// cudaMalloc behind our own cache of freed blocks, reused by size in stream order.
// Out of memory first trims the cache and retries once; then it throws ERR_OUT_OF_MEMORY
// with the size asked for, the allocator's reserved and used bytes and the device's free and
// total bytes.
void* alloc(int device, size_t bytes);
// Stream-ordered free: safe while kernels that use the memory are still queued.
void free(int device, void* ptr) noexcept;
// Waits until the stream is idle, then hands the allocator's unused memory back to the driver.
// For one-off large users (the benchmark's gigabyte-sized ceilings) that should not leave it
// reserved for the rest of the process.
void release_cached(int device);
// Which allocator `device` uses (or would use): "pool" or "cudaMalloc"; "" when the device
// cannot be asked. Does not create the device's stream.
const char* allocator_name(int device) noexcept;

// Free / total memory of the device, bytes.
void mem_info(int device, size_t* free_bytes, size_t* total_bytes);

// --- the device-side error record ----------------------------------------------------------

// Errors found by kernels in the data (a label outside [0, C)) cannot throw where they happen.
// Each thread that queues work (one per Node environment) has one record per device in device
// memory (DeviceErrorRecord, native/core/device.h); the first offending kernel in stream order
// claims it (atomicCAS on `status`) and fills in the details. Every read copies its thread's
// record back on the stream together with its data and clears it, so that thread's read that
// follows the offending operator rejects, like the CPU queue's deferred error, and other
// threads' reads do not.
// The calling thread's record on `device`, in device memory (for kernel launchers).
DeviceErrorRecord* error_record(int device);

// --- copies and reads ------------------------------------------------------------------------

// Host -> device, asynchronous: `src` is copied into pinned staging first (so the caller may
// reuse it at once), then copied on the stream.
void upload(int device, void* dst, const void* src, size_t bytes);
// Device -> device on the stream.
void copy(int device, void* dst, const void* src, size_t bytes);

// What a read found once the work before it had run is a ReadStatus (native/core/device.h):
// `error` is the cudaError_t reported to the stream (sticky device faults such as
// cudaErrorIllegalAddress; 0 = cudaSuccess), `record` the thread's device-side error record.
// `done` (a ReadDone) is called exactly once, from a CUDA callback thread (or from the calling
// thread when nothing was queued); it must not call CUDA and must not block on the device.

// Device -> host: after all earlier work on the stream, copies `bytes` into `host_dst` (skipped
// when the stream reports an error) and calls `done` with what the read found. Never blocks.
// Throws a typed error when the copy cannot be queued (e.g. the device has already faulted);
// `done` is then not called.
void download_async(int device, void* host_dst, const void* src, size_t bytes, ReadDone done);
// Calls `done` once all work queued so far on the stream has run. Never blocks. Throws like
// download_async.
void after_stream(int device, ReadDone done);
// The explicit synchronous read (dataSync): queues the copy, waits for the stream and throws
// the typed error of the read (see throw_read_status) before anything reaches `host_dst`.
void download_sync(int device, void* host_dst, const void* src, size_t bytes);
// On a thread that may call CUDA (the JS thread): throws the typed error `s` stands for
// (ERR_CUDA naming the fault, or ERR_ARGUMENT with the operator's message); returns when the
// read was clean.
void throw_read_status(int device, const ReadStatus& s);

// Blocks until the stream is idle (explicit synchronous waits only). Throws on a CUDA error.
void synchronize(int device);
// Blocks until every stream made so far has run the work queued on it, ignoring errors: for
// an environment's teardown, since reads copy into its typed arrays from the stream.
void fence_all_streams() noexcept;
// Throws the pending asynchronous error of the device, if any (after a kernel launch).
void check_last_error(const char* what, const char* file, int line);

// --- CUDA graphs (issue 14: the training step captured once, replayed) ---------------------
//
// graph_begin starts capturing the device's stream (cudaStreamBeginCapture, thread-local mode:
// the calling thread queues, nothing runs). Meanwhile: allocations become the graph's own
// (cudaMallocAsync in a capture: a memory node, with a fixed address for the graph's life);
// frees of those become free nodes; a free of memory from before the capture is held back and
// queued once the capture ends (the graph cannot own it). Anything that cannot be captured (a
// read, an upload through pinned staging, a synchronisation, a cuDNN algorithm search) fails
// the call that tried it with its CUDA error and invalidates the capture. Needs the memory pool
// allocator (with the cudaMalloc cache a block the graph uses could be handed out again).
// graph_end ends the capture and instantiates it (cudaGraphInstantiateFlagAutoFreeOnLaunch: a
// replay frees the previous replay's allocations that were not freed, so the tensors made in
// the capture and kept keep their addresses). It returns the graph's id, or throws ERR_CUDA
// saying why (the capture is ended either way; the tensors allocated in a failed capture have
// no memory, and freeing them does nothing). graph_launch queues one replay on the stream;
// graph_destroy frees the graph (after a replay in flight has run).
void graph_begin(int device);
int64_t graph_end(int device);
void graph_launch(int device, int64_t id);
void graph_destroy(int device, int64_t id);
// Whether a graph capture is in progress on the device's stream (a buffer kept across steps,
// like cuDNN's workspace, must not grow inside one: it would become the graph's memory).
bool capturing(int device) noexcept;

// Test aid: launches a kernel that, after spinning for `delay_ms`, writes to an invalid
// device address. The context is unusable afterwards (sticky error): only for a child process.
void debug_fault(int device, double delay_ms);
// Test aid: launches a kernel that only spins for `delay_ms`: the work queued after it waits,
// while the host goes on queueing (tests that need the device to lag behind the host).
void debug_stall(int device, double delay_ms);

}  // namespace alexnet::cuda

#define ALEXNET_CUDA_CHECK_LAUNCH(what) ::alexnet::cuda::check_last_error(what, __FILE__, __LINE__)
