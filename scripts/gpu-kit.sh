#!/usr/bin/env bash
# Packs what the GPU check needs on a machine with a GPU but no network, no npm and maybe no
# Node.js: the built addon (CUDA compiled in), the compiled TypeScript, the packages the tests
# need (the package's dependencies, vitest, node-addon-api and onnxruntime-node's linux-x64 build,
# node-gyp for the install-step test, with their dependencies) and a Node binary, so the whole
# suite runs there.
# Output: .gpu-kit/kit.tar.xz (well under 64 MiB). Then, on the GPU machine, from a copy of
# the working tree with .gpu-kit beside it:   bash scripts/gpu-check.sh 1   (then 2)
#
#   bash scripts/gpu-kit.sh [--archs 90]    # default: the full architecture list (75;80;86;89;90)
#
# The addon is built by cmake-js into its own folder, build/kit/ (ignored, like build/), so a
# one-architecture kit never replaces the developer's build/Release/alexnet.node; inside the kit
# it becomes build/Release/alexnet.node, where the loader looks. dist/ is compiled as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
archs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --archs) archs="${2:?--archs needs a list, e.g. 90 or \"80;90\"}"; shift 2 ;;
    --archs=*) archs="${1#--archs=}"; shift ;;
    *) echo "gpu-kit.sh: unknown argument '$1' (usage: bash scripts/gpu-kit.sh [--archs 90])" >&2; exit 2 ;;
  esac
done
want="${archs:-75;80;86;89;90}"
addon=build/kit/Release/alexnet.node

# CMake reads ALEXNET_CUDA_ARCHS when it configures, and `cmake-js compile` reconfigures only a
# fresh folder: a kit folder configured for other architectures is rebuilt from scratch.
build() { ALEXNET_CUDA_ARCHS="$want" npx cmake-js "$1" --out build/kit >/tmp/gpu-kit-build.log 2>&1 || { tail -40 /tmp/gpu-kit-build.log; exit 1; }; }
# prints the addon's architectures when they are exactly the wanted ones, else nothing
archs_ok() {
  [ -f "$addon" ] || return 1
  WANT="$want" node -e "
    const a = require('./$addon').info().cuda.architectures || '';
    const sm = (a.match(/sm_\d+/g) || []).map((s) => s.slice(3)).sort().join(';');
    const want = process.env.WANT.split(/[;, ]+/).filter(Boolean).map((s) => s.replace(/-.*/, '')).sort().join(';');
    if (sm !== want) process.exit(1);
    console.log(a);"
}
t0=$SECONDS
build compile
if ! archs_ok >/dev/null; then
  echo "build/kit was configured for other architectures: rebuilding it for $want"
  build rebuild
fi
node -e "const i=require('./$addon').info(); if(!i.cuda.compiled){console.error('the addon has no CUDA code: is nvcc on PATH?');process.exit(1)}"
echo "addon: $addon, CUDA architectures: $(archs_ok || echo "NOT the requested $want")"
npx tsc -p tsconfig.json
echo "built in $((SECONDS - t0)) s"

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
# The node binary rides in the archive as .gpu-kit/bin/node (a regular file, not a link).
stage=$(mktemp -d)
trap 'rm -rf "$stage" .gpu-kit.list' EXIT
mkdir -p "$stage/.gpu-kit/bin" .gpu-kit
cp -L "$(command -v node)" "$stage/.gpu-kit/bin/node"
node -p "process.version" > "$stage/.gpu-kit/node-version"
rm -f .gpu-kit/kit.tar.xz .gpu-kit/kit.tar.xz.tmp
# onnxruntime-node carries every platform's binaries (288 MB): keep linux-x64's only
tar -cf - --exclude='node_modules/onnxruntime-node/bin/napi-v*/darwin' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/linux/arm64' \
  --transform="s,^$addon\$,build/Release/alexnet.node," \
  -T .gpu-kit.list dist "$addon" -C "$stage" .gpu-kit/bin/node .gpu-kit/node-version | xz -T0 -6 > .gpu-kit/kit.tar.xz.tmp
mv .gpu-kit/kit.tar.xz.tmp .gpu-kit/kit.tar.xz
size=$(stat -c %s .gpu-kit/kit.tar.xz)
[ "$size" -lt $((60 * 1024 * 1024)) ] || { echo "the kit is $size bytes: over the 60 MiB this script allows (the carry limit is 64 MiB)"; exit 1; }
ls -la .gpu-kit/kit.tar.xz
echo "kit ready in $((SECONDS - t0)) s; carry .gpu-kit, then run: bash scripts/gpu-check.sh 1 (then 2; 3 and 4 in a later lease)"
