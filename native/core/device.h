// Per-device memory and execution queues.
//
// Every operator is enqueued on its device's queue and returns at once (design decision 4):
// for the CPU the queue is a native worker thread; for CUDA (next issue) it is a stream.
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

void* device_alloc(Device device, size_t bytes);  // throws ERR_OUT_OF_MEMORY / ERR_CUDA_UNAVAILABLE
void device_free(Device device, void* ptr, size_t bytes) noexcept;
// The CPU allocator's cache of freed blocks (see device.cc), for diagnostics and tests.
size_t cpu_cached_bytes();
void cpu_release_cached();

// Where a failed task's error waits for a read: one per thread that enqueues work, that is per
// Node environment (the main thread and each worker_threads Worker run on their own thread).
// So a worker's bad label rejects that worker's next read, never another thread's.
struct ErrorSlot {
  std::mutex mutex;
  std::exception_ptr error;  // the first error not yet handed to a read
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

// Runs `task` in `device`'s order: on the CPU it is queued on the worker thread and errors are
// deferred to the next read; on a CUDA device the task runs at once on the calling thread with
// the device current, and only *launches* work on the device's stream (errors in the launch
// are thrown at once, errors in the kernels surface at the next read).
void enqueue(Device device, Queue::Task task);

// Blocks until all work queued on `device` has run; rethrows a deferred error.
void device_synchronize(Device device);

// Tasks queued or running on `device` (always 0 for CUDA: the stream holds the work).
size_t device_pending(Device device);

}  // namespace alexnet
