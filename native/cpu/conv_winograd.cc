#include "conv_winograd.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "../core/parallel.h"
#include "conv_direct.h"
#include "gemm.h"
#include "isa.h"
#include "scratch.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 headers fill the unused "merge" operand of the unpack and shuffle intrinsics
// with _mm512_undefined_ps(), which its uninitialised-use analysis then reports at every inline
// site (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define ALEXNET_WINOGRAD_OWN 1
#else
#define ALEXNET_WINOGRAD_OWN 0
#endif

namespace alexnet::cpu {

namespace {

// Tiles per vector: one tile per lane of the transforms (a multiple of every vector width).
constexpr int64_t kLanes = 16;
constexpr int kMaxA = 8;  // input tile edge: m + r - 1

// Budget for the transformed input V [A*A][C][tb] and the products M [A*A][O][tb] together, in
// floats (16 MB by default): the number of tiles per block tb is what fits, a multiple of
// kLanes, and at least 64 (narrower GEMMs lose more than the cache saves).
#ifndef ALEXNET_WINOGRAD_BUDGET_MB
#define ALEXNET_WINOGRAD_BUDGET_MB 64
#endif
constexpr int64_t kBudget = (int64_t{ALEXNET_WINOGRAD_BUDGET_MB} << 20) / 4;

// The matrices of F(m x m, r x r) by the Toom-Cook construction from a - 1 finite interpolation
// points plus the point at infinity (a = m + r - 1):
//   A^T[i][j] = p_j^i,  G[j][k] = p_j^k / prod_{l != j} (p_j - p_l),
//   B^T[j] = the coefficients of prod_{l != j} (x - p_l) (ascending powers),
// and for infinity A^T's last column e_{m-1}, G's last row e_{r-1}, B^T's last row the
// coefficients of prod_l (x - p_l). Winograd's rounding error grows with the size of the points
// (their powers enter A^T, their differences G), so the points are the smallest, best conditioned
// ones: F(4x4,3x3) (6x6 tiles) uses 0, 1, -1, 1/2, -2 (Barabasz et al., "Error analysis and
// improving the accuracy of Winograd convolution for deep neural networks", 2020: about half
// the float32 error of Lavin's 0, +-1, +-2 in our own trial at C = 384), F(4x4,5x5) (8x8 tiles)
// uses 0, +-1, +-1/2, +-2. Measured on random data, the worst error of either is 2-3x the direct
// kernel's (see test/conv-winograd.test.ts).
struct Transform {
  int m, r, a;
  float AT[kMaxA * kMaxA];   // [m][a]
  float BT[kMaxA * kMaxA];   // [a][a]
  float G[kMaxA * kMaxA];    // [a][r]
  float A[kMaxA * kMaxA];    // [a][m]: A^T transposed (the weight gradient's adjoint output transform)
  float GT[kMaxA * kMaxA];   // [r][a]: G transposed (its adjoint filter transform)
};

Transform make_transform(int m, int r, const double* pts) {
  Transform t{};
  t.m = m;
  t.r = r;
  t.a = m + r - 1;
  const int a = t.a, np = a - 1;
  for (int j = 0; j < np; ++j) {
    double pw = 1;
    for (int i = 0; i < m; ++i, pw *= pts[j]) t.AT[i * a + j] = static_cast<float>(pw);
    double den = 1;
    for (int l = 0; l < np; ++l)
      if (l != j) den *= pts[j] - pts[l];
    pw = 1;
    for (int k = 0; k < r; ++k, pw *= pts[j]) t.G[j * r + k] = static_cast<float>(pw / den);
  }
  t.AT[(m - 1) * a + a - 1] = 1.f;
  t.G[(a - 1) * r + r - 1] = 1.f;
  // Polynomial products, coefficients in ascending powers.
  auto poly = [&](int skip, double* c) {
    for (int i = 0; i < a; ++i) c[i] = 0;
    c[0] = 1;
    int deg = 0;
    for (int l = 0; l < np; ++l) {
      if (l == skip) continue;
      for (int i = deg + 1; i > 0; --i) c[i] = c[i - 1] - pts[l] * c[i];
      c[0] = -pts[l] * c[0];
      ++deg;
    }
  };
  double c[kMaxA];
  for (int j = 0; j < a; ++j) {
    poly(j < np ? j : -1, c);
    for (int i = 0; i < a; ++i) t.BT[j * a + i] = static_cast<float>(c[i]);
  }
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < a; ++j) t.A[j * m + i] = t.AT[i * a + j];
  for (int j = 0; j < a; ++j)
    for (int k = 0; k < r; ++k) t.GT[k * a + j] = t.G[j * r + k];
  return t;
}

const Transform& transform_for(int64_t k) {
  static const double p43[] = {0, 1, -1, 0.5, -2};
  static const double p45[] = {0, 1, -1, 0.5, -0.5, 2, -2};
  static const Transform f43 = make_transform(4, 3, p43);
  static const Transform f45 = make_transform(4, 5, p45);
  return k == 3 ? f43 : f45;
}

// out[i][j] = sum_{p,q} L[i][p] in[p][q] L[j][q] for kLanes tiles at once: L is [LO][LI], in
// [LI][LI][kLanes], out [LO][LO][kLanes] (B^T d B with L = B^T, A^T m A with L = A^T, G g G^T
// with L = G). Sizes are compile-time so the loops unroll into vector multiply-adds; zero
// coefficients are skipped.
template <int LO, int LI>
__attribute__((always_inline)) inline void sandwich_body(float* __restrict out,
                                                         const float* __restrict in,
                                                         const float* __restrict L) {
  float tmp[LO * LI * kLanes];  // [LO][LI][lanes] = L @ in
  for (int i = 0; i < LO; ++i)
    for (int q = 0; q < LI; ++q) {
      float t[kLanes] = {};
      for (int p = 0; p < LI; ++p) {
        const float c = L[i * LI + p];
        if (c == 0.f) continue;
        const float* src = in + (p * LI + q) * kLanes;
        for (int v = 0; v < kLanes; ++v) t[v] += c * src[v];
      }
      std::memcpy(tmp + (i * LI + q) * kLanes, t, sizeof t);
    }
  for (int i = 0; i < LO; ++i)
    for (int j = 0; j < LO; ++j) {
      float o[kLanes] = {};
      for (int q = 0; q < LI; ++q) {
        const float c = L[j * LI + q];
        if (c == 0.f) continue;
        const float* src = tmp + (i * LI + q) * kLanes;
        for (int v = 0; v < kLanes; ++v) o[v] += c * src[v];
      }
      std::memcpy(out + (i * LO + j) * kLanes, o, sizeof o);
    }
}

// The builds per instruction set (simd.h), picked on each call by simd_level().
#if ALEXNET_SIMD_X86
template <int LO, int LI>
ALEXNET_TARGET_AVX512 void sandwich_avx512(float* out, const float* in, const float* L) {
  sandwich_body<LO, LI>(out, in, L);
}
template <int LO, int LI>
ALEXNET_TARGET_AVX2 void sandwich_avx2(float* out, const float* in, const float* L) {
  sandwich_body<LO, LI>(out, in, L);
}
#endif
template <int LO, int LI>
void sandwich_base(float* out, const float* in, const float* L) {
  sandwich_body<LO, LI>(out, in, L);
}

template <int LO, int LI>
void sandwich_fixed(float* out, const float* in, const float* L) {
#if ALEXNET_SIMD_X86
  switch (simd_level()) {
    case SimdLevel::Avx512: note_use(KernelUse::SimdAvx512); return sandwich_avx512<LO, LI>(out, in, L);
    case SimdLevel::Avx2: note_use(KernelUse::SimdAvx2); return sandwich_avx2<LO, LI>(out, in, L);
    default: break;
  }
#endif
  note_use(KernelUse::SimdBase);
  sandwich_base<LO, LI>(out, in, L);
}

// B^T d B, A^T m A, G g G^T of both transforms, and the weight gradient's adjoints A dY A^T
// (L = A) and G^T dU G (L = G^T).
void sandwich(float* out, const float* in, const float* L, int lo, int li) {
  if (lo == 6 && li == 6) return sandwich_fixed<6, 6>(out, in, L);
  if (lo == 4 && li == 6) return sandwich_fixed<4, 6>(out, in, L);
  if (lo == 6 && li == 3) return sandwich_fixed<6, 3>(out, in, L);
  if (lo == 8 && li == 8) return sandwich_fixed<8, 8>(out, in, L);
  if (lo == 4 && li == 8) return sandwich_fixed<4, 8>(out, in, L);
  if (lo == 6 && li == 4) return sandwich_fixed<6, 4>(out, in, L);
  if (lo == 8 && li == 4) return sandwich_fixed<8, 4>(out, in, L);
  if (lo == 3 && li == 6) return sandwich_fixed<3, 6>(out, in, L);
  if (lo == 5 && li == 8) return sandwich_fixed<5, 8>(out, in, L);
  return sandwich_fixed<8, 5>(out, in, L);
}

// Output channels per block of the blocked filters (the own products kernel's rows).
constexpr int64_t kRows = 16;

// U[k][p][q] = (G g G^T)[k] with g = w[p][q] ([out][in][r][r]), or with `flip` the filters of the
// backward data pass: g[a][b] = w[q][p][r-1-a][r-1-b] (w transposed in its first two axes and
// rotated by 180 degrees), out = w's C and in = w's O. kLanes filters q at once, one per lane.
// With `blocked`, the layout of the own products kernel instead: U[p / 16][k][q][p % 16], the
// output channels padded with zero filters to whole blocks of kRows, so that one block's filters
// for all a*a positions are one contiguous stream.
void transform_filters(float* U,        // [a*a][out][in], or blocked [out/16][a*a][in][16]
                       const float* w,  // [O, C, r, r]
                       int64_t O, int64_t C, const Transform& t, bool flip, bool blocked = false) {
  const int a = t.a, aa = a * a, r = t.r, rr = r * r;
  const int64_t out = flip ? C : O, in = flip ? O : C;
  const int64_t plane = out * in, chunks = (in + kLanes - 1) / kLanes;
  if (blocked && out % kRows != 0) {
    const int64_t padded = (out + kRows - 1) / kRows * kRows;
    std::memset(U, 0, static_cast<size_t>(aa * padded * in) * sizeof(float));
  }
  parallel_for(0, out * chunks, 8, [&](int64_t lo, int64_t hi) {
    float g[kMaxA * kMaxA * kLanes], u[kMaxA * kMaxA * kLanes];
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t p = task / chunks, q0 = task % chunks * kLanes;
      const int64_t lanes = std::min<int64_t>(kLanes, in - q0);
      for (int64_t l = 0; l < kLanes; ++l) {
        if (l >= lanes) {
          for (int i = 0; i < rr; ++i) g[i * kLanes + l] = 0.f;
          continue;
        }
        const int64_t q = q0 + l;
        if (flip) {
          const float* src = w + (q * C + p) * rr;
          for (int i = 0; i < rr; ++i) g[i * kLanes + l] = src[rr - 1 - i];
        } else {
          const float* src = w + (p * C + q) * rr;
          for (int i = 0; i < rr; ++i) g[i * kLanes + l] = src[i];
        }
      }
      sandwich(u, g, t.G, a, r);
      if (blocked) {
        float* dst = U + (p / kRows * aa * in + q0) * kRows + p % kRows;
        for (int k = 0; k < aa; ++k)
          for (int64_t l = 0; l < lanes; ++l) dst[(k * in + l) * kRows] = u[k * kLanes + l];
        continue;
      }
      float* dst = U + p * in + q0;
      for (int k = 0; k < aa; ++k)
        std::memcpy(dst + k * plane, u + k * kLanes, static_cast<size_t>(lanes) * sizeof(float));
    }
  });
}

