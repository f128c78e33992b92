#include "bf16.h"

#include <algorithm>
#include <array>
#include <utility>
#include <atomic>
#include <cstring>

#include "../core/bf16.h"
#include "../core/error.h"
#include "../core/parallel.h"
#include "gemm.h"
#include "gemm_bf16.h"
#include "linear.h"
#include "isa.h"
#include "scratch.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#define ALEXNET_HAVE_X86 1
// GCC 12's AVX-512 headers fill the unused "merge" operand of unmasked intrinsics with
// _mm512_undefined_*(), which its uninitialised-use analysis then reports at every inline site.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define ALEXNET_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))
#else
#define ALEXNET_HAVE_X86 0
#endif

namespace alexnet::cpu {

namespace {

bool detect_bf16() {
#if ALEXNET_HAVE_X86
  // avx512f/bw through the compiler's runtime (which also checks that the OS saves the zmm
  // state); AVX512_BF16 is CPUID leaf 7, sub-leaf 1, EAX bit 5.
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return false;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return (a & (1u << 5)) != 0;
#else
  return false;
#endif
}

const bool g_hardware = detect_bf16();
std::atomic<Bf16Kernel> g_kernel{g_hardware ? Bf16Kernel::Avx512Bf16 : Bf16Kernel::Portable};

// AMX-BF16 and AMX-TILE (CPUID leaf 7, EDX bits 22 and 24), the OS saving the tile state
// (XCR0 bits 17 and 18), and Linux's per-process grant of the tile data (without it the first
// tile instruction faults). The grant is asked once, here, before any thread runs a tile.
bool detect_amx() {
#if ALEXNET_HAVE_X86 && defined(__linux__)
  if (!g_hardware) return false;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || (c & (1u << 27)) == 0) return false;  // OSXSAVE
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if ((d & (1u << 22)) == 0 || (d & (1u << 24)) == 0) return false;
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & (3u << 17)) != (3u << 17)) return false;
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

const bool g_amx_hardware = detect_amx();
std::atomic<bool> g_amx{g_amx_hardware};

// The AVX-512 BF16 kernels may run: the CPU has them and the process is not capped below
// AVX-512 (isa.h).
bool hardware_usable() {
  const bool ok = g_hardware && simd_avx512();
  if (ok) note_use(KernelUse::Bf16Avx512);
  return ok;
}

constexpr int64_t kConvertGrain = 1 << 16;

// Below this many rows of A (a fully connected layer's batch), the products run the in-place
// kernels (the dot-product tiles for C = A B^T, row pairs unpacked in registers for C = A B),
// which read B (the weights) where it lies: the packed GEMM's repacking of B, amortised over so
// few rows, costs about what its register blocking gains (measured at 16 and 64 rows).
constexpr int64_t kPackedMinRows = 96;
// With AMX the packed GEMM's tiles take over from kAmxMinRows (32, gemm_bf16.h): there they
// beat the in-place kernels, repacking included: fc6 forward at batch 32 5.5 ms against 14.2,
// at 64 5.8 against 25.2 (bench/bf16.mjs; bench/results/amx-bf16-intel-xeon-2026-12-06.md).
int64_t packed_min_rows() { return bf16_amx() ? kAmxMinRows : kPackedMinRows; }

// ---- portable conversions (the compiler vectorises these loops) ----

ALEXNET_SIMD_BODY void to_bf16_portable_body(uint16_t* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, sizeof u);
    y[i] = bf16::from_bits(u);
  }
}
ALEXNET_SIMD_DISPATCH(to_bf16_portable, (uint16_t * y, const float* x, int64_t n), (y, x, n))

ALEXNET_SIMD_BODY void to_float_loop_body(float* y, const uint16_t* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = static_cast<uint32_t>(x[i]) << 16;
    std::memcpy(y + i, &u, sizeof u);
  }
}
ALEXNET_SIMD_DISPATCH(to_float_loop, (float* y, const uint16_t* x, int64_t n), (y, x, n))

#if ALEXNET_HAVE_X86

// 16 floats -> 16 bfloat16 by the integer rule of core/bf16.h (NaN quiet).
ALEXNET_BF16_TARGET inline __m256i rne16(__m512i u) {
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                                _mm512_set1_epi32(0x7F800000));
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}

