#!/usr/bin/env bash
# Compares our own cuDNN / cuBLAS declarations (native/cuda/dynload/*.h) with NVIDIA's real
# headers, where they exist, by compiling native/cuda/abi_check.cc with `g++ -fsyntax-only`:
# every enum value, enum size and underlying type, handle type, perf-struct size / offset /
# field type, and every function-pointer type (our enums mapped onto the real ones) must be
# identical, or the compile fails naming the item.
#
#   scripts/check-abi.sh        exit 0: checked (or skipped: headers not found); exit 1: mismatch
#
# Header search (first folder holding the header wins):
#   cuDNN   cudnn.h       $ALEXNET_CUDNN_INCLUDE, $CUDNN_INCLUDE_DIR, $CUDA_HOME/include,
#                         $CUDA_PATH/include, /usr/local/cuda/include, /usr/include,
#                         /usr/include/<arch>-linux-gnu, the nvidia.cudnn Python package's include/,
#                         nvidia/cudnn/include and nvidia/cu13/include in site-packages folders
#   cuBLAS  cublas_v2.h   $ALEXNET_CUBLAS_INCLUDE, the toolkit folders above, the nvidia.cublas
#                         package, nvidia/cu13/include and nvidia/cublas/include
#   CUDA    library_types.h + driver_types.h (needed by both): $ALEXNET_CUDA_INCLUDE, toolkit
#           folders, nvidia/cuda_runtime/include, nvidia/cu13/include
# With only the CUDA runtime headers (as on the build machines), the two enums cublas_api.h
# borrows from library_types.h (cudaDataType_t, libraryPropertyType) and cudaStream_t are still
# checked, and cuDNN / cuBLAS are reported as skipped.
set -u
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cxx="${CXX:-g++}"
arch="$(uname -m)"

# Python site-packages folders (this is a developer script: running python3 is fine here).
sites=()
if command -v python3 >/dev/null 2>&1; then
  while IFS= read -r d; do [ -n "$d" ] && sites+=("$d"); done < <(
    python3 - <<'PY' 2>/dev/null
import site, sys
seen = []
for p in list(getattr(site, "getsitepackages", lambda: [])()) + [site.getusersitepackages()] + sys.path:
    if p and p.endswith(("site-packages", "dist-packages")) and p not in seen:
        seen.append(p)
print("\n".join(seen))
PY
  )
fi
for pat in "${VIRTUAL_ENV:-/nonexistent}"/lib/python3*/site-packages "${CONDA_PREFIX:-/nonexistent}"/lib/python3*/site-packages \
           /usr/local/lib/python3*/dist-packages /usr/local/lib/python3*/site-packages /usr/lib/python3/dist-packages \
           /opt/conda/lib/python3*/site-packages; do
  [ -d "$pat" ] && sites+=("$pat")
done

# Package folders reported by Python itself (namespace packages: use __path__).
pkg_include() {
  command -v python3 >/dev/null 2>&1 || return 0
  python3 -c "import importlib, sys; m = importlib.import_module(sys.argv[1]); print(list(m.__path__)[0] + '/include')" "$1" 2>/dev/null || true
}

toolkit=()
for v in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do [ -n "$v" ] && toolkit+=("$v/include"); done
toolkit+=(/usr/include "/usr/include/${arch}-linux-gnu")

# find_header VAR HEADER DIR...: sets VAR to the first DIR holding HEADER; appends to looked_VAR.
find_header() {
  local var="$1" header="$2"
  shift 2
  local looked=""
  for d in "$@"; do
    [ -n "$d" ] || continue
    looked="${looked:+$looked, }$d"
    if [ -f "$d/$header" ]; then
      printf -v "$var" '%s' "$d"
      printf -v "looked_$var" '%s' "$looked"
      return 0
    fi
  done
  printf -v "$var" '%s'
  printf -v "looked_$var" '%s' "$looked"
  return 1
}

site_dirs() {  # site_dirs SUBDIR...: every site-packages/SUBDIR
  for s in "${sites[@]+"${sites[@]}"}"; do for sub in "$@"; do echo "$s/$sub"; done; done
}
mapfile -t cudnn_sites < <(site_dirs nvidia/cudnn/include nvidia/cu13/include)
mapfile -t cublas_sites < <(site_dirs nvidia/cu13/include nvidia/cublas/include)
mapfile -t cudart_sites < <(site_dirs nvidia/cu13/include nvidia/cuda_runtime/include)

