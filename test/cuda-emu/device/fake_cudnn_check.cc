// A self-check of the stand-in cuDNN (fake_cudnn.cc) on its own, before and without the emulated
// runtime: this program provides a trivial emu_device.h (work runs at once, or is recorded and
// replayed later to mimic a graph capture; "device memory" is what dev_alloc handed out), dlopens
// the library, resolves every symbol of cudnn_api.h's X-lists, and compares each operation with
// references written independently (dense NCHW loops in float64, gather form for the gradients,
// NHWC and strided inputs transposed explicitly, the LRN gradient by finite differences), plus
// the parameter checks. Not a test of cuDNN.
//
//   g++ -std=c++17 -O2 -fPIC -shared -Wl,-soname,libcudnn.so.9 -I native/cuda/dynload
//       -I test/cuda-emu/include -I test/cuda-emu/device test/cuda-emu/device/fake_cudnn.cc
//       -o /tmp/dnn/libcudnn.so.9
//   g++ -std=c++17 -O2 -rdynamic -I native/cuda/dynload -I test/cuda-emu/device
//       test/cuda-emu/device/fake_cudnn_check.cc -o /tmp/dnn/check -ldl
//   /tmp/dnn/check /tmp/dnn/libcudnn.so.9
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "cudnn_api.h"
#include "emu_device.h"

using namespace alexnet::cuda::dnn;

// ---- the trivial emulated device ----------------------------------------------------------------
namespace {
struct Block {
  const char* p;
  size_t n;
};
std::vector<Block> g_blocks;
bool g_capture = false;
std::vector<std::function<void()>> g_graph;
int g_failures = 0;
}  // namespace

namespace emu {
void enqueue(CUstream_st*, const char*, std::function<void()> work) {
  if (g_capture) g_graph.push_back(std::move(work));
  else work();
}
bool capturing(CUstream_st*) { return g_capture; }
bool is_device_memory(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (const Block& b : g_blocks)
    if (c >= b.p && c + (bytes ? bytes : 1) <= b.p + b.n) return true;
  return false;
}
void require_device_memory(const void* p, size_t bytes, const char* what) {
  if (!is_device_memory(p, bytes)) {
    std::fprintf(stderr, "EMU FAIL: %s: %zu bytes at %p are not device memory\n", what, bytes, p);
    std::exit(3);
  }
}
void fail(const char* what) {
  std::fprintf(stderr, "EMU FAIL: %s\n", what);
  std::exit(3);
}
}  // namespace emu

namespace {

template <typename T>
T* dev_alloc(size_t n) {
  T* p = static_cast<T*>(std::malloc(n * sizeof(T) + 1));
  g_blocks.push_back({reinterpret_cast<const char*>(p), n * sizeof(T)});
  return p;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what);
    ++g_failures;
  }
}

// The API table, resolved by name from the library (as the loader does).
struct Api {
#define FIELD(name) PFN_##name name = nullptr;
  ALEXNET_CUDNN_FUNCTIONS(FIELD)
  ALEXNET_CUDNN_OPTIONAL_FUNCTIONS(FIELD)
#undef FIELD
};
Api A;

