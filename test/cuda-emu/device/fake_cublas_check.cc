// Self-check of the stand-in cuBLAS (fake_cublas.cc) against references written differently:
// row-major dense copies with explicit transposes and long double sums. Loads the two
// libraries as native/cuda/dynload/cublas_loader.cc does (libcublasLt.so.13 RTLD_GLOBAL, then
// libcublas.so.13 RTLD_LOCAL; every name of the X-lists through libcublas's handle), with the
// trivial device of fake_cublas_stub_device.cc. Run by check_fake_cublas.sh; prints "ok" or the failures.
#include <dlfcn.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cublas_api.h"

namespace b = alexnet::cuda::blas;

extern "C" {
void stub_register(const void* p, size_t bytes);
void stub_unregister(const void* p);
size_t stub_failure_count();
const char* stub_failure(size_t i);
void stub_clear_failures();
void stub_set_defer(bool on);
size_t stub_run_deferred();
}

namespace {

int g_failed = 0, g_checks = 0;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    ++g_checks;                                            \
    if (!(cond)) {                                         \
      ++g_failed;                                          \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                            \
      std::printf("\n");                                   \
    }                                                      \
  } while (0)

struct Api {
#define M(name) b::PFN_##name name = nullptr;
  ALEXNET_CUBLAS_FUNCTIONS(M) ALEXNET_CUBLAS_OPTIONAL_FUNCTIONS(M) ALEXNET_CUBLASLT_FUNCTIONS(M)
#undef M
} api;

std::mt19937 rng(12345);
float rnd() { return std::uniform_real_distribution<float>(-2.f, 2.f)(rng); }

// "Device" buffers: 256-byte aligned, registered with the stub device for exactly their size.
struct Buf {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Buf(size_t n, size_t pad_front = 0) : bytes(n) {
    p = std::aligned_alloc(256, ((n + pad_front + 255) / 256 + 1) * 256);
    p = static_cast<char*>(p) + pad_front;
    base = static_cast<char*>(p) - pad_front;
    stub_register(p, bytes);
  }
  ~Buf() {
    stub_unregister(p);
    std::free(base);
  }
  template <typename T>
  T* as() { return static_cast<T*>(p); }
  char* base;
};

// bf16 by a different route than the fake: round to 8 significant bits with nearbyint (ties to even).
uint16_t to_bf16(float f) {
  if (std::isnan(f)) return 0x7FC0;
  int e;
  const double m = std::frexp(static_cast<double>(f), &e);  // |m| in [0.5, 1)
  double r = std::ldexp(std::nearbyint(std::ldexp(m, 8)), e - 8);
  float rf = static_cast<float>(r);
  uint32_t u;
  std::memcpy(&u, &rf, 4);
  return static_cast<uint16_t>(u >> 16);
}
float from_bf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// TF32: 11 significant bits, to nearest, ties away (std::round).
float tf32(float f) {
  if (!std::isfinite(f) || f == 0) return f;
  int e;
  const double m = std::frexp(static_cast<double>(f), &e);
  return static_cast<float>(std::ldexp(std::round(std::ldexp(m, 11)), e - 11));
}

// Row-major dense matrix of what is stored column-major (rows x cols, ld), then op() applied.
std::vector<long double> dense_op(const std::vector<long double>& stored_colmajor, int rows, int cols, int ld,
                                  bool trans) {
  std::vector<long double> rm(static_cast<size_t>(rows * cols));
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) rm[r * cols + c] = stored_colmajor[r + static_cast<size_t>(c) * ld];
  if (!trans) return rm;
  std::vector<long double> t(static_cast<size_t>(rows * cols));  // cols x rows
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) t[c * rows + r] = rm[r * cols + c];
  return t;
}

// Reference: opA (m x k), opB (k x n) row-major; returns m x n row-major alpha*AB (no C).
std::vector<long double> ref_product(const std::vector<long double>& opa, const std::vector<long double>& opb, int m,
                                     int n, int k, long double alpha) {
  std::vector<long double> out(static_cast<size_t>(m * n), 0.0L);
  for (int i = 0; i < m; ++i)
    for (int p = 0; p < k; ++p)
      for (int j = 0; j < n; ++j) out[i * n + j] += opa[i * k + p] * opb[p * n + j];
  for (auto& v : out) v *= alpha;
  return out;
}

bool close(double got, long double want, double tol) {
  if (std::isnan(got) || std::isnan(static_cast<double>(want))) return std::isnan(got) && std::isnan(static_cast<double>(want));
  return std::fabs(got - static_cast<double>(want)) <= tol * (1.0 + std::fabs(static_cast<double>(want)));
}

