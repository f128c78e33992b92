// cuBLASLt fused epilogues for the fully connected layers (see linear_lt.h).
#include "linear_lt.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "dnn.h"
#include "dynload/loader.h"
#include "ops.h"
#include "runtime.h"

namespace alexnet::cuda {

namespace b = alexnet::cuda::blas;

namespace {

std::atomic<bool> g_on{[] {
  const char* v = std::getenv("ALEXNET_CUBLASLT");
  return v != nullptr && std::strcmp(v, "1") == 0;
}()};
std::atomic<uint64_t> g_forward{0}, g_weight_grad{0}, g_fallbacks{0};

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLASLt's split-K / stream-K scratch
// The heuristic's default CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_{A,B,C,D}_BYTES: the algorithms it
// returns may assume pointers this aligned. Ours are (the allocator's blocks, the parameter
// store's views); a view that is not falls back instead of reaching such an algorithm.
constexpr uintptr_t kAlignment = 256;

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kAlignment == 0; }

enum class LtOp { Forward, WeightGrad };

// One product: its shape, types and epilogue; its descriptors and the heuristic's algorithm are
// kept for the process.
struct LtKey {
  LtOp op;
  int64_t B, in, out;
  bool bf16_inputs, y_bf16, relu, bias, tf32;
  bool operator<(const LtKey& o) const {
    return std::tie(op, B, in, out, bf16_inputs, y_bf16, relu, bias, tf32) <
           std::tie(o.op, o.B, o.in, o.out, o.bf16_inputs, o.y_bf16, o.relu, o.bias, o.tf32);
  }
};

struct LtPlan {
  bool usable = false;  // the heuristic returned an algorithm (and cublasLtMatmul took it)
  b::cublasLtMatmulDesc_t desc = nullptr;
  b::cublasLtMatrixLayout_t a = nullptr, bl = nullptr, d = nullptr;
  b::cublasLtMatmulAlgo_t algo{};
};

struct LtDevice {
  std::mutex mutex;  // the plans' descriptors get the bias pointer per call; the scratch
  b::cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  float* bias_sum = nullptr;  // an accumulated bias gradient's fresh part (grows; stream-ordered free)
  int64_t bias_sum_floats = 0;
  std::map<LtKey, std::unique_ptr<LtPlan>> plans;
};

LtDevice* lt_device(int device, const CublasLtApi& lt) {
  static auto* all = new std::map<int, std::unique_ptr<LtDevice>>();  // leaked: queued work may use them
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);
  auto it = all->find(device);
  if (it != all->end()) return it->second.get();
  auto d = std::make_unique<LtDevice>();
  CUBLAS_CHECK(lt.cublasLtCreate(&d->handle));
  d->workspace = alloc(device, kWorkspaceBytes);
  return all->emplace(device, std::move(d)).first->second.get();
}

template <typename T>
void set_attr(const CublasLtApi& lt, b::cublasLtMatmulDesc_t desc, b::cublasLtMatmulDescAttributes_t attr, const T& v) {
  CUBLAS_CHECK(lt.cublasLtMatmulDescSetAttribute(desc, attr, &v, sizeof v));
}

// A column-major matrix as cuBLASLt describes it: rows, columns, leading dimension.
struct Layout {
  b::cudaDataType_t type;
  int64_t rows, cols, ld;
};

// What one product is: D = op(A) op(B) with `epilogue` (and C = D, beta given per call).
struct LtSpec {
  b::cublasComputeType_t compute;
  b::cublasOperation_t trans_a, trans_b;
  Layout a, b, d;
  b::cublasLtEpilogue_t epilogue;
  bool bias_f32;  // set BIAS_DATA_TYPE to float32 (else the bias has D's type, the default)
};

// Both products: bfloat16 or float32 inputs; float32 accumulation, TF32 where it is on for
// float32 inputs.
b::cudaDataType_t input_type(const LtKey& k) { return k.bf16_inputs ? b::CUDA_R_16BF : b::CUDA_R_32F; }
b::cublasComputeType_t compute_type(const LtKey& k) {
  return k.bf16_inputs || !k.tf32 ? b::CUBLAS_COMPUTE_32F : b::CUBLAS_COMPUTE_32F_FAST_TF32;
}

