#!/usr/bin/env bash
# Compares our NCCL declarations (native/dist/nccl_api.h) with the real <nccl.h> where it exists:
# compiles native/dist/nccl_abi_check.cc (static_asserts: enum values, sizes and underlying
# types, ncclComm_t, ncclUniqueId's size, every function type) and runs it; when a libnccl.so.2
# sits beside the header (the wheel layout: nvidia/nccl/{include,lib}) or ALEXNET_NCCL_PATH names
# one, it also loads it and checks its symbols and that ncclGetVersion() is the header's version.
# No GPU is needed.
#
#   scripts/check-nccl-abi.sh   exit 0: checked ("nccl-abi: OK ...") or skipped ("nccl-abi: SKIP ...":
#                               no nccl.h, or no cuda_runtime.h for it to include); exit 1: mismatch
# Header search (first folder holding nccl.h wins): $NCCL_INCLUDE (when set, the only place),
# $NCCL_HOME/include,
# $CUDA_HOME/include, $CUDA_PATH/include, /usr/local/cuda/include, /usr/include, then
# nvidia/nccl/include in the Python site-packages folders. cuda_runtime.h: $ALEXNET_CUDA_INCLUDE,
# the toolkit folders, nvidia/cuda_runtime/include, nvidia/cu13/include.
# ALEXNET_NCCL_ABI_SOURCE: the checker compiled (default native/dist/nccl_abi_check.cc; it includes
# the nccl_api.h beside it — test/nccl-abi.test.ts points it at a copy broken on purpose).
set -u
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source="${ALEXNET_NCCL_ABI_SOURCE:-$root/native/dist/nccl_abi_check.cc}"
cxx="${CXX:-g++}"

sites=()
for pat in "${ALEXNET_PYTHON_SITE:-/nonexistent}" "${VIRTUAL_ENV:-/nonexistent}"/lib/python3*/site-packages \
           "${CONDA_PREFIX:-/nonexistent}"/lib/python3*/site-packages "${HOME:-/nonexistent}"/.local/lib/python3*/site-packages \
           /usr/local/lib/python3*/dist-packages /usr/local/lib/python3*/site-packages /usr/lib/python3/dist-packages \
           /opt/conda/lib/python3*/site-packages; do
  [ -d "$pat" ] && sites+=("$pat")
done

toolkit=()
for v in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do [ -n "$v" ] && toolkit+=("$v/include"); done

nccl_dirs=()
if [ -n "${NCCL_INCLUDE:-}" ]; then
  nccl_dirs+=("$NCCL_INCLUDE")
else
  [ -n "${NCCL_HOME:-}" ] && nccl_dirs+=("$NCCL_HOME/include")
  nccl_dirs+=("${toolkit[@]}" /usr/include)
  for s in "${sites[@]}"; do nccl_dirs+=("$s/nvidia/nccl/include"); done
fi
nccl_inc=""
for d in "${nccl_dirs[@]}"; do [ -f "$d/nccl.h" ] && { nccl_inc="$d"; break; }; done
if [ -z "$nccl_inc" ]; then
  echo "nccl-abi: SKIP: nccl.h not found (looked in: ${nccl_dirs[*]}); set NCCL_INCLUDE to its folder"
  exit 0
fi

cuda_dirs=()
[ -n "${ALEXNET_CUDA_INCLUDE:-}" ] && cuda_dirs+=("$ALEXNET_CUDA_INCLUDE")
cuda_dirs+=("${toolkit[@]}")
for s in "${sites[@]}"; do cuda_dirs+=("$s/nvidia/cuda_runtime/include" "$s/nvidia/cu13/include"); done
cuda_inc=""
for d in "${cuda_dirs[@]}"; do [ -f "$d/cuda_runtime.h" ] && { cuda_inc="$d"; break; }; done
if [ -z "$cuda_inc" ]; then
  echo "nccl-abi: SKIP: $nccl_inc/nccl.h found, but not the cuda_runtime.h it includes (looked in: ${cuda_dirs[*]}); set ALEXNET_CUDA_INCLUDE"
  exit 0
fi

# The library to load: ALEXNET_NCCL_PATH (a file or a folder), else the one beside the header.
lib=""
if [ -n "${ALEXNET_NCCL_PATH:-}" ]; then
  if [ -d "$ALEXNET_NCCL_PATH" ]; then lib="$ALEXNET_NCCL_PATH/libnccl.so.2"; else lib="$ALEXNET_NCCL_PATH"; fi
elif [ -f "$nccl_inc/../lib/libnccl.so.2" ]; then
  lib="$(cd "$nccl_inc/../lib" && pwd)/libnccl.so.2"
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "nccl-abi: comparing $(dirname "$source")/nccl_api.h with $nccl_inc/nccl.h (CUDA headers: $cuda_inc)"
if ! "$cxx" -std=c++17 -Wall -I"$nccl_inc" -I"$cuda_inc" "$source" -o "$out/nccl_abi_check" -ldl; then
  echo "nccl-abi: MISMATCH between our declarations and nccl.h (see the static_assert messages above)"
  exit 1
fi
[ -n "$lib" ] || echo "nccl-abi: no libnccl.so.2 beside the header and ALEXNET_NCCL_PATH unset: the library is not loaded"
ALEXNET_NCCL_ABI_LIBRARY="$lib" "$out/nccl_abi_check"
