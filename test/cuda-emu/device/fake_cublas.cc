// A stand-in cuBLAS 13 + cuBLASLt for the emulated device (test/cuda-emu/README.md): the
// functions the CUDA backend resolves (every name in the X-lists of
// native/cuda/dynload/cublas_api.h), computed naively on the CPU, for tests only.
//
// NOT cuBLAS, and it counts for nothing in the GPU check (scripts/gpu-check.sh): it is as
// strict as cuBLAS documents its arguments to be, so that the backend's calls are checked
// before a GPU is lent, and no faster or more precise than the tests may assume.
//
// Built twice from this one file, as cuBLAS ships (libcublas depends on libcublasLt, and the
// loader, native/cuda/dynload/cublas_loader.cc, preloads libcublasLt.so.N from the same folder
// RTLD_GLOBAL and then resolves the cuBLASLt names through libcublas's own handle):
//
//   g++ -std=c++17 -O2 -fPIC -shared -DFAKE_CUBLAS_PART=2 -Wl,-soname,libcublasLt.so.13
//       -I native/cuda/dynload -I test/cuda-emu/device test/cuda-emu/device/fake_cublas.cc
//       -o DIR/libcublasLt.so.13 -LEMU -lcudaemu -Wl,-rpath,EMU
//   g++ -std=c++17 -O2 -fPIC -shared -DFAKE_CUBLAS_PART=1 -Wl,-soname,libcublas.so.13
//       -I native/cuda/dynload -I test/cuda-emu/device test/cuda-emu/device/fake_cublas.cc
//       -o DIR/libcublas.so.13 -Wl,--no-as-needed DIR/libcublasLt.so.13 -Wl,--as-needed -LEMU -lcudaemu -Wl,-rpath,EMU -Wl,-rpath,'$ORIGIN'
//
// (EMU: the folder of libcudaemu.so; DIR: the folder ALEXNET_CUBLAS_PATH names.)
// FAKE_CUBLAS_PART=3 (the default) builds both halves into one library.
//
// What it checks, at call time (the status is returned at once, as cuBLAS does):
//   - handles: null -> CUBLAS_STATUS_NOT_INITIALIZED; a destroyed or unknown handle or
//     descriptor fails the run (EMU FAIL: a use after free in the caller);
//   - cublasSgemm_v2 / cublasGemmEx: transa/transb in {N, T, C}, m, n, k >= 0,
//     lda >= max(1, rows of A as stored), the same for ldb and ldc, alpha and beta not null
//     (INVALID_VALUE); type / compute-type combinations outside cuBLAS's table for
//     cublasGemmEx, an unknown algo (NOT_SUPPORTED);
//   - cuBLASLt: attribute sizes exactly the attribute's (INVALID_VALUE), attributes this
//     stand-in does not know (INVALID_VALUE: the real library knows more), layouts whose
//     shapes do not make a product or ld < rows (INVALID_VALUE), unsupported type or epilogue
//     combinations (NOT_SUPPORTED, the heuristic then returns no algorithm), a workspace smaller
//     than the algorithm asked for (INVALID_VALUE), an algorithm from another problem
//     (INVALID_VALUE), pointers less aligned than the algorithm assumed (NOT_SUPPORTED: the
//     heuristic assumes 256-byte operands unless CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES
//     says less);
//   - every device pointer over exactly the bytes the call will touch
//     (emu::require_device_memory; for a column-major operand ld * (cols - 1) + rows elements).
// The arithmetic runs in the stream's order (emu::enqueue on the handle's stream, or
// cublasLtMatmul's), so graph capture replays it; everything it needs, alpha and beta's values
// included, is copied when the call is made.
//
// Arithmetic: naive loops accumulating in float64, rounded once to the output type (bfloat16
// to nearest even). Float32 inputs are first rounded to the precision the compute type lets
// cuBLAS use: TF32 (10 explicit mantissa bits, to nearest, ties away from zero as cvt.rna.tf32
// does) for CUBLAS_COMPUTE_32F_FAST_TF32, and for CUBLAS_COMPUTE_32F / cublasSgemm_v2 under
// CUBLAS_TF32_TENSOR_OP_MATH; bfloat16 for _FAST_16BF; float16 for _FAST_16F and under the
// deprecated CUBLAS_TENSOR_OP_MATH (which cuBLAS documents as using _FAST_16F for single
// precision). CUBLAS_DEFAULT_MATH, CUBLAS_PEDANTIC_MATH and the _PEDANTIC compute types are
// strict float32 (here: exact products, float64 sums). beta == 0 never reads C.
//
// cuBLASLt epilogues (cublasLtEpilogue_t; D = alpha op(A) op(B) + beta C, then):
//   DEFAULT: nothing. BIAS: + bias[i], one element per ROW of D (m), the bias in
//   BIAS_DATA_TYPE (default: D's type; D's type or float32 accepted). RELU: max(x, 0);
//   RELU_BIAS: bias then ReLU. BGRADA: bias[i] = sum over k of op(A)[i, p] (m elements,
//   one per row of D). BGRADB: bias[j] = sum over k of op(B)[p, j] (n elements, one per
//   column of D: "the reduction happens over the GEMM's k dimension"). The bias gradient is
//   written (never accumulated), in BIAS_DATA_TYPE (default D's type), from the inputs as
//   stored (not TF32-rounded), and is not scaled by alpha. Other real epilogues (the AUX,
//   DRELU, GELU families) -> NOT_SUPPORTED from the heuristic and cublasLtMatmul.
// Knobs (environment, read per call):
//   EMU_CUBLASLT_BGRADB_FP32=0|1 (default 1): whether BGRADA / BGRADB are offered for strict
//     float32 (COMPUTE_32F or _PEDANTIC with float32 inputs); cuBLAS does not document it
//     (docs/cuda-abi.md B9), so both of the backend's paths can be tested. 0: NOT_SUPPORTED.
//   EMU_CUBLASLT_RELU_NAN=zero|keep (default zero): what RELU makes of NaN. Not verified on a
//     GPU (docs/cuda-abi.md B9); zero is fmaxf's answer, as a CUTLASS ReLU epilogue gives.
//   EMU_CUBLAS_VERSION=M.m.p (default 13.1.1): what cublasGetProperty / cublasGetVersion_v2
//     report (to test the loader's version check).
#ifndef FAKE_CUBLAS_PART
#define FAKE_CUBLAS_PART 3  // 1: cuBLAS, 2: cuBLASLt, 3: both
#endif

