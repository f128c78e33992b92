// Compile-time comparison of our own declarations (native/cuda/dynload/*.h) with NVIDIA's real
// headers, where those exist. NOT part of the addon: scripts/check-abi.sh compiles it with
// `g++ -fsyntax-only` and the include folders it found, defining what it can check:
//   ALEXNET_CHECK_LIBRARY_TYPES  <library_types.h> (any CUDA toolkit): cudaDataType_t, libraryPropertyType
//   ALEXNET_CHECK_CUDNN          <cudnn.h> (cuDNN 9): every enum value, handle, perf-struct layout
//                                and function type in cudnn_api.h
//   ALEXNET_CHECK_CUBLAS         <cublas_v2.h>: the same for cublas_api.h
// With ALEXNET_ABI_LIST it instead expands, for `g++ -E`, one `abi_item <kind> <name>` per item
// checked (the script counts them for its report).
//
// Ours are included FIRST, so that no macro of the real headers can rewrite our declarations;
// they live in alexnet::cuda::{dnn,blas} and cannot clash with the real global ones. The
// opaque struct tags and cudaStream_t are the same global declarations in both, so handle
// types must be identical; for function types, our enums and perf structs are mapped onto the
// real ones position by position (Map below) and the result must be the very type of the real
// function: std::is_same<mapped PFN, decltype(&::realFunction)>.
#include "dynload/cublas_api.h"
#include "dynload/cudnn_api.h"

#ifdef ALEXNET_ABI_LIST

#define ABI_VALUE(name, value) abi_item enumerator name
#define ABI_ENUM(type, list) abi_item enum type list(ABI_VALUE)
#define ABI_HANDLE(type) abi_item handle type
#define ABI_STRUCT(type) abi_item struct type
#define ABI_FN(name) abi_item function name
#ifdef ALEXNET_CHECK_CUDNN
ALEXNET_CUDNN_ENUMS(ABI_ENUM)
ALEXNET_CUDNN_HANDLES(ABI_HANDLE)
ALEXNET_CUDNN_PERF_STRUCTS(ABI_STRUCT)
ALEXNET_CUDNN_FUNCTIONS(ABI_FN)
ALEXNET_CUDNN_OPTIONAL_FUNCTIONS(ABI_FN)
#endif
#ifdef ALEXNET_CHECK_CUBLAS
ALEXNET_CUBLAS_ENUMS(ABI_ENUM)
ALEXNET_CUBLAS_HANDLES(ABI_HANDLE)
ALEXNET_CUBLAS_FUNCTIONS(ABI_FN)
ALEXNET_CUBLAS_OPTIONAL_FUNCTIONS(ABI_FN)
ALEXNET_CUBLASLT_STRUCTS(ABI_STRUCT)
ALEXNET_CUBLASLT_FUNCTIONS(ABI_FN)
#elif defined(ALEXNET_CHECK_LIBRARY_TYPES)
abi_item enum cudaDataType_t ALEXNET_CUDA_DATA_TYPE(ABI_VALUE)
abi_item enum libraryPropertyType ALEXNET_LIBRARY_PROPERTY_TYPE(ABI_VALUE)
#endif

#else  // the checks

#include <cstddef>
#include <type_traits>

#ifdef ALEXNET_CHECK_CUDNN
#include <cudnn.h>
static_assert(CUDNN_MAJOR == 9, "these declarations are for cuDNN 9 headers");
#endif
#ifdef ALEXNET_CHECK_CUBLAS
#include <cublasLt.h>
#include <cublas_v2.h>
static_assert(CUBLAS_VER_MAJOR == 12 || CUBLAS_VER_MAJOR == 13,
              "these declarations are for cuBLAS 12 / 13 headers");
#endif
#if defined(ALEXNET_CHECK_LIBRARY_TYPES) || defined(ALEXNET_CHECK_CUBLAS)
#include <driver_types.h>
#include <library_types.h>
#endif

