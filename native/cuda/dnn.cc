// cuDNN and cuBLAS operators (see dnn.h). Compiled only with CUDA.
#ifdef ALEXNET_WITH_CUDA

#include "dnn.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "../core/error.h"
#include "dynload/loader.h"
#include "ops.h"
#include "runtime.h"

namespace alexnet::cuda {

using namespace dnn;  // cuDNN's names
namespace b = blas;

namespace {

std::atomic<bool> g_tf32{true};

// Algorithms found for one convolution geometry (and math mode).
struct ConvAlgos {
  cudnnConvolutionFwdAlgo_t fwd;
  cudnnMathType_t fwd_math;
  size_t fwd_ws;
  bool have_bwd = false;
  cudnnConvolutionBwdDataAlgo_t bwd_data;
  cudnnMathType_t bwd_data_math;
  size_t bwd_data_ws;
  cudnnConvolutionBwdFilterAlgo_t bwd_filter;
  cudnnMathType_t bwd_filter_math;
  size_t bwd_filter_ws;
};

using ConvKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>;

struct DeviceHandles {
  // Held by each operator for its call: cuDNN handles must not be used from two threads at
  // once, and the algorithm cache and the workspace are shared state.
  std::mutex mutex;
  cudnnHandle_t dnn = nullptr;
  b::cublasHandle_t blas = nullptr;
  void* workspace = nullptr;  // grows, never shrinks: no allocation once every shape was seen
  size_t workspace_bytes = 0;
  std::map<ConvKey, ConvAlgos> algos;
};

std::mutex g_handles_mutex;

DeviceHandles& handles(int device) {
  static auto* all = new std::map<int, std::unique_ptr<DeviceHandles>>();  // leaked on purpose
  std::lock_guard<std::mutex> lock(g_handles_mutex);
  auto it = all->find(device);
  if (it != all->end()) return *it->second;
  const CudnnApi& dn = cudnn();    // ERR_CUDA_UNAVAILABLE naming what is missing
  const CublasApi& bl = cublas();
  auto h = std::make_unique<DeviceHandles>();
  cudaStream_t s = static_cast<cudaStream_t>(stream(device));
  CUDNN_CHECK(dn.cudnnCreate(&h->dnn));
  CUDNN_CHECK(dn.cudnnSetStream(h->dnn, s));
  CUBLAS_CHECK(bl.cublasCreate_v2(&h->blas));
  CUBLAS_CHECK(bl.cublasSetStream_v2(h->blas, s));
  DeviceHandles& ref = *h;
  all->emplace(device, std::move(h));
  return ref;
}

void* workspace(int device, DeviceHandles& h, size_t bytes) {
  if (bytes <= h.workspace_bytes) return h.workspace;
  if (h.workspace) free(device, h.workspace);  // stream-ordered: safe behind queued work
  h.workspace = nullptr;
  h.workspace_bytes = 0;
  h.workspace = alloc(device, bytes);
  h.workspace_bytes = bytes;
  return h.workspace;
}

int as_int(int64_t v) { return static_cast<int>(v); }

// RAII wrappers around cuDNN descriptors.
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(int64_t n, int64_t c, int64_t h, int64_t w) {
    const CudnnApi& a = cudnn();
    CUDNN_CHECK(a.cudnnCreateTensorDescriptor(&d));
    CUDNN_CHECK(a.cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, as_int(n),
                                             as_int(c), as_int(h), as_int(w)));
  }
  ~TensorDesc() { cudnn().cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc(int64_t k, int64_t c, int64_t h, int64_t w) {
    const CudnnApi& a = cudnn();
    CUDNN_CHECK(a.cudnnCreateFilterDescriptor(&d));
    CUDNN_CHECK(a.cudnnSetFilter4dDescriptor(d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, as_int(k),
                                             as_int(c), as_int(h), as_int(w)));
  }
  ~FilterDesc() { cudnn().cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};

struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  explicit ConvDesc(const ConvGeometry& g) {
    const CudnnApi& a = cudnn();
    CUDNN_CHECK(a.cudnnCreateConvolutionDescriptor(&d));
    CUDNN_CHECK(a.cudnnSetConvolution2dDescriptor(d, as_int(g.ph), as_int(g.pw), as_int(g.sh),
                                                  as_int(g.sw), as_int(g.dh), as_int(g.dw),
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(a.cudnnSetConvolutionGroupCount(d, as_int(g.groups)));
    math(default_math());
  }
  void math(cudnnMathType_t m) { CUDNN_CHECK(cudnn().cudnnSetConvolutionMathType(d, m)); }
  static cudnnMathType_t default_math() { return g_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH; }
  ~ConvDesc() { cudnn().cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

// All descriptors of one convolution.
struct ConvDescs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  explicit ConvDescs(const ConvGeometry& g)
      : x(g.N, g.C, g.H, g.W), y(g.N, g.O, g.Ho, g.Wo), w(g.O, g.C / g.groups, g.kh, g.kw), conv(g) {}
};

ConvKey key_of(const ConvGeometry& g) {
  return ConvKey{g.N, g.C, g.H, g.W, g.O, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups,
                 g_tf32.load()};
}

// The most workspace an algorithm search may use: half the free memory, at most 1 GiB.
size_t search_budget(int device) {
  size_t free_b = 0, total_b = 0;
  mem_info(device, &free_b, &total_b);
  return std::min<size_t>(free_b / 2, size_t{1} << 30);
}

template <typename Perf>
const Perf& fastest(const Perf* perf, int count, const char* what) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS) return perf[i];  // sorted by time
  fail(alexnet::code::kCuda, what, ": cuDNN found no usable algorithm for this shape");
}

ConvAlgos& forward_algos(int device, DeviceHandles& h, const ConvGeometry& g, ConvDescs& d,
                         const float* x, const float* w, float* y) {
  const ConvKey key = key_of(g);
  auto it = h.algos.find(key);
  if (it != h.algos.end()) return it->second;
  const CudnnApi& a = cudnn();
  const size_t budget = search_budget(device);
  void* ws = workspace(device, h, budget);
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int n = 0;
  CUDNN_CHECK(a.cudnnFindConvolutionForwardAlgorithmEx(h.dnn, d.x.d, x, d.w.d, w, d.conv.d, d.y.d, y,
                                                       CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf,
                                                       ws, budget));
  const auto& best = fastest(perf, n, "conv2d");
  ConvAlgos algos{};
  algos.fwd = best.algo;
  algos.fwd_math = best.mathType;
  algos.fwd_ws = best.memory;
  return h.algos.emplace(key, algos).first->second;
}

void backward_algos(int device, DeviceHandles& h, ConvAlgos& algos, const ConvGeometry& g,
                    ConvDescs& d, const float* x, const float* w, const float* dy) {
  if (algos.have_bwd) return;
  const CudnnApi& a = cudnn();
  const size_t budget = search_budget(device);
  void* ws = workspace(device, h, budget);
  // Searches write their outputs: give them scratch so accumulated gradients are untouched.
  const size_t dx_bytes = static_cast<size_t>(g.N * g.C * g.H * g.W) * sizeof(float);
  const size_t dw_bytes = static_cast<size_t>(g.O * (g.C / g.groups) * g.kh * g.kw) * sizeof(float);
  void* scratch = alloc(device, std::max(dx_bytes, dw_bytes));
  try {
    cudnnConvolutionBwdDataAlgoPerf_t pd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(a.cudnnFindConvolutionBackwardDataAlgorithmEx(
        h.dnn, d.w.d, w, d.y.d, dy, d.conv.d, d.x.d, scratch, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
        &n, pd, ws, budget));
    const auto& bd = fastest(pd, n, "conv2dBackward (data)");
    cudnnConvolutionBwdFilterAlgoPerf_t pf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    CUDNN_CHECK(a.cudnnFindConvolutionBackwardFilterAlgorithmEx(
        h.dnn, d.x.d, x, d.y.d, dy, d.conv.d, d.w.d, scratch,
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, pf, ws, budget));
    const auto& bf = fastest(pf, n, "conv2dBackward (filter)");
    algos.bwd_data = bd.algo;
    algos.bwd_data_math = bd.mathType;
    algos.bwd_data_ws = bd.memory;
    algos.bwd_filter = bf.algo;
    algos.bwd_filter_math = bf.mathType;
    algos.bwd_filter_ws = bf.memory;
    algos.have_bwd = true;
  } catch (...) {
    free(device, scratch);
    throw;
  }
  free(device, scratch);
}

b::cublasComputeType_t compute_type(bool tf32) {
  return tf32 ? b::CUBLAS_COMPUTE_32F_FAST_TF32 : b::CUBLAS_COMPUTE_32F;
}

}  // namespace

void set_tf32(bool on) { g_tf32 = on; }
bool tf32() { return g_tf32; }

void conv2d_forward(int device, float* y, const float* x, const float* w, const float* bias,
                    const ConvGeometry& g, bool relu) {
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  ConvDescs d(g);
  ConvAlgos& algos = forward_algos(device, h, g, d, x, w, y);
  d.conv.math(algos.fwd_math);
  void* ws = workspace(device, h, algos.fwd_ws);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnn().cudnnConvolutionForward(h.dnn, &one, d.x.d, x, d.w.d, w, d.conv.d, algos.fwd,
                                              ws, algos.fwd_ws, &zero, d.y.d, y));
  if (bias || relu) bias_relu_forward(y, bias, g.N, g.O, g.Ho * g.Wo, relu, stream(device));
}

