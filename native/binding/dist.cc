// The communicator (native/dist/comm.h) and the Open MPI loader (native/dist/mpi_loader.h):
//   mpiLibrary() -> {found, path, version, searched, reason}: loads (never initialises) MPI
//   distInit() -> Promise<void>: queued on the CPU queue; settles once it has run
//   distLaunchPlan(env) -> {kind: 'single' | 'mpi' | 'refused', launcher, size, rank, localRank,
//                   localSize, localRankSource, detail, reason}: how a process with that
//                   environment counts as launched (dist::launch_plan; pure, for tests and the CLI)
//   distWorld() -> {kind, rank, worldSize, localRank, localSize, localRankSource, threadLevel,
//                   library, version, reason}
//   distAllReduce(tensor, 'sum' | 'avg'), distBroadcast(tensor, root): queued, in place, like
//     any CPU operator (errors reach the next read)
//   distAllReduceAsync(tensor, 'sum' | 'avg') -> Work: queued, in place; CPU work queued later
//     does NOT wait for it until distWait(work) is called
//   distWait(work): CPU work queued after this call waits for the collective
//   distBarrier(), distFinalize() -> Promise<void>: queued; settle once they have run
//   ncclLibrary() -> {found, path, version, versionString, searched, reason, chosen, root}:
//     loads (never initialises) NCCL; ncclAbi() -> the numbers our NCCL declarations compile to
// The collectives on CPU tensors run on the communication queue's thread (core/device.h
// comm_queue), after the CPU work queued before them (an event recorded on the CPU queue).
// Except for the async allReduce, the CPU queue then waits for them (an event recorded on the
// communication queue), so they keep the order of every other CPU operator; the JavaScript
// thread never blocks on another rank. On CUDA tensors they go through NCCL
// (native/dist/nccl_comm.h), launched on the device's stream like any CUDA operator; only the
// first one waits, for the NCCL communicator's creation.
#include <climits>
#include <map>
#include <cmath>
#include <string>
#include <utility>
#include <type_traits>

#include "../dist/comm.h"
#include "../dist/mpi_loader.h"
#include "../dist/nccl_loader.h"
#include "abi_tables.h"
#include "common.h"

namespace alexnet::binding {

namespace {

const Device kCpu{DeviceType::Cpu, 0};

// Queues `task` on the communication queue after the CPU work queued so far, and returns the
// event set once it has run (or failed: its error goes to this thread's next read like any CPU
// task's). With `cpu_waits`, CPU work queued afterwards waits for that event.
std::shared_ptr<Event> on_comm_queue(Queue::Task task, bool cpu_waits = true) {
  Queue& comm = comm_queue();
  comm.wait(cpu_queue().record());
  comm.enqueue(std::move(task));
  std::shared_ptr<Event> done = comm.record();
  if (cpu_waits) cpu_queue().wait(done);
  return done;
}

using WorkHandle = std::shared_ptr<Event>;

const char* kind_name(dist::WorldKind k) {
  switch (k) {
    case dist::WorldKind::Uninitialized: return "uninitialized";
    case dist::WorldKind::Single: return "single";
    case dist::WorldKind::Mpi: return "mpi";
    case dist::WorldKind::Finalized: return "finalized";
  }
  return "unknown";
}

// The tensor argument of a collective: on the CPU (MPI) or a CUDA device (NCCL).
Tensor collective_tensor(const Napi::CallbackInfo& info, const char* op) {
  dist::check_init_requested(op);
  return tensor_arg(info, 0, op, "tensor");
}

// Queues a collective on the tensor's device: MPI on the communication queue (on_comm_queue),
// or the device's own collectives (NCCL on a CUDA stream, comm.h's DeviceCollectives).
template <typename Cpu, typename Other>
void dispatch(const Tensor& t, Cpu cpu, Other other) {
  if (t.device().type == DeviceType::Cpu) on_comm_queue(cpu);
  else enqueue(t.device(), other);
}

}  // namespace

Napi::Value MpiLibrary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dist::MpiLibrary& lib = dist::mpi_library();
  Napi::Object out = Napi::Object::New(env);
  out.Set("found", lib.found);
  out.Set("path", lib.path);
  out.Set("version", lib.version);
  Napi::Array searched = Napi::Array::New(env, lib.searched.size());
  for (size_t i = 0; i < lib.searched.size(); ++i) searched.Set(static_cast<uint32_t>(i), lib.searched[i]);
  out.Set("searched", searched);
  out.Set("reason", lib.reason);
  return out;
}

