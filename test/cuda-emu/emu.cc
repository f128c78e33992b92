// The kernel emulator's runtime (see include/emu.h): the threads of a block are fibers
// (ucontext) that one scheduler runs in turn; a fiber runs until it reaches a barrier
// (__syncthreads, or a warp shuffle's exchange) or returns, and a barrier opens once every
// thread it spans is there. Blocks run one after another.
//
// Under the sanitizers the fibers are made known to them: AddressSanitizer is told of every
// stack switch, and ThreadSanitizer sees each CUDA thread as its own thread (its fiber API,
// switching without synchronisation), with happens-before only where CUDA gives it: the launch
// (host writes before, reads after) and each barrier phase (every arrival releases, every
// thread leaving acquires); atomics are relaxed, as CUDA's. The scheduler's own bookkeeping is
// hidden from it. So a memory access that no __syncthreads orders is reported as a data race,
// as compute-sanitizer's racecheck would report it; between blocks too, since consecutive
// blocks run on different fibers and each block's barriers and shared variables are new memory.
#include <sys/mman.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "include/emu.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
#define EMU_TSAN 1
#endif

namespace emu {

thread_local ThreadState t;
thread_local cudaError_t last_error = cudaSuccess;  // cudaGetLastError's

void abort_kernel(const char* what) {
  std::fprintf(stderr, "EMU FAIL: %s (block %u,%u,%u thread %u,%u,%u)\n", what, t.bid.x, t.bid.y, t.bid.z,
               t.tid.x, t.tid.y, t.tid.z);
  std::fflush(stderr);
  std::_Exit(3);
}

namespace {

enum State { kReady, kAtBlockBarrier, kAtWarpBarrier, kDone };

constexpr size_t kStackBytes = 256 * 1024;

struct Fiber {
  ucontext_t context;
  char* stack = nullptr;
  void* tsan = nullptr;       // ThreadSanitizer's fiber
  void* asan_fake = nullptr;  // AddressSanitizer's fake stack, saved across a switch
  int state = kDone;
  bool quiet = false;  // ThreadSanitizer ignores this fiber's accesses outside the kernel
  ThreadState where;
};

// Fibers are kept across launches (stacks and sanitizer state are costly to make). Two sets,
// taken by even and odd blocks: to ThreadSanitizer a fiber is one thread, whose accesses are
// ordered by program order, so consecutive blocks must not share fibers for a race between
// them (two blocks writing one element) to be seen.
std::vector<Fiber*>& fiber_pool(unsigned set) {
  static std::vector<Fiber*>* pools = new std::vector<Fiber*>[2];  // never freed: lives to the exit
  return pools[set];
}

Fiber* fiber(unsigned set, unsigned i) {
  std::vector<Fiber*>& pool = fiber_pool(set);
  while (pool.size() <= i) {
    Fiber* f = new Fiber;
    void* mem = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
      std::fprintf(stderr, "emu: no memory for a fiber stack\n");
      std::_Exit(4);
    }
    f->stack = static_cast<char*>(mem);
#ifdef EMU_TSAN
    f->tsan = __tsan_create_fiber(0);
#endif
    pool.push_back(f);
  }
  return pool[i];
}

// Addresses whose only use is as ThreadSanitizer synchronisation objects.
char g_launch_sync, g_done_sync;

constexpr size_t kMaxStaticShared = 48 * 1024;  // a block's static __shared__ limit

inline void tsan_release(void* a) {
#ifdef EMU_TSAN
  __tsan_release(a);
#else
  (void)a;
#endif
}
inline void tsan_acquire(void* a) {
#ifdef EMU_TSAN
  __tsan_acquire(a);
#else
  (void)a;
#endif
}

// Hides the emulator's own bookkeeping from ThreadSanitizer (it is ordered by the scheduler's
// switches, which the sanitizer is told nothing of); the kernels' accesses stay checked.
inline void quiet_begin() {
#ifdef EMU_TSAN
  AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
  AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
#endif
}
inline void quiet_end() {
#ifdef EMU_TSAN
  AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
  AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
#endif
}

bool g_dry_run = false;
uint64_t g_accepted = 0, g_refused = 0;

}  // namespace

