#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU and no network (see scripts/gpu-kit.sh):
#   1. versions: GPU, driver, CUDA, cuDNN, cuBLAS (ours and PyTorch's)
#   2. the whole test suite with the CUDA comparisons enabled (ALEXNET_TEST_CUDA=1)
#   3. the operator tests on CUDA under compute-sanitizer (memcheck)
#   4. the per-operator benchmark driven from C++ (bench/ops.mjs --device cuda), TF32 and strict FP32
#   5. the benchmark beside PyTorch (bench/gpu.mjs), TF32 and strict FP32
# Results go to bench/results/ and, when $OUT is set, to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/bench/results/gpu-check}"
mkdir -p "$OUT" bench/results
log() { printf '\n=== %s ===\n' "$*" | tee -a "$OUT/gpu-check.log"; }

if [ -f .gpu-kit/kit.tar.xz ]; then
  log "unpacking the kit"
  tar -xJf .gpu-kit/kit.tar.xz
  mkdir -p .gpu-kit/bin && [ -f bin/node ] && mv bin/node .gpu-kit/bin/node
fi
NODE=node
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then NODE="$PWD/.gpu-kit/bin/node"; fi
export PATH="$(dirname "$NODE"):$PATH"

# cuDNN and cuBLAS from the Python environment's nvidia/* wheels.
SITE=$(python3 -c 'import site, sys; print(":".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null || true)
export ALEXNET_PYTHON_SITE="${ALEXNET_PYTHON_SITE:-$SITE}"

log "versions"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || true
  nvcc --version 2>&1 | tail -1 || true
  "$NODE" --version
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1 || true
} | tee "$OUT/versions.txt"
"$NODE" bin/alexnet.js info --json | tee "$OUT/info.json"
"$NODE" bin/alexnet.js info

log "test suite (CPU and CUDA)"
ALEXNET_TEST_CUDA=1 "$NODE" node_modules/vitest/vitest.mjs run --reporter=default --reporter=json --outputFile="$OUT/tests.json" 2>&1 | tee "$OUT/tests.log" | tail -40
tests_rc=${PIPESTATUS[0]}

log "compute-sanitizer memcheck on the CUDA operator tests"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1 || true)
if [ -n "$SAN" ]; then
  ALEXNET_TEST_CUDA=1 "$SAN" --tool memcheck --leak-check no --error-exitcode 86 --target-processes all \
    "$NODE" node_modules/vitest/vitest.mjs run test/cuda-ops.test.ts 2>&1 | tee "$OUT/memcheck.log" | tail -30
  san_rc=${PIPESTATUS[0]}
else
  echo "compute-sanitizer not found" | tee "$OUT/memcheck.log"; san_rc=127
fi

log "per-operator benchmark on CUDA, C++-driven (TF32, then strict FP32)"
OUT="$OUT" "$NODE" bench/ops.mjs --device cuda 2>&1 | tee "$OUT/ops.log"
ops_rc=${PIPESTATUS[0]}
OUT="$OUT" "$NODE" bench/ops.mjs --device cuda --strict-fp32 2>&1 | tee -a "$OUT/ops.log"
ops_rc=$(( ops_rc || PIPESTATUS[0] ))

log "benchmark beside PyTorch (TF32, then strict FP32)"
OUT="$OUT" "$NODE" bench/gpu.mjs --batch 128 --compile 2>&1 | tee "$OUT/bench.log"
OUT="$OUT" "$NODE" bench/gpu.mjs --batch 128 --strict-fp32 2>&1 | tee -a "$OUT/bench.log"

log "summary: tests rc=$tests_rc, memcheck rc=$san_rc, ops benchmark rc=$ops_rc"
cp "$OUT"/versions.txt "$OUT"/info.json bench/results/ 2>/dev/null || true
exit $(( tests_rc != 0 || san_rc != 0 || ops_rc != 0 ))
