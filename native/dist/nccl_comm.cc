// The NCCL communicator of nccl_comm.h: created on the first CUDA collective, collectives
// launched on the device's stream, a watchdog that aborts it on an asynchronous error.
#include "nccl_comm.h"

#include <chrono>
#include <cstdlib>
#include <exception>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "../core/device.h"
#include "../core/error.h"
#include "../cuda/runtime.h"
#include "comm.h"
#include "nccl_loader.h"

namespace alexnet::dist {

namespace {

struct State {
  std::mutex mutex;  // guards all below; launches hold it, so the watchdog never aborts mid-launch
  nccl::ncclComm_t comm = nullptr;
  int device = -1;
  bool aborted = false;
  bool exiting = false;  // set at exit: the watchdog stops calling NCCL while libraries unload
  std::string abort_reason;
};

State& state() {
  static State* s = new State();  // leaked on purpose: the detached watchdog may outlive statics
  return *s;
}

std::string result_text(nccl::ncclResult_t rc) {
  const NcclApi& api = nccl_library().api;
  const char* t = api.ncclGetErrorString ? api.ncclGetErrorString(rc) : nullptr;
  return (t ? std::string(t) : std::string("unknown NCCL error")) + " (" + std::to_string(static_cast<int>(rc)) + ")";
}

// Polls ncclCommGetAsyncError; on an error, aborts the communicator (the pending NCCL kernels
// return) and records why. Ends with the communicator, or once the world is finalized.
void watchdog() {
  State& s = state();
  const NcclApi& api = nccl_library().api;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (world().kind == WorldKind::Finalized) return;
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.comm == nullptr || s.exiting) return;
    nccl::ncclResult_t async = nccl::ncclSuccess;
    const nccl::ncclResult_t rc = api.ncclCommGetAsyncError(s.comm, &async);
    if (rc != nccl::ncclSuccess) async = rc;
    if (async == nccl::ncclSuccess || async == nccl::ncclInProgress) continue;
    s.abort_reason = result_text(async);
    api.ncclCommAbort(s.comm);
    s.comm = nullptr;
    s.aborted = true;
    return;
  }
}

// Rank 0's NCCL id to every rank: MPI_Bcast on the communication queue's thread (the only
// thread that calls MPI), in order with the collectives queued before it; the calling thread
// waits for it.
void share_id(void* id, size_t bytes) {
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  comm_queue().enqueue([&done, id, bytes] {
    try {
      broadcast_bytes(id, bytes, 0);
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  finished.get();
}

// The communicator on `device`, created if needed; returns with the state's lock held.
std::unique_lock<std::mutex> ready(const char* op, const Tensor& t) {
  const WorldInfo w = world();
  if (w.kind == WorldKind::Uninitialized)
    fail(code::kDist, op, ": the communicator is not initialised (initDistributed() failed or was not called)");
  if (w.kind == WorldKind::Finalized) fail(code::kDist, op, ": the communicator was finalized");
  State& s = state();
  std::unique_lock<std::mutex> lock(s.mutex);
  const int device = t.device().index;
  if (s.aborted)
    fail(code::kDist, op, ": the NCCL communicator was aborted after an asynchronous error: ", s.abort_reason);
  if (s.comm != nullptr) {
    if (device != s.device)
      fail(code::kDist, op, ": tensor is on ", t.device().str(), " but this process's NCCL communicator is on cuda:",
           s.device, " (one GPU per rank: the device of the first CUDA collective)");
    return lock;
  }
  nccl_table(op);  // ERR_DIST naming where it looked, when NCCL is missing
  nccl::ncclUniqueId id{};
  if (w.rank == 0) NCCL_CHECK(ncclGetUniqueId, &id);
  if (w.size > 1) share_id(&id, sizeof id);
  cuda::DeviceGuard guard(device);
  nccl::ncclComm_t comm = nullptr;
  NCCL_CHECK(ncclCommInitRank, &comm, w.size, id, w.rank);
  s.comm = comm;
  s.device = device;
  std::atexit([] {  // waits for a poll in progress, then no more
    State& st = state();
    std::lock_guard<std::mutex> exit_lock(st.mutex);
    st.exiting = true;
  });
  std::thread(watchdog).detach();
  return lock;
}

cudaStream_t stream_of(const Tensor& t) { return static_cast<cudaStream_t>(cuda::stream(t.device().index)); }

void all_reduce_cuda(const Tensor& t, bool average) {
  const char* op = "allReduce";
  if (t.dtype() != DType::Float32) fail(code::kDtype, op, ": expected a float32 tensor but got ", dtype_name(t.dtype()));
  if (t.numel() == 0) return;
  const std::unique_lock<std::mutex> lock = ready(op, t);
  float* p = t.f32();
  NCCL_CHECK(ncclAllReduce, p, p, static_cast<size_t>(t.numel()), nccl::ncclFloat32,
             average ? nccl::ncclAvg : nccl::ncclSum, state().comm, stream_of(t));
}

void broadcast_cuda(const Tensor& t, int root) {
  const char* op = "broadcast";
  if (t.nbytes() == 0) return;
  const std::unique_lock<std::mutex> lock = ready(op, t);
  char* p = t.ptr<char>();
  NCCL_CHECK(ncclBroadcast, p, p, t.nbytes(), nccl::ncclUint8, root, state().comm, stream_of(t));
}

const DeviceCollectives kNccl{all_reduce_cuda, broadcast_cuda};
const DeviceCollectivesRegistration registration(DeviceType::Cuda, &kNccl);

}  // namespace

int nccl_device() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.comm != nullptr ? s.device : -1;
}

}  // namespace alexnet::dist
