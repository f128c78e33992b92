// Our own declarations of the part of cuBLAS 12 / 13 that the CUDA backend calls, so that the
// addon compiles without cuBLAS's headers and loads libcublas.so.{13,12} at run time.
//
// Every value, layout and signature is copied from docs/cuda-abi.md, Part B (cuBLAS 12.6.4 and
// 13.0.0 headers; everything used here is identical in both). "§B2" below means
// "docs/cuda-abi.md, section B2", "§D7" its Part D, item 7. Same layout as cudnn_api.h: opaque
// tags global, everything else in alexnet::cuda::blas under cuBLAS's own names, enums as
// X-lists, functions as PFN_<exported symbol> pointer types.
//
// Symbol names (§B8.1, §D7): the v2 API is exported as `<name>_v2` (cublasCreate_v2,
// cublasSgemm_v2, ...). The un-suffixed names are ALSO exported but are the legacy v1 API with
// different signatures: never dlsym "cublasSgemm". Functions born after v2 (cublasSetMathMode,
// cublasGemmEx, cublasGetStatusName, cublasGetProperty) have no suffix.
#pragma once

#include <cstddef>
#include <cstdint>

// ---- opaque types (§B1) -------------------------------------------------------------------
struct cublasContext;
struct cublasLtContext;  // cublasLt.h:67 (13.1): typedef struct cublasLtContext* cublasLtHandle_t
struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;  // as driver_types.h declares it

#ifndef ALEXNET_ENUMERATOR
#define ALEXNET_ENUMERATOR(name, value) name = value,
#endif

