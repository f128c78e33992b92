// The fully connected layer as cuBLASLt matrix products with fused epilogues:
//   forward:  y = relu?(x @ w^T + bias), the bias and the ReLU applied by the GEMM kernel as it
//             stores y (CUBLASLT_EPILOGUE_BIAS / RELU / RELU_BIAS), instead of cublasGemmEx
//             followed by our bias_relu kernel reading and writing y again;
//   backward: dw = dy^T @ x with db = the column sums of dy reduced by the same kernel from the
//             dy tiles it already loads (CUBLASLT_EPILOGUE_BGRADB), instead of cublasGemmEx
//             followed by our bias_backward kernel reading dy again.
//
// Opt-in (setCublasLtEpilogues(true), or ALEXNET_CUBLASLT=1) until a GPU run has measured it;
// off in deterministic mode. Where cuBLASLt is missing, has no algorithm for a shape and type,
// a pointer is not 256-byte aligned (the alignment the heuristic's default preference assumes),
// or cublasLtMatmul answers NOT_SUPPORTED, the call returns false having launched nothing and
// the caller takes the cublasGemmEx path: the results of both are the same products summed in
// float32 (or TF32). Any other cuBLAS error throws (ERR_CUDA), as on the cublasGemmEx path.
//
// Not built: the ReLU-mask epilogues (DRELU / DRELU_BGRAD, with RELU_AUX_BIAS in the forward).
// They fuse a ReLU's backward into the dx product of the NEXT Linear, so they only apply to
// Linear -> ReLU -> Linear without dropout (in our AlexNets: the last hidden layer of 'paper2012'
// and 'torchvision', never 'seed'); what they would save there is one elementwise pass over
// [B, 4096] (6 MiB at batch 128, ~2 us, beside ~65 us for that layer's three products), at the
// price of a bitmask output on the forward, a mask handed across two layers and a new Sequential
// fusion (docs/cuda-abi.md B9).
#pragma once

#include <cstdint>

namespace alexnet::cuda {

void set_cublaslt_epilogues(bool on);
bool cublaslt_epilogues();  // switched on (whether cuBLASLt is present is asked per call)

// Calls of this process that ran through cuBLASLt, and calls that asked for it (switched on,
// not deterministic, sizes not empty) but fell back to cublasGemmEx (for info(): tests and
// benchmarks tell which path a call took).
struct CublasLtCounts {
  uint64_t forward = 0;      // linear_lt_forward launched
  uint64_t weight_grad = 0;  // linear_lt_weight_grad launched
  uint64_t fallbacks = 0;    // either one returned false with the path switched on
};
CublasLtCounts cublaslt_counts();

// y [B, out] = relu?(x [B, in] @ w [out, in]^T + bias [out]) on the device's stream.
// bf16_inputs: x and w bfloat16 (float32 compute), else float32 (TF32 compute when tf32).
// y_bf16: y is bfloat16 (the float32 sum plus the bias rounded once), else float32.
// bias may be null. True when launched; false (nothing launched) where the path is off,
// cuBLASLt is missing, or no algorithm takes this shape.
bool linear_lt_forward(int device, void* y /*[B,out]*/, bool y_bf16, const void* x /*[B,in]*/,
                       const void* w /*[out,in]*/, bool bf16_inputs, const float* bias /*[out] or null*/,
                       int64_t B, int64_t in, int64_t out, bool relu, bool tf32);

// Its backward's weight and bias gradients in one product on the device's stream:
//   dw [out, in] = (accumulate ? dw : 0) + dy [B, out]^T @ x [B, in]
//   db [out]     = (accumulate ? db : 0) + sum over b of dy [b, :]
// bf16_inputs: dy and x bfloat16 (float32 compute), else float32 (TF32 compute when tf32); dw
// and db are float32 either way. cuBLASLt writes the bias gradient (it cannot add into it), so
// when accumulating it goes to a kept scratch vector and one axpy adds it into db. The input
// gradient dx is not part of this product (the caller's cublasGemmEx). Same false as above.
bool linear_lt_weight_grad(int device, float* dw /*[out,in]*/, float* db /*[out]*/, const void* dy /*[B,out]*/,
                           const void* x /*[B,in]*/, bool bf16_inputs, int64_t B, int64_t in, int64_t out,
                           bool accumulate, bool tf32);

}  // namespace alexnet::cuda