// ---- cublasSgemm_v2 / cublasGemmEx in float32 -----------------------------------------------
void check_float_gemm(b::cublasHandle_t h, bool ex, int opa, int opb, int m, int n, int k, int pad, float beta,
                      b::cublasComputeType_t compute, bool tf32_inputs, const char* label) {
  const bool ta = opa != b::CUBLAS_OP_N, tb = opb != b::CUBLAS_OP_N;
  const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const int lda = std::max(1, ar + pad), ldb = std::max(1, br + pad * 2), ldc = std::max(1, m + pad);
  const size_t asz = ac > 0 ? static_cast<size_t>(lda) * (ac - 1) + ar : 0;
  const size_t bsz = bc > 0 ? static_cast<size_t>(ldb) * (bc - 1) + br : 0;
  const size_t csz = static_cast<size_t>(ldc) * (n - 1) + m;
  Buf A(std::max<size_t>(asz, 1) * 4), B(std::max<size_t>(bsz, 1) * 4), C(csz * 4);
  std::vector<long double> sa(asz), sb(bsz), sc(csz);
  for (size_t i = 0; i < asz; ++i) A.as<float>()[i] = rnd(), sa[i] = tf32_inputs ? tf32(A.as<float>()[i]) : A.as<float>()[i];
  for (size_t i = 0; i < bsz; ++i) B.as<float>()[i] = rnd(), sb[i] = tf32_inputs ? tf32(B.as<float>()[i]) : B.as<float>()[i];
  for (size_t i = 0; i < csz; ++i) {
    C.as<float>()[i] = beta == 0 ? NAN : rnd();
    sc[i] = C.as<float>()[i];
  }
  const float alpha = 1.5f;
  b::cublasStatus_t st;
  if (ex)
    st = api.cublasGemmEx(h, static_cast<b::cublasOperation_t>(opa), static_cast<b::cublasOperation_t>(opb), m, n, k,
                          &alpha, A.p, b::CUDA_R_32F, lda, B.p, b::CUDA_R_32F, ldb, &beta, C.p, b::CUDA_R_32F, ldc,
                          compute, b::CUBLAS_GEMM_DEFAULT);
  else
    st = api.cublasSgemm_v2(h, static_cast<b::cublasOperation_t>(opa), static_cast<b::cublasOperation_t>(opb), m, n, k,
                            &alpha, A.as<float>(), lda, B.as<float>(), ldb, &beta, C.as<float>(), ldc);
  CHECK(st == b::CUBLAS_STATUS_SUCCESS, "%s: status %d", label, st);
  const auto pa = dense_op(sa, ar, ac, lda, ta), pb = dense_op(sb, br, bc, ldb, tb);
  const auto prod = ref_product(pa, pb, m, n, k, alpha);
  int bad = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      long double want = prod[i * n + j];
      if (beta != 0) want += static_cast<long double>(beta) * sc[i + static_cast<size_t>(j) * ldc];
      const float got = C.as<float>()[i + static_cast<size_t>(j) * ldc];
      if (!close(got, want, 1e-6 * (k + 1))) {
        if (bad++ < 3) std::printf("  %s [%d,%d] got %.9g want %.9Lg\n", label, i, j, got, want);
      }
    }
  // the padding between columns is untouched
  for (int j = 0; j + 1 < n; ++j)
    for (int i = m; i < ldc; ++i) {
      const float got = C.as<float>()[i + static_cast<size_t>(j) * ldc];
      const float was = static_cast<float>(sc[i + static_cast<size_t>(j) * ldc]);
      if (!(got == was || (std::isnan(got) && std::isnan(was)))) ++bad;
    }
  CHECK(bad == 0, "%s m=%d n=%d k=%d opa=%d opb=%d pad=%d beta=%g: %d wrong", label, m, n, k, opa, opb, pad, beta, bad);
  CHECK(stub_failure_count() == 0, "%s: device memory failure: %s", label, stub_failure(0));
  stub_clear_failures();
}

// ---- bfloat16 inputs through cublasGemmEx, float32 or bfloat16 output ---------------------------
void check_bf16_gemm(b::cublasHandle_t h, int opa, int opb, int m, int n, int k, bool out_bf16, float beta) {
  const bool ta = opa != b::CUBLAS_OP_N, tb = opb != b::CUBLAS_OP_N;
  const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const int lda = ar + 1, ldb = br, ldc = m + 2;
  const size_t asz = static_cast<size_t>(lda) * (ac - 1) + ar, bsz = static_cast<size_t>(ldb) * (bc - 1) + br;
  const size_t csz = static_cast<size_t>(ldc) * (n - 1) + m;
  Buf A(asz * 2), B(bsz * 2), C(csz * (out_bf16 ? 2 : 4));
  std::vector<long double> sa(asz), sb(bsz), sc(csz);
  for (size_t i = 0; i < asz; ++i) A.as<uint16_t>()[i] = to_bf16(rnd()), sa[i] = from_bf16(A.as<uint16_t>()[i]);
  for (size_t i = 0; i < bsz; ++i) B.as<uint16_t>()[i] = to_bf16(rnd()), sb[i] = from_bf16(B.as<uint16_t>()[i]);
  for (size_t i = 0; i < csz; ++i) {
    const float v = beta == 0 ? NAN : rnd();
    if (out_bf16) C.as<uint16_t>()[i] = to_bf16(v), sc[i] = from_bf16(C.as<uint16_t>()[i]);
    else C.as<float>()[i] = v, sc[i] = v;
  }
  const float alpha = 1.f;
  const auto st = api.cublasGemmEx(h, static_cast<b::cublasOperation_t>(opa), static_cast<b::cublasOperation_t>(opb), m,
                                   n, k, &alpha, A.p, b::CUDA_R_16BF, lda, B.p, b::CUDA_R_16BF, ldb, &beta, C.p,
                                   out_bf16 ? b::CUDA_R_16BF : b::CUDA_R_32F, ldc, b::CUBLAS_COMPUTE_32F,
                                   b::CUBLAS_GEMM_DEFAULT);
  CHECK(st == b::CUBLAS_STATUS_SUCCESS, "bf16 gemm status %d", st);
  const auto prod = ref_product(dense_op(sa, ar, ac, lda, ta), dense_op(sb, br, bc, ldb, tb), m, n, k, alpha);
  int bad = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      long double want = prod[i * n + j];
      if (beta != 0) want += static_cast<long double>(beta) * sc[i + static_cast<size_t>(j) * ldc];
      const size_t at = i + static_cast<size_t>(j) * ldc;
      if (out_bf16) {
        const uint16_t got = C.as<uint16_t>()[at], exp = to_bf16(static_cast<float>(want));
        if (got != exp && std::abs(int(got) - int(exp)) > 1) ++bad;  // one bf16 ulp (float32 double rounding)
      } else if (!close(C.as<float>()[at], want, 1e-6 * (k + 1))) {
        ++bad;
      }
    }
  CHECK(bad == 0, "bf16 gemm m=%d n=%d k=%d opa=%d opb=%d out_bf16=%d beta=%g: %d wrong", m, n, k, opa, opb, out_bf16, beta, bad);
  CHECK(stub_failure_count() == 0, "bf16: device memory failure: %s", stub_failure(0));
  stub_clear_failures();
}