namespace alexnet::cuda::blas {

typedef ::cublasContext* cublasHandle_t;  // cublas_api.h:237 (13.0)

// ---- cublasStatus_t (§B2; sparse values) -----------------------------------------------------
#define ALEXNET_CUBLAS_STATUS(X)         \
  X(CUBLAS_STATUS_SUCCESS, 0)            \
  X(CUBLAS_STATUS_NOT_INITIALIZED, 1)    \
  X(CUBLAS_STATUS_ALLOC_FAILED, 3)       \
  X(CUBLAS_STATUS_INVALID_VALUE, 7)      \
  X(CUBLAS_STATUS_ARCH_MISMATCH, 8)      \
  X(CUBLAS_STATUS_MAPPING_ERROR, 11)     \
  X(CUBLAS_STATUS_EXECUTION_FAILED, 13)  \
  X(CUBLAS_STATUS_INTERNAL_ERROR, 14)    \
  X(CUBLAS_STATUS_NOT_SUPPORTED, 15)     \
  X(CUBLAS_STATUS_LICENSE_ERROR, 16)
typedef enum { ALEXNET_CUBLAS_STATUS(ALEXNET_ENUMERATOR) } cublasStatus_t;

// ---- cublasOperation_t (§B3) -----------------------------------------------------------------
#define ALEXNET_CUBLAS_OPERATION(X) \
  X(CUBLAS_OP_N, 0)                 \
  X(CUBLAS_OP_T, 1)                 \
  X(CUBLAS_OP_C, 2)                 \
  X(CUBLAS_OP_HERMITAN, 2)          \
  X(CUBLAS_OP_CONJG, 3) /* placeholder, not supported */
typedef enum { ALEXNET_CUBLAS_OPERATION(ALEXNET_ENUMERATOR) } cublasOperation_t;

// ---- cublasMath_t (§B4). CUBLAS_FP32_EMULATED_BF16X9_MATH (4) is 13.0-only: left out. -------
#define ALEXNET_CUBLAS_MATH(X)                                  \
  X(CUBLAS_DEFAULT_MATH, 0)                                     \
  X(CUBLAS_TENSOR_OP_MATH, 1) /* deprecated by comment only */  \
  X(CUBLAS_PEDANTIC_MATH, 2)                                    \
  X(CUBLAS_TF32_TENSOR_OP_MATH, 3)                              \
  X(CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION, 16) /* a flag, OR-able */
typedef enum { ALEXNET_CUBLAS_MATH(ALEXNET_ENUMERATOR) } cublasMath_t;

// ---- cublasComputeType_t (§B5; NOT cudaDataType_t: CUBLAS_COMPUTE_32F is 68, §D8).
// CUBLAS_COMPUTE_32F_EMULATED_16BFX9 (78) is 13.0-only: left out. 76 is unused. -------------
#define ALEXNET_CUBLAS_COMPUTE_TYPE(X)   \
  X(CUBLAS_COMPUTE_16F, 64)              \
  X(CUBLAS_COMPUTE_16F_PEDANTIC, 65)     \
  X(CUBLAS_COMPUTE_32F, 68)              \
  X(CUBLAS_COMPUTE_32F_PEDANTIC, 69)     \
  X(CUBLAS_COMPUTE_64F, 70)              \
  X(CUBLAS_COMPUTE_64F_PEDANTIC, 71)     \
  X(CUBLAS_COMPUTE_32I, 72)              \
  X(CUBLAS_COMPUTE_32I_PEDANTIC, 73)     \
  X(CUBLAS_COMPUTE_32F_FAST_16F, 74)     \
  X(CUBLAS_COMPUTE_32F_FAST_16BF, 75)    \
  X(CUBLAS_COMPUTE_32F_FAST_TF32, 77)
typedef enum { ALEXNET_CUBLAS_COMPUTE_TYPE(ALEXNET_ENUMERATOR) } cublasComputeType_t;

// ---- cudaDataType_t (§B6, library_types.h): the real types we may hand to cublasGemmEx.
// Not cuDNN's numbering: bf16 is CUDA_R_16BF = 14 here but CUDNN_DATA_BFLOAT16 = 9 (§D8).
// In a .cu file that also sees <library_types.h>, qualify these (blas::CUDA_R_32F). ---------
#define ALEXNET_CUDA_DATA_TYPE(X) \
  X(CUDA_R_32F, 0)                \
  X(CUDA_R_64F, 1)                \
  X(CUDA_R_16F, 2)                \
  X(CUDA_R_8I, 3)                 \
  X(CUDA_R_32I, 10)               \
  X(CUDA_R_16BF, 14)
typedef enum { ALEXNET_CUDA_DATA_TYPE(ALEXNET_ENUMERATOR) } cudaDataType_t;
typedef cudaDataType_t cudaDataType;

// ---- cublasGemmAlgo_t (§B7): the default is NEGATIVE. The old spellings CUBLAS_GEMM_DFALT /
// _DFALT_TENSOR_OP are left out (docs/cuda-abi.md does not say whether they are enumerators or macros).
#define ALEXNET_CUBLAS_GEMM_ALGO(X)        \
  X(CUBLAS_GEMM_DEFAULT, -1)               \
  X(CUBLAS_GEMM_DEFAULT_TENSOR_OP, 99)
typedef enum { ALEXNET_CUBLAS_GEMM_ALGO(ALEXNET_ENUMERATOR) } cublasGemmAlgo_t;

// ---- libraryPropertyType (§A1, library_types.h:117-122): for the handle-free version query.
#define ALEXNET_LIBRARY_PROPERTY_TYPE(X) \
  X(MAJOR_VERSION, 0)                    \
  X(MINOR_VERSION, 1)                    \
  X(PATCH_LEVEL, 2)
typedef enum { ALEXNET_LIBRARY_PROPERTY_TYPE(ALEXNET_ENUMERATOR) } libraryPropertyType;

// ---- cuBLASLt (§B9, cublasLt.h of cuBLAS 13.1.1; libcublasLt.so.N, loaded beside libcublas):
// the matrix product with a fused epilogue (bias, ReLU) for the fully connected layers.
// Only the attributes and epilogues we set are declared; the values are sparse.
#define ALEXNET_CUBLASLT_MATMUL_DESC_ATTRIBUTES(X) \
  X(CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, 0)          \
  X(CUBLASLT_MATMUL_DESC_SCALE_TYPE, 1)            \
  X(CUBLASLT_MATMUL_DESC_POINTER_MODE, 2)          \
  X(CUBLASLT_MATMUL_DESC_TRANSA, 3)                \
  X(CUBLASLT_MATMUL_DESC_TRANSB, 4)                \
  X(CUBLASLT_MATMUL_DESC_EPILOGUE, 7)              \
  X(CUBLASLT_MATMUL_DESC_BIAS_POINTER, 8)          \
  X(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, 26)
typedef enum { ALEXNET_CUBLASLT_MATMUL_DESC_ATTRIBUTES(ALEXNET_ENUMERATOR) } cublasLtMatmulDescAttributes_t;

// Bit flags in the header (RELU 2, BIAS 4, | 128 for an auxiliary output); the combined values.
#define ALEXNET_CUBLASLT_EPILOGUE(X) \
  X(CUBLASLT_EPILOGUE_DEFAULT, 1)    \
  X(CUBLASLT_EPILOGUE_RELU, 2)       \
  X(CUBLASLT_EPILOGUE_BIAS, 4)       \
  X(CUBLASLT_EPILOGUE_RELU_BIAS, 6)  \
  X(CUBLASLT_EPILOGUE_BGRADB, 512)
typedef enum { ALEXNET_CUBLASLT_EPILOGUE(ALEXNET_ENUMERATOR) } cublasLtEpilogue_t;

#define ALEXNET_CUBLASLT_PREFERENCE_ATTRIBUTES(X) \
  X(CUBLASLT_MATMUL_PREF_SEARCH_MODE, 0)          \
  X(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, 1)
typedef enum { ALEXNET_CUBLASLT_PREFERENCE_ATTRIBUTES(ALEXNET_ENUMERATOR) } cublasLtMatmulPreferenceAttributes_t;

// Semi-opaque structs the caller allocates (cublasLt.h:98-151): only their sizes matter.
struct cublasLtMatrixLayoutOpaque_t {
  uint64_t data[8];
};
struct cublasLtMatmulAlgo_t {
  uint64_t data[8];
};
struct cublasLtMatmulDescOpaque_t {
  uint64_t data[32];
};
struct cublasLtMatmulPreferenceOpaque_t {
  uint64_t data[8];
};
typedef ::cublasLtContext* cublasLtHandle_t;
typedef cublasLtMatrixLayoutOpaque_t* cublasLtMatrixLayout_t;
typedef cublasLtMatmulDescOpaque_t* cublasLtMatmulDesc_t;
typedef cublasLtMatmulPreferenceOpaque_t* cublasLtMatmulPreference_t;
// cublasLt.h:2221-2245: one result of cublasLtMatmulAlgoGetHeuristic (96 bytes on x86-64)
struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};
#define ALEXNET_CUBLASLT_STRUCTS(S)  \
  S(cublasLtMatrixLayoutOpaque_t)    \
  S(cublasLtMatmulAlgo_t)            \
  S(cublasLtMatmulDescOpaque_t)      \
  S(cublasLtMatmulPreferenceOpaque_t) \
  S(cublasLtMatmulHeuristicResult_t)
