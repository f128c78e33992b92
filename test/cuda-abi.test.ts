// The cuDNN 9 / cuBLAS 12-13 run-time binding (native/cuda/dynload):
//  * every number our own declarations compile to is pinned against literals COPIED BY HAND
//    from docs/cuda-abi.md (its section in each comment: "§A2" is "docs/cuda-abi.md, section
//    A2"), never derived from our header: this is the independent check of the enum values and
//    layouts;
//  * the loader, on a machine without the libraries (as here), reports what is missing and
//    where it looked, keeps the process working, honours ALEXNET_CUDNN_PATH, and rejects
//    impostor libraries (cuDNN 8, missing symbols) with a reason instead of crashing.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relu, Tensor } from '../src/index.js';
import { loadNative, nativePath, type CudaLibraries } from '../src/native.js';
import { expectCode } from './helpers.js';

const native = loadNative();

// ---- expected values, copied from docs/cuda-abi.md ----------------------------------------------

const expectedEnums: Record<string, Record<string, number>> = {
  // §A2 cudnnStatus_t, "9.x value" column (renumbered in 9; last six rows are deprecated aliases)
  cudnnStatus_t: {
    CUDNN_STATUS_SUCCESS: 0,
    CUDNN_STATUS_NOT_INITIALIZED: 1001,
    CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH: 1002,
    CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH: 1003,
    CUDNN_STATUS_DEPRECATED: 1004,
    CUDNN_STATUS_LICENSE_ERROR: 1005,
    CUDNN_STATUS_RUNTIME_IN_PROGRESS: 1006,
    CUDNN_STATUS_RUNTIME_FP_OVERFLOW: 1007,
    CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED: 1008,
    CUDNN_STATUS_BAD_PARAM: 2000,
    CUDNN_STATUS_BAD_PARAM_NULL_POINTER: 2002,
    CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER: 2003,
    CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED: 2004,
    CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND: 2005,
    CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT: 2006,
    CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH: 2007,
    CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH: 2008,
    CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES: 2009,
    CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE: 2010,
    CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH: 2011,
    CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE: 2012,
    CUDNN_STATUS_NOT_SUPPORTED: 3000,
    CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN: 3001,
    CUDNN_STATUS_NOT_SUPPORTED_SHAPE: 3002,
    CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE: 3003,
    CUDNN_STATUS_NOT_SUPPORTED_LAYOUT: 3004,
    CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER: 3005,
    CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART: 3006,
    CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH: 3007,
    CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING: 3008,
    CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE: 3009,
    CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT: 3010,
    CUDNN_STATUS_NOT_SUPPORTED_PADDING: 3011,
    CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM: 3012,
    CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API: 3013,
    CUDNN_STATUS_INTERNAL_ERROR: 4000,
    CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED: 4001,
    CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE: 4002,
    CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED: 4003,
    CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED: 4004,
    CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM: 4005,
    CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED: 4006,
    CUDNN_STATUS_EXECUTION_FAILED: 5000,
    CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER: 5001,
    CUDNN_STATUS_EXECUTION_FAILED_CUBLAS: 5002,
    CUDNN_STATUS_EXECUTION_FAILED_CUDART: 5003,
    CUDNN_STATUS_EXECUTION_FAILED_CURAND: 5004,
    CUDNN_STATUS_ALLOC_FAILED: 4003,
    CUDNN_STATUS_INVALID_VALUE: 2001,
    CUDNN_STATUS_ARCH_MISMATCH: 3007,
    CUDNN_STATUS_MAPPING_ERROR: 4006,
    CUDNN_STATUS_RUNTIME_PREREQUISITE_MISSING: 3008,
    CUDNN_STATUS_VERSION_MISMATCH: 1002,
  },
  // §A3 cudnnDataType_t (values 15..19 are 9.13-only and not declared)
  cudnnDataType_t: {
    CUDNN_DATA_FLOAT: 0,
    CUDNN_DATA_DOUBLE: 1,
    CUDNN_DATA_HALF: 2,
    CUDNN_DATA_INT8: 3,
    CUDNN_DATA_INT32: 4,
    CUDNN_DATA_INT8x4: 5,
    CUDNN_DATA_UINT8: 6,
    CUDNN_DATA_UINT8x4: 7,
    CUDNN_DATA_INT8x32: 8,
    CUDNN_DATA_BFLOAT16: 9,
    CUDNN_DATA_INT64: 10,
    CUDNN_DATA_BOOLEAN: 11,
    CUDNN_DATA_FP8_E4M3: 12,
    CUDNN_DATA_FP8_E5M2: 13,
    CUDNN_DATA_FAST_FLOAT_FOR_FP8: 14,
  },
  // §A3 cudnnTensorFormat_t
  cudnnTensorFormat_t: { CUDNN_TENSOR_NCHW: 0, CUDNN_TENSOR_NHWC: 1, CUDNN_TENSOR_NCHW_VECT_C: 2 },
  // §A3 cudnnConvolutionMode_t
  cudnnConvolutionMode_t: { CUDNN_CONVOLUTION: 0, CUDNN_CROSS_CORRELATION: 1 },
  // §A3 cudnnConvolutionFwdAlgo_t
  cudnnConvolutionFwdAlgo_t: {
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: 0,
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: 1,
    CUDNN_CONVOLUTION_FWD_ALGO_GEMM: 2,
    CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: 3,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT: 4,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: 5,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: 6,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: 7,
    CUDNN_CONVOLUTION_FWD_ALGO_COUNT: 8,
  },
  // §A3 cudnnConvolutionBwdDataAlgo_t
  cudnnConvolutionBwdDataAlgo_t: {
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: 0,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: 1,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: 2,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: 3,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: 4,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: 5,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT: 6,
  },
  // §A3 cudnnConvolutionBwdFilterAlgo_t (not parallel to BwdData, §D6)
  cudnnConvolutionBwdFilterAlgo_t: {
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: 0,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: 1,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: 2,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: 3,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD: 4,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED: 5,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING: 6,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT: 7,
  },
  // §A3 cudnnMathType_t
  cudnnMathType_t: {
    CUDNN_DEFAULT_MATH: 0,
    CUDNN_TENSOR_OP_MATH: 1,
    CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: 2,
    CUDNN_FMA_MATH: 3,
  },
  // §A3 cudnnPoolingMode_t
  cudnnPoolingMode_t: {
    CUDNN_POOLING_MAX: 0,
    CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING: 1,
    CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING: 2,
    CUDNN_POOLING_MAX_DETERMINISTIC: 3,
  },
  // §A3 cudnnNanPropagation_t
  cudnnNanPropagation_t: { CUDNN_NOT_PROPAGATE_NAN: 0, CUDNN_PROPAGATE_NAN: 1 },
  // §A3 cudnnLRNMode_t
  cudnnLRNMode_t: { CUDNN_LRN_CROSS_CHANNEL_DIM1: 0 },
  // §A3 cudnnDeterminism_t
  cudnnDeterminism_t: { CUDNN_NON_DETERMINISTIC: 0, CUDNN_DETERMINISTIC: 1 },

  // §B2 cublasStatus_t (sparse)
  cublasStatus_t: {
    CUBLAS_STATUS_SUCCESS: 0,
    CUBLAS_STATUS_NOT_INITIALIZED: 1,
    CUBLAS_STATUS_ALLOC_FAILED: 3,
    CUBLAS_STATUS_INVALID_VALUE: 7,
    CUBLAS_STATUS_ARCH_MISMATCH: 8,
    CUBLAS_STATUS_MAPPING_ERROR: 11,
    CUBLAS_STATUS_EXECUTION_FAILED: 13,
    CUBLAS_STATUS_INTERNAL_ERROR: 14,
    CUBLAS_STATUS_NOT_SUPPORTED: 15,
    CUBLAS_STATUS_LICENSE_ERROR: 16,
  },
  // §B3 cublasOperation_t
  cublasOperation_t: { CUBLAS_OP_N: 0, CUBLAS_OP_T: 1, CUBLAS_OP_C: 2, CUBLAS_OP_HERMITAN: 2, CUBLAS_OP_CONJG: 3 },
  // §B4 cublasMath_t (4 = FP32_EMULATED_BF16X9 is 13.0-only and not declared)
  cublasMath_t: {
    CUBLAS_DEFAULT_MATH: 0,
    CUBLAS_TENSOR_OP_MATH: 1,
    CUBLAS_PEDANTIC_MATH: 2,
    CUBLAS_TF32_TENSOR_OP_MATH: 3,
    CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION: 16,
  },
  // §B5 cublasComputeType_t (78 is 13.0-only and not declared; 76 unused)
  cublasComputeType_t: {
    CUBLAS_COMPUTE_16F: 64,
    CUBLAS_COMPUTE_16F_PEDANTIC: 65,
    CUBLAS_COMPUTE_32F: 68,
    CUBLAS_COMPUTE_32F_PEDANTIC: 69,
    CUBLAS_COMPUTE_64F: 70,
    CUBLAS_COMPUTE_64F_PEDANTIC: 71,
    CUBLAS_COMPUTE_32I: 72,
    CUBLAS_COMPUTE_32I_PEDANTIC: 73,
    CUBLAS_COMPUTE_32F_FAST_16F: 74,
    CUBLAS_COMPUTE_32F_FAST_16BF: 75,
    CUBLAS_COMPUTE_32F_FAST_TF32: 77,
  },
  // §B6 cudaDataType_t (the subset we declare)
  cudaDataType_t: { CUDA_R_32F: 0, CUDA_R_64F: 1, CUDA_R_16F: 2, CUDA_R_8I: 3, CUDA_R_32I: 10, CUDA_R_16BF: 14 },
  // §B7 cublasGemmAlgo_t (DEFAULT is negative)
  cublasGemmAlgo_t: { CUBLAS_GEMM_DEFAULT: -1, CUBLAS_GEMM_DEFAULT_TENSOR_OP: 99 },
  // §A1 libraryPropertyType (library_types.h:117-122)
  libraryPropertyType: { MAJOR_VERSION: 0, MINOR_VERSION: 1, PATCH_LEVEL: 2 },
  // §B9 cuBLASLt (cublasLt.h): the attributes and epilogues we set (sparse)
  cublasLtMatmulDescAttributes_t: {
    CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: 0,
    CUBLASLT_MATMUL_DESC_SCALE_TYPE: 1,
    CUBLASLT_MATMUL_DESC_POINTER_MODE: 2,
    CUBLASLT_MATMUL_DESC_TRANSA: 3,
    CUBLASLT_MATMUL_DESC_TRANSB: 4,
    CUBLASLT_MATMUL_DESC_EPILOGUE: 7,
    CUBLASLT_MATMUL_DESC_BIAS_POINTER: 8,
    CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: 26,
  },
  cublasLtEpilogue_t: {
    CUBLASLT_EPILOGUE_DEFAULT: 1,
    CUBLASLT_EPILOGUE_RELU: 2,
    CUBLASLT_EPILOGUE_BIAS: 4,
    CUBLASLT_EPILOGUE_RELU_BIAS: 6,
    CUBLASLT_EPILOGUE_BGRADB: 512,
  },
  cublasLtMatmulPreferenceAttributes_t: { CUBLASLT_MATMUL_PREF_SEARCH_MODE: 0, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: 1 },
};