#define OK(expr)                                                                   \
  do {                                                                             \
    const cudnnStatus_t s_ = (expr);                                               \
    if (s_ != CUDNN_STATUS_SUCCESS) {                                              \
      char m_[512];                                                                \
      A.cudnnGetLastErrorString(m_, sizeof m_);                                    \
      std::printf("FAIL %s:%d: %s = %d (%s)\n", __FILE__, __LINE__, #expr, s_, m_); \
      ++g_failures;                                                                \
    }                                                                              \
  } while (0)
#define EXPECT_CAT(cat, expr)                                                              \
  do {                                                                                     \
    const int s_ = (expr);                                                                 \
    if (cudnn_status_category(s_) != (cat)) {                                              \
      std::printf("FAIL %s:%d: %s = %d, expected category %d\n", __FILE__, __LINE__, #expr, s_, cat); \
      ++g_failures;                                                                        \
    }                                                                                      \
  } while (0)

std::mt19937 rng(1234);
double rnd() { return std::uniform_real_distribution<double>(-1, 1)(rng); }

float to_f(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// float -> bf16, to nearest even (the classic integer trick, written independently)
uint16_t to_bf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}
float tf32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u = (u + 0x1000) & 0xFFFFE000u;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- dense NCHW references ---------------------------------------------------------------------
struct Geo {
  int N, C, H, W, K, R, S, ph, pw, sh, sw, dh, dw, G;
  bool flip;
  int Ho() const { return (H + 2 * ph - ((R - 1) * dh + 1)) / sh + 1; }
  int Wo() const { return (W + 2 * pw - ((S - 1) * dw + 1)) / sw + 1; }
};
// y[n,k,oh,ow] = sum x[n, g*Cg+c, oh*sh-ph+r*dh, ...] * w[k, c, r', s']
std::vector<double> ref_fwd(const Geo& g, const std::vector<double>& x, const std::vector<double>& w) {
  const int Cg = g.C / g.G, Kg = g.K / g.G, Ho = g.Ho(), Wo = g.Wo();
  std::vector<double> y(static_cast<size_t>(g.N) * g.K * Ho * Wo, 0);
  for (int n = 0; n < g.N; ++n)
    for (int k = 0; k < g.K; ++k)
      for (int oh = 0; oh < Ho; ++oh)
        for (int ow = 0; ow < Wo; ++ow) {
          double s = 0;
          for (int c = 0; c < Cg; ++c)
            for (int r = 0; r < g.R; ++r)
              for (int q = 0; q < g.S; ++q) {
                const int ih = oh * g.sh - g.ph + r * g.dh, iw = ow * g.sw - g.pw + q * g.dw;
                if (ih < 0 || iw < 0 || ih >= g.H || iw >= g.W) continue;
                const int rr = g.flip ? g.R - 1 - r : r, qq = g.flip ? g.S - 1 - q : q;
                s += x[((static_cast<size_t>(n) * g.C + (k / Kg) * Cg + c) * g.H + ih) * g.W + iw] *
                     w[((static_cast<size_t>(k) * Cg + c) * g.R + rr) * g.S + qq];
              }
          y[((static_cast<size_t>(n) * g.K + k) * Ho + oh) * Wo + ow] = s;
        }
  return y;
}
// dx by gather: for each input position, the outputs whose window covers it
std::vector<double> ref_bwd_data(const Geo& g, const std::vector<double>& dy, const std::vector<double>& w) {
  const int Cg = g.C / g.G, Kg = g.K / g.G, Ho = g.Ho(), Wo = g.Wo();
  std::vector<double> dx(static_cast<size_t>(g.N) * g.C * g.H * g.W, 0);
  for (int n = 0; n < g.N; ++n)
    for (int ci = 0; ci < g.C; ++ci)
      for (int ih = 0; ih < g.H; ++ih)
        for (int iw = 0; iw < g.W; ++iw) {
          double s = 0;
          const int grp = ci / Cg, c = ci % Cg;
          for (int kk = 0; kk < Kg; ++kk)
            for (int r = 0; r < g.R; ++r)
              for (int q = 0; q < g.S; ++q) {
                const int th = ih + g.ph - r * g.dh, tw = iw + g.pw - q * g.dw;
                if (th < 0 || tw < 0 || th % g.sh || tw % g.sw) continue;
                const int oh = th / g.sh, ow = tw / g.sw;
                if (oh >= Ho || ow >= Wo) continue;
                const int k = grp * Kg + kk, rr = g.flip ? g.R - 1 - r : r, qq = g.flip ? g.S - 1 - q : q;
                s += dy[((static_cast<size_t>(n) * g.K + k) * Ho + oh) * Wo + ow] *
                     w[((static_cast<size_t>(k) * Cg + c) * g.R + rr) * g.S + qq];
              }
          dx[((static_cast<size_t>(n) * g.C + ci) * g.H + ih) * g.W + iw] = s;
        }
  return dx;
}
std::vector<double> ref_bwd_filter(const Geo& g, const std::vector<double>& x, const std::vector<double>& dy) {
  const int Cg = g.C / g.G, Kg = g.K / g.G, Ho = g.Ho(), Wo = g.Wo();
  std::vector<double> dw(static_cast<size_t>(g.K) * Cg * g.R * g.S, 0);
  for (int k = 0; k < g.K; ++k)
    for (int c = 0; c < Cg; ++c)
      for (int rr = 0; rr < g.R; ++rr)
        for (int qq = 0; qq < g.S; ++qq) {
          const int r = g.flip ? g.R - 1 - rr : rr, q = g.flip ? g.S - 1 - qq : qq;
          double s = 0;
          for (int n = 0; n < g.N; ++n)
            for (int oh = 0; oh < Ho; ++oh)
              for (int ow = 0; ow < Wo; ++ow) {
                const int ih = oh * g.sh - g.ph + r * g.dh, iw = ow * g.sw - g.pw + q * g.dw;
                if (ih < 0 || iw < 0 || ih >= g.H || iw >= g.W) continue;
                s += x[((static_cast<size_t>(n) * g.C + (k / Kg) * Cg + c) * g.H + ih) * g.W + iw] *
                     dy[((static_cast<size_t>(n) * g.K + k) * Ho + oh) * Wo + ow];
              }
          dw[((static_cast<size_t>(k) * Cg + c) * g.R + rr) * g.S + qq] = s;
        }
  return dw;
}

// NCHW dense <-> NHWC dense
std::vector<double> to_nhwc(const std::vector<double>& v, int N, int C, int H, int W) {
  std::vector<double> o(v.size());
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int h = 0; h < H; ++h)
        for (int w = 0; w < W; ++w) o[((static_cast<size_t>(n) * H + h) * W + w) * C + c] = v[((static_cast<size_t>(n) * C + c) * H + h) * W + w];
  return o;
}

// Compares, element by element, a stored array (read through `get(i)` in NCHW order) with ref.
void compare(const char* what, const std::vector<double>& ref, const std::function<double(size_t)>& got, double rel, double abs_tol) {
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got(i), e = std::fabs(g - ref[i]) / (abs_tol + rel * std::fabs(ref[i]));
    if (!(e <= worst)) {
      worst = std::isnan(e) ? 1e30 : e;
      at = i;
    }
  }
  if (worst > 1) {
    std::printf("FAIL: %s: element %zu is %.9g, expected %.9g\n", what, at, got(at), ref[at]);
    ++g_failures;
  } else {
    std::printf("ok   %s (worst %.3g of tolerance)\n", what, worst);
  }
}

cudnnHandle_t H;

