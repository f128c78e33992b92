// cuDNN and cuBLAS operators (see dnn.h). Compiled only in builds with CUDA (native/sources.json,
// "cuda").
#include "dnn.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "../core/error.h"
#include "dynload/loader.h"
#include "linear_lt.h"
#include "ops.h"
#include "runtime.h"

namespace alexnet::cuda {

using namespace dnn;  // cuDNN's names
namespace b = blas;

namespace {

std::atomic<bool> g_tf32{true};
std::atomic<bool> g_deterministic{false};
std::atomic<uint64_t> g_descriptors_created{0};  // every cuDNN descriptor made (tests, B13)

int as_int(int64_t v) { return static_cast<int>(v); }

// RAII wrappers around cuDNN descriptors. They are made once per shape and kept in the
// device's caches below for the life of the process: cuDNN reads a descriptor when the call
// is made (the work it enqueues does not refer back to it), so reusing one for later calls on
// the same stream is safe, and a training step does no descriptor work after the first.
//
// What every kind shares: `d` is made by cuDNN's Create function of the kind (the derived
// constructor calls create(), after any check of its own) and destroyed by its Destroy function
// with the object, also when the derived constructor throws after create() (the base is then
// already constructed). Not copyable: one owner per descriptor.
template <typename Handle, auto Create, auto Destroy>
struct CudnnDescriptor {
  Handle d = nullptr;
  CudnnDescriptor() = default;
  ~CudnnDescriptor() {
    if (d) (cudnn().*Destroy)(d);  // null only when create() never succeeded
  }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;