// §B9 cuBLASLt's semi-opaque structs (uint64_t data[N]) and the heuristic result (algo, size_t,
// status, float, int[4]): sizes and alignment on x86_64
const ltStructs = {
  cublasLtMatrixLayoutOpaque_t: [64, 8],
  cublasLtMatmulAlgo_t: [64, 8],
  cublasLtMatmulDescOpaque_t: [256, 8],
  cublasLtMatmulPreferenceOpaque_t: [64, 8],
  cublasLtMatmulHeuristicResult_t: [96, 8],
};

// §A4: field order algo, status, time, (pad), memory, determinism, mathType, reserved[3];
// sizeof 48, alignof 8 on x86_64.
const perfOffsets = { algo: 0, status: 4, time: 8, memory: 16, determinism: 24, mathType: 28, reserved: 32 };
const perfFieldSizes = { algo: 4, status: 4, time: 4, memory: 8, determinism: 4, mathType: 4, reserved: 12 };
const perfStructs = ['cudnnConvolutionFwdAlgoPerf_t', 'cudnnConvolutionBwdDataAlgoPerf_t', 'cudnnConvolutionBwdFilterAlgoPerf_t'];

// §A1 / §B1: handles are pointers to opaque structs (8 bytes)
const handles = [
  'cudnnHandle_t',
  'cudnnTensorDescriptor_t',
  'cudnnFilterDescriptor_t',
  'cudnnConvolutionDescriptor_t',
  'cudnnPoolingDescriptor_t',
  'cudnnLRNDescriptor_t',
  'cublasHandle_t',
  'cublasLtHandle_t',
  'cudaStream_t',
];

