// The communicator of comm.h: MPI's world or a world of one.
#include "comm.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <mutex>

#include "../core/error.h"
#include "mpi_loader.h"

namespace alexnet::dist {

namespace {

std::mutex g_mutex;     // guards g_world
WorldInfo g_world;      // written on the queue thread, read by world() anywhere
mpi::MPI_Comm g_local = nullptr;  // the shared-memory communicator (when we split one)
std::atomic<bool> g_init_requested{false};
// Constant-initialised (null), so registrations from other files' static initialisers are safe.
const DeviceCollectives* g_device_collectives[2] = {nullptr, nullptr};

const DeviceCollectives& collectives_for(const char* op, const Tensor& t) {
  const auto i = static_cast<size_t>(t.device().type);
  const DeviceCollectives* c = i < 2 ? g_device_collectives[i] : nullptr;
  if (c == nullptr) fail(code::kDist, op, ": tensor is on ", t.device().str(), " but this build has no collectives for it");
  return *c;
}

// MPI counts are int: collectives over more elements go in chunks.
constexpr int64_t kChunk = int64_t{1} << 30;

// A non-negative integer, or -1 (absent or not a number).
int parse_int(const char* v) {
  if (v == nullptr || *v == '\0') return -1;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || n < 0 || n > INT_MAX) return -1;
  return static_cast<int>(n);
}

const char* thread_level_name(int level) {
  switch (level) {
    case mpi::MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
    case mpi::MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
    case mpi::MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
    case mpi::MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
    default: return "unknown";
  }
}

WorldInfo snapshot() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_world;
}

void set_world(const WorldInfo& w) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_world = w;
}

// The world for a collective: ERR_DIST before init or after finalize.
WorldInfo ready(const char* op) {
  WorldInfo w = snapshot();
  if (w.kind == WorldKind::Uninitialized)
    fail(code::kDist, op, ": the communicator is not initialised (initDistributed() failed or was not called)");
  if (w.kind == WorldKind::Finalized) fail(code::kDist, op, ": the communicator was finalized");
  return w;
}

void check_cpu(const char* op, const Tensor& t) {
  if (t.device().type != DeviceType::Cpu)
    fail(code::kDist, op, ": tensor is on ", t.device().str(),
         ": CUDA tensors go through NCCL (native/dist/nccl_comm.h), not MPI");
}

}  // namespace

WorldInfo world() { return snapshot(); }

DeviceCollectivesRegistration::DeviceCollectivesRegistration(DeviceType type, const DeviceCollectives* c) {
  const auto i = static_cast<size_t>(type);
  if (i < 2) g_device_collectives[i] = c;
}

void device_all_reduce(const Tensor& t, bool average) { collectives_for("allReduce", t).all_reduce(t, average); }

void device_broadcast(const Tensor& t, int root) { collectives_for("broadcast", t).broadcast(t, root); }

void mark_init_requested() { g_init_requested = true; }

void check_init_requested(const char* op) {
  if (!g_init_requested) fail(code::kDist, op, ": call initDistributed() first");
}

