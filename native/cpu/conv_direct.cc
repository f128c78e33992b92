#include "conv_direct.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "../core/parallel.h"
#include "isa.h"
#include "scratch.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define ALEXNET_DIRECT_CONV 1
#else
#define ALEXNET_DIRECT_CONV 0
#endif

namespace alexnet::cpu {

namespace {

std::atomic<ConvAlgo> g_algo{ConvAlgo::Auto};

#if ALEXNET_DIRECT_CONV
// The two instruction sets the kernel is compiled for. A tile holds two vectors of output
// channels (the block) for each of up to kMaxP output columns, so 2 * kMaxP accumulators plus
// the two weight vectors and a broadcast fit the register file (32 zmm / 16 ymm).
struct Avx512 {
  typedef float V __attribute__((vector_size(64)));
  static constexpr int64_t kBlock = 32;
  static constexpr int kMaxP = 14;
};
struct Avx2 {
  typedef float V __attribute__((vector_size(32)));
  static constexpr int64_t kBlock = 16;
  static constexpr int kMaxP = 6;
};
#endif

// The shape the kernel sees: an input that needs no padding (the caller pads), stride S.
struct Plan {
  int64_t N, C, H, W;  // (padded) input [N, C, H, W]
  int64_t O, kH, kW, S;
  int64_t Ho, Wo;
};

// wp[ob][c][kh][kw][j] = w[ob*kBlock + j][c][kh][kw] (0 past O). With `flip`, the backward-data
// weights instead: wp[cb][o][kh][kw][j] = w[o][cb*kBlock + j][kH-1-kh][kW-1-kw], i.e. the packing
// of w transposed in its first two axes and rotated by 180 degrees.
void pack_weights(float* wp, const float* w, int64_t O, int64_t C, int64_t kH, int64_t kW,
                  int64_t kBlock, bool flip) {
  const int64_t out = flip ? C : O, in = flip ? O : C, KK = kH * kW;
  const int64_t OB = (out + kBlock - 1) / kBlock;
  parallel_for(0, OB * in, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t ob = t / in, c = t % in;
      float* dst = wp + t * KK * kBlock;
      for (int64_t k = 0; k < KK; ++k)
        for (int64_t j = 0; j < kBlock; ++j) {
          const int64_t o = ob * kBlock + j;
          float v = 0.f;
          if (o < out) v = flip ? w[(c * C + o) * KK + (KK - 1 - k)] : w[(o * C + c) * KK + k];
          dst[k * kBlock + j] = v;
        }
    }
  });
}

// xp[n][c] = x[n][c] surrounded by pH rows and pW columns of zeros.
void pad_input(float* xp, const float* x, int64_t N, int64_t C, int64_t H, int64_t W,
               int64_t pH, int64_t pW) {
  const int64_t Hp = H + 2 * pH, Wp = W + 2 * pW;
  parallel_for(0, N * C, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      float* dst = xp + t * Hp * Wp;
      const float* src = x + t * H * W;
      std::memset(dst, 0, static_cast<size_t>(pH * Wp) * sizeof(float));
      for (int64_t h = 0; h < H; ++h) {
        float* row = dst + (pH + h) * Wp;
        std::memset(row, 0, static_cast<size_t>(pW) * sizeof(float));
        std::memcpy(row + pW, src + h * W, static_cast<size_t>(W) * sizeof(float));
        std::memset(row + pW + W, 0, static_cast<size_t>(pW) * sizeof(float));
      }
      std::memset(dst + (pH + H) * Wp, 0, static_cast<size_t>(pH * Wp) * sizeof(float));
    }
  });
}

#if ALEXNET_DIRECT_CONV

