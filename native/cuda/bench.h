// The per-operator benchmark on a CUDA device, driven from C++: the rows of the CPU benchmark
// (native/cpu/bench.h; shapes and flop / byte counts from native/core/bench.h) run through the
// CUDA backend's own operators (dnn.h, ops.h) on the device's stream and timed with CUDA
// events, beside the device's ceilings measured in the same run: a cuBLAS SGEMM with TF32 and
// with strict FP32 (the one matching setTf32's current mode is the ceiling) and a
// device-to-device copy. Host C++ API; the implementation (bench.cu) exists only in builds with
// CUDA (ALEXNET_WITH_CUDA).
#pragma once

#include <cstdint>
#include <vector>

#include "../core/bench.h"

namespace alexnet::cuda {

// batch: AlexNet batch size; reps: timed repetitions per row (after one warm-up), best kept.
// Blocks the calling thread until the device is done (call it off the JS thread). Throws
// ERR_CUDA_UNAVAILABLE when `device` does not exist or cuDNN / cuBLAS are missing.
std::vector<BenchRow> bench_alexnet_ops(int device, int64_t batch, int reps);

}  // namespace alexnet::cuda
