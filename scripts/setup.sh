#!/usr/bin/env bash
# Set-up on a fresh machine: the system packages the build wants (when we are root and have
# apt-get), then `npm ci`, whose install step builds the addon and whose prepare step compiles
# the TypeScript. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
command -v cmake >/dev/null || missing+=(cmake)
command -v python3 >/dev/null || missing+=(python3)
[ -n "$(node scripts/detect.mjs blas-include)" ] || missing+=(libopenblas-dev)
# Open MPI for distributed training (loaded at run time: the build does not need it; the tests
# run two ranks with mpirun and compare our declarations with mpi.h through mpicc)
command -v mpirun >/dev/null || missing+=(openmpi-bin)
command -v mpicc >/dev/null || missing+=(libopenmpi-dev)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing ${missing[*]} (install them for the full build; continuing without)" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -f build/Release/alexnet.node ] || [ ! -f dist/index.js ]; then
  # onnxruntime-node (a dev dependency: the ONNX cross-check) ships its CPU binary; skip its download step
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
fi