// One tile of kBlock output channels x P output columns, over input channels [0, C) of `in`:
// acc [P][kBlock] is initialised from the bias (or 0) when `first`, else continued; when
// `last`, the tile is finished (ReLU if asked) and written to y[j][p] for j < nvalid, p < P.
// Written once with GCC vector types and compiled per instruction set by the wrappers below;
// a * b + c contracts to fused multiply-adds (GCC's default -ffp-contract=fast).
template <class Isa, int P, int S>
__attribute__((always_inline)) inline void tile_body(
    float* y,             // [nvalid][ystride], P columns written
    float* acc,           // [P][kBlock] partial sums (64-byte aligned)
    const float* in,      // [C][plane] starting at the tile's corner
    const float* wp,      // [C][kH][kW][kBlock]
    const float* bias,    // [kBlock] or nullptr
    int64_t C, int64_t kH, int64_t kW, int64_t plane, int64_t rowlen, int64_t ystride,
    int64_t nvalid, bool first, bool last, bool relu) {
  using V = typename Isa::V;
  constexpr int64_t L = Isa::kBlock / 2;  // lanes
  V a[P], b[P];
  if (last)  // the tile's output lines, written after the sums: asked for now, so that their
    for (int64_t j = 0; j < nvalid; ++j) {  // reads for ownership overlap the arithmetic
      __builtin_prefetch(y + j * ystride, 1, 3);
      __builtin_prefetch(y + j * ystride + P - 1, 1, 3);
    }
  for (int p = 0; p < P; ++p) {
    if (first) {
      a[p] = V{};
      b[p] = V{};
      if (bias) {
        std::memcpy(&a[p], bias, sizeof(V));
        std::memcpy(&b[p], bias + L, sizeof(V));
      }
    } else {
      std::memcpy(&a[p], acc + p * 2 * L, sizeof(V));
      std::memcpy(&b[p], acc + p * 2 * L + L, sizeof(V));
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    const float* chan = in + c * plane;
    for (int64_t kh = 0; kh < kH; ++kh) {
      const float* r = chan + kh * rowlen;
      for (int64_t kw = 0; kw < kW; ++kw) {
        V w0, w1;
        std::memcpy(&w0, wp, sizeof(V));
        std::memcpy(&w1, wp + L, sizeof(V));
        wp += 2 * L;
        // Opaque to the optimiser: otherwise, with S == 1, GCC carries the values shared by
        // neighbouring kw steps in spilled scalars instead of re-broadcasting from L1.
        const float* rk = r + kw;
        asm("" : "+r"(rk));
        for (int p = 0; p < P; ++p) {
          const float v = rk[p * S];
          a[p] = w0 * v + a[p];
          b[p] = w1 * v + b[p];
        }
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    if (last && relu) {  // max(x, 0) with NaN kept
      a[p] = a[p] < 0 ? V{} : a[p];
      b[p] = b[p] < 0 ? V{} : b[p];
    }
    std::memcpy(acc + p * 2 * L, &a[p], sizeof(V));
    std::memcpy(acc + p * 2 * L + L, &b[p], sizeof(V));
  }
  if (!last) return;
  for (int64_t j = 0; j < nvalid; ++j) {
    float* dst = y + j * ystride;
    for (int p = 0; p < P; ++p) dst[p] = acc[p * 2 * L + j];
  }
}

#define ALEXNET_TILE_ARGS                                                                  \
  float *y, float *acc, const float *in, const float *wp, const float *bias, int64_t C,    \
      int64_t kH, int64_t kW, int64_t plane, int64_t rowlen, int64_t ystride, int64_t nvalid, \
      bool first, bool last, bool relu
#define ALEXNET_TILE_PASS y, acc, in, wp, bias, C, kH, kW, plane, rowlen, ystride, nvalid, first, last, relu

template <int P, int S>
__attribute__((target("avx512f"))) void tile_avx512(ALEXNET_TILE_ARGS) {
  tile_body<Avx512, P, S>(ALEXNET_TILE_PASS);
}
template <int P, int S>
__attribute__((target("avx2,fma"))) void tile_avx2(ALEXNET_TILE_ARGS) {
  tile_body<Avx2, P, S>(ALEXNET_TILE_PASS);
}

using TileFn = void (*)(ALEXNET_TILE_ARGS);

template <class Isa, int S, int... Ps>
std::array<TileFn, sizeof...(Ps)> tiles_for(std::integer_sequence<int, Ps...>) {
  if constexpr (std::is_same_v<Isa, Avx512>) return {&tile_avx512<Ps + 1, S>...};
  else return {&tile_avx2<Ps + 1, S>...};
}

// The tile for this instruction set, stride S (1, 2 or 4) and P columns.
template <class Isa>
TileFn tile_fn(int64_t S, int P) {
  static const auto s1 = tiles_for<Isa, 1>(std::make_integer_sequence<int, Isa::kMaxP>{});
  static const auto s2 = tiles_for<Isa, 2>(std::make_integer_sequence<int, Isa::kMaxP>{});
  static const auto s4 = tiles_for<Isa, 4>(std::make_integer_sequence<int, Isa::kMaxP>{});
  switch (S) {
    case 1: return s1[P - 1];
    case 2: return s2[P - 1];
    default: return s4[P - 1];
  }
}

// The best instruction set for the kernel: the CPU's, under the process-wide cap (isa.h).
ConvIsa cpu_isa() {
  switch (simd_level()) {
    case SimdLevel::Avx512: return ConvIsa::Avx512;
    case SimdLevel::Avx2: return ConvIsa::Avx2;
    default: return ConvIsa::None;
  }
}

// Packed weights per block of input channels: about this many bytes, so that a block stays in
// the L1 cache while the tiles of a whole band of output rows reuse it.
#ifndef ALEXNET_DIRECT_WEIGHT_BLOCK_BYTES
#define ALEXNET_DIRECT_WEIGHT_BLOCK_BYTES 16384
#endif

// All packed weights up to this size stay in the L2 cache beside one image's input: work then
// goes image by image (every channel block of an image in turn, its input read from memory
// once) instead of block by block over all images (the input read once per block).
#ifndef ALEXNET_DIRECT_IMAGE_OUTER_BYTES
#define ALEXNET_DIRECT_IMAGE_OUTER_BYTES (512 * 1024)
#endif
constexpr int64_t kImageOuterWeightBytes = ALEXNET_DIRECT_IMAGE_OUTER_BYTES;

// Runs the tiles over y [N, O, Ho, Wo]. Work items are (ob, n, band of output rows), in that
// order, so a thread's contiguous range keeps one block of packed weights hot while it walks
// images (or (n, ob, band) when all the weights fit beside an image, above); within an item,
// input channels go in blocks (weights in L1, the next block fetched meanwhile) and the band's
// partial sums wait in a per-thread buffer between blocks.
template <class Isa>
void run(float* y, const float* x, const float* wp, const float* bias_padded, const Plan& p,
         bool relu) {
  constexpr int64_t kBlock = Isa::kBlock;
  constexpr int kMaxP = Isa::kMaxP;
  const int64_t OB = (p.O + kBlock - 1) / kBlock;
  const int64_t KK = p.kH * p.kW;
  const int64_t plane = p.H * p.W, HoWo = p.Ho * p.Wo;
  const int64_t ntiles = (p.Wo + kMaxP - 1) / kMaxP;  // near-equal tiles of <= kMaxP columns
  const int64_t cb = std::clamp<int64_t>(ALEXNET_DIRECT_WEIGHT_BLOCK_BYTES / (KK * kBlock * 4), 1, p.C);
  // Enough bands for every thread to get several items even at batch 1.
  const int64_t want = 4 * num_threads();
  const int64_t bands = std::clamp<int64_t>((want + OB * p.N - 1) / (OB * p.N), 1, p.Ho);
  const int64_t band_rows = (p.Ho + bands - 1) / bands;
  const int64_t items = OB * p.N * bands;
  const bool image_outer = OB * p.C * KK * kBlock * int64_t{sizeof(float)} <= kImageOuterWeightBytes;
  const auto block_of = [&](int64_t t) { return image_outer ? (t / bands) % OB : t / (bands * p.N); };
  parallel_for(0, items, 1, [&](int64_t lo, int64_t hi) {
    float* acc = scratch(Scratch::TileSums, band_rows * ntiles * kMaxP * kBlock + 16);
    acc = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(acc) + 63) & ~uintptr_t{63});
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t band = t % bands;
      const int64_t n = image_outer ? t / (bands * OB) : (t / bands) % p.N;
      const int64_t ob = block_of(t);
      const int64_t oh0 = band * band_rows, oh1 = std::min(p.Ho, oh0 + band_rows);
      const int64_t nvalid = std::min(kBlock, p.O - ob * kBlock);
      const float* b = bias_padded ? bias_padded + ob * kBlock : nullptr;
      for (int64_t c0 = 0; c0 < p.C; c0 += cb) {
        const int64_t nc = std::min(cb, p.C - c0);
        const bool first = c0 == 0, last = c0 + nc == p.C;
        const float* w = wp + (ob * p.C + c0) * KK * kBlock;
        // The next block of packed weights (the next channels', or the next item's first) is
        // fetched into L2 a share per output row, so that in a cold pass (the weights last read
        // a whole network ago) the first tile of each block does not wait on memory.
        const int64_t next_c0 = last ? 0 : c0 + nc;
        const int64_t next_ob = !last ? ob : t + 1 < hi ? block_of(t + 1) : -1;
        const float* next_w = nullptr;
        int64_t next_lines = 0, share = 0;
        if (next_ob >= 0 && oh1 > oh0) {  // (the last band can be empty)
          next_w = wp + (next_ob * p.C + next_c0) * KK * kBlock;
          next_lines = std::min(cb, p.C - next_c0) * KK * kBlock / 16;
          share = (next_lines + (oh1 - oh0) - 1) / (oh1 - oh0);
        }
        float* a = acc;
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          if (next_w != nullptr)
            for (int64_t l = (oh - oh0) * share, e = std::min(next_lines, l + share); l < e; ++l)
              __builtin_prefetch(next_w + l * 16, 0, 2);
          const float* xin = x + (n * p.C + c0) * plane + oh * p.S * p.W;
          float* yrow = y + (n * p.O + ob * kBlock) * HoWo + oh * p.Wo;
          int64_t ow = 0;
          for (int64_t i = 0; i < ntiles; ++i) {
            const int P = static_cast<int>((p.Wo - ow + (ntiles - i) - 1) / (ntiles - i));
            tile_fn<Isa>(p.S, P)(yrow + ow, a, xin + ow * p.S, w, b, nc, p.kH, p.kW, plane, p.W,
                            HoWo, nvalid, first, last, relu);
            ow += P;
            a += kMaxP * kBlock;
          }
        }
      }
    }
  });
}

