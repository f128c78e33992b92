#!/usr/bin/env node
// Builds the emulated device (test/cuda-emu/README.md, "The emulated device"): the whole addon
// with its CUDA backend compiled as host C++ against the emulated CUDA runtime, and the
// stand-in cuDNN and cuBLAS libraries beside it.
//   node test/cuda-emu/device/build.mjs [--out DIR] [--print-env] [--mutate '{"file","from","to"}']
// Writes DIR/alexnet.node, DIR/libcudaemu.so and DIR/lib/ (libcudnn.so.9, libcublas.so.13,
// libcublasLt.so.13). --print-env prints the environment that points the package at them
// (ALEXNET_ADDON, ALEXNET_CUDNN_PATH, ALEXNET_CUBLAS_PATH), one NAME=value per line.
// Objects are rebuilt only when their source, or any header, is newer.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { rewriteLaunches, rewriteShared, runParallel } from '../build.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const emuDir = resolve(here, '..');
const root = resolve(here, '../../..');
const cxx = process.env.CXX || 'g++';

// The PTX register reads our kernels make (a clock): the host's monotonic clock instead.
const GLOBALTIMER = /asm\s+volatile\s*\(\s*"mov\.u64 %0, %%globaltimer;"\s*:\s*"=l"\((\w+)\)\s*\)/g;