#include <algorithm>
#include <cmath>
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

#include "cublas_api.h"
#include "emu_device.h"
#include "dgemm.h"

namespace b = alexnet::cuda::blas;
using b::cublasStatus_t;

namespace {

constexpr cublasStatus_t kOk = b::CUBLAS_STATUS_SUCCESS;
constexpr cublasStatus_t kInvalid = b::CUBLAS_STATUS_INVALID_VALUE;
constexpr cublasStatus_t kNotSupported = b::CUBLAS_STATUS_NOT_SUPPORTED;
constexpr cublasStatus_t kNotInitialized = b::CUBLAS_STATUS_NOT_INITIALIZED;

// ---- live objects: which pointers this library handed out, of which kind ---------------------
enum class Kind { BlasHandle, LtHandle, Desc, Layout, Pref };

std::mutex g_live_mutex;
std::unordered_map<const void*, Kind>& live() {
  static auto* m = new std::unordered_map<const void*, Kind>();  // leaked: queued work may outlive statics
  return *m;
}
void add_live(const void* p, Kind k) {
  std::lock_guard<std::mutex> lock(g_live_mutex);
  live()[p] = k;
}
void remove_live(const void* p) {
  std::lock_guard<std::mutex> lock(g_live_mutex);
  live().erase(p);
}
// A non-null pointer that is not a live object of this kind is a caller's bug (freed, or never
// made here): the real library would read freed memory.
void require_live(const void* p, Kind k, const char* fn, const char* what) {
  std::lock_guard<std::mutex> lock(g_live_mutex);
  auto it = live().find(p);
  if (it == live().end() || it->second != k) {
    const std::string msg = std::string(fn) + ": " + what + " is not a live object (destroyed, or never created)";
    emu::fail(msg.c_str());
  }
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// ---- numbers ------------------------------------------------------------------------------
uint32_t fbits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bitsf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float bf16_to_float(uint16_t h) { return bitsf(static_cast<uint32_t>(h) << 16); }
uint16_t float_to_bf16(float f) {  // to nearest even; NaN stays NaN (quieted)
  const uint32_t u = fbits(f);
  if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}
float round_tf32(float f) {  // 10 explicit mantissa bits, to nearest, ties away (cvt.rna.tf32.f32)
  if (!std::isfinite(f)) return f;
  return bitsf((fbits(f) + 0x1000u) & 0xFFFFE000u);
}
float round_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }
float half_to_float(uint16_t h) {
  _Float16 x;
  std::memcpy(&x, &h, 2);
  return static_cast<float>(x);
}
uint16_t float_to_half(float f) {
  const _Float16 x = static_cast<_Float16>(f);
  uint16_t h;
  std::memcpy(&h, &x, 2);
  return h;
}
float round_half(float f) { return half_to_float(float_to_half(f)); }

size_t type_size(b::cudaDataType_t t) {
  switch (t) {
    case b::CUDA_R_32F: return 4;
    case b::CUDA_R_64F: return 8;
    case b::CUDA_R_16F: return 2;
    case b::CUDA_R_16BF: return 2;
    case b::CUDA_R_8I: return 1;
    case b::CUDA_R_32I: return 4;
  }
  return 0;
}

double load(b::cudaDataType_t t, const void* p, int64_t i) {
  switch (t) {
    case b::CUDA_R_32F: return static_cast<const float*>(p)[i];
    case b::CUDA_R_64F: return static_cast<const double*>(p)[i];
    case b::CUDA_R_16F: return half_to_float(static_cast<const uint16_t*>(p)[i]);
    case b::CUDA_R_16BF: return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
    default: emu::fail("fake cuBLAS: load of an unsupported type");
  }
}
// One rounding from the float64 result to the output type, as the GPU rounds its float32
// accumulator once (bfloat16 and float16 via float32, as their conversions from it do).
void store(b::cudaDataType_t t, void* p, int64_t i, double v) {
  switch (t) {
    case b::CUDA_R_32F: static_cast<float*>(p)[i] = static_cast<float>(v); return;
    case b::CUDA_R_64F: static_cast<double*>(p)[i] = v; return;
    case b::CUDA_R_16F: static_cast<uint16_t*>(p)[i] = float_to_half(static_cast<float>(v)); return;
    case b::CUDA_R_16BF: static_cast<uint16_t*>(p)[i] = float_to_bf16(static_cast<float>(v)); return;
    default: emu::fail("fake cuBLAS: store of an unsupported type");
  }
}

// What float32 inputs are rounded to before the products.
enum class Prec { Exact, TF32, BF16, F16 };

// Elements spanned by a column-major matrix: ld * (cols - 1) + rows (0 when it has none).
uint64_t span_elems(int64_t rows, int64_t cols, int64_t ld) {
  if (rows <= 0 || cols <= 0) return 0;
  return static_cast<uint64_t>(ld) * static_cast<uint64_t>(cols - 1) + static_cast<uint64_t>(rows);
}
void require_span(const void* p, int64_t rows, int64_t cols, int64_t ld, b::cudaDataType_t t, const char* what) {
  const uint64_t n = span_elems(rows, cols, ld);
  if (n == 0) return;
  emu::require_device_memory(p, n * type_size(t), what);
}

// ---- the product both APIs run ---------------------------------------------------------------
struct Operand {
  const void* p = nullptr;
  b::cudaDataType_t type = b::CUDA_R_32F;
  int64_t ld = 0;
  bool trans = false;
};

enum class Bgrad { None, A, B };

struct Product {
  int64_t m = 0, n = 0, k = 0;
  Operand a, b;
  const void* c = nullptr;  // read only when beta != 0
  b::cudaDataType_t c_type = b::CUDA_R_32F;
  int64_t ldc = 0;
  void* d = nullptr;
  b::cudaDataType_t d_type = b::CUDA_R_32F;
  int64_t ldd = 0;
  double alpha = 1, beta = 0;
  Prec prec = Prec::Exact;
  // epilogue
  const void* bias = nullptr;  // added per row of D
  b::cudaDataType_t bias_type = b::CUDA_R_32F;
  bool relu = false, relu_keep_nan = false;
  Bgrad bgrad = Bgrad::None;
  void* bgrad_out = nullptr;
  b::cudaDataType_t bgrad_type = b::CUDA_R_32F;
};

double round_in(double v, b::cudaDataType_t t, Prec p) {
  if (t != b::CUDA_R_32F) return v;
  const float f = static_cast<float>(v);
  switch (p) {
    case Prec::Exact: return v;
    case Prec::TF32: return round_tf32(f);
    case Prec::BF16: return round_bf16(f);
    case Prec::F16: return round_half(f);
  }
  return v;
}

// op(X)[r, c] of a column-major operand.
double at(const Operand& o, int64_t r, int64_t c) {
  return load(o.type, o.p, o.trans ? c + r * o.ld : r + c * o.ld);
}

// the dense float64 product: dgemm.h
using emu_dense::dgemm_acc;

void run(const Product& g) {
  // op(A) as m rows of k, op(B) as k rows of n, rounded once each
  std::vector<double> a(static_cast<size_t>(g.m * g.k)), bk(static_cast<size_t>(g.k * g.n));
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t p = 0; p < g.k; ++p) a[i * g.k + p] = round_in(at(g.a, i, p), g.a.type, g.prec);
  for (int64_t p = 0; p < g.k; ++p)
    for (int64_t j = 0; j < g.n; ++j) bk[p * g.n + j] = round_in(at(g.b, p, j), g.b.type, g.prec);
  if (g.bgrad == Bgrad::A) {
    for (int64_t i = 0; i < g.m; ++i) {
      double s = 0;
      for (int64_t p = 0; p < g.k; ++p) s += at(g.a, i, p);
      store(g.bgrad_type, g.bgrad_out, i, s);
    }
  } else if (g.bgrad == Bgrad::B) {
    for (int64_t j = 0; j < g.n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < g.k; ++p) s += at(g.b, p, j);
      store(g.bgrad_type, g.bgrad_out, j, s);
    }
  }
  // the sums, each in ascending p order as the plain dot product adds them
  std::vector<double> prod(static_cast<size_t>(g.m * g.n), 0.0);
  dgemm_acc(g.m, g.n, g.k, a.data(), g.k, bk.data(), g.n, prod.data(), g.n);
  for (int64_t j = 0; j < g.n; ++j) {
    for (int64_t i = 0; i < g.m; ++i) {
      const double acc = prod[static_cast<size_t>(i * g.n + j)];
      double v = g.alpha * acc;
      if (g.beta != 0) v += g.beta * load(g.c_type, g.c, i + j * g.ldc);
      if (g.bias) v += load(g.bias_type, g.bias, i);
      if (g.relu) {
        if (std::isnan(v)) v = g.relu_keep_nan ? v : 0.0;
        else if (v < 0) v = 0.0;
      }
      store(g.d_type, g.d, i + j * g.ldd, v);
    }
  }
}

