// The one typed interface for everything the native module exports, and the loader that finds
// the .node file. Nothing else in src/ touches the addon directly.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { printable } from './errors.js';
import type { Conv2dBackwardOptions, Conv2dOptions } from './ops/conv.js';
import type { DropoutOptions } from './ops/dropout.js';
import type { MatmulOptions } from './ops/linear.js';
import type { LrnOptions } from './ops/lrn.js';
import type { Pool2dOptions } from './ops/pool.js';
import type { MemoryFormat } from './ops/layout.js';
import type { SgdStepOptions } from './ops/sgd.js';
import type { NativeWeightGradients, WeightGradOptions } from './ops/weight-grad.js';

/** Tensor element types. bfloat16 tensors hand their values over as raw 16-bit patterns. */
export type DType = 'float32' | 'int32' | 'bfloat16';
export type TypedArrayFor<D extends DType> = D extends 'int32' ? Int32Array : D extends 'bfloat16' ? Uint16Array : Float32Array;

/** The handle of a native tensor. Wrapped by the `Tensor` class; not used directly. */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: DType;
  readonly device: string;
  readonly disposed: boolean;
  readonly nbytes: number;
  dispose(): void;
  data(): Promise<Float32Array | Int32Array | Uint16Array>;
  dataSync(): Float32Array | Int32Array | Uint16Array;
  view(offset: number, shape: number[]): NativeTensor;
}

export type Pair = number | [number, number];

/**
 * CPU convolution path: 'auto' (direct kernel where it applies, the CPU's best instruction set),
 * 'direct' (same), 'direct-avx2' (the kernel's AVX2 build even on AVX-512 CPUs), 'im2col',
 * 'winograd' (Winograd for stride-1 3x3 and 5x5 convolutions and their input and weight gradients, else as
 * 'auto'); 'auto' also takes Winograd where it measured faster.
 */
export type ConvAlgorithm = 'auto' | 'direct' | 'direct-avx2' | 'im2col' | 'winograd' | 'winograd-gemm';

/**
 * What the addon reads of a wrapper's options: the same type, with its output Tensors passed as
 * native handles. The options types themselves live beside their wrappers in src/ops/.
 */
type WithHandles<T, K extends keyof T> = Omit<T, K> & { [P in K]?: NativeTensor };
export type NativeConv2dBackwardOptions = WithHandles<Conv2dBackwardOptions, 'gradWeight' | 'gradBias'>;
export type NativeLinearBackwardOptions = WithHandles<WeightGradOptions, 'gradWeight' | 'gradBias'>;

/** A cap on the instruction sets of our CPU kernels (setCpuIsa, ALEXNET_CPU_ISA). */
export type CpuIsa = 'auto' | 'avx2' | 'avx512';