 protected:
  // Makes `d` (counted in descriptors_created()); `create_name` names Create in the error.
  // Returns the API table for the derived constructor's Set calls.
  const CudnnApi& create(const char* create_name) {
    const CudnnApi& a = cudnn();
    Handle made = nullptr;
    check_cudnn((a.*Create)(&made), create_name, __FILE__, __LINE__);
    d = made;
    ++g_descriptors_created;
    return a;
  }
};

// The memory format of a descriptor (decision 14): CUDNN_TENSOR_NHWC for channels last, where
// a tensor is stored [N, H, W, C] and a filter [K, R, S, C] (KRSC: [O, kH, kW, C/groups]); the
// dimensions passed are the logical n, c, h, w (or k, c, h, w) either way.
cudnnTensorFormat_t format_of(bool channels_last) { return channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW; }

struct TensorDesc : CudnnDescriptor<cudnnTensorDescriptor_t, &CudnnApi::cudnnCreateTensorDescriptor,
                                    &CudnnApi::cudnnDestroyTensorDescriptor> {
  TensorDesc(int64_t n, int64_t c, int64_t h, int64_t w, cudnnDataType_t type = CUDNN_DATA_FLOAT,
             bool channels_last = false) {
    const CudnnApi& a = create("cudnnCreateTensorDescriptor");
    CUDNN_CHECK(a.cudnnSetTensor4dDescriptor(d, format_of(channels_last), type, as_int(n), as_int(c),
                                             as_int(h), as_int(w)));
  }
};

struct FilterDesc : CudnnDescriptor<cudnnFilterDescriptor_t, &CudnnApi::cudnnCreateFilterDescriptor,
                                    &CudnnApi::cudnnDestroyFilterDescriptor> {
  FilterDesc(int64_t k, int64_t c, int64_t h, int64_t w, cudnnDataType_t type = CUDNN_DATA_FLOAT,
             bool channels_last = false) {
    const CudnnApi& a = create("cudnnCreateFilterDescriptor");
    CUDNN_CHECK(a.cudnnSetFilter4dDescriptor(d, type, format_of(channels_last), as_int(k), as_int(c),
                                             as_int(h), as_int(w)));
  }
};

struct ConvDesc : CudnnDescriptor<cudnnConvolutionDescriptor_t, &CudnnApi::cudnnCreateConvolutionDescriptor,
                                  &CudnnApi::cudnnDestroyConvolutionDescriptor> {
  // The compute type is float for both data types (bfloat16 data: cuDNN's PSEUDO_BFLOAT16 configuration).
  ConvDesc(const Conv2dParams& g, cudnnMathType_t m) {
    const CudnnApi& a = create("cudnnCreateConvolutionDescriptor");
    CUDNN_CHECK(a.cudnnSetConvolution2dDescriptor(d, as_int(g.pH), as_int(g.pW), as_int(g.sH), as_int(g.sW),
                                                  as_int(g.dH), as_int(g.dW), CUDNN_CROSS_CORRELATION,
                                                  CUDNN_DATA_FLOAT));
    CUDNN_CHECK(a.cudnnSetConvolutionGroupCount(d, as_int(g.groups)));
    math(m);
  }
  void math(cudnnMathType_t m) { CUDNN_CHECK(cudnn().cudnnSetConvolutionMathType(d, m)); }
};

struct PoolDesc : CudnnDescriptor<cudnnPoolingDescriptor_t, &CudnnApi::cudnnCreatePoolingDescriptor,
                                  &CudnnApi::cudnnDestroyPoolingDescriptor> {
  explicit PoolDesc(const Pool2dParams& g) {
    const CudnnApi& a = create("cudnnCreatePoolingDescriptor");
    // MAX_DETERMINISTIC: the plain MAX mode's backward may scatter with atomics where windows
    // overlap (AlexNet's 3/2), so two runs could differ in the last bits. Ties: each window's
    // gradient goes to exactly one of its tied maxima (which one is cuDNN's choice; the CPU
    // takes the first in row-major order), see maxpool2d_backward in dnn.h.
    CUDNN_CHECK(a.cudnnSetPooling2dDescriptor(d, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_PROPAGATE_NAN,
                                              as_int(g.kH), as_int(g.kW), as_int(g.pH), as_int(g.pW),
                                              as_int(g.sH), as_int(g.sW)));
  }
};

// LrnParams holds float32 (the kernels' type), so the smallest k and beta cuDNN documents (1e-5,
// 0.01), accepted in double by the binding, arrive here as the floats just below them
// (9.99999975e-06, 0.00999999978), which cuDNN refuses (CUDNN_STATUS_BAD_PARAM): found by the
// emulated device (test/cuda-emu/device). A value whose float32 rounding is the limit's is the limit.
double at_least_limit(double v, double limit) {
  return static_cast<float>(v) == static_cast<float>(limit) ? std::max(v, limit) : v;
}

struct LrnDesc : CudnnDescriptor<cudnnLRNDescriptor_t, &CudnnApi::cudnnCreateLRNDescriptor,
                                 &CudnnApi::cudnnDestroyLRNDescriptor> {
  LrnDesc(int64_t size, double alpha, double beta, double k) {
    k = at_least_limit(k, kLrnMinK);
    beta = at_least_limit(beta, kLrnMinBeta);
    // The binding validates first (lrn_params, native/core/ops/lrn.h, the same limits on every
    // device); this is the backstop for direct callers (the benchmark).
    if (size < kLrnMinSize || size > kLrnMaxSize || size % 2 == 0)
      fail(alexnet::code::kArgument, "localResponseNorm on CUDA: size must be odd and in [", kLrnMinSize, ", ",
           kLrnMaxSize, "] but got ", size);
    if (!(k >= kLrnMinK)) fail(alexnet::code::kArgument, "localResponseNorm: k must be at least ", kLrnMinK, " but got ", k);
    if (!(beta >= kLrnMinBeta))
      fail(alexnet::code::kArgument, "localResponseNorm: beta must be at least ", kLrnMinBeta, " but got ", beta);
    const CudnnApi& a = create("cudnnCreateLRNDescriptor");
    CUDNN_CHECK(a.cudnnSetLRNDescriptor(d, static_cast<unsigned>(size), alpha, beta, k));
  }
};

cudnnMathType_t search_math(bool tf32) { return tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH; }

// One convolution shape (and math mode, and data type): its descriptors and the algorithms found
// for it. Each direction has its own convolution descriptor, set once to the math type of its
// algorithm, so no call changes a descriptor. A bfloat16 plan (x, w, y bfloat16, float compute)
// is used for the forward pass and the input gradient only (see conv2d_backward_bf16). A
// channels-last plan (g.channels_last) describes x and y as NHWC and the filter as KRSC.
struct ConvPlan {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc fwd, bwd_data, bwd_filter;
  bool have_fwd = false, have_bwd_data = false, have_bwd_filter = false;
  cudnnConvolutionFwdAlgo_t fwd_algo{};
  size_t fwd_ws = 0;
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo{};
  size_t bwd_data_ws = 0;
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo{};
  size_t bwd_filter_ws = 0;
  bool deterministic = false;  // only CUDNN_DETERMINISTIC algorithms (setDeterministic)
  // bf16: tensor-core math is what the data type is for; the TF32 switch is about float data.
  ConvPlan(const Conv2dParams& g, bool tf32, bool det, bool bf16)
      : x(g.N, g.C, g.H, g.W, bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT, g.channels_last),
        y(g.N, g.O, g.Ho, g.Wo, bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT, g.channels_last),
        w(g.O, g.C / g.groups, g.kH, g.kW, bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT, g.channels_last),
        fwd(g, search_math(tf32 || bf16)),
        bwd_data(g, search_math(tf32 || bf16)),
        bwd_filter(g, search_math(tf32 || bf16)),
        deterministic(det) {}
};

struct PoolPlan {
  PoolDesc pool;
  TensorDesc x, y;
  explicit PoolPlan(const Pool2dParams& g) : pool(g), x(g.N, g.C, g.H, g.W), y(g.N, g.C, g.Ho, g.Wo) {}
};

struct LrnPlan {
  LrnDesc lrn;
  TensorDesc t;
  LrnPlan(int64_t N, int64_t C, int64_t H, int64_t W, int64_t size, double alpha, double beta, double k)
      : lrn(size, alpha, beta, k), t(N, C, H, W) {}
};

// The full geometry, the math mode, whether only deterministic algorithms may be chosen, the
// data type (true: bfloat16, false: float) and the memory format (true: channels last).
using ConvKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool>;
using PoolKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t>;
using LrnKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, double, double, double>;

// A kept buffer grown inside a graph capture would become the graph's memory: the capture fails
// instead (a shape not seen during the warm-up steps; the Trainer then runs eagerly).
void refuse_growth_in_capture(int device, const char* what) {
  if (capturing(device))
    fail(alexnet::code::kCuda, "cuda:", device, ": ", what, " would grow inside a CUDA graph capture (a shape not seen before the capture)");
}

// A device buffer kept for the process that only grows: the old block is freed stream-ordered
// (safe behind queued work), and once every shape was seen nothing is allocated. Growing it
// inside a graph capture is refused (above). Caller holds the owner's mutex.
struct GrowingBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  void* get(int device, size_t want, const char* what) {
    if (want <= bytes) return p;
    refuse_growth_in_capture(device, what);
    if (p) free(device, p);
    p = nullptr;
    bytes = 0;
    p = alloc(device, want);
    bytes = want;
    return p;
  }
};

struct DeviceHandles {
  // Held by each operator for its call: cuDNN handles must not be used from two threads at
  // once, and the caches, the workspace and the bias scratch are shared state.
  std::mutex mutex;
  cudnnHandle_t dnn = nullptr;
  b::cublasHandle_t blas = nullptr;
  GrowingBuffer workspace;     // cuDNN's
  GrowingBuffer bias_scratch;  // the bias gradient's partial sums
  GrowingBuffer widened;       // bfloat16 convolution operands widened to float32
  GrowingBuffer filters;      // channels last: the KRSC copy of a weight and the KRSC weight gradient
  // Kept for the process (as the handles are): never freed while queued work may use them.
  std::map<ConvKey, std::unique_ptr<ConvPlan>> convs;
  std::map<PoolKey, std::unique_ptr<PoolPlan>> pools;
  std::map<LrnKey, std::unique_ptr<LrnPlan>> lrns;
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

void* workspace(int device, DeviceHandles& h, size_t bytes) { return h.workspace.get(device, bytes, "cuDNN's workspace"); }

// Scratch for bias_backward's partial sums (null when it needs none). Caller holds h.mutex.
float* bias_scratch(int device, DeviceHandles& h, int64_t floats) {
  if (floats <= 0) return nullptr;
  return static_cast<float*>(h.bias_scratch.get(device, static_cast<size_t>(floats) * sizeof(float), "the bias gradient's scratch"));
}

// Scratch for bfloat16 operands widened to float32 (caller holds h.mutex).
float* widened_scratch(int device, DeviceHandles& h, int64_t floats) {
  const auto n = static_cast<size_t>(std::max<int64_t>(floats, 1));
  return static_cast<float*>(h.widened.get(device, n * sizeof(float), "the bfloat16 operands' widened copies"));
}

// Channels last (decision 14): the weight's KRSC copy and the KRSC weight gradient, in one
// kept buffer (caller holds h.mutex): `wn` elements of `elem` bytes for the copy, then wn floats.
// The weight stays PyTorch's [O, C/g, kH, kW] in the store; cuDNN's NHWC kernels read KRSC, so
// each call transposes it here (a few MiB for AlexNet, against the convolution's GFLOPs).
struct KrscScratch {
  void* w = nullptr;     // [O, kH, kW, C/g], the weight's element type
  float* dw = nullptr;   // [O, kH, kW, C/g]
};
KrscScratch krsc_scratch(int device, DeviceHandles& h, int64_t wn, size_t elem) {
  const size_t wbytes = (static_cast<size_t>(wn) * elem + 255) / 256 * 256;
  char* p = static_cast<char*>(h.filters.get(device, wbytes + static_cast<size_t>(wn) * sizeof(float),
                                             "the channels-last filter copies"));
  return {p, reinterpret_cast<float*>(p + wbytes)};
}

ConvKey key_of(const Conv2dParams& g, bool tf32, bool det, bool bf16) {
  return ConvKey{g.N, g.C, g.H, g.W, g.O, g.kH, g.kW, g.sH, g.sW, g.pH, g.pW, g.dH, g.dW, g.groups, tf32, det, bf16,
                 g.channels_last};
}

// The plan of this shape in the current math mode (and data type), made on first use. Caller
// holds h.mutex.
ConvPlan& conv_plan(DeviceHandles& h, const Conv2dParams& g, bool bf16 = false) {
  const bool tf32 = g_tf32.load();
  const bool det = g_deterministic.load();
  auto& slot = h.convs[key_of(g, tf32, det, bf16)];
  if (!slot) {
    try {
      slot = std::make_unique<ConvPlan>(g, tf32, det, bf16);
    } catch (...) {
      h.convs.erase(key_of(g, tf32, det, bf16));
      throw;
    }
  }
  return *slot;
}

// The most workspace an algorithm search may use: half the free memory, at most 1 GiB.
size_t search_budget(int device) {
  size_t free_b = 0, total_b = 0;
  mem_info(device, &free_b, &total_b);
  return std::min<size_t>(free_b / 2, size_t{1} << 30);
}

// The fastest usable algorithm (the results are sorted by time); in deterministic mode the
// fastest of those cuDNN reports as deterministic.
template <typename Perf>
const Perf& fastest(const Perf* perf, int count, bool deterministic, const char* what) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && (!deterministic || perf[i].determinism == CUDNN_DETERMINISTIC))
      return perf[i];
  if (deterministic)
    fail(alexnet::code::kCuda, what, ": cuDNN found no deterministic algorithm for this shape (setDeterministic(false) allows the others)");
  fail(alexnet::code::kCuda, what, ": cuDNN found no usable algorithm for this shape");
}

