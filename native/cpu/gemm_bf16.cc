// The bfloat16 matrix product behind bf16.cc (linear) and conv_bf16.cc (conv2d): a packed,
// register-blocked outer-product GEMM on vdpbf16ps.
//
// C [M, N] (+)= A [M, K] @ B, with A contiguous along K and B either [N, K] (contiguous along K,
// "nt") or [K, N] (contiguous along N, "nn"). vdpbf16ps adds a[2p] b[2p] + a[2p+1] b[2p+1] into
// each of 16 float lanes, so the kernel walks K in pairs: B is packed, one block of kKC pairs by
// up to kPanels panels of kNR = 48 columns at a time, into [pair][48 columns] of 32-bit words
// (b[2p, j] low half, b[2p+1, j] high half; columns past N and the missing half of an odd K's
// last pair are zero); A is read in place, one 32-bit broadcast of (a[i, 2p], a[i, 2p+1]) per
// row and pair (an odd K's last pair broadcasts a[i, K-1] alone, so nothing past the row is read).
// The micro-kernel keeps kMR = 8 rows x 48 columns of float32 sums in 24 zmm registers and does
// 24 vdpbf16ps (768 multiply-adds) per pair for 3 loads and 8 broadcasts. A B panel (kKC x 48
// words, 24 KB) stays in L1 while the rows of an M chunk (kMC rows) stream past it.
//
// Threads split the (M chunk, B panel) grid in contiguous ranges: few rows split by columns,
// many rows by chunks.
#include "gemm_bf16.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "../core/parallel.h"
#include "bf16.h"
#include "isa.h"
#include "scratch.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ALEXNET_HAVE_X86 1
// GCC 12's AVX-512 headers fill the unused "merge" operand of unmasked intrinsics with
// _mm512_undefined_*(), which its uninitialised-use analysis then reports at every inline site.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define ALEXNET_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#else
#define ALEXNET_HAVE_X86 0
#endif

namespace alexnet::cpu {

#if ALEXNET_HAVE_X86

namespace {

constexpr int kMR = 8;           // rows of C per micro-kernel call
constexpr int kNR = 48;          // columns of C per micro-kernel call (3 zmm)
constexpr int64_t kKC = 128;     // pairs of k per packed block
constexpr int64_t kMC = 256;     // rows of A per chunk
constexpr int64_t kPanels = 8;   // B panels packed together (kNR * kPanels columns)

inline uint32_t load_pair(const uint16_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}


// C rows [MR, 48 columns, nr valid] (+)= A rows [MR, 2 kp (- 1 when odd)] @ packed panel.
// load_c: add to C's values, else overwrite them.
template <int MR>
ALEXNET_BF16_TARGET void micro_kernel(const uint16_t* a, int64_t lda,  // [MR, 2 kp], row stride lda
                                      const uint32_t* bp,                // [kp, 48]
                                      int64_t kp, bool odd, float* c, int64_t ldc, int nr, bool load_c) {
  __m512 acc[MR][3];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = acc[i][2] = _mm512_setzero_ps();
  const int64_t full = kp - (odd ? 1 : 0);
  for (int64_t p = 0; p < full; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + p * kNR);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + p * kNR + 16);
    const __m512bh b2 = (__m512bh)_mm512_loadu_si512(bp + p * kNR + 32);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(load_pair(a + i * lda + 2 * p)));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
      acc[i][2] = _mm512_dpbf16_ps(acc[i][2], av, b2);
    }
  }
  if (odd) {
    const int64_t p = kp - 1;
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + p * kNR);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + p * kNR + 16);
    const __m512bh b2 = (__m512bh)_mm512_loadu_si512(bp + p * kNR + 32);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[i * lda + 2 * p]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
      acc[i][2] = _mm512_dpbf16_ps(acc[i][2], av, b2);
    }
  }
  const __mmask16 m[3] = {first_lanes16(nr), first_lanes16(nr - 16), first_lanes16(nr - 32)};
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 3
    for (int v = 0; v < 3; ++v) {
      float* dst = c + i * ldc + 16 * v;
      __m512 r = acc[i][v];
      if (load_c) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m[v], dst));
      _mm512_mask_storeu_ps(dst, m[v], r);
    }
  }
}