// Lanes holding a float32 subnormal (exponent bits 0, mantissa not 0).
ALEXNET_BF16_TARGET inline __mmask16 subnormal_lanes(__m512i u) {
  return _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7F800000)) &
         _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x007FFFFF));
}

// vcvtne2ps2bf16 rounds to nearest even and quiets NaNs like core/bf16.h, but treats subnormal
// inputs as zero (Intel's definition: DAZ, FTZ, no MXCSR). bf16 keeps float32's exponent range,
// so a subnormal float has a nearest bf16 that is not always zero: the (rare) lanes holding
// one are redone with the integer rule.
ALEXNET_BF16_TARGET void to_bf16_avx512(uint16_t* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i < n; i += 32) {
    const int64_t left = n - i;
    const __mmask16 m_lo = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    const __mmask16 m_hi = left >= 32 ? __mmask16(0xFFFF) : left <= 16 ? __mmask16(0) : __mmask16((1u << (left - 16)) - 1);
    const __m512 lo = _mm512_maskz_loadu_ps(m_lo, x + i);
    const __m512 hi = _mm512_maskz_loadu_ps(m_hi, x + i + 16);
    __m512i r = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    const __m512i ulo = _mm512_castps_si512(lo), uhi = _mm512_castps_si512(hi);
    const __mmask32 sub = static_cast<__mmask32>(subnormal_lanes(ulo)) |
                          (static_cast<__mmask32>(subnormal_lanes(uhi)) << 16);
    if (sub != 0) {
      const __m512i fixed = _mm512_inserti64x4(_mm512_castsi256_si512(rne16(ulo)), rne16(uhi), 1);
      r = _mm512_mask_blend_epi16(sub, r, fixed);
    }
    const __mmask32 m = static_cast<__mmask32>(m_lo) | (static_cast<__mmask32>(m_hi) << 16);
    _mm512_mask_storeu_epi16(y + i, m, r);
  }
}

// ---- the vdpbf16ps dot-product tile ----
//
// x and w are both K-contiguous (y = x w^T), so one 512-bit load holds 16 pairs (k, k+1) of a
// row; vdpbf16ps adds x[k] w[k] + x[k+1] w[k+1] into each float lane. A tile keeps MR x NR
// accumulators (at most 16 of the 32 registers) and loads MR + NR vectors per 32 k. The tail
// (K not a multiple of 32) is a masked, zero-filled load. out[i * NR + j] = sum_k x_i[k] w_j[k].
template <int MR, int NR>
ALEXNET_BF16_TARGET void dot_tile(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw,
                                  int64_t K, float* out) {
  __m512 acc[MR][NR];
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    __m512i xv[MR], wv[NR];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_loadu_si512(x + i * ldx + k);
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_loadu_si512(w + j * ldw + k);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j)
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)xv[i], (__m512bh)wv[j]);
  }
  if (k < K) {
    const __mmask32 m = static_cast<__mmask32>((uint64_t{1} << (K - k)) - 1);
    __m512i xv[MR], wv[NR];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_maskz_loadu_epi16(m, x + i * ldx + k);
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_maskz_loadu_epi16(m, w + j * ldw + k);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j)
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)xv[i], (__m512bh)wv[j]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) out[i * NR + j] = _mm512_reduce_add_ps(acc[i][j]);
}

using TileFn = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t, float*);
constexpr int kMR = 4, kNR = 4;

template <int MR, int... NRs>
constexpr std::array<TileFn, kNR> tile_row(std::integer_sequence<int, NRs...>) {
  return {&dot_tile<MR, NRs + 1>...};
}
const std::array<std::array<TileFn, kNR>, kMR> kTiles = {
    tile_row<1>(std::make_integer_sequence<int, kNR>{}), tile_row<2>(std::make_integer_sequence<int, kNR>{}),
    tile_row<3>(std::make_integer_sequence<int, kNR>{}), tile_row<4>(std::make_integer_sequence<int, kNR>{})};