// A stride-1 convolution of x [N, Ci, H, W] (zero padding pH, pW) with transformed filters U
// [a*a][Co][Ci], into y [N, Co, Ho, Wo] with bias and ReLU.
struct Geometry {
  int64_t N, Ci, H, W, Co, Ho, Wo, pH, pW;
};

struct TileInfo {
  int64_t x, y;      // offsets of the tile's image in x and of its first output in y
  int64_t ih0, iw0;  // the input window's corner (may be negative: padding)
  int rows, cols;    // outputs inside y (m unless at the bottom / right edge)
  bool inside;       // the whole a x a window lies inside x
};

// Where each tile t0 + j (j < nt) starts in x (relative to its image's channel 0) and in y, and
// whether its input window lies inside x (no bounds checks then).
void tile_info(TileInfo* info, int64_t t0, int64_t nt, const Geometry& g, const Transform& t) {
  const int64_t m = t.m, a = t.a;
  const int64_t tH = (g.Ho + m - 1) / m, tW = (g.Wo + m - 1) / m, per_image = tH * tW;
  for (int64_t j = 0; j < nt; ++j) {
    const int64_t tile = t0 + j;
    const int64_t n = tile / per_image, th = tile % per_image / tW, tw = tile % tW;
    const int64_t ih0 = th * m - g.pH, iw0 = tw * m - g.pW;
    info[j] = TileInfo{n * g.Ci * g.H * g.W, n * g.Co * g.Ho * g.Wo + th * m * g.Wo + tw * m,
                       ih0, iw0, static_cast<int>(std::min<int64_t>(m, g.Ho - th * m)),
                       static_cast<int>(std::min<int64_t>(m, g.Wo - tw * m)),
                       ih0 >= 0 && iw0 >= 0 && ih0 + a <= g.H && iw0 + a <= g.W};
  }
}