LaunchPlan launch_plan(const std::function<const char*(const char*)>& getenv) {
  auto num = [&](const char* name) { return parse_int(getenv(name)); };
  auto set = [&](const char* name) { const char* v = getenv(name); return v != nullptr && *v != '\0'; };
  LaunchPlan p;
  const int ompi_size = num("OMPI_COMM_WORLD_SIZE");
  if (ompi_size >= 0) {  // Open MPI's mpirun (prterun too)
    p.kind = LaunchPlan::Kind::Mpi;
    p.launcher = "mpirun";
    p.size = ompi_size;
    p.rank = std::max(0, num("OMPI_COMM_WORLD_RANK"));
    p.detail = "OMPI_COMM_WORLD_SIZE=" + std::to_string(ompi_size);
    const int local = num("OMPI_COMM_WORLD_LOCAL_RANK");
    const int local_size = num("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (local >= 0 && local_size > 0) {
      p.local_rank = local;
      p.local_size = local_size;
      p.local_rank_source = "OMPI_COMM_WORLD_LOCAL_RANK";
    }
    return p;
  }
  // Slurm: SLURM_STEP_NUM_TASKS is set by srun for the tasks of a step (not in a batch script,
  // whose SLURM_NTASKS is the job's and which runs one process).
  const int procid = num("SLURM_PROCID");
  const int step_tasks = num("SLURM_STEP_NUM_TASKS") >= 0 ? num("SLURM_STEP_NUM_TASKS") : num("SLURM_NTASKS");
  if (procid >= 0 && step_tasks > 0 && set("PMIX_RANK")) {  // srun --mpi=pmix: Open MPI's direct launch
    p.kind = LaunchPlan::Kind::Mpi;
    p.launcher = "srun";
    p.size = step_tasks;
    p.rank = procid;
    p.detail = "SLURM_PROCID=" + std::to_string(procid) + ", " + std::to_string(step_tasks) + " tasks, PMIX_RANK set";
    const int local = num("SLURM_LOCALID");
    if (local >= 0) {
      p.local_rank = local;  // the local size comes from MPI_Comm_split_type
      p.local_rank_source = "SLURM_LOCALID";
    }
    return p;
  }
  const int srun_tasks = num("SLURM_STEP_NUM_TASKS");
  if (procid >= 0 && srun_tasks > 1) {
    p.kind = LaunchPlan::Kind::Refused;
    p.detail = "SLURM_STEP_NUM_TASKS=" + std::to_string(srun_tasks);
    p.reason = "launched by srun (SLURM_STEP_NUM_TASKS=" + std::to_string(srun_tasks) + ") without PMIx (PMIX_RANK unset): "
               "Open MPI starts under srun only through PMIx; use `srun --mpi=pmix`";
    return p;
  }
  if (num("PMI_SIZE") > 1 || set("PMIX_RANK")) {
    p.kind = LaunchPlan::Kind::Refused;
    p.detail = set("PMIX_RANK") ? "PMIX_RANK set" : "PMI_SIZE=" + std::to_string(num("PMI_SIZE"));
    p.reason = "launched by a launcher other than Open MPI's (PMI_SIZE/PMIX_RANK set, OMPI_COMM_WORLD_SIZE unset, not "
               "under srun); only Open MPI (libmpi.so.40) is supported: MPICH's ABI differs";
    return p;
  }
  p.reason = "not launched under Open MPI's mpirun (OMPI_COMM_WORLD_SIZE unset) or srun --mpi=pmix: a world of one process";
  return p;
}

void init() {
  const WorldInfo current = snapshot();
  if (current.kind == WorldKind::Single || current.kind == WorldKind::Mpi) return;
  if (current.kind == WorldKind::Finalized)
    fail(code::kDist, "initDistributed: MPI was finalized in this process and cannot be initialised again");

  WorldInfo w;
  const LaunchPlan plan = launch_plan([](const char* name) -> const char* { return std::getenv(name); });
  if (plan.kind == LaunchPlan::Kind::Refused) fail(code::kDist, "initDistributed: ", plan.reason);
  if (plan.kind == LaunchPlan::Kind::Single) {
    w.kind = WorldKind::Single;
    w.local_rank_source = "single";
    w.reason = plan.reason;
    set_world(w);
    return;
  }

  const MpiLibrary& lib = mpi_library();
  if (!lib.found)
    fail(code::kDist, "initDistributed: launched under ", plan.launcher, " (", plan.detail,
         ") but MPI cannot be loaded: ", lib.reason);
  const MpiApi& api = lib.api;
  int already = 0;
  MPI_CHECK(MPI_Initialized, &already);
  int provided = -1;
  if (already) {
    MPI_CHECK(MPI_Query_thread, &provided);
  } else {
    MPI_CHECK(MPI_Init_thread, nullptr, nullptr, mpi::MPI_THREAD_SERIALIZED, &provided);
  }
  // Every MPI call of this process is made from this thread (the communication queue's worker), the one
  // that initialised MPI, so MPI_THREAD_FUNNELED is enough; SINGLE is not (the process has
  // other threads that might, for MPI, count as calling it).
  if (provided < mpi::MPI_THREAD_FUNNELED)
    fail(code::kDist, "initDistributed: MPI provides only ", thread_level_name(provided),
         "; at least MPI_THREAD_FUNNELED is needed (this library calls MPI from its own worker thread)");
  MPI_CHECK(MPI_Comm_set_errhandler, api.comm_world, api.errors_return);
  MPI_CHECK(MPI_Comm_rank, api.comm_world, &w.rank);
  MPI_CHECK(MPI_Comm_size, api.comm_world, &w.size);

  if (plan.local_rank >= 0 && plan.local_size > 0) {
    w.local_rank = plan.local_rank;
    w.local_size = plan.local_size;
    w.local_rank_source = plan.local_rank_source;
  } else {
    mpi::MPI_Comm local = nullptr;
    MPI_CHECK(MPI_Comm_split_type, api.comm_world, mpi::MPI_COMM_TYPE_SHARED, w.rank, api.info_null, &local);
    MPI_CHECK(MPI_Comm_rank, local, &w.local_rank);
    MPI_CHECK(MPI_Comm_size, local, &w.local_size);
    g_local = local;
    w.local_rank_source = "MPI_Comm_split_type";
    if (plan.local_rank >= 0) {  // srun: the local rank Slurm gave (the split's order may differ)
      w.local_rank = plan.local_rank;
      w.local_rank_source = plan.local_rank_source;
    }
  }
  w.kind = WorldKind::Mpi;
  w.launcher = plan.launcher;
  w.thread_level = thread_level_name(provided);
  w.library = lib.path;
  w.version = lib.version;
  set_world(w);
}

