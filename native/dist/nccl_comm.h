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

// Registers the CUDA collectives with comm.h (DeviceCollectivesRegistration) while the addon loads;
// nothing else is public. nccl_device() is for tests and diagnostics.
namespace alexnet::dist {

// The device of this process's NCCL communicator, or -1 before the first CUDA collective.
int nccl_device();

}  // namespace alexnet::dist