void conv2d_backward(int device, float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const ConvGeometry& g, bool accumulate) {
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  ConvDescs d(g);
  auto it = h.algos.find(key_of(g));
  ConvAlgos* algos = nullptr;
  if (it == h.algos.end()) {
    // Backward before any forward of this shape: search forward too (needs a y buffer).
    float* y = static_cast<float*>(alloc(device, static_cast<size_t>(g.N * g.O * g.Ho * g.Wo) * sizeof(float)));
    try {
      algos = &forward_algos(device, h, g, d, x, w, y);
    } catch (...) {
      free(device, y);
      throw;
    }
    free(device, y);
  } else {
    algos = &it->second;
  }
  backward_algos(device, h, *algos, g, d, x, w, dy);
  const CudnnApi& a = cudnn();
  const float one = 1.f, zero = 0.f;
  const float beta_w = accumulate ? 1.f : 0.f;
  if (dx) {
    d.conv.math(algos->bwd_data_math);
    void* ws = workspace(device, h, algos->bwd_data_ws);
    CUDNN_CHECK(a.cudnnConvolutionBackwardData(h.dnn, &one, d.w.d, w, d.y.d, dy, d.conv.d,
                                               algos->bwd_data, ws, algos->bwd_data_ws, &zero,
                                               d.x.d, dx));
  }
  d.conv.math(algos->bwd_filter_math);
  void* ws = workspace(device, h, algos->bwd_filter_ws);
  CUDNN_CHECK(a.cudnnConvolutionBackwardFilter(h.dnn, &one, d.x.d, x, d.y.d, dy, d.conv.d,
                                               algos->bwd_filter, ws, algos->bwd_filter_ws, &beta_w,
                                               d.w.d, dw));
  if (db) bias_backward(db, dy, g.N, g.O, g.Ho * g.Wo, accumulate, stream(device));
}

