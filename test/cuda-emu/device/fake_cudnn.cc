// A stand-in for cuDNN 9 (soname libcudnn.so.9) for the emulated device: NOT cuDNN. It lets the
// whole CUDA backend (native/cuda/dnn.cc through the dlopen loader of native/cuda/dynload/) run
// on the CPU beside the emulated CUDA runtime (runtime.cc, libcudaemu.so). It counts for nothing
// in the GPU check (scripts/gpu-check.sh and the gated test/cuda-*.test.ts are the check that
// counts): what it computes is what cuDNN DOCUMENTS, as this file reads the documentation, and
// where that reading is wrong the emulation is wrong with it.
//
// What it exports: every function of ALEXNET_CUDNN_FUNCTIONS and ALEXNET_CUDNN_OPTIONAL_FUNCTIONS
// (native/cuda/dynload/cudnn_api.h), each checked against its PFN_ type at compile time.
//
// What it checks, at call time (the status is returned at once, the arithmetic is enqueued):
//   * handles and descriptors are live ones of the right kind (a destroyed, never-made or
//     wrong-kind pointer is CUDNN_STATUS_BAD_PARAM), and were Set before use;
//   * descriptor values as cuDNN validates them: positive sizes and strides, nbDims in [4, 8],
//     non-negative pads, positive strides and dilations, group counts that divide the channels,
//     known enumerants, LRN n in [1, 16], k >= 1e-5, beta >= 0.01;
//   * agreement between descriptors: x / w / y data types, channels per group, output sizes of
//     the convolution and of the pooling, bias shapes ([1, K, 1, 1]), AddTensor broadcasting;
//   * supported configurations: float data with float compute, bfloat16 data with float compute
//     (PSEUDO_BFLOAT16), double with double; anything else is CUDNN_STATUS_NOT_SUPPORTED;
//   * workspaces: a workspace smaller than the chosen algorithm's Get*WorkspaceSize value is
//     CUDNN_STATUS_BAD_PARAM; Find*Ex reports the algorithms that need more than the given
//     workspace as CUDNN_STATUS_ALLOC_FAILED;
//   * every device pointer is required to be device memory over the exact span its descriptor
//     describes (emu::require_device_memory: the run stops with "EMU FAIL" otherwise), the
//     workspace over its whole claimed size;
//   * null pointers are CUDNN_STATUS_BAD_PARAM_NULL_POINTER (a BAD_PARAM sub-code, 2002: the
//     caller must compare categories, docs/cuda-abi.md §A2).
// cudnnGetLastErrorString gives the message of this thread's last failure.
//
// How it computes: naively, every sum in float64 from the inputs as stored (float, bfloat16 or
// double), rounded once to the output's type (bfloat16: to nearest, ties to even). Float
// convolution operands are rounded to TF32 (10 explicit mantissa bits, to nearest, ties away
// from zero, as cvt.rna.tf32.f32) whenever cuDNN may use TF32 tensor cores: math type
// CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH or ..._ALLOW_CONVERSION on float data (Ampere and
// later), unless NVIDIA_TF32_OVERRIDE=0; CUDNN_FMA_MATH is strict FP32. alpha / beta are read
// (as float for float and bfloat16 data, double for double) when the call is made; beta == 0
// never reads the output (NaN there does not leak). All work goes through emu::enqueue on the
// handle's stream, with the descriptors and scalars copied in (a graph capture replays it).
// Workspaces are filled with garbage (all one bits) when used, as a GPU's would be.
//
// Algorithms: each direction offers three that work (one with no workspace, two with distinct
// nonzero ones) and reports the FFT ones as not supported. Their "times" are made up from a hash
// of the shape, so different shapes choose different algorithms; each direction keeps at least
// one CUDNN_DETERMINISTIC algorithm (backward data ALGO_0 and backward filter ALGO_0 / ALGO_3 are
// non-deterministic, as in cuDNN). All of them compute the same float64 sums.
//
// Not modelled: half precision and integer types, NCHW_VECT_C, 3-D convolutions, real
// non-determinism, timing.
//
// Build (the emu:: services come from libcudaemu.so, linked as a dependency so that a
// dlopen(RTLD_LOCAL) of this library finds them; the already loaded libcudaemu.so is reused by
// its soname, so there stays one device per process):
//   g++ -std=c++17 -O2 -fPIC -shared -Wl,-soname,libcudnn.so.9 -I native/cuda/dynload
//       -I test/cuda-emu/include -I test/cuda-emu/device test/cuda-emu/device/fake_cudnn.cc
//       -o DIR/libcudnn.so.9 -LDIR -lcudaemu -Wl,-rpath,'$ORIGIN' -Wl,--no-undefined
// then ALEXNET_CUDNN_PATH=DIR. Without the dependency the loader rejects the file ("undefined
// symbol: emu::enqueue") unless libcudaemu.so is loaded globally (LD_PRELOAD).
// fake_cudnn_check.cc checks this library on its own, with a trivial device.
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "cudnn_api.h"
#include "emu_device.h"
#include "dgemm.h"

using namespace alexnet::cuda::dnn;

// ---- the objects behind the opaque handles --------------------------------------------------
struct cudnnContext {
  cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
  bool set = false;
  cudnnDataType_t dt = CUDNN_DATA_FLOAT;
  int nb = 0;
  int dims[8] = {};
  int64_t str[8] = {};
};
struct cudnnFilterStruct {
  bool set = false;
  cudnnDataType_t dt = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t fmt = CUDNN_TENSOR_NCHW;
  int k = 0, c = 0, h = 0, w = 0;
};
struct cudnnConvolutionStruct {
  bool set = false;
  int ph = 0, pw = 0, u = 1, v = 1, dh = 1, dw = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  int groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};
struct cudnnPoolingStruct {
  bool set = false;
  cudnnPoolingMode_t mode = CUDNN_POOLING_MAX;
  cudnnNanPropagation_t nan = CUDNN_NOT_PROPAGATE_NAN;
  int wh = 0, ww = 0, ph = 0, pw = 0, sh = 0, sw = 0;
};
struct cudnnLRNStruct {  // cuDNN's defaults (cudnnCreateLRNDescriptor)
  unsigned n = 5;
  double alpha = 1e-4, beta = 0.75, k = 2.0;
};