// C [M, N] (float32, ldc) = A [M, K] (lda) B [N, K]^T (ldb), or += with `accumulate`, for the
// rows [m_begin, m_end) and columns [n_begin, n_end) of C. Blocks of kMC rows of A and kOC rows of
// B, kKC long in k, stay in L2 (A's block is reused across every block of B), with 4 x 4 tiles of
// (A rows, B rows) in registers.
void gemm_nt_block(float* c, int64_t ldc, const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb,
                   int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end, int64_t K, bool accumulate) {
  constexpr int64_t kMC = 64, kOC = 64, kKC = 2048;
  float part[kMR * kNR];
  for (int64_t m0 = m_begin; m0 < m_end; m0 += kMC) {
    const int64_t m1 = std::min(m_end, m0 + kMC);
    for (int64_t o0 = n_begin; o0 < n_end; o0 += kOC) {
      const int64_t o1 = std::min(n_end, o0 + kOC);
      if (!accumulate)
        for (int64_t r = m0; r < m1; ++r) std::fill(c + r * ldc + o0, c + r * ldc + o1, 0.f);
      for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const int64_t kc = std::min(kKC, K - k0);
        for (int64_t o = o0; o < o1; o += kNR) {
          const int nr = static_cast<int>(std::min<int64_t>(kNR, o1 - o));
          for (int64_t r = m0; r < m1; r += kMR) {
            const int mr = static_cast<int>(std::min<int64_t>(kMR, m1 - r));
            kTiles[mr - 1][nr - 1](a + r * lda + k0, lda, b + o * ldb + k0, ldb, kc, part);
            for (int i = 0; i < mr; ++i)
              for (int j = 0; j < nr; ++j) c[(r + i) * ldc + o + j] += part[i * nr + j];
          }
        }
      }
    }
  }
}

// y[B, out] (float32, overwritten) = x w^T. Each thread owns a range of w's rows (y's columns);
// within it, blocks of kOC rows and kKC reductions keep a block of w in L2 while every row of
// x streams past it, and 4 x 4 tiles of (x rows, w rows) in registers.
// With `accumulate`, y += x w^T instead.
void linear_avx512(float* y, const uint16_t* x, const uint16_t* w, int64_t B, int64_t in, int64_t out,
                   bool accumulate = false) {
  const int64_t blocks = (out + kNR - 1) / kNR;
  parallel_for(0, blocks, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, B * in / 64 + 1)),
               [=](int64_t lo, int64_t hi) {
    gemm_nt_block(y, out, x, in, w, in, 0, B, lo * kNR, std::min(out, hi * kNR), in, accumulate);
  });
}