bool valid_op(int op) { return op == b::CUBLAS_OP_N || op == b::CUBLAS_OP_T || op == b::CUBLAS_OP_C; }
bool valid_type(int t) {
  return t == b::CUDA_R_32F || t == b::CUDA_R_64F || t == b::CUDA_R_16F || t == b::CUDA_R_16BF ||
         t == b::CUDA_R_8I || t == b::CUDA_R_32I;
}

// The compute types as groups: which scale type and input precision each means.
enum class Compute { F32, F32Pedantic, FastTF32, Fast16BF, Fast16F, F64, Other, Invalid };
Compute classify(int c) {
  switch (c) {
    case b::CUBLAS_COMPUTE_32F: return Compute::F32;
    case b::CUBLAS_COMPUTE_32F_PEDANTIC: return Compute::F32Pedantic;
    case b::CUBLAS_COMPUTE_32F_FAST_TF32: return Compute::FastTF32;
    case b::CUBLAS_COMPUTE_32F_FAST_16BF: return Compute::Fast16BF;
    case b::CUBLAS_COMPUTE_32F_FAST_16F: return Compute::Fast16F;
    case b::CUBLAS_COMPUTE_64F:
    case b::CUBLAS_COMPUTE_64F_PEDANTIC: return Compute::F64;
    case b::CUBLAS_COMPUTE_16F:
    case b::CUBLAS_COMPUTE_16F_PEDANTIC:
    case b::CUBLAS_COMPUTE_32I:
    case b::CUBLAS_COMPUTE_32I_PEDANTIC: return Compute::Other;  // real, not done here
  }
  return Compute::Invalid;
}

// cuBLAS's table of (compute, A/B type, C type) for cublasGemmEx / cublasLtMatmul, the part
// this stand-in computes (scale type: float32 for the 32F groups, float64 for 64F).
bool supported_types(Compute c, b::cudaDataType_t ab, b::cudaDataType_t cd) {
  switch (c) {
    case Compute::F32:
    case Compute::F32Pedantic:
      if (ab == b::CUDA_R_32F) return cd == b::CUDA_R_32F;
      if (ab == b::CUDA_R_16BF) return cd == b::CUDA_R_16BF || cd == b::CUDA_R_32F;
      if (ab == b::CUDA_R_16F) return cd == b::CUDA_R_16F || cd == b::CUDA_R_32F;
      return false;
    case Compute::FastTF32:
    case Compute::Fast16BF:
    case Compute::Fast16F: return ab == b::CUDA_R_32F && cd == b::CUDA_R_32F;
    case Compute::F64: return ab == b::CUDA_R_64F && cd == b::CUDA_R_64F;
    default: return false;
  }
}
b::cudaDataType_t scale_type_of(Compute c) { return c == Compute::F64 ? b::CUDA_R_64F : b::CUDA_R_32F; }

double read_scalar(b::cudaDataType_t t, const void* p) { return load(t, p, 0); }

}  // namespace

// =================================================================================================
// cuBLAS
// =================================================================================================
#if FAKE_CUBLAS_PART & 1