// Row-major y[B,out] = x[B,in] w[out,in]^T is column-major y^T [out,B] = op(w) x^T with w
// stored column-major [in,out] (ld in) transposed, x^T column-major [in,B] (ld in) as is.
// The bias vector has one element per row of D (out).
LtSpec forward_spec(const LtKey& k) {
  const b::cudaDataType_t in_type = input_type(k);
  const b::cudaDataType_t out_type = k.y_bf16 ? b::CUDA_R_16BF : b::CUDA_R_32F;
  const b::cublasLtEpilogue_t epilogue = k.relu ? (k.bias ? b::CUBLASLT_EPILOGUE_RELU_BIAS : b::CUBLASLT_EPILOGUE_RELU)
                                                : (k.bias ? b::CUBLASLT_EPILOGUE_BIAS : b::CUBLASLT_EPILOGUE_DEFAULT);
  return LtSpec{
      compute_type(k),
      b::CUBLAS_OP_T,
      b::CUBLAS_OP_N,
      Layout{in_type, k.in, k.out, k.in},  // A = w
      Layout{in_type, k.in, k.B, k.in},    // B = x
      Layout{out_type, k.out, k.B, k.out},  // D = y
      epilogue,
      // the bias stays float32 (the master copy's type) for a bfloat16 y too: added before the one rounding
      k.bias,
  };
}

// Row-major dw[out,in] = dy[B,out]^T x[B,in] is column-major dw^T [in,out] = x^T dy with x
// stored column-major [in,B] (ld in) as is and dy stored column-major [out,B] (ld out)
// transposed: m = in, n = out, k = B. dy is operand B, so the bias gradient is BGRADB: one
// element per column of D (out), the reduction over k (the batch). Its type is D's (float32
// for both input types), the default, so BIAS_DATA_TYPE is left alone.
LtSpec weight_grad_spec(const LtKey& k) {
  const b::cudaDataType_t in_type = input_type(k);
  return LtSpec{
      compute_type(k),
      b::CUBLAS_OP_N,
      b::CUBLAS_OP_T,
      Layout{in_type, k.in, k.B, k.in},          // A = x
      Layout{in_type, k.out, k.B, k.out},        // B = dy
      Layout{b::CUDA_R_32F, k.in, k.out, k.in},  // D = C = dw
      b::CUBLASLT_EPILOGUE_BGRADB,
      false,
  };
}

b::cublasLtMatrixLayout_t make_layout(const CublasLtApi& lt, const Layout& l) {
  b::cublasLtMatrixLayout_t m = nullptr;
  CUBLAS_CHECK(lt.cublasLtMatrixLayoutCreate(&m, l.type, static_cast<uint64_t>(l.rows), static_cast<uint64_t>(l.cols), l.ld));
  return m;
}