#if ALEXNET_WINOGRAD_OWN
// A 16 x 16 transpose in registers: r[i][j] <- r[j][i].
__attribute__((target("avx512f"), always_inline)) inline void transpose16(__m512* r) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0x88);
      t[8 * i + j + 4] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
  }
}

// d[i*a + j][l] = the a x a input window of tile info[l] in channel c (0 outside x, and in the
// lanes from `lanes` on): each window row is one masked load into a tile-major buffer, then
// 16 x 16 transposes turn it lane-major (the scalar gather, one value at a time with bounds
// checks, took an eighth of conv3's time at batch 1).
__attribute__((target("avx512f,avx512vl"))) void gather_tiles_avx512(float* d,  // [a*a][kLanes]
                                                                     const float* x,
                                                                     const TileInfo* info,
                                                                     int64_t lanes, int64_t c,
                                                                     const Geometry& g, int a) {
  alignas(64) float tmp[kLanes][kMaxA * kMaxA] = {};  // [lane][i*a + j]
  const __m256 zero8 = _mm256_setzero_ps();
  for (int64_t l = 0; l < lanes; ++l) {
    const TileInfo& ti = info[l];
    const float* plane = x + ti.x + c * g.H * g.W;
    const int64_t jlo = std::max<int64_t>(0, -ti.iw0), jhi = std::min<int64_t>(a, g.W - ti.iw0);
    const __mmask8 m = jhi > jlo ? static_cast<__mmask8>((1u << (jhi - jlo)) - 1) : 0;
    float* row = tmp[l];
    for (int i = 0; i < a; ++i) {
      _mm256_storeu_ps(row + i * a, zero8);  // (spills into the next row, written after it)
      const int64_t ih = ti.ih0 + i;
      if (ih < 0 || ih >= g.H || m == 0) continue;
      _mm256_mask_storeu_ps(row + i * a + jlo, m,
                            _mm256_maskz_loadu_ps(m, plane + ih * g.W + ti.iw0 + jlo));
    }
  }
  for (int q = 0; q * 16 < a * a; ++q) {
    __m512 r[16];
    for (int l = 0; l < 16; ++l) r[l] = _mm512_load_ps(tmp[l] + 16 * q);
    transpose16(r);
    const int n = std::min(16, a * a - 16 * q);
    for (int e = 0; e < n; ++e) _mm512_storeu_ps(d + (16 * q + e) * kLanes, r[e]);
  }
}
#endif

// The own products kernel (run_small) has an AVX-512 and an AVX2 build; which one runs follows
// simd_level() (the CPU's best, or AVX2 under the cap, isa.h).
bool own_products_available() {
#if ALEXNET_WINOGRAD_OWN
  return simd_avx2();
#else
  return false;
#endif
}