export interface BackendInfo {
  buildSystem: string;
  napiVersion: number;
  cpu: {
    available: boolean;
    blas: string;
    blasCompiled: boolean;
    gemm: 'blas' | 'portable';
    threads: number;
    blasThreads?: number;
    /** the CPU convolution path chosen with setConvAlgorithm (default 'auto') */
    convAlgorithm: ConvAlgorithm;
    /** whether this CPU runs the direct convolution kernel, and with which instruction set */
    directConv: boolean;
    directConvIsa: 'avx512' | 'avx2' | 'none';
    /** the cap on our CPU kernels' instruction sets (setCpuIsa / ALEXNET_CPU_ISA; default 'auto': none) */
    isaCap: CpuIsa;
    /** the CPU's best instruction set ('avx512': F, VL, BW, DQ; 'avx2': with FMA; 'base': x86-64 / other) */
    isaHardware: 'avx512' | 'avx2' | 'base';
    /** what our kernels use now: the CPU's best under the cap */
    isa: 'avx512' | 'avx2' | 'base';
    /** whether this CPU has AVX-512 BF16 (vdpbf16ps, vcvtne2ps2bf16) */
    bf16Hardware: boolean;
    /** whether this CPU has AMX-BF16 and the system granted the process its tile state */
    bf16AmxHardware: boolean;
    /** the bfloat16 kernels in use (setBf16Kernel) */
    bf16Kernel: 'amx_bf16' | 'avx512_bf16' | 'portable';
  };
  cuda: {
    compiled: boolean;
    available: boolean;
    reason: string;
    deviceFound?: boolean;
    deviceCount?: number;
    runtimeVersion?: number;
    driverVersion?: number;
    architectures?: string;
    deviceName?: string;
    tf32?: boolean;
    /**
     * device memory allocator of cuda:0 (when a device is found): 'pool' = cudaMallocAsync from
     * the stream-ordered memory pool; 'cudaMalloc' = cudaMalloc with a cache of freed blocks, for
     * devices without memory pools or with ALEXNET_CUDA_MEMPOOL=0
     */
    allocator?: 'pool' | 'cudaMalloc';
    /** cuDNN / cuBLAS as the run-time loader found them (CUDA builds) */
    libraries?: {
      cudnn: CudaLibraryInfo;
      cublas: CudaLibraryInfo;
      /** cuBLASLt, resolved with cuBLAS (the fully connected layers' fused epilogues); `note`: why not */
      cublasLt: { found: boolean; note: string };
    };
    /** the fully connected layers through cuBLASLt's fused epilogues (setCublasLtEpilogues) */
    cublasLtEpilogues?: boolean;
    /**
     * fully connected calls of this process that ran as one cuBLASLt product (`forward`: with the
     * bias / ReLU epilogue; `weightGrad`: the weight gradient with the bias gradient in its
     * epilogue) and calls that asked for it (switched on, not deterministic, sizes not empty) but
     * fell back to cublasGemmEx (no algorithm, a pointer not 256-byte aligned, cuBLASLt missing)
     */
    cublasLtCalls?: { forward: number; weightGrad: number; fallbacks: number };
    /** cuDNN descriptors this process has made (CUDA builds): a shape seen before makes none */
    descriptorsCreated?: number;
  };
}

/** One of cuDNN / cuBLAS in info().cuda.libraries. */
export interface CudaLibraryInfo {
  found: boolean;
  /** the file in use, or the last one rejected */
  path: string;
  version: string;
  /** why this file was taken: an explicit path, cuDNN's installation, or the search order ("" when not found) */
  why: string;
  /** its installation: the site-packages folder of a pip wheel layout, the toolkit root, or the folder ("" when not found) */
  root: string;
}

export interface BenchOpsOptions {
  /** AlexNet batch size, 1..512 (default 16) */
  batch?: number;
  /** timed repetitions per row after one warm-up, 1..100 (default 5); the best is kept */
  reps?: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N' */
  device?: 'cpu' | 'cuda' | `cuda:${number}`;
}

/** One row of benchOps: an operator at one shape, or a ceiling. */
export interface BenchRow {
  /** "conv2.forward", "sgemm (ceiling)" (CPU), "sgemm tf32 (ceiling)" / "sgemm fp32" / "gemm bf16 (ceiling)" (CUDA) */
  name: string;
  shape: string;
  /** best of the repetitions */
  ms: number;
  /** 0 for memory-bound operators */
  gflops: number;
  /** bytes read + written per second, for memory-bound operators (and the weights of fc layers) */
  gbps: number;
  /** of the sgemm (compute) or memcpy (bandwidth) ceiling */
  fraction: number;
}

export interface FmaPeakOptions {
  /** timed window per instruction set, 0.001..10 (default 0.1), after a warm-up of a tenth of it (at least 5 ms) */
  seconds?: number;
  /** 'all' (default): every instruction set this CPU has, best first; 'best': the first of them; or one by name */
  isa?: 'all' | 'best' | FmaPeakIsa;
}

export type FmaPeakIsa = 'avx512f' | 'avx2+fma' | 'sse' | 'scalar';