LtPlan& plan_for(const CublasLtApi& lt, LtDevice& dev, const LtKey& k) {
  auto it = dev.plans.find(k);
  if (it != dev.plans.end()) return *it->second;
  const LtSpec s = k.op == LtOp::Forward ? forward_spec(k) : weight_grad_spec(k);
  auto p = std::make_unique<LtPlan>();
  // A call below that throws leaves no descriptor behind: the plan is kept only when complete.
  struct Unmade {
    const CublasLtApi& lt;
    LtPlan* p;
    ~Unmade() {
      if (p == nullptr) return;
      if (p->desc != nullptr) lt.cublasLtMatmulDescDestroy(p->desc);
      for (b::cublasLtMatrixLayout_t l : {p->a, p->bl, p->d})
        if (l != nullptr) lt.cublasLtMatrixLayoutDestroy(l);
    }
  } unmade{lt, p.get()};
  CUBLAS_CHECK(lt.cublasLtMatmulDescCreate(&p->desc, s.compute, b::CUDA_R_32F));
  set_attr(lt, p->desc, b::CUBLASLT_MATMUL_DESC_TRANSA, static_cast<int32_t>(s.trans_a));
  set_attr(lt, p->desc, b::CUBLASLT_MATMUL_DESC_TRANSB, static_cast<int32_t>(s.trans_b));
  set_attr(lt, p->desc, b::CUBLASLT_MATMUL_DESC_EPILOGUE, static_cast<int32_t>(s.epilogue));
  if (s.bias_f32) set_attr(lt, p->desc, b::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(b::CUDA_R_32F));
  p->a = make_layout(lt, s.a);
  p->bl = make_layout(lt, s.b);
  p->d = make_layout(lt, s.d);
  b::cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(lt.cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = kWorkspaceBytes;
  b::cublasStatus_t st = lt.cublasLtMatmulPreferenceSetAttribute(pref, b::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  b::cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (st == b::CUBLAS_STATUS_SUCCESS)
    st = lt.cublasLtMatmulAlgoGetHeuristic(dev.handle, p->desc, p->a, p->bl, p->d, p->d, pref, 1, &result, &found);
  lt.cublasLtMatmulPreferenceDestroy(pref);
  // NOT_SUPPORTED (no kernel for this combination, e.g. a float32 bias with a bfloat16 y, or a
  // bias gradient with these types, on some versions) leaves the plan unusable: the caller runs
  // cublasGemmEx + our kernel instead.
  if (st == b::CUBLAS_STATUS_SUCCESS && found > 0 && result.state == b::CUBLAS_STATUS_SUCCESS) {
    p->usable = true;
    p->algo = result.algo;
  } else if (st != b::CUBLAS_STATUS_SUCCESS && st != b::CUBLAS_STATUS_NOT_SUPPORTED) {
    CUBLAS_CHECK(st);
  }
  unmade.p = nullptr;
  return *dev.plans.emplace(k, std::move(p)).first->second;
}

// The one launch both directions make: D = alpha op(A) op(B) + beta D with the plan's epilogue
// and `bias` as its bias (forward, read) or bias gradient (backward, written). NOT_SUPPORTED
// (cuBLASLt refused the call before launching anything) marks the plan unusable and returns
// false; any other failure throws.
bool launch(const CublasLtApi& lt, LtDevice& dev, int device, LtPlan& p, const void* a, const void* bm, void* d,
            float beta, const void* bias) {
  if (bias != nullptr) set_attr(lt, p.desc, b::CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
  const float one = 1.f;
  const b::cublasStatus_t st = lt.cublasLtMatmul(dev.handle, p.desc, &one, a, p.a, bm, p.bl, &beta, d, p.d, d, p.d, &p.algo,
                                                 dev.workspace, kWorkspaceBytes, static_cast<cudaStream_t>(stream(device)));
  if (st == b::CUBLAS_STATUS_NOT_SUPPORTED) {
    p.usable = false;
    return false;
  }
  CUBLAS_CHECK(st);
  return true;
}

// Whether the path is asked for at all (a false here is not a fallback).
bool wanted(int64_t B, int64_t in, int64_t out) { return g_on && !deterministic() && B > 0 && in > 0 && out > 0; }

bool fell_back() {
  ++g_fallbacks;
  return false;
}

}  // namespace

void set_cublaslt_epilogues(bool on) { g_on = on; }
bool cublaslt_epilogues() { return g_on; }

CublasLtCounts cublaslt_counts() {
  CublasLtCounts c;
  c.forward = g_forward;
  c.weight_grad = g_weight_grad;
  c.fallbacks = g_fallbacks;
  return c;
}

bool linear_lt_forward(int device, void* y, bool y_bf16, const void* x, const void* w, bool bf16_inputs,
                       const float* bias, int64_t B, int64_t in, int64_t out, bool relu, bool tf32) {
  if (!wanted(B, in, out)) return false;
  const CublasLtApi* lt = cublaslt();
  if (lt == nullptr || !aligned(y) || !aligned(x) || !aligned(w) || !aligned(bias)) return fell_back();
  LtDevice* dev = lt_device(device, *lt);
  std::lock_guard<std::mutex> lock(dev->mutex);
  LtPlan& p = plan_for(*lt, *dev, LtKey{LtOp::Forward, B, in, out, bf16_inputs, y_bf16, relu, bias != nullptr, tf32});
  if (!p.usable || !launch(*lt, *dev, device, p, w, x, y, 0.f, bias)) return fell_back();
  ++g_forward;
  return true;
}

bool linear_lt_weight_grad(int device, float* dw, float* db, const void* dy, const void* x, bool bf16_inputs,
                           int64_t B, int64_t in, int64_t out, bool accumulate, bool tf32) {
  if (!wanted(B, in, out)) return false;
  const CublasLtApi* lt = cublaslt();
  if (lt == nullptr || db == nullptr || !aligned(dw) || !aligned(db) || !aligned(dy) || !aligned(x)) return fell_back();
  LtDevice* dev = lt_device(device, *lt);
  std::lock_guard<std::mutex> lock(dev->mutex);
  LtPlan& p = plan_for(*lt, *dev, LtKey{LtOp::WeightGrad, B, in, out, bf16_inputs, false, false, true, tf32});
  if (!p.usable) return fell_back();
  // Accumulating: dw takes beta = 1; the bias gradient, which cuBLASLt overwrites, is written to
  // bias_sum and added into db after (db + sum, one rounding: what bias_backward's accumulate does).
  float* bias_out = db;
  if (accumulate) {
    if (dev->bias_sum_floats < out) {
      if (capturing(device)) return fell_back();  // a kept buffer must not be the graph's memory
      if (dev->bias_sum != nullptr) free(device, dev->bias_sum);
      dev->bias_sum = nullptr;
      dev->bias_sum_floats = 0;
      dev->bias_sum = static_cast<float*>(alloc(device, static_cast<size_t>(out) * sizeof(float)));
      dev->bias_sum_floats = out;
    }
    bias_out = dev->bias_sum;
  }
  if (!launch(*lt, *dev, device, p, x, dy, dw, accumulate ? 1.f : 0.f, bias_out)) return fell_back();
  if (accumulate) axpy(device, db, 1.f, bias_out, out);
  ++g_weight_grad;
  return true;
}

}  // namespace alexnet::cuda
