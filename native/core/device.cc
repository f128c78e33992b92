#include "device.h"

#include <cstdlib>
#include <cstring>
#include <new>

#ifdef ALEXNET_WITH_CUDA
#include "../cuda/runtime.h"
#endif

namespace alexnet {

namespace {
constexpr size_t kAlign = 64;  // a cache line; also what AVX-512 loads like
}

[[noreturn]] void no_cuda(Device device) {
  fail(code::kCudaUnavailable, "device ", device.str(),
       " is not available: this build has no CUDA support (built without nvcc or with ALEXNET_CUDA=0)");
}

void* device_alloc(Device device, size_t bytes) {
  if (device.type == DeviceType::Cuda) {
#ifdef ALEXNET_WITH_CUDA
    return cuda::alloc(device.index, bytes);
#else
    no_cuda(device);
#endif
  }
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
  if (p == nullptr)
    fail(code::kOutOfMemory, "out of memory: could not allocate ", bytes, " bytes on the cpu");
  return p;
}

void device_free(Device device, void* ptr) noexcept {
  if (device.type == DeviceType::Cpu) {
    std::free(ptr);
    return;
  }
#ifdef ALEXNET_WITH_CUDA
  cuda::free(device.index, ptr);
#endif
}

Queue::Queue() : worker_([this] { run(); }) {}

Queue::~Queue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Queue::enqueue(Task task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void Queue::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
    if (tasks_.empty() && stop_) return;
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    running_task_ = true;
    lock.unlock();
    try {
      task();
    } catch (...) {
      std::lock_guard<std::mutex> g(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    task = nullptr;  // release captured storages outside the lock
    lock.lock();
    running_task_ = false;
    if (tasks_.empty()) idle_.notify_all();
  }
}

void Queue::synchronize() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return tasks_.empty() && !running_task_; });
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

std::exception_ptr Queue::take_error() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::exception_ptr e = error_;
  error_ = nullptr;
  return e;
}

size_t Queue::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return tasks_.size() + (running_task_ ? 1 : 0);
}

Queue& cpu_queue() {
  // Deliberately leaked: the worker must outlive every Node environment (worker_threads
  // included) and static destruction order at exit.
  static Queue* cpu = new Queue();
  return *cpu;
}

void enqueue(Device device, Queue::Task task) {
  if (device.type == DeviceType::Cpu) {
    cpu_queue().enqueue(std::move(task));
    return;
  }
#ifdef ALEXNET_WITH_CUDA
  cuda::DeviceGuard guard(device.index);
  task();
#else
  no_cuda(device);
#endif
}

void device_synchronize(Device device) {
  if (device.type == DeviceType::Cpu) {
    cpu_queue().synchronize();
    return;
  }
#ifdef ALEXNET_WITH_CUDA
  cuda::synchronize(device.index);
#else
  no_cuda(device);
#endif
}

size_t device_pending(Device device) {
  return device.type == DeviceType::Cpu ? cpu_queue().pending() : 0;
}

}  // namespace alexnet
