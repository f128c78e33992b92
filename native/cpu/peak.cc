#include "peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

#include "../core/error.h"
#include "../core/parallel.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define ALEXNET_PEAK_X86 1
#else
#define ALEXNET_PEAK_X86 0
#endif

namespace alexnet::cpu {

namespace {

using Clock = std::chrono::steady_clock;

// Multiply-adds between two looks at the clock: about 10 microseconds of work, so the clock
// costs nothing and a thread overshoots the deadline by little.
constexpr int64_t kChunk = 2048;

// K independent chains r[k] = r[k] * a + b. A chain waits for its previous step (4 cycles for an
// FMA on current x86 cores, about 6-8 for a multiply then an add) and a core starts two per
// cycle, so at least 8-16 chains must be in flight; K is as many as the register file holds
// beside a and b (32 zmm, 16 ymm/xmm). a < 1 and b = 1 - a keep every chain at 1: no overflow,
// no denormals to slow it down.
//
// The empty asm makes each chain opaque at every step: the compiler can neither fold the loop
// nor pack the scalar chains into vectors (the scalar figure must stay scalar). "v" names any
// of the 32 AVX-512 registers, "x" the 16 SSE/AVX ones. The chain loop is unrolled so that
// every chain lives in a register of its own.
#define ALEXNET_PEAK_BODY(CONSTRAINT)                       \
  V r[K];                                                   \
  _Pragma("GCC unroll 32")                                  \
  for (int k = 0; k < K; ++k) r[k] = va * 0.0f + 1.0f;         \
  for (int64_t i = 0; i < iters; ++i) {                     \
    _Pragma("GCC unroll 32")                                \
    for (int k = 0; k < K; ++k) {                           \
      r[k] = r[k] * va + vb;                                \
      asm("" : "+" CONSTRAINT(r[k]));                       \
    }                                                       \
  }                                                         \
  V s = r[0];                                               \
  _Pragma("GCC unroll 32")                                  \
  for (int k = 1; k < K; ++k) s += r[k];                    \
  float lanes[sizeof(V) / sizeof(float)];                   \
  std::memcpy(lanes, &s, sizeof(V));                        \
  float total = 0;                                          \
  for (float l : lanes) total += l;                         \
  return total;

#if ALEXNET_PEAK_X86
// 16 floats, fused (vfmadd on zmm): 24 chains + a + b in 32 registers.
__attribute__((target("avx512f"))) float chains_avx512(float a, float b, int64_t iters) {
  typedef float V __attribute__((vector_size(64)));
  constexpr int K = 24;
  const V va = V{} + a, vb = V{} + b;
  ALEXNET_PEAK_BODY("v")
}
// 8 floats, fused (vfmadd on ymm): 12 chains + a + b in 16 registers.
__attribute__((target("avx2,fma"))) float chains_avx2(float a, float b, int64_t iters) {
  typedef float V __attribute__((vector_size(32)));
  constexpr int K = 12;
  const V va = V{} + a, vb = V{} + b;
  ALEXNET_PEAK_BODY("x")
}
// 4 floats, mulps + addps (the x86-64 baseline has no FMA).
float chains_sse(float a, float b, int64_t iters) {
  typedef float V __attribute__((vector_size(16)));
  constexpr int K = 12;
  const V va = V{} + a, vb = V{} + b;
  ALEXNET_PEAK_BODY("x")
}
#define ALEXNET_PEAK_SCALAR_CONSTRAINT "x"
#else
#define ALEXNET_PEAK_SCALAR_CONSTRAINT "w"
#endif

// 1 float, mulss + addss (or one FMA where the whole build targets it).
float chains_scalar(float a, float b, int64_t iters) {
  typedef float V;
  constexpr int K = 12;
  const V va = a, vb = b;
  ALEXNET_PEAK_BODY(ALEXNET_PEAK_SCALAR_CONSTRAINT)
}

struct Variant {
  const char* name;
  int lanes;
  int chains;
  bool fused;
  float (*run)(float, float, int64_t);
};

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
constexpr bool kBaselineFma = true;
#else
constexpr bool kBaselineFma = false;
#endif

Variant variant(PeakIsa isa) {
  switch (isa) {
#if ALEXNET_PEAK_X86
    case PeakIsa::Avx512: return {"avx512f", 16, 24, true, chains_avx512};
    case PeakIsa::Avx2: return {"avx2+fma", 8, 12, true, chains_avx2};
    case PeakIsa::Sse: return {"sse", 4, 12, kBaselineFma, chains_sse};
#endif
    case PeakIsa::Scalar: return {"scalar", 1, 12, kBaselineFma, chains_scalar};
    default: fail(code::kArgument, "fmaPeak", ": instruction set not supported by this CPU");
  }
}

std::atomic<float> g_sink{0};  // keeps every chain's result alive

}  // namespace

std::vector<PeakIsa> peak_isas() {
  std::vector<PeakIsa> out;
#if ALEXNET_PEAK_X86
  if (__builtin_cpu_supports("avx512f")) out.push_back(PeakIsa::Avx512);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out.push_back(PeakIsa::Avx2);
  out.push_back(PeakIsa::Sse);  // x86-64 always has SSE2
#endif
  out.push_back(PeakIsa::Scalar);
  return out;
}

PeakResult fma_peak(PeakIsa isa, double seconds) {
  const std::vector<PeakIsa> isas = peak_isas();
  if (std::find(isas.begin(), isas.end(), isa) == isas.end())
    fail(code::kArgument, "fmaPeak", ": instruction set not supported by this CPU");
  if (!(seconds > 0)) fail(code::kArgument, "fmaPeak", ": seconds must be positive");
  const Variant v = variant(isa);
  volatile float va = 0.999f, vb = 0.001f;  // opaque: the loop cannot be folded at compile time
  const float a = va, b = vb;

  const int threads = num_threads();
  const auto window = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const auto warm = std::max<Clock::duration>(window / 10, std::chrono::milliseconds(5));
  const Clock::time_point t0 = Clock::now();
  const Clock::time_point warm_end = t0 + warm, end = warm_end + window;
  std::atomic<int64_t> chunks{0};
  std::atomic<int64_t> last_end{0};  // the latest thread's finish, in ticks after warm_end
  std::atomic<int> ran{0};
  // One index per pool thread, all running at once until the same deadline; a thread that
  // starts late just counts fewer chunks. A warm-up first: wide units on some cores start at
  // reduced throughput (AVX-512 licences, the upper halves powered down).
  parallel_for(0, threads, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      float sink = 0;
      Clock::time_point now = Clock::now();
      while (now < warm_end) {
        sink += v.run(a, b, kChunk);
        now = Clock::now();
      }
      int64_t mine = 0;
      while (now < end) {
        sink += v.run(a, b, kChunk);
        ++mine;
        now = Clock::now();
      }
      if (mine > 0) ran.fetch_add(1);
      chunks.fetch_add(mine);
      const int64_t ticks = (now - warm_end).count();
      int64_t seen = last_end.load();
      while (ticks > seen && !last_end.compare_exchange_weak(seen, ticks)) {
      }
      g_sink.store(g_sink.load(std::memory_order_relaxed) + sink, std::memory_order_relaxed);
    }
  });
  const double elapsed = std::chrono::duration<double>(Clock::duration(last_end.load())).count();
  const double flop = 2.0 * static_cast<double>(chunks.load()) * kChunk * v.chains * v.lanes;
  PeakResult r;
  r.isa = isa;
  r.name = v.name;
  r.lanes = v.lanes;
  r.fused = v.fused;
  r.threads = std::max(ran.load(), 1);
  r.seconds = elapsed;
  r.gflops = elapsed > 0 ? flop / elapsed / 1e9 : 0;
  return r;
}

}  // namespace alexnet::cpu