using KernelFn = void (*)(const uint16_t*, int64_t, const uint32_t*, int64_t, bool, float*, int64_t, int, bool);
template <int... Rs>
constexpr std::array<KernelFn, kMR> kernels(std::integer_sequence<int, Rs...>) {
  return {&micro_kernel<Rs + 1>...};
}
const std::array<KernelFn, kMR> kKernels = kernels(std::make_integer_sequence<int, kMR>{});

// r[i] (16 rows of 16 32-bit words) transposed in place: afterwards r[j] holds word j of every
// row. Unpacks within 128-bit lanes, then two rounds of 128-bit lane shuffles.
ALEXNET_BF16_TARGET inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[4g + c], lane L: rows 4g..4g+3 of column 4L + c
  for (int g = 0; g < 4; ++g) {
    u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i s0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44);
    const __m512i s1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
    const __m512i s2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44);
    const __m512i s3 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_i32x4(s0, s2, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(s0, s2, 0xDD);
    r[8 + c] = _mm512_shuffle_i32x4(s1, s3, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(s1, s3, 0xDD);
  }
}

// out [kp, 48] = B's columns [j0, j0 + nv) and pairs [p0, p0 + kp), B [N, K] (row stride ldb):
// column j's pair p is the 32-bit word at b + j*ldb + 2p, so 16 columns x 16 pairs are 16 loads
// along K and a 16 x 16 transpose. The loads are masked to the elements below K (an odd K's last
// pair gets a zero high half) and columns past nv are zero.
template <int NR = kNR>
ALEXNET_BF16_TARGET void pack_nt(uint32_t* out, const uint16_t* b, int64_t ldb, int64_t K, int64_t j0, int nv,
                                 int64_t p0, int64_t kp) {
  for (int v = 0; v < NR / 16; ++v) {
    const int cols = std::clamp(nv - 16 * v, 0, 16);
    for (int64_t q0 = 0; q0 < kp; q0 += 16) {
      const int64_t k = 2 * (p0 + q0);
      const int64_t left = std::min<int64_t>(32, K - k);
      const __mmask32 m = left >= 32 ? __mmask32(0xFFFFFFFFu) : static_cast<__mmask32>((uint64_t{1} << left) - 1);
      __m512i r[16];
      for (int j = 0; j < 16; ++j)
        r[j] = j < cols ? _mm512_maskz_loadu_epi16(m, b + (j0 + 16 * v + j) * ldb + k) : _mm512_setzero_si512();
      transpose16(r);
      const int64_t nq = std::min<int64_t>(16, kp - q0);
      for (int64_t q = 0; q < nq; ++q) _mm512_storeu_si512(out + (q0 + q) * NR + 16 * v, r[q]);
    }
  }
}

// The same panel from B [K, N] (row stride ldb): rows 2p and 2p+1 of 16 columns, widened and
// interleaved into 32-bit words.
template <int NR = kNR>
ALEXNET_BF16_TARGET void pack_nn(uint32_t* out, const uint16_t* b, int64_t ldb, int64_t K, int64_t j0, int nv,
                                 int64_t p0, int64_t kp) {
  for (int64_t p = 0; p < kp; ++p) {
    const int64_t k = 2 * (p0 + p);
    const uint16_t* r0 = b + k * ldb + j0;
    const bool has_r1 = k + 1 < K;
    for (int v = 0; v < NR / 16; ++v) {
      const __mmask16 m = first_lanes16(nv - 16 * v);
      const __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r0 + 16 * v));
      __m512i w = lo;
      if (has_r1) {
        const __m512i hi = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r0 + ldb + 16 * v));
        w = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
      }
      _mm512_storeu_si512(out + p * NR + 16 * v, w);
    }
  }
}

