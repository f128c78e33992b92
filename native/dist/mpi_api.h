// Our own declarations of the part of Open MPI's C API we call (docs/mpi-abi.md, section M1).
// No <mpi.h> is needed to build: libmpi.so.40 is opened at run time (mpi_loader.h), like cuDNN.
//
// Open MPI's ABI, which these declarations copy (checked against the real mpi.h by
// native/dist/abi_check.cc, through scripts/check-mpi-abi.sh):
//   * handles are pointers to opaque structs (MPI_Comm is `struct ompi_communicator_t*`);
//   * the predefined handles are the addresses of exported globals: MPI_COMM_WORLD is
//     &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float, MPI_SUM &ompi_mpi_op_sum, ... — we
//     resolve them with dlsym (the names are in ALEXNET_MPI_OBJECTS);
//   * MPI_IN_PLACE is ((void*)1); the enum constants are the values below.
// MPICH (libmpi.so.12) and its derivatives use integer handles and other constants: these
// declarations are wrong for them, and the loader refuses a library without the ompi_ globals.
//
// The opaque struct tags are declared at global scope with Open MPI's own names, so that our
// handle types are the very types of the real header (the ABI check asserts std::is_same).
#pragma once

struct ompi_communicator_t;
struct ompi_datatype_t;
struct ompi_errhandler_t;
struct ompi_info_t;
struct ompi_op_t;

namespace alexnet::dist::mpi {

using MPI_Comm = ompi_communicator_t*;
using MPI_Datatype = ompi_datatype_t*;
using MPI_Errhandler = ompi_errhandler_t*;
using MPI_Info = ompi_info_t*;
using MPI_Op = ompi_op_t*;

// Constants (docs/mpi-abi.md, section M2).
inline constexpr int MPI_SUCCESS = 0;
inline constexpr int MPI_THREAD_SINGLE = 0;
inline constexpr int MPI_THREAD_FUNNELED = 1;
inline constexpr int MPI_THREAD_SERIALIZED = 2;
inline constexpr int MPI_THREAD_MULTIPLE = 3;
inline constexpr int MPI_COMM_TYPE_SHARED = 0;
inline constexpr int MPI_MAX_ERROR_STRING = 256;
inline constexpr int MPI_MAX_LIBRARY_VERSION_STRING = 256;
// MPI_IN_PLACE is ((void*)1): not a constant expression in C++, so a function.
inline void* mpi_in_place() { return reinterpret_cast<void*>(1); }

// The functions, one type each (docs/mpi-abi.md, section M3).
using PFN_MPI_Init_thread = int (*)(int* argc, char*** argv, int required, int* provided);
using PFN_MPI_Initialized = int (*)(int* flag);
using PFN_MPI_Finalized = int (*)(int* flag);
using PFN_MPI_Finalize = int (*)();
using PFN_MPI_Query_thread = int (*)(int* provided);
using PFN_MPI_Comm_rank = int (*)(MPI_Comm comm, int* rank);
using PFN_MPI_Comm_size = int (*)(MPI_Comm comm, int* size);
using PFN_MPI_Comm_split_type = int (*)(MPI_Comm comm, int split_type, int key, MPI_Info info,
                                        MPI_Comm* newcomm);
using PFN_MPI_Comm_free = int (*)(MPI_Comm* comm);
using PFN_MPI_Comm_set_errhandler = int (*)(MPI_Comm comm, MPI_Errhandler errhandler);
using PFN_MPI_Allreduce = int (*)(const void* sendbuf, void* recvbuf, int count,
                                  MPI_Datatype datatype, MPI_Op op, MPI_Comm comm);
using PFN_MPI_Bcast = int (*)(void* buffer, int count, MPI_Datatype datatype, int root,
                              MPI_Comm comm);
using PFN_MPI_Barrier = int (*)(MPI_Comm comm);
using PFN_MPI_Abort = int (*)(MPI_Comm comm, int errorcode);
using PFN_MPI_Error_string = int (*)(int errorcode, char* string, int* resultlen);
using PFN_MPI_Get_library_version = int (*)(char* version, int* resultlen);

}  // namespace alexnet::dist::mpi

// Every function the loader resolves (all required).
#define ALEXNET_MPI_FUNCTIONS(X) \
  X(MPI_Init_thread)             \
  X(MPI_Initialized)             \
  X(MPI_Finalized)               \
  X(MPI_Finalize)                \
  X(MPI_Query_thread)            \
  X(MPI_Comm_rank)               \
  X(MPI_Comm_size)               \
  X(MPI_Comm_split_type)         \
  X(MPI_Comm_free)               \
  X(MPI_Comm_set_errhandler)     \
  X(MPI_Allreduce)               \
  X(MPI_Bcast)                   \
  X(MPI_Barrier)                 \
  X(MPI_Abort)                   \
  X(MPI_Error_string)            \
  X(MPI_Get_library_version)

// The predefined handles: X(our member, handle type, exported global, the real header's macro).
#define ALEXNET_MPI_OBJECTS(X)                                                  \
  X(comm_world, MPI_Comm, ompi_mpi_comm_world, MPI_COMM_WORLD)                  \
  X(float32, MPI_Datatype, ompi_mpi_float, MPI_FLOAT)                           \
  X(byte, MPI_Datatype, ompi_mpi_byte, MPI_BYTE)                                \
  X(op_sum, MPI_Op, ompi_mpi_op_sum, MPI_SUM)                                   \
  X(errors_return, MPI_Errhandler, ompi_mpi_errors_return, MPI_ERRORS_RETURN)   \
  X(info_null, MPI_Info, ompi_mpi_info_null, MPI_INFO_NULL)