// V[k][c][j] = (B^T d B)[k] for the nt tiles `info` (0 in the lanes past nt, up to ld):
// one task per (channel, group of kLanes tiles).
void input_transform(float* V,        // [a*a][Ci][ld]
                     const float* x,  // [N, Ci, H, W]
                     const TileInfo* info, int64_t nt, int64_t ld, const Geometry& g,
                     const Transform& t) {
  const int a = t.a, aa = a * a;
  const int64_t chunks = (nt + kLanes - 1) / kLanes;
  [[maybe_unused]] const bool vector_gather = ALEXNET_WINOGRAD_OWN && simd_avx512();
  if (vector_gather) note_use(KernelUse::WinogradGatherAvx512);
  parallel_for(0, g.Ci * chunks, 4, [&](int64_t lo, int64_t hi) {
    float d[kMaxA * kMaxA * kLanes], v[kMaxA * kMaxA * kLanes];
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t c = task / chunks, ch = task % chunks;
      const int64_t lanes = std::min<int64_t>(kLanes, nt - ch * kLanes);
#if ALEXNET_WINOGRAD_OWN
      if (vector_gather) {
        gather_tiles_avx512(d, x, info + ch * kLanes, lanes, c, g, a);
        sandwich(v, d, t.BT, a, a);
        for (int k = 0; k < aa; ++k)
          std::memcpy(V + (k * g.Ci + c) * ld + ch * kLanes, v + k * kLanes, kLanes * sizeof(float));
        continue;
      }
#endif
      for (int64_t l = lanes; l < kLanes; ++l)
        for (int i = 0; i < aa; ++i) d[i * kLanes + l] = 0.f;
      for (int64_t l = 0; l < lanes; ++l) {
        const TileInfo& ti = info[ch * kLanes + l];
        const float* plane = x + ti.x + c * g.H * g.W;
        if (ti.inside) {
          const float* src = plane + ti.ih0 * g.W + ti.iw0;
          for (int i = 0; i < a; ++i)
            for (int j = 0; j < a; ++j) d[(i * a + j) * kLanes + l] = src[i * g.W + j];
        } else {
          for (int i = 0; i < a; ++i) {
            const int64_t ih = ti.ih0 + i;
            for (int j = 0; j < a; ++j) {
              const int64_t iw = ti.iw0 + j;
              d[(i * a + j) * kLanes + l] =
                  ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? plane[ih * g.W + iw] : 0.f;
            }
          }
        }
      }
      sandwich(v, d, t.BT, a, a);
      for (int k = 0; k < aa; ++k)
        std::memcpy(V + (k * g.Ci + c) * ld + ch * kLanes, v + k * kLanes, kLanes * sizeof(float));
    }
  });
}

// The output transform of kLanes tiles (group ch) of channel co, from their products
// mm[k][lane], with bias and ReLU, into the valid outputs of y.
inline void output_tiles(float* y, const float* mm, const TileInfo* info, int64_t nt, int64_t ch,
                         int64_t co, float b, const Geometry& g, const Transform& t, bool relu) {
  float o[kMaxA * kMaxA * kLanes];
  const int m = t.m;
  sandwich(o, mm, t.AT, m, t.a);
  const int64_t lanes = std::min<int64_t>(kLanes, nt - ch * kLanes);
  for (int64_t l = 0; l < lanes; ++l) {
    const TileInfo& ti = info[ch * kLanes + l];
    float* dst = y + ti.y + co * g.Ho * g.Wo;
    if (ti.rows == 4 && ti.cols == 4 && m == 4) {  // a whole tile: fixed trip counts unroll
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
          const float val = o[(i * 4 + j) * kLanes + l] + b;
          dst[i * g.Wo + j] = relu ? (val <= 0.f ? 0.f : val) : val;
        }
      continue;
    }
    for (int i = 0; i < ti.rows; ++i)
      for (int j = 0; j < ti.cols; ++j) {
        const float val = o[(i * m + j) * kLanes + l] + b;
        // "v <= 0 ? 0 : v" keeps NaN, as PyTorch's ReLU does
        dst[i * g.Wo + j] = relu ? (val <= 0.f ? 0.f : val) : val;
      }
  }
}

void run(float* y, const float* x, const float* U, const float* bias, const Geometry& g,
         const Transform& t, bool relu) {
  const int m = t.m, aa = t.a * t.a;
  const int64_t tH = (g.Ho + m - 1) / m, tW = (g.Wo + m - 1) / m;
  const int64_t per_image = tH * tW, T = g.N * per_image;
  // Tiles per block: what fits the budget, a multiple of kLanes, at least 64, at most all.
  int64_t tb = kBudget / (aa * (g.Ci + g.Co));
  tb = std::max<int64_t>(tb / kLanes * kLanes, 64);
  tb = std::min(tb, (T + kLanes - 1) / kLanes * kLanes);
  float* V = scratch(Scratch::WinogradInput, aa * g.Ci * tb);
  float* M = scratch(Scratch::WinogradProducts, aa * g.Co * tb);
  std::vector<TileInfo> info(static_cast<size_t>(tb));

  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t nt = std::min(tb, T - t0);
    const int64_t chunks = (nt + kLanes - 1) / kLanes;
    const int64_t ld = chunks * kLanes;  // row length of V_k and M_k
    tile_info(info.data(), t0, nt, g, t);
    input_transform(V, x, info.data(), nt, ld, g, t);

    // The a*a products, each M_k [Co, nt] = U_k [Co, Ci] @ V_k [Ci, nt].
    for (int k = 0; k < aa; ++k)
      sgemm(false, false, g.Co, nt, g.Ci, 1.f, U + k * g.Co * g.Ci, g.Ci, V + k * g.Ci * ld, ld,
            0.f, M + k * g.Co * ld, ld);

    // Output transform, bias, ReLU and the valid outputs: one task per (channel, group of tiles).
    parallel_for(0, g.Co * chunks, 4, [&](int64_t lo, int64_t hi) {
      float mm[kMaxA * kMaxA * kLanes];
      for (int64_t task = lo; task < hi; ++task) {
        const int64_t co = task / chunks, ch = task % chunks;
        for (int k = 0; k < aa; ++k)
          std::memcpy(mm + k * kLanes, M + (k * g.Co + co) * ld + ch * kLanes, kLanes * sizeof(float));
        output_tiles(y, mm, info.data(), nt, ch, co, bias ? bias[co] : 0.f, g, t, relu);
      }
    });
  }
}

