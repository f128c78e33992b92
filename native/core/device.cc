#include "device.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <vector>

namespace alexnet {

namespace {

constexpr size_t kAlign = 64;  // a cache line; also what AVX-512 loads like

// A caching allocator for CPU storage. Training allocates the same sizes every step; fresh
// large blocks from malloc are mmapped and cost a page fault per 4 KiB on first touch (about a
// third of a second per GiB here), so freed blocks are kept by exact size and handed out again.
// Small blocks too (the loss scalar, the labels): a warmed-up training step then asks the
// system for nothing (issue 14; the allocations counter, DeviceCounters, counts the misses).
// The cache holds at most kMaxCached bytes; a failed allocation empties it and retries.
class CpuCache {
 public:
  void* get(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        note_used(bytes);
        return p;
      }
    }
    count_allocation(Device{});
    void* p = std::aligned_alloc(kAlign, bytes);
    if (p == nullptr) {
      release_all();
      p = std::aligned_alloc(kAlign, bytes);
    }
    if (p != nullptr) {
      std::lock_guard<std::mutex> lock(mutex_);
      note_used(bytes);
    }
    return p;
  }

  void put(void* p, size_t bytes) noexcept {
    if (p == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      used_ -= bytes;
      if (cached_ + bytes <= kMaxCached) {
        try {
          free_[bytes].push_back(p);
          cached_ += bytes;
          return;
        } catch (...) {
        }
      }
    }
    std::free(p);
  }

  void release_all() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, list] : free_)
      for (void* p : list) std::free(p);
    free_.clear();
    cached_ = 0;
  }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  MemoryStats stats(bool reset_peak) {
    std::lock_guard<std::mutex> lock(mutex_);
    MemoryStats s{used_, used_ + cached_, peak_used_, peak_reserved_};
    if (reset_peak) {
      peak_used_ = used_;
      peak_reserved_ = used_ + cached_;
    }
    return s;
  }

 private:
  static constexpr size_t kMaxCached = size_t{2} << 30;    // 2 GiB
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  // tensor storage handed out and not yet returned, and the peaks (MemoryStats); under mutex_
  uint64_t used_ = 0, peak_used_ = 0, peak_reserved_ = 0;

  void note_used(size_t bytes) {  // caller holds mutex_
    used_ += bytes;
    if (used_ > peak_used_) peak_used_ = used_;
    if (used_ + cached_ > peak_reserved_) peak_reserved_ = used_ + cached_;
  }
};

CpuCache& cpu_cache() {
  static CpuCache* c = new CpuCache();  // leaked: storage may be freed during exit
  return *c;
}

size_t rounded(size_t bytes) { return bytes == 0 ? kAlign : (bytes + kAlign - 1) / kAlign * kAlign; }

}  // namespace

size_t cpu_cached_bytes() { return cpu_cache().cached(); }
void cpu_release_cached() { cpu_cache().release_all(); }

namespace {
// Zero-initialised before any static constructor runs, so a runtime may register from one.
const DeviceRuntime* g_runtimes[2] = {nullptr, nullptr};

size_t slot(DeviceType type) { return static_cast<size_t>(type) < 2 ? static_cast<size_t>(type) : 0; }
}  // namespace

void register_device_runtime(DeviceType type, const DeviceRuntime* runtime) {
  if (type != DeviceType::Cpu) g_runtimes[slot(type)] = runtime;
}

const DeviceRuntime* find_device_runtime(DeviceType type) {
  return type == DeviceType::Cpu ? nullptr : g_runtimes[slot(type)];
}

const DeviceRuntime& device_runtime(Device device) {
  const DeviceRuntime* rt = find_device_runtime(device.type);
  if (rt == nullptr)
    fail(code::kCudaUnavailable, "device ", device.str(),
         " is not available: this build has no CUDA support (built without nvcc or with ALEXNET_CUDA=0)");
  return *rt;
}

namespace {
// [device type][index]; indices past the table share its last row (no GPU count is that high).
constexpr int kCounterDevices = 64;
struct AtomicCounters {
  std::atomic<uint64_t> allocations{0}, synchronizations{0}, reads{0};
};
AtomicCounters g_counters[2][kCounterDevices];

AtomicCounters& counters(Device d) noexcept {
  const int i = d.index < 0 ? 0 : (d.index >= kCounterDevices ? kCounterDevices - 1 : d.index);
  return g_counters[slot(d.type)][i];
}
}  // namespace

void count_allocation(Device device) noexcept { counters(device).allocations.fetch_add(1, std::memory_order_relaxed); }
void count_synchronization(Device device) noexcept { counters(device).synchronizations.fetch_add(1, std::memory_order_relaxed); }
void count_read(Device device) noexcept { counters(device).reads.fetch_add(1, std::memory_order_relaxed); }

DeviceCounters device_counters(Device device) noexcept {
  AtomicCounters& c = counters(device);
  return DeviceCounters{c.allocations.load(), c.synchronizations.load(), c.reads.load()};
}