#endif  // ALEXNET_DIRECT_CONV

}  // namespace

ConvAlgo conv_algo() { return g_algo.load(); }
void set_conv_algo(ConvAlgo a) { g_algo.store(a); }

ConvIsa conv_direct_cpu_isa() {
#if ALEXNET_DIRECT_CONV
  return cpu_isa();
#else
  return ConvIsa::None;
#endif
}

ConvIsa conv_direct_isa() {
  const ConvIsa cpu = conv_direct_cpu_isa();
  switch (conv_algo()) {
    case ConvAlgo::Im2col: return ConvIsa::None;
    case ConvAlgo::DirectAvx2: return cpu == ConvIsa::None ? ConvIsa::None : ConvIsa::Avx2;
    default: return cpu;
  }
}

bool conv_direct_supported(const Conv2dParams& s) {
  return conv_direct_isa() != ConvIsa::None && s.groups == 1 && s.dH == 1 && s.dW == 1 &&
         s.sH == s.sW && (s.sH == 1 || s.sH == 2 || s.sH == 4) && s.Ho > 0 && s.Wo > 0 && s.N > 0;
}

bool conv_direct_backward_data_supported(const Conv2dParams& s) {
  return conv_direct_supported(s) && s.sH == 1 && s.pH <= s.kH - 1 && s.pW <= s.kW - 1;
}

