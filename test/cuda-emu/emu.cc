// The kernel emulator's runtime: blocks of OS threads, barriers, warp exchanges, the launch
// checks and the last-error slot (see include/emu.h).
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "include/emu.h"

namespace emu {

thread_local ThreadState t;

void abort_kernel(const char* what) {
  std::fprintf(stderr, "EMU FAIL: %s (block %u,%u,%u thread %u,%u,%u)\n", what, t.bid.x, t.bid.y, t.bid.z,
               t.tid.x, t.tid.y, t.tid.z);
  std::fflush(stderr);
  std::_Exit(3);
}

namespace {

enum Kind { kSync = 1, kExit = 2, kShuffle = 3 };

// A reusable barrier for n threads that checks every arrival of a phase is of the same kind:
// a __syncthreads that part of the block skips (or returns before) is a divergent barrier.
class Barrier {
 public:
  explicit Barrier(unsigned n) : n_(n) {}
  void wait(int kind, const char* what) {
    std::unique_lock<std::mutex> lock(m_);
    if (arrived_ == 0) {
      kind_ = kind;
    } else if (kind_ != kind) {
      lock.unlock();
      abort_kernel(what);
    }
    if (++arrived_ == n_) {
      arrived_ = 0;
      ++generation_;
      lock.unlock();  // wake the others after the unlock: they need the mutex to return
      cv_.notify_all();
      return;
    }
    const uint64_t g = generation_;
    cv_.wait(lock, [&] { return generation_ != g; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  unsigned n_;
  unsigned arrived_ = 0;
  int kind_ = 0;
  uint64_t generation_ = 0;
};

struct Warp {
  explicit Warp(unsigned lanes) : lanes(lanes), barrier(lanes) {}
  unsigned lanes;
  Barrier barrier;
  // Two sets of slots, used alternately by successive shuffles: a lane writes set k % 2 of its
  // k-th shuffle only after the barrier of shuffle k - 1, which every lane passes only once it
  // has read set (k - 2) % 2 = k % 2, so one barrier per shuffle suffices (a third of the
  // wake-ups of write / wait / read / wait: reductions are most of a softmax's emulated time).
  uint64_t slot[2][32] = {};
  unsigned count[32] = {};  // shuffles done, per lane
};

thread_local cudaError_t last_error = cudaSuccess;

}  // namespace

struct Block {
  explicit Block(unsigned n) : barrier(n) {
    for (unsigned first = 0; first < n; first += 32) warps.emplace_back(new Warp(std::min(32u, n - first)));
  }
  ~Block() {
    for (Warp* w : warps) delete w;
  }
  Barrier barrier;
  std::vector<Warp*> warps;
};

void syncthreads() {
  t.block->barrier.wait(kSync, "__syncthreads reached by part of the block only (divergent barrier)");
}

uint64_t shfl_xor_bits(unsigned mask, uint64_t bits, int lane_mask, int width) {
  Warp& w = *t.block->warps[t.linear / 32];
  const unsigned lane = t.linear % 32;
  if (width != 32) abort_kernel("warp shuffle with a width other than 32 (not emulated)");
  if (w.lanes != 32 || mask != 0xffffffffu)
    abort_kernel("warp shuffle with a full mask in a partial warp, or a partial mask");
  const unsigned src = lane ^ static_cast<unsigned>(lane_mask);
  if (src >= 32) abort_kernel("warp shuffle from a lane outside the warp");
  const unsigned set = w.count[lane]++ & 1;
  w.slot[set][lane] = bits;
  w.barrier.wait(kShuffle, "warp shuffle reached by part of the warp only");
  return w.slot[set][src];
}

namespace {

// The OS threads that play a block's CUDA threads, kept from one launch to the next: creating
// 256 threads per launch was most of a small case's time (about 1.5 ms a thread under TSan).
// run(n, f) has threads 0..n-1 each call f(its index) and returns when all have.
class Workers {
 public:
  template <typename F>
  void run(unsigned n, const F& f) {
    std::unique_lock<std::mutex> lock(m_);
    while (threads_.size() < n) {
      const unsigned index = static_cast<unsigned>(threads_.size());
      threads_.emplace_back([this, index] { loop(index); });
    }
    job_ = [&f](unsigned i) { f(i); };
    wanted_ = n;
    done_ = 0;
    ++launch_;
    work_.notify_all();
    finished_.wait(lock, [&] { return done_ == wanted_; });
    job_ = nullptr;
  }
  ~Workers() {
    {
      std::lock_guard<std::mutex> lock(m_);
      quit_ = true;
    }
    work_.notify_all();
    for (std::thread& th : threads_) th.join();
  }

 private:
  void loop(unsigned index) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      work_.wait(lock, [&] { return quit_ || (launch_ != seen && index < wanted_); });
      if (quit_) return;
      seen = launch_;
      const std::function<void(unsigned)> job = job_;
      lock.unlock();
      job(index);
      lock.lock();
      if (++done_ == wanted_) finished_.notify_one();
    }
  }

  std::mutex m_;
  std::condition_variable work_, finished_;
  std::vector<std::thread> threads_;
  std::function<void(unsigned)> job_;
  uint64_t launch_ = 0;
  unsigned wanted_ = 0, done_ = 0;
  bool quit_ = false;
};

Workers& workers() {
  static Workers w;
  return w;
}

}  // namespace

void run_grid(dim3 grid, dim3 block, size_t shared_bytes, void (*body)(void*), void* ctx) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  // The limits of every GPU since compute capability 3.0 (cudaErrorInvalidConfiguration).
  const bool bad = grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 ||
                   block.z == 0 || threads > 1024 || block.z > 64 || grid.x > 2147483647u ||
                   grid.y > 65535 || grid.z > 65535 || shared_bytes > 48 * 1024;
  if (bad) {
    std::fprintf(stderr, "emu: refused launch grid (%u,%u,%u) block (%u,%u,%u) shared %zu\n", grid.x, grid.y,
                 grid.z, block.x, block.y, block.z, shared_bytes);
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  Block shared_state(static_cast<unsigned>(threads));
  const auto cuda_thread = [&](unsigned linear) {
    const unsigned x = linear % block.x, y = linear / block.x % block.y, z = linear / (block.x * block.y);
    t.tid = uint3{x, y, z};
    t.bdim = block;
    t.gdim = grid;
    t.linear = linear;
    t.block = &shared_state;
    for (unsigned bz = 0; bz < grid.z; ++bz)
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx) {
          t.bid = uint3{bx, by, bz};
          body(ctx);
          // The block is over for this thread; the next block starts when all are here.
          shared_state.barrier.wait(kExit, "a thread returned while others wait in __syncthreads");
        }
    t.block = nullptr;
  };
  workers().run(static_cast<unsigned>(threads), cuda_thread);
}

}  // namespace emu

cudaError_t cudaGetLastError() {
  const cudaError_t e = emu::last_error;
  emu::last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return emu::last_error; }
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    default: return "cudaErrorLaunchFailure";
  }
}
const char* cudaGetErrorString(cudaError_t e) { return cudaGetErrorName(e); }
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t) {
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