/** One row of fmaPeak: the machine's multiply-add rate with one instruction set, every pool thread at once. */
export interface FmaPeakRow {
  isa: FmaPeakIsa;
  /** floats per instruction (16, 8, 4, 1) */
  lanes: number;
  /** a fused multiply-add instruction (else a multiply and an add: SSE and scalar on x86-64 builds) */
  fused: boolean;
  /** pool threads that ran the loop at once (setNumThreads) */
  threads: number;
  /** the measured window */
  seconds: number;
  /** 2 FLOP per lane per multiply-add, all threads together */
  gflops: number;
}

export interface NativeModule {
  NativeTensor: abstract new (...args: never[]) => NativeTensor;
  // tensors and queues
  empty(shape: number[], dtype?: DType, device?: string): NativeTensor;
  /** a Uint16Array holds raw bfloat16 patterns and makes a bfloat16 tensor */
  fromData(data: Float32Array | Int32Array | Uint16Array, shape: number[], device?: string): NativeTensor;
  synchronize(device?: string): Promise<void>;
  pending(device?: string): number;
  memoryStats(device: string, resetPeak: boolean): import('./tensor.js').MemoryStats;
  deviceCounters(device: string): import('./tensor.js').DeviceCounters;
  /** external memory reported to V8 so far, in bytes */
  externalMemory(): number;
  // build and backends
  info(): BackendInfo;
  setNumThreads(n: number): void;
  setGemmBackend(name: 'blas' | 'portable'): void;
  /** TF32 tensor-op math on CUDA (default true); false = strict FP32 */
  setTf32(on: boolean): void;
  setCublasLtEpilogues(on: boolean): void;
  setDeterministic(on: boolean): void;
  isDeterministic(): boolean;
  setConvAlgorithm(name: ConvAlgorithm): void;
  /** the CPU's bfloat16 kernels: AVX-512 BF16 where present ('auto'), or the portable path */
  setBf16Kernel(name: 'auto' | 'amx_bf16' | 'avx512_bf16' | 'portable'): void;
  /** the most our CPU kernels may use: 'avx2' runs every one in its AVX2 build (bfloat16 portable); 'auto' / 'avx512' lift the cap */
  setCpuIsa(name: CpuIsa): void;
  /** the builds of our CPU kernels that ran since the last reset ('conv.winograd.own.avx2', ...); `reset` clears the record */
  cpuKernelsUsed(reset?: boolean): string[];
  /** CPU: keep packed / transformed weights with the weight until it is written (default true) */
  setWeightCache(on: boolean): void;
  /** bytes held by the weight cache now, all tensors together */
  weightCacheBytes(): number;
  // elementwise (in place on `t` / `y` / `dst`)
  fill(t: NativeTensor, value: number): void;
  copy(dst: NativeTensor, src: NativeTensor): void;
  /** a new tensor: x converted (float32 <-> bfloat16, round to nearest even; same dtype: a copy) */
  toDtype(x: NativeTensor, dtype: DType): NativeTensor;
  /** a new tensor: x permuted [N,C,H,W] -> [N,H,W,C] ('channels_last') or back ('contiguous_format') */
  toMemoryFormat(x: NativeTensor, format: MemoryFormat): NativeTensor;
  /** copy = bf16(source) unless copy already holds source's current values (recorded per storage) */
  refreshBf16Copy(copy: NativeTensor, source: NativeTensor): void;
  scale(t: NativeTensor, alpha: number): void;
  axpy(y: NativeTensor, alpha: number, x: NativeTensor): void;
  // relu
  reluForward(x: NativeTensor): NativeTensor;
  reluBackward(gradOutput: NativeTensor, output: NativeTensor): NativeTensor;
  // conv2d: x [N,C,H,W] (memoryFormat 'channels_last': [N,H,W,C]), weight [O,C/groups,kH,kW], bias [O] | null
  conv2dForward(x: NativeTensor, weight: NativeTensor, bias: NativeTensor | null, options?: Conv2dOptions): NativeTensor;
  conv2dBackward(
    gradOutput: NativeTensor,
    x: NativeTensor,
    weight: NativeTensor,
    options?: NativeConv2dBackwardOptions,
  ): NativeWeightGradients;
  // max-pool 2-D
  maxPool2dForward(x: NativeTensor, options: Pool2dOptions): NativeTensor;
  maxPool2dBackward(gradOutput: NativeTensor, x: NativeTensor, output: NativeTensor, options: Pool2dOptions): NativeTensor;
  // local response normalisation across channels (PyTorch's convention: alpha / size)
  lrnForward(x: NativeTensor, options: LrnOptions): NativeTensor;
  lrnBackward(gradOutput: NativeTensor, x: NativeTensor, output: NativeTensor, options: LrnOptions): NativeTensor;
  // linear: x [B,in], weight [out,in], bias [out] | null
  // (x and weight both bfloat16: bias float32, outDtype float32 (default) or bfloat16)
  linearForward(x: NativeTensor, weight: NativeTensor, bias: NativeTensor | null, outDtype?: DType, relu?: boolean): NativeTensor;
  linearBackward(
    gradOutput: NativeTensor,
    x: NativeTensor,
    weight: NativeTensor,
    options?: NativeLinearBackwardOptions,
  ): NativeWeightGradients;
  matmul(a: NativeTensor, b: NativeTensor, options?: MatmulOptions): NativeTensor;
  // dropout (inverted): mask holds 0 or 1/(1-p)
  dropoutForward(x: NativeTensor, options: DropoutOptions, counter?: NativeTensor | null): { output: NativeTensor; mask: NativeTensor };
  dropoutBackward(gradOutput: NativeTensor, mask: NativeTensor): NativeTensor;
  // softmax and fused softmax cross-entropy (mean over the batch); labels int32 [B]
  softmax(logits: NativeTensor): NativeTensor;
  softmaxCrossEntropy(logits: NativeTensor, labels: NativeTensor): { loss: NativeTensor; gradLogits: NativeTensor };
  // SGD with momentum over flat parameter / gradient / momentum buffers, in place
  sgdStep(
    param: NativeTensor,
    grad: NativeTensor,
    momentumBuffer: NativeTensor | null,
    options: SgdStepOptions,
    paramBf16?: NativeTensor | null,
    lr?: NativeTensor | null,
  ): void;
  /**
   * sgdStep's own option parsing and checks, alone: throws what sgdStep would throw for these
   * options (messages named after `caller`, default 'sgdStep'), else returns them with the
   * kernel's defaults filled in.
   */
  sgdCheckOptions(options: SgdStepOptions, caller?: string): Required<SgdStepOptions>;
  // how many rows have their label among the k largest logits -> int32 scalar
  topkCorrect(logits: NativeTensor, labels: NativeTensor, k: number): NativeTensor;
  // 8-bit images [N, C, H, W] (C <= 3) to float32 (x / 255 - mean[c]) / std[c] on `device`
  normalizeImages(pixels: Uint8Array, shape: number[], mean: number[], std: number[], device?: string): NativeTensor;
  /**
   * The C++-driven per-operator benchmark (no JavaScript in the timed loops): every AlexNet layer
   * shape forward and backward, beside the ceilings measured in the same run. On the CPU (the
   * default) a sgemm and a memcpy; on 'cuda' / 'cuda:N' the CUDA backend's operators timed with
   * CUDA events on the device's stream, beside cuBLAS SGEMM with TF32 and with strict FP32 (the
   * one matching setTf32's mode is the ceiling) and a device-to-device copy. Runs off the JS
   * thread. Rejects with ERR_CUDA_UNAVAILABLE where the device, or CUDA in this build, is
   * missing; other work on the same device meanwhile is timed with it.
   */
  benchOps(options?: BenchOpsOptions): Promise<BenchRow[]>;
  /**
   * The machine's floating-point peak, measured: independent multiply-add chains per instruction
   * set (AVX-512F, AVX2+FMA, SSE, scalar; those this CPU has, best first) on every CPU pool
   * thread at once for a fixed window. Runs on the CPU queue's worker, off the JS thread, in
   * order with other CPU work. The benchmarks' "of FMA peak" fractions divide by the first row.
   */
  fmaPeak(options?: FmaPeakOptions): Promise<FmaPeakRow[]>;
  // cuDNN / cuBLAS run-time binding (native/cuda/dynload)
  /** the numbers our own cuDNN / cuBLAS declarations compile to (pinned by test/cuda-abi.test.ts) */
  cudaAbi(): CudaAbi;
  /** loads cuDNN 9 and cuBLAS 12/13 on the first call (once per process) and says what it found */
  cudaLibraries(): CudaLibraries;
  /** throws what CUDNN_CHECK / CUBLAS_CHECK throw for `status` (testing aid) */
  cudaCheckError(library: 'cudnn' | 'cublas', status: number, call: string): void;
  /**
   * TEST AID: queues a kernel on `device` that spins for `delayMs` (default 0) and then writes
   * to an invalid address. The device faults (cudaErrorIllegalAddress) and its CUDA context is
   * unusable for the rest of the process: call it only in a child process.
   */
  cudaDebugFault(device?: string, delayMs?: number): void;
  /** test aid: keeps the device's queue busy for delayMs (native/binding/info.cc) */
  debugStall(device?: string, delayMs?: number): void;
  /** CUDA graphs of a device's stream (native/binding/info.cc; the Trainer's cudaGraph option) */
  cudaGraphBegin(device: string): void;
  cudaGraphEnd(device: string): number;
  cudaGraphLaunch(device: string, id: number): void;
  cudaGraphDestroy(device: string, id: number): void;
  // Open MPI run-time binding and the communicator (native/dist, native/binding/dist.cc)
  /** loads libmpi.so.40 on the first call (once per process; never initialises MPI) and says what it found */
  mpiLibrary(): MpiLibrary;
  /** sets up the world on the communication queue (MPI_Init_thread under mpirun, else a world of one) */
  distInit(): Promise<void>;
  /** how a process with this environment counts as launched (pure: reads only `env`) */
  distLaunchPlan(env: Record<string, string | undefined>): LaunchPlan;
  /** the world as set up so far (kind 'uninitialized' before distInit settles) */
  distWorld(): DistWorld;
  /** in place, on the communication queue in order with the CPU operators; errors reach the next read */
  distAllReduce(tensor: NativeTensor, op?: 'sum' | 'avg'): void;
  distBroadcast(tensor: NativeTensor, root: number): void;
  /** in place, on the communication queue after the CPU work queued so far; CPU work waits for it only after distWait */
  distAllReduceAsync(tensor: NativeTensor, op?: 'sum' | 'avg'): NativeWork;
  /** CPU work queued after this call waits for the work's collective */
  distWait(work: NativeWork): void;
  /** queued; settle once they have run */
  distBarrier(): Promise<void>;
  distFinalize(): Promise<void>;
  // NCCL run-time binding (native/dist/nccl_*): collectives on CUDA tensors
  /** loads libnccl.so.2 on the first call (once per process; needs no GPU, creates no communicator) */
  ncclLibrary(): NcclLibrary;
  /** the numbers our own NCCL declarations compile to (pinned by test/nccl-abi.test.ts) */
  ncclAbi(): NcclAbi;
}