namespace {

using TD = cudnnTensorStruct;
using FD = cudnnFilterStruct;
using CD = cudnnConvolutionStruct;
using PD = cudnnPoolingStruct;
using LD = cudnnLRNStruct;

// ---- errors ---------------------------------------------------------------------------------
thread_local std::string t_last_error;

cudnnStatus_t err(cudnnStatus_t s, const char* fn, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
cudnnStatus_t err(cudnnStatus_t s, const char* fn, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  t_last_error = std::string(fn) + ": " + buf + " (fake cuDNN)";
  return s;
}
#define BAD(...) return err(CUDNN_STATUS_BAD_PARAM, fn, __VA_ARGS__)
#define NOTSUP(...) return err(CUDNN_STATUS_NOT_SUPPORTED, fn, __VA_ARGS__)
#define NULLPTR(p) \
  if ((p) == nullptr) return err(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, fn, "%s is null", #p)
#define TRY(expr)                                         \
  do {                                                    \
    const cudnnStatus_t st_ = (expr);                     \
    if (st_ != CUDNN_STATUS_SUCCESS) return st_;          \
  } while (0)

// ---- the registry of live objects, per kind ---------------------------------------------------
enum Kind { kHandle, kTensor, kFilter, kConv, kPool, kLrn };
const char* kind_name(Kind k) {
  static const char* names[] = {"handle", "tensor descriptor", "filter descriptor", "convolution descriptor",
                                "pooling descriptor", "LRN descriptor"};
  return names[k];
}
std::mutex g_mutex;
std::unordered_map<const void*, Kind>& live() {
  static auto* m = new std::unordered_map<const void*, Kind>();
  return *m;
}
template <typename T>
cudnnStatus_t create(const char* fn, T** out, Kind k) {
  NULLPTR(out);
  T* p = new T();
  std::lock_guard<std::mutex> lock(g_mutex);
  live()[p] = k;
  *out = p;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t check_live(const char* fn, const void* p, Kind k, const char* what) {
  if (p == nullptr) return err(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, fn, "%s is null", what);
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = live().find(p);
  if (it == live().end()) BAD("%s (%p) is not a live %s (destroyed, or never made)", what, p, kind_name(k));
  if (it->second != k) BAD("%s (%p) is a %s, not a %s", what, p, kind_name(it->second), kind_name(k));
  return CUDNN_STATUS_SUCCESS;
}
template <typename T>
cudnnStatus_t destroy(const char* fn, T* p, Kind k) {
  // cuDNN accepts a null descriptor in Destroy (nothing to do); a handle must be real
  if (p == nullptr && k != kHandle) return CUDNN_STATUS_SUCCESS;
  TRY(check_live(fn, p, k, "the object to destroy"));
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    live().erase(p);
  }
  delete p;
  return CUDNN_STATUS_SUCCESS;
}
// The checks every op makes of its handle and descriptors.
cudnnStatus_t tensor_ready(const char* fn, const TD* t, const char* what) {
  TRY(check_live(fn, t, kTensor, what));
  if (!t->set) BAD("%s was never set", what);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t filter_ready(const char* fn, const FD* f, const char* what) {
  TRY(check_live(fn, f, kFilter, what));
  if (!f->set) BAD("%s was never set", what);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t conv_ready(const char* fn, const CD* c) {
  TRY(check_live(fn, c, kConv, "convDesc"));
  if (!c->set) BAD("convDesc was never set (cudnnSetConvolution2dDescriptor)");
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t pool_ready(const char* fn, const PD* p) {
  TRY(check_live(fn, p, kPool, "poolingDesc"));
  if (!p->set) BAD("poolingDesc was never set (cudnnSetPooling2dDescriptor)");
  return CUDNN_STATUS_SUCCESS;
}

// ---- data types -----------------------------------------------------------------------------
bool known_dtype(int d) { return d >= CUDNN_DATA_FLOAT && d <= CUDNN_DATA_FAST_FLOAT_FOR_FP8; }
bool computable(cudnnDataType_t d) {
  return d == CUDNN_DATA_FLOAT || d == CUDNN_DATA_BFLOAT16 || d == CUDNN_DATA_DOUBLE;
}
size_t elem_size(cudnnDataType_t d) {
  switch (d) {
    case CUDNN_DATA_DOUBLE: case CUDNN_DATA_INT64: return 8;
    case CUDNN_DATA_FLOAT: case CUDNN_DATA_INT32: case CUDNN_DATA_INT8x4: case CUDNN_DATA_UINT8x4: return 4;
    case CUDNN_DATA_HALF: case CUDNN_DATA_BFLOAT16: return 2;
    case CUDNN_DATA_INT8x32: return 32;
    default: return 1;
  }
}
const char* dtype_name(cudnnDataType_t d) {
  switch (d) {
#define ALEXNET_FAKE_DT(name, value) case name: return #name;
    ALEXNET_CUDNN_DATA_TYPE(ALEXNET_FAKE_DT)
#undef ALEXNET_FAKE_DT
    default: return "an unknown data type";
  }
}

uint32_t fbits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
float bitsf(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// double -> bfloat16, rounded once, to nearest, ties to even (NaN: a quiet NaN with the sign).
uint16_t bf16_from_double(double d) {
  if (std::isnan(d)) return static_cast<uint16_t>((std::signbit(d) ? 0x8000u : 0u) | 0x7FC0u);
  if (std::isinf(d) || d == 0) return static_cast<uint16_t>(fbits(static_cast<float>(d)) >> 16);
  int e = 0;
  std::frexp(d, &e);                          // |d| = m * 2^e, m in [0.5, 1)
  const int q = std::max(e, -125) - 8;        // 8 significant bits; subnormal quantum 2^-133
  const double r = std::nearbyint(std::ldexp(d, -q));  // ties to even (default rounding mode)
  const double v = std::ldexp(r, q);           // exact in float, or 2^128 (-> inf)
  return static_cast<uint16_t>(fbits(static_cast<float>(v)) >> 16);
}
// float -> TF32 (10 explicit mantissa bits), to nearest, ties away from zero (cvt.rna.tf32.f32).
float tf32_round(float f) {
  if (!std::isfinite(f)) return f;
  return bitsf((fbits(f) + 0x1000u) & 0xFFFFE000u);
}

double load(const void* base, int64_t off, cudnnDataType_t dt) {
  switch (dt) {
    case CUDNN_DATA_FLOAT: return static_cast<const float*>(base)[off];
    case CUDNN_DATA_DOUBLE: return static_cast<const double*>(base)[off];
    case CUDNN_DATA_BFLOAT16: return bitsf(static_cast<uint32_t>(static_cast<const uint16_t*>(base)[off]) << 16);
    default: emu::fail("fake cuDNN: load of an unsupported data type");
  }
}
void store(void* base, int64_t off, cudnnDataType_t dt, double v) {
  switch (dt) {
    case CUDNN_DATA_FLOAT: static_cast<float*>(base)[off] = static_cast<float>(v); return;
    case CUDNN_DATA_DOUBLE: static_cast<double*>(base)[off] = v; return;
    case CUDNN_DATA_BFLOAT16: static_cast<uint16_t*>(base)[off] = bf16_from_double(v); return;
    default: emu::fail("fake cuDNN: store of an unsupported data type");
  }
}

// alpha and beta as cuDNN reads them: float for float and bfloat16 data, double for double.
struct Scale {
  double alpha = 1, beta = 0;
};
Scale read_scale(const void* alpha, const void* beta, cudnnDataType_t dt) {
  Scale s;
  if (dt == CUDNN_DATA_DOUBLE) {
    s.alpha = *static_cast<const double*>(alpha);
    s.beta = *static_cast<const double*>(beta);
  } else {
    s.alpha = *static_cast<const float*>(alpha);
    s.beta = *static_cast<const float*>(beta);
  }
  return s;
}
// out = alpha * r + beta * out; with beta == 0 the output is not read.
void blend(void* out, int64_t off, cudnnDataType_t dt, const Scale& s, double r) {
  double v = s.alpha * r;
  if (s.beta != 0) v += s.beta * load(out, off, dt);
  store(out, off, dt, v);
}

// ---- spans (what require_device_memory is asked about) ----------------------------------------
size_t tensor_bytes(const TD& t) {
  int64_t max_off = 0;
  for (int i = 0; i < t.nb; ++i) max_off += static_cast<int64_t>(t.dims[i] - 1) * t.str[i];
  return static_cast<size_t>(max_off + 1) * elem_size(t.dt);
}
size_t filter_bytes(const FD& f) {
  return static_cast<size_t>(f.k) * f.c * f.h * f.w * elem_size(f.dt);
}
void need(const void* p, size_t bytes, const char* fn, const char* what) {
  const std::string w = std::string(fn) + ": " + what;
  emu::require_device_memory(p, bytes, w.c_str());
}
// A workspace is garbage when a kernel gets it (and the caller must not rely on what is left).
void scribble(void* ws, size_t bytes) {
  if (ws != nullptr && bytes > 0) std::memset(ws, 0xFF, bytes);
}

int64_t off4(const TD& t, int64_t n, int64_t c, int64_t h, int64_t w) {
  return n * t.str[0] + c * t.str[1] + h * t.str[2] + w * t.str[3];
}
int64_t foff(const FD& f, int64_t k, int64_t c, int64_t h, int64_t w) {
  if (f.fmt == CUDNN_TENSOR_NHWC) return ((k * f.h + h) * f.w + w) * f.c + c;
  return ((k * f.c + c) * f.h + h) * f.w + w;
}

// ---- the convolution problem, validated --------------------------------------------------------
struct Conv {
  TD x, y;  // y: the output (forward), dy (backward)
  FD w;
  CD c;
  bool tf32 = false;
  int g = 1, Cg = 0, Kg = 0;
};

bool tf32_allowed(const CD& c, cudnnDataType_t dt) {
  if (dt != CUDNN_DATA_FLOAT) return false;
  if (c.math == CUDNN_FMA_MATH) return false;
  const char* o = std::getenv("NVIDIA_TF32_OVERRIDE");
  return !(o != nullptr && std::strcmp(o, "0") == 0);
}

int conv_out(int in, int pad, int k, int dil, int stride) {
  return (in + 2 * pad - ((k - 1) * dil + 1)) / stride + 1;
}

// The checks cuDNN documents for cudnnConvolutionForward (and the backward calls, which see the
// same geometry from the other side). `check_y`: the output tensor is given and must match.
cudnnStatus_t conv_problem(const char* fn, Conv& p, const TD* x, const FD* w, const CD* c, const TD* y, bool check_y) {
  TRY(tensor_ready(fn, x, "the input tensor descriptor (x)"));
  TRY(filter_ready(fn, w, "the filter descriptor (w)"));
  TRY(conv_ready(fn, c));
  if (check_y) TRY(tensor_ready(fn, y, "the output tensor descriptor (y)"));
  if (x->nb != 4) NOTSUP("x has %d dimensions; a 2-D convolution takes 4", x->nb);
  if (check_y && y->nb != 4) NOTSUP("y has %d dimensions; a 2-D convolution takes 4", y->nb);
  if (x->dt != w->dt || (check_y && x->dt != y->dt))
    BAD("x, w and y have different data types (%s, %s, %s)", dtype_name(x->dt), dtype_name(w->dt),
        check_y ? dtype_name(y->dt) : "-");
  const bool cfg = (x->dt == CUDNN_DATA_FLOAT && c->compute == CUDNN_DATA_FLOAT) ||
                   (x->dt == CUDNN_DATA_BFLOAT16 && c->compute == CUDNN_DATA_FLOAT) ||
                   (x->dt == CUDNN_DATA_DOUBLE && c->compute == CUDNN_DATA_DOUBLE);
  if (!cfg)
    return err(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, fn, "data type %s with compute type %s is not a supported configuration",
               dtype_name(x->dt), dtype_name(c->compute));
  const int G = c->groups;
  if (x->dims[1] != w->c * G)
    BAD("x has %d channels but the filter has %d per group and there are %d groups", x->dims[1], w->c, G);
  if (w->k % G != 0) BAD("the filter's %d output channels are not a multiple of the group count %d", w->k, G);
  const int eh = (w->h - 1) * c->dh + 1, ew = (w->w - 1) * c->dw + 1;
  if (eh > x->dims[2] + 2 * c->ph || ew > x->dims[3] + 2 * c->pw)
    BAD("the dilated filter (%dx%d) is larger than the padded input (%dx%d)", eh, ew, x->dims[2] + 2 * c->ph,
        x->dims[3] + 2 * c->pw);
  const int Ho = conv_out(x->dims[2], c->ph, w->h, c->dh, c->u), Wo = conv_out(x->dims[3], c->pw, w->w, c->dw, c->v);
  if (check_y) {
    if (y->dims[0] != x->dims[0] || y->dims[1] != w->k)
      BAD("y is [%d, %d, ...] but the batch is %d and the filter has %d output channels", y->dims[0], y->dims[1],
          x->dims[0], w->k);
    if (y->dims[2] != Ho || y->dims[3] != Wo)
      BAD("y is %dx%d spatially but the convolution gives %dx%d", y->dims[2], y->dims[3], Ho, Wo);
    p.y = *y;
  }
  p.x = *x;
  p.w = *w;
  p.c = *c;
  p.g = G;
  p.Cg = w->c;
  p.Kg = w->k / G;
  p.tf32 = tf32_allowed(*c, x->dt);
  return CUDNN_STATUS_SUCCESS;
}

// An operand as a convolution multiplies it (rounded to TF32 where the math allows).
inline double op(const Conv& p, double v) { return p.tf32 ? tf32_round(static_cast<float>(v)) : v; }
// The filter tap that meets input offset (r, s): convolution mode flips the filter.
inline int tap(const Conv& p, int r, int R) { return p.c.mode == CUDNN_CONVOLUTION ? R - 1 - r : r; }

// Calls `f(n, k, oh, ow, ci, ih, iw, fr, fs)` for every product of the convolution (input
// position inside the image only).
template <typename F>
void each_product(const Conv& p, F f) {
  const int N = p.x.dims[0], H = p.x.dims[2], W = p.x.dims[3], Ho = conv_out(H, p.c.ph, p.w.h, p.c.dh, p.c.u),
            Wo = conv_out(W, p.c.pw, p.w.w, p.c.dw, p.c.v);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < p.w.k; ++k) {
      const int grp = k / p.Kg;
      for (int oh = 0; oh < Ho; ++oh)
        for (int ow = 0; ow < Wo; ++ow)
          for (int c = 0; c < p.Cg; ++c)
            for (int r = 0; r < p.w.h; ++r) {
              const int ih = oh * p.c.u - p.c.ph + r * p.c.dh;
              if (ih < 0 || ih >= H) continue;
              for (int s = 0; s < p.w.w; ++s) {
                const int iw = ow * p.c.v - p.c.pw + s * p.c.dw;
                if (iw < 0 || iw >= W) continue;
                f(n, k, oh, ow, grp * p.Cg + c, ih, iw, c, tap(p, r, p.w.h), tap(p, s, p.w.w));
              }
            }
    }
}

void conv_forward_naive(const Conv& p, const void* x, const void* w, void* y, Scale s) {
  const int N = p.y.dims[0], K = p.y.dims[1], Ho = p.y.dims[2], Wo = p.y.dims[3];
  std::vector<double> acc(static_cast<size_t>(N) * K * Ho * Wo, 0.0);
  each_product(p, [&](int n, int k, int oh, int ow, int ci, int ih, int iw, int c, int r, int sx) {
    acc[((static_cast<size_t>(n) * K + k) * Ho + oh) * Wo + ow] +=
        op(p, load(x, off4(p.x, n, ci, ih, iw), p.x.dt)) * op(p, load(w, foff(p.w, k, c, r, sx), p.w.dt));
  });
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k)
      for (int oh = 0; oh < Ho; ++oh)
        for (int ow = 0; ow < Wo; ++ow)
          blend(y, off4(p.y, n, k, oh, ow), p.y.dt, s, acc[((static_cast<size_t>(n) * K + k) * Ho + oh) * Wo + ow]);
}

void conv_bwd_filter_naive(const Conv& p, const void* x, const void* dy, void* dw, Scale s) {
  std::vector<double> acc(static_cast<size_t>(p.w.k) * p.w.c * p.w.h * p.w.w, 0.0);
  each_product(p, [&](int n, int k, int oh, int ow, int ci, int ih, int iw, int c, int r, int sx) {
    acc[foff(p.w, k, c, r, sx)] +=
        op(p, load(x, off4(p.x, n, ci, ih, iw), p.x.dt)) * op(p, load(dy, off4(p.y, n, k, oh, ow), p.y.dt));
  });
  for (size_t i = 0; i < acc.size(); ++i) blend(dw, static_cast<int64_t>(i), p.w.dt, s, acc[i]);
}

// the dense float64 product: dgemm.h
using emu_dense::dgemm_acc;

// ---- the same convolutions as dense products ----------------------------------------------------
// The naive loops above, computed as im2col + the product of dgemm_acc: per image and group, the
// input is gathered (rounded as `op` does) into a float64 matrix whose rows are (c, r, s) — r, s
// the input offsets, whose filter tap is tap() — and whose columns are output positions; a
// position outside the image gets 0. Forward and filter gradient add their products in the
// naive order (c, r, s for y; n, oh, ow for dw), so they give the same sums, except that a zero
// padding entry adds an exact 0 product where the naive loop skips it: the same sum unless the
// other operand is not finite (0 * inf = NaN), so those cases take the naive loop. The data
// gradient sums W^T dy per (c, r, s, position) first, then adds those into dx (col2im): the same
// products in a different float64 order.
struct Geo {
  int N, H, W, Ho, Wo, R, S;
  int64_t KK, P;
};
Geo geo(const Conv& p) {
  Geo g;
  g.N = p.x.dims[0];
  g.H = p.x.dims[2];
  g.W = p.x.dims[3];
  g.R = p.w.h;
  g.S = p.w.w;
  g.Ho = conv_out(g.H, p.c.ph, g.R, p.c.dh, p.c.u);
  g.Wo = conv_out(g.W, p.c.pw, g.S, p.c.dw, p.c.v);
  g.KK = static_cast<int64_t>(p.Cg) * g.R * g.S;
  g.P = static_cast<int64_t>(g.Ho) * g.Wo;
  return g;
}
// The group's filter as Kg rows of (c, r, s), rounded; false if any entry is not finite.
bool filter_matrix(const Conv& p, const Geo& g, const void* w, int grp, std::vector<double>& m) {
  m.assign(static_cast<size_t>(p.Kg) * g.KK, 0.0);
  bool finite = true;
  for (int k = 0; k < p.Kg; ++k)
    for (int c = 0; c < p.Cg; ++c)
      for (int r = 0; r < g.R; ++r)
        for (int s = 0; s < g.S; ++s) {
          const double v = op(p, load(w, foff(p.w, grp * p.Kg + k, c, tap(p, r, g.R), tap(p, s, g.S)), p.w.dt));
          if (!std::isfinite(v)) finite = false;
          m[static_cast<size_t>(k) * g.KK + (static_cast<int64_t>(c) * g.R + r) * g.S + s] = v;
        }
  return finite;
}
// Image n's input for group grp as (c, r, s) x position, or transposed (position x (c, r, s)).
void im2col(const Conv& p, const Geo& g, const void* x, int n, int grp, bool transposed, std::vector<double>& col) {
  col.assign(static_cast<size_t>(g.KK * g.P), 0.0);
  for (int c = 0; c < p.Cg; ++c)
    for (int r = 0; r < g.R; ++r)
      for (int s = 0; s < g.S; ++s) {
        const int64_t row = (static_cast<int64_t>(c) * g.R + r) * g.S + s;
        for (int oh = 0; oh < g.Ho; ++oh) {
          const int ih = oh * p.c.u - p.c.ph + r * p.c.dh;
          if (ih < 0 || ih >= g.H) continue;
          for (int ow = 0; ow < g.Wo; ++ow) {
            const int iw = ow * p.c.v - p.c.pw + s * p.c.dw;
            if (iw < 0 || iw >= g.W) continue;
            const int64_t pos = static_cast<int64_t>(oh) * g.Wo + ow;
            const double v = op(p, load(x, off4(p.x, n, grp * p.Cg + c, ih, iw), p.x.dt));
            col[static_cast<size_t>(transposed ? pos * g.KK + row : row * g.P + pos)] = v;
          }
        }
      }
}
// dy of image n, group grp, as Kg rows of positions, rounded; false if any entry is not finite.
bool dy_matrix(const Conv& p, const Geo& g, const void* dy, int n, int grp, std::vector<double>& m) {
  m.assign(static_cast<size_t>(p.Kg * g.P), 0.0);
  bool finite = true;
  for (int k = 0; k < p.Kg; ++k)
    for (int oh = 0; oh < g.Ho; ++oh)
      for (int ow = 0; ow < g.Wo; ++ow) {
        const double v = op(p, load(dy, off4(p.y, n, grp * p.Kg + k, oh, ow), p.y.dt));
        if (!std::isfinite(v)) finite = false;
        m[static_cast<size_t>(k * g.P + static_cast<int64_t>(oh) * g.Wo + ow)] = v;
      }
  return finite;
}

void conv_forward_work(const Conv& p, const void* x, const void* w, void* y, Scale s) {
  const Geo g = geo(p);
  const int K = p.y.dims[1];
  std::vector<std::vector<double>> wm(p.g);
  for (int grp = 0; grp < p.g; ++grp)
    if (!filter_matrix(p, g, w, grp, wm[grp])) return conv_forward_naive(p, x, w, y, s);
  std::vector<double> acc(static_cast<size_t>(g.N) * K * g.P, 0.0), col;
  for (int n = 0; n < g.N; ++n)
    for (int grp = 0; grp < p.g; ++grp) {
      im2col(p, g, x, n, grp, false, col);
      dgemm_acc(p.Kg, g.P, g.KK, wm[grp].data(), g.KK, col.data(), g.P,
                acc.data() + (static_cast<size_t>(n) * K + static_cast<size_t>(grp) * p.Kg) * g.P, g.P);
    }
  for (int n = 0; n < g.N; ++n)
    for (int k = 0; k < K; ++k)
      for (int oh = 0; oh < g.Ho; ++oh)
        for (int ow = 0; ow < g.Wo; ++ow)
          blend(y, off4(p.y, n, k, oh, ow), p.y.dt, s, acc[((static_cast<size_t>(n) * K + k) * g.Ho + oh) * g.Wo + ow]);
}

void conv_bwd_data_work(const Conv& p, const void* w, const void* dy, void* dx, Scale s) {
  const Geo g = geo(p);
  const int C = p.x.dims[1];
  // the filter transposed: (c, r, s) rows of Kg
  std::vector<std::vector<double>> wt(p.g);
  std::vector<double> wm;
  for (int grp = 0; grp < p.g; ++grp) {
    filter_matrix(p, g, w, grp, wm);
    wt[grp].resize(wm.size());
    for (int k = 0; k < p.Kg; ++k)
      for (int64_t j = 0; j < g.KK; ++j) wt[grp][static_cast<size_t>(j * p.Kg + k)] = wm[static_cast<size_t>(k * g.KK + j)];
  }
  std::vector<double> acc(static_cast<size_t>(g.N) * C * g.H * g.W, 0.0), dym, dcol;
  for (int n = 0; n < g.N; ++n)
    for (int grp = 0; grp < p.g; ++grp) {
      dy_matrix(p, g, dy, n, grp, dym);
      dcol.assign(static_cast<size_t>(g.KK * g.P), 0.0);
      dgemm_acc(g.KK, g.P, p.Kg, wt[grp].data(), p.Kg, dym.data(), g.P, dcol.data(), g.P);
      for (int c = 0; c < p.Cg; ++c) {
        double* plane = acc.data() + (static_cast<size_t>(n) * C + static_cast<size_t>(grp) * p.Cg + c) * g.H * g.W;
        for (int r = 0; r < g.R; ++r)
          for (int ss = 0; ss < g.S; ++ss) {
            const double* row = dcol.data() + ((static_cast<int64_t>(c) * g.R + r) * g.S + ss) * g.P;
            for (int oh = 0; oh < g.Ho; ++oh) {
              const int ih = oh * p.c.u - p.c.ph + r * p.c.dh;
              if (ih < 0 || ih >= g.H) continue;
              for (int ow = 0; ow < g.Wo; ++ow) {
                const int iw = ow * p.c.v - p.c.pw + ss * p.c.dw;
                if (iw < 0 || iw >= g.W) continue;
                plane[static_cast<size_t>(ih) * g.W + iw] += row[static_cast<int64_t>(oh) * g.Wo + ow];
              }
            }
          }
      }
    }
  for (int n = 0; n < g.N; ++n)
    for (int c = 0; c < C; ++c)
      for (int h = 0; h < g.H; ++h)
        for (int ww = 0; ww < g.W; ++ww)
          blend(dx, off4(p.x, n, c, h, ww), p.x.dt, s, acc[((static_cast<size_t>(n) * C + c) * g.H + h) * g.W + ww]);
}

void conv_bwd_filter_work(const Conv& p, const void* x, const void* dy, void* dw, Scale s) {
  const Geo g = geo(p);
  std::vector<std::vector<double>> dym(static_cast<size_t>(g.N) * p.g);
  for (int n = 0; n < g.N; ++n)
    for (int grp = 0; grp < p.g; ++grp)
      if (!dy_matrix(p, g, dy, n, grp, dym[static_cast<size_t>(n) * p.g + grp])) return conv_bwd_filter_naive(p, x, dy, dw, s);
  std::vector<double> acc(static_cast<size_t>(p.w.k) * p.w.c * p.w.h * p.w.w, 0.0), part, colt;
  for (int grp = 0; grp < p.g; ++grp) {
    part.assign(static_cast<size_t>(p.Kg * g.KK), 0.0);
    for (int n = 0; n < g.N; ++n) {
      im2col(p, g, x, n, grp, true, colt);
      dgemm_acc(p.Kg, g.KK, g.P, dym[static_cast<size_t>(n) * p.g + grp].data(), g.P, colt.data(), g.KK, part.data(), g.KK);
    }
    for (int k = 0; k < p.Kg; ++k)
      for (int c = 0; c < p.Cg; ++c)
        for (int r = 0; r < g.R; ++r)
          for (int ss = 0; ss < g.S; ++ss)
            acc[foff(p.w, grp * p.Kg + k, c, tap(p, r, g.R), tap(p, ss, g.S))] =
                part[static_cast<size_t>(k * g.KK + (static_cast<int64_t>(c) * g.R + r) * g.S + ss)];
  }
  for (size_t i = 0; i < acc.size(); ++i) blend(dw, static_cast<int64_t>(i), p.w.dt, s, acc[i]);
}

// ---- algorithms -------------------------------------------------------------------------------
enum Dir { kFwd, kBwdData, kBwdFilter };
struct Algo {
  int algo;
  bool works;  // false: reported CUDNN_STATUS_NOT_SUPPORTED
  bool deterministic;
};
const std::vector<Algo>& algos(Dir d) {
  static const std::vector<Algo> fwd = {{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, true, true},
                                        {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, true, true},
                                        {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, true, true},
                                        {CUDNN_CONVOLUTION_FWD_ALGO_FFT, false, true}};
  static const std::vector<Algo> data = {{CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, true, false},
                                         {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, true, true},
                                         {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, true, true},
                                         {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, false, true}};
  static const std::vector<Algo> filter = {{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, true, false},
                                           {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, true, true},
                                           {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, true, false},
                                           {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, false, true}};
  return d == kFwd ? fwd : d == kBwdData ? data : filter;
}
int algo_count(Dir d) {
  if (d == kFwd) return CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  if (d == kBwdData) return CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  return CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
}
// The workspace an algorithm needs for this problem: the first working one of each direction
// needs none, the others distinct nonzero sizes that grow with the problem.
size_t algo_workspace(Dir d, int index, const Conv& p) {
  const size_t e = elem_size(p.x.dt);
  const size_t patch = static_cast<size_t>(p.Cg) * p.w.h * p.w.w;
  const size_t out_sp = static_cast<size_t>(conv_out(p.x.dims[2], p.c.ph, p.w.h, p.c.dh, p.c.u)) *
                        conv_out(p.x.dims[3], p.c.pw, p.w.w, p.c.dw, p.c.v);
  switch (index) {
    case 0: return 0;
    case 1: return sizeof(int) * patch * 2 + 256 + 64 * static_cast<size_t>(d);
    default: return e * patch * out_sp + 1024 + 64 * static_cast<size_t>(d);
  }
}
uint64_t shape_hash(const Conv& p) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](int64_t v) { h = (h ^ static_cast<uint64_t>(v)) * 1099511628211ull; };
  for (int i = 0; i < 4; ++i) mix(p.x.dims[i]);
  mix(p.w.k); mix(p.w.c); mix(p.w.h); mix(p.w.w); mix(p.c.u); mix(p.c.v); mix(p.c.ph); mix(p.c.pw);
  mix(p.g); mix(p.x.dt); mix(p.w.fmt); mix(p.x.str[1] == 1);
  return h;
}

template <typename Perf>
void fill_perf(Dir d, const Conv& p, size_t budget, bool limit_budget, int requested, int* returned, Perf* perf) {
  const auto& list = algos(d);
  const uint64_t h = shape_hash(p) + static_cast<uint64_t>(d) * 7;
  std::vector<Perf> ok, bad;
  for (size_t i = 0; i < list.size(); ++i) {
    Perf r;
    std::memset(&r, 0, sizeof r);
    r.algo = static_cast<decltype(r.algo)>(list[i].algo);
    r.determinism = list[i].deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
    r.mathType = p.x.dt == CUDNN_DATA_DOUBLE ? CUDNN_DEFAULT_MATH
                 : p.c.math == CUDNN_FMA_MATH ? CUDNN_FMA_MATH
                 : p.x.dt == CUDNN_DATA_BFLOAT16 || p.tf32 ? CUDNN_TENSOR_OP_MATH
                                                           : CUDNN_DEFAULT_MATH;
    if (!list[i].works) {
      r.status = CUDNN_STATUS_NOT_SUPPORTED;
      r.time = -1.f;
      r.memory = 0;
      bad.push_back(r);
      continue;
    }
    r.memory = algo_workspace(d, static_cast<int>(i), p);
    // made-up times: which working algorithm is fastest depends on the shape
    r.time = 0.01f * static_cast<float>(1 + (i + h) % 3) + 0.001f * static_cast<float>(i);
    if (limit_budget && r.memory > budget) {
      r.status = CUDNN_STATUS_ALLOC_FAILED;
      r.time = -1.f;
      bad.push_back(r);
      continue;
    }
    r.status = CUDNN_STATUS_SUCCESS;
    ok.push_back(r);
  }
  std::sort(ok.begin(), ok.end(), [](const Perf& a, const Perf& b) { return a.time < b.time; });
  ok.insert(ok.end(), bad.begin(), bad.end());
  const int n = std::min<int>(requested, static_cast<int>(ok.size()));
  for (int i = 0; i < n; ++i) perf[i] = ok[static_cast<size_t>(i)];
  *returned = n;
}

// The algorithm's index in algos(d), or a status (and message) when it cannot run.
cudnnStatus_t algo_index(const char* fn, Dir d, int a, int* index) {
  if (a < 0 || a >= algo_count(d)) BAD("algorithm %d is not a valid enumerant", a);
  const auto& list = algos(d);
  for (size_t i = 0; i < list.size(); ++i)
    if (list[i].algo == a) {
      if (!list[i].works) NOTSUP("algorithm %d does not support this configuration", a);
      *index = static_cast<int>(i);
      return CUDNN_STATUS_SUCCESS;
    }
  NOTSUP("algorithm %d does not support this configuration", a);
}

cudnnStatus_t workspace_size(const char* fn, Dir d, const Conv& p, int a, size_t* size) {
  NULLPTR(size);
  int i = 0;
  TRY(algo_index(fn, d, a, &i));
  *size = algo_workspace(d, i, p);
  return CUDNN_STATUS_SUCCESS;
}

// Checks the workspace given to a convolution against what `a` needs.
cudnnStatus_t check_workspace(const char* fn, Dir d, const Conv& p, int a, const void* ws, size_t bytes) {
  int i = 0;
  TRY(algo_index(fn, d, a, &i));
  const size_t need_bytes = algo_workspace(d, i, p);
  if (bytes < need_bytes) BAD("the workspace (%zu bytes) is smaller than algorithm %d needs (%zu bytes)", bytes, a, need_bytes);
  if (bytes > 0 && ws == nullptr) return err(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, fn, "workSpace is null but its size is %zu", bytes);
  if (bytes > 0) need(ws, bytes, fn, "workSpace");
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t handle_ok(const char* fn, const cudnnContext* h) { return check_live(fn, h, kHandle, "handle"); }

cudnnStatus_t check_perf_args(const char* fn, int requested, const int* returned, const void* perf) {
  if (requested <= 0) BAD("requestedAlgoCount is %d", requested);
  NULLPTR(returned);
  NULLPTR(perf);
  return CUDNN_STATUS_SUCCESS;
}

// Backward data / filter see the problem from dy's side: yDesc = dy.
cudnnStatus_t conv_problem_bwd(const char* fn, Conv& p, const TD* x, const FD* w, const CD* c, const TD* dy) {
  return conv_problem(fn, p, x, w, c, dy, true);
}

// ---- generic Nd iteration (pooling / LRN / bias / AddTensor) -----------------------------------
// Calls f(idx) for every index of `dims` (nb of them), last fastest.
template <typename F>
void each_index(int nb, const int* dims, F f) {
  int idx[8] = {};
  for (int i = 0; i < nb; ++i)
    if (dims[i] <= 0) return;
  while (true) {
    f(idx);
    int i = nb - 1;
    while (i >= 0 && ++idx[i] == dims[i]) idx[i--] = 0;
    if (i < 0) return;
  }
}
int64_t offn(const TD& t, const int* idx) {
  int64_t o = 0;
  for (int i = 0; i < t.nb; ++i) o += static_cast<int64_t>(idx[i]) * t.str[i];
  return o;
}
bool same_dims(const TD& a, const TD& b) {
  if (a.nb != b.nb) return false;
  for (int i = 0; i < a.nb; ++i)
    if (a.dims[i] != b.dims[i]) return false;
  return true;
}
std::string dims_text(const TD& t) {
  std::string s = "[";
  for (int i = 0; i < t.nb; ++i) s += (i ? ", " : "") + std::to_string(t.dims[i]);
  return s + "]";
}

cudnnStatus_t set_tensor(const char* fn, TD* t, cudnnDataType_t dt, int nb, const int* dims, const int64_t* str) {
  TRY(check_live(fn, t, kTensor, "tensorDesc"));
  if (!known_dtype(dt)) BAD("dataType %d is not a valid enumerant", static_cast<int>(dt));
  if (nb < 4 || nb > 8) NOTSUP("nbDims is %d; cuDNN takes 4 to 8 (CUDNN_DIM_MAX)", nb);
  int64_t total = 1;
  for (int i = 0; i < nb; ++i) {
    if (dims[i] <= 0) BAD("dimension %d is %d; every dimension must be positive", i, dims[i]);
    if (str[i] <= 0) BAD("stride %d is %lld; every stride must be positive", i, static_cast<long long>(str[i]));
    total *= dims[i];
  }
  if (total > (int64_t{1} << 31)) NOTSUP("the tensor has %lld elements, over 2^31", static_cast<long long>(total));
  t->dt = dt;
  t->nb = nb;
  for (int i = 0; i < 8; ++i) {
    t->dims[i] = i < nb ? dims[i] : 0;
    t->str[i] = i < nb ? str[i] : 0;
  }
  t->set = true;
  return CUDNN_STATUS_SUCCESS;
}

// ---- pooling ----------------------------------------------------------------------------------
struct Pool {
  PD d;
  TD x, y;
};
cudnnStatus_t pool_problem(const char* fn, Pool& p, const PD* pd, const TD* x, const TD* y) {
  TRY(pool_ready(fn, pd));
  TRY(tensor_ready(fn, x, "xDesc"));
  TRY(tensor_ready(fn, y, "yDesc"));
  if (x->nb != 4 || y->nb != 4) NOTSUP("2-D pooling takes 4-D tensors (x has %d dimensions, y %d)", x->nb, y->nb);
  if (x->dt != y->dt) BAD("x is %s but y is %s", dtype_name(x->dt), dtype_name(y->dt));
  if (!computable(x->dt)) return err(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, fn, "data type %s", dtype_name(x->dt));
  if (pd->ph >= pd->wh || pd->pw >= pd->ww)
    return err(CUDNN_STATUS_NOT_SUPPORTED_PADDING, fn, "padding (%d, %d) is not smaller than the window (%d, %d)", pd->ph,
               pd->pw, pd->wh, pd->ww);
  const int Ho = (x->dims[2] + 2 * pd->ph - pd->wh) / pd->sh + 1, Wo = (x->dims[3] + 2 * pd->pw - pd->ww) / pd->sw + 1;
  if (x->dims[2] + 2 * pd->ph < pd->wh || x->dims[3] + 2 * pd->pw < pd->ww) BAD("the window is larger than the padded input");
  if (y->dims[0] != x->dims[0] || y->dims[1] != x->dims[1] || y->dims[2] != Ho || y->dims[3] != Wo)
    BAD("y is %s but pooling %s gives [%d, %d, %d, %d]", dims_text(*y).c_str(), dims_text(*x).c_str(), x->dims[0],
        x->dims[1], Ho, Wo);
  p.d = *pd;
  p.x = *x;
  p.y = *y;
  return CUDNN_STATUS_SUCCESS;
}
bool is_max(const PD& d) { return d.mode == CUDNN_POOLING_MAX || d.mode == CUDNN_POOLING_MAX_DETERMINISTIC; }

// Calls f(n, c, oh, ow, result, arg_h, arg_w, count) per window; for max pooling (arg_h, arg_w)
// is the chosen input (-1 when none), for average `count` is the divisor.
template <typename F>
void each_window(const Pool& p, const void* x, F f) {
  const PD& d = p.d;
  const int N = p.x.dims[0], C = p.x.dims[1], H = p.x.dims[2], W = p.x.dims[3], Ho = p.y.dims[2], Wo = p.y.dims[3];
  const bool propagate = d.nan == CUDNN_PROPAGATE_NAN;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int oh = 0; oh < Ho; ++oh)
        for (int ow = 0; ow < Wo; ++ow) {
          const int h0 = oh * d.sh - d.ph, w0 = ow * d.sw - d.pw;
          double best = -INFINITY, sum = 0;
          int bh = -1, bw = -1, valid = 0;
          bool nan_seen = false;
          for (int i = 0; i < d.wh; ++i)
            for (int j = 0; j < d.ww; ++j) {
              const int h = h0 + i, w = w0 + j;
              if (h < 0 || h >= H || w < 0 || w >= W) continue;
              const double v = load(x, off4(p.x, n, c, h, w), p.x.dt);
              ++valid;
              sum += v;
              if (std::isnan(v)) {
                if (propagate && !nan_seen) {
                  nan_seen = true;
                  best = v;
                  bh = h;
                  bw = w;
                }
                continue;
              }
              if (!nan_seen && (bh < 0 || v > best)) {
                best = v;
                bh = h;
                bw = w;
              }
            }
          if (is_max(d)) {
            f(n, c, oh, ow, best, bh, bw, 0);
          } else {
            const int count = d.mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING ? d.wh * d.ww : valid;
            f(n, c, oh, ow, count > 0 ? sum / count : 0.0, -1, -1, count);
          }
        }
}

// ---- LRN --------------------------------------------------------------------------------------
// cuDNN's window: lookBehind = floor((n - 1) / 2), lookAhead = n - lookBehind - 1, and
// D_c = k + alpha / n * sum over the window (clipped) of x^2; y = x * D^-beta.
struct Lrn {
  LD d;
  TD t[4];  // forward: x, y; backward: y, dy, x, dx
};
cudnnStatus_t lrn_problem(const char* fn, const LD* ld, cudnnLRNMode_t mode, int count, const TD* const* ts,
                          const char* const* names, Lrn& p) {
  TRY(check_live(fn, ld, kLrn, "normDesc"));
  if (mode != CUDNN_LRN_CROSS_CHANNEL_DIM1) BAD("lrnMode %d is not CUDNN_LRN_CROSS_CHANNEL_DIM1", static_cast<int>(mode));
  for (int i = 0; i < count; ++i) TRY(tensor_ready(fn, ts[i], names[i]));
  for (int i = 1; i < count; ++i) {
    if (!same_dims(*ts[0], *ts[i]))
      BAD("%s is %s but %s is %s", names[i], dims_text(*ts[i]).c_str(), names[0], dims_text(*ts[0]).c_str());
    if (ts[i]->dt != ts[0]->dt) BAD("%s is %s but %s is %s", names[i], dtype_name(ts[i]->dt), names[0], dtype_name(ts[0]->dt));
  }
  if (ts[0]->nb < 4 || ts[0]->nb > 5) NOTSUP("LRN takes 4-D or 5-D tensors, not %d-D", ts[0]->nb);
  if (!computable(ts[0]->dt)) return err(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, fn, "data type %s", dtype_name(ts[0]->dt));
  p.d = *ld;
  for (int i = 0; i < count; ++i) p.t[i] = *ts[i];
  return CUDNN_STATUS_SUCCESS;
}

// Per (all indices but the channel): the x values along the channels and the D values.
template <typename F>
void each_channel_column(const TD& t, F f) {
  int dims[8];
  std::memcpy(dims, t.dims, sizeof dims);
  dims[1] = 1;
  each_index(t.nb, dims, [&](const int* idx) { f(idx); });
}
void lrn_denominators(const LD& d, const std::vector<double>& x, std::vector<double>& D) {
  const int C = static_cast<int>(x.size());
  const int lb = static_cast<int>((d.n - 1) / 2), la = static_cast<int>(d.n) - lb - 1;
  for (int c = 0; c < C; ++c) {
    double s = 0;
    for (int j = std::max(0, c - lb); j <= std::min(C - 1, c + la); ++j) s += x[j] * x[j];
    D[c] = d.k + d.alpha / d.n * s;
  }
}

// Bias / AddTensor: whether `a` broadcasts onto `c` (each dimension equal, or 1 in a).
bool broadcasts(const TD& a, const TD& c) {
  if (a.nb != c.nb) return false;
  for (int i = 0; i < a.nb; ++i)
    if (a.dims[i] != c.dims[i] && a.dims[i] != 1) return false;
  return true;
}

}  // namespace

// =================================================================================================
// The exported functions.
// =================================================================================================
extern "C" {

size_t cudnnGetVersion(void) { return 90600; }  // 9.6.0 (docs/cuda-abi.md §A0: 90000 <= v < 100000)
size_t cudnnGetCudartVersion(void) { return 13000; }  // built against CUDA 13.0, as a cuDNN 9 for CUDA 13

const char* cudnnGetErrorString(cudnnStatus_t status) {
  switch (static_cast<int>(status)) {
    // the canonical names only (the deprecated aliases share their values)
#define ALEXNET_FAKE_NAME(name, value) \
  case value: return #name;
    ALEXNET_FAKE_NAME(CUDNN_STATUS_SUCCESS, 0)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_NOT_INITIALIZED, 1001)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH, 1002)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_BAD_PARAM, 2000)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_INVALID_VALUE, 2001)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, 2002)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH, 2008)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_NOT_SUPPORTED, 3000)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, 3003)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_NOT_SUPPORTED_PADDING, 3011)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_INTERNAL_ERROR, 4000)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, 4003)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_EXECUTION_FAILED, 5000)
    ALEXNET_FAKE_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDART, 5003)
