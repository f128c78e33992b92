// Our own declarations of the part of NCCL 2's C API we call (docs/nccl-abi.md, sections N1-N3).
// No <nccl.h> (and no CUDA header) is needed to build: libnccl.so.2 is opened at run time
// (nccl_loader.h), like cuDNN and Open MPI.
//
// NCCL's ABI, which these declarations copy (checked against the real nccl.h by
// native/dist/nccl_abi_check.cc, through scripts/check-nccl-abi.sh; the numbers are pinned by
// test/nccl-abi.test.ts against docs/nccl-abi.md):
//   * ncclComm_t is `struct ncclComm*` (opaque); cudaStream_t is `struct CUstream_st*`;
//   * ncclUniqueId is a struct of 128 chars, passed BY VALUE to ncclCommInitRank;
//   * ncclResult_t, ncclRedOp_t and ncclDataType_t are plain C enums (4 bytes, int).
// The opaque struct tags are declared at global scope with NCCL's and CUDA's own names, so that
// our handle types are the very types of the real headers.
#pragma once

#include <cstddef>

struct ncclComm;
// cudaStream_t exactly as driver_types.h declares it (a repeated identical typedef is legal C++).
struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace alexnet::dist::nccl {

using ncclComm_t = ::ncclComm*;

inline constexpr int NCCL_UNIQUE_ID_BYTES = 128;
struct ncclUniqueId {
  char internal[NCCL_UNIQUE_ID_BYTES];
};

// X(name, value) lists, so the ABI check and the pinning test see every value we declare.
#define ALEXNET_NCCL_RESULTS(X) \
  X(ncclSuccess, 0)             \
  X(ncclUnhandledCudaError, 1)  \
  X(ncclSystemError, 2)         \
  X(ncclInternalError, 3)       \
  X(ncclInvalidArgument, 4)     \
  X(ncclInvalidUsage, 5)        \
  X(ncclRemoteError, 6)         \
  X(ncclInProgress, 7)
#define ALEXNET_NCCL_RED_OPS(X) \
  X(ncclSum, 0)                 \
  X(ncclProd, 1)                \
  X(ncclMax, 2)                 \
  X(ncclMin, 3)                 \
  X(ncclAvg, 4)
#define ALEXNET_NCCL_DATA_TYPES(X) \
  X(ncclInt8, 0)                   \
  X(ncclUint8, 1)                  \
  X(ncclInt32, 2)                  \
  X(ncclUint32, 3)                 \
  X(ncclInt64, 4)                  \
  X(ncclUint64, 5)                 \
  X(ncclFloat16, 6)                \
  X(ncclFloat32, 7)                \
  X(ncclFloat64, 8)

#define ALEXNET_NCCL_ENUMERATOR(name, value) name = value,
enum ncclResult_t { ALEXNET_NCCL_RESULTS(ALEXNET_NCCL_ENUMERATOR) };
enum ncclRedOp_t { ALEXNET_NCCL_RED_OPS(ALEXNET_NCCL_ENUMERATOR) };
enum ncclDataType_t { ALEXNET_NCCL_DATA_TYPES(ALEXNET_NCCL_ENUMERATOR) };
#undef ALEXNET_NCCL_ENUMERATOR

// X(type, list): every enum we declare.
#define ALEXNET_NCCL_ENUMS(X)              \
  X(ncclResult_t, ALEXNET_NCCL_RESULTS)    \
  X(ncclRedOp_t, ALEXNET_NCCL_RED_OPS)     \
  X(ncclDataType_t, ALEXNET_NCCL_DATA_TYPES)

// The functions, one type each (docs/nccl-abi.md, section N3).
using PFN_ncclGetVersion = ncclResult_t (*)(int* version);
using PFN_ncclGetUniqueId = ncclResult_t (*)(ncclUniqueId* uniqueId);
using PFN_ncclCommInitRank = ncclResult_t (*)(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank);
using PFN_ncclCommDestroy = ncclResult_t (*)(ncclComm_t comm);
using PFN_ncclCommAbort = ncclResult_t (*)(ncclComm_t comm);
using PFN_ncclCommGetAsyncError = ncclResult_t (*)(ncclComm_t comm, ncclResult_t* asyncError);
using PFN_ncclGetErrorString = const char* (*)(ncclResult_t result);
using PFN_ncclAllReduce = ncclResult_t (*)(const void* sendbuff, void* recvbuff, size_t count,
                                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                           cudaStream_t stream);
using PFN_ncclBroadcast = ncclResult_t (*)(const void* sendbuff, void* recvbuff, size_t count,
                                           ncclDataType_t datatype, int root, ncclComm_t comm,
                                           cudaStream_t stream);

}  // namespace alexnet::dist::nccl

// Every function the loader resolves (all required; all exist since NCCL 2.4 at the latest).
#define ALEXNET_NCCL_FUNCTIONS(X) \
  X(ncclGetVersion)               \
  X(ncclGetUniqueId)              \
  X(ncclCommInitRank)             \
  X(ncclCommDestroy)              \
  X(ncclCommAbort)                \
  X(ncclCommGetAsyncError)        \
  X(ncclGetErrorString)           \
  X(ncclAllReduce)                \
  X(ncclBroadcast)