export interface NcclLibrary {
  found: boolean;
  /** the file in use, or the last one rejected (see reason) */
  path: string;
  /** ncclGetVersion()'s code (23007 for 2.30.7); 0 when never asked */
  version: number;
  /** "2.30.7" */
  versionString: string;
  /** every place considered, in order: "<place>: <outcome>" */
  searched: string[];
  /** why not found ("" when found) */
  reason: string;
  /** why this file was taken ("" when not found) */
  chosen: string;
  /** its installation (the site-packages folder of a wheel, a toolkit root, else its folder) */
  root: string;
}

export interface NcclAbi {
  /** enum type -> enumerator name -> value */
  enums: Record<string, Record<string, number>>;
  /** sizeof of every enum, ncclUniqueId, ncclComm_t, cudaStream_t */
  sizeof: Record<string, number>;
  /** enum type -> whether its underlying type is signed */
  signed: Record<string, boolean>;
  alignofUniqueId: number;
  /** every function the loader resolves, in order */
  functions: string[];
}

/** native/dist/comm.h LaunchPlan: how a process counts as launched, from its environment alone. */
export interface LaunchPlan {
  /** 'mpi': initDistributed() starts MPI; 'refused': it fails with `reason`; 'single': a world of one */
  kind: 'single' | 'mpi' | 'refused';
  /** 'mpirun' | 'srun' | '' */
  launcher: string;
  size: number;
  rank: number;
  /** -1: from MPI (MPI_Comm_split_type) */
  localRank: number;
  localSize: number;
  /** 'OMPI_COMM_WORLD_LOCAL_RANK' | 'SLURM_LOCALID' | '' */
  localRankSource: string;
  /** the variables that decided, e.g. 'OMPI_COMM_WORLD_SIZE=2' */
  detail: string;
  reason: string;
}

