// Our own declarations of the part of cuDNN 9 that the CUDA backend calls, so that the addon
// compiles without cuDNN's headers and loads libcudnn.so.9 at run time (docs/architecture.md,
// decision 1).
//
// Every value, layout and signature here is copied from docs/cuda-abi.md (Part A: cuDNN
// 9.6.0 == 9.13.0 headers), which also says where each came from. Section references are in
// the comments: "§A2" means "docs/cuda-abi.md, section A2", "§D6" its Part D, item 6.
// test/cuda-abi.test.ts pins the values against literals copied from that document, and
// scripts/check-abi.sh compares everything here with the real headers where they exist
// (native/cuda/abi_check.cc).
//
// Layout of this file:
//   * opaque struct tags in the GLOBAL namespace, spelled exactly as cuDNN spells them, so that
//     our handle types ARE the real handle types (a repeated forward declaration is harmless
//     when cudnn.h is also included);
//   * everything else in alexnet::cuda::dnn, under cuDNN's own names (cudnnStatus_t,
//     CUDNN_STATUS_BAD_PARAM, cudnnConvolutionFwdAlgoPerf_t, ...);
//   * each enum is written once as an X-list (name, value) that defines the enum and lets
//     native/binding/cuda_abi.cc and native/cuda/abi_check.cc walk the same list;
//   * each function as a pointer type PFN_<name> with cuDNN's parameter list, plus the
//     X-list ALEXNET_CUDNN_FUNCTIONS of the symbols the loader resolves.
//
// Target ABI: x86_64 / aarch64 Linux, LP64, gcc/clang; CUDNNWINAPI is empty there (docs/cuda-abi.md, introduction).
#pragma once

#include <cstddef>

// ---- opaque types (§A1): all pointers to incomplete structs, 8 bytes -----------------------
struct cudnnContext;
struct cudnnTensorStruct;
struct cudnnFilterStruct;
struct cudnnConvolutionStruct;
struct cudnnPoolingStruct;
struct cudnnLRNStruct;
// cudaStream_t exactly as driver_types.h declares it (§A1, §B1); a repeated identical typedef
// is legal C++, so this coexists with <cuda_runtime.h> in either order.
struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

// Defines one enumerator of an X-list (shared with cublas_api.h).
#ifndef ALEXNET_ENUMERATOR
#define ALEXNET_ENUMERATOR(name, value) name = value,
#endif