#undef ALEXNET_FAKE_NAME
    default: break;
  }
  switch (cudnn_status_category(status)) {
    case 1000: return "CUDNN_STATUS_NOT_INITIALIZED (category)";
    case 2000: return "CUDNN_STATUS_BAD_PARAM (category)";
    case 3000: return "CUDNN_STATUS_NOT_SUPPORTED (category)";
    case 4000: return "CUDNN_STATUS_INTERNAL_ERROR (category)";
    case 5000: return "CUDNN_STATUS_EXECUTION_FAILED (category)";
    default: return "CUDNN_STATUS_UNKNOWN";
  }
}

void cudnnGetLastErrorString(char* message, size_t max_size) {
  if (message == nullptr || max_size == 0) return;
  const size_t n = std::min(max_size - 1, t_last_error.size());
  std::memcpy(message, t_last_error.data(), n);
  message[n] = '\0';
  t_last_error.clear();  // read once, as cuDNN's per-thread message
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) { return create("cudnnCreate", handle, kHandle); }
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) { return destroy("cudnnDestroy", handle, kHandle); }
cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
  const char* fn = "cudnnSetStream";
  TRY(handle_ok(fn, handle));
  handle->stream = streamId;
  return CUDNN_STATUS_SUCCESS;
}

// ---- tensor descriptors ----
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) {
  return create("cudnnCreateTensorDescriptor", d, kTensor);
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
  return destroy("cudnnDestroyTensorDescriptor", d, kTensor);
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t dt,
                                         int n, int c, int h, int w) {
  const char* fn = "cudnnSetTensor4dDescriptor";
  TRY(check_live(fn, d, kTensor, "tensorDesc"));
  const int dims[4] = {n, c, h, w};
  for (int i = 0; i < 4; ++i)
    if (dims[i] <= 0) BAD("dimension %d is %d; n, c, h, w must be positive", i, dims[i]);
  int64_t str[4];
  if (format == CUDNN_TENSOR_NCHW) {
    str[3] = 1; str[2] = w; str[1] = int64_t{h} * w; str[0] = int64_t{c} * h * w;
  } else if (format == CUDNN_TENSOR_NHWC) {
    str[1] = 1; str[3] = c; str[2] = int64_t{w} * c; str[0] = int64_t{h} * w * c;
  } else if (format == CUDNN_TENSOR_NCHW_VECT_C) {
    NOTSUP("CUDNN_TENSOR_NCHW_VECT_C is not modelled (it needs INT8x4 / INT8x32 data)");
  } else {
    BAD("format %d is not a valid enumerant", static_cast<int>(format));
  }
  return set_tensor(fn, d, dt, 4, dims, str);
}
cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t d, cudnnDataType_t dt, int n, int c, int h, int w,
                                           int nStride, int cStride, int hStride, int wStride) {
  const int dims[4] = {n, c, h, w};
  const int64_t str[4] = {nStride, cStride, hStride, wStride};
  return set_tensor("cudnnSetTensor4dDescriptorEx", d, dt, 4, dims, str);
}
cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t d, cudnnDataType_t dt, int nbDims, const int dimA[],
                                         const int strideA[]) {
  const char* fn = "cudnnSetTensorNdDescriptor";
  TRY(check_live(fn, d, kTensor, "tensorDesc"));
  NULLPTR(dimA);
  NULLPTR(strideA);
  if (nbDims < 4 || nbDims > 8) NOTSUP("nbDims is %d; cuDNN takes 4 to 8 (CUDNN_DIM_MAX)", nbDims);
  int64_t str[8];
  for (int i = 0; i < nbDims; ++i) str[i] = strideA[i];
  return set_tensor(fn, d, dt, nbDims, dimA, str);
}