// A thread's share [lo, hi) of the (row chunk, panel) grid, walked in groups of at most `group`
// panels of one chunk (the panels packed together): fn(chunk, first panel, past the last).
template <class Fn>
void for_panel_groups(int64_t lo, int64_t hi, int64_t panels, int64_t group, Fn&& fn) {
  for (int64_t t = lo; t < hi;) {
    const int64_t chunk = t / panels, pan0 = t % panels;
    const int64_t pan1 = std::min({panels, pan0 + group, pan0 + (hi - t)});
    t += pan1 - pan0;
    fn(chunk, pan0, pan1);
  }
}

// ---- AMX ----------------------------------------------------------------------------------
// The same product on the tile unit. A tile holds 16 rows of 64 bytes; TDPBF16PS adds to a
// 16 x 16 float32 tile C the products of a 16 x 32 bfloat16 tile of A (16 rows, 16 pairs of k)
// and a 16 x 16 tile of B's 32-bit pair words (16 pairs of k, 16 columns): the packed panel
// layout above, 32 columns wide here. The micro-kernel keeps C [32 rows, 32 columns] in four
// tiles and per 16 pairs of k loads two tiles of A (in place: rows of A are contiguous along k)
// and two of the packed panel: 4 x 8192 multiply-adds per 4 tile loads.
//
// Edges: a row group of fewer than 32 rows, or the block of k that ends inside a tile (K not a
// multiple of 32 there), reads A from a zero-padded copy (Scratch::Bf16AmxEdge), since a tile
// load reads whole rows of 64 bytes; the packed panel's rows past the block's pairs are zero;
// C tiles past M or N go through a buffer. Sums: float32, each pair's two exact products added
// in turn, denormal inputs and outputs flushed to zero, as vdpbf16ps does; only the order of
// the additions across k differs from the AVX-512 kernel's.
#define ALEXNET_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))

constexpr int kAmxMR = static_cast<int>(kAmxMinRows);  // rows of C per micro-kernel call (2 tiles)
constexpr int kAmxNR = 32;           // columns of C per call (2 tiles)
constexpr int64_t kAmxKC = 256;      // pairs of k per packed block (a multiple of 16)
constexpr int64_t kAmxMC = 512;      // rows of A per chunk
constexpr int64_t kAmxPanels = 6;    // panels packed together (their [kAmxKC][32] words: 192 KB)

struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static_assert(sizeof(TileConfig) == 64, "LDTILECFG reads 64 bytes");

