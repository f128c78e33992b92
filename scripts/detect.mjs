#!/usr/bin/env node
// Build-time detection shared by binding.gyp (through `<!(...)` expansions) and documented for
// CMakeLists.txt, which does the same search in CMake. Prints one answer on stdout:
//
//   sources cpp|cuda   the native source list (native/sources.json), space separated
//   cuda-home          the CUDA toolkit folder with bin/nvcc, or nothing (ALEXNET_CUDA=0 forces nothing)
//   cuda-gencode       nvcc -gencode flags (ALEXNET_CUDA_ARCHS="75;80;86;89;90" by default)
//   cuda-archs         the architecture list as a string, for `alexnet info`
//   blas-include       the folder holding cblas.h, or nothing (ALEXNET_BLAS=none forces nothing)
//   blas-lib           the OpenBLAS library to link (static archive preferred), or nothing
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [what, arg] = process.argv.slice(2);

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return '';
}

function cudaHome() {
  if (process.env.ALEXNET_CUDA === '0' || process.env.ALEXNET_CUDA === 'OFF') return '';
  const candidates = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'];
  const nvcc = which('nvcc');
  if (nvcc) {
    // nvcc may be a wrapper script: ask it where it lives.
    try {
      const out = execFileSync(nvcc, ['-dryrun', '--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const m = /TOP=(\S+)/.exec(out);
      if (m) candidates.unshift(m[1]);
    } catch (err) {
      const m = /TOP=(\S+)/.exec(String(err.stderr ?? ''));
      if (m) candidates.unshift(m[1]);
    }
    candidates.push(dirname(dirname(realpathSync(nvcc))));
  }
  for (const c of candidates) {
    if (c && existsSync(join(c, 'bin', 'nvcc')) && existsSync(join(c, 'lib64', 'libcudart_static.a'))) {
      return realpathSync(c);
    }
  }
  return '';
}

function archs() {
  return (process.env.ALEXNET_CUDA_ARCHS ?? '75;80;86;89;90').split(/[;, ]+/).filter(Boolean);
}

const blasIncludes = ['/usr/include/x86_64-linux-gnu/openblas-pthread', '/usr/include/aarch64-linux-gnu/openblas-pthread',
  '/usr/include/openblas', '/usr/include', '/usr/local/include', '/opt/homebrew/opt/openblas/include'];
const blasLibs = ['/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.a', '/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.a',
  '/usr/lib/x86_64-linux-gnu/libopenblas.a', '/usr/lib64/libopenblas.a', '/usr/local/lib/libopenblas.a',
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so', '/usr/lib/x86_64-linux-gnu/libopenblas.so', '/usr/lib64/libopenblas.so'];

function blasInclude() {
  if (process.env.ALEXNET_BLAS === 'none') return '';
  if (process.env.OPENBLAS_INCLUDE && existsSync(join(process.env.OPENBLAS_INCLUDE, 'cblas.h'))) return process.env.OPENBLAS_INCLUDE;
  return blasIncludes.find((d) => existsSync(join(d, 'cblas.h')) && existsSync(join(d, 'openblas_config.h'))) ?? '';
}

function blasLib() {
  if (!blasInclude()) return '';
  if (process.env.OPENBLAS_LIB && existsSync(process.env.OPENBLAS_LIB)) return process.env.OPENBLAS_LIB;
  return blasLibs.find((f) => existsSync(f)) ?? '';
}

switch (what) {
  case 'sources': {
    const list = JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8'))[arg];
    if (!Array.isArray(list)) throw new Error(`detect.mjs: no source list '${arg}'`);
    // binding.gyp lives at the root, so paths are relative to it already.
    console.log(list.join(' '));
    break;
  }
  case 'cuda-home': console.log(cudaHome()); break;
  case 'cuda-gencode':
    console.log(archs().map((a, i, all) => {
      const real = `-gencode=arch=compute_${a},code=sm_${a}`;
      return i === all.length - 1 ? `${real} -gencode=arch=compute_${a},code=compute_${a}` : real;
    }).join(' '));
    break;
  case 'cuda-archs': console.log(archs().map((a) => `sm_${a}`).join(' ') + ` + compute_${archs().at(-1)} PTX`); break;
  case 'blas-include': console.log(blasInclude()); break;
  case 'blas-lib': console.log(blasLib()); break;
  default:
    console.error('usage: detect.mjs sources cpp|cuda | cuda-home | cuda-gencode | cuda-archs | blas-include | blas-lib');
    process.exit(2);
}