// ---- backward's dx = dy w: the reduction runs down w's columns ----
//
// w [O, I] is contiguous along I, not along the reduction o, so the tile pairs two rows of w in
// registers instead of transposing w in memory: unpacklo/hi_epi16 of rows o and o+1 give, in each
// 32-bit lane, (w[o, i], w[o+1, i]), and one 32-bit broadcast of dy[b, o..o+1] (adjacent in
// memory) makes vdpbf16ps add dy[b, o] w[o, i] + dy[b, o+1] w[o+1, i]. The unpacks work within
// 128-bit lanes, so the "lo" accumulator holds columns {0-3, 8-11, 16-19, 24-27} of the 32 and
// "hi" the others; two permutes put them back in order at the end. An odd O pairs the last row
// with zeros. out [MR rows of dx, 32 columns] (fp32, ni <= 32 of them valid) is overwritten, or
// added to when `add`.
template <int MR>
ALEXNET_BF16_TARGET void dx_tile(const uint16_t* dy, int64_t ldy, const uint16_t* w, int64_t ldw, int64_t O,
                                 int ni, float* out, int64_t ldo, bool add) {
  __m512 lo[MR], hi[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
  const __mmask32 m = ni >= 32 ? __mmask32(0xFFFFFFFFu) : static_cast<__mmask32>((1u << ni) - 1);
  int64_t o = 0;
  for (; o + 2 <= O; o += 2) {
    const __m512i r0 = _mm512_maskz_loadu_epi16(m, w + o * ldw);
    const __m512i r1 = _mm512_maskz_loadu_epi16(m, w + (o + 1) * ldw);
    const __m512bh wl = (__m512bh)_mm512_unpacklo_epi16(r0, r1);
    const __m512bh wh = (__m512bh)_mm512_unpackhi_epi16(r0, r1);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      uint32_t pair;
      std::memcpy(&pair, dy + r * ldy + o, sizeof pair);  // dy[b, o] low half, dy[b, o+1] high
      const __m512bh d = (__m512bh)_mm512_set1_epi32(static_cast<int>(pair));
      lo[r] = _mm512_dpbf16_ps(lo[r], d, wl);
      hi[r] = _mm512_dpbf16_ps(hi[r], d, wh);
    }
  }
  if (o < O) {
    const __m512i r0 = _mm512_maskz_loadu_epi16(m, w + o * ldw);
    const __m512i zero = _mm512_setzero_si512();
    const __m512bh wl = (__m512bh)_mm512_unpacklo_epi16(r0, zero);
    const __m512bh wh = (__m512bh)_mm512_unpackhi_epi16(r0, zero);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512bh d = (__m512bh)_mm512_set1_epi32(static_cast<int>(dy[r * ldy + o]));
      lo[r] = _mm512_dpbf16_ps(lo[r], d, wl);
      hi[r] = _mm512_dpbf16_ps(hi[r], d, wh);
    }
  }
  const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i second = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  const __mmask16 m0 = ni >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << ni) - 1);
  const __mmask16 m1 = ni >= 32 ? __mmask16(0xFFFF) : ni <= 16 ? __mmask16(0) : static_cast<__mmask16>((1u << (ni - 16)) - 1);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    __m512 a = _mm512_permutex2var_ps(lo[r], first, hi[r]);
    __m512 b = _mm512_permutex2var_ps(lo[r], second, hi[r]);
    if (add) {
      a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(m0, out + r * ldo));
      b = _mm512_add_ps(b, _mm512_maskz_loadu_ps(m1, out + r * ldo + 16));
    }
    _mm512_mask_storeu_ps(out + r * ldo, m0, a);
    _mm512_mask_storeu_ps(out + r * ldo + 16, m1, b);
  }
}

using DxTileFn = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t, int, float*, int64_t, bool);
constexpr int kDxMR = 8;
template <int... Rs>
constexpr std::array<DxTileFn, kDxMR> dx_tiles(std::integer_sequence<int, Rs...>) {
  return {&dx_tile<Rs + 1>...};
}
const std::array<DxTileFn, kDxMR> kDxTiles = dx_tiles(std::make_integer_sequence<int, kDxMR>{});

// dx [B, I] (float32, overwritten; row stride ldx) = dy [B, O] (ldy) w [O, I] (ldw): threads
// split dx's columns in chunks of 32; the reduction goes in blocks of kOB rows of w, each block
// swept left to right across the thread's columns (rows of w read in order: a column strip of all
// O rows would touch a new page per row), its partial sums added into dx. A block is 64 rows:
// a tile reads 64 bytes of each of its rows, so a block is as many concurrent streams through
// memory, and 256 of them defeated the hardware prefetcher (fc6's gradInput at batch 16 on an
// Intel Xeon: about 20 ms with 256-row blocks, 12 with 64, 14 with 32; batch 1 and 31 no slower;
// linearBackward timed alone, less its weight gradient; the float32 skinny kernel: 12).
void dx_avx512(float* dx, int64_t ldx, const uint16_t* dy, int64_t ldy, const uint16_t* w, int64_t ldw, int64_t B,
               int64_t I, int64_t O) {
  constexpr int64_t kOB = 64;  // even: pairs of rows never straddle two blocks
  const int64_t chunks = (I + 31) / 32;
  parallel_for(0, chunks, 1, [=](int64_t lo, int64_t hi) {
    for (int64_t o0 = 0; o0 < std::max<int64_t>(O, 1); o0 += kOB) {
      const int64_t ob = std::min(kOB, O - o0);
      for (int64_t c = lo; c < hi; ++c) {
        const int64_t i0 = c * 32;
        const int ni = static_cast<int>(std::min<int64_t>(32, I - i0));
        for (int64_t b = 0; b < B; b += kDxMR) {
          const int mr = static_cast<int>(std::min<int64_t>(kDxMR, B - b));
          kDxTiles[mr - 1](dy + b * ldy + o0, ldy, w + o0 * ldw + i0, ldw, ob, ni, dx + b * ldx + i0, ldx,
                           /*add=*/o0 > 0);
        }
      }
    }
  });
}

