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

// ---- opaque types (§B1) -------------------------------------------------------------------
struct cublasContext;
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

#define ALEXNET_CUBLAS_ENUMS(E)                              \
  E(cublasStatus_t, ALEXNET_CUBLAS_STATUS)                   \
  E(cublasOperation_t, ALEXNET_CUBLAS_OPERATION)             \
  E(cublasMath_t, ALEXNET_CUBLAS_MATH)                       \
  E(cublasComputeType_t, ALEXNET_CUBLAS_COMPUTE_TYPE)        \
  E(cudaDataType_t, ALEXNET_CUDA_DATA_TYPE)                  \
  E(cublasGemmAlgo_t, ALEXNET_CUBLAS_GEMM_ALGO)              \
  E(libraryPropertyType, ALEXNET_LIBRARY_PROPERTY_TYPE)

#define ALEXNET_CUBLAS_HANDLES(H) H(cublasHandle_t)

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

}  // namespace alexnet::cuda::blas