namespace abi {

namespace dnn = alexnet::cuda::dnn;
namespace blas = alexnet::cuda::blas;

// Map<T>: our type -> the real type it stands for (identity for everything else).
template <typename T>
struct Map {
  using type = T;
};
template <typename T>
using Map_t = typename Map<T>::type;
template <typename T>
struct Map<T*> {
  using type = Map_t<T>*;
};
template <typename T>
struct Map<const T> {
  using type = const Map_t<T>;
};
#define ABI_MAP(ours, real) \
  template <>               \
  struct Map<ours> {        \
    using type = real;      \
  };

template <typename F>
struct MapFn;
template <typename R, typename... A>
struct MapFn<R (*)(A...)> {
  using type = Map_t<R> (*)(Map_t<A>...);
};
template <typename F>
using MapFn_t = typename MapFn<F>::type;

// an enum: same size, same underlying type, and every value equal
#define ABI_CHECK_ENUM_TYPE(ns, type)                                                    \
  static_assert(sizeof(ns::type) == sizeof(::type), "sizeof " #type);                  \
  static_assert(std::is_same<std::underlying_type_t<ns::type>,                          \
                             std::underlying_type_t<::type>>::value,                    \
                "underlying type of " #type);
#define ABI_CHECK_DNN_VALUE(name, value)                                                 \
  static_assert(static_cast<long long>(dnn::name) == static_cast<long long>(::name),     \
                "cuDNN value " #name);
#define ABI_CHECK_BLAS_VALUE(name, value)                                                \
  static_assert(static_cast<long long>(blas::name) == static_cast<long long>(::name),    \
                "cuBLAS value " #name);
#define ABI_MAP_DNN(type, list) ABI_MAP(dnn::type, ::type)
#define ABI_MAP_BLAS(type, list) ABI_MAP(blas::type, ::type)
#define ABI_CHECK_DNN_ENUM(type, list) ABI_CHECK_ENUM_TYPE(dnn, type) list(ABI_CHECK_DNN_VALUE)
#define ABI_CHECK_BLAS_ENUM(type, list) ABI_CHECK_ENUM_TYPE(blas, type) list(ABI_CHECK_BLAS_VALUE)

#if defined(ALEXNET_CHECK_LIBRARY_TYPES) || defined(ALEXNET_CHECK_CUBLAS)
// <library_types.h> alone (any CUDA toolkit): the two enums cublas_api.h borrows from it, and
// cudaStream_t as driver_types.h declares it.
ABI_CHECK_ENUM_TYPE(blas, cudaDataType_t)
ALEXNET_CUDA_DATA_TYPE(ABI_CHECK_BLAS_VALUE)
ABI_CHECK_ENUM_TYPE(blas, libraryPropertyType)
ALEXNET_LIBRARY_PROPERTY_TYPE(ABI_CHECK_BLAS_VALUE)
static_assert(std::is_same<::cudaStream_t, struct CUstream_st*>::value, "cudaStream_t");
#endif

#ifdef ALEXNET_CHECK_CUDNN
ALEXNET_CUDNN_ENUMS(ABI_MAP_DNN)
ALEXNET_CUDNN_ENUMS(ABI_CHECK_DNN_ENUM)

#define ABI_CHECK_DNN_HANDLE(type) \
  static_assert(std::is_same<dnn::type, ::type>::value, "cuDNN handle " #type);
ALEXNET_CUDNN_HANDLES(ABI_CHECK_DNN_HANDLE)

// perf structs: size, alignment, and every field at the same offset with the mapped type
#define ABI_MAP_DNN_STRUCT(type) ABI_MAP(dnn::type, ::type)
ALEXNET_CUDNN_PERF_STRUCTS(ABI_MAP_DNN_STRUCT)
#define ABI_CHECK_FIELD(T, field)                                                        \
  static_assert(offsetof(dnn::T, field) == offsetof(::T, field), "offsetof " #T "." #field); \
  static_assert(std::is_same<Map_t<decltype(dnn::T::field)>, decltype(::T::field)>::value, \
                "type of " #T "." #field);
#define ABI_CHECK_DNN_STRUCT(T)                                                          \
  static_assert(sizeof(dnn::T) == sizeof(::T), "sizeof " #T);                            \
  static_assert(alignof(dnn::T) == alignof(::T), "alignof " #T);                         \
  ALEXNET_CUDNN_PERF_FIELDS(ABI_CHECK_FIELD, T)
ALEXNET_CUDNN_PERF_STRUCTS(ABI_CHECK_DNN_STRUCT)

#define ABI_CHECK_DNN_FN(name)                                                           \
  static_assert(std::is_same<MapFn_t<dnn::PFN_##name>, decltype(&::name)>::value,        \
                "cuDNN function type " #name);
ALEXNET_CUDNN_FUNCTIONS(ABI_CHECK_DNN_FN)
ALEXNET_CUDNN_OPTIONAL_FUNCTIONS(ABI_CHECK_DNN_FN)
#endif  // ALEXNET_CHECK_CUDNN

#ifdef ALEXNET_CHECK_CUBLAS
ALEXNET_CUBLAS_ENUMS(ABI_MAP_BLAS)
// cudaDataType (the typedef cublasGemmEx's prototype uses) is the same type as cudaDataType_t
static_assert(std::is_same<::cudaDataType, ::cudaDataType_t>::value, "cudaDataType");
ABI_CHECK_BLAS_ENUM(cublasStatus_t, ALEXNET_CUBLAS_STATUS)
ABI_CHECK_BLAS_ENUM(cublasOperation_t, ALEXNET_CUBLAS_OPERATION)
ABI_CHECK_BLAS_ENUM(cublasMath_t, ALEXNET_CUBLAS_MATH)
ABI_CHECK_BLAS_ENUM(cublasComputeType_t, ALEXNET_CUBLAS_COMPUTE_TYPE)
ABI_CHECK_BLAS_ENUM(cublasGemmAlgo_t, ALEXNET_CUBLAS_GEMM_ALGO)
// (cudaDataType_t and libraryPropertyType were checked in the library_types.h section)

#define ABI_CHECK_BLAS_HANDLE(type) \
  static_assert(std::is_same<blas::type, ::type>::value, "cuBLAS handle " #type);
ALEXNET_CUBLAS_HANDLES(ABI_CHECK_BLAS_HANDLE)

// In C++ mode cublas_api.h adds static inline overloads of cublasGemmEx taking a cudaDataType
// computeType (§B8.1), so &::cublasGemmEx is an overload set and decltype() cannot name it.
// Passing &::name to a parameter of exactly the mapped type selects the overload of that type
// and compiles only if there is one (function pointers do not convert, except from noexcept).
template <typename F>
constexpr bool exact(F) {
  return true;
}
#define ABI_CHECK_BLAS_FN(name)                                                          \
  static_assert(exact<MapFn_t<blas::PFN_##name>>(&::name), "cuBLAS function type " #name);
ALEXNET_CUBLAS_FUNCTIONS(ABI_CHECK_BLAS_FN)
ALEXNET_CUBLAS_OPTIONAL_FUNCTIONS(ABI_CHECK_BLAS_FN)

// cuBLASLt (cublasLt.h): the enums above (ALEXNET_CUBLAS_ENUMS lists them), the semi-opaque
// structs by size and alignment, the heuristic result field by field, and every function.
ABI_CHECK_BLAS_ENUM(cublasLtMatmulDescAttributes_t, ALEXNET_CUBLASLT_MATMUL_DESC_ATTRIBUTES)
ABI_CHECK_BLAS_ENUM(cublasLtEpilogue_t, ALEXNET_CUBLASLT_EPILOGUE)
ABI_CHECK_BLAS_ENUM(cublasLtMatmulPreferenceAttributes_t, ALEXNET_CUBLASLT_PREFERENCE_ATTRIBUTES)
#define ABI_MAP_BLAS_STRUCT(type) ABI_MAP(blas::type, ::type)
ALEXNET_CUBLASLT_STRUCTS(ABI_MAP_BLAS_STRUCT)
#define ABI_CHECK_BLAS_STRUCT(T)                                                         \
  static_assert(sizeof(blas::T) == sizeof(::T), "sizeof " #T);                           \
  static_assert(alignof(blas::T) == alignof(::T), "alignof " #T);
ALEXNET_CUBLASLT_STRUCTS(ABI_CHECK_BLAS_STRUCT)
#define ABI_CHECK_BLAS_FIELD(T, field)                                                   \
  static_assert(offsetof(blas::T, field) == offsetof(::T, field), "offsetof " #T "." #field); \
  static_assert(sizeof(blas::T::field) == sizeof(::T::field), "sizeof " #T "." #field);
ALEXNET_CUBLASLT_HEURISTIC_FIELDS(ABI_CHECK_BLAS_FIELD, cublasLtMatmulHeuristicResult_t)
ALEXNET_CUBLASLT_FUNCTIONS(ABI_CHECK_BLAS_FN)
#endif  // ALEXNET_CHECK_CUBLAS

}  // namespace abi

#endif  // ALEXNET_ABI_LIST