void check_blas() {
  int v = 0;
  CHECK(api.cublasGetProperty(b::MAJOR_VERSION, &v) == 0 && v == 13, "major %d", v);
  CHECK(api.cublasGetProperty(static_cast<b::libraryPropertyType>(7), &v) == b::CUBLAS_STATUS_INVALID_VALUE, "bad property");
  CHECK(std::strcmp(api.cublasGetStatusName(b::CUBLAS_STATUS_NOT_SUPPORTED), "CUBLAS_STATUS_NOT_SUPPORTED") == 0, "name");
  CHECK(std::strcmp(api.cublasGetStatusName(b::CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE") == 0, "name");
  CHECK(std::strlen(api.cublasGetStatusString(b::CUBLAS_STATUS_ALLOC_FAILED)) > 0, "string");
  b::cublasHandle_t h = nullptr;
  CHECK(api.cublasCreate_v2(&h) == 0 && h != nullptr, "create");
  CHECK(api.cublasGetVersion_v2(h, &v) == 0 && v == 130101, "version %d", v);
  CHECK(api.cublasSetStream_v2(h, nullptr) == 0, "stream");
  {
    Buf ws(4096);
    CHECK(api.cublasSetWorkspace_v2(h, ws.p, 4096) == 0, "workspace");
    CHECK(api.cublasSetWorkspace_v2(h, ws.as<char>() + 16, 1024) == b::CUBLAS_STATUS_INVALID_VALUE, "misaligned workspace");
    CHECK(api.cublasSetWorkspace_v2(h, nullptr, 0) == 0, "workspace reset");
  }

  const int ops[] = {b::CUBLAS_OP_N, b::CUBLAS_OP_T, b::CUBLAS_OP_C};
  const int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 4, 9}, {6, 13, 1}, {5, 6, 0}};
  for (int opa : ops)
    for (int opb : ops)
      for (auto& s : shapes)
        for (int pad : {0, 3})
          for (float beta : {0.f, 1.f, -0.5f}) {
            check_float_gemm(h, false, opa, opb, s[0], s[1], s[2], pad, beta, b::CUBLAS_COMPUTE_32F, false, "Sgemm");
            check_float_gemm(h, true, opa, opb, s[0], s[1], s[2], pad, beta, b::CUBLAS_COMPUTE_32F, false, "GemmEx 32F");
            check_float_gemm(h, true, opa, opb, s[0], s[1], s[2], pad, beta, b::CUBLAS_COMPUTE_32F_FAST_TF32, true,
                             "GemmEx FAST_TF32");
          }
  // math modes: TF32 tensor-op math makes Sgemm and COMPUTE_32F TF32; _PEDANTIC stays strict
  CHECK(api.cublasSetMathMode(h, b::CUBLAS_TF32_TENSOR_OP_MATH) == 0, "math mode");
  check_float_gemm(h, false, b::CUBLAS_OP_N, b::CUBLAS_OP_T, 7, 5, 11, 1, 0.f, b::CUBLAS_COMPUTE_32F, true, "Sgemm TF32 math");
  check_float_gemm(h, true, b::CUBLAS_OP_T, b::CUBLAS_OP_N, 7, 5, 11, 1, 1.f, b::CUBLAS_COMPUTE_32F, true, "GemmEx 32F TF32 math");
  check_float_gemm(h, true, b::CUBLAS_OP_T, b::CUBLAS_OP_N, 7, 5, 11, 1, 1.f, b::CUBLAS_COMPUTE_32F_PEDANTIC, false,
                   "GemmEx PEDANTIC under TF32 math");
  CHECK(api.cublasSetMathMode(h, b::CUBLAS_PEDANTIC_MATH) == 0, "math mode");
  check_float_gemm(h, true, b::CUBLAS_OP_N, b::CUBLAS_OP_N, 4, 6, 8, 0, 0.f, b::CUBLAS_COMPUTE_32F_FAST_TF32, false,
                   "FAST_TF32 under pedantic math");
  CHECK(api.cublasSetMathMode(h, static_cast<b::cublasMath_t>(b::CUBLAS_DEFAULT_MATH | 16)) == 0, "math flag");
  CHECK(api.cublasSetMathMode(h, static_cast<b::cublasMath_t>(5)) == b::CUBLAS_STATUS_INVALID_VALUE, "bad math mode");
  CHECK(api.cublasSetMathMode(h, b::CUBLAS_DEFAULT_MATH) == 0, "math mode");
  // TF32 really differs: 1 + 2^-12 is 1 in TF32
  {
    Buf A(4), B(4), C(4);
    A.as<float>()[0] = 1.f + 1.f / 4096, B.as<float>()[0] = 1.f;
    const float one = 1, zero = 0;
    api.cublasGemmEx(h, b::CUBLAS_OP_N, b::CUBLAS_OP_N, 1, 1, 1, &one, A.p, b::CUDA_R_32F, 1, B.p, b::CUDA_R_32F, 1, &zero,
                     C.p, b::CUDA_R_32F, 1, b::CUBLAS_COMPUTE_32F_FAST_TF32, b::CUBLAS_GEMM_DEFAULT);
    CHECK(C.as<float>()[0] == 1.f, "TF32 rounding: %.9g", C.as<float>()[0]);
    api.cublasGemmEx(h, b::CUBLAS_OP_N, b::CUBLAS_OP_N, 1, 1, 1, &one, A.p, b::CUDA_R_32F, 1, B.p, b::CUDA_R_32F, 1, &zero,
                     C.p, b::CUDA_R_32F, 1, b::CUBLAS_COMPUTE_32F, b::CUBLAS_GEMM_DEFAULT);
    CHECK(C.as<float>()[0] == 1.f + 1.f / 4096, "strict: %.9g", C.as<float>()[0]);
  }
  for (int opa : ops)
    for (int opb : ops)
      for (bool out_bf16 : {false, true})
        for (float beta : {0.f, 1.f}) {
          check_bf16_gemm(h, opa, opb, 9, 7, 13, out_bf16, beta);
          check_bf16_gemm(h, opa, opb, 1, 3, 2, out_bf16, beta);
        }

  // ---- refused arguments ----
  {
    Buf A(64 * 4), B(64 * 4), C(64 * 4);
    const float one = 1, zero = 0;
    auto ex = [&](int opa, int opb, int m, int n, int k, int lda, int ldb, int ldc, b::cudaDataType_t at,
                  b::cudaDataType_t bt, b::cudaDataType_t ct, int compute, int algo = b::CUBLAS_GEMM_DEFAULT,
                  const float* al = nullptr, b::cublasHandle_t hh = reinterpret_cast<b::cublasHandle_t>(1)) {
      return api.cublasGemmEx(hh == reinterpret_cast<b::cublasHandle_t>(1) ? h : hh, static_cast<b::cublasOperation_t>(opa),
                              static_cast<b::cublasOperation_t>(opb), m, n, k, al ? al : &one, A.p, at, lda, B.p, bt, ldb,
                              &zero, C.p, ct, ldc, static_cast<b::cublasComputeType_t>(compute),
                              static_cast<b::cublasGemmAlgo_t>(algo));
    };
    const auto F = b::CUDA_R_32F, H = b::CUDA_R_16BF;
    const int c32 = b::CUBLAS_COMPUTE_32F, tf = b::CUBLAS_COMPUTE_32F_FAST_TF32;
    CHECK(ex(0, 0, 4, 4, 4, 4, 4, 4, F, F, F, c32) == 0, "baseline");
    CHECK(ex(0, 0, -1, 4, 4, 4, 4, 4, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "m<0");
    CHECK(ex(0, 0, 4, -1, 4, 4, 4, 4, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "n<0");
    CHECK(ex(0, 0, 4, 4, -1, 4, 4, 4, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "k<0");
    CHECK(ex(0, 0, 4, 4, 2, 3, 2, 4, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "lda<m (N)");
    CHECK(ex(1, 0, 4, 4, 2, 1, 2, 4, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "lda<k (T)");
    CHECK(ex(1, 0, 4, 4, 2, 2, 2, 4, F, F, F, c32) == 0, "lda=k (T)");
    CHECK(ex(0, 0, 4, 4, 2, 4, 1, 4, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "ldb<k (N)");
    CHECK(ex(0, 1, 4, 3, 2, 4, 2, 4, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "ldb<n (T)");
    CHECK(ex(0, 0, 4, 4, 2, 4, 2, 3, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "ldc<m");
    CHECK(ex(0, 0, 1, 1, 0, 0, 1, 1, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "lda 0 with k 0");
    CHECK(ex(1, 0, 1, 1, 0, 0, 1, 1, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "lda 0 for a T operand of 0 rows");
    CHECK(ex(0, 1, 1, 1, 0, 1, 0, 1, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "ldb 0 for a N operand of 0 rows");
    CHECK(ex(1, 1, 1, 1, 0, 1, 1, 1, F, F, F, c32) == 0, "k 0 with ld 1");
    CHECK(ex(3, 0, 4, 4, 4, 4, 4, 4, F, F, F, c32) == b::CUBLAS_STATUS_INVALID_VALUE, "OP_CONJG");
    CHECK(ex(0, 0, 4, 4, 4, 4, 4, 4, F, F, F, 0) == b::CUBLAS_STATUS_INVALID_VALUE, "cudaDataType as compute type");
    CHECK(ex(0, 0, 4, 4, 4, 4, 4, 4, H, H, F, tf) == b::CUBLAS_STATUS_NOT_SUPPORTED, "bf16 with FAST_TF32");
    CHECK(ex(0, 0, 4, 4, 4, 4, 4, 4, F, F, H, c32) == b::CUBLAS_STATUS_NOT_SUPPORTED, "f32 in, bf16 out");
    CHECK(ex(0, 0, 4, 4, 4, 4, 4, 4, F, H, F, c32) == b::CUBLAS_STATUS_NOT_SUPPORTED, "mixed inputs");
    CHECK(ex(0, 0, 4, 4, 4, 4, 4, 4, F, F, F, c32, 50) == b::CUBLAS_STATUS_NOT_SUPPORTED, "bad algo");
    CHECK(ex(0, 0, 4, 4, 4, 4, 4, 4, F, F, F, c32, b::CUBLAS_GEMM_DEFAULT_TENSOR_OP) == 0, "tensor-op algo");
    CHECK(ex(0, 0, 4, 4, 4, 4, 4, 4, F, F, F, c32, -1, nullptr, nullptr) == b::CUBLAS_STATUS_NOT_INITIALIZED, "null handle");
    CHECK(api.cublasGemmEx(h, b::CUBLAS_OP_N, b::CUBLAS_OP_N, 4, 4, 4, nullptr, A.p, F, 4, B.p, F, 4, &zero, C.p, F, 4,
                           b::CUBLAS_COMPUTE_32F, b::CUBLAS_GEMM_DEFAULT) == b::CUBLAS_STATUS_INVALID_VALUE, "null alpha");
    CHECK(stub_failure_count() == 0, "no device failure so far: %s", stub_failure(0));
    // spans: A of 4x4 (ld 4) needs 16 floats; registered with 15 it is reported
    stub_unregister(A.p);
    stub_register(A.p, 15 * 4);
    CHECK(ex(0, 0, 4, 4, 4, 4, 4, 4, F, F, F, c32) == 0, "short A");
    CHECK(stub_failure_count() == 1 && std::strstr(stub_failure(0), "cublasGemmEx: A") != nullptr, "short A reported: %s",
          stub_failure(0));
    stub_clear_failures();
    // 3 rows of ld 5 over 4 columns: 5*3+3 = 18 floats, exactly
    stub_unregister(A.p);
    stub_register(A.p, 18 * 4);
    CHECK(ex(0, 0, 3, 4, 4, 5, 4, 3, F, F, F, c32) == 0 && stub_failure_count() == 0, "exact span: %s", stub_failure(0));
    stub_clear_failures();
    stub_unregister(A.p);
    stub_register(A.p, A.bytes);
    // a host pointer
    float host[16] = {};
    CHECK(api.cublasSgemm_v2(h, b::CUBLAS_OP_N, b::CUBLAS_OP_N, 4, 4, 4, &one, host, 4, B.as<float>(), 4, &zero,
                             C.as<float>(), 4) == 0 && stub_failure_count() == 1 &&
              std::strstr(stub_failure(0), "cublasSgemm_v2: A"),
          "host A reported");
    stub_clear_failures();
    // graph capture: the closure keeps alpha's value, not its address
    stub_set_defer(true);
    for (int i = 0; i < 16; ++i) A.as<float>()[i] = 1.f, B.as<float>()[i] = 1.f;
    std::vector<float> scalars = {2.f, 0.f};  // the caller's alpha and beta, changed before the replay
    {
      CHECK(api.cublasSgemm_v2(h, b::CUBLAS_OP_N, b::CUBLAS_OP_N, 4, 4, 4, &scalars[0], A.as<float>(), 4, B.as<float>(), 4,
                               &scalars[1], C.as<float>(), 4) == 0, "deferred");
      scalars[0] = 100.f, scalars[1] = 7.f;
    }
    C.as<float>()[0] = NAN;
    CHECK(stub_run_deferred() == 1, "one deferred");  // a closure reading through the caller's pointers would see 100 and 7
    stub_set_defer(false);
    CHECK(C.as<float>()[0] == 8.f && C.as<float>()[15] == 8.f, "deferred result %g", C.as<float>()[0]);
  }
  CHECK(api.cublasDestroy_v2(h) == 0, "destroy");
  CHECK(api.cublasDestroy_v2(nullptr) == b::CUBLAS_STATUS_NOT_INITIALIZED, "destroy null");
  bool threw = false;
  try {
    api.cublasSetStream_v2(h, nullptr);  // destroyed: the fake fails the run (the stub throws)
  } catch (const std::runtime_error&) {
    threw = true;
  }
  CHECK(threw, "a destroyed handle is caught");
}

// ---- cuBLASLt ----------------------------------------------------------------------------------
struct LtCase {
  bool trans_a, trans_b;
  int m, n, k;
  b::cudaDataType_t in, out;
  int epilogue;
  int bias_type;  // -1: default
  b::cublasComputeType_t compute;
  float beta;
};

template <typename T>
b::cublasStatus_t set(b::cublasLtMatmulDesc_t d, int attr, const T& v) {
  return api.cublasLtMatmulDescSetAttribute(d, static_cast<b::cublasLtMatmulDescAttributes_t>(attr), &v, sizeof v);
}

float load_any(b::cudaDataType_t t, const void* p, size_t i) {
  return t == b::CUDA_R_16BF ? from_bf16(static_cast<const uint16_t*>(p)[i]) : static_cast<const float*>(p)[i];
}
void store_any(b::cudaDataType_t t, void* p, size_t i, float v) {
  if (t == b::CUDA_R_16BF) static_cast<uint16_t*>(p)[i] = to_bf16(v);
  else static_cast<float*>(p)[i] = v;
}

void check_lt_case(b::cublasLtHandle_t lt, const LtCase& c, bool relu_keep_nan = false) {
  const int ar = c.trans_a ? c.k : c.m, ac = c.trans_a ? c.m : c.k;
  const int br = c.trans_b ? c.n : c.k, bc = c.trans_b ? c.k : c.n;
  const int lda = ar + 2, ldb = br + 1, ldd = c.m + 3;
  const size_t es_in = c.in == b::CUDA_R_16BF ? 2 : 4, es_out = c.out == b::CUDA_R_16BF ? 2 : 4;
  const size_t asz = static_cast<size_t>(lda) * (ac - 1) + ar, bsz = static_cast<size_t>(ldb) * (bc - 1) + br;
  const size_t dsz = static_cast<size_t>(ldd) * (c.n - 1) + c.m;
  const b::cudaDataType_t bias_t = c.bias_type == -1 ? c.out : static_cast<b::cudaDataType_t>(c.bias_type);
  const bool bgrad_a = c.epilogue == 256, bgrad_b = c.epilogue == 512;
  const bool has_bias = c.epilogue == 4 || c.epilogue == 6 || bgrad_a || bgrad_b;
  const int bias_len = bgrad_b ? c.n : c.m;
  Buf A(asz * es_in), B(bsz * es_in), D(dsz * es_out), bias(std::max(bias_len, 1) * 4), ws(1 << 20);
  std::vector<long double> sa(asz), sb(bsz), sd(dsz), sbias(bias_len);
  for (size_t i = 0; i < asz; ++i) store_any(c.in, A.p, i, rnd()), sa[i] = load_any(c.in, A.p, i);
  for (size_t i = 0; i < bsz; ++i) store_any(c.in, B.p, i, rnd()), sb[i] = load_any(c.in, B.p, i);
  for (size_t i = 0; i < dsz; ++i) store_any(c.out, D.p, i, c.beta == 0 ? NAN : rnd()), sd[i] = load_any(c.out, D.p, i);
  for (int i = 0; i < bias_len; ++i) {
    const float v = (bgrad_a || bgrad_b) ? NAN : rnd();
    store_any(bias_t, bias.p, i, v);
    sbias[i] = load_any(bias_t, bias.p, i);
  }
  if (c.epilogue == 2 || c.epilogue == 6) store_any(c.in, A.p, 0, NAN), sa[0] = NAN;  // a NaN through ReLU
  b::cublasLtMatmulDesc_t desc = nullptr;
  CHECK(api.cublasLtMatmulDescCreate(&desc, c.compute, b::CUDA_R_32F) == 0, "desc");
  CHECK(set(desc, 3, int32_t(c.trans_a ? b::CUBLAS_OP_T : b::CUBLAS_OP_N)) == 0, "transa");
  CHECK(set(desc, 4, int32_t(c.trans_b ? b::CUBLAS_OP_T : b::CUBLAS_OP_N)) == 0, "transb");
  CHECK(set(desc, 7, int32_t(c.epilogue)) == 0, "epilogue");
  if (c.bias_type != -1) CHECK(set(desc, 26, int32_t(c.bias_type)) == 0, "bias type");
  b::cublasLtMatrixLayout_t la, lb, ld;
  CHECK(api.cublasLtMatrixLayoutCreate(&la, c.in, ar, ac, lda) == 0, "layout");
  CHECK(api.cublasLtMatrixLayoutCreate(&lb, c.in, br, bc, ldb) == 0, "layout");
  CHECK(api.cublasLtMatrixLayoutCreate(&ld, c.out, c.m, c.n, ldd) == 0, "layout");
  b::cublasLtMatmulPreference_t pref;
  CHECK(api.cublasLtMatmulPreferenceCreate(&pref) == 0, "pref");
  const uint64_t max_ws = 1 << 20;
  CHECK(api.cublasLtMatmulPreferenceSetAttribute(pref, b::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, 8) == 0, "ws");
  b::cublasLtMatmulHeuristicResult_t res[4] = {};
  int found = 0;
  auto st = api.cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 4, res, &found);
  CHECK(st == 0 && found >= 1 && res[0].state == 0 && res[0].workspaceSize <= max_ws, "heuristic %d found %d", st, found);
  if (has_bias) CHECK(set(desc, 8, static_cast<const void*>(bias.p)) == 0, "bias pointer");
  const float alpha = 1.f;
  st = api.cublasLtMatmul(lt, desc, &alpha, A.p, la, B.p, lb, &c.beta, D.p, ld, D.p, ld, &res[0].algo, ws.p, ws.bytes, nullptr);
  CHECK(st == 0, "matmul %d", st);
  // reference
  const auto pa = dense_op(sa, ar, ac, lda, c.trans_a), pb = dense_op(sb, br, bc, ldb, c.trans_b);
  const auto prod = ref_product(pa, pb, c.m, c.n, c.k, alpha);
  const bool tf = c.compute == b::CUBLAS_COMPUTE_32F_FAST_TF32;
  std::vector<long double> prod_tf;
  if (tf) {
    auto ra = pa, rb = pb;
    for (auto& v : ra) v = tf32(static_cast<float>(v));
    for (auto& v : rb) v = tf32(static_cast<float>(v));
    prod_tf = ref_product(ra, rb, c.m, c.n, c.k, alpha);
  }
  int bad = 0;
  for (int i = 0; i < c.m; ++i)
    for (int j = 0; j < c.n; ++j) {
      long double want = tf ? prod_tf[i * c.n + j] : prod[i * c.n + j];
      if (c.beta != 0) want += c.beta * sd[i + static_cast<size_t>(j) * ldd];
      if (c.epilogue == 4 || c.epilogue == 6) want += sbias[i];
      if (c.epilogue == 2 || c.epilogue == 6) {
        if (std::isnan(static_cast<double>(want))) want = relu_keep_nan ? want : 0;
        else if (want < 0) want = 0;
      }
      const float got = load_any(c.out, D.p, i + static_cast<size_t>(j) * ldd);
      const bool ok = c.out == b::CUDA_R_16BF
                          ? (std::isnan(static_cast<double>(want)) ? std::isnan(got)
                                                                   : std::abs(int(to_bf16(got)) - int(to_bf16(static_cast<float>(want)))) <= 1)
                          : close(got, want, 1e-6 * (c.k + 1));
      if (!ok && bad++ < 3) std::printf("  lt [%d,%d] got %.9g want %.9Lg\n", i, j, got, want);
    }
  if (bgrad_b)  // sum over k of op(B)[p, j]: one per column of D
    for (int j = 0; j < c.n; ++j) {
      long double s = 0;
      for (int p = 0; p < c.k; ++p) s += pb[p * c.n + j];
      if (!close(load_any(bias_t, bias.p, j), s, bias_t == b::CUDA_R_16BF ? 1e-2 : 1e-6 * (c.k + 1))) ++bad;
    }
  if (bgrad_a)  // sum over k of op(A)[i, p]: one per row of D
    for (int i = 0; i < c.m; ++i) {
      long double s = 0;
      for (int p = 0; p < c.k; ++p) s += pa[i * c.k + p];
      if (!close(load_any(bias_t, bias.p, i), s, bias_t == b::CUDA_R_16BF ? 1e-2 : 1e-6 * (c.k + 1))) ++bad;
    }
  CHECK(bad == 0, "lt m=%d n=%d k=%d ta=%d tb=%d in=%d out=%d epi=%d bias_t=%d compute=%d beta=%g: %d wrong", c.m, c.n,
        c.k, c.trans_a, c.trans_b, c.in, c.out, c.epilogue, c.bias_type, c.compute, c.beta, bad);
  CHECK(stub_failure_count() == 0, "lt device failure: %s", stub_failure(0));
  stub_clear_failures();
  api.cublasLtMatmulPreferenceDestroy(pref);
  api.cublasLtMatrixLayoutDestroy(la);
  api.cublasLtMatrixLayoutDestroy(lb);
  api.cublasLtMatrixLayoutDestroy(ld);
  api.cublasLtMatmulDescDestroy(desc);
}

void check_lt() {
  b::cublasLtHandle_t lt = nullptr;
  CHECK(api.cublasLtCreate(&lt) == 0 && lt, "lt create");
  const auto F = b::CUDA_R_32F, H = b::CUDA_R_16BF;
  const auto c32 = b::CUBLAS_COMPUTE_32F, tf = b::CUBLAS_COMPUTE_32F_FAST_TF32;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int epi : {1, 2, 4, 6, 256, 512})
        for (float beta : {0.f, 1.f}) {
          check_lt_case(lt, {ta, tb, 7, 5, 9, F, F, epi, -1, c32, beta});
          check_lt_case(lt, {ta, tb, 7, 5, 9, F, F, epi, -1, tf, beta});
          check_lt_case(lt, {ta, tb, 3, 4, 1, H, F, epi, -1, c32, beta});
          check_lt_case(lt, {ta, tb, 6, 3, 5, H, H, epi, -1, c32, beta});
          if (epi == 4 || epi == 6) check_lt_case(lt, {ta, tb, 6, 3, 5, H, H, epi, b::CUDA_R_32F, c32, beta});
        }
  // linear_lt.cc's two shapes: forward (T, N), weight gradient (N, T) with BGRADB
  check_lt_case(lt, {true, false, 10, 3, 12, F, F, 6, b::CUDA_R_32F, tf, 0.f});
  check_lt_case(lt, {false, true, 12, 10, 3, H, F, 512, -1, c32, 1.f});
  setenv("EMU_CUBLASLT_RELU_NAN", "keep", 1);
  check_lt_case(lt, {false, false, 4, 4, 4, F, F, 2, -1, c32, 0.f}, true);
  unsetenv("EMU_CUBLASLT_RELU_NAN");

  // ---- refusals ----
  b::cublasLtMatmulDesc_t desc;
  api.cublasLtMatmulDescCreate(&desc, c32, F);
  const int32_t t = b::CUBLAS_OP_T;
  CHECK(api.cublasLtMatmulDescSetAttribute(desc, b::CUBLASLT_MATMUL_DESC_TRANSA, &t, 8) == b::CUBLAS_STATUS_INVALID_VALUE, "size");
  CHECK(api.cublasLtMatmulDescSetAttribute(desc, b::CUBLASLT_MATMUL_DESC_TRANSA, nullptr, 4) == b::CUBLAS_STATUS_INVALID_VALUE, "null");
  CHECK(set(desc, 5, int32_t(0)) == b::CUBLAS_STATUS_INVALID_VALUE, "unknown attribute");
  CHECK(set(desc, 7, int32_t(3)) == b::CUBLAS_STATUS_INVALID_VALUE, "not an epilogue");
  CHECK(set(desc, 8, int32_t(0)) == b::CUBLAS_STATUS_INVALID_VALUE, "bias pointer of 4 bytes");
  b::cublasLtMatrixLayout_t la, lb, ld, lbad;
  api.cublasLtMatrixLayoutCreate(&la, F, 8, 4, 8);    // A 8x4 (m 8, k 4)
  api.cublasLtMatrixLayoutCreate(&lb, F, 4, 6, 4);    // B 4x6
  api.cublasLtMatrixLayoutCreate(&ld, F, 8, 6, 8);    // D 8x6
  api.cublasLtMatrixLayoutCreate(&lbad, F, 5, 6, 5);  // k mismatch
  b::cublasLtMatmulPreference_t pref;
  api.cublasLtMatmulPreferenceCreate(&pref);
  const uint64_t max_ws = 4096;
  api.cublasLtMatmulPreferenceSetAttribute(pref, b::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, 8);
  CHECK(api.cublasLtMatmulPreferenceSetAttribute(pref, b::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, 4) ==
            b::CUBLAS_STATUS_INVALID_VALUE, "pref size");
  b::cublasLtMatmulHeuristicResult_t r[2] = {};
  int found = -1;
  CHECK(api.cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lbad, ld, ld, pref, 1, r, &found) == b::CUBLAS_STATUS_INVALID_VALUE,
        "shape mismatch");
  CHECK(api.cublasLtMatmulAlgoGetHeuristic(nullptr, desc, la, lb, ld, ld, pref, 1, r, &found) ==
            b::CUBLAS_STATUS_NOT_INITIALIZED, "null lt handle");
  CHECK(api.cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 2, r, &found) == 0 && found == 2 &&
            r[0].workspaceSize == 4096 && r[1].workspaceSize == 0, "heuristic: found %d ws %zu", found, r[0].workspaceSize);
  Buf A(8 * 4 * 4, 0), B(4 * 6 * 4), D(8 * 6 * 4), W(4096);
  const float one = 1, zero = 0;
  auto mm = [&](const void* a, const b::cublasLtMatmulAlgo_t* algo, void* w, size_t wsz) {
    return api.cublasLtMatmul(lt, desc, &one, a, la, B.p, lb, &zero, D.p, ld, D.p, ld, algo, w, wsz, nullptr);
  };
  CHECK(mm(A.p, &r[0].algo, W.p, 4096) == 0, "baseline");
  CHECK(mm(A.p, &r[0].algo, W.p, 1024) == b::CUBLAS_STATUS_INVALID_VALUE, "workspace too small");
  CHECK(mm(A.p, &r[1].algo, nullptr, 0) == 0, "no-workspace algo");
  CHECK(mm(A.p, nullptr, nullptr, 0) == 0, "implicit algo");
  CHECK(mm(A.p, &r[0].algo, nullptr, 4096) == b::CUBLAS_STATUS_INVALID_VALUE, "null workspace with a size");
  b::cublasLtMatmulAlgo_t junk{};
  CHECK(mm(A.p, &junk, W.p, 4096) == b::CUBLAS_STATUS_INVALID_VALUE, "not a heuristic algo");
  {
    Buf A2(8 * 4 * 4 + 64, 16);  // 16 bytes past a 256-byte boundary
    CHECK(mm(A2.p, &r[0].algo, W.p, 4096) == b::CUBLAS_STATUS_NOT_SUPPORTED, "misaligned A");
    // a preference saying 16 bytes makes it acceptable
    const uint32_t a16 = 16;
    CHECK(api.cublasLtMatmulPreferenceSetAttribute(pref, static_cast<b::cublasLtMatmulPreferenceAttributes_t>(5), &a16, 4) == 0,
          "min alignment A");
    b::cublasLtMatmulHeuristicResult_t r16{};
    api.cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, &r16, &found);
    CHECK(mm(A2.p, &r16.algo, W.p, 4096) == 0, "16-byte A with a 16-byte algo");
  }
  // an algorithm of another problem
  {
    b::cublasLtMatrixLayout_t lb2, ld2;
    api.cublasLtMatrixLayoutCreate(&lb2, F, 4, 5, 4);
    api.cublasLtMatrixLayoutCreate(&ld2, F, 8, 5, 8);
    CHECK(api.cublasLtMatmul(lt, desc, &one, A.p, la, B.p, lb2, &zero, D.p, ld2, D.p, ld2, &r[0].algo, W.p, 4096, nullptr) ==
              b::CUBLAS_STATUS_INVALID_VALUE, "algo of another problem");
    api.cublasLtMatrixLayoutDestroy(lb2);
    api.cublasLtMatrixLayoutDestroy(ld2);
  }
  // bias epilogue without a bias pointer; GELU (real, not emulated); BGRADB for strict FP32 switched off
  CHECK(set(desc, 7, int32_t(4)) == 0, "bias");
  CHECK(api.cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, r, &found) == 0, "bias heuristic");
  CHECK(mm(A.p, &r[0].algo, W.p, 4096) == b::CUBLAS_STATUS_INVALID_VALUE, "bias epilogue with a null bias");
  CHECK(set(desc, 7, int32_t(32)) == 0, "GELU is a real epilogue");
  CHECK(api.cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, r, &found) == b::CUBLAS_STATUS_NOT_SUPPORTED &&
            found == 0, "GELU not emulated");
  CHECK(set(desc, 7, int32_t(512)) == 0, "bgradb");
  setenv("EMU_CUBLASLT_BGRADB_FP32", "0", 1);
  CHECK(api.cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, r, &found) == b::CUBLAS_STATUS_NOT_SUPPORTED,
        "BGRADB strict fp32 off");
  CHECK(set(desc, 0, int32_t(tf)) == 0, "compute tf32");
  CHECK(api.cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, r, &found) == 0, "BGRADB with TF32 offered");
  unsetenv("EMU_CUBLASLT_BGRADB_FP32");
  // bf16 D with a float16 bias: no such combination
  {
    b::cublasLtMatmulDesc_t d2;
    api.cublasLtMatmulDescCreate(&d2, c32, F);
    set(d2, 7, int32_t(4));
    set(d2, 26, int32_t(b::CUDA_R_16F));
    b::cublasLtMatrixLayout_t ha, hb, hd;
    api.cublasLtMatrixLayoutCreate(&ha, H, 8, 4, 8);
    api.cublasLtMatrixLayoutCreate(&hb, H, 4, 6, 4);
    api.cublasLtMatrixLayoutCreate(&hd, H, 8, 6, 8);
    CHECK(api.cublasLtMatmulAlgoGetHeuristic(lt, d2, ha, hb, hd, hd, pref, 1, r, &found) == b::CUBLAS_STATUS_NOT_SUPPORTED,
          "f16 bias for bf16 D");
    set(d2, 0, int32_t(tf));
    set(d2, 26, int32_t(-1));
    CHECK(api.cublasLtMatmulAlgoGetHeuristic(lt, d2, ha, hb, hd, hd, pref, 1, r, &found) == b::CUBLAS_STATUS_NOT_SUPPORTED,
          "bf16 with FAST_TF32");
    for (auto* l : {ha, hb, hd}) api.cublasLtMatrixLayoutDestroy(l);
    api.cublasLtMatmulDescDestroy(d2);
  }
  // ld < rows
  b::cublasLtMatrixLayout_t lshort;
  api.cublasLtMatrixLayoutCreate(&lshort, F, 8, 4, 7);
  set(desc, 7, int32_t(1));
  CHECK(api.cublasLtMatmulAlgoGetHeuristic(lt, desc, lshort, lb, ld, ld, pref, 1, r, &found) == b::CUBLAS_STATUS_INVALID_VALUE,
        "ld < rows");
  api.cublasLtMatrixLayoutDestroy(lshort);
  // deferred: alpha's value kept, the descriptor's bias pointer as it was at the call
  CHECK(stub_failure_count() == 0, "lt refusals: no device failure: %s", stub_failure(0));
  for (auto* l : {la, lb, ld, lbad}) api.cublasLtMatrixLayoutDestroy(l);
  api.cublasLtMatmulPreferenceDestroy(pref);
  api.cublasLtMatmulDescDestroy(desc);
  CHECK(api.cublasLtDestroy(lt) == 0, "lt destroy");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR (holding libcublas.so.13 and libcublasLt.so.13)\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  void* lt = dlopen((dir + "/libcublasLt.so.13").c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!lt) std::printf("note: no libcublasLt.so.13 preloaded: %s\n", dlerror());
  void* h = dlopen((dir + "/libcublas.so.13").c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    std::printf("FAIL: dlopen: %s\n", dlerror());
    return 1;
  }
#define R(name)                                                          \
  api.name = reinterpret_cast<b::PFN_##name>(dlsym(h, #name));           \
  CHECK(api.name != nullptr, "%s does not resolve through libcublas's handle", #name);
  ALEXNET_CUBLAS_FUNCTIONS(R) ALEXNET_CUBLAS_OPTIONAL_FUNCTIONS(R) ALEXNET_CUBLASLT_FUNCTIONS(R)
#undef R
  for (const char* legacy : {"cublasSgemm", "cublasCreate", "cublasGetVersion", "cublasSetStream", "cublasDestroy"})
    CHECK(dlsym(h, legacy) == nullptr, "%s (the legacy name) must not be exported", legacy);
  if (g_failed) return 1;
  check_blas();
  check_lt();
  std::printf("%s: %d checks, %d failed\n", g_failed ? "FAIL" : "ok", g_checks, g_failed);
  return g_failed ? 1 : 0;
}