Napi::Value DistInit(const Napi::CallbackInfo& info) {
  dist::mark_init_requested();
  on_comm_queue([] { dist::init(); });
  return synchronize_device(info.Env(), kCpu);
}

Napi::Value DistLaunchPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) fail(code::kArgument, "distLaunchPlan: expected an environment object");
  // The variables as strings (undefined: unset), read up front: launch_plan takes a pure lookup.
  const Napi::Object vars = info[0].As<Napi::Object>();
  std::map<std::string, std::string> values;
  const Napi::Array keys = vars.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const Napi::Value k = keys.Get(i);
    const Napi::Value v = vars.Get(k);
    if (v.IsString()) values[k.ToString().Utf8Value()] = v.As<Napi::String>().Utf8Value();
  }
  const dist::LaunchPlan p = dist::launch_plan([&](const char* name) -> const char* {
    auto it = values.find(name);
    return it == values.end() ? nullptr : it->second.c_str();
  });
  Napi::Object out = Napi::Object::New(env);
  out.Set("kind", p.kind == dist::LaunchPlan::Kind::Mpi ? "mpi" : p.kind == dist::LaunchPlan::Kind::Refused ? "refused" : "single");
  out.Set("launcher", p.launcher);
  out.Set("size", p.size);
  out.Set("rank", p.rank);
  out.Set("localRank", p.local_rank);
  out.Set("localSize", p.local_size);
  out.Set("localRankSource", p.local_rank_source);
  out.Set("detail", p.detail);
  out.Set("reason", p.reason);
  return out;
}

Napi::Value DistWorld(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dist::WorldInfo w = dist::world();
  Napi::Object out = Napi::Object::New(env);
  out.Set("kind", kind_name(w.kind));
  out.Set("rank", w.rank);
  out.Set("worldSize", w.size);
  out.Set("localRank", w.local_rank);
  out.Set("localSize", w.local_size);
  out.Set("localRankSource", w.local_rank_source);
  out.Set("launcher", w.launcher);
  out.Set("threadLevel", w.thread_level);
  out.Set("library", w.library);
  out.Set("version", w.version);
  out.Set("reason", w.reason);
  return out;
}

// allReduce's arguments (tensor, op = 'sum' | 'avg'): the float32 tensor, and whether to average.
static std::pair<Tensor, bool> all_reduce_args(const Napi::CallbackInfo& info, const char* op) {
  const Tensor t = collective_tensor(info, op);
  check_dtype(op, "tensor", t, DType::Float32);
  std::string reduce = "sum";
  if (info.Length() >= 2 && !info[1].IsUndefined()) {
    if (!info[1].IsString()) fail(code::kArgument, op, ": op must be 'sum' or 'avg'");
    reduce = info[1].As<Napi::String>().Utf8Value();
  }
  if (reduce != "sum" && reduce != "avg")
    fail(code::kArgument, op, ": op must be 'sum' or 'avg' but got '", reduce, "'");
  return {t, reduce == "avg"};
}

Napi::Value DistAllReduce(const Napi::CallbackInfo& info) {
  const std::pair<Tensor, bool> args = all_reduce_args(info, "allReduce");
  const Tensor t = args.first;
  const bool average = args.second;
  dispatch(t, [t, average] { dist::all_reduce(t, average); }, [t, average] { dist::device_all_reduce(t, average); });
  return info.Env().Undefined();
}

