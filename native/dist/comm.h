// The process's communicator (issue 13): MPI's world when launched by Open MPI's mpirun, else a
// world of one process. Every function here runs on the communication queue's worker thread
// (core/device.h comm_queue; native/binding/dist.cc orders it after the CPU work that produced
// the input), so MPI is initialised, used and finalised from that one thread, collectives
// overlap CPU kernels, and the JavaScript thread never blocks on a collective. Errors are ERR_DIST
// (MPI's own text through MPI_ERRORS_RETURN) or ERR_DTYPE / ERR_DEVICE / ERR_ARGUMENT.
//
// When is it MPI? launch_plan() below decides from the environment alone: launched by Open
// MPI's mpirun (OMPI_COMM_WORLD_SIZE set) or by Slurm's srun with PMIx (SLURM_PROCID and
// PMIX_RANK set: `srun --mpi=pmix`, Open MPI's direct launch) -> MPI; the library missing then is
// an error (each rank training alone would be silently wrong). Not launched -> a world of size 1
// without initialising MPI, even where the library exists (no singleton MPI_Init: it is slow and
// may start daemons). An srun step of several tasks without PMIx, or another launcher
// (PMI_SIZE > 1 or PMIX_RANK outside Slurm without OMPI_ variables, e.g. MPICH's hydra)
// -> ERR_DIST: Open MPI could not start there, and MPICH's ABI is not supported.
#pragma once

#include <functional>
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
  std::string local_rank_source;  // "OMPI_COMM_WORLD_LOCAL_RANK" | "SLURM_LOCALID" | "MPI_Comm_split_type" | "single"
  std::string launcher;           // "mpirun" | "srun" | "" (a single world)
  std::string thread_level;       // MPI_Init_thread's `provided`: "MPI_THREAD_SERIALIZED", ...
  std::string library;            // path of libmpi in use ("" for a single world)
  std::string version;            // its MPI_Get_library_version
  std::string reason;             // why a single world (not launched, ...); "" under MPI
};

// How this process was launched, decided from its environment alone (a pure function of
// `getenv`, which returns null for an unset variable; unit-tested over environments through the
// binding's distLaunchPlan).
struct LaunchPlan {
  enum class Kind { Single, Mpi, Refused } kind = Kind::Single;
  std::string launcher;           // "mpirun" | "srun" | "" (single, refused)
  int size = 1;                   // the world size the launcher announces
  int rank = 0;                   // this process's rank in it
  int local_rank = -1;            // -1: ask MPI (MPI_Comm_split_type)
  int local_size = -1;            // -1: ask MPI
  std::string local_rank_source;  // "OMPI_COMM_WORLD_LOCAL_RANK" | "SLURM_LOCALID" | ""
  std::string detail;             // the variables that decided, e.g. "OMPI_COMM_WORLD_SIZE=2"
  std::string reason;             // why a world of one, or why refused
};
LaunchPlan launch_plan(const std::function<const char*(const char*)>& getenv);

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
// In place on `bytes` bytes of host memory: every rank gets `root`'s (the NCCL id's exchange).
void broadcast_bytes(void* data, size_t bytes, int root);
void barrier();
// MPI_Finalize (under MPI); afterwards every call is ERR_DIST. A second call is a no-op.
void finalize();

// --- collectives on a device tensor -------------------------------------------------------------

// Collectives on tensors of a device kind other than the CPU, provided by the code that knows
// that device (NCCL for CUDA: nccl_comm.cc, built with CUDA only), registered while the addon
// loads like a device runtime (native/core/device.h). Each is called inside enqueue(t.device(),
// ...) and only launches the work on the device's queue.
struct DeviceCollectives {
  void (*all_reduce)(const Tensor& t, bool average);  // float32, in place: sum or mean over ranks
  void (*broadcast)(const Tensor& t, int root);       // any dtype, in place: root's bytes
};
struct DeviceCollectivesRegistration {
  DeviceCollectivesRegistration(DeviceType type, const DeviceCollectives* c);
};
// Dispatch on t's device kind: ERR_DIST when this build has no collectives for it.
void device_all_reduce(const Tensor& t, bool average);
void device_broadcast(const Tensor& t, int root);

// --- on any thread: checks before enqueueing ----------------------------------------------------

// ERR_DIST when init() was never requested from this process ("call initDistributed() first").
void mark_init_requested();
void check_init_requested(const char* op);

}  // namespace alexnet::dist
