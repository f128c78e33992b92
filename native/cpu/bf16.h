// bfloat16 on the CPU: the conversions to and from float32 (the rules of native/core/bf16.h)
// and the fully connected layer on bfloat16 inputs with float32 accumulation.
//
// Two kernels, picked at run time: AVX-512 BF16 (vcvtne2ps2bf16 for the conversion, vdpbf16ps
// for the products) where the CPU has it, and a portable path (integer round-to-nearest-even;
// the layer converts its inputs to float32 and calls sgemm) everywhere else.
// set_bf16_kernel(Portable) forces the portable path so that tests cover both on one machine;
// so does an AVX2 cap on the CPU's instruction sets (isa.h).
#pragma once

#include <cstdint>

namespace alexnet::cpu {

enum class Bf16Kernel { Avx512Bf16, Portable };

bool bf16_hardware();                 // the CPU has AVX-512 BF16 (and AVX-512 BW) usable
Bf16Kernel bf16_kernel();             // what the next call runs (Portable under an AVX2 cap, isa.h)
// Avx512Bf16 without bf16_hardware() throws ERR_ARGUMENT, and so does it under an AVX2 cap when
// `strict` (setBf16Kernel('auto') is not: it keeps the hardware for when the cap is lifted);
// `amx` (the packed GEMM on AMX tiles, below) without bf16_amx_hardware() too. Nothing is
// changed when it throws.
void set_bf16_kernel(Bf16Kernel k, bool strict = true, bool amx = false);
const char* bf16_kernel_name(Bf16Kernel k);  // "avx512_bf16", "portable"

// AMX (Intel's tile matrix unit, Sapphire Rapids and later): the packed GEMM's products on
// TDPBF16PS where the CPU has AMX-BF16 and Linux grants the process the tile state
// (arch_prctl ARCH_REQ_XCOMP_PERM, asked once at load). The rest of the AVX-512 BF16 kernel
// (conversions, the small-batch linear kernels) is unchanged; AMX runs only under it.
bool bf16_amx_hardware();       // AMX-BF16 present and the tile state granted
bool bf16_amx();                // the packed GEMM uses it now: hardware, chosen, kernel Avx512Bf16
// The name setBf16Kernel takes for what runs now: "amx_bf16", "avx512_bf16" or "portable".
const char* bf16_kernel_current_name();

// y[i] = bf16::from_float(x[i]) (round to nearest even, NaN quiet)
void float_to_bf16(uint16_t* y,        // [n]
                   const float* x,     // [n]
                   int64_t n);
// y[i] = bf16::to_float(x[i]) (exact)
void bf16_to_float(float* y,           // [n]
                   const uint16_t* x,  // [n]
                   int64_t n);

// y = x @ w^T + bias with bfloat16 x and w, every product exact in float32 and summed in
// float32; the bias (float32) is added to the float32 sum, then y is stored as float32 (y_f32)
// or rounded once to bfloat16 (y_bf16). Exactly one of y_f32, y_bf16 is non-null.
// The AVX-512 kernel treats bfloat16 subnormal inputs (|v| < 2^-126) as zero and flushes
// subnormal partial sums to zero, as vdpbf16ps does (Intel's definition: DAZ, FTZ, no MXCSR).
void linear_forward_bf16(float* y_f32,          // [B, out] or null
                         uint16_t* y_bf16,      // [B, out] or null
                         const uint16_t* x,     // [B, in]
                         const uint16_t* w,     // [out, in]
                         const float* bias,     // [out] or null
                         int64_t B, int64_t in, int64_t out);

// The gradients of linear_forward_bf16, with bfloat16 dy, x, w:
// dx = dy @ w rounded once to bfloat16 (skipped when dx is null); AVX-512 BF16 kernel pairing
// rows of w in registers, or widened to float32 and sgemm;
// dw = dy^T @ x and db = column sums of dy, float32 (+= when accumulate; db skipped when null):
// the batch-long reductions widen dy and x to float32 (exact) and go through linear_backward.
void linear_backward_bf16(uint16_t* dx,         // [B, in] or null
                          float* dw,            // [out, in]
                          float* db,            // [out] or null
                          const uint16_t* dy,   // [B, out]
                          const uint16_t* x,    // [B, in]
                          const uint16_t* w,    // [out, in]
                          int64_t B, int64_t in, int64_t out, bool accumulate);

// The vdpbf16ps matrix products behind linear, for other operators (conv_bf16.cc). Only with
// bf16_hardware() (else ERR_INTERNAL): callers pick the portable path themselves. Row-major,
// bfloat16 operands, float32 sums of exact products. From 96 rows of A (M) both run the packed,
// register-blocked GEMM of gemm_bf16.cc; fewer rows (a fully connected layer's batch) run
// kernels that read B in place, as repacking B for so few rows costs what blocking gains.
// C [M, N] (+)= A [M, K] @ B [N, K]^T (both operands contiguous along K; added into C with
// accumulate); few rows: 4x4 tiles of dot products.
void gemm_bf16_nt(float* c,            // [M, N], row stride ldc
                  int64_t ldc,
                  const uint16_t* a,   // [M, K], row stride lda
                  int64_t lda,
                  const uint16_t* b,   // [N, K], row stride ldb
                  int64_t ldb, int64_t M, int64_t N, int64_t K, bool accumulate = false);
// C [M, N] = A [M, K] @ B [K, N] (linearBackward's dx); few rows: rows of B paired in registers,
// threads splitting N in chunks of 32.
void gemm_bf16_nn(float* c,            // [M, N], row stride ldc
                  int64_t ldc,
                  const uint16_t* a,   // [M, K], row stride lda
                  int64_t lda,
                  const uint16_t* b,   // [K, N], row stride ldb
                  int64_t ldb, int64_t M, int64_t N, int64_t K);

}  // namespace alexnet::cpu
