#!/usr/bin/env bash
# Compares our Open MPI declarations (native/dist/mpi_api.h) with the real <mpi.h> and libmpi,
# where they exist: compiles native/dist/abi_check.cc with the flags of `mpicc --showme:compile`
# / `--showme:link` (static_asserts: constants, handle types, function types, predefined
# objects), then runs it (predefined handles are the addresses of the exported globals,
# MPI_IN_PLACE, the soname). MPI is not initialised.
#
#   scripts/check-mpi-abi.sh   exit 0: checked ("mpi-abi: OK ...") or skipped ("mpi-abi: SKIP ...",
#                              no mpicc / no mpi.h); exit 1: mismatch or build failure
# ALEXNET_MPICC overrides the compiler wrapper used to find the flags (default: mpicc);
# ALEXNET_MPI_ABI_SOURCE the checker compiled (default native/dist/abi_check.cc; it includes
# the mpi_api.h beside it — test/mpi-abi.test.ts points it at a copy with a declaration broken
# on purpose, to see the check fail).
set -u
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source="${ALEXNET_MPI_ABI_SOURCE:-$root/native/dist/abi_check.cc}"
cxx="${CXX:-g++}"
mpicc="${ALEXNET_MPICC:-mpicc}"

if ! command -v "$mpicc" >/dev/null 2>&1; then
  echo "mpi-abi: SKIP: $mpicc not found (Debian/Ubuntu: apt-get install libopenmpi-dev)"
  exit 0
fi
compile_flags="$("$mpicc" --showme:compile 2>/dev/null)" || compile_flags=""
link_flags="$("$mpicc" --showme:link 2>/dev/null)" || link_flags=""
if [ -z "$link_flags" ]; then
  echo "mpi-abi: SKIP: $mpicc does not answer --showme:link (not Open MPI's wrapper: MPICH's ABI is not supported)"
  exit 0
fi
header=""
for flag in $compile_flags; do
  case "$flag" in -I*) [ -f "${flag#-I}/mpi.h" ] && { header="${flag#-I}/mpi.h"; break; } ;; esac
done
if [ -z "$header" ]; then
  echo "mpi-abi: SKIP: no mpi.h in the include folders of $mpicc --showme:compile ($compile_flags)"
  exit 0
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "mpi-abi: comparing $(dirname "$source")/mpi_api.h with $header"
# shellcheck disable=SC2086
if ! "$cxx" -std=c++17 -Wall $compile_flags "$source" \
     -o "$out/abi_check" $link_flags -ldl; then
  echo "mpi-abi: MISMATCH between our declarations and mpi.h (see the static_assert messages above)"
  exit 1
fi
"$out/abi_check"
