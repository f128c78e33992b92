// Comparison of our Open MPI declarations (native/dist/mpi_api.h) with the real <mpi.h>. NOT
// part of the addon: scripts/check-mpi-abi.sh compiles it with the include folders of
// `mpicc --showme:compile` and links it against libmpi, then runs it.
//   * at compile time: every constant of mpi_api.h equals the header's; every handle type is
//     the very type of the header's (std::is_same); every function-pointer type is the type of
//     the real function (std::is_same<PFN_x, decltype(&::x)>); every predefined object our
//     loader resolves by name is declared by the header under that name;
//   * at run time (no MPI_Init): each predefined handle macro (MPI_COMM_WORLD, ...) is the
//     address of the exported global our loader looks up with dlsym; MPI_IN_PLACE is our
//     mpi_in_place(); the libmpi linked is libmpi.so.40. Prints "abi_item ..." lines and
//     "mpi-abi: OK <n> items", or "MISMATCH ..." and exits 1.
#include "mpi_api.h"

// Our constants, captured before <mpi.h> turns their names into macros (MPI_SUCCESS -> 0).
#define ALEXNET_CONSTANTS(X) \
  X(MPI_SUCCESS) X(MPI_THREAD_SINGLE) X(MPI_THREAD_FUNNELED) X(MPI_THREAD_SERIALIZED) \
  X(MPI_THREAD_MULTIPLE) X(MPI_COMM_TYPE_SHARED) X(MPI_MAX_ERROR_STRING) X(MPI_MAX_LIBRARY_VERSION_STRING)
#define CAPTURE(name) constexpr int ours_##name = alexnet::dist::mpi::name;
ALEXNET_CONSTANTS(CAPTURE)
#undef CAPTURE

#include <dlfcn.h>
#define OMPI_SKIP_MPICXX 1  // the C API only (no MPI:: C++ bindings to link)
#include <mpi.h>

#include <cstdio>
#include <cstring>
#include <type_traits>

namespace ours = alexnet::dist::mpi;

#if OMPI_MAJOR_VERSION < 4 || OMPI_MAJOR_VERSION > 5
#error "these declarations are checked against Open MPI 4.x / 5.x headers"
#endif

// `ours_##name` is pasted (not expanded); the plain `name` expands to the header's value.
#define SAME_CONSTANT(name) static_assert(ours_##name == name, "constant differs from mpi.h: " #name);
ALEXNET_CONSTANTS(SAME_CONSTANT)

#define SAME_HANDLE(name) static_assert(std::is_same<ours::name, ::name>::value, "handle type differs from mpi.h: " #name);
SAME_HANDLE(MPI_Comm)
SAME_HANDLE(MPI_Datatype)
SAME_HANDLE(MPI_Errhandler)
SAME_HANDLE(MPI_Info)
SAME_HANDLE(MPI_Op)
#define ALEXNET_HANDLES(X) X(MPI_Comm) X(MPI_Datatype) X(MPI_Errhandler) X(MPI_Info) X(MPI_Op)

#define SAME_FUNCTION(name) \
  static_assert(std::is_same<ours::PFN_##name, decltype(&::name)>::value, "function type differs from mpi.h: " #name);
ALEXNET_MPI_FUNCTIONS(SAME_FUNCTION)

// The global exists under that name, and the header's macro has our handle type.
#define SAME_OBJECT(member, type, global, macro) \
  static_assert(std::is_pointer<decltype(&::global)>::value, "not declared: " #global); \
  static_assert(std::is_same<decltype(macro), ours::type>::value, "handle type of " #macro);
ALEXNET_MPI_OBJECTS(SAME_OBJECT)

int main() {
  int items = 0, bad = 0;
#define LIST(name) std::printf("abi_item constant %s = %d\n", #name, static_cast<int>(name)), ++items;
  ALEXNET_CONSTANTS(LIST)
#undef LIST
#define LIST(name) std::printf("abi_item handle %s\n", #name), ++items;
  ALEXNET_HANDLES(LIST)
#undef LIST
#define LIST(name) std::printf("abi_item function %s\n", #name), ++items;
  ALEXNET_MPI_FUNCTIONS(LIST)
#undef LIST
#define CHECK_OBJECT(member, type, global, macro)                                                    \
  {                                                                                                  \
    void* by_name = dlsym(RTLD_DEFAULT, #global);                                                    \
    ++items;                                                                                         \
    std::printf("abi_item object %s = &%s\n", #macro, #global);                                      \
    if (by_name == nullptr || by_name != static_cast<void*>(macro)) {                                \
      std::printf("MISMATCH: %s is not the address of the exported %s\n", #macro, #global);         \
      ++bad;                                                                                         \
    }                                                                                                \
  }
  ALEXNET_MPI_OBJECTS(CHECK_OBJECT)
  ++items;
  std::printf("abi_item in_place MPI_IN_PLACE\n");
  if (MPI_IN_PLACE != ours::mpi_in_place()) {
    std::printf("MISMATCH: MPI_IN_PLACE is not (void*)1\n");
    ++bad;
  }
  Dl_info where;
  ++items;
  if (dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &where) == 0 || where.dli_fname == nullptr) {
    std::printf("MISMATCH: cannot tell which file MPI_Init_thread comes from\n");
    ++bad;
  } else {
    void* h = dlopen("libmpi.so.40", RTLD_NOW | RTLD_NOLOAD);
    std::printf("abi_item soname libmpi.so.40 (linked: %s)\n", where.dli_fname);
    if (h == nullptr) {
      std::printf("MISMATCH: the libmpi linked (%s) is not loaded as libmpi.so.40\n", where.dli_fname);
      ++bad;
    }
  }
  if (bad) return 1;
  std::printf("mpi-abi: OK %d items (Open MPI %d.%d.%d headers)\n", items, OMPI_MAJOR_VERSION, OMPI_MINOR_VERSION,
              OMPI_RELEASE_VERSION);
  return 0;
}
