#!/usr/bin/env node
// npm's install step for this package: use the prebuilt binary when one matches this platform
// and loads; otherwise build from source (cmake-js when it and CMake are present, as in a
// development checkout; node-gyp otherwise, which npm always carries).
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

const prebuildDir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
if (existsSync(prebuildDir) && process.env.ALEXNET_BUILD_FROM_SOURCE !== '1') {
  for (const f of readdirSync(prebuildDir).filter((f) => f.endsWith('.node'))) {
    try {
      require(join(prebuildDir, f));
      log(`using the prebuilt binary ${join('prebuilds', `${process.platform}-${process.arch}`, f)}`);
      process.exit(0);
    } catch (err) {
      log(`prebuilt ${f} does not load here (${String(err.message).split('\n')[0]}); building from source`);
    }
  }
}

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
const nodeGyp = process.env.npm_config_node_gyp;
const ok = nodeGyp ? run(process.execPath, [nodeGyp, 'rebuild']) : run('npx', ['--yes', 'node-gyp', 'rebuild']);
if (!ok) {
  console.error('alexnet-node: building the native addon failed. It needs a C++17 compiler, python3 and make ' +
    '(and optionally nvcc for CUDA, libopenblas-dev for a fast CPU backend). See the README, "Install".');
  process.exit(1);
}