void find_forward(int device, DeviceHandles& h, ConvPlan& p, const void* x, const void* w, void* y) {
  if (p.have_fwd) return;
  const size_t budget = search_budget(device);
  void* ws = workspace(device, h, budget);
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int n = 0;
  CUDNN_CHECK(cudnn().cudnnFindConvolutionForwardAlgorithmEx(h.dnn, p.x.d, x, p.w.d, w, p.fwd.d, p.y.d, y,
                                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf,
                                                             ws, budget));
  const auto& best = fastest(perf, n, p.deterministic, "conv2d");
  p.fwd.math(best.mathType);  // once: the descriptor keeps it for every later call
  p.fwd_algo = best.algo;
  p.fwd_ws = best.memory;
  p.have_fwd = true;
}

// The input gradient's algorithm (dx written to scratch during the search).
void find_backward_data(int device, DeviceHandles& h, ConvPlan& p, const Conv2dParams& g, const void* w,
                        const void* dy) {
  if (p.have_bwd_data) return;
  const size_t budget = search_budget(device);
  void* ws = workspace(device, h, budget);
  void* scratch = alloc(device, static_cast<size_t>(g.N * g.C * g.H * g.W) * sizeof(float));
  try {
    cudnnConvolutionBwdDataAlgoPerf_t pd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnn().cudnnFindConvolutionBackwardDataAlgorithmEx(
        h.dnn, p.w.d, w, p.y.d, dy, p.bwd_data.d, p.x.d, scratch, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
        &n, pd, ws, budget));
    const auto& bd = fastest(pd, n, p.deterministic, "conv2dBackward (data)");
    p.bwd_data.math(bd.mathType);
    p.bwd_data_algo = bd.algo;
    p.bwd_data_ws = bd.memory;
    p.have_bwd_data = true;
  } catch (...) {
    free(device, scratch);
    throw;
  }
  free(device, scratch);
}