// The exported symbol names the loader must dlsym: §A5 (cuDNN) and §B8 / §B8.1 (cuBLAS: the
// `_v2` names for v2 routines, no suffix for SetMathMode / GemmEx / GetStatus* / GetProperty).
const expectedCudnnFunctions = [
  'cudnnGetVersion', 'cudnnGetErrorString', 'cudnnCreate', 'cudnnDestroy', 'cudnnSetStream',
  'cudnnCreateTensorDescriptor', 'cudnnSetTensor4dDescriptor', 'cudnnSetTensor4dDescriptorEx',
  'cudnnSetTensorNdDescriptor', 'cudnnDestroyTensorDescriptor',
  'cudnnCreateFilterDescriptor', 'cudnnSetFilter4dDescriptor', 'cudnnDestroyFilterDescriptor',
  'cudnnCreateConvolutionDescriptor', 'cudnnSetConvolution2dDescriptor', 'cudnnSetConvolutionGroupCount',
  'cudnnSetConvolutionMathType', 'cudnnDestroyConvolutionDescriptor', 'cudnnGetConvolution2dForwardOutputDim',
  'cudnnGetConvolutionForwardAlgorithm_v7', 'cudnnFindConvolutionForwardAlgorithmEx',
  'cudnnGetConvolutionForwardWorkspaceSize', 'cudnnConvolutionForward',
  'cudnnGetConvolutionBackwardDataAlgorithm_v7', 'cudnnFindConvolutionBackwardDataAlgorithmEx',
  'cudnnGetConvolutionBackwardDataWorkspaceSize', 'cudnnConvolutionBackwardData',
  'cudnnGetConvolutionBackwardFilterAlgorithm_v7', 'cudnnFindConvolutionBackwardFilterAlgorithmEx',
  'cudnnGetConvolutionBackwardFilterWorkspaceSize', 'cudnnConvolutionBackwardFilter',
  'cudnnConvolutionBackwardBias', 'cudnnAddTensor',
  'cudnnCreatePoolingDescriptor', 'cudnnSetPooling2dDescriptor', 'cudnnDestroyPoolingDescriptor',
  'cudnnPoolingForward', 'cudnnPoolingBackward',
  'cudnnCreateLRNDescriptor', 'cudnnSetLRNDescriptor', 'cudnnDestroyLRNDescriptor',
  'cudnnLRNCrossChannelForward', 'cudnnLRNCrossChannelBackward',
];
const expectedCublasFunctions = [
  'cublasGetProperty', 'cublasCreate_v2', 'cublasDestroy_v2', 'cublasGetVersion_v2', 'cublasSetStream_v2',
  'cublasSetWorkspace_v2', 'cublasSetMathMode', 'cublasSgemm_v2', 'cublasGemmEx',
  'cublasGetStatusName', 'cublasGetStatusString',
];

