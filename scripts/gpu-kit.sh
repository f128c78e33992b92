#!/usr/bin/env bash
# Packs what the GPU check needs on a machine with a GPU but no network, no npm and maybe no
# Node.js: the built addon (CUDA compiled in), the compiled TypeScript, the packages the tests
# need (vitest and its dependencies, node-addon-api, bindings, commander) and a Node binary.
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
function visit(name) {
  const dir = path.join('node_modules', name);
  if (!fs.existsSync(dir) || seen.has(dir)) return;
  seen.add(dir);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  for (const d of Object.keys({ ...pj.dependencies, ...(pj.optionalDependencies || {}) })) visit(d);
}
['vitest', 'node-addon-api', 'bindings', 'commander'].forEach(visit);
fs.writeFileSync('.gpu-kit.list', [...seen].join('\n') + '\n');
"
mkdir -p .gpu-kit/bin
cp "$(command -v node)" .gpu-kit/bin/node
node -p "process.version" > .gpu-kit/node-version
tar -cf - -T .gpu-kit.list dist build/Release/alexnet.node -C .gpu-kit bin node-version | xz -T0 -6 > .gpu-kit/kit.tar.xz
rm -rf .gpu-kit/bin .gpu-kit.list
ls -la .gpu-kit/kit.tar.xz
echo "carry .gpu-kit, then run: bash scripts/gpu-check.sh"
