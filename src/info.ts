import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative, nativePath, packageRoot, type BackendInfo, type ConvAlgorithm, type CpuIsa, type MpiLibrary, type NcclLibrary } from './native.js';

export interface Info {
  version: string;
  node: string;
  platform: string;
  addon: { path: string; buildSystem: string; napiVersion: number };
  backends: {
    cpu: BackendInfo['cpu'];
    cuda: BackendInfo['cuda'];
  };
  /**
   * Open MPI (libmpi.so.40), loaded at run time for distributed training: found (path, the
   * library's version string) or not (reason, every place looked). MPI is not initialised.
   */
  mpi: MpiLibrary;
  /**
   * NCCL (libnccl.so.2), loaded at run time for collectives on CUDA tensors: found (path,
   * version) or not (reason, every place looked). No communicator is created.
   */
  nccl: NcclLibrary;
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** What this installation contains and what it found on this machine (`alexnet info`). */
export function backendInfo(): Info {
  const native = loadNative();
  const i = native.info();
  return {
    version: packageVersion(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    addon: { path: nativePath(), buildSystem: i.buildSystem, napiVersion: i.napiVersion },
    backends: { cpu: i.cpu, cuda: i.cuda },
    mpi: native.mpiLibrary(),
    nccl: native.ncclLibrary(),
  };
}

/** Threads used by the CPU kernels and OpenBLAS. */
export function setNumThreads(n: number): void {
  loadNative().setNumThreads(n);
}

/** Switches CPU matrix products between OpenBLAS and the portable kernel. */
export function setGemmBackend(name: 'blas' | 'portable'): void {
  loadNative().setGemmBackend(name);
}

/**
 * The CPU convolution path for work issued afterwards: 'auto' (default) and 'direct' use the
 * direct kernel (AVX-512, else AVX2) wherever the CPU and the layer allow it and im2col + GEMM
 * elsewhere; 'direct-avx2' limits the kernel to its AVX2 build; 'im2col' forces im2col + GEMM
 * everywhere (for comparisons); 'winograd' forces Winograd convolution (stride-1, ungrouped 3x3
 * and 5x5 kernels: the forward pass and the input gradient) wherever it applies and does what
 * 'auto' does elsewhere; 'winograd-gemm' is 'winograd' with the tile-position products always
 * through the GEMM (at a batch of a few images 'winograd' has its own AVX-512 kernel for them).
 */
/**
 * The CPU's bfloat16 kernels (conversions, and the products of the bfloat16 linear and
 * convolution layers): 'auto' (default) takes the best the CPU has: 'amx_bf16' where it has
 * AMX-BF16 (Intel's tile unit, Sapphire Rapids and later: the products of large enough matrices
 * on its tiles, the rest on AVX-512 BF16), else 'avx512_bf16' where it has that; 'portable' forces
 * integer rounding and the float32 GEMM. A kernel the CPU lacks is ERR_ARGUMENT
 * (backendInfo().backends.cpu.bf16Hardware, bf16AmxHardware). All give the same conversions bit
 * for bit; the products differ only in float32 summation order.
 */
export function setBf16Kernel(name: 'auto' | 'amx_bf16' | 'avx512_bf16' | 'portable'): void {
  loadNative().setBf16Kernel(name);
}

/**
 * The most our CPU kernels may use, for work issued afterwards: 'avx2' runs every kernel that
 * dispatches on the CPU's features (convolutions, the portable GEMM, the fully connected layers'
 * skinny GEMM, SGD, pooling, bfloat16) in its AVX2 build, or not at all where it has none (the
 * caller's next path takes over: OpenBLAS for the skinny GEMM, the portable widening path for
 * bfloat16); 'auto' (default, or ALEXNET_CPU_ISA at start) and 'avx512' lift the cap. OpenBLAS
 * is not covered: it picks its kernels when it loads (OPENBLAS_CORETYPE=Haswell for AVX2).
 * backendInfo().backends.cpu.isa says what the kernels use now.
 */
export function setCpuIsa(name: CpuIsa): void {
  loadNative().setCpuIsa(name);
}

/** The builds of our CPU kernels that ran since the last reset (e.g. 'conv.winograd.own.avx2'); `reset` clears the record. */
export function cpuKernelsUsed(options: { reset?: boolean } = {}): string[] {
  return loadNative().cpuKernelsUsed(options.reset ?? false);
}

export function setConvAlgorithm(name: ConvAlgorithm): void {
  loadNative().setConvAlgorithm(name);
}

/**
 * Whether the CPU convolutions keep the forms they derive from a weight (the direct kernel's
 * packed blocks, Winograd's filter transforms) between calls, until the weight is next written
 * by any operation (default on). Off derives them again on every call, as before (for
 * comparisons).
 */
export function setWeightCache(on: boolean): void {
  loadNative().setWeightCache(on);
}

/** TF32 tensor-op math for FP32 convolutions and matrix products on CUDA (default on). */
export function setTf32(on: boolean): void {
  loadNative().setTf32(on);
}

/**
 * The CUDA fully connected layers as one cuBLASLt matrix product with the bias, and a following
 * ReLU (Sequential fuses Linear + ReLU), applied in the product's epilogue, and in backward the
 * weight gradient with the bias gradient reduced in its epilogue (default off; also
 * `ALEXNET_CUBLASLT=1`). Opt-in until a GPU run has measured it; deterministic mode, shapes
 * cuBLASLt offers no algorithm for and pointers not 256-byte aligned keep the cublasGemmEx path
 * (`backendInfo().backends.cuda.cublasLtCalls` counts both). A no-op on the CPU.
 */
export function setCublasLtEpilogues(on: boolean): void {
  loadNative().setCublasLtEpilogues(on);
}

/**
 * Deterministic algorithms only (default off; PyTorch's torch.use_deterministic_algorithms):
 * two runs from the same seed, on the same machine and thread count, then give bitwise
 * identical weights. The CPU backend always is; on CUDA it limits cuDNN's convolution
 * algorithms to those it reports deterministic (often slower in backward). Affects work queued
 * afterwards.
 */
export function setDeterministic(on: boolean): void {
  loadNative().setDeterministic(on);
}

/** Whether setDeterministic(true) is in force. */
export function isDeterministic(): boolean {
  return loadNative().isDeterministic();
}