// The weight gradient's algorithm. Searches write their outputs: dw goes to scratch so that
// accumulated gradients are untouched.
void find_backward_filter(int device, DeviceHandles& h, ConvPlan& p, const Conv2dParams& g, const void* x,
                          const void* dy) {
  if (p.have_bwd_filter) return;
  const size_t budget = search_budget(device);
  void* ws = workspace(device, h, budget);
  void* scratch = alloc(device, static_cast<size_t>(g.O * (g.C / g.groups) * g.kH * g.kW) * sizeof(float));
  try {
    cudnnConvolutionBwdFilterAlgoPerf_t pf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnn().cudnnFindConvolutionBackwardFilterAlgorithmEx(
        h.dnn, p.x.d, x, p.y.d, dy, p.bwd_filter.d, p.w.d, scratch,
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, pf, ws, budget));
    const auto& bf = fastest(pf, n, p.deterministic, "conv2dBackward (filter)");
    p.bwd_filter.math(bf.mathType);
    p.bwd_filter_algo = bf.algo;
    p.bwd_filter_ws = bf.memory;
    p.have_bwd_filter = true;
  } catch (...) {
    free(device, scratch);
    throw;
  }
  free(device, scratch);
}

PoolPlan& pool_plan(DeviceHandles& h, const Pool2dParams& g) {
  const PoolKey key{g.N, g.C, g.H, g.W, g.kH, g.kW, g.sH, g.sW, g.pH, g.pW};
  auto& slot = h.pools[key];
  if (!slot) {
    try {
      slot = std::make_unique<PoolPlan>(g);
    } catch (...) {
      h.pools.erase(key);
      throw;
    }
  }
  return *slot;
}

LrnPlan& lrn_plan(DeviceHandles& h, int64_t N, int64_t C, int64_t H, int64_t W, int64_t size,
                  double alpha, double beta, double k) {
  const LrnKey key{N, C, H, W, size, alpha, beta, k};
  auto& slot = h.lrns[key];
  if (!slot) {
    try {
      slot = std::make_unique<LrnPlan>(N, C, H, W, size, alpha, beta, k);
    } catch (...) {
      h.lrns.erase(key);
      throw;
    }
  }
  return *slot;
}

b::cublasComputeType_t compute_type(bool tf32) {
  return tf32 ? b::CUBLAS_COMPUTE_32F_FAST_TF32 : b::CUBLAS_COMPUTE_32F;
}

}  // namespace

void set_tf32(bool on) { g_tf32 = on; }
bool tf32() { return g_tf32; }
void set_deterministic(bool on) { g_deterministic = on; }
bool deterministic() { return g_deterministic; }
uint64_t descriptors_created() { return g_descriptors_created.load(); }