// The weight gradient. With U = G g G^T and each output tile Y = A^T (U .* V) A, the gradient
// with respect to U_k[o][c] is sum over tiles of dM_k[o][tile] V_k[c][tile], where dM = A dY A^T
// (the adjoint of the output transform; dY is 0 outside [Ho, Wo]), and dw[o][c] = G^T dU G (the
// adjoint of the filter transform). The products dU_k [O, C] = dM_k [O, tiles] @ V_k^T are a*a
// sgemm calls with the tiles as their inner dimension, accumulated over the blocks of tiles.
void run_weight_grad(float* dw,        // [O, C, r, r]
                     const float* dy,  // [N, O, Ho, Wo]
                     const float* x,   // [N, C, H, W]
                     const Geometry& g, const Transform& t, bool accumulate) {
  const int m = t.m, a = t.a, aa = a * a, r = t.r, rr = r * r;
  const int64_t tH = (g.Ho + m - 1) / m, tW = (g.Wo + m - 1) / m;
  const int64_t T = g.N * tH * tW, O = g.Co, C = g.Ci;
  int64_t tb = kBudget / (aa * (C + O));
  tb = std::max<int64_t>(tb / kLanes * kLanes, 64);
  tb = std::min(tb, (T + kLanes - 1) / kLanes * kLanes);
  float* V = scratch(Scratch::WinogradInput, aa * C * tb);
  float* dM = scratch(Scratch::WinogradProducts, aa * O * tb);
  float* dU = scratch(Scratch::WinogradFilters, aa * O * C);
  std::vector<TileInfo> info(static_cast<size_t>(tb));

  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t nt = std::min(tb, T - t0);
    const int64_t chunks = (nt + kLanes - 1) / kLanes;
    const int64_t ld = chunks * kLanes;
    tile_info(info.data(), t0, nt, g, t);
    input_transform(V, x, info.data(), nt, ld, g, t);
    // dM[k][o][tile] = (A dY A^T)[k]: one task per (output channel, group of tiles).
    parallel_for(0, O * chunks, 4, [&](int64_t lo, int64_t hi) {
      float e[kMaxA * kMaxA * kLanes], dm[kMaxA * kMaxA * kLanes];
      for (int64_t task = lo; task < hi; ++task) {
        const int64_t o = task / chunks, ch = task % chunks;
        const int64_t lanes = std::min<int64_t>(kLanes, nt - ch * kLanes);
        std::memset(e, 0, sizeof(float) * m * m * kLanes);
        for (int64_t l = 0; l < lanes; ++l) {
          const TileInfo& ti = info[ch * kLanes + l];
          const float* src = dy + ti.y + o * g.Ho * g.Wo;
          for (int i = 0; i < ti.rows; ++i)
            for (int j = 0; j < ti.cols; ++j) e[(i * m + j) * kLanes + l] = src[i * g.Wo + j];
        }
        sandwich(dm, e, t.A, a, m);
        for (int k = 0; k < aa; ++k)
          std::memcpy(dM + (k * O + o) * ld + ch * kLanes, dm + k * kLanes, kLanes * sizeof(float));
      }
    });
    // dU_k [O, C] (+)= dM_k [O, nt] @ V_k [C, nt]^T
    const float beta = t0 == 0 ? 0.f : 1.f;
    for (int k = 0; k < aa; ++k)
      sgemm(false, true, O, C, nt, 1.f, dM + k * O * ld, ld, V + k * C * ld, ld, beta,
            dU + k * O * C, C);
  }

  // dw[o][c] (+)= G^T dU[o][c] G: one task per (output channel, group of kLanes input channels).
  const int64_t cchunks = (C + kLanes - 1) / kLanes;
  parallel_for(0, O * cchunks, 8, [&](int64_t lo, int64_t hi) {
    float u[kMaxA * kMaxA * kLanes], gw[kMaxA * kMaxA * kLanes];
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t o = task / cchunks, c0 = task % cchunks * kLanes;
      const int64_t lanes = std::min<int64_t>(kLanes, C - c0);
      for (int k = 0; k < aa; ++k) {
        const float* src = dU + (k * O + o) * C + c0;
        for (int64_t l = 0; l < kLanes; ++l) u[k * kLanes + l] = l < lanes ? src[l] : 0.f;
      }
      sandwich(gw, u, t.GT, r, a);
      for (int64_t l = 0; l < lanes; ++l) {
        float* dst = dw + (o * C + c0 + l) * rr;
        if (accumulate)
          for (int i = 0; i < rr; ++i) dst[i] += gw[i * kLanes + l];
        else
          for (int i = 0; i < rr; ++i) dst[i] = gw[i * kLanes + l];
      }
    }
  });
}

// The own products kernel, for a few images at a time (up to kMaxSmallTiles tiles: the products
// [16 x Ci] @ [Ci x tiles] are then too thin for sgemm, which pays its packing and call
// overheads a*a times per layer). The work is split over blocks of kRows output channels rather
// than tiles or images, so both threads stay busy at batch 1; each block runs all a*a products
// from the blocked filters (one contiguous stream, read once per call) into a thread-local
// [a*a][16][tiles] that stays in L2, then its output transform.
constexpr int64_t kMaxSmallTiles = 4 * kLanes;

#if ALEXNET_WINOGRAD_OWN
// M[r][j*16 + l] = sum_c U[c][r] V[c][j*16 + l] for r < RS, j < NV: RS x NV accumulators in
// registers, per channel NV vector loads of V and RS broadcasts of U feeding RS*NV fused
// multiply-adds.
template <int RS, int NV>
__attribute__((target("avx512f"))) void products_avx512(float* M,        // [RS][ldm]
                                                        int64_t ldm,
                                                        const float* U,  // [C][kRows] (row r0 first)
                                                        const float* V,  // [C][ldv]
                                                        int64_t ldv, int64_t C) {
  __m512 acc[RS][NV];
  for (int r = 0; r < RS; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < C; ++c) {
    __m512 v[NV];
    for (int j = 0; j < NV; ++j) v[j] = _mm512_loadu_ps(V + c * ldv + j * 16);
    const float* u = U + c * kRows;
    for (int r = 0; r < RS; ++r) {
      const __m512 b = _mm512_set1_ps(u[r]);
      for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_fmadd_ps(b, v[j], acc[r][j]);
    }
  }
  for (int r = 0; r < RS; ++r)
    for (int j = 0; j < NV; ++j) _mm512_storeu_ps(M + r * ldm + j * 16, acc[r][j]);
}

