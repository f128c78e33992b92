// The emulated device's services for the stand-in libraries (fake cuDNN, fake cuBLAS) that run
// beside the emulated CUDA runtime (runtime.cc here): stream order, graph capture and the
// device-memory registry. Everything lives in one shared library (libcudaemu.so) that the
// emulated addon and the stand-in libraries all link, so there is one device per process.
//
// Not a GPU: test/cuda-emu/README.md says what this can and cannot see.
#pragma once

#include <cstddef>
#include <functional>

struct CUstream_st;

namespace emu {

// Work on a stream, in the stream's order. Outside a capture it runs now (the emulated device
// is synchronous). While `s` is being captured it is recorded into the graph instead, and runs
// each time the graph is launched: the work must therefore copy (not reference) everything it
// needs from the caller's stack. `what` names the work in messages ("cudnnConvolutionForward").
void enqueue(CUstream_st* s, const char* what, std::function<void()> work);

// Whether `s` is being captured into a graph now.
bool capturing(CUstream_st* s);

// True when [p, p + bytes) lies inside one live device allocation (cudaMalloc, cudaMallocAsync,
// the device pointer of mapped host memory). bytes == 0 asks about p alone.
bool is_device_memory(const void* p, size_t bytes);

// Fails the run when [p, p + bytes) is not device memory: prints "EMU FAIL: <what>: ..." and
// exits with status 3, as a GPU would fault on the access (a host pointer, a freed or a
// too-short buffer handed to a library is a bug in the caller, not a user error).
void require_device_memory(const void* p, size_t bytes, const char* what);

// Fails the run the same way with a message of the caller's own.
[[noreturn]] void fail(const char* what);

}  // namespace emu
