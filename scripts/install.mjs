#!/usr/bin/env node
// npm's install step for this package: use the prebuilt binary when one matches this platform
// and loads; otherwise build from source (cmake-js when it and CMake are present, as in a
// development checkout; node-gyp otherwise, which npm always carries). When the build fails it
// says what to install. test/install.test.ts and the source-fallback step of .ci/run check this.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const log = (msg) => console.log(`alexnet-node: ${msg}`);

if (process.env.ALEXNET_SKIP_BUILD === '1') {
  log('ALEXNET_SKIP_BUILD=1: not building the addon');
  process.exit(0);
}

const platform = `${process.platform}-${process.arch}`;
const prebuildDir = join(root, 'prebuilds', platform);
let why = '';
if (process.env.ALEXNET_BUILD_FROM_SOURCE === '1') {
  why = 'ALEXNET_BUILD_FROM_SOURCE=1';
} else if (existsSync(prebuildDir)) {
  for (const f of readdirSync(prebuildDir).filter((f) => f.endsWith('.node'))) {
    try {
      require(join(prebuildDir, f));
      log(`using the prebuilt binary ${join('prebuilds', platform, f)}`);
      process.exit(0);
    } catch (err) {
      log(`prebuilt ${f} does not load here (${String(err.message).split('\n')[0]})`);
      why = `the prebuilt binary for ${platform} does not load here`;
    }
  }
  why ||= `prebuilds/${platform}/ holds no binary`;
} else {
  const carried = existsSync(join(root, 'prebuilds')) ? readdirSync(join(root, 'prebuilds')).join(', ') : '';
  why = `no prebuilt binary for ${platform} (this package carries ${carried || 'none'})`;
}
log(`${why}: building from source`);

function run(cmd, args) {
  log(`${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: false });
  return r.status === 0;
}

const hasCmake = spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status === 0;
let cmakeJs = '';
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js');
} catch {
  cmakeJs = '';
}
if (hasCmake && cmakeJs) {
  if (run(process.execPath, [cmakeJs, 'compile'])) process.exit(0);
  log('cmake-js failed; trying node-gyp');
}
// What the node-gyp build will contain (binding.gyp asks scripts/detect.mjs the same questions).
const detect = (what) => spawnSync(process.execPath, [join(root, 'scripts', 'detect.mjs'), what], { encoding: 'utf8' }).stdout?.trim() ?? '';
if (!detect('cuda-home')) log('nvcc not found (or ALEXNET_CUDA=0): building the CPU backend only');
if (!detect('blas-lib')) log('OpenBLAS not found: CPU matrix products use the portable kernel (libopenblas-dev gives a faster one)');
// node-gyp builds one file at a time unless told otherwise; JOBS overrides the core count.
const gypArgs = ['rebuild', `--jobs=${process.env.JOBS || 'max'}`];
const nodeGyp = process.env.npm_config_node_gyp;
const ok = nodeGyp ? run(process.execPath, [nodeGyp, ...gypArgs]) : run('npx', ['--yes', 'node-gyp', ...gypArgs]);
if (!ok) {
  console.error(
    `alexnet-node: building the native addon from source failed (${why}).\n` +
      'The build (node-gyp) needs a C++17 compiler, make and python3, e.g.\n' +
      '  Debian/Ubuntu: sudo apt-get install g++ make python3\n' +
      '  Fedora/RHEL:   sudo dnf install gcc-c++ make python3\n' +
      "and Node's headers, which node-gyp downloads (offline: set npm_config_nodedir to a folder with include/node).\n" +
      'Optional: the CUDA toolkit (nvcc) for the GPU backend (without it the build is CPU-only), and libopenblas-dev\n' +
      'for fast CPU matrix products. Then run the install again. To install without building (an addon given\n' +
      'through ALEXNET_ADDON instead), set ALEXNET_SKIP_BUILD=1. See the README, "Install".',
  );
  process.exit(1);
}