/** An opaque handle of an asynchronous collective (native/binding/dist.cc). */
export type NativeWork = { readonly __nativeWork: unique symbol };

export interface MpiLibrary {
  found: boolean;
  /** the file in use, or the last one rejected (see reason) */
  path: string;
  /** MPI_Get_library_version's first line ("Open MPI v4.1.4, ...") */
  version: string;
  /** every place considered, in order: "<place>: <outcome>" */
  searched: string[];
  /** why not found ("" when found) */
  reason: string;
}

export interface DistWorld {
  kind: 'uninitialized' | 'single' | 'mpi' | 'finalized';
  rank: number;
  worldSize: number;
  localRank: number;
  localSize: number;
  /** 'OMPI_COMM_WORLD_LOCAL_RANK' | 'SLURM_LOCALID' | 'MPI_Comm_split_type' | 'single' */
  localRankSource: string;
  /** 'mpirun' | 'srun' ('' for a world of one) */
  launcher: string;
  /** the thread level MPI provided ('' for a world of one) */
  threadLevel: string;
  /** libmpi in use and its version ('' for a world of one) */
  library: string;
  version: string;
  /** why a world of one ('' under MPI) */
  reason: string;
}

export interface CudaAbi {
  /** enum type -> enumerator name -> value */
  enums: Record<string, Record<string, number>>;
  /** sizeof of every enum, handle and perf struct */
  sizeof: Record<string, number>;
  alignof: Record<string, number>;
  /** enum type -> whether its underlying type is signed */
  signed: Record<string, boolean>;
  /** perf struct -> field -> byte offset */
  offsetof: Record<string, Record<string, number>>;
  /** perf struct -> field -> sizeof(field) */
  fieldSizeof: Record<string, Record<string, number>>;
  /** the symbols the loader resolves (required, and looked up when present) */
  functions: { cudnn: string[]; cudnnOptional: string[]; cublas: string[]; cublasLt: string[] };
  /** our own status names for some codes (no library needed) */
  cudnnStatusNames: Record<string, string>;
  cublasStatusNames: Record<string, string>;
  /** call_name("api.cudnnConvolutionForward(h, &a, x)") */
  callName: string;
}