describe('cuDNN / cuBLAS declarations match docs/cuda-abi.md', () => {
  const abi = native.cudaAbi();

  it('declares exactly the expected enums with the expected values', () => {
    expect(Object.keys(abi.enums).sort()).toEqual(Object.keys(expectedEnums).sort());
    for (const [type, values] of Object.entries(expectedEnums)) {
      expect(abi.enums[type], type).toEqual(values);
    }
  });

  it('pins the famous traps (§D)', () => {
    const e = abi.enums;
    expect(e.cudnnStatus_t!.CUDNN_STATUS_BAD_PARAM).toBe(2000); // not 3 (cuDNN 8)
    expect(e.cudnnStatus_t!.CUDNN_STATUS_NOT_SUPPORTED).toBe(3000); // not 9
    expect(e.cublasComputeType_t!.CUBLAS_COMPUTE_32F).toBe(68); // not CUDA_R_32F = 0
    expect(e.cublasGemmAlgo_t!.CUBLAS_GEMM_DEFAULT).toBe(-1);
    expect(e.cudnnDataType_t!.CUDNN_DATA_BFLOAT16).toBe(9);
    expect(e.cudaDataType_t!.CUDA_R_16BF).toBe(14);
    expect(e.cudnnConvolutionBwdDataAlgo_t!.CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING).toBe(3);
    expect(e.cudnnConvolutionBwdFilterAlgo_t!.CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING).toBe(6);
  });

  it('every enum is a 4-byte int; only cublasGemmAlgo_t needs a signed one', () => {
    for (const type of Object.keys(expectedEnums)) {
      expect(abi.sizeof[type], `sizeof(${type})`).toBe(4); // docs/cuda-abi.md introduction: plain C enums, 4 bytes
      expect(abi.alignof[type], `alignof(${type})`).toBe(4);
      expect(abi.signed[type], `signedness of ${type}`).toBe(type === 'cublasGemmAlgo_t');
    }
  });

  it('handles are 8-byte pointers', () => {
    for (const h of handles) expect(abi.sizeof[h], `sizeof(${h})`).toBe(8);
  });

  it('perf structs: algo first, sizeof 48, alignof 8 (§A4)', () => {
    expect(Object.keys(abi.offsetof).sort()).toEqual([...perfStructs].sort());
    for (const s of perfStructs) {
      expect(abi.sizeof[s], `sizeof(${s})`).toBe(48);
      expect(abi.alignof[s], `alignof(${s})`).toBe(8);
      expect(abi.offsetof[s], `offsetof in ${s}`).toEqual(perfOffsets);
      expect(abi.fieldSizeof[s], `field sizes in ${s}`).toEqual(perfFieldSizes);
    }
  });

  it('cuBLASLt structs: the sizes of cublasLt.h (§B9)', () => {
    for (const [s, [size, align]] of Object.entries(ltStructs)) {
      expect(abi.sizeof[s], `sizeof(${s})`).toBe(size);
      expect(abi.alignof[s], `alignof(${s})`).toBe(align);
    }
    expect(abi.functions.cublasLt).toEqual([
      'cublasLtCreate', 'cublasLtDestroy', 'cublasLtMatmulDescCreate', 'cublasLtMatmulDescDestroy',
      'cublasLtMatmulDescSetAttribute', 'cublasLtMatrixLayoutCreate', 'cublasLtMatrixLayoutDestroy',
      'cublasLtMatmulPreferenceCreate', 'cublasLtMatmulPreferenceDestroy', 'cublasLtMatmulPreferenceSetAttribute',
      'cublasLtMatmulAlgoGetHeuristic', 'cublasLtMatmul',
    ]);
  });

  it('resolves exactly the expected symbols, with the _v2 names for cuBLAS v2 routines (§B8.1)', () => {
    expect(abi.functions.cudnn).toEqual(expectedCudnnFunctions);
    expect(abi.functions.cudnn[0]).toBe('cudnnGetVersion'); // checked before anything else
    expect(abi.functions.cudnnOptional.sort()).toEqual(['cudnnGetCudartVersion', 'cudnnGetLastErrorString']);
    expect(abi.functions.cublas).toEqual(expectedCublasFunctions);
    for (const legacy of ['cublasSgemm', 'cublasCreate', 'cublasGetVersion', 'cublasSetStream', 'cublasDestroy']) {
      expect(abi.functions.cublas).not.toContain(legacy);
    }
  });

  it('names statuses itself, sub-codes by category (§A2 notes)', () => {
    expect(abi.cudnnStatusNames).toEqual({
      '0': 'CUDNN_STATUS_SUCCESS',
      '1002': 'CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH', // the canonical name, not the alias
      '2000': 'CUDNN_STATUS_BAD_PARAM',
      '2002': 'CUDNN_STATUS_BAD_PARAM_NULL_POINTER',
      '2013': 'CUDNN_STATUS_BAD_PARAM (sub-code 2013)',
      '3007': 'CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH',
      '4003': 'CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED',
      '5000': 'CUDNN_STATUS_EXECUTION_FAILED',
      '7777': 'CUDNN_STATUS_UNKNOWN (7777)',
    });
    expect(abi.cublasStatusNames).toEqual({
      '0': 'CUBLAS_STATUS_SUCCESS',
      '3': 'CUBLAS_STATUS_ALLOC_FAILED',
      '7': 'CUBLAS_STATUS_INVALID_VALUE',
      '13': 'CUBLAS_STATUS_EXECUTION_FAILED',
      '15': 'CUBLAS_STATUS_NOT_SUPPORTED',
      '99': 'CUBLAS_STATUS_UNKNOWN (99)',
    });
    expect(abi.callName).toBe('cudnnConvolutionForward');
  });
});

