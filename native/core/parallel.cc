#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace alexnet {

namespace {

class Pool {
 public:
  explicit Pool(int threads) { resize(threads); }

  int size() const { return threads_; }

  void resize(int threads) {
    std::lock_guard<std::mutex> call(call_mutex_);
    stop_workers();
    threads_ = std::clamp(threads, 1, 64);
    spin_ = static_cast<unsigned>(threads_) <= std::max(1u, std::thread::hardware_concurrency());
    stop_ = false;
    // A new worker starts at the current generation: the last run's job is over (its pointer
    // is gone), and a worker that took it for new work would call through a null job.
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i, g = generation_.load()] { work(i, g); });
  }

  void run(int chunks, const std::function<void(int)>& job) {
    std::lock_guard<std::mutex> call(call_mutex_);
    std::exception_ptr error;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      chunks_ = chunks;
      remaining_ = chunks - 1;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    try {
      job(0);  // the caller takes chunk 0
    } catch (...) {
      error = std::current_exception();
    }
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return remaining_ == 0; });
    job_ = nullptr;
    if (!error) error = error_;
    lock.unlock();
    if (error) std::rethrow_exception(error);
  }

 private:
  void work(int id, uint64_t seen) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      if (!stop_ && generation_ == seen) {
        lock.unlock();
        spin_for_next(seen);
        lock.lock();
      }
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (id >= chunks_) continue;
      const std::function<void(int)>* job = job_;
      lock.unlock();
      std::exception_ptr err;
      try {
        (*job)(id);
      } catch (...) {
        err = std::current_exception();
      }
      lock.lock();
      if (err && !error_) error_ = err;
      if (--remaining_ == 0) done_.notify_all();
    }
  }

  // Before sleeping, a helper watches for the next region for up to kSpinMicros, as OpenMP's
  // and onnxruntime's pools do: a pass of the network is a train of regions with gaps of tens of
  // microseconds, and a helper that sleeps in every gap is woken by the scheduler wherever it
  // sees fit, at first often on the CPU of the thread that woke it. A batch-1 forward pass run
  // 300 ms after the last took 28.6-31 ms (median of 15) without this and 18.2-19.8 with it, the
  // pass right after 27 against 16 (back to back: 15-16 ms either way; 2-vCPU Intel Xeon). Not
  // when the pool has more threads than the machine has CPUs: the spinning would take their time.
  void spin_for_next(uint64_t seen) {
    if (!spin_) return;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    for (int i = 0;; ++i) {
      if (generation_.load(std::memory_order_acquire) != seen) return;
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      if ((i & 63) == 63 && std::chrono::steady_clock::now() >= until) return;
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::mutex call_mutex_;  // one parallel region at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  int threads_ = 1;
  int chunks_ = 0;
  int remaining_ = 0;
  // Written under mutex_; atomic so that a spinning helper can watch it without the lock.
  std::atomic<uint64_t> generation_{0};
  static constexpr int64_t kSpinMicros = 1000;
  bool spin_ = false;  // set by resize (no helper runs then)
  bool stop_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  // Leaked on purpose (see cpu_queue): lives until the process exits.
  static Pool* p = new Pool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return *p;
}

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n); }

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = std::min<int64_t>(num_threads(), n / grain);
  if (chunks <= 1) {
    fn(begin, end);
    return;
  }
  const int64_t step = (n + chunks - 1) / chunks;
  pool().run(static_cast<int>(chunks), [&](int c) {
    const int64_t lo = begin + c * step;
    const int64_t hi = std::min(end, lo + step);
    if (lo < hi) fn(lo, hi);
  });
}

}  // namespace alexnet