export interface CudaLibraryStatus {
  found: boolean;
  /** the file in use, or the last one rejected (see reason) */
  path: string;
  /** "9.6.0" / "13.0.0" ("" when nothing was loaded) */
  version: string;
  versionNumber: number;
  /** cudnnGetCudartVersion() when exported (cuDNN only) */
  cudartVersion?: number;
  /** every place considered, in order: "<place>: <outcome>" */
  searched: string[];
  /** non-fatal remarks (sub-libraries preloaded or absent) */
  notes: string[];
  /** why not found ("" when found) */
  reason: string;
}

export interface CudaLibraries {
  cudnn: CudaLibraryStatus;
  cublas: CudaLibraryStatus;
  /** cuBLASLt, resolved with cuBLAS: the fully connected layers' fused bias / ReLU epilogues (`note`: why not) */
  cublasLt: { found: boolean; note: string };
  /** what is missing and where it looked ("" when both were found) */
  reason: string;
}

const here = dirname(fileURLToPath(import.meta.url));
export const packageRoot = resolve(here, '..');

/** One place the loader looks: a file to open, or (note set) one it knows is absent, and why. */
interface Candidate {
  file: string;
  /** why there is nothing to open here */
  note?: string;
}

function candidates(root: string): Candidate[] {
  const list: Candidate[] = [];
  if (process.env.ALEXNET_ADDON) list.push({ file: resolve(process.env.ALEXNET_ADDON) });
  const platform = `${process.platform}-${process.arch}`;
  const prebuildDir = join(root, 'prebuilds', platform);
  if (existsSync(prebuildDir)) {
    // `npm run prebuild` writes alexnet-node.napi.node (prebuildify --napi --name alexnet-node.napi)
    const files = readdirSync(prebuildDir).filter((f) => f.endsWith('.node'));
    files.sort((a, b) => Number(b.includes('napi')) - Number(a.includes('napi')) || a.localeCompare(b));
    for (const f of files) list.push({ file: join(prebuildDir, f) });
    if (files.length === 0) list.push({ file: join(prebuildDir, 'alexnet-node.napi.node'), note: 'not found (no .node file in this folder)' });
  } else {
    list.push({ file: join(prebuildDir, 'alexnet-node.napi.node'), note: `not found (no prebuilt binary for ${platform} in this package)` });
  }
  list.push({ file: join(root, 'build', 'Release', 'alexnet.node') });
  list.push({ file: join(root, 'build', 'Debug', 'alexnet.node') });
  return list;
}