// Tiles 0-3: C (rows 0-15 x columns 0-15, 0-15 x 16-31, 16-31 x 0-15, 16-31 x 16-31);
// 4, 5: A's two row halves; 6, 7: B's two column halves. Every tile is 16 rows of 64 bytes.
// A constant in memory: GCC 12 does not see LDTILECFG read its operand, and drops the stores
// that fill a configuration built on the stack (the tiles then stay unconfigured: SIGILL).
alignas(64) const TileConfig kTileConfig = {1, 0, {}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

ALEXNET_AMX_TARGET void amx_configure() { _tile_loadconfig(&kTileConfig); }

// C [32, 32] (+)= A [32, 32 kq] @ panel [16 kq pairs][32 words]; lda, ldc in elements.
ALEXNET_AMX_TARGET void amx_kernel(const uint16_t* a, int64_t lda,  // [32, 32 kq]
                                   const uint32_t* bp,               // [16 kq, 32]
                                   int64_t kq, float* c, int64_t ldc, bool load_c) {
  const int64_t sa = lda * 2, sc = ldc * 4;
  if (load_c) {
    _tile_loadd(0, c, sc);
    _tile_loadd(1, c + 16, sc);
    _tile_loadd(2, c + 16 * ldc, sc);
    _tile_loadd(3, c + 16 * ldc + 16, sc);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t q = 0; q < kq; ++q) {
    _tile_loadd(4, a + 32 * q, sa);
    _tile_loadd(5, a + 16 * lda + 32 * q, sa);
    _tile_loadd(6, bp + q * 16 * kAmxNR, kAmxNR * 4);
    _tile_loadd(7, bp + q * 16 * kAmxNR + 16, kAmxNR * 4);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, sc);
  _tile_stored(1, c + 16, sc);
  _tile_stored(2, c + 16 * ldc, sc);
  _tile_stored(3, c + 16 * ldc + 16, sc);
}

ALEXNET_AMX_TARGET void amx_release() { _tile_release(); }

void gemm_amx(float* c, int64_t ldc, const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, bool b_nk,
              int64_t M, int64_t N, int64_t K, bool accumulate) {
  const int64_t pairs = (K + 1) / 2;
  const int64_t panels = (N + kAmxNR - 1) / kAmxNR;
  const int64_t chunks = (M + kAmxMC - 1) / kAmxMC;
  const int64_t mc = (((M + chunks - 1) / chunks) + kAmxMR - 1) / kAmxMR * kAmxMR;
  parallel_for(0, chunks * panels, 1, [=](int64_t lo, int64_t hi) {
    uint32_t* packed = reinterpret_cast<uint32_t*>(scratch(Scratch::Bf16Packed, kAmxPanels * kAmxKC * kAmxNR));
    uint16_t* edge = reinterpret_cast<uint16_t*>(scratch(Scratch::Bf16AmxEdge, kAmxMR * kAmxKC));  // [32][2 kAmxKC]
    alignas(64) float cbuf[kAmxMR * kAmxNR];
    amx_configure();
    for_panel_groups(lo, hi, panels, kAmxPanels, [&](int64_t chunk, int64_t pan0, int64_t pan1) {
      const int64_t m0 = chunk * mc, m1 = std::min(M, m0 + mc);
      for (int64_t p0 = 0; p0 < pairs; p0 += kAmxKC) {
        const int64_t kp = std::min(kAmxKC, pairs - p0);
        const int64_t kq = (kp + 15) / 16;  // tiles of 16 pairs; the last may end past kp
        const int64_t k0 = 2 * p0, kvalid = std::min(K - k0, 2 * kp);  // A's columns in this block
        const bool whole_k = k0 + 32 * kq <= K;  // every tile of A lies inside the rows
        for (int64_t pan = pan0; pan < pan1; ++pan) {
          const int nv = static_cast<int>(std::min<int64_t>(kAmxNR, N - pan * kAmxNR));
          uint32_t* dst = packed + (pan - pan0) * kAmxKC * kAmxNR;
          if (b_nk) pack_nt<kAmxNR>(dst, b, ldb, K, pan * kAmxNR, nv, p0, kp);
          else pack_nn<kAmxNR>(dst, b, ldb, K, pan * kAmxNR, nv, p0, kp);
          std::fill(dst + kp * kAmxNR, dst + 16 * kq * kAmxNR, 0u);
        }
        const bool load_c = accumulate || p0 > 0;
        for (int64_t r = m0; r < m1; r += kAmxMR) {
          const int mr = static_cast<int>(std::min<int64_t>(kAmxMR, m1 - r));
          const uint16_t* ap = a + r * lda + k0;
          int64_t la = lda;
          if (mr < kAmxMR || !whole_k) {  // the zero-padded copy [32][32 kq]
            la = 32 * kq;
            for (int i = 0; i < kAmxMR; ++i) {
              uint16_t* row = edge + i * la;
              const int64_t n = i < mr ? kvalid : 0;
              if (n > 0) std::memcpy(row, ap + i * lda, static_cast<size_t>(n) * sizeof(uint16_t));
              std::fill(row + n, row + la, uint16_t{0});
            }
            ap = edge;
          }
          for (int64_t pan = pan0; pan < pan1; ++pan) {
            const int nv = static_cast<int>(std::min<int64_t>(kAmxNR, N - pan * kAmxNR));
            const uint32_t* bp = packed + (pan - pan0) * kAmxKC * kAmxNR;
            float* cp = c + r * ldc + pan * kAmxNR;
            if (mr == kAmxMR && nv == kAmxNR) {
              amx_kernel(ap, la, bp, kq, cp, ldc, load_c);
              continue;
            }
            for (int i = 0; i < kAmxMR; ++i)
              for (int j = 0; j < kAmxNR; ++j) cbuf[i * kAmxNR + j] = load_c && i < mr && j < nv ? cp[i * ldc + j] : 0.f;
            amx_kernel(ap, la, bp, kq, cbuf, kAmxNR, true);
            for (int i = 0; i < mr; ++i) std::memcpy(cp + i * ldc, cbuf + i * kAmxNR, static_cast<size_t>(nv) * sizeof(float));
          }
        }
      }
    });
    amx_release();
  });
}

}  // namespace