#if ALEXNET_DIRECT_CONV
namespace {

template <class Isa>
void forward(float* y, const float* x, const float* w, const float* bias, const Conv2dParams& s,
             bool relu, const Tensor* wt) {
  constexpr int64_t kBlock = Isa::kBlock;
  const int64_t OB = (s.O + kBlock - 1) / kBlock;
  const float* wp = derived_or_scratch(
      wt, {kDirectForward, kBlock, s.O, s.C, s.kH, s.kW}, OB * kBlock * s.C * s.kH * s.kW,
      Scratch::PackedWeights, [&](float* d) { pack_weights(d, w, s.O, s.C, s.kH, s.kW, kBlock, false); });
  float* bp = nullptr;
  if (bias) {
    bp = scratch(Scratch::PackedBias, OB * kBlock);
    std::fill(bp, bp + OB * kBlock, 0.f);
    std::copy(bias, bias + s.O, bp);
  }
  const float* xin = x;
  const int64_t Hp = s.H + 2 * s.pH, Wp = s.W + 2 * s.pW;
  if (s.pH || s.pW) {
    float* xp = scratch(Scratch::PaddedInput, s.N * s.C * Hp * Wp);
    pad_input(xp, x, s.N, s.C, s.H, s.W, s.pH, s.pW);
    xin = xp;
  }
  run<Isa>(y, xin, wp, bp, Plan{s.N, s.C, Hp, Wp, s.O, s.kH, s.kW, s.sH, s.Ho, s.Wo}, relu);
}

template <class Isa>
void backward_data(float* dx, const float* dy, const float* w, const Conv2dParams& s, const Tensor* wt) {
  constexpr int64_t kBlock = Isa::kBlock;
  const int64_t CB = (s.C + kBlock - 1) / kBlock;
  const float* wp = derived_or_scratch(
      wt, {kDirectBackward, kBlock, s.O, s.C, s.kH, s.kW}, CB * kBlock * s.O * s.kH * s.kW,
      Scratch::PackedWeights, [&](float* d) { pack_weights(d, w, s.O, s.C, s.kH, s.kW, kBlock, true); });
  const int64_t qH = s.kH - 1 - s.pH, qW = s.kW - 1 - s.pW;
  const int64_t Hp = s.Ho + 2 * qH, Wp = s.Wo + 2 * qW;
  const float* dyin = dy;
  if (qH || qW) {
    float* dyp = scratch(Scratch::PaddedInput, s.N * s.O * Hp * Wp);
    pad_input(dyp, dy, s.N, s.O, s.Ho, s.Wo, qH, qW);
    dyin = dyp;
  }
  run<Isa>(dx, dyin, wp, nullptr, Plan{s.N, s.O, Hp, Wp, s.C, s.kH, s.kW, 1, s.H, s.W}, false);
}

// ---- weight gradient (AVX-512) -------------------------------------------------------------
// dW[o][c][kh][kw] = sum_{n, oh, ow} dy[n][o][oh][ow] x[n][c][oh*S + kh][ow*S + kw]. Vectorised
// over 32 output channels, so dy is first transposed per image to dyT[q][o] (q = oh*Wo + ow,
// channels padded to the block). A tile holds R kernel rows x KW columns (2*R*KW <= 22
// accumulators) of one (channel block, input channel) and walks every output position of one
// image: two loads of dyT and R*KW broadcasts of x per position.

constexpr int64_t kWgBlock = Avx512::kBlock;

template <int R, int KW, int S>
__attribute__((target("avx512f"))) void wgrad_tile(
    float* acc,          // [R][KW][32] partial sums, updated
    const float* x,      // [H, W] plane of channel c, at row kh0
    const float* dyT,    // [Ho*Wo][ldo] at the block's first channel
    int64_t W, int64_t Ho, int64_t Wo, int64_t ldo) {
  using V = Avx512::V;
  constexpr int64_t L = kWgBlock / 2;
  V a[R][KW], b[R][KW];
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < KW; ++k) {
      std::memcpy(&a[r][k], acc + (r * KW + k) * kWgBlock, sizeof(V));
      std::memcpy(&b[r][k], acc + (r * KW + k) * kWgBlock + L, sizeof(V));
    }
  for (int64_t oh = 0; oh < Ho; ++oh) {
    const float* xrow = x + oh * S * W;
    const float* d = dyT + oh * Wo * ldo;
    for (int64_t ow = 0; ow < Wo; ++ow) {
      V d0, d1;
      std::memcpy(&d0, d + ow * ldo, sizeof(V));
      std::memcpy(&d1, d + ow * ldo + L, sizeof(V));
      const float* xr = xrow + ow * S;
      asm("" : "+r"(xr));  // see tile_body: keep the broadcasts from memory
      for (int r = 0; r < R; ++r)
        for (int k = 0; k < KW; ++k) {
          const float v = xr[r * W + k];
          a[r][k] = d0 * v + a[r][k];
          b[r][k] = d1 * v + b[r][k];
        }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < KW; ++k) {
      std::memcpy(acc + (r * KW + k) * kWgBlock, &a[r][k], sizeof(V));
      std::memcpy(acc + (r * KW + k) * kWgBlock + L, &b[r][k], sizeof(V));
    }
}

using WgradFn = void (*)(float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t);

// Kernel rows per tile for a kernel width (0: not supported).
constexpr int wgrad_rows(int64_t kW) { return kW == 11 ? 1 : kW == 5 ? 2 : kW == 3 ? 3 : 0; }

template <int KW, int S>
WgradFn wgrad_fn_rows(int R) {
  if constexpr (wgrad_rows(KW) >= 3) if (R == 3) return &wgrad_tile<3, KW, S>;
  if constexpr (wgrad_rows(KW) >= 2) if (R == 2) return &wgrad_tile<2, KW, S>;
  return &wgrad_tile<1, KW, S>;
}

WgradFn wgrad_fn(int64_t kW, int64_t S, int R) {
  if (S == 1) {
    if (kW == 3) return wgrad_fn_rows<3, 1>(R);
    if (kW == 5) return wgrad_fn_rows<5, 1>(R);
    return wgrad_fn_rows<11, 1>(R);
  }
  if (kW == 3) return wgrad_fn_rows<3, 4>(R);
  if (kW == 5) return wgrad_fn_rows<5, 4>(R);
  return wgrad_fn_rows<11, 4>(R);
}

}  // namespace
#endif

