// Run-time binding to Open MPI (libmpi.so.40: Open MPI 4.x and 5.x keep this soname and the
// ABI of mpi_api.h), loaded with dlopen like cuDNN (docs/architecture.md, decision 1), so that
// the addon builds without MPI headers and loads on machines without MPI. Loading never
// crashes and never throws: what is missing, and every place looked, ends up in `reason`.
// Loading only opens the library and asks its version (MPI_Get_library_version may be called
// before MPI_Init): it does NOT initialise MPI (native/dist/comm.h does, on request).
//
// Search order (the facts it relies on: docs/mpi-abi.md, section M0):
//   1. ALEXNET_MPI_LIBRARY (a file, or a folder holding libmpi.so.40). When set, it is the only
//      place tried: an explicit choice that does not work is reported, not replaced.
//   2. the dynamic loader's own search: dlopen("libmpi.so.40") (LD_LIBRARY_PATH,
//      /etc/ld.so.cache — Debian/Ubuntu's libopenmpi3 is found here —, /lib, /usr/lib).
//   3. common prefixes, lib then lib64 under each: $MPI_HOME, $MPI_ROOT, $OPAL_PREFIX,
//      /usr/lib64/openmpi (Fedora, RHEL), /opt/openmpi, /usr/local, /opt/hpcx/ompi,
//      /opt/amazon/openmpi, /usr/mpi/gcc/openmpi-* (MLNX_OFED).
// The library is opened RTLD_NOW | RTLD_GLOBAL (its components, dlopened by Open MPI itself,
// may expect libmpi's symbols in the global scope). A library that lacks the ompi_mpi_*
// globals (MPICH's libmpi.so.12 renamed, for one) or any function in ALEXNET_MPI_FUNCTIONS is
// rejected with the reason.
#pragma once

#include <string>
#include <vector>

#include "mpi_api.h"

namespace alexnet::dist {

struct MpiApi {
#define ALEXNET_MPI_MEMBER(name) mpi::PFN_##name name = nullptr;
  ALEXNET_MPI_FUNCTIONS(ALEXNET_MPI_MEMBER)
#undef ALEXNET_MPI_MEMBER
#define ALEXNET_MPI_OBJECT(member, type, global, macro) mpi::type member = nullptr;
  ALEXNET_MPI_OBJECTS(ALEXNET_MPI_OBJECT)
#undef ALEXNET_MPI_OBJECT
};

struct MpiLibrary {
  bool found = false;           // loaded, every function and predefined object resolved
  std::string path;             // the file in use (found), or the last one rejected
  std::string version;          // MPI_Get_library_version, first line ("Open MPI v4.1.4, ...")
  std::vector<std::string> searched;  // every place considered, in order: "<place>: <outcome>"
  std::string reason;           // why not found ("" when found)
  MpiApi api;                   // all null unless found
};

// Loads the library on the first call (thread-safe); later calls return the same result.
// Never throws.
const MpiLibrary& mpi_library();

// The table, or ERR_DIST naming what is missing and where it looked.
const MpiApi& mpi_table();

// "MPI_Allreduce failed: <MPI_Error_string> (error 15)" as an ERR_DIST error.
[[noreturn]] void throw_mpi_error(int rc, const char* call);

}  // namespace alexnet::dist

// MPI_CHECK(api.MPI_Barrier(world)): ERR_DIST naming the function and MPI's own text.
#define MPI_CHECK(fn, ...)                                                              \
  do {                                                                                  \
    const int alexnet_mpi_rc = ::alexnet::dist::mpi_table().fn(__VA_ARGS__);                  \
    if (alexnet_mpi_rc != ::alexnet::dist::mpi::MPI_SUCCESS)                            \
      ::alexnet::dist::throw_mpi_error(alexnet_mpi_rc, #fn);                            \
  } while (0)