describe('CUDNN_CHECK / CUBLAS_CHECK errors', () => {
  it('throw typed errors naming the function, the status and file:line', () => {
    expectCode(
      () => native.cudaCheckError('cudnn', 2000, 'api.cudnnConvolutionForward(handle, &alpha, xDesc)'),
      'ERR_CUDA',
      /^cudnnConvolutionForward failed: CUDNN_STATUS_BAD_PARAM \(status 2000\) at native\/binding\/cuda_abi\.cc:\d+/,
    );
    expectCode(
      () => native.cudaCheckError('cudnn', 2005, 'cudnnSetTensor4dDescriptor'),
      'ERR_CUDA',
      /cudnnSetTensor4dDescriptor failed: CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND/,
    );
    expectCode(() => native.cudaCheckError('cudnn', 4004, 'cudnnCreate(&h)'), 'ERR_OUT_OF_MEMORY', /cudnnCreate failed/);
    expectCode(
      () => native.cudaCheckError('cublas', 7, 'api.cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k)'),
      'ERR_CUDA',
      /^cublasSgemm_v2 failed: CUBLAS_STATUS_INVALID_VALUE \(status 7\) at /,
    );
    expectCode(() => native.cudaCheckError('cublas', 3, 'cublasCreate_v2(&h)'), 'ERR_OUT_OF_MEMORY');
    expect(native.cudaCheckError('cudnn', 0, 'cudnnCreate(&h)')).toBeUndefined(); // success: no throw
  });
});

