#!/usr/bin/env bash
# Packs what the GPU check needs on a machine with a GPU but no network, no npm and maybe no
# Node.js: the built addon (CUDA compiled in), the compiled TypeScript, the packages the tests
# need (the package's dependencies, vitest, node-addon-api and onnxruntime-node's linux-x64 build,
# node-gyp for the install-step test, with their dependencies) and a Node binary, so the whole
# suite runs there.
# Output: .gpu-kit/kit.tar.xz (well under 64 MiB). Then, on the GPU machine, from a copy of
# the working tree with .gpu-kit beside it:   bash scripts/gpu-check.sh
#
#   bash scripts/gpu-kit.sh [--archs "90"]    # default: the full architecture list
set -euo pipefail
cd "$(dirname "$0")/.."
archs=""
[ "${1:-}" = "--archs" ] && archs="$2"

if [ -n "$archs" ]; then export ALEXNET_CUDA_ARCHS="$archs"; fi
npx cmake-js compile >/tmp/gpu-kit-build.log 2>&1 || { tail -40 /tmp/gpu-kit-build.log; exit 1; }
npx tsc -p tsconfig.json
node -e "const i=require('./build/Release/alexnet.node').info(); if(!i.cuda.compiled){console.error('the addon has no CUDA code: is nvcc on PATH?');process.exit(1)}"

# The dependency closure of what runs there.
node -e "
const fs = require('fs'), path = require('path');
const seen = new Set();
// Node's resolution: dep from a package at dir is dir/node_modules/dep, else the same in each
// parent folder's node_modules, up to the top.
function resolve(name, from) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const cand = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(cand, 'package.json'))) return cand;
    if (dir === '.' || dir === path.dirname(dir)) return null;
  }
}
function visit(name, from) {
  const dir = resolve(name, from);
  if (!dir || seen.has(dir)) return;
  seen.add(dir);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  for (const d of Object.keys({ ...pj.dependencies, ...(pj.optionalDependencies || {}) })) visit(d, dir);
}
// the package's own dependencies (sharp, commander, ...) and the dev packages the tests import
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));
[...Object.keys(pkg.dependencies), 'vitest', 'node-addon-api', 'node-gyp', 'onnxruntime-node'].forEach((d) => visit(d, '.'));
fs.writeFileSync('.gpu-kit.list', [...seen].join('\\n') + '\\n');
"
mkdir -p .gpu-kit/bin
cp "$(command -v node)" .gpu-kit/bin/node
node -p "process.version" > .gpu-kit/node-version
# onnxruntime-node carries every platform's binaries (288 MB): keep linux-x64's only
tar -cf - --exclude='node_modules/onnxruntime-node/bin/napi-v*/darwin' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/linux/arm64' \
  -T .gpu-kit.list dist build/Release/alexnet.node -C .gpu-kit bin node-version | xz -T0 -6 > .gpu-kit/kit.tar.xz
size=$(stat -c %s .gpu-kit/kit.tar.xz)
[ "$size" -lt $((60 * 1024 * 1024)) ] || { echo "the kit is $size bytes: over the 60 MiB this script allows (the carry limit is 64 MiB)"; exit 1; }
rm -rf .gpu-kit/bin .gpu-kit.list
ls -la .gpu-kit/kit.tar.xz
echo "carry .gpu-kit, then run: bash scripts/gpu-check.sh"