// The AVX2 build of products_avx512: 8 tiles per vector, RS x NV accumulators in 16 ymm
// registers (RS * NV + NV + 1 <= 16).
template <int RS, int NV>
__attribute__((target("avx2,fma"))) void products_avx2(float* M,        // [RS][ldm]
                                                       int64_t ldm,
                                                       const float* U,  // [C][kRows] (row r0 first)
                                                       const float* V,  // [C][ldv]
                                                       int64_t ldv, int64_t C) {
  // The unroll pragmas unroll before scalar replacement, so the accumulators live in registers
  // (without them GCC 12 also stored all 12 to the stack on every channel: half the speed).
  __m256 acc[RS][NV];
#pragma GCC unroll 16
  for (int r = 0; r < RS; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[r][j] = _mm256_setzero_ps();
  for (int64_t c = 0; c < C; ++c) {
    __m256 v[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) v[j] = _mm256_loadu_ps(V + c * ldv + j * 8);
    const float* u = U + c * kRows;
#pragma GCC unroll 16
    for (int r = 0; r < RS; ++r) {
      const __m256 b = _mm256_broadcast_ss(u + r);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[r][j] = _mm256_fmadd_ps(b, v[j], acc[r][j]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RS; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) _mm256_storeu_ps(M + r * ldm + j * 8, acc[r][j]);
}

// The outputs of the kLanes tiles `info` (lanes of them real) for channel co from their 4x4
// output transforms o [16][kLanes] (m = 4): bias and ReLU on whole vectors, a transpose so that
// each tile's 16 outputs lie in one vector, then one masked store per output row of the tile
// (the scalar stores, one lane at a time, took a sixth of the layer's time at batch 1).
__attribute__((target("avx512f,avx512vl"))) void store_tiles_avx512(
    float* y, const float* o, const TileInfo* info, int64_t lanes, int64_t co, float b,
    const Geometry& g, bool relu) {
  __m512 r[16];
  const __m512 bv = _mm512_set1_ps(b), zero = _mm512_setzero_ps();
  for (int e = 0; e < 16; ++e) {
    __m512 v = _mm512_add_ps(_mm512_loadu_ps(o + e * kLanes), bv);
    // "v <= 0 ? 0 : v" keeps NaN, as PyTorch's ReLU does
    if (relu) v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ), v, zero);
    r[e] = v;
  }
  transpose16(r);  // r[l][i*4 + j]: tile l's output (i, j)
  alignas(64) float t[16];
  for (int64_t l = 0; l < lanes; ++l) {
    const TileInfo& ti = info[l];
    float* dst = y + ti.y + co * g.Ho * g.Wo;
    const __mmask8 cols = static_cast<__mmask8>((1u << ti.cols) - 1);
    _mm512_store_ps(t, r[l]);
    for (int i = 0; i < ti.rows; ++i) _mm_mask_storeu_ps(dst + i * g.Wo, cols, _mm_load_ps(t + 4 * i));
  }
}

// All kRows rows of one block for `nv` vectors of tiles (1 to 4): row groups that keep 16 or
// 24 accumulators; the AVX2 build, 6 + 6 + 4 rows by pairs of 8-tile vectors (12 or 8
// accumulators, each channel's two loads of V feeding 12 or 8 multiply-adds).
void products_block(float* M, int64_t ldm, const float* U, const float* V, int64_t ldv,
                    int64_t C, int64_t nv, bool avx512) {
  if (!avx512) {
    for (int64_t j = 0; j < 2 * nv; j += 2) {
      products_avx2<6, 2>(M + j * 8, ldm, U, V + j * 8, ldv, C);
      products_avx2<6, 2>(M + 6 * ldm + j * 8, ldm, U + 6, V + j * 8, ldv, C);
      products_avx2<4, 2>(M + 12 * ldm + j * 8, ldm, U + 12, V + j * 8, ldv, C);
    }
    return;
  }
  switch (nv) {
    case 1: return products_avx512<16, 1>(M, ldm, U, V, ldv, C);
    case 2:
      for (int r0 = 0; r0 < kRows; r0 += 8) products_avx512<8, 2>(M + r0 * ldm, ldm, U + r0, V, ldv, C);
      return;
    case 3:
      for (int r0 = 0; r0 < kRows; r0 += 8) products_avx512<8, 3>(M + r0 * ldm, ldm, U + r0, V, ldv, C);
      return;
    default:
      for (int r0 = 0; r0 < kRows; r0 += 4) products_avx512<4, 4>(M + r0 * ldm, ldm, U + r0, V, ldv, C);
  }
}
#endif

// Whether this geometry's products go through the own kernel (run_small) under conv_algo().
bool use_own_products(int64_t N, int64_t Ho, int64_t Wo, int64_t m) {
  const int64_t tiles = N * ((Ho + m - 1) / m) * ((Wo + m - 1) / m);
  return conv_algo() != ConvAlgo::WinogradGemm && own_products_available() &&
         tiles <= kMaxSmallTiles;
}

void run_small(float* y, const float* x, const float* U, const float* bias, const Geometry& g,
               const Transform& t, bool relu) {
#if ALEXNET_WINOGRAD_OWN
  const int m = t.m, aa = t.a * t.a;  // m = 4 for both transforms (store_tiles_avx512)
  const int64_t T = g.N * ((g.Ho + m - 1) / m) * ((g.Wo + m - 1) / m);
  const bool avx512 = simd_avx512();  // else the AVX2 build (own_products_available())
  note_use(avx512 ? KernelUse::WinogradOwnAvx512 : KernelUse::WinogradOwnAvx2);
  const int64_t nv = (T + kLanes - 1) / kLanes, ld = nv * kLanes;
  float* V = scratch(Scratch::WinogradInput, aa * g.Ci * ld);
  TileInfo info[kMaxSmallTiles];
  tile_info(info, 0, T, g, t);
  input_transform(V, x, info, T, ld, g, t);
  // The blocks are handed out one at a time (each thread takes the next when it is done), so a
  // thread that the OS holds back on a shared machine does not hold the other one up.
  const int64_t blocks = (g.Co + kRows - 1) / kRows;
  std::atomic<int64_t> next{0};
  parallel_for(0, std::min<int64_t>(num_threads(), blocks), 1, [&](int64_t, int64_t) {
    float* M = scratch(Scratch::WinogradProducts, aa * kRows * ld);  // this thread's
    float mm[kMaxA * kMaxA * kLanes];
    alignas(64) float o[kMaxA * kMaxA * kLanes];
    for (int64_t ob = next.fetch_add(1); ob < blocks; ob = next.fetch_add(1)) {
      const float* Ub = U + ob * aa * g.Ci * kRows;
      for (int k = 0; k < aa; ++k)
        products_block(M + k * kRows * ld, ld, Ub + k * g.Ci * kRows, V + k * g.Ci * ld, ld, g.Ci, nv, avx512);
      const int64_t rows = std::min<int64_t>(kRows, g.Co - ob * kRows);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t co = ob * kRows + r;
        for (int64_t ch = 0; ch < nv; ++ch) {
          for (int k = 0; k < aa; ++k)
            std::memcpy(mm + k * kLanes, M + (k * kRows + r) * ld + ch * kLanes, kLanes * sizeof(float));
          if (!avx512) {
            output_tiles(y, mm, info, T, ch, co, bias ? bias[co] : 0.f, g, t, relu);
            continue;
          }
          sandwich(o, mm, t.AT, m, t.a);
          store_tiles_avx512(y, o, info + ch * kLanes, std::min<int64_t>(kLanes, T - ch * kLanes), co,
                             bias ? bias[co] : 0.f, g, relu);
        }
      }
    }
  });
#else
  (void)y, (void)x, (void)U, (void)bias, (void)g, (void)t, (void)relu;
#endif
}

}  // namespace

