// The one switch every CUDA test goes through (docs/architecture.md, decision 11: the GPU check
// cannot pass by skipping).
//
// Without a usable GPU the CUDA tests report themselves skipped, with the reason, as on the
// build machines and in CI. With ALEXNET_REQUIRE_CUDA=1 (scripts/gpu-check.sh sets it) a CUDA
// test that cannot run fails instead, naming why CUDA is unavailable: a GPU machine on which the
// addon cannot load cuDNN or cuBLAS gives a red check, never a green one with everything skipped.
import { describe, it, expect } from 'vitest';
import { loadNative } from '../src/native.js';

const cudaInfo = loadNative().info().cuda;

/** True when CUDA tests must run (ALEXNET_REQUIRE_CUDA=1). */
export const cudaRequired: boolean = process.env.ALEXNET_REQUIRE_CUDA === '1';
/**
 * True when the "device" is the emulated one (test/cuda-emu/device: the whole backend on the
 * CPU, with stand-in cuDNN and cuBLAS). Its runs are a rehearsal, never the GPU check: under
 * ALEXNET_REQUIRE_CUDA=1 it counts as no CUDA at all.
 */
export const cudaEmulated: boolean = cudaInfo.architectures === 'emulated' || /^Emulated CUDA device/.test(cudaInfo.deviceName ?? '');
const emulatedRefused = cudaEmulated && cudaRequired;
/** True when the addon has CUDA compiled in, a device, and cuDNN and cuBLAS loaded. */
export const cudaAvailable: boolean = cudaInfo.available && !emulatedRefused;
/** Why CUDA is unavailable ('' when it is available). */
export const cudaReason: string = emulatedRefused
  ? `the device is the CPU emulation (${cudaInfo.deviceName}), which never counts as a GPU (ALEXNET_REQUIRE_CUDA=1)`
  : cudaInfo.available ? '' : cudaInfo.reason;

const firstLine = (s: string): string => s.split('\n')[0] ?? s;

/** ' (skipped: CUDA unavailable: <reason>)' when the CUDA tests will skip, else ''. */
export const cudaSkipSuffix: string = cudaAvailable || cudaRequired ? '' : ` (skipped: CUDA unavailable: ${firstLine(cudaReason)})`;

function unavailable(name: string): void {
  it(`${name}: CUDA is required (ALEXNET_REQUIRE_CUDA=1) but unavailable`, () => {
    expect.fail(`CUDA unavailable: ${cudaReason}`);
  });
}

/**
 * describe() for tests that need a GPU: runs them when CUDA is available; otherwise skips them
 * with the reason, or, with ALEXNET_REQUIRE_CUDA=1, registers one failing test that says why.
 */
export function describeCuda(name: string, body: () => void): void {
  if (cudaAvailable) {
    describe(name, body);
  } else if (cudaRequired) {
    describe(name, () => unavailable(name));
  } else {
    describe.skip(`${name}${cudaSkipSuffix}`, body);
  }
}

/** it() for a single test that needs a GPU (see describeCuda). */
export function itCuda(name: string, fn: () => unknown, timeout?: number): void {
  if (cudaAvailable) it(name, fn, timeout);
  else if (cudaRequired) unavailable(name);
  else it.skip(`${name}${cudaSkipSuffix}`, fn, timeout);
}

/**
 * itCuda() for a test that measures the GPU (speed ratios, bandwidth): it runs where itCuda runs,
 * except on the emulated device, where it is skipped with that reason (a CPU emulation has no
 * speed worth asserting). Under ALEXNET_REQUIRE_CUDA=1 it is exactly itCuda.
 */
export function itCudaMeasures(name: string, fn: () => unknown, timeout?: number): void {
  if (cudaEmulated && !cudaRequired) it.skip(`${name} (skipped: a measurement of the GPU; the device is the CPU emulation)`, fn, timeout);
  else itCuda(name, fn, timeout);
}