// ---- the loader --------------------------------------------------------------------------------

/** Runs the addon in a fresh process (loading is once per process) and returns cudaLibraries(). */
function librariesInChild(env: Record<string, string>): CudaLibraries {
  const script =
    'const m = require(process.argv[1]);' +
    'const libs = m.cudaLibraries();' +
    // the process keeps working afterwards
    'const t = m.fromData(new Float32Array([-1, 2]), [2]);' +
    'const y = m.reluForward(t).dataSync();' +
    'if (y[0] !== 0 || y[1] !== 2) throw new Error("relu after cudaLibraries() gave " + y);' +
    'process.stdout.write(JSON.stringify(libs));';
  const r = spawnSync(process.execPath, ['-e', script, nativePath()], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  expect(r.status, `child failed (signal ${r.signal}):\n${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as CudaLibraries;
}

const haveCudnn = native.cudaLibraries().cudnn.found; // GPU machines: the not-found checks don't apply
const haveCc = spawnSync('cc', ['--version']).status === 0;

describe('loading cuDNN / cuBLAS at run time', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'alexnet-dynload-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(haveCudnn)('reports what is missing and where it looked, and the process keeps working', async () => {
    const libs = native.cudaLibraries();
    expect(native.cudaLibraries()).toEqual(libs); // loaded once, same answer
    expect(libs.cudnn.found).toBe(false);
    expect(libs.cudnn.reason).toMatch(/^cuDNN 9 \(libcudnn\.so\.9\) not found\. Looked in: /);
    expect(libs.cudnn.reason).toContain("the dynamic loader's search path");
    expect(libs.cudnn.reason).toContain('$CUDA_HOME');
    expect(libs.cudnn.reason).toContain('ALEXNET_CUDNN_PATH');
    expect(libs.cudnn.searched.length).toBeGreaterThan(1);
    if (!libs.cublas.found) {
      expect(libs.cublas.reason).toMatch(/^cuBLAS \(libcublas\.so\.13 or libcublas\.so\.12\) not found\. Looked in: /);
      expect(libs.cublas.reason).toContain('ALEXNET_CUBLAS_PATH');
    }
    expect(libs.reason).toContain('libcudnn.so.9');
    // the message stays readable: long lists are trimmed
    expect(libs.cudnn.reason.length).toBeLessThan(1500);
    // asking for the tables throws a typed error with the same reason
    const y = await relu(Tensor.from([-3, 4], [2])).data();
    expect(Array.from(y)).toEqual([0, 4]);
    const info = native.info();
    if (info.cuda.compiled) {
      expect(info.cuda.libraries?.cudnn.found).toBe(false);
      expect(info.cuda.reason).toContain('libcudnn.so.9');
      expect(info.cuda.available).toBe(false);
    }
  });

  it('ALEXNET_CUDNN_PATH pointing nowhere: the reason names that path', () => {
    const libs = librariesInChild({ ALEXNET_CUDNN_PATH: '/nonexistent/cudnn', ALEXNET_CUBLAS_PATH: '/nonexistent/cublas' });
    expect(libs.cudnn.found).toBe(false);
    expect(libs.cudnn.reason).toContain('ALEXNET_CUDNN_PATH=/nonexistent/cudnn (no such file or folder)');
    expect(libs.cublas.reason).toContain('ALEXNET_CUBLAS_PATH=/nonexistent/cublas (no such file or folder)');
    // an explicit path is the only place tried
    expect(libs.cudnn.searched).toHaveLength(1);
    expect(libs.reason).toContain('/nonexistent/cudnn');
  });

  it.skipIf(!haveCc)('a cuDNN 8 library named libcudnn.so.9 is rejected: cuDNN 9 is required', () => {
    const d = join(dir, 'cudnn8');
    mkdirSync(d);
    writeFileSync(join(d, 'fake.c'), '#include <stddef.h>\nsize_t cudnnGetVersion(void) { return 8901; }\n');
    execFileSync('cc', ['-shared', '-fPIC', '-o', join(d, 'libcudnn.so.9'), join(d, 'fake.c')]);
    const libs = librariesInChild({ ALEXNET_CUDNN_PATH: d }); // a folder
    expect(libs.cudnn.found).toBe(false);
    expect(libs.cudnn.version).toBe('8.9.1');
    expect(libs.cudnn.reason).toContain(`found cuDNN 8.9.1 at ${join(d, 'libcudnn.so.9')}`);
    expect(libs.cudnn.reason).toContain('cuDNN 9 is required');
  });

  it.skipIf(!haveCc)('a cuDNN 9 library lacking symbols is rejected, naming them', () => {
    const d = join(dir, 'cudnn9');
    mkdirSync(d);
    writeFileSync(join(d, 'fake.c'), '#include <stddef.h>\nsize_t cudnnGetVersion(void) { return 90600; }\n');
    const so = join(d, 'libcudnn.so.9');
    execFileSync('cc', ['-shared', '-fPIC', '-o', so, join(d, 'fake.c')]);
    const libs = librariesInChild({ ALEXNET_CUDNN_PATH: so }); // a file
    expect(libs.cudnn.found).toBe(false);
    expect(libs.cudnn.version).toBe('9.6.0');
    expect(libs.cudnn.reason).toContain(`cuDNN 9.6.0 at ${so} lacks symbols cudnnGetErrorString, cudnnCreate`);
  });

  it.skipIf(!haveCc)('a library that is not cuDNN at all, and a cuBLAS lacking symbols, are rejected', () => {
    const d = join(dir, 'other');
    mkdirSync(d);
    writeFileSync(join(d, 'a.c'), 'int something(void) { return 1; }\n');
    execFileSync('cc', ['-shared', '-fPIC', '-o', join(d, 'libcudnn.so.9'), join(d, 'a.c')]);
    // cuBLAS 13.0.0 that answers cublasGetProperty and nothing else
    writeFileSync(
      join(d, 'b.c'),
      'int cublasGetProperty(int type, int* value) { *value = type == 0 ? 13 : 0; return 0; }\n',
    );
    execFileSync('cc', ['-shared', '-fPIC', '-o', join(d, 'libcublas.so.13'), join(d, 'b.c')]);
    const libs = librariesInChild({ ALEXNET_CUDNN_PATH: d, ALEXNET_CUBLAS_PATH: d });
    expect(libs.cudnn.reason).toContain('is not cuDNN: it has no symbol cudnnGetVersion');
    expect(libs.cublas.found).toBe(false);
    expect(libs.cublas.version).toBe('13.0.0');
    expect(libs.cublas.reason).toContain('lacks symbols cublasCreate_v2');
    expect(libs.cublas.notes.join('\n')).toContain('libcublasLt.so.13'); // looked for its cuBLASLt
  });

  it.skipIf(!haveCc || haveCudnn)(
    'finds complete (fake) libraries in a pip wheel layout, preloading cuBLASLt and the cuDNN sub-libraries',
    () => {
      // site/nvidia/cudnn/lib: libcudnn.so.9 NEEDS libcudnn_graph.so.9 (no rpath), so it only
      // loads if the sub-library is preloaded from its folder; site/nvidia/cu13/lib:
      // libcublas.so.13 NEEDS libcublasLt.so.13 likewise.
      const site = join(dir, 'site');
      const dnnDir = join(site, 'nvidia', 'cudnn', 'lib');
      const blasDir = join(site, 'nvidia', 'cu13', 'lib');
      mkdirSync(dnnDir, { recursive: true });
      mkdirSync(blasDir, { recursive: true });
      const cc = (out: string, src: string, extra: string[] = []) => {
        const c = `${out}.c`;
        writeFileSync(c, src);
        const soname = out.slice(out.lastIndexOf('/') + 1);
        execFileSync('cc', ['-shared', '-fPIC', `-Wl,-soname,${soname}`, '-o', out, c, ...extra]);
      };
      const abi = native.cudaAbi();
      const special = new Set(['cudnnGetVersion', 'cudnnGetCudartVersion', 'cudnnGetErrorString', 'cudnnGetLastErrorString', 'cublasGetProperty']);
      const stubs = (names: string[]) => names.filter((n) => !special.has(n)).map((n) => `int ${n}(void) { return 0; }`).join('\n');
      cc(join(dnnDir, 'libcudnn_graph.so.9'), 'int cudnn_graph_marker(void) { return 1; }\n');
      cc(join(dnnDir, 'libcudnn_ops.so.9'), 'int cudnn_ops_marker(void) { return 1; }\n');
      cc(
        join(dnnDir, 'libcudnn.so.9'),
        '#include <stddef.h>\n#include <string.h>\n' +
          'size_t cudnnGetVersion(void) { return 91300; }\n' +
          'size_t cudnnGetCudartVersion(void) { return 12090; }\n' +
          'const char* cudnnGetErrorString(int s) { return s == 2000 ? "fake bad param" : "fake"; }\n' +
          'void cudnnGetLastErrorString(char* m, size_t n) { strncpy(m, "fake last error", n); }\n' +
          stubs([...abi.functions.cudnn, ...abi.functions.cudnnOptional]) + '\n',
        ['-Wl,--no-as-needed', '-L', dnnDir, '-l:libcudnn_graph.so.9'],
      );
      // cuBLASLt with every function we call but cublasLtMatmul: the other eleven must be found
      // through libcublas's handle (dlsym searches its dependencies) and the one missing named
      cc(join(blasDir, 'libcublasLt.so.13'), 'int cublasLt_marker(void) { return 1; }\n' + stubs(abi.functions.cublasLt.filter((n) => n !== 'cublasLtMatmul')) + '\n');
      cc(
        join(blasDir, 'libcublas.so.13'),
        'int cublasGetProperty(int t, int* v) { *v = t == 0 ? 13 : t == 1 ? 1 : 2; return 0; }\n' +
          'const char* cublasGetStatusName(int s) { return "FAKE_STATUS_NAME"; }\n' +
          'const char* cublasGetStatusString(int s) { return "fake status string"; }\n' +
          stubs(abi.functions.cublas.filter((n) => !n.startsWith('cublasGetStatus'))) + '\n',
        ['-Wl,--no-as-needed', '-L', blasDir, '-l:libcublasLt.so.13'],
      );
      const script =
        'const m = require(process.argv[1]);' +
        'const libs = m.cudaLibraries();' +
        'const errs = [];' +
        'for (const [lib, s, c] of [["cudnn", 2000, "api.cudnnAddTensor(h)"], ["cublas", 7, "cublasGemmEx(h)"]]) {' +
        '  try { m.cudaCheckError(lib, s, c); } catch (e) { errs.push({ code: e.code, message: e.message }); } }' +
        'process.stdout.write(JSON.stringify({ libs, errs }));';
      const r = spawnSync(process.execPath, ['-e', script, nativePath()], {
        env: { ...process.env, ALEXNET_PYTHON_SITE: `/nonexistent:${site}` },
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const { libs, errs } = JSON.parse(r.stdout) as { libs: CudaLibraries; errs: { code: string; message: string }[] };
      expect(libs.reason).toBe('');
      expect(libs.cudnn).toMatchObject({ found: true, path: join(dnnDir, 'libcudnn.so.9'), version: '9.13.0', versionNumber: 91300, cudartVersion: 12090, reason: '' });
      expect(libs.cudnn.notes.join('\n')).toContain(`preloaded 2 cuDNN sub-libraries from ${dnnDir}`);
      expect(libs.cublas).toMatchObject({ found: true, path: join(blasDir, 'libcublas.so.13'), version: '13.1.2', versionNumber: 130102, reason: '' });
      expect(libs.cublasLt).toEqual({ found: false, note: `cuBLASLt beside ${join(blasDir, 'libcublas.so.13')} lacks symbol cublasLtMatmul: fused epilogues off` });
      expect(libs.cublas.notes).toContain(libs.cublasLt.note);
      expect(errs[0]!.code).toBe('ERR_CUDA');
      expect(errs[0]!.message).toMatch(/^cudnnAddTensor failed: CUDNN_STATUS_BAD_PARAM \(fake bad param, status 2000\) at native\/binding\/cuda_abi\.cc:\d+\n  cuDNN: fake last error$/);
      expect(errs[1]!.message).toMatch(/^cublasGemmEx failed: FAKE_STATUS_NAME \(fake status string, status 7\) at /);
    },
  );

  it('scripts/check-abi.sh skips cleanly where the real headers are absent', () => {
    const r = spawnSync('bash', ['scripts/check-abi.sh'], {
      encoding: 'utf8',
      env: { ...process.env, ALEXNET_CUDNN_INCLUDE: '/nonexistent', ALEXNET_CUBLAS_INCLUDE: '/nonexistent' },
    });
    if (/^skipped/m.test(r.stdout)) {
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^skipped: cuDNN headers not found \(looked in \/nonexistent, /m);
      expect(r.stdout).toMatch(/^skipped: cuBLAS headers not found \(looked in \/nonexistent, /m);
    } else {
      // a machine with the real headers: the check itself must pass
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
  });
});
