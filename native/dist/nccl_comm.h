// Collectives on CUDA tensors through NCCL (issue 13). Built only with CUDA (ALEXNET_WITH_CUDA):
// a build without CUDA has no CUDA tensors to reduce.
//
// One NCCL communicator per process, over the world of comm.h (MPI's, or a world of one), on
// the device of the first CUDA collective (each rank drives one GPU: the launcher or the program
// picks it, usually from the local rank; a collective on another device is ERR_DIST). Created on
// that first collective: rank 0 calls ncclGetUniqueId, the 128-byte id goes to every rank with
// MPI_Bcast on the CPU queue's thread (MPI is used from that thread only; a world of one needs
// no MPI), and every rank calls ncclCommInitRank(world size, id, rank) with its device current.
// That creation is the one step the calling (JavaScript) thread waits for: ncclCommInitRank
// returns once every rank has joined. Afterwards every collective is only *launched* on the
// device's stream (cuda::stream), in order with every other operator on the device, and returns
// at once; errors in the launch are ERR_DIST with NCCL's text, at once.
//
// A collective that never completes (a rank died, the network failed) would stall the stream,
// and with it every later read on the device. What bounds it: a watchdog thread polls
// ncclCommGetAsyncError every 100 ms; on an asynchronous error it calls ncclCommAbort (which
// makes the pending NCCL kernels return) and every later collective is ERR_DIST naming the error.
// A rank that dies makes Open MPI's mpirun end the whole job. A peer that stays alive but never
// calls the collective is a program error NCCL cannot see: it hangs, as MPI does.
#pragma once

#include <functional>

#include "../core/tensor.h"

namespace alexnet::dist {

// Runs `share` on the calling thread with rank 0's 128-byte NCCL id (rank 0: filled in; other
// ranks: to be overwritten with rank 0's). For a world larger than one, it must broadcast the
// bytes from rank 0 (native/binding/dist.cc does it on the CPU queue).
using ShareNcclId = std::function<void(void* id, size_t bytes)>;

// Whether the communicator exists (on any device), and its device (-1 when none).
int nccl_device();

// In place on a CUDA float32 tensor: the element-wise sum over ranks ('avg': divided by the world
// size, ncclAvg). Launched on the tensor's device stream. Creates the communicator first if needed.
void nccl_all_reduce(const Tensor& t, bool average, const ShareNcclId& share);
// In place on a CUDA tensor of any dtype: every rank gets `root`'s bytes (ncclBroadcast).
void nccl_broadcast(const Tensor& t, int root, const ShareNcclId& share);

}  // namespace alexnet::dist
