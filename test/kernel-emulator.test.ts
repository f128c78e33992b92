// Our CUDA kernels, run without a GPU: test/cuda-emu builds native/cuda/kernels/*.cu as host C++
// against its own stand-in for the CUDA runtime and runs every launcher's cases against float64
// references, under AddressSanitizer + UBSan (bounds of every buffer) and ThreadSanitizer
// (races inside a block: a missing __syncthreads). This is not the GPU check (the gated
// cuda-*.test.ts files and scripts/gpu-check.sh are): it is the kernels' logic, executed.
// The last tests put a deliberate bug into a copy of a kernel and require each check (ASan, TSan
// within a block and between blocks, the float64 comparison, uninitialised shared memory, the
// launch limits) to catch it, so a harness that stopped checking would fail here.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const emuDir = join(root, 'test/cuda-emu');
const script = join(emuDir, 'build.mjs');

function emu(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [script, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

// Every EMU_CASE in the sources, so that a case that silently stopped running is noticed.
const declared = readdirSync(emuDir)
  .filter((f) => f.endsWith('.cc'))
  .flatMap((f) => [...readFileSync(join(emuDir, f), 'utf8').matchAll(/^EMU_CASE\((\w+)\)/gm)].map((m) => m[1]));

describe('CUDA kernels under the emulator', () => {
  it('declares cases for every kernel file', () => {
    expect(declared.length).toBeGreaterThanOrEqual(5);
  });

  for (const sanitize of ['address', 'thread']) {
    it(`every case passes under ${sanitize === 'address' ? 'AddressSanitizer + UBSan' : 'ThreadSanitizer'}`, () => {
      const r = emu(['--sanitize', sanitize, '--out', join(root, `build/cuda-emu-${sanitize}`)]);
      const summary = r.out.match(/emu: (\d+) cases, (\d+) failed/);
      if (r.status !== 0 || !summary) console.log(r.out.slice(-20000));
      expect(r.out).not.toMatch(/Sanitizer|runtime error|EMU FAIL/);
      expect(summary?.[2]).toBe('0');
      expect(Number(summary?.[1])).toBe(declared.length);
      for (const name of declared) expect(r.out).toMatch(new RegExp(`^ok +${name} `, 'm'));
      expect(r.status).toBe(0);
    }, 600_000);
  }

  const mutants = [
    {
      name: 'a grid-stride loop one element too far is an AddressSanitizer error',
      sanitize: 'address',
      mutate: { file: 'common.cuh', from: 'i < (n);', to: 'i <= (n);' },
      filter: 'fill_scale_axpy',
      expect: /AddressSanitizer: (heap|stack|global)-buffer-overflow/,
    },
    {
      name: 'a reduction without its __syncthreads is a ThreadSanitizer data race',
      sanitize: 'thread',
      mutate: {
        file: 'activation.cu',
        from: '    if (t < stride) part[t] += part[t + stride];\n    __syncthreads();',
        to: '    if (t < stride) part[t] += part[t + stride];',
      },
      filter: 'bias_backward',
      expect: /ThreadSanitizer: data race/,
    },
    {
      name: 'a wrong formula is a mismatch against the float64 reference',
      sanitize: 'address',
      mutate: { file: 'activation.cu', from: 'const float v = bias ? plane[j] + b : plane[j];', to: 'const float v = bias ? plane[j] - b : plane[j];' },
      filter: 'bias_relu_forward',
      expect: /FAIL bias_relu_forward/,
    },
    {
      name: 'two blocks writing one element is a ThreadSanitizer data race',
      sanitize: 'thread',
      mutate: { file: 'elementwise.cu', from: 'GRID_STRIDE(i, n) { t[i] = v; }', to: 'GRID_STRIDE(i, n) { t[blockIdx.x == 0 ? i : i - blockDim.x] = v; }' },
      filter: 'fill_scale_axpy',
      expect: /ThreadSanitizer: data race/,
    },
    {
      name: 'shared memory read before it is written gives garbage, and a mismatch',
      sanitize: 'address',
      mutate: { file: 'image.cu', from: 'for (int v = threadIdx.x; v < 256; v += blockDim.x)', to: 'for (int v = threadIdx.x; v < 128; v += blockDim.x)' },
      filter: 'normalize_images',
      expect: /FAIL normalize_images/,
    },
    {
      name: 'a grid over the hardware limit at training scale is a refused launch',
      sanitize: 'address',
      mutate: { file: 'image.cu', from: 'const int64_t chunk = 65535 / C * C;', to: 'const int64_t chunk = 70000 / C * C;' },
      filter: 'launch_geometry_at_scale',
      expect: /cudaErrorInvalidConfiguration/,
    },
  ];
  for (const m of mutants) {
    it(m.name, () => {
      const r = emu(['--sanitize', m.sanitize, '--out', join(root, `build/cuda-emu-mutant-${m.sanitize}`),
        '--mutate', JSON.stringify(m.mutate), '--', m.filter]);
      expect(r.out).toMatch(/emu: 10 kernel files|emu: \d+ kernel files/);
      expect(r.out).toMatch(m.expect);
      expect(r.status).not.toBe(0);
    }, 600_000);
  }
});