let cached: NativeModule | undefined;

/**
 * For benchmarks: OpenBLAS picks its kernels when the addon loads, and some build machines force
 * older ones (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE). This clears both, as users' machines run.
 * Returns false when the addon is already loaded (too late to matter).
 */
export function useDefaultOpenblasKernels(): boolean {
  if (cached) return false;
  delete process.env.OPENBLAS_CORETYPE;
  delete process.env.OPENBLAS_L2_SIZE;
  return true;
}

/** Whether loadNative set OPENBLAS_THREAD_TIMEOUT (the user had not): peers started later get OpenBLAS's own default back. */
export let openblasThreadTimeoutSetByUs = false;

/**
 * OpenBLAS's worker threads spin after every call, by default for 2^28 cycles (about 0.1 s),
 * before they sleep. Our own pool runs the work between OpenBLAS calls (Winograd's transforms,
 * im2col, pooling, ReLU, the skinny GEMM) on the same cores, and a spinning OpenBLAS thread
 * takes a core from it: on the 2-core build machine a batch-16 inference pass varied between
 * 76 and 122 images/s from pass to pass, and a batch-64 training step ran at 33-42 images/s
 * against 39-47 with the spin cut to 2^4 cycles (OPENBLAS_THREAD_TIMEOUT=4, the least it takes),
 * where the pass held at 114-123. OpenBLAS reads the variable once, when it loads (with the
 * addon), so it is set here, before that, unless the user set it (or GOTO_THREAD_TIMEOUT).
 */
function quietOpenblasThreads(): void {
  if (process.env.OPENBLAS_THREAD_TIMEOUT !== undefined || process.env.GOTO_THREAD_TIMEOUT !== undefined) return;
  process.env.OPENBLAS_THREAD_TIMEOUT = '4';
  openblasThreadTimeoutSetByUs = true;
}

/**
 * The environment variables that set a switch, with the values each takes ('' or unset: the
 * default). ALEXNET_DERIVED_CACHE_MB takes a whole number of MiB up to 2^20 (1 TiB).
 */
