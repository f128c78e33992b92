// The fully connected layer's forward pass as one cuBLASLt matrix product with its epilogue:
// y = relu?(x @ w^T + bias), the bias and the ReLU applied by the GEMM kernel as it stores y
// (CUBLASLT_EPILOGUE_BIAS / RELU / RELU_BIAS), instead of cublasGemmEx followed by our
// bias_relu kernel reading and writing y again.
//
// Opt-in (setCublasLtEpilogues(true), or ALEXNET_CUBLASLT=1) until a GPU run has measured it;
// off in deterministic mode. Where cuBLASLt is missing, or has no algorithm for a shape and
// type, linear_lt_forward returns false having launched nothing and the caller takes the
// cublasGemmEx path: the results of both are the same products summed in float32 (or TF32).
#pragma once

#include <cstdint>

namespace alexnet::cuda {

void set_cublaslt_epilogues(bool on);
bool cublaslt_epilogues();  // switched on (whether cuBLASLt is present is asked per call)

// y [B, out] = relu?(x [B, in] @ w [out, in]^T + bias [out]) on the device's stream.
// bf16_inputs: x and w bfloat16 (float32 compute), else float32 (TF32 compute when tf32).
// y_bf16: y is bfloat16 (the float32 sum plus the bias rounded once), else float32.
// bias may be null. True when launched; false (nothing launched) where the path is off,
// cuBLASLt is missing, or no algorithm takes this shape.
bool linear_lt_forward(int device, void* y /*[B,out]*/, bool y_bf16, const void* x /*[B,in]*/,
                       const void* w /*[out,in]*/, bool bf16_inputs, const float* bias /*[out] or null*/,
                       int64_t B, int64_t in, int64_t out, bool relu, bool tf32);

}  // namespace alexnet::cuda