struct ConvSetup {
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t c;
};
ConvSetup conv_setup(const Geo& g, cudnnDataType_t dt, bool nhwc, cudnnMathType_t math) {
  ConvSetup s;
  OK(A.cudnnCreateTensorDescriptor(&s.x));
  OK(A.cudnnCreateTensorDescriptor(&s.y));
  OK(A.cudnnCreateFilterDescriptor(&s.w));
  OK(A.cudnnCreateConvolutionDescriptor(&s.c));
  const cudnnTensorFormat_t f = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  OK(A.cudnnSetTensor4dDescriptor(s.x, f, dt, g.N, g.C, g.H, g.W));
  OK(A.cudnnSetTensor4dDescriptor(s.y, f, dt, g.N, g.K, g.Ho(), g.Wo()));
  OK(A.cudnnSetFilter4dDescriptor(s.w, dt, f, g.K, g.C / g.G, g.R, g.S));
  OK(A.cudnnSetConvolution2dDescriptor(s.c, g.ph, g.pw, g.sh, g.sw, g.dh, g.dw, g.flip ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION,
                                       CUDNN_DATA_FLOAT));
  OK(A.cudnnSetConvolutionGroupCount(s.c, g.G));
  OK(A.cudnnSetConvolutionMathType(s.c, math));
  return s;
}
void conv_destroy(ConvSetup& s) {
  OK(A.cudnnDestroyTensorDescriptor(s.x));
  OK(A.cudnnDestroyTensorDescriptor(s.y));
  OK(A.cudnnDestroyFilterDescriptor(s.w));
  OK(A.cudnnDestroyConvolutionDescriptor(s.c));
}

// A buffer of `n` elements (float or bf16) holding `v` in the given layout (NCHW or NHWC), and
// reading it back in NCHW order.
struct Buf {
  bool bf;
  size_t n;
  void* p;
  std::vector<double> stored;  // the values as stored (rounded), NCHW order
};
Buf make_buf(const std::vector<double>& nchw, int N, int C, int H, int W, bool bf, bool nhwc) {
  Buf b{bf, nchw.size(), nullptr, {}};
  const std::vector<double> lay = nhwc ? to_nhwc(nchw, N, C, H, W) : nchw;
  std::vector<double> back(lay.size());
  if (bf) {
    auto* p = dev_alloc<uint16_t>(lay.size());
    for (size_t i = 0; i < lay.size(); ++i) back[i] = to_f(p[i] = to_bf(static_cast<float>(lay[i])));
    b.p = p;
  } else {
    auto* p = dev_alloc<float>(lay.size());
    for (size_t i = 0; i < lay.size(); ++i) back[i] = p[i] = static_cast<float>(lay[i]);
    b.p = p;
  }
  // stored values in NCHW order
  b.stored.resize(lay.size());
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int h = 0; h < H; ++h)
        for (int w = 0; w < W; ++w) {
          const size_t src = nhwc ? ((static_cast<size_t>(n) * H + h) * W + w) * C + c : ((static_cast<size_t>(n) * C + c) * H + h) * W + w;
          b.stored[((static_cast<size_t>(n) * C + c) * H + h) * W + w] = back[src];
        }
  return b;
}
std::function<double(size_t)> reader(const Buf& b, int N, int C, int H, int W, bool nhwc) {
  return [=](size_t i) {
    const int w = static_cast<int>(i % W), h = static_cast<int>(i / W % H), c = static_cast<int>(i / W / H % C),
              n = static_cast<int>(i / W / H / C);
    (void)N;
    const size_t o = nhwc ? ((static_cast<size_t>(n) * H + h) * W + w) * C + c : i;
    return b.bf ? static_cast<double>(to_f(static_cast<uint16_t*>(b.p)[o])) : static_cast<double>(static_cast<float*>(b.p)[o]);
  };
}
std::vector<double> random_vec(size_t n) {
  std::vector<double> v(n);
  for (auto& x : v) x = rnd();
  return v;
}
void fill_nan(Buf& b) {
  if (b.bf) for (size_t i = 0; i < b.n; ++i) static_cast<uint16_t*>(b.p)[i] = 0x7FC1;
  else for (size_t i = 0; i < b.n; ++i) static_cast<float*>(b.p)[i] = NAN;
}