#endif  // ALEXNET_HAVE_X86

}  // namespace

void gemm_bf16_nt(float* c, int64_t ldc, const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, int64_t M,
                  int64_t N, int64_t K, bool accumulate) {
  if (M <= 0 || N <= 0) return;
#if ALEXNET_HAVE_X86
  if (hardware_usable() && M >= packed_min_rows()) return gemm_bf16_packed(c, ldc, a, lda, b, ldb, true, M, N, K, accumulate);
  if (hardware_usable()) {
    // Many rows (a convolution's output positions): threads split the rows in blocks of 64, each
    // reading all of B; few rows (a fully connected layer's batch): they split B's rows.
    if (M >= 256) {
      parallel_for(0, (M + 63) / 64, 1, [=](int64_t lo, int64_t hi) {
        gemm_nt_block(c, ldc, a, lda, b, ldb, lo * 64, std::min(M, hi * 64), 0, N, K, accumulate);
      });
    } else {
      parallel_for(0, (N + kNR - 1) / kNR, 1, [=](int64_t lo, int64_t hi) {
        gemm_nt_block(c, ldc, a, lda, b, ldb, 0, M, lo * kNR, std::min(N, hi * kNR), K, accumulate);
      });
    }
    return;
  }
#endif
  (void)c, (void)ldc, (void)a, (void)lda, (void)b, (void)ldb, (void)K, (void)accumulate;
  fail(code::kInternal, "gemm_bf16_nt: this CPU has no AVX-512 BF16 instructions");
}

void gemm_bf16_nn(float* c, int64_t ldc, const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, int64_t M,
                  int64_t N, int64_t K) {
  if (M <= 0 || N <= 0) return;
#if ALEXNET_HAVE_X86
  if (hardware_usable()) {
    if (K == 0) {
      for (int64_t r = 0; r < M; ++r) std::fill(c + r * ldc, c + r * ldc + N, 0.f);
      return;
    }
    if (M >= packed_min_rows()) return gemm_bf16_packed(c, ldc, a, lda, b, ldb, false, M, N, K, false);
    return dx_avx512(c, ldc, a, lda, b, ldb, M, N, K);
  }
#endif
  (void)c, (void)ldc, (void)a, (void)lda, (void)b, (void)ldb, (void)K;
  fail(code::kInternal, "gemm_bf16_nn: this CPU has no AVX-512 BF16 instructions");
}

bool bf16_hardware() { return g_hardware; }
Bf16Kernel bf16_kernel() {
  // Under an AVX2 cap the portable path runs whatever was chosen (and 'auto' after the cap
  // is lifted takes the hardware again).
  const Bf16Kernel k = g_kernel.load();
  return k == Bf16Kernel::Avx512Bf16 && !simd_avx512() ? Bf16Kernel::Portable : k;
}
void set_bf16_kernel(Bf16Kernel k, bool strict, bool amx) {
  // every check before anything is stored: a refused choice changes nothing
  if (amx && !g_amx_hardware)
    fail(code::kArgument, "setBf16Kernel: this CPU has no AMX-BF16 (or the system did not grant the process the AMX tile state); 'avx512_bf16' and 'portable' remain");
  if (k == Bf16Kernel::Avx512Bf16 && !g_hardware)
    fail(code::kArgument, "setBf16Kernel: this CPU has no AVX-512 BF16 instructions; only 'portable' is available");
  if (strict && k == Bf16Kernel::Avx512Bf16 && !simd_avx512())
    fail(code::kArgument, "setBf16Kernel: the CPU's instruction sets are capped below AVX-512 (setCpuIsa / ALEXNET_CPU_ISA); only 'portable' is available");
  g_kernel.store(k);
  g_amx.store(amx);
}
const char* bf16_kernel_name(Bf16Kernel k) { return k == Bf16Kernel::Avx512Bf16 ? "avx512_bf16" : "portable"; }

bool bf16_amx_hardware() { return g_amx_hardware; }
bool bf16_amx() { return g_amx.load() && bf16_kernel() == Bf16Kernel::Avx512Bf16; }
const char* bf16_kernel_current_name() {
  return bf16_amx() ? "amx_bf16" : bf16_kernel_name(bf16_kernel());
}

