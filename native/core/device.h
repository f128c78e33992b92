// Per-device memory and execution queues.
//
// Every operator is enqueued on its device's queue and returns at once (docs/architecture.md,
// decision 4): for the CPU the queue is a native worker thread (here); for CUDA it is the
// device's stream, run by the CUDA runtime (native/cuda/runtime.cu), which registers its hooks
// below. core/ includes no backend: a build without CUDA simply registers none.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "tensor.h"

namespace alexnet {

// --- the hooks of a device kind with its own runtime (CUDA) -------------------------------------

// Errors found by kernels in the data (a label outside [0, C)) cannot throw where they happen.
// Each thread that queues work (one per Node environment) has one record per device in device
// memory; the first offending kernel in queue order claims it (`status`) and fills in the
// details, and the reading thread's next read reports it (see ReadStatus). Plain data: kernels
// write it, so its layout is fixed.
enum class DeviceErrorOp : int32_t { None = 0, SoftmaxCrossEntropyLabel = 1, TopkCorrectLabel = 2 };
struct DeviceErrorRecord {
  int32_t status;   // 0 = clear, 1 = set
  int32_t op;       // a DeviceErrorOp
  int64_t row;      // the lowest offending row of that operator
  int64_t label;    // its label
  int64_t classes;  // C
};

// What a read found once the work before it had run: an error the device reported to its queue
// (the runtime's own code, a cudaError_t for CUDA; 0 = none; sticky faults such as an illegal
// address), and the reading thread's device-side error record.
struct ReadStatus {
  int error = 0;
  DeviceErrorRecord record{};
};
// Called exactly once, from a driver callback thread (or from the calling thread when nothing
// was queued). Must not call the device runtime and must not block on the device; exceptions it
// throws are swallowed (they may not cross the driver).
using ReadDone = std::function<void(const ReadStatus&)>;

// A device kind's runtime, as core needs it: memory, its queue, copies and reads. `index` is
// Device::index. Every function may throw a typed alexnet::Error (ERR_CUDA_UNAVAILABLE for a
// device that does not exist) unless marked noexcept.
// A device's tensor storage, in bytes: what tensors hold now (used), what the allocator keeps
// from the system for them (reserved: used plus its cache of freed blocks), and the highest of
// each since the process started or the last reset (PyTorch's memory_allocated /
// memory_reserved / max_memory_allocated / max_memory_reserved). Operators' own scratch
// (workspaces, packed panels) is not tensor storage and is not counted.
struct MemoryStats {
  uint64_t used = 0;
  uint64_t reserved = 0;
  uint64_t peak_used = 0;
  uint64_t peak_reserved = 0;
};

struct DeviceRuntime {
  void* (*alloc)(int index, size_t bytes);             // stream-ordered
  void (*free)(int index, void* ptr) noexcept;         // stream-ordered
  void (*run)(int index, const std::function<void()>& task);  // task() with the device current
  void (*synchronize)(int index);                      // blocks until the queue is idle
  void (*fence_all)() noexcept;                        // waits on every queue, errors ignored
  // host -> device, asynchronous (the source may be reused at once)
  void (*upload)(int index, void* dst, const void* src, size_t bytes);
  // device -> host after all earlier work; `done` reports what the read found. Never blocks.
  void (*download_async)(int index, void* host_dst, const void* src, size_t bytes, ReadDone done);
  // `done` once all work queued so far has run. Never blocks.
  void (*after_queue)(int index, ReadDone done);
  // the explicit synchronous read: throws the read's typed error before anything reaches host_dst
  void (*download_sync)(int index, void* host_dst, const void* src, size_t bytes);
  // On a thread that may call the runtime (the JS thread): throws the typed error `s` stands
  // for (ERR_CUDA naming the fault, or ERR_ARGUMENT with the operator's message).
  void (*throw_read_status)(int index, const ReadStatus& s);
  // The device's MemoryStats as of the work queued so far; with reset_peak, the peaks start
  // again from the current values (after reading them).
  MemoryStats (*memory_stats)(int index, bool reset_peak);
};

// Called once by a runtime while the addon loads (through a static DeviceRuntimeRegistration
// in its source), before any device of that kind is used.
void register_device_runtime(DeviceType type, const DeviceRuntime* runtime);
// Registers `runtime` while the addon loads:
// `const DeviceRuntimeRegistration registration(type, &hooks);`
struct DeviceRuntimeRegistration {
  DeviceRuntimeRegistration(DeviceType type, const DeviceRuntime* runtime) { register_device_runtime(type, runtime); }
};
// The runtime of `type`, or null when this build has none (always null for the CPU, which core
// runs itself).
const DeviceRuntime* find_device_runtime(DeviceType type);
// The runtime of `device`'s kind; throws ERR_CUDA_UNAVAILABLE ("device cuda:0 is not available:
// this build has no CUDA support ...") when this build has none.
const DeviceRuntime& device_runtime(Device device);

// --- memory and queues ------------------------------------------------------------------------

void* device_alloc(Device device, size_t bytes);  // throws ERR_OUT_OF_MEMORY / ERR_CUDA_UNAVAILABLE
void device_free(Device device, void* ptr, size_t bytes) noexcept;
// The CPU allocator's cache of freed blocks (see device.cc), for diagnostics and tests.
size_t cpu_cached_bytes();
void cpu_release_cached();
// See MemoryStats; throws ERR_CUDA_UNAVAILABLE for a device kind this build lacks.
MemoryStats device_memory_stats(Device device, bool reset_peak);

// --- counters: what a warmed-up training step must not do (issue 14) ------------------------

// Per device, since the process started, counted where they happen (tests assert that a step
// makes none after warm-up; the figures are monotonic, compare two readings):
//   allocations: requests for memory that reached the system or the driver. CPU: the tensor
//     allocator's misses (aligned_alloc when its cache of freed blocks had no block of the size),
//     the growth of a kernel's scratch buffer or of a derived-weights entry. CUDA: cudaMalloc
//     (the cudaMalloc allocator's misses, the error records), a cudaMallocAsync that grew the
//     memory pool's reservation, cudaMallocHost of pinned staging.
//   synchronizations: blocking host waits on the device's queue. CPU: Queue::synchronize
//     (dataSync, the settings that wait for the queue). CUDA: cudaStreamSynchronize /
//     cudaDeviceSynchronize / cudaEventSynchronize in the runtime.
//   reads: asynchronous read-backs (data(), synchronize()): the host learns a result without
//     blocking, once the work queued before it has run. Not a synchronisation, but a step that
//     needs one every time cannot run ahead of the device by more than the reads allow.
struct DeviceCounters {
  uint64_t allocations = 0;
  uint64_t synchronizations = 0;
  uint64_t reads = 0;
};
void count_allocation(Device device) noexcept;
void count_synchronization(Device device) noexcept;
void count_read(Device device) noexcept;
DeviceCounters device_counters(Device device) noexcept;

// Where a failed task's error waits for a read: one per thread that enqueues work, that is per
// Node environment (the main thread and each worker_threads Worker run on their own thread).
// So a worker's bad label rejects that worker's next read, never another thread's.
struct ErrorSlot {
  std::mutex mutex;
  std::exception_ptr error;  // the first error not yet handed to a read
};

// A one-shot signal between queues, like a CUDA event recorded once: a task on one queue sets
// it (Queue::record), a task on another sleeps on a condition variable until it is set
// (Queue::wait). That orders work across queues without blocking the thread that queues it.
class Event {
 public:
  void set();
  void wait();        // blocks the calling thread until set() (no spinning)
  bool done() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
};

// An in-order task queue served by one worker thread. Tasks run in submission order. A task
// that throws does not stop the queue: the first error is kept in the error slot of the thread
// that enqueued the task, and handed to that thread's next synchronize()/read, which clears it
// (like a CUDA stream's deferred error, but not sticky, and not shared between threads).
class Queue {
 public:
  using Task = std::function<void()>;