void conv_case(const char* name, const Geo& g, cudnnDataType_t dt, bool nhwc, cudnnMathType_t math) {
  const bool bf = dt == CUDNN_DATA_BFLOAT16;
  const int Ho = g.Ho(), Wo = g.Wo(), Cg = g.C / g.G;
  ConvSetup s = conv_setup(g, dt, nhwc, math);
  Buf x = make_buf(random_vec(static_cast<size_t>(g.N) * g.C * g.H * g.W), g.N, g.C, g.H, g.W, bf, nhwc);
  Buf w = make_buf(random_vec(static_cast<size_t>(g.K) * Cg * g.R * g.S), g.K, Cg, g.R, g.S, bf, nhwc);
  Buf dy = make_buf(random_vec(static_cast<size_t>(g.N) * g.K * Ho * Wo), g.N, g.K, Ho, Wo, bf, nhwc);
  Buf y = make_buf(std::vector<double>(dy.n, 0), g.N, g.K, Ho, Wo, bf, nhwc);
  Buf dx = make_buf(std::vector<double>(x.n, 0), g.N, g.C, g.H, g.W, bf, nhwc);
  Buf dw = make_buf(std::vector<double>(w.n, 0), g.K, Cg, g.R, g.S, bf, nhwc);
  fill_nan(y);
  fill_nan(dx);
  fill_nan(dw);
  const bool use_tf32 = !bf && math != CUDNN_FMA_MATH;
  auto t = [&](std::vector<double> v) {
    if (use_tf32) for (auto& e : v) e = tf32(static_cast<float>(e));
    return v;
  };
  const double rel = bf ? 1.0 / 128 : 1e-6, abs_tol = bf ? 1e-2 : 1e-5;
  char label[200];
  size_t ws_size = 0;
  // forward: the search's choice
  cudnnConvolutionFwdAlgoPerf_t perf[8];
  int n = 0;
  void* big_ws = dev_alloc<char>(1 << 20);
  OK(A.cudnnFindConvolutionForwardAlgorithmEx(H, s.x, x.p, s.w, w.p, s.c, s.y, y.p, 8, &n, perf, big_ws, 1 << 20));
  check(n >= 3, "forward search returns at least 3");
  OK(A.cudnnGetConvolutionForwardWorkspaceSize(H, s.x, s.w, s.c, s.y, perf[0].algo, &ws_size));
  check(ws_size == perf[0].memory, "forward workspace size agrees with the search");
  void* ws = ws_size ? dev_alloc<char>(ws_size) : nullptr;
  fill_nan(y);
  const float one = 1.f, zero = 0.f;
  OK(A.cudnnConvolutionForward(H, &one, s.x, x.p, s.w, w.p, s.c, perf[0].algo, ws, ws_size, &zero, s.y, y.p));
  std::snprintf(label, sizeof label, "%s: forward", name);
  compare(label, ref_fwd(g, t(x.stored), t(w.stored)), reader(y, g.N, g.K, Ho, Wo, nhwc), rel, abs_tol);
  // backward data
  cudnnConvolutionBwdDataAlgoPerf_t pd[8];
  OK(A.cudnnFindConvolutionBackwardDataAlgorithmEx(H, s.w, w.p, s.y, dy.p, s.c, s.x, dx.p, 8, &n, pd, big_ws, 1 << 20));
  check(n >= 3, "backward-data search returns at least 3");
  OK(A.cudnnGetConvolutionBackwardDataWorkspaceSize(H, s.w, s.y, s.c, s.x, pd[0].algo, &ws_size));
  ws = ws_size ? dev_alloc<char>(ws_size) : nullptr;
  fill_nan(dx);
  OK(A.cudnnConvolutionBackwardData(H, &one, s.w, w.p, s.y, dy.p, s.c, pd[0].algo, ws, ws_size, &zero, s.x, dx.p));
  std::snprintf(label, sizeof label, "%s: backward data", name);
  compare(label, ref_bwd_data(g, t(dy.stored), t(w.stored)), reader(dx, g.N, g.C, g.H, g.W, nhwc), rel, abs_tol);
  // backward filter, accumulating: dw = 2 * grad + 0.5 * dw0
  cudnnConvolutionBwdFilterAlgoPerf_t pf[8];
  OK(A.cudnnFindConvolutionBackwardFilterAlgorithmEx(H, s.x, x.p, s.y, dy.p, s.c, s.w, dw.p, 8, &n, pf, big_ws, 1 << 20));
  check(n >= 3, "backward-filter search returns at least 3");
  OK(A.cudnnGetConvolutionBackwardFilterWorkspaceSize(H, s.x, s.y, s.c, s.w, pf[0].algo, &ws_size));
  ws = ws_size ? dev_alloc<char>(ws_size) : nullptr;
  Buf dw0 = make_buf(random_vec(w.n), g.K, Cg, g.R, g.S, bf, nhwc);
  const float two = 2.f, half = 0.5f;
  OK(A.cudnnConvolutionBackwardFilter(H, &two, s.x, x.p, s.y, dy.p, s.c, pf[0].algo, ws, ws_size, &half, s.w, dw0.p));
  std::vector<double> want = ref_bwd_filter(g, t(x.stored), t(dy.stored));
  for (size_t i = 0; i < want.size(); ++i) want[i] = 2 * want[i] + 0.5 * dw0.stored[i];
  std::snprintf(label, sizeof label, "%s: backward filter (alpha 2, beta 0.5)", name);
  compare(label, want, reader(dw0, g.K, Cg, g.R, g.S, nhwc), rel, abs_tol);
  conv_destroy(s);
}