#define ALEXNET_CUBLASLT_HEURISTIC_FIELDS(F, T) F(T, algo) F(T, workspaceSize) F(T, state) F(T, wavesCount) F(T, reserved)

#define ALEXNET_CUBLAS_ENUMS(E)                                                \
  E(cublasStatus_t, ALEXNET_CUBLAS_STATUS)                                     \
  E(cublasOperation_t, ALEXNET_CUBLAS_OPERATION)                               \
  E(cublasMath_t, ALEXNET_CUBLAS_MATH)                                         \
  E(cublasComputeType_t, ALEXNET_CUBLAS_COMPUTE_TYPE)                          \
  E(cudaDataType_t, ALEXNET_CUDA_DATA_TYPE)                                    \
  E(cublasGemmAlgo_t, ALEXNET_CUBLAS_GEMM_ALGO)                                \
  E(libraryPropertyType, ALEXNET_LIBRARY_PROPERTY_TYPE)                        \
  E(cublasLtMatmulDescAttributes_t, ALEXNET_CUBLASLT_MATMUL_DESC_ATTRIBUTES)   \
  E(cublasLtEpilogue_t, ALEXNET_CUBLASLT_EPILOGUE)                             \
  E(cublasLtMatmulPreferenceAttributes_t, ALEXNET_CUBLASLT_PREFERENCE_ATTRIBUTES)

#define ALEXNET_CUBLAS_HANDLES(H) H(cublasHandle_t) H(cublasLtHandle_t)

// ---- functions (§B8: exported symbol names and signatures) ------------------------------------
typedef cublasStatus_t (*PFN_cublasCreate_v2)(cublasHandle_t* handle);
typedef cublasStatus_t (*PFN_cublasDestroy_v2)(cublasHandle_t handle);
typedef cublasStatus_t (*PFN_cublasGetVersion_v2)(cublasHandle_t handle, int* version);
typedef cublasStatus_t (*PFN_cublasGetProperty)(libraryPropertyType type, int* value);
typedef const char* (*PFN_cublasGetStatusName)(cublasStatus_t status);
typedef const char* (*PFN_cublasGetStatusString)(cublasStatus_t status);
typedef cublasStatus_t (*PFN_cublasSetStream_v2)(cublasHandle_t handle, cudaStream_t streamId);
typedef cublasStatus_t (*PFN_cublasSetWorkspace_v2)(cublasHandle_t handle, void* workspace,
                                                    size_t workspaceSizeInBytes);
typedef cublasStatus_t (*PFN_cublasSetMathMode)(cublasHandle_t handle, cublasMath_t mode);
typedef cublasStatus_t (*PFN_cublasSgemm_v2)(cublasHandle_t handle, cublasOperation_t transa,
                                             cublasOperation_t transb, int m, int n, int k,
                                             const float* alpha, const float* A, int lda,
                                             const float* B, int ldb, const float* beta, float* C,
                                             int ldc);
