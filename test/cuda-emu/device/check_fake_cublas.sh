#!/bin/sh
# Builds the stand-in cuBLAS (fake_cublas.cc) as cublas_loader.cc finds it (libcublas.so.13
# needing libcublasLt.so.13, in one folder) over the trivial device of
# fake_cublas_stub_device.cc, and runs fake_cublas_check.cc against it.
#   sh test/cuda-emu/device/check_fake_cublas.sh [OUT_DIR]   (default: a temporary folder)
set -eu
cd "$(dirname "$0")/../../.."
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
D=test/cuda-emu/device
CXX=${CXX:-g++}
FLAGS="-std=c++17 -O2 -Wall -Wextra -fPIC -I native/cuda/dynload -I $D"
$CXX $FLAGS -shared -Wl,-soname,libcudaemu.so $D/fake_cublas_stub_device.cc -o "$OUT/libcudaemu.so"
$CXX $FLAGS -shared -DFAKE_CUBLAS_PART=2 -Wl,-soname,libcublasLt.so.13 $D/fake_cublas.cc \
  -o "$OUT/libcublasLt.so.13" -L"$OUT" -lcudaemu -Wl,-rpath,'$ORIGIN'
$CXX $FLAGS -shared -DFAKE_CUBLAS_PART=1 -Wl,-soname,libcublas.so.13 $D/fake_cublas.cc \
  -o "$OUT/libcublas.so.13" -Wl,--no-as-needed "$OUT/libcublasLt.so.13" -Wl,--as-needed -L"$OUT" -lcudaemu \
  -Wl,-rpath,'$ORIGIN'
$CXX $FLAGS $D/fake_cublas_check.cc -o "$OUT/fake_cublas_check" -L"$OUT" -lcudaemu -ldl -Wl,-rpath,"$OUT"
"$OUT/fake_cublas_check" "$OUT"