// ---- pooling reference ----
void pool_case(const char* name, cudnnPoolingMode_t mode, int N, int C, int Hh, int Ww, int k, int st, int pad) {
  cudnnPoolingDescriptor_t pd;
  cudnnTensorDescriptor_t xd, yd;
  OK(A.cudnnCreatePoolingDescriptor(&pd));
  OK(A.cudnnSetPooling2dDescriptor(pd, mode, CUDNN_PROPAGATE_NAN, k, k, pad, pad, st, st));
  const int Ho = (Hh + 2 * pad - k) / st + 1, Wo = (Ww + 2 * pad - k) / st + 1;
  OK(A.cudnnCreateTensorDescriptor(&xd));
  OK(A.cudnnCreateTensorDescriptor(&yd));
  // x with padded strides (Ex): W stride 1, H stride W + 3, C stride (W + 3) * H + 1, N stride ...
  const int hs = Ww + 3, cs = hs * Hh + 1, ns = cs * C + 5;
  OK(A.cudnnSetTensor4dDescriptorEx(xd, CUDNN_DATA_FLOAT, N, C, Hh, Ww, ns, cs, hs, 1));
  OK(A.cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, C, Ho, Wo));
  float* x = dev_alloc<float>(static_cast<size_t>(ns) * N);
  float* dx = dev_alloc<float>(static_cast<size_t>(ns) * N);
  std::vector<double> xv(static_cast<size_t>(N) * C * Hh * Ww);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int h = 0; h < Hh; ++h)
        for (int w = 0; w < Ww; ++w) {
          const float v = static_cast<float>(rnd());
          x[n * ns + c * cs + h * hs + w] = v;
          xv[((static_cast<size_t>(n) * C + c) * Hh + h) * Ww + w] = v;
        }
  float* y = dev_alloc<float>(static_cast<size_t>(N) * C * Ho * Wo);
  float* dy = dev_alloc<float>(static_cast<size_t>(N) * C * Ho * Wo);
  for (int i = 0; i < N * C * Ho * Wo; ++i) {
    y[i] = NAN;
    dy[i] = static_cast<float>(rnd());
  }
  std::vector<double> yr(static_cast<size_t>(N) * C * Ho * Wo), dxr(xv.size(), 0);
  const bool mx = mode == CUDNN_POOLING_MAX || mode == CUDNN_POOLING_MAX_DETERMINISTIC;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int oh = 0; oh < Ho; ++oh)
        for (int ow = 0; ow < Wo; ++ow) {
          double best = -1e300, sum = 0;
          int cnt = 0, bi = -1;
          for (int i = 0; i < k; ++i)
            for (int j = 0; j < k; ++j) {
              const int h = oh * st - pad + i, w = ow * st - pad + j;
              if (h < 0 || w < 0 || h >= Hh || w >= Ww) continue;
              const size_t o = ((static_cast<size_t>(n) * C + c) * Hh + h) * Ww + w;
              ++cnt;
              sum += xv[o];
              if (xv[o] > best) best = xv[o], bi = static_cast<int>(o);
            }
          const size_t yo = ((static_cast<size_t>(n) * C + c) * Ho + oh) * Wo + ow;
          const int div = mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING ? k * k : cnt;
          yr[yo] = mx ? best : sum / div;
          if (mx) dxr[static_cast<size_t>(bi)] += dy[yo];
          else
            for (int i = 0; i < k; ++i)
              for (int j = 0; j < k; ++j) {
                const int h = oh * st - pad + i, w = ow * st - pad + j;
                if (h < 0 || w < 0 || h >= Hh || w >= Ww) continue;
                dxr[((static_cast<size_t>(n) * C + c) * Hh + h) * Ww + w] += dy[yo] / div;
              }
        }
  const float one = 1.f, zero = 0.f;
  OK(A.cudnnPoolingForward(H, pd, &one, xd, x, &zero, yd, y));
  char label[200];
  std::snprintf(label, sizeof label, "%s: forward", name);
  compare(label, yr, [&](size_t i) { return static_cast<double>(y[i]); }, 1e-6, 1e-7);
  for (int i = 0; i < ns * N; ++i) dx[i] = NAN;
  OK(A.cudnnPoolingBackward(H, pd, &one, yd, y, yd, dy, xd, x, &zero, xd, dx));
  std::snprintf(label, sizeof label, "%s: backward", name);
  compare(label, dxr, [&](size_t i) {
    const int w = static_cast<int>(i % Ww), h = static_cast<int>(i / Ww % Hh), c = static_cast<int>(i / Ww / Hh % C), n = static_cast<int>(i / Ww / Hh / C);
    return static_cast<double>(dx[n * ns + c * cs + h * hs + w]);
  }, 1e-6, 1e-7);
  OK(A.cudnnDestroyPoolingDescriptor(pd));
  OK(A.cudnnDestroyTensorDescriptor(xd));
  OK(A.cudnnDestroyTensorDescriptor(yd));
}

// ---- LRN: forward by its formula (window [c - lb, c + la]), backward by finite differences ----
std::vector<double> lrn_ref(const std::vector<double>& x, int N, int C, int S, unsigned nn, double al, double be, double k) {
  std::vector<double> y(x.size());
  const int lb = (static_cast<int>(nn) - 1) / 2, la = static_cast<int>(nn) - 1 - lb;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int s = 0; s < S; ++s) {
        double sq = 0;
        for (int j = c - lb; j <= c + la; ++j)
          if (j >= 0 && j < C) sq += x[(static_cast<size_t>(n) * C + j) * S + s] * x[(static_cast<size_t>(n) * C + j) * S + s];
        y[(static_cast<size_t>(n) * C + c) * S + s] = x[(static_cast<size_t>(n) * C + c) * S + s] / std::pow(k + al / nn * sq, be);
      }
  return y;
}
void lrn_case(unsigned nn) {
  const int N = 2, C = 7, S = 3;
  const double al = 0.3, be = 0.75, k = 1.5;
  cudnnLRNDescriptor_t ld;
  cudnnTensorDescriptor_t td;
  OK(A.cudnnCreateLRNDescriptor(&ld));
  OK(A.cudnnSetLRNDescriptor(ld, nn, al, be, k));
  OK(A.cudnnCreateTensorDescriptor(&td));
  OK(A.cudnnSetTensor4dDescriptor(td, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, C, S, 1));
  const size_t n = static_cast<size_t>(N) * C * S;
  float *x = dev_alloc<float>(n), *y = dev_alloc<float>(n), *dy = dev_alloc<float>(n), *dx = dev_alloc<float>(n);
  std::vector<double> xv(n), dyv(n);
  for (size_t i = 0; i < n; ++i) {
    xv[i] = x[i] = static_cast<float>(rnd() * 2);
    dyv[i] = dy[i] = static_cast<float>(rnd());
    y[i] = dx[i] = NAN;
  }
  const float one = 1.f, zero = 0.f;
  OK(A.cudnnLRNCrossChannelForward(H, ld, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, td, x, &zero, td, y));
  char label[100];
  std::snprintf(label, sizeof label, "LRN n=%u: forward", nn);
  compare(label, lrn_ref(xv, N, C, S, nn, al, be, k), [&](size_t i) { return static_cast<double>(y[i]); }, 1e-6, 1e-7);
  OK(A.cudnnLRNCrossChannelBackward(H, ld, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, td, y, td, dy, td, x, &zero, td, dx));
  std::vector<double> g(n);
  for (size_t i = 0; i < n; ++i) {
    const double e = 1e-6;
    std::vector<double> a = xv, b = xv;
    a[i] += e;
    b[i] -= e;
    const auto ya = lrn_ref(a, N, C, S, nn, al, be, k), yb = lrn_ref(b, N, C, S, nn, al, be, k);
    double s = 0;
    for (size_t j = 0; j < n; ++j) s += dyv[j] * (ya[j] - yb[j]) / (2 * e);
    g[i] = s;
  }
  std::snprintf(label, sizeof label, "LRN n=%u: backward (finite differences)", nn);
  compare(label, g, [&](size_t i) { return static_cast<double>(dx[i]); }, 1e-5, 1e-6);
  OK(A.cudnnDestroyLRNDescriptor(ld));
  OK(A.cudnnDestroyTensorDescriptor(td));
}