namespace {
struct PoolDesc {
  cudnnPoolingDescriptor_t d = nullptr;
  explicit PoolDesc(const PoolGeometry& g) {
    const CudnnApi& a = cudnn();
    CUDNN_CHECK(a.cudnnCreatePoolingDescriptor(&d));
    CUDNN_CHECK(a.cudnnSetPooling2dDescriptor(d, CUDNN_POOLING_MAX, CUDNN_PROPAGATE_NAN, as_int(g.kh),
                                              as_int(g.kw), as_int(g.ph), as_int(g.pw), as_int(g.sh),
                                              as_int(g.sw)));
  }
  ~PoolDesc() { cudnn().cudnnDestroyPoolingDescriptor(d); }
  PoolDesc(const PoolDesc&) = delete;
  PoolDesc& operator=(const PoolDesc&) = delete;
};

struct LrnDesc {
  cudnnLRNDescriptor_t d = nullptr;
  LrnDesc(int64_t size, double alpha, double beta, double k) {
    if (size < 1 || size > 15 || size % 2 == 0)
      fail(alexnet::code::kArgument, "localResponseNorm on CUDA: size must be odd and in [1, 15] but got ", size);
    const CudnnApi& a = cudnn();
    CUDNN_CHECK(a.cudnnCreateLRNDescriptor(&d));
    CUDNN_CHECK(a.cudnnSetLRNDescriptor(d, static_cast<unsigned>(size), alpha, beta, k));
  }
  ~LrnDesc() { cudnn().cudnnDestroyLRNDescriptor(d); }
  LrnDesc(const LrnDesc&) = delete;
  LrnDesc& operator=(const LrnDesc&) = delete;
};
}  // namespace