namespace {

// The bias / ReLU epilogue's view of y [N, O, S] (S = Ho*Wo): channels last stores it
// [N*S, O, 1], the fully connected layer's case.
struct EpilogueShape {
  int64_t N, C, S;
};
EpilogueShape epilogue_shape(const Conv2dParams& g) {
  const int64_t S = g.Ho * g.Wo;
  return g.channels_last ? EpilogueShape{g.N * S, g.O, 1} : EpilogueShape{g.N, g.O, S};
}

int64_t weight_numel(const Conv2dParams& g) { return g.O * (g.C / g.groups) * g.kH * g.kW; }

// The weight as the plan reads it: itself in NCHW, its KRSC copy in `krsc` for channels last.
const float* plan_weight(int device, const Conv2dParams& g, const float* w, void* krsc) {
  if (!g.channels_last) return w;
  nchw_to_nhwc(device, static_cast<float*>(krsc), w, g.O, g.C / g.groups, g.kH * g.kW);
  return static_cast<const float*>(krsc);
}
const uint16_t* plan_weight(int device, const Conv2dParams& g, const uint16_t* w, void* krsc) {
  if (!g.channels_last) return w;
  nchw_to_nhwc_bf16(device, static_cast<uint16_t*>(krsc), w, g.O, g.C / g.groups, g.kH * g.kW);
  return static_cast<const uint16_t*>(krsc);
}

// The float32 weight gradient from x and dy as the float plan `p` reads them, into PyTorch's
// [O, C/g, kH, kW] dw (+= with accumulate). Channels last: cuDNN writes KRSC into the scratch,
// which is then transposed and added into dw once (the master weights' layout never changes).
void weight_gradient(int device, DeviceHandles& h, ConvPlan& p, const Conv2dParams& g, const float* x,
                     const float* dy, float* dw, float* dw_krsc, bool accumulate) {
  find_backward_filter(device, h, p, g, x, dy);
  void* ws = workspace(device, h, p.bwd_filter_ws);
  const float one = 1.f;
  const float beta = accumulate && !g.channels_last ? 1.f : 0.f;
  float* out = g.channels_last ? dw_krsc : dw;
  CUDNN_CHECK(cudnn().cudnnConvolutionBackwardFilter(h.dnn, &one, p.x.d, x, p.y.d, dy, p.bwd_filter.d,
                                                     p.bwd_filter_algo, ws, p.bwd_filter_ws, &beta, p.w.d, out));
  if (g.channels_last) nhwc_to_nchw(device, dw, dw_krsc, g.O, g.C / g.groups, g.kH * g.kW, accumulate);
}

void bias_gradient(int device, DeviceHandles& h, const Conv2dParams& g, float* db, const float* dy, bool accumulate) {
  const EpilogueShape e = epilogue_shape(g);
  bias_backward(device, db, dy, e.N, e.C, e.S, accumulate, bias_scratch(device, h, bias_backward_scratch(e.N, e.C, e.S)));
}

}  // namespace

void conv2d_forward(int device, float* y, const float* x, const float* w, const float* bias,
                    const Conv2dParams& g, bool relu) {
  if (g.N == 0) return;  // an empty batch: y is empty too (cuDNN rejects n = 0)
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  ConvPlan& p = conv_plan(h, g);
  const KrscScratch k = g.channels_last ? krsc_scratch(device, h, weight_numel(g), sizeof(float)) : KrscScratch{};
  const float* wp = plan_weight(device, g, w, k.w);
  find_forward(device, h, p, x, wp, y);
  void* ws = workspace(device, h, p.fwd_ws);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnn().cudnnConvolutionForward(h.dnn, &one, p.x.d, x, p.w.d, wp, p.fwd.d, p.fwd_algo, ws,
                                              p.fwd_ws, &zero, p.y.d, y));
  const EpilogueShape e = epilogue_shape(g);
  if (bias || relu) bias_relu_forward(device, y, bias, e.N, e.C, e.S, relu);
}

void conv2d_backward(int device, float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const Conv2dParams& g, bool accumulate) {
  if (g.N == 0) {
    // An empty batch (as on the CPU): dx is empty, dw and db are empty sums, so zeros, or
    // unchanged when accumulating. cuDNN would reject the n = 0 descriptors.
    if (!accumulate) {
      fill(device, dw, 0.f, weight_numel(g));
      if (db) fill(device, db, 0.f, g.O);
    }
    return;
  }
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  ConvPlan& p = conv_plan(h, g);
  const KrscScratch k = g.channels_last ? krsc_scratch(device, h, weight_numel(g), sizeof(float)) : KrscScratch{};
  const float* wp = dx ? plan_weight(device, g, w, k.w) : w;  // only the input gradient reads the weight
  const CudnnApi& a = cudnn();
  const float one = 1.f, zero = 0.f;
  if (dx) {
    find_backward_data(device, h, p, g, wp, dy);
    void* ws = workspace(device, h, p.bwd_data_ws);
    CUDNN_CHECK(a.cudnnConvolutionBackwardData(h.dnn, &one, p.w.d, wp, p.y.d, dy, p.bwd_data.d, p.bwd_data_algo,
                                               ws, p.bwd_data_ws, &zero, p.x.d, dx));
  }
  weight_gradient(device, h, p, g, x, dy, dw, k.dw, accumulate);
  if (db) bias_gradient(device, h, g, db, dy, accumulate);
}

