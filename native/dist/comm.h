// The process's communicator (issue 13): MPI's world when launched by Open MPI's mpirun, else a
// world of one process. Every function here runs on the communication queue's worker thread
// (core/device.h comm_queue; native/binding/dist.cc orders it after the CPU work that produced
// the input), so MPI is initialised, used and finalised from that one thread, collectives
// overlap CPU kernels, and the JavaScript thread never blocks on a collective. Errors are ERR_DIST
// (MPI's own text through MPI_ERRORS_RETURN) or ERR_DTYPE / ERR_DEVICE / ERR_ARGUMENT.
//
// When is it MPI?  launched under Open MPI's launcher (OMPI_COMM_WORLD_SIZE set) -> MPI;
// the library missing then is an error (each rank training alone would be silently wrong).
// Not launched (no OMPI_COMM_WORLD_SIZE) -> a world of size 1 without initialising MPI, even
// where the library exists (no singleton MPI_Init: it is slow and may start daemons); launched
// by another launcher (PMI_SIZE > 1 or PMIX_RANK without OMPI_ variables, e.g. MPICH's
// hydra) -> ERR_DIST, MPICH's ABI is not supported.
#pragma once

#include <string>

#include "../core/tensor.h"

namespace alexnet::dist {

enum class WorldKind { Uninitialized, Single, Mpi, Finalized };

struct WorldInfo {
  WorldKind kind = WorldKind::Uninitialized;
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  int local_size = 1;
  std::string local_rank_source;  // "OMPI_COMM_WORLD_LOCAL_RANK" | "MPI_Comm_split_type" | "single"
  std::string thread_level;       // MPI_Init_thread's `provided`: "MPI_THREAD_SERIALIZED", ...
  std::string library;            // path of libmpi in use ("" for a single world)
  std::string version;            // its MPI_Get_library_version
  std::string reason;             // why a single world (not launched, ...); "" under MPI
};

// A snapshot (thread-safe).
WorldInfo world();

// --- on the communication queue's thread ------------------------------------------------------------------

// Sets up the world (see above). A second call is a no-op; after finalize it is ERR_DIST.
void init();
// In place on a CPU float32 tensor: the element-wise sum over ranks, divided by the world size
// when `average`. A world of one leaves the tensor as it is.
void all_reduce(const Tensor& t, bool average);
// In place on a CPU tensor of any dtype: every rank gets `root`'s contents.
void broadcast(const Tensor& t, int root);
void barrier();
// MPI_Finalize (under MPI); afterwards every call is ERR_DIST. A second call is a no-op.
void finalize();

// --- on any thread: checks before enqueueing ----------------------------------------------------

// ERR_DIST when init() was never requested from this process ("call initDistributed() first").
void mark_init_requested();
void check_init_requested(const char* op);

}  // namespace alexnet::dist