// ---- filter descriptors ----
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) {
  return create("cudnnCreateFilterDescriptor", d, kFilter);
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
  return destroy("cudnnDestroyFilterDescriptor", d, kFilter);
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t dt, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  const char* fn = "cudnnSetFilter4dDescriptor";
  TRY(check_live(fn, d, kFilter, "filterDesc"));
  if (!known_dtype(dt)) BAD("dataType %d is not a valid enumerant", static_cast<int>(dt));
  if (format == CUDNN_TENSOR_NCHW_VECT_C) NOTSUP("CUDNN_TENSOR_NCHW_VECT_C is not modelled");
  if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
    BAD("format %d is not a valid enumerant", static_cast<int>(format));
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0) BAD("k, c, h, w must be positive (got %d, %d, %d, %d)", k, c, h, w);
  d->dt = dt;
  d->fmt = format;
  d->k = k;
  d->c = c;
  d->h = h;
  d->w = w;
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}

// ---- convolution descriptors ----
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) {
  return create("cudnnCreateConvolutionDescriptor", d, kConv);
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
  return destroy("cudnnDestroyConvolutionDescriptor", d, kConv);
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
  const char* fn = "cudnnSetConvolution2dDescriptor";
  TRY(check_live(fn, d, kConv, "convDesc"));
  if (pad_h < 0 || pad_w < 0) BAD("padding (%d, %d) is negative", pad_h, pad_w);
  if (u <= 0 || v <= 0) BAD("the stride (%d, %d) must be positive", u, v);
  if (dilation_h <= 0 || dilation_w <= 0) BAD("the dilation (%d, %d) must be positive", dilation_h, dilation_w);
  if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) BAD("mode %d is not a valid enumerant", static_cast<int>(mode));
  if (!known_dtype(computeType)) BAD("computeType %d is not a valid enumerant", static_cast<int>(computeType));
  d->ph = pad_h;
  d->pw = pad_w;
  d->u = u;
  d->v = v;
  d->dh = dilation_h;
  d->dw = dilation_w;
  d->mode = mode;
  d->compute = computeType;
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groupCount) {
  const char* fn = "cudnnSetConvolutionGroupCount";
  TRY(check_live(fn, d, kConv, "convDesc"));
  if (groupCount < 1) BAD("groupCount is %d", groupCount);
  d->groups = groupCount;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t mathType) {
  const char* fn = "cudnnSetConvolutionMathType";
  TRY(check_live(fn, d, kConv, "convDesc"));
  if (mathType < CUDNN_DEFAULT_MATH || mathType > CUDNN_FMA_MATH) BAD("mathType %d is not a valid enumerant", static_cast<int>(mathType));
  d->math = mathType;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t convDesc,
                                                    const cudnnTensorDescriptor_t inputTensorDesc,
                                                    const cudnnFilterDescriptor_t filterDesc, int* n, int* c, int* h,
                                                    int* w) {
  const char* fn = "cudnnGetConvolution2dForwardOutputDim";
  NULLPTR(n);
  NULLPTR(c);
  NULLPTR(h);
  NULLPTR(w);
  Conv p;
  TRY(conv_problem(fn, p, inputTensorDesc, filterDesc, convDesc, nullptr, false));
  *n = p.x.dims[0];
  *c = p.w.k;
  *h = conv_out(p.x.dims[2], p.c.ph, p.w.h, p.c.dh, p.c.u);
  *w = conv_out(p.x.dims[3], p.c.pw, p.w.w, p.c.dw, p.c.v);
  return CUDNN_STATUS_SUCCESS;
}