namespace alexnet::cuda::dnn {

typedef ::cudnnContext* cudnnHandle_t;                      // cudnn_graph.h:105
typedef ::cudnnTensorStruct* cudnnTensorDescriptor_t;       // cudnn_ops.h:76
typedef ::cudnnFilterStruct* cudnnFilterDescriptor_t;       // cudnn_ops.h:78 (deprecated in 9)
typedef ::cudnnConvolutionStruct* cudnnConvolutionDescriptor_t;  // cudnn_cnn.h:76 (deprecated in 9)
typedef ::cudnnPoolingStruct* cudnnPoolingDescriptor_t;     // cudnn_ops.h:77 (deprecated in 9)
typedef ::cudnnLRNStruct* cudnnLRNDescriptor_t;             // cudnn_ops.h:79

// ---- cudnnStatus_t (§A2): RENUMBERED in cuDNN 9 (categories of 1000) ----------------------
// A call may return a sub-code (e.g. 2002 BAD_PARAM_NULL_POINTER): compare categories with
// cudnn_status_category(), not exact values. The last six are cuDNN 9's deprecated aliases.
#define ALEXNET_CUDNN_STATUS(X)                                        \
  X(CUDNN_STATUS_SUCCESS, 0)                                           \
  X(CUDNN_STATUS_NOT_INITIALIZED, 1001)                                \
  X(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH, 1002)                    \
  X(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH, 1003)                 \
  X(CUDNN_STATUS_DEPRECATED, 1004)                                     \
  X(CUDNN_STATUS_LICENSE_ERROR, 1005)                                  \
  X(CUDNN_STATUS_RUNTIME_IN_PROGRESS, 1006)                            \
  X(CUDNN_STATUS_RUNTIME_FP_OVERFLOW, 1007)                            \
  X(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED, 1008)                      \
  X(CUDNN_STATUS_BAD_PARAM, 2000)                                      \
  X(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, 2002)                         \
  X(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, 2003)                   \
  X(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED, 2004)                        \
  X(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND, 2005)                         \
  X(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT, 2006)                    \
  X(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH, 2007)                      \
  X(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH, 2008)                       \
  X(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES, 2009)                   \
  X(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE, 2010)                       \
  X(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH, 2011)                  \
  X(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE, 2012)                      \
  X(CUDNN_STATUS_NOT_SUPPORTED, 3000)                                  \
  X(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN, 3001)                    \
  X(CUDNN_STATUS_NOT_SUPPORTED_SHAPE, 3002)                            \
  X(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, 3003)                        \
  X(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT, 3004)                           \
  X(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER, 3005)         \
  X(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART, 3006)              \
  X(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH, 3007)                    \
  X(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING, 3008)     \
  X(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE, 3009)           \
  X(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT, 3010)       \
  X(CUDNN_STATUS_NOT_SUPPORTED_PADDING, 3011)                          \
  X(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM, 3012)                 \
  X(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API, 3013)            \
  X(CUDNN_STATUS_INTERNAL_ERROR, 4000)                                 \
  X(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED, 4001)              \
  X(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE, 4002)                \
  X(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, 4003)          \
  X(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED, 4004)        \
  X(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM, 4005)                \
  X(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED, 4006)         \
  X(CUDNN_STATUS_EXECUTION_FAILED, 5000)                               \
  X(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER, 5001)                   \
  X(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS, 5002)                        \
  X(CUDNN_STATUS_EXECUTION_FAILED_CUDART, 5003)                        \
  X(CUDNN_STATUS_EXECUTION_FAILED_CURAND, 5004)                        \
  /* deprecated aliases (CUDNN_DEPRECATED_ENUM in 9.x) */              \
  X(CUDNN_STATUS_ALLOC_FAILED, 4003)                                   \
  X(CUDNN_STATUS_INVALID_VALUE, 2001)                                  \
  X(CUDNN_STATUS_ARCH_MISMATCH, 3007)                                  \
  X(CUDNN_STATUS_MAPPING_ERROR, 4006)                                  \
  X(CUDNN_STATUS_RUNTIME_PREREQUISITE_MISSING, 3008)                   \
  X(CUDNN_STATUS_VERSION_MISMATCH, 1002)
typedef enum { ALEXNET_CUDNN_STATUS(ALEXNET_ENUMERATOR) } cudnnStatus_t;

// The category of a cuDNN 9 status: CUDNN_STATUS_CATEGORY(c) = (c)/1000*1000 (§A2 notes).
constexpr int cudnn_status_category(int status) { return status / 1000 * 1000; }

// ---- cudnnDataType_t (§A3). 15..19 exist only in 9.13 and are left out. -------------------
#define ALEXNET_CUDNN_DATA_TYPE(X)      \
  X(CUDNN_DATA_FLOAT, 0)                \
  X(CUDNN_DATA_DOUBLE, 1)               \
  X(CUDNN_DATA_HALF, 2)                 \
  X(CUDNN_DATA_INT8, 3)                 \
  X(CUDNN_DATA_INT32, 4)                \
  X(CUDNN_DATA_INT8x4, 5)               \
  X(CUDNN_DATA_UINT8, 6)                \
  X(CUDNN_DATA_UINT8x4, 7)              \
  X(CUDNN_DATA_INT8x32, 8)              \
  X(CUDNN_DATA_BFLOAT16, 9)             \
  X(CUDNN_DATA_INT64, 10)               \
  X(CUDNN_DATA_BOOLEAN, 11)             \
  X(CUDNN_DATA_FP8_E4M3, 12)            \
  X(CUDNN_DATA_FP8_E5M2, 13)            \
  X(CUDNN_DATA_FAST_FLOAT_FOR_FP8, 14)
typedef enum { ALEXNET_CUDNN_DATA_TYPE(ALEXNET_ENUMERATOR) } cudnnDataType_t;

// ---- cudnnTensorFormat_t (§A3) ---------------------------------------------------------------
#define ALEXNET_CUDNN_TENSOR_FORMAT(X) \
  X(CUDNN_TENSOR_NCHW, 0)              \
  X(CUDNN_TENSOR_NHWC, 1)              \
  X(CUDNN_TENSOR_NCHW_VECT_C, 2)
typedef enum { ALEXNET_CUDNN_TENSOR_FORMAT(ALEXNET_ENUMERATOR) } cudnnTensorFormat_t;

// ---- cudnnConvolutionMode_t (§A3) ------------------------------------------------------------
#define ALEXNET_CUDNN_CONVOLUTION_MODE(X) \
  X(CUDNN_CONVOLUTION, 0)                 \
  X(CUDNN_CROSS_CORRELATION, 1)
typedef enum { ALEXNET_CUDNN_CONVOLUTION_MODE(ALEXNET_ENUMERATOR) } cudnnConvolutionMode_t;

// ---- cudnnConvolutionFwdAlgo_t (§A3) ---------------------------------------------------------
#define ALEXNET_CUDNN_FWD_ALGO(X)                        \
  X(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0)         \
  X(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, 1) \
  X(CUDNN_CONVOLUTION_FWD_ALGO_GEMM, 2)                  \
  X(CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, 3)                \
  X(CUDNN_CONVOLUTION_FWD_ALGO_FFT, 4)                   \
  X(CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, 5)            \
  X(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, 6)              \
  X(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, 7)     \
  X(CUDNN_CONVOLUTION_FWD_ALGO_COUNT, 8)
typedef enum { ALEXNET_CUDNN_FWD_ALGO(ALEXNET_ENUMERATOR) } cudnnConvolutionFwdAlgo_t;

// ---- cudnnConvolutionBwdDataAlgo_t (§A3). NOT parallel to BwdFilter (§D6). -----------------
#define ALEXNET_CUDNN_BWD_DATA_ALGO(X)                       \
  X(CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, 0) /* nondeterministic */ \
  X(CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, 1)                    \
  X(CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, 2)                  \
  X(CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, 3)           \
  X(CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, 4)             \
  X(CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, 5)    \
  X(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, 6)
typedef enum { ALEXNET_CUDNN_BWD_DATA_ALGO(ALEXNET_ENUMERATOR) } cudnnConvolutionBwdDataAlgo_t;

// ---- cudnnConvolutionBwdFilterAlgo_t (§A3) ---------------------------------------------------
#define ALEXNET_CUDNN_BWD_FILTER_ALGO(X)                        \
  X(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, 0) /* nondeterministic */ \
  X(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, 1)                     \
  X(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, 2)                   \
  X(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, 3) /* nondeterministic */ \
  X(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD, 4) /* not implemented */ \
  X(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, 5)     \
  X(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, 6)            \
  X(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, 7)
typedef enum { ALEXNET_CUDNN_BWD_FILTER_ALGO(ALEXNET_ENUMERATOR) } cudnnConvolutionBwdFilterAlgo_t;

// ---- cudnnMathType_t (§A3) -------------------------------------------------------------------
#define ALEXNET_CUDNN_MATH_TYPE(X)               \
  X(CUDNN_DEFAULT_MATH, 0)                       \
  X(CUDNN_TENSOR_OP_MATH, 1)                     \
  X(CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, 2)    \
  X(CUDNN_FMA_MATH, 3)
typedef enum { ALEXNET_CUDNN_MATH_TYPE(ALEXNET_ENUMERATOR) } cudnnMathType_t;

// ---- cudnnPoolingMode_t (§A3; the type is CUDNN_DEPRECATED in 9, values unchanged) ----------
#define ALEXNET_CUDNN_POOLING_MODE(X)                  \
  X(CUDNN_POOLING_MAX, 0)                              \
  X(CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, 1)    \
  X(CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, 2)    \
  X(CUDNN_POOLING_MAX_DETERMINISTIC, 3)
typedef enum { ALEXNET_CUDNN_POOLING_MODE(ALEXNET_ENUMERATOR) } cudnnPoolingMode_t;

// ---- cudnnNanPropagation_t (§A3; enumerators CUDNN_DEPRECATED_ENUM in 9) -------------------
#define ALEXNET_CUDNN_NAN_PROPAGATION(X) \
  X(CUDNN_NOT_PROPAGATE_NAN, 0)          \
  X(CUDNN_PROPAGATE_NAN, 1)
typedef enum { ALEXNET_CUDNN_NAN_PROPAGATION(ALEXNET_ENUMERATOR) } cudnnNanPropagation_t;

// ---- cudnnLRNMode_t (§A3) --------------------------------------------------------------------
#define ALEXNET_CUDNN_LRN_MODE(X) X(CUDNN_LRN_CROSS_CHANNEL_DIM1, 0)
typedef enum { ALEXNET_CUDNN_LRN_MODE(ALEXNET_ENUMERATOR) } cudnnLRNMode_t;

// ---- cudnnDeterminism_t (§A3) ----------------------------------------------------------------
#define ALEXNET_CUDNN_DETERMINISM(X) \
  X(CUDNN_NON_DETERMINISTIC, 0)      \
  X(CUDNN_DETERMINISTIC, 1)
typedef enum { ALEXNET_CUDNN_DETERMINISM(ALEXNET_ENUMERATOR) } cudnnDeterminism_t;

// Every enum above: E(type, list). Walked by cuda_abi.cc and abi_check.cc.
#define ALEXNET_CUDNN_ENUMS(E)                                      \
  E(cudnnStatus_t, ALEXNET_CUDNN_STATUS)                            \
  E(cudnnDataType_t, ALEXNET_CUDNN_DATA_TYPE)                       \
  E(cudnnTensorFormat_t, ALEXNET_CUDNN_TENSOR_FORMAT)               \
  E(cudnnConvolutionMode_t, ALEXNET_CUDNN_CONVOLUTION_MODE)         \
  E(cudnnConvolutionFwdAlgo_t, ALEXNET_CUDNN_FWD_ALGO)              \
  E(cudnnConvolutionBwdDataAlgo_t, ALEXNET_CUDNN_BWD_DATA_ALGO)     \
  E(cudnnConvolutionBwdFilterAlgo_t, ALEXNET_CUDNN_BWD_FILTER_ALGO) \
  E(cudnnMathType_t, ALEXNET_CUDNN_MATH_TYPE)                       \
  E(cudnnPoolingMode_t, ALEXNET_CUDNN_POOLING_MODE)                 \
  E(cudnnNanPropagation_t, ALEXNET_CUDNN_NAN_PROPAGATION)           \
  E(cudnnLRNMode_t, ALEXNET_CUDNN_LRN_MODE)                         \
  E(cudnnDeterminism_t, ALEXNET_CUDNN_DETERMINISM)

// Every opaque handle type (for sizeof checks).
#define ALEXNET_CUDNN_HANDLES(H) \
  H(cudnnHandle_t)               \
  H(cudnnTensorDescriptor_t)     \
  H(cudnnFilterDescriptor_t)     \
  H(cudnnConvolutionDescriptor_t) \
  H(cudnnPoolingDescriptor_t)    \
  H(cudnnLRNDescriptor_t)

// ---- algorithm-performance structs (§A4, §D3) ------------------------------------------------
// Field order is algo FIRST, then status. One struct per direction, shared by the _v7
// heuristics and Find...Ex (there is no separate _v7 struct). sizeof 48, alignof 8.
typedef struct cudnnConvolutionFwdAlgoPerfStruct {
  cudnnConvolutionFwdAlgo_t algo;
  cudnnStatus_t status;
  float time;      // milliseconds
  size_t memory;   // workspace bytes
  cudnnDeterminism_t determinism;
  cudnnMathType_t mathType;
  int reserved[3];
} cudnnConvolutionFwdAlgoPerf_t;

typedef struct cudnnConvolutionBwdDataAlgoPerfStruct {
  cudnnConvolutionBwdDataAlgo_t algo;
  cudnnStatus_t status;
  float time;
  size_t memory;
  cudnnDeterminism_t determinism;
  cudnnMathType_t mathType;
  int reserved[3];
} cudnnConvolutionBwdDataAlgoPerf_t;

typedef struct cudnnConvolutionBwdFilterAlgoPerfStruct {
  cudnnConvolutionBwdFilterAlgo_t algo;
  cudnnStatus_t status;
  float time;
  size_t memory;
  cudnnDeterminism_t determinism;
  cudnnMathType_t mathType;
  int reserved[3];
} cudnnConvolutionBwdFilterAlgoPerf_t;

// S(struct type), F(struct type, field) for the layout checks.
#define ALEXNET_CUDNN_PERF_STRUCTS(S) \
  S(cudnnConvolutionFwdAlgoPerf_t)    \
  S(cudnnConvolutionBwdDataAlgoPerf_t) \
  S(cudnnConvolutionBwdFilterAlgoPerf_t)
#define ALEXNET_CUDNN_PERF_FIELDS(F, T) \
  F(T, algo) F(T, status) F(T, time) F(T, memory) F(T, determinism) F(T, mathType) F(T, reserved)

// ---- functions (§A5). Parameter lists verbatim; top-level `const` on by-value parameters is
// kept as in the header (it is not part of the function type). -----------------------------

// handle, version, errors
typedef size_t (*PFN_cudnnGetVersion)(void);
typedef size_t (*PFN_cudnnGetCudartVersion)(void);
typedef const char* (*PFN_cudnnGetErrorString)(cudnnStatus_t status);
typedef void (*PFN_cudnnGetLastErrorString)(char* message, size_t max_size);  // new in 9
typedef cudnnStatus_t (*PFN_cudnnCreate)(cudnnHandle_t* handle);
typedef cudnnStatus_t (*PFN_cudnnDestroy)(cudnnHandle_t handle);
typedef cudnnStatus_t (*PFN_cudnnSetStream)(cudnnHandle_t handle, cudaStream_t streamId);

// tensor descriptors
typedef cudnnStatus_t (*PFN_cudnnCreateTensorDescriptor)(cudnnTensorDescriptor_t* tensorDesc);
typedef cudnnStatus_t (*PFN_cudnnSetTensor4dDescriptor)(cudnnTensorDescriptor_t tensorDesc,
                                                        cudnnTensorFormat_t format,
                                                        cudnnDataType_t dataType, int n, int c,
                                                        int h, int w);
typedef cudnnStatus_t (*PFN_cudnnSetTensor4dDescriptorEx)(cudnnTensorDescriptor_t tensorDesc,
                                                          cudnnDataType_t dataType, int n, int c,
                                                          int h, int w, int nStride, int cStride,
                                                          int hStride, int wStride);
typedef cudnnStatus_t (*PFN_cudnnSetTensorNdDescriptor)(cudnnTensorDescriptor_t tensorDesc,
                                                        cudnnDataType_t dataType, int nbDims,
                                                        const int dimA[], const int strideA[]);
typedef cudnnStatus_t (*PFN_cudnnDestroyTensorDescriptor)(cudnnTensorDescriptor_t tensorDesc);

// filter descriptors (deprecated in 9, still exported)
typedef cudnnStatus_t (*PFN_cudnnCreateFilterDescriptor)(cudnnFilterDescriptor_t* filterDesc);
typedef cudnnStatus_t (*PFN_cudnnSetFilter4dDescriptor)(cudnnFilterDescriptor_t filterDesc,
                                                        cudnnDataType_t dataType,
                                                        cudnnTensorFormat_t format, int k, int c,
                                                        int h, int w);
typedef cudnnStatus_t (*PFN_cudnnDestroyFilterDescriptor)(cudnnFilterDescriptor_t filterDesc);

// convolution descriptors (deprecated in 9, still exported)
typedef cudnnStatus_t (*PFN_cudnnCreateConvolutionDescriptor)(
    cudnnConvolutionDescriptor_t* convDesc);
typedef cudnnStatus_t (*PFN_cudnnSetConvolution2dDescriptor)(
    cudnnConvolutionDescriptor_t convDesc, int pad_h, int pad_w, int u, int v, int dilation_h,
    int dilation_w, cudnnConvolutionMode_t mode, cudnnDataType_t computeType);
typedef cudnnStatus_t (*PFN_cudnnSetConvolutionGroupCount)(cudnnConvolutionDescriptor_t convDesc,
                                                           int groupCount);
typedef cudnnStatus_t (*PFN_cudnnSetConvolutionMathType)(cudnnConvolutionDescriptor_t convDesc,
                                                         cudnnMathType_t mathType);
typedef cudnnStatus_t (*PFN_cudnnDestroyConvolutionDescriptor)(
    cudnnConvolutionDescriptor_t convDesc);
typedef cudnnStatus_t (*PFN_cudnnGetConvolution2dForwardOutputDim)(
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t inputTensorDesc,
    const cudnnFilterDescriptor_t filterDesc, int* n, int* c, int* h, int* w);

// convolution forward
typedef cudnnStatus_t (*PFN_cudnnGetConvolutionForwardAlgorithm_v7)(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnFilterDescriptor_t filterDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionFwdAlgoPerf_t* perfResults);
typedef cudnnStatus_t (*PFN_cudnnFindConvolutionForwardAlgorithmEx)(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void* x,
    const cudnnFilterDescriptor_t wDesc, const void* w, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t yDesc, void* y, const int requestedAlgoCount,
    int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perfResults, void* workSpace,
    size_t workSpaceSizeInBytes);
typedef cudnnStatus_t (*PFN_cudnnGetConvolutionForwardWorkspaceSize)(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    cudnnConvolutionFwdAlgo_t algo, size_t* sizeInBytes);
typedef cudnnStatus_t (*PFN_cudnnConvolutionForward)(
    cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xDesc, const void* x,
    const cudnnFilterDescriptor_t wDesc, const void* w, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionFwdAlgo_t algo, void* workSpace, size_t workSpaceSizeInBytes,
    const void* beta, const cudnnTensorDescriptor_t yDesc, void* y);

// convolution backward data
typedef cudnnStatus_t (*PFN_cudnnGetConvolutionBackwardDataAlgorithm_v7)(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t gradDesc, const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t* perfResults);
typedef cudnnStatus_t (*PFN_cudnnFindConvolutionBackwardDataAlgorithmEx)(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const void* w,
    const cudnnTensorDescriptor_t dyDesc, const void* dy,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t* perfResults, void* workSpace, size_t workSpaceSizeInBytes);
typedef cudnnStatus_t (*PFN_cudnnGetConvolutionBackwardDataWorkspaceSize)(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    cudnnConvolutionBwdDataAlgo_t algo, size_t* sizeInBytes);
typedef cudnnStatus_t (*PFN_cudnnConvolutionBackwardData)(
    cudnnHandle_t handle, const void* alpha, const cudnnFilterDescriptor_t wDesc, const void* w,
    const cudnnTensorDescriptor_t dyDesc, const void* dy,
    const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionBwdDataAlgo_t algo,
    void* workSpace, size_t workSpaceSizeInBytes, const void* beta,
    const cudnnTensorDescriptor_t dxDesc, void* dx);

// convolution backward filter
typedef cudnnStatus_t (*PFN_cudnnGetConvolutionBackwardFilterAlgorithm_v7)(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnFilterDescriptor_t gradDesc, const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t* perfResults);
typedef cudnnStatus_t (*PFN_cudnnFindConvolutionBackwardFilterAlgorithmEx)(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void* x,
    const cudnnTensorDescriptor_t dyDesc, const void* y,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc, void* dw,
    const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t* perfResults, void* workSpace, size_t workSpaceSizeInBytes);
typedef cudnnStatus_t (*PFN_cudnnGetConvolutionBackwardFilterWorkspaceSize)(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t* sizeInBytes);
typedef cudnnStatus_t (*PFN_cudnnConvolutionBackwardFilter)(
    cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xDesc, const void* x,
    const cudnnTensorDescriptor_t dyDesc, const void* dy,
    const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionBwdFilterAlgo_t algo,
    void* workSpace, size_t workSpaceSizeInBytes, const void* beta,
    const cudnnFilterDescriptor_t dwDesc, void* dw);

// bias
typedef cudnnStatus_t (*PFN_cudnnConvolutionBackwardBias)(cudnnHandle_t handle, const void* alpha,
                                                          const cudnnTensorDescriptor_t dyDesc,
                                                          const void* dy, const void* beta,
                                                          const cudnnTensorDescriptor_t dbDesc,
                                                          void* db);
typedef cudnnStatus_t (*PFN_cudnnAddTensor)(cudnnHandle_t handle, const void* alpha,
                                            const cudnnTensorDescriptor_t aDesc, const void* A,
                                            const void* beta, const cudnnTensorDescriptor_t cDesc,
                                            void* C);

// pooling (deprecated in 9, still exported)
typedef cudnnStatus_t (*PFN_cudnnCreatePoolingDescriptor)(cudnnPoolingDescriptor_t* poolingDesc);
typedef cudnnStatus_t (*PFN_cudnnSetPooling2dDescriptor)(
    cudnnPoolingDescriptor_t poolingDesc, cudnnPoolingMode_t mode,
    cudnnNanPropagation_t maxpoolingNanOpt, int windowHeight, int windowWidth,
    int verticalPadding, int horizontalPadding, int verticalStride, int horizontalStride);
typedef cudnnStatus_t (*PFN_cudnnDestroyPoolingDescriptor)(cudnnPoolingDescriptor_t poolingDesc);
typedef cudnnStatus_t (*PFN_cudnnPoolingForward)(cudnnHandle_t handle,
                                                 const cudnnPoolingDescriptor_t poolingDesc,
                                                 const void* alpha,
                                                 const cudnnTensorDescriptor_t xDesc,
                                                 const void* x, const void* beta,
                                                 const cudnnTensorDescriptor_t yDesc, void* y);
typedef cudnnStatus_t (*PFN_cudnnPoolingBackward)(
    cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc, const void* alpha,
    const cudnnTensorDescriptor_t yDesc, const void* y, const cudnnTensorDescriptor_t dyDesc,
    const void* dy, const cudnnTensorDescriptor_t xDesc, const void* x, const void* beta,
    const cudnnTensorDescriptor_t dxDesc, void* dx);

// local response normalisation (not deprecated)
typedef cudnnStatus_t (*PFN_cudnnCreateLRNDescriptor)(cudnnLRNDescriptor_t* normDesc);
typedef cudnnStatus_t (*PFN_cudnnSetLRNDescriptor)(cudnnLRNDescriptor_t normDesc, unsigned lrnN,
                                                   double lrnAlpha, double lrnBeta, double lrnK);
typedef cudnnStatus_t (*PFN_cudnnDestroyLRNDescriptor)(cudnnLRNDescriptor_t lrnDesc);
typedef cudnnStatus_t (*PFN_cudnnLRNCrossChannelForward)(
    cudnnHandle_t handle, cudnnLRNDescriptor_t normDesc, cudnnLRNMode_t lrnMode,
    const void* alpha, const cudnnTensorDescriptor_t xDesc, const void* x, const void* beta,
    const cudnnTensorDescriptor_t yDesc, void* y);
typedef cudnnStatus_t (*PFN_cudnnLRNCrossChannelBackward)(
    cudnnHandle_t handle, cudnnLRNDescriptor_t normDesc, cudnnLRNMode_t lrnMode,
    const void* alpha, const cudnnTensorDescriptor_t yDesc, const void* y,
    const cudnnTensorDescriptor_t dyDesc, const void* dy, const cudnnTensorDescriptor_t xDesc,
    const void* x, const void* beta, const cudnnTensorDescriptor_t dxDesc, void* dx);

// The symbols the loader resolves; a missing one makes the library unusable (the reason names
// it). cudnnGetVersion comes first: it is checked before anything else is looked up.
#define ALEXNET_CUDNN_FUNCTIONS(X)                     \
  X(cudnnGetVersion)                                   \
  X(cudnnGetErrorString)                               \
  X(cudnnCreate)                                       \
  X(cudnnDestroy)                                      \
  X(cudnnSetStream)                                    \
  X(cudnnCreateTensorDescriptor)                       \
  X(cudnnSetTensor4dDescriptor)                        \
  X(cudnnSetTensor4dDescriptorEx)                      \
  X(cudnnSetTensorNdDescriptor)                        \
  X(cudnnDestroyTensorDescriptor)                      \
  X(cudnnCreateFilterDescriptor)                       \
  X(cudnnSetFilter4dDescriptor)                        \
  X(cudnnDestroyFilterDescriptor)                      \
  X(cudnnCreateConvolutionDescriptor)                  \
  X(cudnnSetConvolution2dDescriptor)                   \
  X(cudnnSetConvolutionGroupCount)                     \
  X(cudnnSetConvolutionMathType)                       \
  X(cudnnDestroyConvolutionDescriptor)                 \
  X(cudnnGetConvolution2dForwardOutputDim)             \
  X(cudnnGetConvolutionForwardAlgorithm_v7)            \
  X(cudnnFindConvolutionForwardAlgorithmEx)            \
  X(cudnnGetConvolutionForwardWorkspaceSize)           \
  X(cudnnConvolutionForward)                           \
  X(cudnnGetConvolutionBackwardDataAlgorithm_v7)       \
  X(cudnnFindConvolutionBackwardDataAlgorithmEx)       \
  X(cudnnGetConvolutionBackwardDataWorkspaceSize)      \
  X(cudnnConvolutionBackwardData)                      \
  X(cudnnGetConvolutionBackwardFilterAlgorithm_v7)     \
  X(cudnnFindConvolutionBackwardFilterAlgorithmEx)     \
  X(cudnnGetConvolutionBackwardFilterWorkspaceSize)    \
  X(cudnnConvolutionBackwardFilter)                    \
  X(cudnnConvolutionBackwardBias)                      \
  X(cudnnAddTensor)                                    \
  X(cudnnCreatePoolingDescriptor)                      \
  X(cudnnSetPooling2dDescriptor)                       \
  X(cudnnDestroyPoolingDescriptor)                     \
  X(cudnnPoolingForward)                               \
  X(cudnnPoolingBackward)                              \
  X(cudnnCreateLRNDescriptor)                          \
  X(cudnnSetLRNDescriptor)                             \
  X(cudnnDestroyLRNDescriptor)                         \
  X(cudnnLRNCrossChannelForward)                       \
  X(cudnnLRNCrossChannelBackward)

// Looked up when present, never required: extra detail for messages and `alexnet info`.
#define ALEXNET_CUDNN_OPTIONAL_FUNCTIONS(X) \
  X(cudnnGetLastErrorString)                \
  X(cudnnGetCudartVersion)

}  // namespace alexnet::cuda::dnn