find_header cudnn_dir cudnn.h "${ALEXNET_CUDNN_INCLUDE:-}" "${CUDNN_INCLUDE_DIR:-}" "${toolkit[@]}" \
  "$(pkg_include nvidia.cudnn)" "${cudnn_sites[@]+"${cudnn_sites[@]}"}"
find_header cublas_dir cublas_v2.h "${ALEXNET_CUBLAS_INCLUDE:-}" "${toolkit[@]}" \
  "$(pkg_include nvidia.cublas)" "${cublas_sites[@]+"${cublas_sites[@]}"}"
find_header cudart_dir library_types.h "${ALEXNET_CUDA_INCLUDE:-}" "${toolkit[@]}" \
  "$(pkg_include nvidia.cuda_runtime)" "${cudart_sites[@]+"${cudart_sites[@]}"}"

trim() {  # at most 8 places, then a count
  local IFS=',' n=0 out="" rest=0
  for p in $1; do
    p="${p# }"
    if [ $n -lt 8 ]; then out="${out:+$out, }$p"; n=$((n + 1)); else rest=$((rest + 1)); fi
  done
  [ $rest -gt 0 ] && out="$out, and $rest more"
  echo "$out"
}

defs=()
incs=(-I "$root/native/cuda")
what=()
if [ -n "$cudart_dir" ]; then
  defs+=(-DALEXNET_CHECK_LIBRARY_TYPES)
  incs+=(-I "$cudart_dir")
  what+=("CUDA runtime headers in $cudart_dir")
fi
# use_library NAME DEFINE DIR VERSION_HEADER VERSION_MACROS LOOKED: with DIR found (and the CUDA
# runtime headers, which every library check needs), compile NAME's checks against DIR and name its
# version (VERSION_MACROS: a sed group of the major, minor and patch macros in VERSION_HEADER);
# without, say where it was looked for.
use_library() {
  local name="$1" define="$2" dir="$3" version_header="$4" version_macros="$5" looked="$6" ver
  if [ -n "$dir" ] && [ -n "$cudart_dir" ]; then
    defs+=("$define")
    incs+=(-I "$dir")
    ver="$(sed -n 's/^#define '"$version_macros"' *\([0-9]*\).*/\2/p' "$dir/$version_header" 2>/dev/null | paste -sd. -)"
    what+=("$name ${ver:-?} headers in $dir")
  else
    echo "skipped: $name headers not found (looked in $(trim "$looked"))"
  fi
}
use_library cuDNN -DALEXNET_CHECK_CUDNN "$cudnn_dir" cudnn_version.h 'CUDNN_\(MAJOR\|MINOR\|PATCHLEVEL\)' "$looked_cudnn_dir"
use_library cuBLAS -DALEXNET_CHECK_CUBLAS "$cublas_dir" cublas_api.h 'CUBLAS_VER_\(MAJOR\|MINOR\|PATCH\)' "$looked_cublas_dir"
if [ -z "$cudart_dir" ]; then
  echo "skipped: headers not found (no CUDA runtime library_types.h; looked in $(trim "$looked_cudart_dir"))"
  exit 0
fi

if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "skipped: no C++ compiler ($cxx)"
  exit 0
fi

# What will be checked, counted from the same X-lists the compile walks.
listing="$("$cxx" -std=c++17 -E -P -DALEXNET_ABI_LIST "${defs[@]}" "${incs[@]}" "$root/native/cuda/abi_check.cc" 2>/dev/null)"
count() { grep -o "abi_item $1 [A-Za-z0-9_]*" <<<"$listing" | wc -l | tr -d ' '; }
summary="$(count enum) enums with $(count enumerator) values, $(count handle) handle types, $(count struct) perf structs, $(count function) function types"

joined="$(printf '%s; ' "${what[@]}")"
echo "check-abi: comparing native/cuda/dynload with ${joined%; }"
if "$cxx" -std=c++17 -fsyntax-only -Wall "${defs[@]}" "${incs[@]}" "$root/native/cuda/abi_check.cc"; then
  echo "check-abi: OK: $summary match"
  exit 0
fi
echo "check-abi: MISMATCH between our declarations and the real headers (see the static_assert messages above)"
exit 1