struct cublasContext {
  cudaStream_t stream = nullptr;
  int math = b::CUBLAS_DEFAULT_MATH;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

namespace {

void version(int& major, int& minor, int& patch) {
  major = 13, minor = 1, patch = 1;
  const std::string v = env("EMU_CUBLAS_VERSION");
  if (!v.empty() && std::sscanf(v.c_str(), "%d.%d.%d", &major, &minor, &patch) != 3)
    emu::fail("fake cuBLAS: EMU_CUBLAS_VERSION must be MAJOR.MINOR.PATCH");
}

// The input precision of a float32 product under the handle's math mode and the compute type.
Prec precision(const cublasContext* h, Compute c) {
  const int mode = h->math & ~b::CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  if (mode == b::CUBLAS_PEDANTIC_MATH || c == Compute::F32Pedantic) return Prec::Exact;
  switch (c) {
    case Compute::FastTF32: return Prec::TF32;
    case Compute::Fast16BF: return Prec::BF16;
    case Compute::Fast16F: return Prec::F16;
    case Compute::F32:
      if (mode == b::CUBLAS_TF32_TENSOR_OP_MATH) return Prec::TF32;
      if (mode == b::CUBLAS_TENSOR_OP_MATH) return Prec::F16;
      return Prec::Exact;
    default: return Prec::Exact;
  }
}

cublasStatus_t check_handle(cublasContext* h, const char* fn) {
  if (h == nullptr) return kNotInitialized;
  require_live(h, Kind::BlasHandle, fn, "the handle");
  return kOk;
}

// The checks cuBLAS documents for ?gemm, then the product enqueued on the handle's stream.
cublasStatus_t gemm(const char* fn, cublasContext* h, int transa, int transb, int m, int n, int k, const void* alpha,
                    const void* A, b::cudaDataType_t at, int lda, const void* B, b::cudaDataType_t bt, int ldb,
                    const void* beta, void* C, b::cudaDataType_t ct, int ldc, Compute compute, int algo) {
  if (cublasStatus_t st = check_handle(h, fn)) return st;
  if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0) return kInvalid;
  const bool ta = transa != b::CUBLAS_OP_N, tb = transb != b::CUBLAS_OP_N;
  const int a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int b_rows = tb ? n : k, b_cols = tb ? k : n;
  if (lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m)) return kInvalid;
  if (alpha == nullptr || beta == nullptr) return kInvalid;
  if (compute == Compute::Invalid || !valid_type(at) || !valid_type(bt) || !valid_type(ct)) return kInvalid;
  if (at != bt || !supported_types(compute, at, ct)) return kNotSupported;
  if (!(algo == b::CUBLAS_GEMM_DEFAULT || (algo >= 0 && algo <= 23) || (algo >= 99 && algo <= 115)))
    return kNotSupported;
  if (m == 0 || n == 0) return kOk;  // nothing to compute
  const std::string w = fn;
  require_span(A, a_rows, a_cols, lda, at, (w + ": A").c_str());
  require_span(B, b_rows, b_cols, ldb, bt, (w + ": B").c_str());
  require_span(C, m, n, ldc, ct, (w + ": C").c_str());
  Product g;
  g.m = m, g.n = n, g.k = k;
  g.a = Operand{A, at, lda, ta};
  g.b = Operand{B, bt, ldb, tb};
  g.c = C, g.c_type = ct, g.ldc = ldc;
  g.d = C, g.d_type = ct, g.ldd = ldc;
  const b::cudaDataType_t st = scale_type_of(compute);
  g.alpha = read_scalar(st, alpha);  // host scalars (the default pointer mode): read now
  g.beta = read_scalar(st, beta);
  g.prec = precision(h, compute);
  emu::enqueue(h->stream, fn, [g] { run(g); });
  return kOk;
}

}  // namespace

extern "C" {

cublasStatus_t cublasGetProperty(b::libraryPropertyType type, int* value) {
  if (value == nullptr) return kInvalid;
  int major, minor, patch;
  version(major, minor, patch);
  switch (type) {
    case b::MAJOR_VERSION: *value = major; return kOk;
    case b::MINOR_VERSION: *value = minor; return kOk;
    case b::PATCH_LEVEL: *value = patch; return kOk;
  }
  return kInvalid;
}

cublasStatus_t cublasCreate_v2(b::cublasHandle_t* handle) {
  if (handle == nullptr) return kInvalid;
  auto* h = new cublasContext();
  add_live(h, Kind::BlasHandle);
  *handle = h;
  return kOk;
}

cublasStatus_t cublasDestroy_v2(b::cublasHandle_t handle) {
  if (cublasStatus_t st = check_handle(handle, "cublasDestroy_v2")) return st;
  remove_live(handle);
  delete handle;  // queued work holds copies, never the handle
  return kOk;
}

cublasStatus_t cublasGetVersion_v2(b::cublasHandle_t handle, int* v) {
  if (cublasStatus_t st = check_handle(handle, "cublasGetVersion_v2")) return st;
  if (v == nullptr) return kInvalid;
  int major, minor, patch;
  version(major, minor, patch);
  *v = major * 10000 + minor * 100 + patch;  // CUBLAS_VERSION's scale
  return kOk;
}

cublasStatus_t cublasSetStream_v2(b::cublasHandle_t handle, cudaStream_t stream) {
  if (cublasStatus_t st = check_handle(handle, "cublasSetStream_v2")) return st;
  handle->stream = stream;
  return kOk;
}

// cuBLAS: "The workspace pointer has to be aligned to at least 256 bytes, otherwise
// CUBLAS_STATUS_INVALID_VALUE"; size 0 goes back to the library's own workspace.
cublasStatus_t cublasSetWorkspace_v2(b::cublasHandle_t handle, void* workspace, size_t bytes) {
  if (cublasStatus_t st = check_handle(handle, "cublasSetWorkspace_v2")) return st;
  if (bytes > 0) {
    if (workspace == nullptr || reinterpret_cast<uintptr_t>(workspace) % 256 != 0) return kInvalid;
    emu::require_device_memory(workspace, bytes, "cublasSetWorkspace_v2: workspace");
  }
  handle->workspace = bytes > 0 ? workspace : nullptr;
  handle->workspace_bytes = bytes;
  return kOk;
}

cublasStatus_t cublasSetMathMode(b::cublasHandle_t handle, b::cublasMath_t mode) {
  if (cublasStatus_t st = check_handle(handle, "cublasSetMathMode")) return st;
  const int base = mode & ~b::CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  if (base != b::CUBLAS_DEFAULT_MATH && base != b::CUBLAS_TENSOR_OP_MATH && base != b::CUBLAS_PEDANTIC_MATH &&
      base != b::CUBLAS_TF32_TENSOR_OP_MATH)
    return kInvalid;
  handle->math = mode;
  return kOk;
}

cublasStatus_t cublasSgemm_v2(b::cublasHandle_t handle, b::cublasOperation_t transa, b::cublasOperation_t transb, int m,
                              int n, int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                              const float* beta, float* C, int ldc) {
  return gemm("cublasSgemm_v2", handle, transa, transb, m, n, k, alpha, A, b::CUDA_R_32F, lda, B, b::CUDA_R_32F, ldb,
              beta, C, b::CUDA_R_32F, ldc, Compute::F32, b::CUBLAS_GEMM_DEFAULT);
}

cublasStatus_t cublasGemmEx(b::cublasHandle_t handle, b::cublasOperation_t transa, b::cublasOperation_t transb, int m,
                            int n, int k, const void* alpha, const void* A, b::cudaDataType Atype, int lda,
                            const void* B, b::cudaDataType Btype, int ldb, const void* beta, void* C,
                            b::cudaDataType Ctype, int ldc, b::cublasComputeType_t computeType,
                            b::cublasGemmAlgo_t algo) {
  return gemm("cublasGemmEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype,
              ldc, classify(computeType), algo);
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
#define FAKE_CUBLAS_NAME(name, value) \
  case b::name: return #name;
    ALEXNET_CUBLAS_STATUS(FAKE_CUBLAS_NAME)
#undef FAKE_CUBLAS_NAME
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case b::CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case b::CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case b::CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case b::CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case b::CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case b::CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case b::CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case b::CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case b::CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case b::CUBLAS_STATUS_LICENSE_ERROR: return "the functionality requested requires some license";
  }
  return "unknown error";
}

}  // extern "C"