void gemm_bf16_packed(float* c, int64_t ldc, const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb,
                      bool b_nk, int64_t M, int64_t N, int64_t K, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t r = 0; r < M; ++r) std::fill(c + r * ldc, c + r * ldc + N, 0.f);
    return;
  }
  if (M >= kAmxMinRows && bf16_amx()) {
    note_use(KernelUse::Bf16Amx);
    return gemm_amx(c, ldc, a, lda, b, ldb, b_nk, M, N, K, accumulate);
  }
  const int64_t pairs = (K + 1) / 2;
  const bool odd = (K & 1) != 0;
  const int64_t panels = (N + kNR - 1) / kNR;
  // chunks of at most kMC rows, even in size (a multiple of kMR), so that threads splitting them
  // get equal work
  const int64_t chunks = (M + kMC - 1) / kMC;
  const int64_t mc = (((M + chunks - 1) / chunks) + kMR - 1) / kMR * kMR;
  // about 2 * kMC * kKC * kNR multiply-adds per (chunk, panel) pair of a full block
  parallel_for(0, chunks * panels, 1, [=](int64_t lo, int64_t hi) {
    uint32_t* packed = reinterpret_cast<uint32_t*>(scratch(Scratch::Bf16Packed, kPanels * kKC * kNR));
    for_panel_groups(lo, hi, panels, kPanels, [&](int64_t chunk, int64_t pan0, int64_t pan1) {
      const int64_t m0 = chunk * mc, m1 = std::min(M, m0 + mc);
      for (int64_t p0 = 0; p0 < pairs; p0 += kKC) {
        const int64_t kp = std::min(kKC, pairs - p0);
        const bool last_odd = odd && p0 + kp == pairs;
        for (int64_t pan = pan0; pan < pan1; ++pan) {
          const int nv = static_cast<int>(std::min<int64_t>(kNR, N - pan * kNR));
          uint32_t* dst = packed + (pan - pan0) * kKC * kNR;
          if (b_nk) pack_nt(dst, b, ldb, K, pan * kNR, nv, p0, kp);
          else pack_nn(dst, b, ldb, K, pan * kNR, nv, p0, kp);
        }
        const bool load_c = accumulate || p0 > 0;
        for (int64_t pan = pan0; pan < pan1; ++pan) {
          const int nv = static_cast<int>(std::min<int64_t>(kNR, N - pan * kNR));
          const uint32_t* bp = packed + (pan - pan0) * kKC * kNR;
          for (int64_t r = m0; r < m1; r += kMR) {
            const int mr = static_cast<int>(std::min<int64_t>(kMR, m1 - r));
            kKernels[mr - 1](a + r * lda + 2 * p0, lda, bp, kp, last_odd, c + r * ldc + pan * kNR, ldc, nv, load_c);
          }
        }
      }
    });
  });
}

#else

void gemm_bf16_packed(float*, int64_t, const uint16_t*, int64_t, const uint16_t*, int64_t, bool, int64_t,
                      int64_t, int64_t, bool) {}

#endif  // ALEXNET_HAVE_X86

}  // namespace alexnet::cpu