const ENV_SWITCHES: Record<string, readonly string[] | 'mib'> = {
  ALEXNET_CPU_ISA: ['auto', 'avx2', 'avx512'],
  ALEXNET_RELU_DROPOUT: ['fused', 'epilogue', 'off'],
  ALEXNET_CUBLASLT: ['0', '1'],
  ALEXNET_CUDA_MEMPOOL: ['0', '1'],
  ALEXNET_DERIVED_CACHE_MB: 'mib',
};

/** Throws ERR_ARGUMENT naming the first switch in `env` set to a value it does not take. */
export function checkEnvironment(env: Record<string, string | undefined>): void {
  for (const [name, values] of Object.entries(ENV_SWITCHES)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const ok = values === 'mib' ? /^[0-9]{1,7}$/.test(v) && Number(v) <= 2 ** 20 : values.includes(v);
    if (ok) continue;
    const want = values === 'mib' ? 'a whole number of MiB in [0, 1048576]' : values.map((x) => `'${x}'`).join(', ').replace(/, ([^,]*)$/, ' or $1');
    const shown = printable(v);
    const e = new Error(`alexnet: ${name} must be ${want} but is '${shown}'`) as Error & { code: string };
    e.code = 'ERR_ARGUMENT';
    throw e;
  }
}

/**
 * Loads the addon: ALEXNET_ADDON, then the prebuilt for this platform, then a local build.
 * Fails with one error that lists every path tried and why each failed.
 */
export function loadNative(): NativeModule {
  if (cached) return cached;
  quietOpenblasThreads();
  const found = findNative(packageRoot);
  // The switches read from the environment (the addon reads them when it loads, or at first
  // use): a value they do not know is an error here rather than silently the default.
  checkEnvironment(process.env);
  cached = found.module;
  loadedFrom = found.path;
  return cached;
}

/**
 * The search behind loadNative() for a package folder `root`, without the cache: the first
 * candidate that loads, or an `ERR_ADDON_NOT_FOUND` error naming every path tried, why each
 * failed, and what to do.
 */
export function findNative(root: string): { module: NativeModule; path: string } {
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const { file, note } of candidates(root)) {
    if (note || !existsSync(file)) {
      tried.push(`  ${file}: ${note ?? 'not found'}`);
      continue;
    }
    try {
      return { module: require(file) as NativeModule, path: file };
    } catch (err) {
      tried.push(`  ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  // Last resort: the `bindings` package searches the other usual build folders.
  try {
    const bindings = require('bindings') as (opts: { bindings: string; module_root: string }) => NativeModule & { path?: string };
    const module = bindings({ bindings: 'alexnet.node', module_root: root });
    return { module, path: module.path ?? 'bindings' };
  } catch (err) {
    const lines = (err as Error).message.split('\n');
    const places = lines.slice(1).filter((l) => l.trim()).length; // bindings lists one place a line
    tried.push(`  bindings search under ${root}: ${(lines[0] ?? '').replace(/\.?\s*Tried:\s*$/, '')}${places ? ` (${places} places)` : ''}`);
  }
  const e = new Error(
    `alexnet: could not load the native addon (${process.platform}-${process.arch}, Node ${process.version}). Tried:\n` +
      `${tried.join('\n')}\n` +
      'What to do:\n' +
      '  - installed with npm: `npm rebuild alexnet-node` runs the package\'s install step again: it uses the prebuilt ' +
      'binary, or builds from source with node-gyp (needs a C++17 compiler, make and python3). npm 11 may hold that step ' +
      'back until it is approved: `npm install-scripts approve alexnet-node` (README, "Install").\n' +
      '  - in a checkout: `npm run build:native` (cmake-js; needs CMake) or `npx node-gyp rebuild`.\n' +
      '  - or set ALEXNET_ADDON to the path of an alexnet.node file.',
  ) as Error & { code: string };
  e.code = 'ERR_ADDON_NOT_FOUND';
  throw e;
}

let loadedFrom = '';
/** The file the addon was loaded from (after loadNative()). */
export function nativePath(): string {
  return loadedFrom;
}