void maxpool2d_forward(int device, float* y, const float* x, const PoolGeometry& g) {
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  PoolDesc p(g);
  TensorDesc xd(g.N, g.C, g.H, g.W), yd(g.N, g.C, g.Ho, g.Wo);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnn().cudnnPoolingForward(h.dnn, p.d, &one, xd.d, x, &zero, yd.d, y));
}

void maxpool2d_backward(int device, float* dx, const float* dy, const float* x, const float* y,
                        const PoolGeometry& g) {
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  PoolDesc p(g);
  TensorDesc xd(g.N, g.C, g.H, g.W), yd(g.N, g.C, g.Ho, g.Wo);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnn().cudnnPoolingBackward(h.dnn, p.d, &one, yd.d, y, yd.d, dy, xd.d, x, &zero, xd.d, dx));
}

void lrn_forward(int device, float* y, const float* x, int64_t N, int64_t C, int64_t H, int64_t W,
                 int64_t size, double alpha, double beta, double k) {
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  LrnDesc l(size, alpha, beta, k);
  TensorDesc t(N, C, H, W);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnn().cudnnLRNCrossChannelForward(h.dnn, l.d, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, t.d,
                                                  x, &zero, t.d, y));
}

void lrn_backward(int device, float* dx, const float* dy, const float* x, const float* y, int64_t N,
                  int64_t C, int64_t H, int64_t W, int64_t size, double alpha, double beta, double k) {
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  LrnDesc l(size, alpha, beta, k);
  TensorDesc t(N, C, H, W);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnn().cudnnLRNCrossChannelBackward(h.dnn, l.d, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, t.d,
                                                   y, t.d, dy, t.d, x, &zero, t.d, dx));
}

void gemm(int device, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc) {
  gemm_with_math(device, g_tf32, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_with_math(int device, bool tf32, bool trans_a, bool trans_b, int64_t M, int64_t N,
                    int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                    int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  CUBLAS_CHECK(cublas().cublasGemmEx(h.blas, trans_b ? b::CUBLAS_OP_T : b::CUBLAS_OP_N,
                                     trans_a ? b::CUBLAS_OP_T : b::CUBLAS_OP_N, as_int(N), as_int(M),
                                     as_int(K), &alpha, B, b::CUDA_R_32F, as_int(ldb), A, b::CUDA_R_32F,
                                     as_int(lda), &beta, C, b::CUDA_R_32F, as_int(ldc), compute_type(tf32),
                                     b::CUBLAS_GEMM_DEFAULT));
}

void linear_forward(int device, float* y, const float* x, const float* w, const float* bias,
                    int64_t B, int64_t in, int64_t out) {
  gemm(device, false, true, B, out, in, 1.f, x, in, w, in, 0.f, y, out);
  if (bias) bias_relu_forward(y, bias, B, out, 1, /*relu=*/false, stream(device));
}

void linear_backward(int device, float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, int64_t B, int64_t in, int64_t out, bool accumulate) {
  if (dx) gemm(device, false, false, B, in, out, 1.f, dy, out, w, in, 0.f, dx, in);
  gemm(device, true, false, out, in, B, 1.f, dy, out, x, in, accumulate ? 1.f : 0.f, dw, in);
  if (db) bias_backward(db, dy, B, out, 1, accumulate, stream(device));
}

}  // namespace alexnet::cuda

#endif  // ALEXNET_WITH_CUDA