void conv2d_forward_bf16(int device, float* y_f32, uint16_t* y_bf16, const uint16_t* x, const uint16_t* w,
                         const float* bias, const Conv2dParams& g, bool relu) {
  if (g.N == 0) return;  // y is empty
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  const float one = 1.f, zero = 0.f;
  const EpilogueShape e = epilogue_shape(g);
  const int64_t wn = weight_numel(g);
  if (y_bf16 != nullptr) {
    // cuDNN with bfloat16 x, w and y and float compute: the float32 sums rounded once into y;
    // the bias (float32) and the ReLU follow in our epilogue, which rounds again when there is a
    // bias (cuDNN has no bfloat16-in, float32-out convolution to add it before rounding).
    ConvPlan& p = conv_plan(h, g, /*bf16=*/true);
    const KrscScratch k = g.channels_last ? krsc_scratch(device, h, wn, sizeof(uint16_t)) : KrscScratch{};
    const uint16_t* wp = plan_weight(device, g, w, k.w);
    find_forward(device, h, p, x, wp, y_bf16);
    void* ws = workspace(device, h, p.fwd_ws);
    CUDNN_CHECK(cudnn().cudnnConvolutionForward(h.dnn, &one, p.x.d, x, p.w.d, wp, p.fwd.d, p.fwd_algo, ws, p.fwd_ws,
                                                &zero, p.y.d, y_bf16));
    if (bias || relu) bias_relu_bf16(device, y_bf16, bias, e.N, e.C, e.S, relu);
    return;
  }
  // A float32 output: x and w widened to float32 (exact) and the float32 plan. Its products are
  // exact in strict FP32 and in TF32 alike (a bfloat16 value has 8 significant bits, TF32 keeps
  // 11), and its sums are float32: the CPU's contract, with the bias added before any rounding.
  const int64_t xn = g.N * g.C * g.H * g.W;
  float* xf = widened_scratch(device, h, xn + wn);
  float* wf = xf + xn;
  bf16_to_float(device, xf, x, xn);
  bf16_to_float(device, wf, w, wn);
  ConvPlan& p = conv_plan(h, g);
  const KrscScratch k = g.channels_last ? krsc_scratch(device, h, wn, sizeof(float)) : KrscScratch{};
  const float* wp = plan_weight(device, g, wf, k.w);
  find_forward(device, h, p, xf, wp, y_f32);
  void* ws = workspace(device, h, p.fwd_ws);
  CUDNN_CHECK(cudnn().cudnnConvolutionForward(h.dnn, &one, p.x.d, xf, p.w.d, wp, p.fwd.d, p.fwd_algo, ws, p.fwd_ws,
                                              &zero, p.y.d, y_f32));
  if (bias || relu) bias_relu_forward(device, y_f32, bias, e.N, e.C, e.S, relu);
}

void conv2d_backward_bf16(int device, uint16_t* dx, float* dw, float* db, const uint16_t* dy, const uint16_t* x,
                          const uint16_t* w, const Conv2dParams& g, bool accumulate) {
  if (g.N == 0) {
    if (!accumulate) {  // empty sums, as conv2d_backward
      fill(device, dw, 0.f, weight_numel(g));
      if (db) fill(device, db, 0.f, g.O);
    }
    return;
  }
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  const CudnnApi& a = cudnn();
  const float one = 1.f, zero = 0.f;
  // bfloat16 KRSC weight copy (for dx) and the float32 KRSC weight gradient share the scratch
  const KrscScratch k = g.channels_last ? krsc_scratch(device, h, weight_numel(g), sizeof(uint16_t)) : KrscScratch{};
  if (dx) {
    // The input gradient in cuDNN's bfloat16 configuration: float32 sums, rounded once into dx.
    ConvPlan& p = conv_plan(h, g, /*bf16=*/true);
    const uint16_t* wp = plan_weight(device, g, w, k.w);
    find_backward_data(device, h, p, g, wp, dy);
    void* ws = workspace(device, h, p.bwd_data_ws);
    CUDNN_CHECK(a.cudnnConvolutionBackwardData(h.dnn, &one, p.w.d, wp, p.y.d, dy, p.bwd_data.d, p.bwd_data_algo, ws,
                                               p.bwd_data_ws, &zero, p.x.d, dx));
  }
  // The weight gradient must be float32 (the float32 master weights', added into with
  // accumulate), and cuDNN's bfloat16 configuration writes a bfloat16 dw: x and dy are widened
  // (exact) and the float32 plan sums them (exact products in FP32 and TF32 alike, as forward).
  const int64_t xn = g.N * g.C * g.H * g.W, yn = g.N * g.O * g.Ho * g.Wo;
  float* xf = widened_scratch(device, h, xn + yn);
  float* dyf = xf + xn;
  bf16_to_float(device, xf, x, xn);
  bf16_to_float(device, dyf, dy, yn);
  ConvPlan& p = conv_plan(h, g);
  weight_gradient(device, h, p, g, xf, dyf, dw, k.dw, accumulate);
  if (db) bias_gradient(device, h, g, db, dyf, accumulate);
}

void maxpool2d_forward(int device, float* y, const float* x, const Pool2dParams& g) {
  if (g.N == 0 || g.C == 0) return;  // y is empty (cuDNN rejects empty descriptors)
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  PoolPlan& p = pool_plan(h, g);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnn().cudnnPoolingForward(h.dnn, p.pool.d, &one, p.x.d, x, &zero, p.y.d, y));
}