void bad_params() {
  const Geo g{2, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2, false};
  ConvSetup s = conv_setup(g, CUDNN_DATA_FLOAT, false, CUDNN_FMA_MATH);
  float* x = dev_alloc<float>(2 * 4 * 36);
  float* w = dev_alloc<float>(4 * 2 * 9);
  float* y = dev_alloc<float>(2 * 4 * 36);
  const float one = 1.f, zero = 0.f;
  size_t ws = 0;
  // the GEMM algorithm needs a workspace: give it one byte less
  OK(A.cudnnGetConvolutionForwardWorkspaceSize(H, s.x, s.w, s.c, s.y, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, &ws));
  check(ws > 0, "GEMM needs a workspace");
  void* wsp = dev_alloc<char>(ws);
  EXPECT_CAT(2000, A.cudnnConvolutionForward(H, &one, s.x, x, s.w, w, s.c, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, wsp, ws - 1, &zero, s.y, y));
  char msg[300];
  A.cudnnGetLastErrorString(msg, sizeof msg);
  check(std::strstr(msg, "workspace") != nullptr, "the last error names the workspace");
  std::printf("     last error: %s\n", msg);
  OK(A.cudnnConvolutionForward(H, &one, s.x, x, s.w, w, s.c, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, wsp, ws, &zero, s.y, y));
  EXPECT_CAT(2000, A.cudnnConvolutionForward(H, &one, s.x, nullptr, s.w, w, s.c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, s.y, y));
  EXPECT_CAT(3000, A.cudnnConvolutionForward(H, &one, s.x, x, s.w, w, s.c, CUDNN_CONVOLUTION_FWD_ALGO_FFT, nullptr, 0, &zero, s.y, y));
  EXPECT_CAT(2000, A.cudnnConvolutionForward(H, &one, s.x, x, s.w, w, s.c, static_cast<cudnnConvolutionFwdAlgo_t>(42), nullptr, 0, &zero, s.y, y));
  // wrong output size
  cudnnTensorDescriptor_t bad;
  OK(A.cudnnCreateTensorDescriptor(&bad));
  OK(A.cudnnSetTensor4dDescriptor(bad, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 5, 6));
  EXPECT_CAT(2000, A.cudnnConvolutionForward(H, &one, s.x, x, s.w, w, s.c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, bad, y));
  // dtype mismatch
  OK(A.cudnnSetTensor4dDescriptor(bad, CUDNN_TENSOR_NCHW, CUDNN_DATA_BFLOAT16, 2, 4, 6, 6));
  EXPECT_CAT(2000, A.cudnnConvolutionForward(H, &one, s.x, x, s.w, w, s.c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, bad, y));
  // channels not matching the groups: 3 groups of 2 channels against 4 input channels
  OK(A.cudnnSetConvolutionGroupCount(s.c, 3));
  EXPECT_CAT(2000, A.cudnnConvolutionForward(H, &one, s.x, x, s.w, w, s.c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, s.y, y));
  OK(A.cudnnSetConvolutionGroupCount(s.c, 2));
  // descriptor values
  EXPECT_CAT(2000, A.cudnnSetTensor4dDescriptor(bad, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 0, 4, 6, 6));
  const int d3[3] = {2, 3, 4}, s3[3] = {12, 4, 1};
  EXPECT_CAT(3000, A.cudnnSetTensorNdDescriptor(bad, CUDNN_DATA_FLOAT, 3, d3, s3));
  const int d4[4] = {2, 3, 4, 5}, s4[4] = {60, 20, -5, 1};
  EXPECT_CAT(2000, A.cudnnSetTensorNdDescriptor(bad, CUDNN_DATA_FLOAT, 4, d4, s4));
  EXPECT_CAT(2000, A.cudnnSetConvolution2dDescriptor(s.c, -1, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  EXPECT_CAT(2000, A.cudnnSetConvolution2dDescriptor(s.c, 0, 0, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  EXPECT_CAT(2000, A.cudnnSetConvolutionGroupCount(s.c, 0));
  cudnnLRNDescriptor_t ld;
  OK(A.cudnnCreateLRNDescriptor(&ld));
  EXPECT_CAT(2000, A.cudnnSetLRNDescriptor(ld, 17, 1e-4, 0.75, 2));
  EXPECT_CAT(2000, A.cudnnSetLRNDescriptor(ld, 5, 1e-4, 0.001, 2));
  EXPECT_CAT(2000, A.cudnnSetLRNDescriptor(ld, 5, 1e-4, 0.75, 0));
  OK(A.cudnnDestroyLRNDescriptor(ld));
  // a destroyed descriptor, and a filter passed as a tensor
  OK(A.cudnnDestroyTensorDescriptor(bad));
  EXPECT_CAT(2000, A.cudnnSetTensor4dDescriptor(bad, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1));
  EXPECT_CAT(2000, A.cudnnSetTensor4dDescriptor(reinterpret_cast<cudnnTensorDescriptor_t>(s.w), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1));
  EXPECT_CAT(2000, A.cudnnCreate(nullptr));
  // searches: requested counts
  cudnnConvolutionFwdAlgoPerf_t perf[8];
  int n = -1;
  void* big = dev_alloc<char>(1 << 16);
  OK(A.cudnnFindConvolutionForwardAlgorithmEx(H, s.x, x, s.w, w, s.c, s.y, y, 1, &n, perf, big, 1 << 16));
  check(n == 1, "one algorithm when one is requested");
  EXPECT_CAT(2000, A.cudnnFindConvolutionForwardAlgorithmEx(H, s.x, x, s.w, w, s.c, s.y, y, 0, &n, perf, big, 1 << 16));
  OK(A.cudnnGetConvolutionForwardAlgorithm_v7(H, s.x, s.w, s.c, s.y, 8, &n, perf));
  int zero_ws = 0, nonzero = 0;
  for (int i = 0; i < n; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS) (perf[i].memory ? nonzero : zero_ws)++;
  check(n == 4 && zero_ws == 1 && nonzero == 2 && perf[3].status != CUDNN_STATUS_SUCCESS, "v7: 3 working algorithms (one without workspace), then the failed one");
  check(perf[0].mathType == CUDNN_FMA_MATH, "strict math reports CUDNN_FMA_MATH");
  cudnnConvolutionBwdFilterAlgoPerf_t pf[8];
  OK(A.cudnnGetConvolutionBackwardFilterAlgorithm_v7(H, s.x, s.y, s.c, s.w, 8, &n, pf));
  int det = 0, nondet = 0;
  for (int i = 0; i < n; ++i)
    if (pf[i].status == CUDNN_STATUS_SUCCESS) (pf[i].determinism == CUDNN_DETERMINISTIC ? det : nondet)++;
  check(det >= 1 && nondet >= 1, "backward filter offers deterministic and non-deterministic algorithms");
  // a too small workspace in a search: the algorithms that need more are reported ALLOC_FAILED
  OK(A.cudnnFindConvolutionForwardAlgorithmEx(H, s.x, x, s.w, w, s.c, s.y, y, 8, &n, perf, nullptr, 0));
  int ok_count = 0;
  for (int i = 0; i < n; ++i) ok_count += perf[i].status == CUDNN_STATUS_SUCCESS;
  check(ok_count == 1 && perf[0].memory == 0, "without a workspace only the algorithm that needs none works");
  conv_destroy(s);
  std::printf("ok   parameter checks\n");
}

// Graph capture: the work is recorded; descriptors are destroyed and the scalars changed before
// it runs, and the result must be what the call asked for.
void capture_case() {
  const Geo g{1, 2, 5, 5, 3, 3, 3, 1, 1, 2, 2, 1, 1, 1, false};
  ConvSetup s = conv_setup(g, CUDNN_DATA_FLOAT, false, CUDNN_FMA_MATH);
  Buf x = make_buf(random_vec(50), 1, 2, 5, 5, false, false);
  Buf w = make_buf(random_vec(54), 3, 2, 3, 3, false, false);
  Buf y = make_buf(std::vector<double>(27, 1.0), 1, 3, 3, 3, false, false);
  float alpha = 3.f, beta = 1.f;
  g_capture = true;
  OK(A.cudnnConvolutionForward(H, &alpha, s.x, x.p, s.w, w.p, s.c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &beta, s.y, y.p));
  int n = 0;
  cudnnConvolutionFwdAlgoPerf_t perf[8];
  EXPECT_CAT(5000, A.cudnnFindConvolutionForwardAlgorithmEx(H, s.x, x.p, s.w, w.p, s.c, s.y, y.p, 8, &n, perf, nullptr, 0));
  g_capture = false;
  conv_destroy(s);
  alpha = 100.f;
  beta = 100.f;
  for (auto& f : g_graph) f();
  g_graph.clear();
  std::vector<double> want = ref_fwd(g, x.stored, w.stored);
  for (auto& v : want) v = 3 * v + 1;
  compare("captured forward replayed after its descriptors and scalars were gone", want, reader(y, 1, 3, 3, 3, false), 1e-6, 1e-5);
}

// AddTensor (a [1, C, 1, 1] bias broadcast onto NHWC C) and ConvolutionBackwardBias (db = sum dy).
void bias_case() {
  const int N = 2, C = 3, Hh = 4, Ww = 5;
  cudnnTensorDescriptor_t bd, cd;
  OK(A.cudnnCreateTensorDescriptor(&bd));
  OK(A.cudnnCreateTensorDescriptor(&cd));
  OK(A.cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, C, 1, 1));
  OK(A.cudnnSetTensor4dDescriptor(cd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, N, C, Hh, Ww));
  float* b = dev_alloc<float>(C);
  float* c = dev_alloc<float>(static_cast<size_t>(N) * C * Hh * Ww);
  std::vector<double> c0(static_cast<size_t>(N) * C * Hh * Ww), want(c0.size()), sums(C, 0);
  for (int i = 0; i < C; ++i) b[i] = static_cast<float>(rnd());
  for (size_t i = 0; i < c0.size(); ++i) c0[i] = c[i] = static_cast<float>(rnd());
  for (size_t i = 0; i < c0.size(); ++i) {
    want[i] = 2 * b[i % C] + 0.5 * c0[i];  // NHWC: the channel is the fastest index
    sums[i % C] += c0[i];
  }
  const float two = 2.f, half = 0.5f, one = 1.f, zero = 0.f;
  float* db = dev_alloc<float>(C);
  for (int i = 0; i < C; ++i) db[i] = NAN;
  OK(A.cudnnConvolutionBackwardBias(H, &one, cd, c, &zero, bd, db));
  compare("backward bias over NHWC dy", sums, [&](size_t i) { return static_cast<double>(db[i]); }, 1e-6, 1e-6);
  OK(A.cudnnAddTensor(H, &two, bd, b, &half, cd, c));
  compare("AddTensor of a [1, C, 1, 1] bias onto NHWC (alpha 2, beta 0.5)", want, [&](size_t i) { return static_cast<double>(c[i]); }, 1e-6, 1e-6);
  EXPECT_CAT(2000, A.cudnnConvolutionBackwardBias(H, &one, cd, c, &zero, cd, db));
  OK(A.cudnnDestroyTensorDescriptor(bd));
  OK(A.cudnnDestroyTensorDescriptor(cd));
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "/tmp/dnn/libcudnn.so.9";
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::printf("FAIL: dlopen %s: %s\n", path, dlerror());
    return 1;
  }
  int missing = 0;
#define RESOLVE(name)                                                 \
  A.name = reinterpret_cast<PFN_##name>(dlsym(lib, #name));           \
  if (!A.name) std::printf("FAIL: %s is not exported\n", #name), ++missing;
  ALEXNET_CUDNN_FUNCTIONS(RESOLVE)
  ALEXNET_CUDNN_OPTIONAL_FUNCTIONS(RESOLVE)
#undef RESOLVE
  if (missing) return 1;
  std::printf("ok   every symbol resolves; version %zu, cudart %zu\n", A.cudnnGetVersion(), A.cudnnGetCudartVersion());
  check(std::strcmp(A.cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM), "CUDNN_STATUS_BAD_PARAM") == 0, "error string");
  OK(A.cudnnCreate(&H));
  OK(A.cudnnSetStream(H, nullptr));

  //            N  C  H  W  K  R  S ph pw sh sw dh dw G flip
  const Geo g1{2, 4, 7, 6, 6, 3, 3, 1, 1, 2, 2, 1, 1, 2, false};
  const Geo g2{1, 3, 9, 8, 4, 3, 2, 2, 0, 1, 2, 2, 1, 1, true};
  const Geo g3{2, 6, 8, 8, 4, 5, 5, 2, 2, 3, 3, 1, 1, 2, false};
  conv_case("float NCHW, groups 2, stride 2, pad 1, strict", g1, CUDNN_DATA_FLOAT, false, CUDNN_FMA_MATH);
  conv_case("float NHWC, groups 2, stride 2, pad 1, strict", g1, CUDNN_DATA_FLOAT, true, CUDNN_FMA_MATH);
  conv_case("float NCHW, convolution mode, dilation 2, uneven stride, TF32", g2, CUDNN_DATA_FLOAT, false, CUDNN_DEFAULT_MATH);
  conv_case("float NHWC 5x5 stride 3 groups 2, TF32 (tensor op)", g3, CUDNN_DATA_FLOAT, true, CUDNN_TENSOR_OP_MATH);
  conv_case("bfloat16 NCHW, groups 2", g1, CUDNN_DATA_BFLOAT16, false, CUDNN_DEFAULT_MATH);
  conv_case("bfloat16 NHWC, convolution mode, dilation", g2, CUDNN_DATA_BFLOAT16, true, CUDNN_TENSOR_OP_MATH);

  pool_case("max 3/2 pad 1 (strided x)", CUDNN_POOLING_MAX_DETERMINISTIC, 2, 3, 7, 8, 3, 2, 1);
  pool_case("max 2/2", CUDNN_POOLING_MAX, 1, 2, 6, 6, 2, 2, 0);
  pool_case("avg include padding 3/2 pad 1", CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, 2, 2, 5, 7, 3, 2, 1);
  pool_case("avg exclude padding 3/1 pad 1", CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, 1, 2, 5, 5, 3, 1, 1);

  lrn_case(5);
  lrn_case(1);
  lrn_case(4);

  bias_case();
  bad_params();
  capture_case();
  OK(A.cudnnDestroy(H));
  std::printf(g_failures ? "%d FAILURES\n" : "all passed\n", g_failures);
  return g_failures ? 1 : 0;
}
