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
#include "runtime.h"

namespace alexnet::cuda {

namespace b = alexnet::cuda::blas;

namespace {

std::atomic<bool> g_on{[] {
  const char* v = std::getenv("ALEXNET_CUBLASLT");
  return v != nullptr && std::strcmp(v, "1") == 0;
}()};

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLASLt's split-K / stream-K scratch

// One shape and type: its descriptors and the algorithm the heuristic gave, kept for the process.
struct LtKey {
  int64_t B, in, out;
  bool bf16_inputs, y_bf16, relu, bias, tf32;
  bool operator<(const LtKey& o) const {
    return std::tie(B, in, out, bf16_inputs, y_bf16, relu, bias, tf32) <
           std::tie(o.B, o.in, o.out, o.bf16_inputs, o.y_bf16, o.relu, o.bias, o.tf32);
  }
};

struct LtPlan {
  bool usable = false;  // the heuristic returned an algorithm
  b::cublasLtMatmulDesc_t desc = nullptr;
  b::cublasLtMatrixLayout_t a = nullptr, bl = nullptr, d = nullptr;
  b::cublasLtMatmulAlgo_t algo{};
};

struct LtDevice {
  std::mutex mutex;  // the plans' descriptors get the bias pointer per call
  b::cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
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

LtPlan& plan_for(const CublasLtApi& lt, LtDevice& dev, const LtKey& k) {
  auto it = dev.plans.find(k);
  if (it != dev.plans.end()) return *it->second;
  auto p = std::make_unique<LtPlan>();
  const b::cublasComputeType_t compute =
      k.bf16_inputs || !k.tf32 ? b::CUBLAS_COMPUTE_32F : b::CUBLAS_COMPUTE_32F_FAST_TF32;
  const b::cudaDataType_t in_type = k.bf16_inputs ? b::CUDA_R_16BF : b::CUDA_R_32F;
  const b::cudaDataType_t out_type = k.y_bf16 ? b::CUDA_R_16BF : b::CUDA_R_32F;
  CUBLAS_CHECK(lt.cublasLtMatmulDescCreate(&p->desc, compute, b::CUDA_R_32F));
  // Row-major y[B,out] = x[B,in] w[out,in]^T is column-major y^T [out,B] = op(w) x^T with w
  // stored column-major [in,out] (ld in) transposed, x^T column-major [in,B] (ld in) as is.
  set_attr(lt, p->desc, b::CUBLASLT_MATMUL_DESC_TRANSA, static_cast<int32_t>(b::CUBLAS_OP_T));
  set_attr(lt, p->desc, b::CUBLASLT_MATMUL_DESC_TRANSB, static_cast<int32_t>(b::CUBLAS_OP_N));
  const b::cublasLtEpilogue_t epilogue = k.relu ? (k.bias ? b::CUBLASLT_EPILOGUE_RELU_BIAS : b::CUBLASLT_EPILOGUE_RELU)
                                                : (k.bias ? b::CUBLASLT_EPILOGUE_BIAS : b::CUBLASLT_EPILOGUE_DEFAULT);
  set_attr(lt, p->desc, b::CUBLASLT_MATMUL_DESC_EPILOGUE, static_cast<int32_t>(epilogue));
  // the bias stays float32 (the master copy's type) for a bfloat16 y too: added before the one rounding
  if (k.bias) set_attr(lt, p->desc, b::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(b::CUDA_R_32F));
  CUBLAS_CHECK(lt.cublasLtMatrixLayoutCreate(&p->a, in_type, static_cast<uint64_t>(k.in), static_cast<uint64_t>(k.out), k.in));
  CUBLAS_CHECK(lt.cublasLtMatrixLayoutCreate(&p->bl, in_type, static_cast<uint64_t>(k.in), static_cast<uint64_t>(k.B), k.in));
  CUBLAS_CHECK(lt.cublasLtMatrixLayoutCreate(&p->d, out_type, static_cast<uint64_t>(k.out), static_cast<uint64_t>(k.B), k.out));
  b::cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(lt.cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = kWorkspaceBytes;
  b::cublasStatus_t st = lt.cublasLtMatmulPreferenceSetAttribute(pref, b::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  b::cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (st == b::CUBLAS_STATUS_SUCCESS)
    st = lt.cublasLtMatmulAlgoGetHeuristic(dev.handle, p->desc, p->a, p->bl, p->d, p->d, pref, 1, &result, &found);
  lt.cublasLtMatmulPreferenceDestroy(pref);
  // NOT_SUPPORTED (no kernel for this combination, e.g. a float32 bias with a bfloat16 y on some
  // versions) leaves the plan unusable: the caller runs cublasGemmEx + our kernel instead.
  if (st == b::CUBLAS_STATUS_SUCCESS && found > 0 && result.state == b::CUBLAS_STATUS_SUCCESS) {
    p->usable = true;
    p->algo = result.algo;
  } else if (st != b::CUBLAS_STATUS_SUCCESS && st != b::CUBLAS_STATUS_NOT_SUPPORTED) {
    CUBLAS_CHECK(st);
  }
  return *dev.plans.emplace(k, std::move(p)).first->second;
}

}  // namespace

void set_cublaslt_epilogues(bool on) { g_on = on; }
bool cublaslt_epilogues() { return g_on; }

bool linear_lt_forward(int device, void* y, bool y_bf16, const void* x, const void* w, bool bf16_inputs,
                       const float* bias, int64_t B, int64_t in, int64_t out, bool relu, bool tf32) {
  if (!g_on || deterministic() || B == 0 || in == 0 || out == 0) return false;
  const CublasLtApi* lt = cublaslt();
  if (lt == nullptr) return false;
  LtDevice* dev = lt_device(device, *lt);
  std::lock_guard<std::mutex> lock(dev->mutex);
  LtPlan& p = plan_for(*lt, *dev, LtKey{B, in, out, bf16_inputs, y_bf16, relu, bias != nullptr, tf32});
  if (!p.usable) return false;
  if (bias) set_attr(*lt, p.desc, b::CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
  const float one = 1.f, zero = 0.f;
  CUBLAS_CHECK(lt->cublasLtMatmul(dev->handle, p.desc, &one, w, p.a, x, p.bl, &zero, y, p.d, y, p.d, &p.algo,
                                  dev->workspace, kWorkspaceBytes, static_cast<cudaStream_t>(stream(device))));
  return true;
}

}  // namespace alexnet::cuda