// Which __global__ functions never reach a barrier: no __syncthreads or warp shuffle in their
// body or in any function of ours they call (by name, to a fixed point, over every .cu/.cuh
// file). Their launches run each thread as a plain call (emu::direct_launcher), with no fiber
// to set up and switch to per thread; a barrier reached anyway stops the run. A name defined
// twice counts as syncing if either definition does.
const FUNCTION = /\b(__global__|__device__)\b[^;{}]*?\b((?!__launch_bounds__)[A-Za-z_]\w*)\s*\([^;{}]*?\)\s*(?:const\s*)?\{/g;
export function barrierFreeKernels(texts) {
  const bodies = new Map(); // name -> [body, ...]
  const kernels = new Set();
  for (const text of texts) {
    for (const m of text.matchAll(FUNCTION)) {
      let depth = 0, i = m.index + m[0].length - 1;
      const start = i;
      for (; i < text.length; i++) {
        if (text[i] === '{') depth++;
        else if (text[i] === '}' && --depth === 0) break;
      }
      const body = text.slice(start, i + 1);
      if (!bodies.has(m[2])) bodies.set(m[2], []);
      bodies.get(m[2]).push(body);
      if (m[1] === '__global__') kernels.add(m[2]);
    }
  }
  const syncs = new Set([...bodies].filter(([, bs]) => bs.some((b) => /__syncthreads|__shfl/.test(b))).map(([n]) => n));
  for (let changed = true; changed;) {
    changed = false;
    for (const [name, bs] of bodies) {
      if (syncs.has(name)) continue;
      if (bs.some((b) => [...syncs].some((f) => new RegExp(`\\b${f}\\s*[(<]`).test(b)))) {
        syncs.add(name);
        changed = true;
      }
    }
  }
  return new Set([...kernels].filter((k) => !syncs.has(k)));
}

export function rewriteDevice(text, direct = new Set()) {
  const launches = rewriteLaunches(text).replace(/::emu::launcher\(([^;]*?)\)\(((?:[\w:]+::)?(\w+)(?:<[^<>;()]*>)?)\)\(/g,
    (all, config, kernel, name) => (direct.has(name) ? `::emu::direct_launcher(${config})(${kernel})(` : all));
  return rewriteShared(launches).replace(GLOBALTIMER, (_, v) => `(${v} = ::emu::globaltimer_ns())`);
}

function newest(files) {
  return Math.max(0, ...files.filter((f) => existsSync(f)).map((f) => statSync(f).mtimeMs));
}


// mutate: { file, from, to }: a deliberate bug put into the copy of one .cu file (a path under
// native/, e.g. "cuda/runtime.cu"); `from` must occur exactly once. Use its own `out`.
export function buildDevice(out = join(root, 'build', 'cuda-emu-device'), mutate = null) {
  mkdirSync(join(out, 'lib'), { recursive: true });
  mkdirSync(join(out, 'obj'), { recursive: true });
  const sources = JSON.parse(readFileSync(join(root, 'native/sources.json'), 'utf8'));
  // The CUDA sources, rewritten into out/src (written only when changed, so objects stay fresh).
  const nativeFiles = readdirSync(join(root, 'native'), { recursive: true });
  const direct = barrierFreeKernels(nativeFiles.filter((f) => /\.(cu|cuh)$/.test(f)).map((f) => readFileSync(join(root, 'native', f), 'utf8')));
  for (const f of nativeFiles) {
    if (!/\.(cu|cuh|h)$/.test(f)) continue;
    const dst = join(out, 'src', 'native', f);
    mkdirSync(dirname(dst), { recursive: true });
    // headers beside them too, so that the copies' relative includes resolve
    const original = readFileSync(join(root, 'native', f), 'utf8');
    let text = f.endsWith('.h') ? original : rewriteDevice(original, direct);
    if (mutate && mutate.file === f.replace(/\\/g, '/')) {
      const at = text.split(mutate.from).length - 1;
      if (at !== 1) throw new Error(`--mutate: ${JSON.stringify(mutate.from)} occurs ${at} times in native/${f}`);
      text = text.replace(mutate.from, mutate.to);
    }
    if (!f.endsWith('.h') && text.includes('<<<') || text.includes('__shared__') || /\basm\b/.test(text.replace(/\/\/.*$/gm, '')))
      throw new Error(`native/${f}: a launch, __shared__ declaration or inline assembly the rewrite did not understand`);
    if (!existsSync(dst) || readFileSync(dst, 'utf8') !== text) writeFileSync(dst, text);
  }
  const headers = newest([
    ...nativeFiles.filter((f) => /\.(h|cuh)$/.test(f)).map((f) => join(root, 'native', f)),
    ...readdirSync(join(emuDir, 'include')).map((f) => join(emuDir, 'include', f)),
    ...readdirSync(here).filter((f) => f.endsWith('.h')).map((f) => join(here, f)),
  ]);
  const nodeInclude = resolve(dirname(process.execPath), '../include/node');
  if (!existsSync(join(nodeInclude, 'node_api.h'))) throw new Error(`no Node headers at ${nodeInclude}`);
  const require = createRequire(join(root, 'package.json'));
  const napiInclude = resolve(root, require('node-addon-api').include_dir);
  const detect = (what) => execFileSync(process.execPath, ['scripts/detect.mjs', what], { cwd: root, encoding: 'utf8' }).trim();
  const blasInclude = detect('blas-include');
  const blasLib = detect('blas-lib');
  const base = ['-std=c++17', '-O1', '-g0', '-fPIC', '-pthread', '-fexceptions', '-w'];
  const emuFlags = ['-DEMU_DEVICE', `-I${join(emuDir, 'include')}`];
  const defines = ['-DNAPI_VERSION=8', '-DNODE_ADDON_API_CPP_EXCEPTIONS', '-DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
    '-DNODE_ADDON_API_DISABLE_DEPRECATED', '-DALEXNET_BUILD_SYSTEM="emulated-device"', '-DALEXNET_WITH_CUDA',
    '-DALEXNET_CUDA_ARCHS="emulated"', `-I${nodeInclude}`, `-I${napiInclude}`];
  if (blasInclude && blasLib) defines.push(`-I${blasInclude}`, '-DALEXNET_WITH_CBLAS', '-DALEXNET_OPENBLAS');

  const jobs = [];
  const object = (src) => join(out, 'obj', src.replace(/^.*?native[\\/]/, '').replace(/[\\/]/g, '_') + '.o');
  // A compile job unless the object is newer than its source and every header.
  const compile = (src, flags, lang = [], obj = object(src)) => {
    if (!(existsSync(obj) && statSync(obj).mtimeMs > Math.max(statSync(src).mtimeMs, headers))) jobs.push([...base, ...flags, ...lang, '-c', src, '-o', obj]);
    return obj;
  };
  // the emulated runtime, one shared library for the addon and the stand-in libraries
  const runtimeObjs = [
    compile(join(emuDir, 'emu.cc'), ['-O2', ...emuFlags]),
    compile(join(here, 'runtime.cc'), ['-O2', ...emuFlags]),
  ];
  const addonObjs = [];
  for (const f of sources.cpp) addonObjs.push(compile(join(root, f), defines));
  for (const f of sources.cuda) {
    const src = f.endsWith('.cu') ? join(out, 'src', f) : join(root, f);
    addonObjs.push(compile(src, [...defines, ...emuFlags], f.endsWith('.cu') ? ['-x', 'c++'] : []));
  }
  // The stand-ins, each one object per library: cuDNN; cuBLAS as it ships, libcublas.so.13
  // needing libcublasLt.so.13 (fake_cublas.cc's FAKE_CUBLAS_PART 1 and 2).
  const fakeFlags = ['-O2', ...emuFlags, `-I${join(root, 'native/cuda/dynload')}`, `-I${join(root, 'native')}`];
  const fakeObj = (file, tag, extra = []) => compile(join(here, file), [...fakeFlags, ...extra], [], join(out, 'obj', `${tag}.o`));
  const cudnnObj = fakeObj('fake_cudnn.cc', 'fake_cudnn');
  const cublasObj = fakeObj('fake_cublas.cc', 'fake_cublas', ['-DFAKE_CUBLAS_PART=1']);
  const cublasLtObj = fakeObj('fake_cublas.cc', 'fake_cublaslt', ['-DFAKE_CUBLAS_PART=2']);
  runParallel(jobs, Math.max(1, Math.min(cpus().length, 4)));

  const runtimeLib = join(out, 'libcudaemu.so');
  execFileSync(cxx, ['-shared', '-pthread', '-Wl,-soname,libcudaemu.so', ...runtimeObjs, '-o', runtimeLib], { stdio: 'inherit' });
  const lib = (name) => join(out, 'lib', name);
  const shared = (obj, name, extra = []) => execFileSync(cxx, ['-shared', '-pthread', `-Wl,-soname,${name}`, obj, ...extra,
    `-L${out}`, '-lcudaemu', '-Wl,-rpath,$ORIGIN/..', '-Wl,-rpath,$ORIGIN', '-Wl,--no-undefined', '-o', lib(name)], { stdio: 'inherit' });
  shared(cudnnObj, 'libcudnn.so.9');
  shared(cublasLtObj, 'libcublasLt.so.13');
  // --no-as-needed: the linker would otherwise drop the dependency on cuBLASLt
  shared(cublasObj, 'libcublas.so.13', ['-Wl,--no-as-needed', lib('libcublasLt.so.13'), '-Wl,--as-needed']);
  const addon = join(out, 'alexnet.node');
  const link = ['-shared', '-pthread', ...addonObjs, `-L${out}`, '-lcudaemu', '-Wl,-rpath,' + out, '-ldl', '-lrt'];
  if (blasInclude && blasLib) link.push(blasLib, '-lm', '-Wl,--exclude-libs,ALL');
  execFileSync(cxx, [...link, '-o', addon], { stdio: 'inherit' });
  return {
    addon,
    env: { ALEXNET_ADDON: addon, ALEXNET_CUDNN_PATH: join(out, 'lib'), ALEXNET_CUBLAS_PATH: join(out, 'lib') },
    compiled: jobs.length,
    direct,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--out');
  const t0 = Date.now();
  const m = args.indexOf('--mutate');
  const { env, compiled, direct } = buildDevice(i >= 0 ? resolve(args[i + 1]) : undefined, m >= 0 ? JSON.parse(args[m + 1]) : null);
  if (args.includes('--print-env')) {
    for (const [k, v] of Object.entries(env)) console.log(`${k}=${v}`);
  } else {
    console.log(`emulated device: ${compiled} files compiled in ${((Date.now() - t0) / 1000).toFixed(0)} s; ` +
      `kernels without barriers (run as plain calls): ${[...direct].sort().join(', ')}`);
    for (const [k, v] of Object.entries(env)) console.log(`  ${k}=${v}`);
  }
}