void float_to_bf16(uint16_t* y, const float* x, int64_t n) {
  const bool hw = bf16_kernel() == Bf16Kernel::Avx512Bf16;
  if (hw) note_use(KernelUse::Bf16Avx512);
  parallel_for(0, n, kConvertGrain, [=](int64_t lo, int64_t hi) {
#if ALEXNET_HAVE_X86
    if (hw) return to_bf16_avx512(y + lo, x + lo, hi - lo);
#endif
    (void)hw;
    to_bf16_portable(y + lo, x + lo, hi - lo);
  });
}

void bf16_to_float(float* y, const uint16_t* x, int64_t n) {
  // A shift, on both paths (vcvtpbh2ps is the same shift).
  parallel_for(0, n, kConvertGrain, [=](int64_t lo, int64_t hi) { to_float_loop(y + lo, x + lo, hi - lo); });
}

void linear_forward_bf16(float* y_f32, uint16_t* y_bf16, const uint16_t* x, const uint16_t* w,
                         const float* bias, int64_t B, int64_t in, int64_t out) {
  if (B <= 0 || out <= 0) return;
  float* y = y_f32 != nullptr ? y_f32 : scratch(Scratch::Bf16Output, B * out);
#if ALEXNET_HAVE_X86
  if (bf16_kernel() == Bf16Kernel::Avx512Bf16) {
    note_use(KernelUse::Bf16Avx512);
    if (B < packed_min_rows()) linear_avx512(y, x, w, B, in, out);
    else gemm_bf16_packed(y, out, x, in, w, in, true, B, out, in, false);
    if (bias != nullptr) {
      parallel_for(0, B, std::max<int64_t>(1, (1 << 14) / out), [=](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b)
          for (int64_t j = 0; j < out; ++j) y[b * out + j] += bias[j];
      });
    }
  } else
#endif
  {
    // Portable: the inputs widened to float32 (exact), then the float32 layer.
    float* xf = scratch(Scratch::Bf16Input, B * in);
    float* wf = scratch(Scratch::Bf16Weights, out * in);
    bf16_to_float(xf, x, B * in);
    bf16_to_float(wf, w, out * in);
    linear_forward(y, xf, wf, bias, B, in, out);
  }
  if (y_bf16 != nullptr) float_to_bf16(y_bf16, y, B * out);
}

void linear_backward_bf16(uint16_t* dx, float* dw, float* db, const uint16_t* dy, const uint16_t* x,
                          const uint16_t* w, int64_t B, int64_t in, int64_t out, bool accumulate) {
  // dw and db: the reductions run over the batch, short next to the weights, so the two small
  // operands (dy, x) are widened to float32 (exact) and sgemm sums them, on both kernels.
  float* dyf = scratch(Scratch::Bf16Output, B * out);
  float* xf = scratch(Scratch::Bf16Input, B * in);
  bf16_to_float(dyf, dy, B * out);
  bf16_to_float(xf, x, B * in);
  linear_backward(nullptr, dw, db, dyf, xf, nullptr, B, in, out, accumulate);
  if (dx == nullptr || B == 0 || in == 0) return;
  // dx [B, in] = dy [B, out] @ w [out, in], rounded once to bfloat16.
  float* sum = scratch(Scratch::Bf16Weights, B * in + (bf16_kernel() == Bf16Kernel::Avx512Bf16 ? 0 : out * in));
#if ALEXNET_HAVE_X86
  if (bf16_kernel() == Bf16Kernel::Avx512Bf16) {
    if (B < packed_min_rows()) dx_avx512(sum, in, dy, out, w, in, B, in, out);
    else gemm_bf16_packed(sum, in, dy, out, w, in, false, B, in, out, false);
  } else
#endif
  {
    float* wf = sum + B * in;
    bf16_to_float(wf, w, out * in);
    sgemm(false, false, B, in, out, 1.f, dyf, std::max<int64_t>(out, 1), wf, std::max<int64_t>(in, 1), 0.f, sum,
          std::max<int64_t>(in, 1));
  }
  float_to_bf16(dx, sum, B * in);
}

}  // namespace alexnet::cpu
