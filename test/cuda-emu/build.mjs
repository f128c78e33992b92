#!/usr/bin/env node
// Builds and runs the CUDA kernel emulator's checks (test/cuda-emu/README.md):
//   node test/cuda-emu/build.mjs [--sanitize address|thread] [--out DIR] [-- case-filter...]
// Copies native/ into DIR, rewrites every kernel launch `k<<<g, b, s, st>>>(args)` in
// native/cuda/kernels to `::emu::launcher(g, b, s, st)(k)(args)`, compiles the kernels as host
// C++ against include/ (our stand-ins for cuda_runtime.h and math_constants.h) with the
// sanitizer, links them with the cases, and runs them. Exit status: the cases' (0 = all passed).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const args = process.argv.slice(2);
const dash = args.indexOf('--');
const own = dash >= 0 ? args.slice(0, dash) : args;
const filters = dash >= 0 ? args.slice(dash + 1) : [];
const opt = (name, fallback) => {
  const i = own.indexOf(name);
  return i >= 0 ? own[i + 1] : fallback;
};
const sanitize = opt('--sanitize', 'address');
if (!['address', 'thread', 'none'].includes(sanitize)) throw new Error(`--sanitize: address, thread or none, got ${sanitize}`);
// --mutate '{"file":"activation.cu","from":"...","to":"..."}': a deliberate bug put into the copy
// of one kernel file (the test that shows the checks can fail); `from` must occur exactly once.
const mutate = opt('--mutate', null) ? JSON.parse(opt('--mutate')) : null;
const out = resolve(opt('--out', join(root, 'build', `cuda-emu-${sanitize}`)));
const cxx = process.env.CXX || 'g++';

// A launch as our kernels write it: a kernel name (maybe with template arguments), <<<config>>>, (.
const LAUNCH = /([A-Za-z_][\w:]*(?:<[^<>;()]*>)?)\s*<<<([^;]*?)>>>\s*\(/g;
export function rewriteLaunches(text) {
  return text.replace(LAUNCH, (_, kernel, config) => `::emu::launcher(${config})(${kernel})(`);
}
// A __shared__ declaration, `__shared__ T name[a][b];` (no initialiser: CUDA allows none), as a
// reference to the block's own object (include/emu.h, EMU_SHARED).
const SHARED = /__shared__\s+([^;=]+?)\s+(\w+)\s*((?:\[[^\]]+\])*)\s*;/g;
export function rewriteShared(text) {
  return text.replace(SHARED, (_, type, name, dims) => `auto& ${name} = EMU_SHARED(${type}${dims});`);
}