struct Block {
  unsigned n = 0;
  bool direct = false;  // run_grid_direct: threads are plain calls, no barrier may be reached
  std::vector<Fiber*> fibers;
  // Made afresh for every block (new memory: ThreadSanitizer forgets the accesses and the
  // synchronisation of the block before, which on a GPU may run at the same time).
  struct Barriers {
    explicit Barriers(unsigned warps) : slots(32 * warps), warp_phase(warps), warp_sync(2 * warps) {}
    std::vector<uint64_t> slots;       // [warp][lane]: the warp shuffles' exchange
    unsigned block_phase = 0;
    std::vector<unsigned> warp_phase;  // [warp]
    char block_sync[2] = {};           // barrier phase k synchronises through [k % 2]
    std::vector<char> warp_sync;       // [warp][2]
  };
  std::unique_ptr<Barriers> bar;
  std::map<std::string, void*> shared_vars;  // this block's __shared__ variables, by site and type
  size_t shared_bytes = 0;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
  ucontext_t scheduler;
  void* scheduler_tsan = nullptr;
  void* scheduler_fake = nullptr;
  const void* main_bottom = nullptr;
  size_t main_size = 0;

  unsigned warp_lanes(unsigned w) const { return std::min(32u, n - 32 * w); }
};

namespace {

void to_scheduler(Block& b, Fiber& f, bool exiting) {
#ifdef EMU_TSAN
  __tsan_switch_to_fiber(b.scheduler_tsan, __tsan_switch_to_fiber_no_sync);
#endif
#ifdef EMU_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f.asan_fake, b.main_bottom, b.main_size);
#endif
  swapcontext(&f.context, &b.scheduler);
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(f.asan_fake, nullptr, nullptr);
#endif
  (void)exiting;
}

void fiber_entry() {
  Block& b = *t.block;
  Fiber& f = *b.fibers[t.linear];
  if (!f.quiet) {  // once per fiber: it stays quiet between blocks and launches
    quiet_begin();
    f.quiet = true;
  }
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &b.main_bottom, &b.main_size);
#endif
  tsan_acquire(&g_launch_sync);  // nothing from the blocks before: on a GPU they may run at once
  void (*body)(void*) = b.body;
  void* ctx = b.ctx;
  quiet_end();
  body(ctx);
  quiet_begin();
  tsan_release(&g_done_sync);
  f.state = kDone;
  to_scheduler(b, f, true);
  abort_kernel("a finished emulated thread was resumed");
}

// Waits at the block's barrier or this thread's warp's: releases into this phase's object,
// lets the scheduler run the others, acquires once the barrier has opened.
void wait_at(bool warp_scope) {
  quiet_begin();
  Block& b = *t.block;
  Fiber& f = *b.fibers[t.linear];
  const unsigned w = t.linear / 32;
  Block::Barriers& r = *b.bar;
  char* sync = warp_scope ? &r.warp_sync[2 * w + (r.warp_phase[w] & 1)] : &r.block_sync[r.block_phase & 1];
  tsan_release(sync);
  f.state = warp_scope ? kAtWarpBarrier : kAtBlockBarrier;
  to_scheduler(b, f, false);
  tsan_acquire(sync);
  quiet_end();
}

void switch_in(Block& b, Fiber& f) {
  t = f.where;
#ifdef EMU_TSAN
  __tsan_switch_to_fiber(f.tsan, __tsan_switch_to_fiber_no_sync);
#endif
#ifdef EMU_ASAN
  __sanitizer_start_switch_fiber(&b.scheduler_fake, f.stack, kStackBytes);
#endif
  swapcontext(&b.scheduler, &f.context);
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(b.scheduler_fake, nullptr, nullptr);
#endif
}