// ---- convolution forward ----
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
                                                     const cudnnFilterDescriptor_t filterDesc,
                                                     const cudnnConvolutionDescriptor_t convDesc,
                                                     const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount,
                                                     int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perfResults) {
  const char* fn = "cudnnGetConvolutionForwardAlgorithm_v7";
  TRY(handle_ok(fn, handle));
  Conv p;
  TRY(conv_problem(fn, p, srcDesc, filterDesc, convDesc, destDesc, true));
  TRY(check_perf_args(fn, requestedAlgoCount, returnedAlgoCount, perfResults));
  fill_perf(kFwd, p, 0, false, requestedAlgoCount, returnedAlgoCount, perfResults);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                      const cudnnFilterDescriptor_t wDesc,
                                                      const cudnnConvolutionDescriptor_t convDesc,
                                                      const cudnnTensorDescriptor_t yDesc, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t* sizeInBytes) {
  const char* fn = "cudnnGetConvolutionForwardWorkspaceSize";
  TRY(handle_ok(fn, handle));
  Conv p;
  TRY(conv_problem(fn, p, xDesc, wDesc, convDesc, yDesc, true));
  return workspace_size(fn, kFwd, p, algo, sizeInBytes);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                      const void* x, const cudnnFilterDescriptor_t wDesc, const void* w,
                                      const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo,
                                      void* workSpace, size_t workSpaceSizeInBytes, const void* beta,
                                      const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* fn = "cudnnConvolutionForward";
  TRY(handle_ok(fn, handle));
  NULLPTR(alpha);
  NULLPTR(beta);
  NULLPTR(x);
  NULLPTR(w);
  NULLPTR(y);
  Conv p;
  TRY(conv_problem(fn, p, xDesc, wDesc, convDesc, yDesc, true));
  TRY(check_workspace(fn, kFwd, p, algo, workSpace, workSpaceSizeInBytes));
  need(x, tensor_bytes(p.x), fn, "x");
  need(w, filter_bytes(p.w), fn, "w");
  need(y, tensor_bytes(p.y), fn, "y");
  const Scale s = read_scale(alpha, beta, p.x.dt);
  emu::enqueue(handle->stream, fn, [p, s, x, w, y, workSpace, workSpaceSizeInBytes] {
    scribble(workSpace, workSpaceSizeInBytes);
    conv_forward_work(p, x, w, y, s);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                     const void* x, const cudnnFilterDescriptor_t wDesc, const void* w,
                                                     const cudnnConvolutionDescriptor_t convDesc,
                                                     const cudnnTensorDescriptor_t yDesc, void* y,
                                                     const int requestedAlgoCount, int* returnedAlgoCount,
                                                     cudnnConvolutionFwdAlgoPerf_t* perfResults, void* workSpace,
                                                     size_t workSpaceSizeInBytes) {
  const char* fn = "cudnnFindConvolutionForwardAlgorithmEx";
  TRY(handle_ok(fn, handle));
  NULLPTR(x);
  NULLPTR(w);
  NULLPTR(y);
  Conv p;
  TRY(conv_problem(fn, p, xDesc, wDesc, convDesc, yDesc, true));
  TRY(check_perf_args(fn, requestedAlgoCount, returnedAlgoCount, perfResults));
  if (workSpaceSizeInBytes > 0 && workSpace == nullptr)
    return err(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, fn, "workSpace is null but its size is %zu", workSpaceSizeInBytes);
  if (emu::capturing(handle->stream))
    return err(CUDNN_STATUS_EXECUTION_FAILED_CUDART, fn, "the stream is being captured: a search synchronizes and times kernels");
  need(x, tensor_bytes(p.x), fn, "x");
  need(w, filter_bytes(p.w), fn, "w");
  need(y, tensor_bytes(p.y), fn, "y");
  if (workSpaceSizeInBytes > 0) need(workSpace, workSpaceSizeInBytes, fn, "workSpace");
  fill_perf(kFwd, p, workSpaceSizeInBytes, true, requestedAlgoCount, returnedAlgoCount, perfResults);
  size_t used = 0;
  for (int i = 0; i < *returnedAlgoCount; ++i)
    if (perfResults[i].status == CUDNN_STATUS_SUCCESS) used = std::max(used, perfResults[i].memory);
  const Scale s;  // the search writes y (alpha 1, beta 0)
  emu::enqueue(handle->stream, fn, [p, s, x, w, y, workSpace, used] {
    scribble(workSpace, used);
    conv_forward_work(p, x, w, y, s);
  });
  return CUDNN_STATUS_SUCCESS;
}

// ---- convolution backward data ----
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc,
                                                          const cudnnTensorDescriptor_t diffDesc,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnTensorDescriptor_t gradDesc,
                                                          const int requestedAlgoCount, int* returnedAlgoCount,
                                                          cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
  const char* fn = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
  TRY(handle_ok(fn, handle));
  Conv p;
  TRY(conv_problem_bwd(fn, p, gradDesc, filterDesc, convDesc, diffDesc));
  TRY(check_perf_args(fn, requestedAlgoCount, returnedAlgoCount, perfResults));
  fill_perf(kBwdData, p, 0, false, requestedAlgoCount, returnedAlgoCount, perfResults);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                           const cudnnTensorDescriptor_t dyDesc,
                                                           const cudnnConvolutionDescriptor_t convDesc,
                                                           const cudnnTensorDescriptor_t dxDesc,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t* sizeInBytes) {
  const char* fn = "cudnnGetConvolutionBackwardDataWorkspaceSize";
  TRY(handle_ok(fn, handle));
  Conv p;
  TRY(conv_problem_bwd(fn, p, dxDesc, wDesc, convDesc, dyDesc));
  return workspace_size(fn, kBwdData, p, algo, sizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha, const cudnnFilterDescriptor_t wDesc,
                                           const void* w, const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                           size_t workSpaceSizeInBytes, const void* beta,
                                           const cudnnTensorDescriptor_t dxDesc, void* dx) {
  const char* fn = "cudnnConvolutionBackwardData";
  TRY(handle_ok(fn, handle));
  NULLPTR(alpha);
  NULLPTR(beta);
  NULLPTR(w);
  NULLPTR(dy);
  NULLPTR(dx);
  Conv p;
  TRY(conv_problem_bwd(fn, p, dxDesc, wDesc, convDesc, dyDesc));
  TRY(check_workspace(fn, kBwdData, p, algo, workSpace, workSpaceSizeInBytes));
  need(w, filter_bytes(p.w), fn, "w");
  need(dy, tensor_bytes(p.y), fn, "dy");
  need(dx, tensor_bytes(p.x), fn, "dx");
  const Scale s = read_scale(alpha, beta, p.x.dt);
  emu::enqueue(handle->stream, fn, [p, s, w, dy, dx, workSpace, workSpaceSizeInBytes] {
    scribble(workSpace, workSpaceSizeInBytes);
    conv_bwd_data_work(p, w, dy, dx, s);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                          const void* w, const cudnnTensorDescriptor_t dyDesc,
                                                          const void* dy, const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnTensorDescriptor_t dxDesc, void* dx,
                                                          const int requestedAlgoCount, int* returnedAlgoCount,
                                                          cudnnConvolutionBwdDataAlgoPerf_t* perfResults,
                                                          void* workSpace, size_t workSpaceSizeInBytes) {
  const char* fn = "cudnnFindConvolutionBackwardDataAlgorithmEx";
  TRY(handle_ok(fn, handle));
  NULLPTR(w);
  NULLPTR(dy);
  NULLPTR(dx);
  Conv p;
  TRY(conv_problem_bwd(fn, p, dxDesc, wDesc, convDesc, dyDesc));
  TRY(check_perf_args(fn, requestedAlgoCount, returnedAlgoCount, perfResults));
  if (workSpaceSizeInBytes > 0 && workSpace == nullptr)
    return err(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, fn, "workSpace is null but its size is %zu", workSpaceSizeInBytes);
  if (emu::capturing(handle->stream))
    return err(CUDNN_STATUS_EXECUTION_FAILED_CUDART, fn, "the stream is being captured: a search synchronizes and times kernels");
  need(w, filter_bytes(p.w), fn, "w");
  need(dy, tensor_bytes(p.y), fn, "dy");
  need(dx, tensor_bytes(p.x), fn, "dx");
  if (workSpaceSizeInBytes > 0) need(workSpace, workSpaceSizeInBytes, fn, "workSpace");
  fill_perf(kBwdData, p, workSpaceSizeInBytes, true, requestedAlgoCount, returnedAlgoCount, perfResults);
  size_t used = 0;
  for (int i = 0; i < *returnedAlgoCount; ++i)
    if (perfResults[i].status == CUDNN_STATUS_SUCCESS) used = std::max(used, perfResults[i].memory);
  const Scale s;
  emu::enqueue(handle->stream, fn, [p, s, w, dy, dx, workSpace, used] {
    scribble(workSpace, used);
    conv_bwd_data_work(p, w, dy, dx, s);
  });
  return CUDNN_STATUS_SUCCESS;
}

// ---- convolution backward filter ----
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
                                                            const cudnnTensorDescriptor_t diffDesc,
                                                            const cudnnConvolutionDescriptor_t convDesc,
                                                            const cudnnFilterDescriptor_t gradDesc,
                                                            const int requestedAlgoCount, int* returnedAlgoCount,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
  const char* fn = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
  TRY(handle_ok(fn, handle));
  Conv p;
  TRY(conv_problem_bwd(fn, p, srcDesc, gradDesc, convDesc, diffDesc));
  TRY(check_perf_args(fn, requestedAlgoCount, returnedAlgoCount, perfResults));
  fill_perf(kBwdFilter, p, 0, false, requestedAlgoCount, returnedAlgoCount, perfResults);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                             const cudnnTensorDescriptor_t dyDesc,
                                                             const cudnnConvolutionDescriptor_t convDesc,
                                                             const cudnnFilterDescriptor_t gradDesc,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t* sizeInBytes) {
  const char* fn = "cudnnGetConvolutionBackwardFilterWorkspaceSize";
  TRY(handle_ok(fn, handle));
  Conv p;
  TRY(conv_problem_bwd(fn, p, xDesc, gradDesc, convDesc, dyDesc));
  return workspace_size(fn, kBwdFilter, p, algo, sizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                             const void* x, const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                             size_t workSpaceSizeInBytes, const void* beta,
                                             const cudnnFilterDescriptor_t dwDesc, void* dw) {
  const char* fn = "cudnnConvolutionBackwardFilter";
  TRY(handle_ok(fn, handle));
  NULLPTR(alpha);
  NULLPTR(beta);
  NULLPTR(x);
  NULLPTR(dy);
  NULLPTR(dw);
  Conv p;
  TRY(conv_problem_bwd(fn, p, xDesc, dwDesc, convDesc, dyDesc));
  TRY(check_workspace(fn, kBwdFilter, p, algo, workSpace, workSpaceSizeInBytes));
  need(x, tensor_bytes(p.x), fn, "x");
  need(dy, tensor_bytes(p.y), fn, "dy");
  need(dw, filter_bytes(p.w), fn, "dw");
  const Scale s = read_scale(alpha, beta, p.x.dt);
  emu::enqueue(handle->stream, fn, [p, s, x, dy, dw, workSpace, workSpaceSizeInBytes] {
    scribble(workSpace, workSpaceSizeInBytes);
    conv_bwd_filter_work(p, x, dy, dw, s);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                            const void* x, const cudnnTensorDescriptor_t dyDesc,
                                                            const void* y, const cudnnConvolutionDescriptor_t convDesc,
                                                            const cudnnFilterDescriptor_t dwDesc, void* dw,
                                                            const int requestedAlgoCount, int* returnedAlgoCount,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t* perfResults,
                                                            void* workSpace, size_t workSpaceSizeInBytes) {
  const char* fn = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
  const void* dy = y;  // cuDNN's header names it y; it is dy
  TRY(handle_ok(fn, handle));
  NULLPTR(x);
  NULLPTR(dy);
  NULLPTR(dw);
  Conv p;
  TRY(conv_problem_bwd(fn, p, xDesc, dwDesc, convDesc, dyDesc));
  TRY(check_perf_args(fn, requestedAlgoCount, returnedAlgoCount, perfResults));
  if (workSpaceSizeInBytes > 0 && workSpace == nullptr)
    return err(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, fn, "workSpace is null but its size is %zu", workSpaceSizeInBytes);
  if (emu::capturing(handle->stream))
    return err(CUDNN_STATUS_EXECUTION_FAILED_CUDART, fn, "the stream is being captured: a search synchronizes and times kernels");
  need(x, tensor_bytes(p.x), fn, "x");
  need(dy, tensor_bytes(p.y), fn, "dy");
  need(dw, filter_bytes(p.w), fn, "dw");
  if (workSpaceSizeInBytes > 0) need(workSpace, workSpaceSizeInBytes, fn, "workSpace");
  fill_perf(kBwdFilter, p, workSpaceSizeInBytes, true, requestedAlgoCount, returnedAlgoCount, perfResults);
  size_t used = 0;
  for (int i = 0; i < *returnedAlgoCount; ++i)
    if (perfResults[i].status == CUDNN_STATUS_SUCCESS) used = std::max(used, perfResults[i].memory);
  const Scale s;
  emu::enqueue(handle->stream, fn, [p, s, x, dy, dw, workSpace, used] {
    scribble(workSpace, used);
    conv_bwd_filter_work(p, x, dy, dw, s);
  });
  return CUDNN_STATUS_SUCCESS;
}

// ---- bias ----
cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t dyDesc,
                                           const void* dy, const void* beta, const cudnnTensorDescriptor_t dbDesc,
                                           void* db) {
  const char* fn = "cudnnConvolutionBackwardBias";
  TRY(handle_ok(fn, handle));
  NULLPTR(alpha);
  NULLPTR(beta);
  NULLPTR(dy);
  NULLPTR(db);
  TRY(tensor_ready(fn, dyDesc, "dyDesc"));
  TRY(tensor_ready(fn, dbDesc, "dbDesc"));
  if (dyDesc->nb != dbDesc->nb) BAD("dy has %d dimensions but db %d", dyDesc->nb, dbDesc->nb);
  for (int i = 0; i < dbDesc->nb; ++i)
    if (dbDesc->dims[i] != (i == 1 ? dyDesc->dims[1] : 1))
      BAD("db is %s; it must be [1, %d, 1, ...] for dy %s", dims_text(*dbDesc).c_str(), dyDesc->dims[1],
          dims_text(*dyDesc).c_str());
  if (dyDesc->dt != dbDesc->dt) BAD("dy is %s but db is %s", dtype_name(dyDesc->dt), dtype_name(dbDesc->dt));
  if (!computable(dyDesc->dt)) return err(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, fn, "data type %s", dtype_name(dyDesc->dt));
  const TD t = *dyDesc, b = *dbDesc;
  need(dy, tensor_bytes(t), fn, "dy");
  need(db, tensor_bytes(b), fn, "db");
  const Scale s = read_scale(alpha, beta, t.dt);
  emu::enqueue(handle->stream, fn, [t, b, s, dy, db] {
    std::vector<double> acc(static_cast<size_t>(t.dims[1]), 0.0);
    each_index(t.nb, t.dims, [&](const int* idx) { acc[static_cast<size_t>(idx[1])] += load(dy, offn(t, idx), t.dt); });
    for (int c = 0; c < t.dims[1]; ++c) blend(db, c * b.str[1], b.dt, s, acc[static_cast<size_t>(c)]);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t aDesc, const void* A,
                             const void* beta, const cudnnTensorDescriptor_t cDesc, void* C) {
  const char* fn = "cudnnAddTensor";
  TRY(handle_ok(fn, handle));
  NULLPTR(alpha);
  NULLPTR(beta);
  NULLPTR(A);
  NULLPTR(C);
  TRY(tensor_ready(fn, aDesc, "aDesc"));
  TRY(tensor_ready(fn, cDesc, "cDesc"));
  if (!broadcasts(*aDesc, *cDesc))
    BAD("A %s does not broadcast onto C %s (each dimension equal or 1)", dims_text(*aDesc).c_str(), dims_text(*cDesc).c_str());
  if (aDesc->dt != cDesc->dt) BAD("A is %s but C is %s", dtype_name(aDesc->dt), dtype_name(cDesc->dt));
  if (!computable(cDesc->dt)) return err(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, fn, "data type %s", dtype_name(cDesc->dt));
  const TD a = *aDesc, c = *cDesc;
  need(A, tensor_bytes(a), fn, "A");
  need(C, tensor_bytes(c), fn, "C");
  const Scale s = read_scale(alpha, beta, c.dt);
  emu::enqueue(handle->stream, fn, [a, c, s, A, C] {
    each_index(c.nb, c.dims, [&](const int* idx) {
      int64_t ao = 0;
      for (int i = 0; i < a.nb; ++i) ao += (a.dims[i] == 1 ? 0 : idx[i]) * a.str[i];
      blend(C, offn(c, idx), c.dt, s, load(A, ao, a.dt));
    });
  });
  return CUDNN_STATUS_SUCCESS;
}

// ---- pooling ----
cudnnStatus_t cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t* d) {
  return create("cudnnCreatePoolingDescriptor", d, kPool);
}
cudnnStatus_t cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t d) {
  return destroy("cudnnDestroyPoolingDescriptor", d, kPool);
}
cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t d, cudnnPoolingMode_t mode,
                                          cudnnNanPropagation_t maxpoolingNanOpt, int windowHeight, int windowWidth,
                                          int verticalPadding, int horizontalPadding, int verticalStride,
                                          int horizontalStride) {
  const char* fn = "cudnnSetPooling2dDescriptor";
  TRY(check_live(fn, d, kPool, "poolingDesc"));
  if (mode < CUDNN_POOLING_MAX || mode > CUDNN_POOLING_MAX_DETERMINISTIC) BAD("mode %d is not a valid enumerant", static_cast<int>(mode));
  if (maxpoolingNanOpt != CUDNN_NOT_PROPAGATE_NAN && maxpoolingNanOpt != CUDNN_PROPAGATE_NAN)
    BAD("maxpoolingNanOpt %d is not a valid enumerant", static_cast<int>(maxpoolingNanOpt));
  if (windowHeight <= 0 || windowWidth <= 0) BAD("the window (%d, %d) must be positive", windowHeight, windowWidth);
  if (verticalPadding < 0 || horizontalPadding < 0) BAD("the padding (%d, %d) is negative", verticalPadding, horizontalPadding);
  if (verticalStride <= 0 || horizontalStride <= 0) BAD("the stride (%d, %d) must be positive", verticalStride, horizontalStride);
  d->mode = mode;
  d->nan = maxpoolingNanOpt;
  d->wh = windowHeight;
  d->ww = windowWidth;
  d->ph = verticalPadding;
  d->pw = horizontalPadding;
  d->sh = verticalStride;
  d->sw = horizontalStride;
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnPoolingForward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc, const void* alpha,
                                  const cudnnTensorDescriptor_t xDesc, const void* x, const void* beta,
                                  const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* fn = "cudnnPoolingForward";
  TRY(handle_ok(fn, handle));
  NULLPTR(alpha);
  NULLPTR(beta);
  NULLPTR(x);
  NULLPTR(y);
  Pool p;
  TRY(pool_problem(fn, p, poolingDesc, xDesc, yDesc));
  need(x, tensor_bytes(p.x), fn, "x");
  need(y, tensor_bytes(p.y), fn, "y");
  const Scale s = read_scale(alpha, beta, p.x.dt);
  emu::enqueue(handle->stream, fn, [p, s, x, y] {
    each_window(p, x, [&](int n, int c, int oh, int ow, double r, int, int, int) {
      blend(y, off4(p.y, n, c, oh, ow), p.y.dt, s, r);
    });
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc, const void* alpha,
                                   const cudnnTensorDescriptor_t yDesc, const void* y,
                                   const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                   const cudnnTensorDescriptor_t xDesc, const void* x, const void* beta,
                                   const cudnnTensorDescriptor_t dxDesc, void* dx) {
  const char* fn = "cudnnPoolingBackward";
  TRY(handle_ok(fn, handle));
  NULLPTR(alpha);
  NULLPTR(beta);
  NULLPTR(y);
  NULLPTR(dy);
  NULLPTR(x);
  NULLPTR(dx);
  Pool p;
  TRY(pool_problem(fn, p, poolingDesc, xDesc, yDesc));
  TRY(tensor_ready(fn, dyDesc, "dyDesc"));
  TRY(tensor_ready(fn, dxDesc, "dxDesc"));
  if (!same_dims(*dyDesc, *yDesc) || dyDesc->dt != yDesc->dt) BAD("dy %s does not match y %s", dims_text(*dyDesc).c_str(), dims_text(*yDesc).c_str());
  if (!same_dims(*dxDesc, *xDesc) || dxDesc->dt != xDesc->dt) BAD("dx %s does not match x %s", dims_text(*dxDesc).c_str(), dims_text(*xDesc).c_str());
  const TD dyd = *dyDesc, dxd = *dxDesc;
  need(y, tensor_bytes(p.y), fn, "y");
  need(dy, tensor_bytes(dyd), fn, "dy");
  need(x, tensor_bytes(p.x), fn, "x");
  need(dx, tensor_bytes(dxd), fn, "dx");
  const Scale s = read_scale(alpha, beta, p.x.dt);
  emu::enqueue(handle->stream, fn, [p, dyd, dxd, s, dy, x, dx] {
    const int N = p.x.dims[0], C = p.x.dims[1], H = p.x.dims[2], W = p.x.dims[3];
    std::vector<double> acc(static_cast<size_t>(N) * C * H * W, 0.0);
    auto at = [&](int n, int c, int h, int w) -> double& {
      return acc[((static_cast<size_t>(n) * C + c) * H + h) * W + w];
    };
    each_window(p, x, [&](int n, int c, int oh, int ow, double, int bh, int bw, int count) {
      const double g = load(dy, off4(dyd, n, c, oh, ow), dyd.dt);
      if (is_max(p.d)) {
        if (bh >= 0) at(n, c, bh, bw) += g;  // the whole gradient to one maximum (the first)
        return;
      }
      if (count == 0) return;
      const int h0 = oh * p.d.sh - p.d.ph, w0 = ow * p.d.sw - p.d.pw;
      for (int i = 0; i < p.d.wh; ++i)
        for (int j = 0; j < p.d.ww; ++j) {
          const int h = h0 + i, w = w0 + j;
          if (h >= 0 && h < H && w >= 0 && w < W) at(n, c, h, w) += g / count;
        }
    });
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c)
        for (int h = 0; h < H; ++h)
          for (int w = 0; w < W; ++w) blend(dx, off4(dxd, n, c, h, w), dxd.dt, s, at(n, c, h, w));
  });
  return CUDNN_STATUS_SUCCESS;
}

// ---- LRN ----
cudnnStatus_t cudnnCreateLRNDescriptor(cudnnLRNDescriptor_t* d) { return create("cudnnCreateLRNDescriptor", d, kLrn); }
cudnnStatus_t cudnnDestroyLRNDescriptor(cudnnLRNDescriptor_t d) { return destroy("cudnnDestroyLRNDescriptor", d, kLrn); }
cudnnStatus_t cudnnSetLRNDescriptor(cudnnLRNDescriptor_t d, unsigned lrnN, double lrnAlpha, double lrnBeta, double lrnK) {
  const char* fn = "cudnnSetLRNDescriptor";
  TRY(check_live(fn, d, kLrn, "normDesc"));
  // CUDNN_LRN_MIN_N 1, CUDNN_LRN_MAX_N 16, CUDNN_LRN_MIN_K 1e-5, CUDNN_LRN_MIN_BETA 0.01
  if (lrnN < 1 || lrnN > 16) BAD("lrnN is %u; it must be in [1, 16]", lrnN);
  if (!(lrnK >= 1e-5)) BAD("lrnK is %g; it must be at least 1e-5", lrnK);
  if (!(lrnBeta >= 0.01)) BAD("lrnBeta is %g; it must be at least 0.01", lrnBeta);
  if (!std::isfinite(lrnAlpha) || !std::isfinite(lrnBeta) || !std::isfinite(lrnK)) BAD("the parameters must be finite");
  d->n = lrnN;
  d->alpha = lrnAlpha;
  d->beta = lrnBeta;
  d->k = lrnK;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnLRNCrossChannelForward(cudnnHandle_t handle, cudnnLRNDescriptor_t normDesc, cudnnLRNMode_t lrnMode,
                                          const void* alpha, const cudnnTensorDescriptor_t xDesc, const void* x,
                                          const void* beta, const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* fn = "cudnnLRNCrossChannelForward";
  TRY(handle_ok(fn, handle));
  NULLPTR(alpha);
  NULLPTR(beta);
  NULLPTR(x);
  NULLPTR(y);
  const TD* ts[2] = {xDesc, yDesc};
  const char* names[2] = {"xDesc", "yDesc"};
  Lrn p;
  TRY(lrn_problem(fn, normDesc, lrnMode, 2, ts, names, p));
  need(x, tensor_bytes(p.t[0]), fn, "x");
  need(y, tensor_bytes(p.t[1]), fn, "y");
  const Scale s = read_scale(alpha, beta, p.t[0].dt);
  emu::enqueue(handle->stream, fn, [p, s, x, y] {
    const TD &xt = p.t[0], &yt = p.t[1];
    const int C = xt.dims[1];
    std::vector<double> xs(static_cast<size_t>(C)), D(static_cast<size_t>(C));
    each_channel_column(xt, [&](const int* base) {
      int idx[8];
      std::memcpy(idx, base, sizeof idx);
      for (int c = 0; c < C; ++c) {
        idx[1] = c;
        xs[static_cast<size_t>(c)] = load(x, offn(xt, idx), xt.dt);
      }
      lrn_denominators(p.d, xs, D);
      for (int c = 0; c < C; ++c) {
        idx[1] = c;
        blend(y, offn(yt, idx), yt.dt, s, xs[static_cast<size_t>(c)] * std::pow(D[static_cast<size_t>(c)], -p.d.beta));
      }
    });
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnLRNCrossChannelBackward(cudnnHandle_t handle, cudnnLRNDescriptor_t normDesc, cudnnLRNMode_t lrnMode,
                                           const void* alpha, const cudnnTensorDescriptor_t yDesc, const void* y,
                                           const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const cudnnTensorDescriptor_t xDesc, const void* x, const void* beta,
                                           const cudnnTensorDescriptor_t dxDesc, void* dx) {
  const char* fn = "cudnnLRNCrossChannelBackward";
  TRY(handle_ok(fn, handle));
  NULLPTR(alpha);
  NULLPTR(beta);
  NULLPTR(y);
  NULLPTR(dy);
  NULLPTR(x);
  NULLPTR(dx);
  const TD* ts[4] = {yDesc, dyDesc, xDesc, dxDesc};
  const char* names[4] = {"yDesc", "dyDesc", "xDesc", "dxDesc"};
  Lrn p;
  TRY(lrn_problem(fn, normDesc, lrnMode, 4, ts, names, p));
  need(y, tensor_bytes(p.t[0]), fn, "y");
  need(dy, tensor_bytes(p.t[1]), fn, "dy");
  need(x, tensor_bytes(p.t[2]), fn, "x");
  need(dx, tensor_bytes(p.t[3]), fn, "dx");
  const Scale s = read_scale(alpha, beta, p.t[0].dt);
  // dx_i = dy_i D_i^-beta - 2 beta alpha / n * x_i * sum_{j: i in window(j)} dy_j x_j D_j^(-beta-1)
  // (D recomputed from x in float64; y is checked but not read).
  emu::enqueue(handle->stream, fn, [p, s, dy, x, dx] {
    const TD &dyt = p.t[1], &xt = p.t[2], &dxt = p.t[3];
    const int C = xt.dims[1];
    const int lb = static_cast<int>((p.d.n - 1) / 2), la = static_cast<int>(p.d.n) - lb - 1;
    std::vector<double> xs(static_cast<size_t>(C)), gs(static_cast<size_t>(C)), D(static_cast<size_t>(C));
    each_channel_column(xt, [&](const int* base) {
      int idx[8];
      std::memcpy(idx, base, sizeof idx);
      for (int c = 0; c < C; ++c) {
        idx[1] = c;
        xs[static_cast<size_t>(c)] = load(x, offn(xt, idx), xt.dt);
        gs[static_cast<size_t>(c)] = load(dy, offn(dyt, idx), dyt.dt);
      }
      lrn_denominators(p.d, xs, D);
      for (int i = 0; i < C; ++i) {
        double sum = 0;
        for (int j = std::max(0, i - la); j <= std::min(C - 1, i + lb); ++j)
          sum += gs[static_cast<size_t>(j)] * xs[static_cast<size_t>(j)] * std::pow(D[static_cast<size_t>(j)], -p.d.beta - 1);
        const double r = gs[static_cast<size_t>(i)] * std::pow(D[static_cast<size_t>(i)], -p.d.beta) -
                         2 * p.d.beta * p.d.alpha / p.d.n * xs[static_cast<size_t>(i)] * sum;
        idx[1] = i;
        blend(dx, offn(dxt, idx), dxt.dt, s, r);
      }
    });
  });
  return CUDNN_STATUS_SUCCESS;
}

}  // extern "C"

// Every export has exactly the type the loader casts it to.
#define ALEXNET_FAKE_CHECK(name)                                                           \
  static_assert(std::is_same_v<decltype(&::name), alexnet::cuda::dnn::PFN_##name>, \
                #name " does not have the signature of cudnn_api.h");
ALEXNET_CUDNN_FUNCTIONS(ALEXNET_FAKE_CHECK)
ALEXNET_CUDNN_OPTIONAL_FUNCTIONS(ALEXNET_FAKE_CHECK)
#undef ALEXNET_FAKE_CHECK