void maxpool2d_backward(int device, float* dx, const float* dy, const float* x, const float* y,
                        const Pool2dParams& g) {
  if (g.N == 0 || g.C == 0) return;  // dx is empty
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  PoolPlan& p = pool_plan(h, g);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnn().cudnnPoolingBackward(h.dnn, p.pool.d, &one, p.y.d, y, p.y.d, dy, p.x.d, x, &zero,
                                           p.x.d, dx));
}

void lrn_forward(int device, float* y, const float* x, const LrnParams& lp) {
  // [N, C, S] as the 4-D tensor [N, C, S, 1] (the window runs across channels only)
  const int64_t N = lp.N, C = lp.C, H = lp.S, W = 1;
  if (N == 0 || C == 0 || H == 0 || W == 0) return;  // y is empty
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  LrnPlan& p = lrn_plan(h, N, C, H, W, lp.size, lp.alpha, lp.beta, lp.k);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnn().cudnnLRNCrossChannelForward(h.dnn, p.lrn.d, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, p.t.d,
                                                  x, &zero, p.t.d, y));
}

void lrn_backward(int device, float* dx, const float* dy, const float* x, const float* y, const LrnParams& lp) {
  const int64_t N = lp.N, C = lp.C, H = lp.S, W = 1;  // as in lrn_forward
  if (N == 0 || C == 0 || H == 0 || W == 0) return;  // dx is empty
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  LrnPlan& p = lrn_plan(h, N, C, H, W, lp.size, lp.alpha, lp.beta, lp.k);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnn().cudnnLRNCrossChannelBackward(h.dnn, p.lrn.d, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, p.t.d,
                                                   y, p.t.d, dy, p.t.d, x, &zero, p.t.d, dx));
}