#define FAKE_CUBLAS_SIGNATURE(name) \
  static_assert(std::is_same_v<decltype(&::name), b::PFN_##name>, #name " differs from cublas_api.h");
ALEXNET_CUBLAS_FUNCTIONS(FAKE_CUBLAS_SIGNATURE)
ALEXNET_CUBLAS_OPTIONAL_FUNCTIONS(FAKE_CUBLAS_SIGNATURE)
#undef FAKE_CUBLAS_SIGNATURE

#endif  // FAKE_CUBLAS_PART & 1

// =================================================================================================
// cuBLASLt
// =================================================================================================
#if FAKE_CUBLAS_PART & 2

struct cublasLtContext {
  int unused = 0;
};

namespace {

// Epilogue values of cublasLt.h (docs/cuda-abi.md B9); cublas_api.h declares the five it uses.
constexpr int kEpiDefault = 1, kEpiRelu = 2, kEpiBias = 4, kEpiReluBias = 6, kEpiBgradA = 256, kEpiBgradB = 512;
bool real_epilogue(int e) {
  switch (e) {
    case 1: case 2: case 130: case 4: case 6: case 134: case 136: case 152: case 32: case 160: case 36:
    case 164: case 192: case 208: case 256: case 512: return true;
  }
  return false;
}
bool implemented_epilogue(int e) {
  return e == kEpiDefault || e == kEpiRelu || e == kEpiBias || e == kEpiReluBias || e == kEpiBgradA ||
         e == kEpiBgradB;
}

// cublasLt.h's other attributes this stand-in accepts (not declared in cublas_api.h):
// CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_{A,B,C,D}_BYTES, uint32_t each.
constexpr int kPrefMinAlignA = 5, kPrefMinAlignD = 8;
constexpr int kPointerModeHost = 0, kPointerModeDevice = 1;

struct Desc {
  int compute = 0;
  int scale = 0;
  int32_t pointer_mode = kPointerModeHost;
  int32_t transa = b::CUBLAS_OP_N, transb = b::CUBLAS_OP_N;
  uint32_t epilogue = kEpiDefault;
  const void* bias = nullptr;
  int32_t bias_type = -1;  // -1: D's type
};
struct Layout {
  b::cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
};
struct Pref {
  uint32_t search_mode = 0;
  uint64_t max_workspace = 0;
  uint32_t min_align[4] = {256, 256, 256, 256};  // A, B, C, D
};

Desc* desc_of(b::cublasLtMatmulDesc_t d) { return reinterpret_cast<Desc*>(d); }
Layout* layout_of(b::cublasLtMatrixLayout_t l) { return reinterpret_cast<Layout*>(l); }
Pref* pref_of(b::cublasLtMatmulPreference_t p) { return reinterpret_cast<Pref*>(p); }

bool bgrad_fp32_offered() { return env("EMU_CUBLASLT_BGRADB_FP32") != "0"; }

// The problem a descriptor and four layouts describe, checked as cublasLtMatmul checks it.
struct Problem {
  Desc desc;
  Layout a, b, c, d;
  int64_t m = 0, n = 0, k = 0;
  Compute compute = Compute::Invalid;
  b::cudaDataType_t bias_type = b::CUDA_R_32F;
  uint64_t key = 0;  // what an algorithm is for
};

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

cublasStatus_t make_problem(b::cublasLtMatmulDesc_t dp, b::cublasLtMatrixLayout_t ap, b::cublasLtMatrixLayout_t bp,
                            b::cublasLtMatrixLayout_t cp, b::cublasLtMatrixLayout_t dlp, const char* fn, Problem& out) {
  if (!dp || !ap || !bp || !cp || !dlp) return kInvalid;
  require_live(dp, Kind::Desc, fn, "the matmul descriptor");
  for (auto* l : {ap, bp, cp, dlp}) require_live(l, Kind::Layout, fn, "a matrix layout");
  Problem p;
  p.desc = *desc_of(dp);
  p.a = *layout_of(ap), p.b = *layout_of(bp), p.c = *layout_of(cp), p.d = *layout_of(dlp);
  const bool ta = p.desc.transa != b::CUBLAS_OP_N, tb = p.desc.transb != b::CUBLAS_OP_N;
  p.m = static_cast<int64_t>(p.d.rows);
  p.n = static_cast<int64_t>(p.d.cols);
  p.k = static_cast<int64_t>(ta ? p.a.rows : p.a.cols);
  const uint64_t a_m = ta ? p.a.cols : p.a.rows;
  const uint64_t b_k = tb ? p.b.cols : p.b.rows, b_n = tb ? p.b.rows : p.b.cols;
  if (a_m != p.d.rows || b_k != static_cast<uint64_t>(p.k) || b_n != p.d.cols) return kInvalid;
  if (p.c.rows != p.d.rows || p.c.cols != p.d.cols) return kInvalid;
  for (const Layout* l : {&p.a, &p.b, &p.c, &p.d})
    if (l->ld < std::max<int64_t>(1, static_cast<int64_t>(l->rows))) return kInvalid;
  p.compute = classify(p.desc.compute);
  if (p.compute == Compute::Invalid) return kInvalid;
  if (p.a.type != p.b.type || p.c.type != p.d.type || !supported_types(p.compute, p.a.type, p.d.type)) return kNotSupported;
  if (p.desc.scale != scale_type_of(p.compute)) return kNotSupported;
  const int e = static_cast<int>(p.desc.epilogue);
  if (!implemented_epilogue(e)) {
    std::fprintf(stderr, "fake cuBLASLt: epilogue %d is real but not emulated: NOT_SUPPORTED\n", e);
    return kNotSupported;
  }
  if (e != kEpiDefault && p.compute == Compute::F64) return kNotSupported;
  p.bias_type = p.desc.bias_type == -1 ? p.d.type : static_cast<b::cudaDataType_t>(p.desc.bias_type);
  if (e == kEpiBias || e == kEpiReluBias || e == kEpiBgradA || e == kEpiBgradB) {
    if (p.bias_type != p.d.type && p.bias_type != b::CUDA_R_32F) return kNotSupported;
  }
  if ((e == kEpiBgradA || e == kEpiBgradB) && p.a.type == b::CUDA_R_32F &&
      (p.compute == Compute::F32 || p.compute == Compute::F32Pedantic) && !bgrad_fp32_offered())
    return kNotSupported;
  uint64_t key = 0;
  for (uint64_t v : {uint64_t(p.m), uint64_t(p.n), uint64_t(p.k), uint64_t(p.a.type), uint64_t(p.b.type),
                     uint64_t(p.c.type), uint64_t(p.d.type), uint64_t(p.desc.transa), uint64_t(p.desc.transb),
                     uint64_t(p.desc.compute), uint64_t(p.desc.scale), uint64_t(e), uint64_t(p.bias_type)})
    key = mix(key, v);
  p.key = key;
  out = p;
  return kOk;
}

// The algorithm record (cublasLtMatmulAlgo_t, 64 bytes, the caller's copy).
constexpr uint64_t kAlgoMagic = 0x454D55414C474F31ull;  // "EMUALGO1"
struct AlgoRecord {
  uint64_t magic, key, workspace, id;
  uint32_t align[5];  // A, B, C, D, bias
};
static_assert(sizeof(AlgoRecord) <= sizeof(b::cublasLtMatmulAlgo_t), "the algorithm record must fit");

uint32_t pointer_alignment(const void* p) {  // the largest power of two (<= 256) dividing p
  if (p == nullptr) return 256;
  const uintptr_t u = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 1;
  while (a < 256 && u % (a * 2) == 0) a *= 2;
  return a;
}

// The heuristic's answer: algorithm 0 uses up to 1 MiB of workspace (as split-K kernels do),
// algorithm 1 none. Both assume the preference's minimum alignments (default 256 bytes), and
// the bias pointer's alignment as the descriptor holds it now (a null one: 256).
int heuristic(const Problem& p, const Pref& pref, int requested, b::cublasLtMatmulHeuristicResult_t* out) {
  int found = 0;
  const uint64_t wants[2] = {std::min<uint64_t>(pref.max_workspace, uint64_t{1} << 20), 0};
  for (int id = 0; id < 2 && found < requested; ++id) {
    if (id == 0 && wants[0] == 0) continue;
    b::cublasLtMatmulHeuristicResult_t r{};
    AlgoRecord rec{};
    rec.magic = kAlgoMagic;
    rec.key = p.key;
    rec.workspace = wants[id];
    rec.id = static_cast<uint64_t>(id);
    for (int i = 0; i < 4; ++i) rec.align[i] = pref.min_align[i];
    rec.align[4] = pointer_alignment(p.desc.bias);
    std::memcpy(&r.algo, &rec, sizeof rec);
    r.workspaceSize = wants[id];
    r.state = kOk;
    r.wavesCount = 1.0f;
    out[found++] = r;
  }
  return found;
}

bool misaligned(const void* p, uint32_t align) {
  return p != nullptr && align > 0 && reinterpret_cast<uintptr_t>(p) % align != 0;
}

}  // namespace

extern "C" {

cublasStatus_t cublasLtCreate(b::cublasLtHandle_t* handle) {
  if (handle == nullptr) return kInvalid;
  auto* h = new cublasLtContext();
  add_live(h, Kind::LtHandle);
  *handle = h;
  return kOk;
}

cublasStatus_t cublasLtDestroy(b::cublasLtHandle_t handle) {
  if (handle == nullptr) return kNotInitialized;
  require_live(handle, Kind::LtHandle, "cublasLtDestroy", "the handle");
  remove_live(handle);
  delete handle;
  return kOk;
}

cublasStatus_t cublasLtMatmulDescCreate(b::cublasLtMatmulDesc_t* desc, b::cublasComputeType_t compute,
                                        b::cudaDataType_t scale) {
  if (desc == nullptr) return kInvalid;
  if (classify(compute) == Compute::Invalid || !valid_type(scale)) return kInvalid;
  auto* d = new Desc();
  d->compute = compute;
  d->scale = scale;
  add_live(d, Kind::Desc);
  *desc = reinterpret_cast<b::cublasLtMatmulDesc_t>(d);
  return kOk;
}

cublasStatus_t cublasLtMatmulDescDestroy(b::cublasLtMatmulDesc_t desc) {
  if (desc == nullptr) return kInvalid;
  require_live(desc, Kind::Desc, "cublasLtMatmulDescDestroy", "the descriptor");
  remove_live(desc);
  delete desc_of(desc);
  return kOk;
}

// cuBLASLt: INVALID_VALUE "if buf is NULL or sizeInBytes doesn't match the size of the internal
// storage for the selected attribute".
cublasStatus_t cublasLtMatmulDescSetAttribute(b::cublasLtMatmulDesc_t desc, b::cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t size) {
  if (desc == nullptr || buf == nullptr) return kInvalid;
  require_live(desc, Kind::Desc, "cublasLtMatmulDescSetAttribute", "the descriptor");
  Desc& d = *desc_of(desc);
  int32_t v32 = 0;
  if (size == 4) std::memcpy(&v32, buf, 4);
  switch (attr) {
    case b::CUBLASLT_MATMUL_DESC_COMPUTE_TYPE:
      if (size != 4 || classify(v32) == Compute::Invalid) return kInvalid;
      d.compute = v32;
      return kOk;
    case b::CUBLASLT_MATMUL_DESC_SCALE_TYPE:
      if (size != 4 || !valid_type(v32)) return kInvalid;
      d.scale = v32;
      return kOk;
    case b::CUBLASLT_MATMUL_DESC_POINTER_MODE:
      if (size != 4 || (v32 != kPointerModeHost && v32 != kPointerModeDevice)) return kInvalid;
      d.pointer_mode = v32;
      return kOk;
    case b::CUBLASLT_MATMUL_DESC_TRANSA:
    case b::CUBLASLT_MATMUL_DESC_TRANSB:
      if (size != 4 || !valid_op(v32)) return kInvalid;
      (attr == b::CUBLASLT_MATMUL_DESC_TRANSA ? d.transa : d.transb) = v32;
      return kOk;
    case b::CUBLASLT_MATMUL_DESC_EPILOGUE:
      if (size != 4 || !real_epilogue(v32)) return kInvalid;
      d.epilogue = static_cast<uint32_t>(v32);
      return kOk;
    case b::CUBLASLT_MATMUL_DESC_BIAS_POINTER:
      if (size != sizeof(void*)) return kInvalid;
      std::memcpy(&d.bias, buf, sizeof(void*));
      return kOk;
    case b::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
      if (size != 4 || (v32 != -1 && !valid_type(v32))) return kInvalid;
      d.bias_type = v32;
      return kOk;
  }
  return kInvalid;  // an attribute this stand-in does not know (cuBLASLt knows more)
}

cublasStatus_t cublasLtMatrixLayoutCreate(b::cublasLtMatrixLayout_t* layout, b::cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  if (layout == nullptr || !valid_type(type)) return kInvalid;
  if (rows > INT64_MAX || cols > INT64_MAX || ld < 0) return kInvalid;
  auto* l = new Layout{type, rows, cols, ld};
  add_live(l, Kind::Layout);
  *layout = reinterpret_cast<b::cublasLtMatrixLayout_t>(l);
  return kOk;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(b::cublasLtMatrixLayout_t layout) {
  if (layout == nullptr) return kInvalid;
  require_live(layout, Kind::Layout, "cublasLtMatrixLayoutDestroy", "the layout");
  remove_live(layout);
  delete layout_of(layout);
  return kOk;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(b::cublasLtMatmulPreference_t* pref) {
  if (pref == nullptr) return kInvalid;
  auto* p = new Pref();
  add_live(p, Kind::Pref);
  *pref = reinterpret_cast<b::cublasLtMatmulPreference_t>(p);
  return kOk;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(b::cublasLtMatmulPreference_t pref) {
  if (pref == nullptr) return kInvalid;
  require_live(pref, Kind::Pref, "cublasLtMatmulPreferenceDestroy", "the preference");
  remove_live(pref);
  delete pref_of(pref);
  return kOk;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(b::cublasLtMatmulPreference_t pref,
                                                    b::cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size) {
  if (pref == nullptr || buf == nullptr) return kInvalid;
  require_live(pref, Kind::Pref, "cublasLtMatmulPreferenceSetAttribute", "the preference");
  Pref& p = *pref_of(pref);
  const int a = attr;
  if (a == b::CUBLASLT_MATMUL_PREF_SEARCH_MODE) {
    if (size != sizeof(uint32_t)) return kInvalid;
    std::memcpy(&p.search_mode, buf, size);
    return kOk;
  }
  if (a == b::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
    if (size != sizeof(uint64_t)) return kInvalid;
    std::memcpy(&p.max_workspace, buf, size);
    return kOk;
  }
  if (a >= kPrefMinAlignA && a <= kPrefMinAlignD) {
    if (size != sizeof(uint32_t)) return kInvalid;
    std::memcpy(&p.min_align[a - kPrefMinAlignA], buf, size);
    return kOk;
  }
  return kInvalid;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(b::cublasLtHandle_t handle, b::cublasLtMatmulDesc_t desc,
                                              b::cublasLtMatrixLayout_t Adesc, b::cublasLtMatrixLayout_t Bdesc,
                                              b::cublasLtMatrixLayout_t Cdesc, b::cublasLtMatrixLayout_t Ddesc,
                                              b::cublasLtMatmulPreference_t pref, int requested,
                                              b::cublasLtMatmulHeuristicResult_t results[], int* returned) {
  const char* fn = "cublasLtMatmulAlgoGetHeuristic";
  if (handle == nullptr) return kNotInitialized;
  require_live(handle, Kind::LtHandle, fn, "the handle");
  if (pref == nullptr || results == nullptr || returned == nullptr || requested <= 0) return kInvalid;
  require_live(pref, Kind::Pref, fn, "the preference");
  *returned = 0;
  Problem p;
  if (cublasStatus_t st = make_problem(desc, Adesc, Bdesc, Cdesc, Ddesc, fn, p)) return st;
  *returned = heuristic(p, *pref_of(pref), requested, results);
  return *returned > 0 ? kOk : kNotSupported;
}

cublasStatus_t cublasLtMatmul(b::cublasLtHandle_t handle, b::cublasLtMatmulDesc_t computeDesc, const void* alpha,
                              const void* A, b::cublasLtMatrixLayout_t Adesc, const void* B,
                              b::cublasLtMatrixLayout_t Bdesc, const void* beta, const void* C,
                              b::cublasLtMatrixLayout_t Cdesc, void* D, b::cublasLtMatrixLayout_t Ddesc,
                              const b::cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspaceSizeInBytes,
                              cudaStream_t stream) {
  const char* fn = "cublasLtMatmul";
  if (handle == nullptr) return kNotInitialized;
  require_live(handle, Kind::LtHandle, fn, "the handle");
  if (alpha == nullptr || beta == nullptr) return kInvalid;
  Problem p;
  if (cublasStatus_t st = make_problem(computeDesc, Adesc, Bdesc, Cdesc, Ddesc, fn, p)) return st;
  // The algorithm: the caller's, or (null) what the heuristic gives for this workspace.
  AlgoRecord rec{};
  if (algo != nullptr) {
    std::memcpy(&rec, algo, sizeof rec);
    if (rec.magic != kAlgoMagic) return kInvalid;  // not from cublasLtMatmulAlgoGetHeuristic
    if (rec.key != p.key) return kInvalid;         // from another problem
  } else {
    Pref implicit;
    implicit.max_workspace = workspaceSizeInBytes;
    b::cublasLtMatmulHeuristicResult_t r{};
    if (heuristic(p, implicit, 1, &r) == 0) return kNotSupported;
    std::memcpy(&rec, &r.algo, sizeof rec);
  }
  if (workspaceSizeInBytes < rec.workspace) return kInvalid;
  if (workspaceSizeInBytes > 0 && workspace == nullptr) return kInvalid;
  const int e = static_cast<int>(p.desc.epilogue);
  const bool uses_bias = e == kEpiBias || e == kEpiReluBias || e == kEpiBgradA || e == kEpiBgradB;
  if (uses_bias && p.desc.bias == nullptr) return kInvalid;
  // In place (C == D): cuBLASLt requires C's layout to be D's.
  if (C == D && C != nullptr &&
      (p.c.type != p.d.type || p.c.rows != p.d.rows || p.c.cols != p.d.cols || p.c.ld != p.d.ld))
    return kInvalid;
  const bool device_scalars = p.desc.pointer_mode == kPointerModeDevice;
  const b::cudaDataType_t scale = static_cast<b::cudaDataType_t>(p.desc.scale);
  const double beta_now = device_scalars ? 1.0 : read_scalar(scale, beta);  // device: unknown until run
  if (beta_now != 0 && C == nullptr) return kInvalid;
  // The algorithm assumed these alignments: less aligned operands are refused before anything runs.
  if (misaligned(A, rec.align[0]) || misaligned(B, rec.align[1]) || misaligned(C, rec.align[2]) ||
      misaligned(D, rec.align[3]) || (uses_bias && misaligned(p.desc.bias, rec.align[4])))
    return kNotSupported;
  require_span(A, static_cast<int64_t>(p.a.rows), static_cast<int64_t>(p.a.cols), p.a.ld, p.a.type, "cublasLtMatmul: A");
  require_span(B, static_cast<int64_t>(p.b.rows), static_cast<int64_t>(p.b.cols), p.b.ld, p.b.type, "cublasLtMatmul: B");
  if (C != nullptr)
    require_span(C, static_cast<int64_t>(p.c.rows), static_cast<int64_t>(p.c.cols), p.c.ld, p.c.type, "cublasLtMatmul: C");
  require_span(D, static_cast<int64_t>(p.d.rows), static_cast<int64_t>(p.d.cols), p.d.ld, p.d.type, "cublasLtMatmul: D");
  const int64_t bias_len = e == kEpiBgradB ? p.n : p.m;
  if (uses_bias && bias_len > 0)
    emu::require_device_memory(p.desc.bias, static_cast<size_t>(bias_len) * type_size(p.bias_type),
                               e == kEpiBgradA || e == kEpiBgradB ? "cublasLtMatmul: bias gradient" : "cublasLtMatmul: bias");
  if (workspaceSizeInBytes > 0) emu::require_device_memory(workspace, workspaceSizeInBytes, "cublasLtMatmul: workspace");
  if (device_scalars) {
    emu::require_device_memory(alpha, type_size(scale), "cublasLtMatmul: alpha (device pointer mode)");
    emu::require_device_memory(beta, type_size(scale), "cublasLtMatmul: beta (device pointer mode)");
  }
  if (p.m == 0 || p.n == 0) return kOk;
  Product g;
  g.m = p.m, g.n = p.n, g.k = p.k;
  g.a = Operand{A, p.a.type, p.a.ld, p.desc.transa != b::CUBLAS_OP_N};
  g.b = Operand{B, p.b.type, p.b.ld, p.desc.transb != b::CUBLAS_OP_N};
  g.c = C, g.c_type = p.c.type, g.ldc = p.c.ld;
  g.d = D, g.d_type = p.d.type, g.ldd = p.d.ld;
  switch (p.compute) {
    case Compute::FastTF32: g.prec = Prec::TF32; break;
    case Compute::Fast16BF: g.prec = Prec::BF16; break;
    case Compute::Fast16F: g.prec = Prec::F16; break;
    default: g.prec = Prec::Exact;  // cuBLASLt has no math mode: COMPUTE_32F is strict
  }
  if (e == kEpiBias || e == kEpiReluBias) g.bias = p.desc.bias, g.bias_type = p.bias_type;
  g.relu = e == kEpiRelu || e == kEpiReluBias;
  g.relu_keep_nan = env("EMU_CUBLASLT_RELU_NAN") == "keep";
  if (e == kEpiBgradA || e == kEpiBgradB) {
    g.bgrad = e == kEpiBgradA ? Bgrad::A : Bgrad::B;
    g.bgrad_out = const_cast<void*>(p.desc.bias);
    g.bgrad_type = p.bias_type;
  }
  if (!device_scalars) {
    g.alpha = read_scalar(scale, alpha);
    g.beta = beta_now;
    emu::enqueue(stream, fn, [g] { run(g); });
  } else {  // read when the work runs, as the device would
    emu::enqueue(stream, fn, [g, alpha, beta, scale]() mutable {
      g.alpha = read_scalar(scale, alpha);
      g.beta = read_scalar(scale, beta);
      if (g.beta != 0 && g.c == nullptr) emu::fail("cublasLtMatmul: beta != 0 read from the device with C null");
      run(g);
    });
  }
  return kOk;
}

}  // extern "C"

#define FAKE_CUBLAS_SIGNATURE(name) \
  static_assert(std::is_same_v<decltype(&::name), b::PFN_##name>, #name " differs from cublas_api.h");
ALEXNET_CUBLASLT_FUNCTIONS(FAKE_CUBLAS_SIGNATURE)
#undef FAKE_CUBLAS_SIGNATURE

#endif  // FAKE_CUBLAS_PART & 2