  Queue();
  ~Queue();
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  void enqueue(Task task);
  // Queues a task that sets a fresh event, so the event is set once every task enqueued before
  // it has run (whether or not they failed). Returns at once (cudaEventRecord).
  std::shared_ptr<Event> record();
  // Queues a task that sleeps until `event` is set: the tasks enqueued after it run only then.
  // Returns at once (cudaStreamWaitEvent). The event must be recorded on another queue, or on
  // this one before this call.
  void wait(std::shared_ptr<Event> event);
  // Blocks the calling thread until every task enqueued before has run. Rethrows the error
  // kept for the calling thread, if any. Only for explicit synchronous reads and teardown.
  void synchronize();
  // Blocks until every task enqueued before this call has run, leaving errors where they are.
  // For an environment's teardown: its reads write into its typed arrays from the worker.
  void fence();
  // Inside a task: takes (and clears) the error kept for the thread that enqueued the running
  // task; null if none. Called from tasks that report back (reads).
  std::exception_ptr take_error();
  size_t pending() const;

 private:
  struct Entry {
    Task task;
    std::shared_ptr<ErrorSlot> errors;  // of the enqueuing thread
  };
  void run();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<Entry> tasks_;
  bool running_task_ = false;
  bool stop_ = false;
  std::shared_ptr<ErrorSlot> running_errors_;  // the running task's slot (worker thread only)
  std::thread worker_;
};

// The queue that runs work for the CPU. It lives for the whole process.
Queue& cpu_queue();

// The communication queue: a second worker thread, for the collectives of native/dist, so that
// they run beside the CPU kernels instead of between them (issue 13: a bucket's allReduce
// overlaps the rest of backward). MPI is initialised and called only from its thread. Work is
// ordered between the two queues with events (Queue::record / Queue::wait). Started on first
// use; lives for the whole process.
Queue& comm_queue();

// Runs `task` in `device`'s order: on the CPU it is queued on the worker thread and errors are
// deferred to the next read; on a CUDA device the task runs at once on the calling thread with
// the device current, and only *launches* work on the device's stream (errors in the launch
// are thrown at once, errors in the kernels surface at the next read).
void enqueue(Device device, Queue::Task task);

// Blocks until all work queued on `device` has run; rethrows a deferred error.
void device_synchronize(Device device);

// Tasks queued or running on `device` (always 0 for CUDA: the stream holds the work).
size_t device_pending(Device device);

// Host -> device copy of `bytes` into dst: on the CPU at once (memcpy); on another device
// asynchronously, through its runtime's staging (the caller may reuse src at once).
void device_upload(Device device, void* dst, const void* src, size_t bytes);

// Before an environment goes away: waits until every queue (the CPU worker, the communication
// queue when started, every device stream) has run the work queued so far, ignoring errors.
void fence_all_devices();

}  // namespace alexnet