void gemm(int device, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc) {
  gemm_with_math(device, g_tf32, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_with_math(int device, bool tf32, bool trans_a, bool trans_b, int64_t M, int64_t N,
                    int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                    int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;  // C is empty
  if (K == 0) {
    // An empty inner dimension: C = beta * C, as BLAS defines it (and as the CPU does). Done
    // here: cuBLAS would need leading dimensions >= 1 for operands that have no elements.
    if (beta == 1.f) return;
    for (int64_t r = 0; r < (ldc == N ? 1 : M); ++r) {
      float* row = C + r * ldc;
      const int64_t count = ldc == N ? M * N : N;
      if (beta == 0.f) fill(device, row, 0.f, count);  // overwrite: garbage (NaN) in C must not survive
      else scale(device, row, beta, count);
    }
    return;
  }
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  // cuBLAS requires every leading dimension >= 1 (and >= the rows of its column-major view);
  // with M, N, K >= 1 the callers' row lengths already are, max() keeps it so for any caller.
  const int64_t one = 1;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  CUBLAS_CHECK(cublas().cublasGemmEx(h.blas, trans_b ? b::CUBLAS_OP_T : b::CUBLAS_OP_N,
                                     trans_a ? b::CUBLAS_OP_T : b::CUBLAS_OP_N, as_int(N), as_int(M),
                                     as_int(K), &alpha, B, b::CUDA_R_32F, as_int(std::max(ldb, one)), A,
                                     b::CUDA_R_32F, as_int(std::max(lda, one)), &beta, C, b::CUDA_R_32F,
                                     as_int(std::max(ldc, one)), compute_type(tf32), b::CUBLAS_GEMM_DEFAULT));
}

void linear_forward(int device, float* y, const float* x, const float* w, const float* bias,
                    const LinearParams& p) {
  const int64_t B = p.B, in = p.in, out = p.out;
  if (B == 0 || out == 0) return;  // y is empty
  // One cuBLASLt product with the bias (and ReLU) in its epilogue, where switched on and offered
  if (linear_lt_forward(device, y, false, x, w, false, bias, B, in, out, p.relu, g_tf32.load())) return;
  // in == 0: gemm writes zeros, so y = bias (as on the CPU)
  gemm(device, false, true, B, out, in, 1.f, x, in, w, in, 0.f, y, out);
  bias_relu_forward(device, y, bias, B, out, 1, p.relu);  // nothing to do without bias and relu
}

void linear_forward_bf16(int device, float* y_f32, uint16_t* y_bf16, const uint16_t* x, const uint16_t* w,
                         const float* bias, const LinearParams& p) {
  const int64_t B = p.B, in = p.in, out = p.out;
  if (B == 0 || out == 0) return;  // y is empty
  if (linear_lt_forward(device, y_f32 != nullptr ? static_cast<void*>(y_f32) : y_bf16, y_bf16 != nullptr, x, w, true,
                        bias, B, in, out, p.relu, false))
    return;
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);  // the workspace is per-device shared state
  // A bfloat16 output is summed in float32 first, so that the bias is added before the one
  // rounding (as on the CPU).
  float* sum = y_f32 != nullptr ? y_f32
                                : static_cast<float*>(workspace(device, h, static_cast<size_t>(B * out) * sizeof(float)));
  if (in == 0) {
    fill(device, sum, 0.f, B * out);  // an empty sum; cuBLAS wants leading dimensions >= 1
  } else {
    const float one = 1.f, zero = 0.f;
    // Row-major y[B,out] = x[B,in] w[out,in]^T is column-major y^T = w x^T: (w^T)^T = OP_T on
    // w stored [out,in] (column-major [in,out], ld in), x^T = OP_N on x (column-major [in,B]).
    CUBLAS_CHECK(cublas().cublasGemmEx(h.blas, b::CUBLAS_OP_T, b::CUBLAS_OP_N, as_int(out), as_int(B), as_int(in),
                                       &one, w, b::CUDA_R_16BF, as_int(in), x, b::CUDA_R_16BF, as_int(in), &zero,
                                       sum, b::CUDA_R_32F, as_int(out), b::CUBLAS_COMPUTE_32F,
                                       b::CUBLAS_GEMM_DEFAULT));
  }
  if (y_bf16 != nullptr && p.relu) {
    bias_relu_forward(device, sum, bias, B, out, 1, true);  // in float32, then the one rounding
    bias_to_bf16(device, y_bf16, sum, nullptr, B, out);
  } else if (y_bf16 != nullptr) {
    bias_to_bf16(device, y_bf16, sum, bias, B, out);
  } else {
    bias_relu_forward(device, sum, bias, B, out, 1, p.relu);
  }
}

void linear_backward_bf16(int device, uint16_t* dx, float* dw, float* db, const uint16_t* dy, const uint16_t* x,
                          const uint16_t* w, const LinearParams& p, bool accumulate) {
  const int64_t B = p.B, in = p.in, out = p.out;
  DeviceHandles& h = handles(device);
  std::lock_guard<std::mutex> lock(h.mutex);
  const float one = 1.f, zero = 0.f, beta = accumulate ? 1.f : 0.f;
  // dx [B, in] = dy [B, out] @ w [out, in]: column-major dx^T [in, B] = w^T [in, out] dy^T [out, B]
  // (w stored [out, in] is column-major [in, out]: OP_N, ld in; dy: OP_N, ld out).
  if (dx != nullptr && B > 0 && in > 0) {
    if (out == 0) {
      zero_bf16(device, dx, B * in);  // an empty sum
    } else {
      CUBLAS_CHECK(cublas().cublasGemmEx(h.blas, b::CUBLAS_OP_N, b::CUBLAS_OP_N, as_int(in), as_int(B), as_int(out), &one,
                                         w, b::CUDA_R_16BF, as_int(in), dy, b::CUDA_R_16BF, as_int(out), &zero, dx,
                                         b::CUDA_R_16BF, as_int(in), b::CUBLAS_COMPUTE_32F, b::CUBLAS_GEMM_DEFAULT));
    }
  }
  // dw and db in one cuBLASLt product with the bias gradient in its epilogue, where switched on
  // and offered (linear_lt.h); dx above stays cublasGemmEx. (h.mutex held: linear_lt takes its own.)
  if (db != nullptr && linear_lt_weight_grad(device, dw, db, dy, x, true, B, in, out, accumulate, false)) return;
  // dw [out, in] (+)= dy^T [out, B] @ x [B, in]: column-major dw^T [in, out] = x^T [in, B] dy [B, out]
  // (x stored [B, in] is column-major [in, B]: OP_N, ld in; dy stored [B, out] is column-major
  // [out, B], transposed: OP_T, ld out).
  if (out > 0 && in > 0) {
    if (B == 0) {
      if (!accumulate) fill(device, dw, 0.f, out * in);
    } else {
      CUBLAS_CHECK(cublas().cublasGemmEx(h.blas, b::CUBLAS_OP_N, b::CUBLAS_OP_T, as_int(in), as_int(out), as_int(B),
                                         &one, x, b::CUDA_R_16BF, as_int(in), dy, b::CUDA_R_16BF, as_int(out), &beta,
                                         dw, b::CUDA_R_32F, as_int(in), b::CUBLAS_COMPUTE_32F, b::CUBLAS_GEMM_DEFAULT));
    }
  }
  if (db) bias_backward_bf16(device, db, dy, B, out, accumulate);
}

void linear_backward(int device, float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const LinearParams& p, bool accumulate) {
  const int64_t B = p.B, in = p.in, out = p.out;
  // Empty sizes follow the CPU: B == 0 gives dw, db = 0 (unchanged when accumulating); out == 0
  // gives dx = 0; gemm and bias_backward handle each (K == 0 is beta * C, an empty sum is 0).
  if (dx) gemm(device, false, false, B, in, out, 1.f, dy, out, w, in, 0.f, dx, in);
  // dw and db in one cuBLASLt product with the bias gradient in its epilogue, where switched on
  // and offered (linear_lt.h); else the GEMM and our bias-gradient kernel.
  if (db != nullptr && linear_lt_weight_grad(device, dw, db, dy, x, false, B, in, out, accumulate, g_tf32.load())) return;
  gemm(device, true, false, out, in, B, 1.f, dy, out, x, in, accumulate ? 1.f : 0.f, dw, in);
  if (db) {
    DeviceHandles& h = handles(device);
    std::lock_guard<std::mutex> lock(h.mutex);  // the bias scratch is per-device shared state
    bias_backward(device, db, dy, B, out, 1, accumulate, bias_scratch(device, h, bias_backward_scratch(B, out, 1)));
  }
}

}  // namespace alexnet::cuda