const kernelsDir = join(root, 'native/cuda/kernels');
// Whether this CPU has FMA, so that the emulated kernels can be contracted like nvcc's.
const fma = (() => {
  try {
    return /^flags\s*:.*\bfma\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
})();
// probe.cu asks the real runtime about the device (cudaMalloc, a memcpy back): nothing to emulate.
const skip = new Set(['probe.cu']);

function build() {
  rmSync(join(out, 'native'), { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  cpSync(join(root, 'native'), join(out, 'native'), { recursive: true });
  const sources = [];
  let launches = 0;
  for (const name of readdirSync(kernelsDir)) {
    if (!/\.(cu|cuh)$/.test(name)) continue;
    const text = readFileSync(join(kernelsDir, name), 'utf8');
    let rewritten = rewriteShared(rewriteLaunches(text));
    if (rewritten.includes('__shared__')) throw new Error(`${name}: a __shared__ declaration the rewrite did not understand`);
    if (mutate && mutate.file === name) {
      const at = rewritten.split(mutate.from).length - 1;
      if (at !== 1) throw new Error(`--mutate: ${JSON.stringify(mutate.from)} occurs ${at} times in ${name}`);
      rewritten = rewritten.replace(mutate.from, mutate.to);
    }
    launches += (text.match(/<<</g) || []).length;
    if (rewritten.includes('<<<')) throw new Error(`${name}: a launch the rewrite did not understand`);
    writeFileSync(join(out, 'native/cuda/kernels', name), rewritten);
    if (name.endsWith('.cu') && !skip.has(name)) sources.push(join(out, 'native/cuda/kernels', name));
  }
  for (const name of readdirSync(here)) if (name.endsWith('.cc')) sources.push(join(here, name));
  const flags = ['-std=c++17', '-O1', '-g', '-pthread', '-fno-omit-frame-pointer', `-I${join(here, 'include')}`,
    '-Wall', '-Wno-unknown-pragmas', '-Wno-unused-function', '-Wno-unused-parameter', '-Wno-sign-compare'];
  if (sanitize === 'address') flags.push('-fsanitize=address,undefined', '-fno-sanitize-recover=undefined');
  if (sanitize === 'thread') flags.push('-fsanitize=thread');
  const objects = [];
  const jobs = [];
  // the newest header a source here may include: ours, and the project's (ops.h, bf16.h, ...)
  const nativeHeaders = readdirSync(join(root, 'native'), { recursive: true }).filter((f) => /\.(h|cuh)$/.test(f)).map((f) => join(root, 'native', f));
  const headers = Math.max(...[...readdirSync(join(here, 'include')).map((f) => join(here, 'include', f)), join(here, 'harness.h'), ...nativeHeaders].map((f) => statSync(f).mtimeMs));
  for (const src of sources) {
    const obj = join(out, src.replace(/[\\/]/g, '_').replace(/\.(cu|cc)$/, '') + '.o');
    objects.push(obj);
    // The copied kernels are rewritten on every build; our own sources are rebuilt when newer
    // than their object, or when a header they may include changed.
    const fresh = !src.startsWith(out) && existsSync(obj) && statSync(obj).mtimeMs > Math.max(statSync(src).mtimeMs, headers);
    // The kernels are built the way nvcc builds them in one respect that changes results:
    // a * b + c contracted into one fused multiply-add (nvcc's default --fmad=true), so a kernel
    // that promises the CPU's roundings bit for bit must say so in its code (__dmul_rn, ...).
    // (-fexpensive-optimizations is the part of -O2 that forms FMAs; the whole of -O2 made
    // GCC 12's UBSan report the thread-local `emu::t` as a null pointer.)
    const kernelFlags = src.startsWith(out) && fma ? ['-fexpensive-optimizations', '-mfma', '-ffp-contract=fast'] : [];
    if (!fresh) jobs.push([...flags, ...kernelFlags, '-x', 'c++', '-c', src, '-o', obj]);
  }
  const width = Math.max(1, Math.min(cpus().length, 4));
  runParallel(jobs, width);
  const exe = join(out, 'emu-kernels');
  execFileSync(cxx, [...flags, ...objects, '-o', exe], { stdio: 'inherit' });
  return { exe, kernels: sources.filter((s) => s.endsWith('.cu')).length, launches };
}

export function runParallel(jobs, width, cxx = process.env.CXX || 'g++') {
  // Plain compiles, `width` at a time, through a tiny shell pipeline (keeps this script sync).
  for (let i = 0; i < jobs.length; i += width) {
    const batch = jobs.slice(i, i + width);
    const script = batch.map((j) => [cxx, ...j].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ') + ' &').join('\n') +
      '\nfail=0; for p in $(jobs -p); do wait $p || fail=1; done; exit $fail';
    const r = spawnSync('bash', ['-c', script], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('emulator build failed');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { exe, kernels, launches } = build();
  console.log(`emu: ${kernels} kernel files, ${launches} launches rewritten, sanitizer ${sanitize}, ` +
    (fma ? 'a * b + c contracted to FMA as nvcc does' : 'no FMA on this CPU: products and sums rounded apart'));
  const env = { ...process.env };
  if (sanitize === 'thread') env.TSAN_OPTIONS = `halt_on_error=1 exitcode=66 ${env.TSAN_OPTIONS ?? ''}`;
  if (sanitize === 'address') env.ASAN_OPTIONS = `detect_leaks=1 ${env.ASAN_OPTIONS ?? ''}`;
  let r = spawnSync(exe, filters, { encoding: 'utf8', env, maxBuffer: 256 << 20 });
  // Older ThreadSanitizers (GCC 12's) refuse the address layout of kernels with more mmap
  // randomisation ("unexpected memory mapping"): rerun once without randomisation.
  if (sanitize === 'thread' && /unexpected memory mapping/.test(`${r.stderr}`)) {
    console.log('emu: ThreadSanitizer refused the memory layout; rerunning under setarch -R');
    r = spawnSync('setarch', [process.arch === 'arm64' ? 'aarch64' : 'x86_64', '-R', exe, ...filters],
      { encoding: 'utf8', env, maxBuffer: 256 << 20 });
  }
  process.stdout.write(r.stdout ?? '');
  process.stderr.write(r.stderr ?? '');
  if (r.error) throw r.error;
  process.exit(r.status ?? 1);
}