void conv2d_forward_direct(float* y, const float* x, const float* w, const float* bias,
                           const Conv2dParams& s, bool relu, const Tensor* wt) {
#if ALEXNET_DIRECT_CONV
  const ConvIsa isa = conv_direct_isa();
  note_use(isa == ConvIsa::Avx512 ? KernelUse::DirectAvx512 : KernelUse::DirectAvx2);
  if (isa == ConvIsa::Avx512) return forward<Avx512>(y, x, w, bias, s, relu, wt);
  if (isa == ConvIsa::Avx2) return forward<Avx2>(y, x, w, bias, s, relu, wt);
#endif
  (void)y, (void)x, (void)w, (void)bias, (void)s, (void)relu, (void)wt;
}

void conv2d_backward_data_direct(float* dx, const float* dy, const float* w, const Conv2dParams& s,
                                 const Tensor* wt) {
#if ALEXNET_DIRECT_CONV
  const ConvIsa isa = conv_direct_isa();
  note_use(isa == ConvIsa::Avx512 ? KernelUse::DirectAvx512 : KernelUse::DirectAvx2);
  if (isa == ConvIsa::Avx512) return backward_data<Avx512>(dx, dy, w, s, wt);
  if (isa == ConvIsa::Avx2) return backward_data<Avx2>(dx, dy, w, s, wt);
#endif
  (void)dx, (void)dy, (void)w, (void)s, (void)wt;
}