bool conv_winograd_supported(const Conv2dParams& s) {
  return s.groups == 1 && s.sH == 1 && s.sW == 1 && s.dH == 1 && s.dW == 1 && s.kH == s.kW &&
         (s.kH == 3 || s.kH == 5) && s.N > 0 && s.Ho > 0 && s.Wo > 0 && s.C > 0 && s.O > 0;
}

namespace {

// 'auto' takes Winograd for layers with at least 32 input and output channels and enough tiles
// to pay for the filter transform (which reads O*C filters and writes a*a times as many floats
// whatever the batch): 128 tiles for 3x3 kernels (batch >= 8 at AlexNet's 13x13), 32 for 5x5.
// Measured on the 2-core AMD EPYC build machine (AVX-512, OpenBLAS), forward, Winograd's time
// over the direct kernel's in alternating rounds (the machine was shared: load 4-5):
//   batch              1     2     4     8     16    64
//   conv2 (5x5, 27x27) 0.50  0.78  0.66  0.44  0.49  0.52
//   conv3 (3x3, 13x13) 2.01  1.69  1.47  0.57  0.59  0.47
//   conv4              1.70  2.20  1.10  0.84  0.59  0.44
//   conv5              1.98  1.27  1.21  0.88  0.56  0.53
// and the whole backward pass (input gradient by Winograd, weight gradient unchanged) at batch
// 16: 0.78, 0.90, 0.76, 0.70. Fewer channels than 32 were not measured and keep the old paths.
// The products need a fast sgemm: with the portable GEMM (setGemmBackend('portable'), about a
// tenth of OpenBLAS's rate) 'auto' keeps the direct kernel where the CPU has one.
//
// Up to 64 tiles (batch 1-4 at 13x13, batch 1 at 27x27) on AVX-512 the products go through the
// own kernel (run_small), which 'auto' takes for the forward pass whenever the transformed
// filters come from the weight cache (inference: the weights stay). Its time over the direct
// kernel's with the cache (bench/infer-paths.mjs, alternating, the machine loaded: load 11-13;
// bench/results/infer-paths-winograd-small-amd-epyc-2026-12-06.md):
//   batch              1          2     4
//   conv2 (5x5, 27x27) 0.33-0.51  (over Winograd through sgemm, main's path; 98+ tiles beyond)
//   conv3 (3x3, 13x13) 0.61-0.65  0.56  0.25
//   conv4              0.54-0.59  0.63  0.25
//   conv5              0.43-0.63  0.41  0.33
// The kernel's AVX2 build (a CPU without AVX-512, or setCpuIsa('avx2')) against the direct
// kernel's AVX2 build, the same way (ALEXNET_CPU_ISA=avx2 bench/infer-paths.mjs --batch 1
// --settings auto+cache,direct+cache, load 1.2): conv2 0.41, conv3 0.54, conv4 0.57, conv5 0.57,
// so 'auto' takes it there too (an earlier build that kept its accumulators on the stack was
// already at 0.66-0.91).
// Without the cache, and for the input gradient (whose weights change every training step), the
// filter transform (a*a/(k*k) times the weights' size, written on every call) was not measured
// at these sizes and the old rule stands.
//
// The weight gradient (run_weight_grad) follows the same rule: its time over the direct
// kernel's weight gradient (bench/wgrad-paths.mjs, alternating, the machine shared: load 7-8
// on the 2 cores, so single entries are noisy; bench/results/wgrad-paths-amd-epyc-2026-12-06.md):
//   batch              1     2     4     8     16    64
//   conv2 (5x5, 27x27) 0.72  1.23  0.57  0.30  0.42  0.74
//   conv3 (3x3, 13x13) 4.53  1.27  0.17  0.63  0.61  0.66
//   conv4              2.52  1.91  0.50  0.78  0.58  0.48
//   conv5              11.7  1.18  0.82  0.72  0.63  0.46
// (128 tiles, batch 8 at 13x13, is where the 3x3 layers turn; conv2 at batch 2 was the one
// entry above 1 past its 32 tiles and is left to the rule.)
//
// Except 3x3 layers at up to 32 tiles (batch 1 and 2 at 13x13), which keep the direct kernel.
// The tables above timed each layer alone, repeated, so its filters stayed in cache; in a
// whole inference pass they do not (the pass reads about 230 MB of weights, the fully
// connected ones last), and F(4x4,3x3)'s transformed filters are 36/9 = 4 times the weights'
// bytes (50 MB for conv3-5, against 12 MB packed for the direct kernel): at these batches the
// multiplies Winograd saves take less time than streaming the larger filters from memory.
// Measured on a 2-vCPU Intel Xeon (AVX-512), bench/infer-paths.mjs --cold (each layer timed
// as a pass meets it, the network run layer by layer; bench/results/
// infer-cold-filters-intel-xeon-2026-12-06.md), direct over Winograd for conv3, conv4, conv5:
//   batch 1: 0.79, 0.81, 0.76   batch 2: 0.99, 0.94, 0.91   batch 4: 1.00, 1.05, 0.97
// (conv2's 5x5, 2.56 times the bytes for 6.25 times fewer multiplies: 1.35 at batch 1, so
// Winograd stays), and the whole forward pass at batch 1 under this rule over Winograd for
// every layer (the rule before): 0.93.
constexpr int64_t kColdFilterTiles = 32;

bool auto_picks_winograd(const Conv2dParams& s, bool filters_cached) {
  if (s.C < 32 || s.O < 32) return false;
  const int64_t m = 4;  // output tile edge of both F(4x4,3x3) and F(4x4,5x5)
  const int64_t tiles = s.N * ((s.Ho + m - 1) / m) * ((s.Wo + m - 1) / m);
  if (filters_cached && tiles <= kMaxSmallTiles && own_products_available())
    return !(s.kH == 3 && tiles <= kColdFilterTiles);
  if (gemm_backend() != GemmBackend::Blas && conv_direct_isa() != ConvIsa::None) return false;
  return tiles >= (s.kH == 3 ? 128 : 32);
}

}  // namespace