// computeType is a cublasComputeType_t (68 for fp32), never a cudaDataType_t (§B8.1).
typedef cublasStatus_t (*PFN_cublasGemmEx)(cublasHandle_t handle, cublasOperation_t transa,
                                           cublasOperation_t transb, int m, int n, int k,
                                           const void* alpha, const void* A, cudaDataType Atype,
                                           int lda, const void* B, cudaDataType Btype, int ldb,
                                           const void* beta, void* C, cudaDataType Ctype, int ldc,
                                           cublasComputeType_t computeType,
                                           cublasGemmAlgo_t algo);

// cuBLASLt (§B9; cublasLt.h of 13.1.1, lines 69-71, 1011-1027, 1212-1223, 1623-1648, 2171-2194, 2270-2279)
typedef cublasStatus_t (*PFN_cublasLtCreate)(cublasLtHandle_t* lightHandle);
typedef cublasStatus_t (*PFN_cublasLtDestroy)(cublasLtHandle_t lightHandle);
typedef cublasStatus_t (*PFN_cublasLtMatmulDescCreate)(cublasLtMatmulDesc_t* matmulDesc,
                                                      cublasComputeType_t computeType,
                                                      cudaDataType_t scaleType);
typedef cublasStatus_t (*PFN_cublasLtMatmulDescDestroy)(cublasLtMatmulDesc_t matmulDesc);
typedef cublasStatus_t (*PFN_cublasLtMatmulDescSetAttribute)(cublasLtMatmulDesc_t matmulDesc,
                                                            cublasLtMatmulDescAttributes_t attr,
                                                            const void* buf, size_t sizeInBytes);
typedef cublasStatus_t (*PFN_cublasLtMatrixLayoutCreate)(cublasLtMatrixLayout_t* matLayout, cudaDataType type,
                                                        uint64_t rows, uint64_t cols, int64_t ld);
typedef cublasStatus_t (*PFN_cublasLtMatrixLayoutDestroy)(cublasLtMatrixLayout_t matLayout);
typedef cublasStatus_t (*PFN_cublasLtMatmulPreferenceCreate)(cublasLtMatmulPreference_t* pref);
typedef cublasStatus_t (*PFN_cublasLtMatmulPreferenceDestroy)(cublasLtMatmulPreference_t pref);
typedef cublasStatus_t (*PFN_cublasLtMatmulPreferenceSetAttribute)(cublasLtMatmulPreference_t pref,
                                                                  cublasLtMatmulPreferenceAttributes_t attr,
                                                                  const void* buf, size_t sizeInBytes);
typedef cublasStatus_t (*PFN_cublasLtMatmulAlgoGetHeuristic)(
    cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc, cublasLtMatrixLayout_t Adesc,
    cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
    cublasLtMatmulPreference_t preference, int requestedAlgoCount,
    cublasLtMatmulHeuristicResult_t heuristicResultsArray[], int* returnAlgoCount);
typedef cublasStatus_t (*PFN_cublasLtMatmul)(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
                                             const void* alpha, const void* A, cublasLtMatrixLayout_t Adesc,
                                             const void* B, cublasLtMatrixLayout_t Bdesc, const void* beta,
                                             const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                                             cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo,
                                             void* workspace, size_t workspaceSizeInBytes,
                                             cudaStream_t stream);

// The symbols the loader resolves. cublasGetProperty first: it gives the version without a
// handle (creating a handle needs a GPU), and is checked before anything else is looked up.
#define ALEXNET_CUBLAS_FUNCTIONS(X) \
  X(cublasGetProperty)              \
  X(cublasCreate_v2)                \
  X(cublasDestroy_v2)               \
  X(cublasGetVersion_v2)            \
  X(cublasSetStream_v2)             \
  X(cublasSetWorkspace_v2)          \
  X(cublasSetMathMode)              \
  X(cublasSgemm_v2)                 \
  X(cublasGemmEx)                   \
  X(cublasGetStatusName)            \
  X(cublasGetStatusString)

#define ALEXNET_CUBLAS_OPTIONAL_FUNCTIONS(X)

// Resolved through libcublas's handle (dlsym searches its dependencies, libcublasLt among them).
// All or nothing: where one is missing the fused-epilogue path is off and the layers run as
// cublasGemmEx + our bias kernel.
#define ALEXNET_CUBLASLT_FUNCTIONS(X)   \
  X(cublasLtCreate)                     \
  X(cublasLtDestroy)                    \
  X(cublasLtMatmulDescCreate)           \
  X(cublasLtMatmulDescDestroy)          \
  X(cublasLtMatmulDescSetAttribute)     \
  X(cublasLtMatrixLayoutCreate)         \
  X(cublasLtMatrixLayoutDestroy)        \
  X(cublasLtMatmulPreferenceCreate)     \
  X(cublasLtMatmulPreferenceDestroy)    \
  X(cublasLtMatmulPreferenceSetAttribute) \
  X(cublasLtMatmulAlgoGetHeuristic)     \
  X(cublasLtMatmul)

}  // namespace alexnet::cuda::blas