bool conv_direct_weight_grad_supported(const Conv2dParams& s) {
  return conv_direct_supported(s) && conv_direct_isa() == ConvIsa::Avx512 && s.kW == s.kH &&
         (s.kW == 3 || s.kW == 5 || s.kW == 11) && (s.sH == 1 || s.sH == 4) && s.N >= num_threads();
}

void conv2d_weight_grad_direct(float* dw, const float* dy, const float* x, const Conv2dParams& s,
                               bool accumulate) {
#if ALEXNET_DIRECT_CONV
  note_use(KernelUse::DirectWgradAvx512);
  const int64_t OB = (s.O + kWgBlock - 1) / kWgBlock, ldo = OB * kWgBlock;
  const int64_t Q = s.Ho * s.Wo, KK = s.kH * s.kW;
  const int64_t Hp = s.H + 2 * s.pH, Wp = s.W + 2 * s.pW;
  const float* xin = x;
  if (s.pH || s.pW) {
    float* xp = scratch(Scratch::PaddedInput, s.N * s.C * Hp * Wp);
    pad_input(xp, x, s.N, s.C, s.H, s.W, s.pH, s.pW);
    xin = xp;
  }
  const int R = wgrad_rows(s.kW);
  const int64_t part = OB * s.C * KK * kWgBlock;  // one thread's sums, [ob][c][kh][kw][32]
  const int threads = std::max(1, std::min<int>(num_threads(), static_cast<int>(s.N)));
  float* sums = scratch(Scratch::Staging, threads * part);
  // Each thread owns a contiguous range of images and its own partial sums.
  parallel_for(0, threads, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* acc = sums + t * part;
      std::fill(acc, acc + part, 0.f);
      float* dyT = scratch(Scratch::TileSums, Q * ldo);
      const int64_t n0 = s.N * t / threads, n1 = s.N * (t + 1) / threads;
      for (int64_t n = n0; n < n1; ++n) {
        const float* g = dy + n * s.O * Q;
        for (int64_t q = 0; q < Q; ++q) {
          float* row = dyT + q * ldo;
          for (int64_t o = 0; o < s.O; ++o) row[o] = g[o * Q + q];
          for (int64_t o = s.O; o < ldo; ++o) row[o] = 0.f;
        }
        for (int64_t ob = 0; ob < OB; ++ob)
          for (int64_t c = 0; c < s.C; ++c) {
            const float* plane = xin + (n * s.C + c) * Hp * Wp;
            for (int64_t kh0 = 0; kh0 < s.kH; kh0 += R) {
              const int rows = static_cast<int>(std::min<int64_t>(R, s.kH - kh0));
              wgrad_fn(s.kW, s.sH, rows)(acc + ((ob * s.C + c) * KK + kh0 * s.kW) * kWgBlock,
                                         plane + kh0 * Wp, dyT + ob * kWgBlock, Wp, s.Ho, s.Wo,
                                         ldo);
            }
          }
      }
    }
  });
  // dW[o][c][k] (+)= sum over threads of sums[t][o / 32][c][k][o % 32]
  parallel_for(0, s.O, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      const int64_t ob = o / kWgBlock, j = o % kWgBlock;
      for (int64_t ck = 0; ck < s.C * KK; ++ck) {
        float v = 0.f;
        for (int t = 0; t < threads; ++t) v += sums[t * part + (ob * s.C * KK + ck) * kWgBlock + j];
        float& out = dw[o * s.C * KK + ck];
        out = accumulate ? out + v : v;
      }
    }
  });
#else
  (void)dw, (void)dy, (void)x, (void)s, (void)accumulate;
#endif
}

}  // namespace alexnet::cpu