void* device_alloc(Device device, size_t bytes) {
  if (device.type != DeviceType::Cpu) return device_runtime(device).alloc(device.index, bytes);
  void* p = cpu_cache().get(rounded(bytes));
  if (p == nullptr)
    fail(code::kOutOfMemory, "out of memory: could not allocate ", bytes, " bytes on the cpu");
  return p;
}

MemoryStats device_memory_stats(Device device, bool reset_peak) {
  if (device.type != DeviceType::Cpu) return device_runtime(device).memory_stats(device.index, reset_peak);
  return cpu_cache().stats(reset_peak);
}

void device_free(Device device, void* ptr, size_t bytes) noexcept {
  if (device.type == DeviceType::Cpu) {
    cpu_cache().put(ptr, rounded(bytes));
    return;
  }
  if (const DeviceRuntime* rt = find_device_runtime(device.type)) rt->free(device.index, ptr);
}

namespace {

// The calling thread's error slot, made on its first use and kept until the thread ends
// (queued tasks hold it too, so an error of a task queued by a terminated worker is dropped
// with the last of them).
const std::shared_ptr<ErrorSlot>& thread_error_slot() {
  thread_local const std::shared_ptr<ErrorSlot> slot = std::make_shared<ErrorSlot>();
  return slot;
}

std::exception_ptr take(ErrorSlot& slot) {
  std::lock_guard<std::mutex> lock(slot.mutex);
  std::exception_ptr e = slot.error;
  slot.error = nullptr;
  return e;
}

}  // namespace

void Event::set() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
  }
  cv_.notify_all();
}

void Event::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return done_; });
}

bool Event::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
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
  Entry entry{std::move(task), thread_error_slot()};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.push_back(std::move(entry));
  }
  wake_.notify_one();
}

std::shared_ptr<Event> Queue::record() {
  auto event = std::make_shared<Event>();
  enqueue([event] { event->set(); });
  return event;
}

void Queue::wait(std::shared_ptr<Event> event) {
  enqueue([event = std::move(event)] { event->wait(); });
}

void Queue::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
    if (tasks_.empty() && stop_) return;
    Entry entry = std::move(tasks_.front());
    tasks_.pop_front();
    running_task_ = true;
    lock.unlock();
    running_errors_ = entry.errors;
    try {
      entry.task();
    } catch (...) {
      std::lock_guard<std::mutex> g(entry.errors->mutex);
      if (!entry.errors->error) entry.errors->error = std::current_exception();
    }
    running_errors_ = nullptr;
    entry = Entry{};  // release captured storages (and the slot) outside the lock
    lock.lock();
    running_task_ = false;
    if (tasks_.empty()) idle_.notify_all();
  }
}

void Queue::synchronize() {
  // Waits for the tasks queued before this call only (a fence), not for the queue to be idle:
  // other threads may keep it busy forever.
  fence();
  if (std::exception_ptr e = take(*thread_error_slot())) std::rethrow_exception(e);
}

void Queue::fence() {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  enqueue([&] {
    std::lock_guard<std::mutex> lock(m);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return done; });
}

std::exception_ptr Queue::take_error() {
  // Only the worker thread sets running_errors_, and only tasks (on that thread) call this.
  return running_errors_ ? take(*running_errors_) : nullptr;
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

namespace {
std::atomic<Queue*> g_comm{nullptr};
}  // namespace

Queue& comm_queue() {
  // Leaked like the CPU queue. Made once, under a static's guard; g_comm lets teardown ask
  // whether it exists without starting it.
  static Queue* comm = [] {
    Queue* q = new Queue();
    g_comm = q;
    return q;
  }();
  return *comm;
}

void enqueue(Device device, Queue::Task task) {
  if (device.type == DeviceType::Cpu) {
    cpu_queue().enqueue(std::move(task));
    return;
  }
  device_runtime(device).run(device.index, task);
}

void device_synchronize(Device device) {
  if (device.type == DeviceType::Cpu) {
    count_synchronization(device);
    cpu_queue().synchronize();
    return;
  }
  device_runtime(device).synchronize(device.index);
}

size_t device_pending(Device device) {
  return device.type == DeviceType::Cpu ? cpu_queue().pending() : 0;
}

void device_upload(Device device, void* dst, const void* src, size_t bytes) {
  if (device.type == DeviceType::Cpu) {
    std::memcpy(dst, src, bytes);
    return;
  }
  device_runtime(device).upload(device.index, dst, src, bytes);
}

void fence_all_devices() {
  cpu_queue().fence();
  // After the CPU: the communication queue's tasks wait for CPU work queued before them.
  if (Queue* comm = g_comm.load()) comm->fence();
  for (const DeviceRuntime* rt : g_runtimes)
    if (rt != nullptr) rt->fence_all();
}

}  // namespace alexnet