Napi::Value DistAllReduceAsync(const Napi::CallbackInfo& info) {
  const std::pair<Tensor, bool> args = all_reduce_args(info, "allReduceAsync");
  const Tensor t = args.first;
  const bool average = args.second;
  WorkHandle done;
  if (t.device().type == DeviceType::Cpu) {
    done = on_comm_queue([t, average] { dist::all_reduce(t, average); }, false);
  } else {
    // NCCL on the device's stream: stream order already keeps the work after it waiting, so
    // there is nothing for wait() to wait for
    enqueue(t.device(), [t, average] { dist::device_all_reduce(t, average); });
    done = std::make_shared<Event>();
    done->set();
  }
  return Napi::External<WorkHandle>::New(info.Env(), new WorkHandle(std::move(done)),
                                         [](Napi::Env, WorkHandle* w) { delete w; });
}

Napi::Value DistWait(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) fail(code::kArgument, "wait: expected a Work from allReduceAsync");
  const WorkHandle& done = *info[0].As<Napi::External<WorkHandle>>().Data();
  cpu_queue().wait(done);
  return info.Env().Undefined();
}

Napi::Value DistBroadcast(const Napi::CallbackInfo& info) {
  const char* op = "broadcast";
  const Tensor t = collective_tensor(info, op);
  const double r = number_arg(info, 1, op, "root");
  if (!(r >= 0 && r <= static_cast<double>(INT_MAX)) || r != std::floor(r))
    fail(code::kArgument, op, ": root must be a non-negative integer but got ", r);
  const int root = static_cast<int>(r);
  const dist::WorldInfo w = dist::world();  // known once initDistributed() has settled
  if ((w.kind == dist::WorldKind::Single || w.kind == dist::WorldKind::Mpi) && root >= w.size)
    fail(code::kArgument, op, ": root must be a rank in [0, ", w.size, ") but got ", root);
  dispatch(t, [t, root] { dist::broadcast(t, root); }, [t, root] { dist::device_broadcast(t, root); });
  return info.Env().Undefined();
}

Napi::Value DistBarrier(const Napi::CallbackInfo& info) {
  dist::check_init_requested("barrier");
  on_comm_queue([] { dist::barrier(); });
  return synchronize_device(info.Env(), kCpu);
}

Napi::Value DistFinalize(const Napi::CallbackInfo& info) {
  dist::check_init_requested("finalize");
  on_comm_queue([] { dist::finalize(); });
  return synchronize_device(info.Env(), kCpu);
}

Napi::Value NcclLibrary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const cuda::LibraryStatus& st = dist::nccl_library().status;
  Napi::Object out = Napi::Object::New(env);
  out.Set("found", st.found);
  out.Set("path", st.path);
  out.Set("version", static_cast<double>(st.version));
  out.Set("versionString", st.version_string);
  Napi::Array searched = Napi::Array::New(env, st.searched.size());
  for (size_t i = 0; i < st.searched.size(); ++i) searched.Set(static_cast<uint32_t>(i), st.searched[i]);
  out.Set("searched", searched);
  out.Set("reason", st.reason);
  out.Set("chosen", st.chosen);
  out.Set("root", st.root);
  return out;
}

Napi::Value NcclAbi(const Napi::CallbackInfo& info) {
  using namespace dist::nccl;  // NOLINT: names below are spelled as NCCL spells them
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  AbiTables abi(env);
  ALEXNET_NCCL_ENUMS(ALEXNET_ABI_ENUM)
  abi.add_type<ncclUniqueId>("ncclUniqueId");
  abi.add_type<ncclComm_t>("ncclComm_t");
  abi.add_type<cudaStream_t>("cudaStream_t");
  out.Set("enums", abi.enums);
  out.Set("sizeof", abi.sizes);
  out.Set("signed", abi.is_signed);
  out.Set("alignofUniqueId", static_cast<double>(alignof(ncclUniqueId)));
  Napi::Array functions = Napi::Array::New(env);
  uint32_t n = 0;
#define ALEXNET_ABI_FUNCTION(name) functions.Set(n++, #name);
  ALEXNET_NCCL_FUNCTIONS(ALEXNET_ABI_FUNCTION)
#undef ALEXNET_ABI_FUNCTION
  out.Set("functions", functions);
  return out;
}

}  // namespace alexnet::binding