namespace {
bool selected(const Conv2dParams& s, bool filters_cached) {
  if (!conv_winograd_supported(s)) return false;
  switch (conv_algo()) {
    case ConvAlgo::Winograd:
    case ConvAlgo::WinogradGemm: return true;
    case ConvAlgo::Auto: return auto_picks_winograd(s, filters_cached);
    default: return false;
  }
}
}  // namespace

bool conv_winograd_forward_selected(const Conv2dParams& s, bool filters_cached) {
  return selected(s, filters_cached);
}

bool conv_winograd_backward_data_selected(const Conv2dParams& s) {
  return s.pH <= s.kH - 1 && s.pW <= s.kW - 1 && selected(s, false);
}

bool conv_winograd_weight_grad_selected(const Conv2dParams& s) {
  return selected(s, false);
}

void conv2d_forward_winograd(float* y, const float* x, const float* w, const float* bias,
                             const Conv2dParams& s, bool relu, const Tensor* wt) {
  const Transform& t = transform_for(s.kH);
  const Geometry g{s.N, s.C, s.H, s.W, s.O, s.Ho, s.Wo, s.pH, s.pW};
  if (use_own_products(s.N, s.Ho, s.Wo, t.m)) {
    const int64_t padded = (s.O + kRows - 1) / kRows * kRows;
    const float* U = derived_or_scratch(
        wt, {kWinogradForwardBlocked, t.m, s.O, s.C, s.kH, kRows}, t.a * t.a * padded * s.C,
        Scratch::WinogradFilters, [&](float* d) { transform_filters(d, w, s.O, s.C, t, false, true); });
    return run_small(y, x, U, bias, g, t, relu);
  }
  const float* U = derived_or_scratch(wt, {kWinogradForward, t.m, s.O, s.C, s.kH, s.kW},
                                      t.a * t.a * s.O * s.C, Scratch::WinogradFilters,
                                      [&](float* d) { transform_filters(d, w, s.O, s.C, t, false); });
  run(y, x, U, bias, g, t, relu);
}

void conv2d_backward_data_winograd(float* dx, const float* dy, const float* w,
                                   const Conv2dParams& s, const Tensor* wt) {
  const Transform& t = transform_for(s.kH);
  const Geometry g{s.N, s.O, s.Ho, s.Wo, s.C, s.H, s.W, s.kH - 1 - s.pH, s.kW - 1 - s.pW};
  if (use_own_products(s.N, s.H, s.W, t.m)) {
    const int64_t padded = (s.C + kRows - 1) / kRows * kRows;
    const float* U = derived_or_scratch(
        wt, {kWinogradBackwardBlocked, t.m, s.O, s.C, s.kH, kRows}, t.a * t.a * padded * s.O,
        Scratch::WinogradFilters, [&](float* d) { transform_filters(d, w, s.O, s.C, t, true, true); });
    return run_small(dx, dy, U, nullptr, g, t, false);
  }
  const float* U = derived_or_scratch(wt, {kWinogradBackward, t.m, s.O, s.C, s.kH, s.kW},
                                      t.a * t.a * s.O * s.C, Scratch::WinogradFilters,
                                      [&](float* d) { transform_filters(d, w, s.O, s.C, t, true); });
  run(dx, dy, U, nullptr, g, t, false);
}

void conv2d_weight_grad_winograd(float* dw, const float* dy, const float* x, const Conv2dParams& s,
                                 bool accumulate) {
  const Transform& t = transform_for(s.kH);
  const Geometry g{s.N, s.C, s.H, s.W, s.O, s.Ho, s.Wo, s.pH, s.pW};
  run_weight_grad(dw, dy, x, g, t, accumulate);
}

}  // namespace alexnet::cpu