// Runs every thread of the current block until all have returned; reports a barrier that
// cannot open.
void run_block(Block& b) {
  for (Fiber* f : b.fibers) {
    getcontext(&f->context);
    f->context.uc_stack.ss_sp = f->stack;
    f->context.uc_stack.ss_size = kStackBytes;
    f->context.uc_link = nullptr;
    makecontext(&f->context, fiber_entry, 0);
    f->state = kReady;
  }
  const unsigned warps = (b.n + 31) / 32;
  b.bar = std::make_unique<Block::Barriers>(warps);
  for (;;) {
    for (Fiber* f : b.fibers)
      if (f->state == kReady) switch_in(b, *f);
    unsigned done = 0, at_block = 0;
    for (Fiber* f : b.fibers) {
      done += f->state == kDone;
      at_block += f->state == kAtBlockBarrier;
    }
    if (done == b.n) {
      b.bar.reset();
      for (auto& v : b.shared_vars) std::free(v.second);
      b.shared_vars.clear();
      b.shared_bytes = 0;
      return;
    }
    bool opened = false;
    for (unsigned w = 0; w < warps; ++w) {
      unsigned at_warp = 0;
      for (unsigned l = 0; l < b.warp_lanes(w); ++l) at_warp += b.fibers[32 * w + l]->state == kAtWarpBarrier;
      if (at_warp == 0) continue;
      if (at_warp == b.warp_lanes(w)) {
        for (unsigned l = 0; l < b.warp_lanes(w); ++l) b.fibers[32 * w + l]->state = kReady;
        ++b.bar->warp_phase[w];
        opened = true;
      }
    }
    if (opened) continue;
    if (at_block > 0 && at_block + done == b.n) {
      if (done > 0) {
        t = b.fibers[0]->where;
        abort_kernel(("__syncthreads reached by " + std::to_string(at_block) + " threads of the block while " +
                      std::to_string(done) + " had returned (divergent barrier)").c_str());
      }
      for (Fiber* f : b.fibers) f->state = kReady;
      ++b.bar->block_phase;
      continue;
    }
    t = b.fibers[0]->where;
    abort_kernel("deadlock: threads wait at barriers that cannot open (a warp shuffle reached by part of a "
                 "warp, or __syncthreads by part of the block)");
  }
}

}  // namespace

void syncthreads() {
  if (t.block->direct) abort_kernel("__syncthreads in a kernel run without fibers (build.mjs judged it barrier-free)");
  wait_at(false);
}

void* shared_variable(const char* site, const char* type, size_t bytes) {
  quiet_begin();
  Block& b = *t.block;
  const std::string key = std::string(site) + " " + type;
  auto it = b.shared_vars.find(key);
  void* p;
  if (it != b.shared_vars.end()) {
    p = it->second;
  } else {
    // Fresh memory per block, filled with garbage as a GPU's is: all ones, a NaN as float, -1
    // as an integer. A kernel that reads what it never wrote computes with that.
    p = std::malloc(bytes);
    if (p == nullptr) abort_kernel("no memory for a __shared__ variable");
    std::memset(p, 0xff, bytes);
    b.shared_vars.emplace(key, p);
    b.shared_bytes += bytes;
    if (b.shared_bytes > kMaxStaticShared) abort_kernel("over 48 KiB of static __shared__ memory in one block");
  }
  quiet_end();
  return p;
}

uint64_t shfl_xor_bits(unsigned mask, uint64_t bits, int lane_mask, int width) {
  Block& b = *t.block;
  const unsigned w = t.linear / 32, lane = t.linear % 32;
  if (b.direct) abort_kernel("a warp shuffle in a kernel run without fibers (build.mjs judged it barrier-free)");
  if (width != 32) abort_kernel("warp shuffle with a width other than 32 (not emulated)");
  if (b.warp_lanes(w) != 32 || mask != 0xffffffffu)
    abort_kernel("warp shuffle with a full mask in a partial warp, or a partial mask");
  const unsigned src = lane ^ static_cast<unsigned>(lane_mask);
  if (src >= 32) abort_kernel("warp shuffle from a lane outside the warp");
  b.bar->slots[32 * w + lane] = bits;
  wait_at(true);
  const uint64_t out = b.bar->slots[32 * w + src];
  wait_at(true);  // nobody overwrites a slot before every lane has read
  return out;
}