void all_reduce(const Tensor& t, bool average) {
  const char* op = "allReduce";
  const WorldInfo w = ready(op);
  check_cpu(op, t);
  if (t.dtype() != DType::Float32) fail(code::kDtype, op, ": expected a float32 tensor but got ", dtype_name(t.dtype()));
  if (w.kind != WorldKind::Mpi || w.size == 1) return;  // the sum (and the mean) over one rank
  const MpiApi& api = mpi_table();
  float* p = t.f32();
  const int64_t n = t.numel();
  for (int64_t start = 0; start < n; start += kChunk) {
    const int count = static_cast<int>(std::min(kChunk, n - start));
    MPI_CHECK(MPI_Allreduce, mpi::mpi_in_place(), p + start, count, api.float32, api.op_sum, api.comm_world);
  }
  if (average) {
    const float size = static_cast<float>(w.size);
    for (int64_t i = 0; i < n; ++i) p[i] /= size;
  }
}

void broadcast(const Tensor& t, int root) {
  const char* op = "broadcast";
  const WorldInfo w = ready(op);
  check_cpu(op, t);
  if (root < 0 || root >= w.size)
    fail(code::kArgument, op, ": root must be a rank in [0, ", w.size, ") but got ", root);
  if (w.kind != WorldKind::Mpi || w.size == 1) return;
  broadcast_bytes(t.ptr<char>(), t.nbytes(), root);
}

void broadcast_bytes(void* data, size_t bytes, int root) {
  const WorldInfo w = ready("broadcast");
  if (w.kind != WorldKind::Mpi || w.size == 1) return;
  const MpiApi& api = mpi_table();
  char* p = static_cast<char*>(data);
  const int64_t n = static_cast<int64_t>(bytes);
  for (int64_t start = 0; start < n; start += kChunk) {
    const int count = static_cast<int>(std::min(kChunk, n - start));
    MPI_CHECK(MPI_Bcast, p + start, count, api.byte, root, api.comm_world);
  }
}

void barrier() {
  const WorldInfo w = ready("barrier");
  if (w.kind != WorldKind::Mpi) return;
  MPI_CHECK(MPI_Barrier, mpi_table().comm_world);
}

void finalize() {
  WorldInfo w = snapshot();
  if (w.kind == WorldKind::Finalized) return;
  if (w.kind == WorldKind::Uninitialized) fail(code::kDist, "finalize: the communicator is not initialised");
  if (w.kind == WorldKind::Mpi) {
    if (g_local != nullptr) {
      MPI_CHECK(MPI_Comm_free, &g_local);
      g_local = nullptr;
    }
    MPI_CHECK(MPI_Finalize);
  }
  w.kind = WorldKind::Finalized;
  set_world(w);
}

}  // namespace alexnet::dist