namespace {
// The limits of every GPU since compute capability 3.0 (cudaErrorInvalidConfiguration).
bool launch_ok(dim3 grid, dim3 block, size_t shared_bytes) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  const bool bad = grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 ||
                   block.z == 0 || threads > 1024 || block.z > 64 || grid.x > 2147483647u ||
                   grid.y > 65535 || grid.z > 65535 || shared_bytes > 48 * 1024;
  if (bad) {
    std::fprintf(stderr, "emu: refused launch grid (%u,%u,%u) block (%u,%u,%u) shared %zu\n", grid.x, grid.y,
                 grid.z, block.x, block.y, block.z, shared_bytes);
    last_error = cudaErrorInvalidConfiguration;
    ++g_refused;
  }
  return !bad;
}
// A launch that is to run: valid (else refused, as above) and counted; not run in a dry run.
bool admit(dim3 grid, dim3 block, size_t shared_bytes) {
  if (!launch_ok(grid, block, shared_bytes)) return false;
  ++g_accepted;
  return !g_dry_run;
}
}  // namespace

bool validate_launch(dim3 grid, dim3 block, size_t shared_bytes) { return launch_ok(grid, block, shared_bytes); }

void run_grid(dim3 grid, dim3 block, size_t shared_bytes, void (*body)(void*), void* ctx) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (!admit(grid, block, shared_bytes)) return;
  const ThreadState caller = t;
  tsan_release(&g_launch_sync);
#ifdef EMU_TSAN
  AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
  AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
#endif
  {
    Block b;
    b.n = static_cast<unsigned>(threads);
    b.body = body;
    b.ctx = ctx;
#ifdef EMU_TSAN
    b.scheduler_tsan = __tsan_get_current_fiber();
#endif
    b.fibers.resize(b.n);
    uint64_t serial = 0;
    for (unsigned bz = 0; bz < grid.z; ++bz)
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx, ++serial) {
          for (unsigned z = 0; z < block.z; ++z)
            for (unsigned y = 0; y < block.y; ++y)
              for (unsigned x = 0; x < block.x; ++x) {
                const unsigned linear = x + block.x * (y + block.y * z);
                Fiber* f = fiber(static_cast<unsigned>(serial & 1), linear);
                b.fibers[linear] = f;
                ThreadState& w = f->where;
                w.tid = uint3{x, y, z};
                w.bid = uint3{bx, by, bz};
                w.bdim = block;
                w.gdim = grid;
                w.linear = linear;
                w.block = &b;
              }
          run_block(b);
        }
  }
  t = caller;
#ifdef EMU_TSAN
  AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
  AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
#endif
  tsan_acquire(&g_done_sync);
}

void run_grid_direct(dim3 grid, dim3 block, size_t shared_bytes, void (*body)(void*), void* ctx) {
  if (!admit(grid, block, shared_bytes)) return;
  const ThreadState caller = t;
  tsan_release(&g_launch_sync);
  Block b;
  b.n = block.x * block.y * block.z;
  b.direct = true;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        for (unsigned z = 0; z < block.z; ++z)
          for (unsigned y = 0; y < block.y; ++y)
            for (unsigned x = 0; x < block.x; ++x) {
              t.tid = uint3{x, y, z};
              t.bid = uint3{bx, by, bz};
              t.bdim = block;
              t.gdim = grid;
              t.linear = x + block.x * (y + block.y * z);
              t.block = &b;
              body(ctx);
            }
        for (auto& v : b.shared_vars) std::free(v.second);
        b.shared_vars.clear();
        b.shared_bytes = 0;
      }
  t = caller;
  tsan_acquire(&g_done_sync);
}

void set_dry_run(bool on) { g_dry_run = on; }
uint64_t launches_accepted() { return g_accepted; }
uint64_t launches_refused() { return g_refused; }

}  // namespace emu

#ifndef EMU_DEVICE  // the emulated device has the whole runtime (device/runtime.cc)
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
  if (emu::g_dry_run) return cudaSuccess;
  std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  (void)kind;
  if (emu::g_dry_run) return cudaSuccess;
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
#endif
