#!/usr/bin/env bash
# A rehearsal of the GPU check on this machine, which has no GPU: the four stages of
# scripts/gpu-check.sh run in a scratch copy of what would travel to the GPU machine (tracked and
# untracked-not-ignored files, plus .gpu-kit/), with no node on PATH but the kit's (PyTorch only if the system python3 has it),
# and a scratch $OUT, and this script checks what the GPU machine will enforce and what the
# check promises:
#   - tree + kit under 64 MiB; at most 8 result files, each under 16 MiB, names of letters,
#     digits, '.', '_' and '-', at most 2 folders deep
#   - stage 1 ends red (non-zero) with "CUDA unavailable: <reason>" in its first lines of output
#     and at the top of summary.md, the library search report and versions in the summary, and
#     every CUDA test failing (ALEXNET_REQUIRE_CUDA=1) instead of skipping
#   - stages 2 and 3 end red with their reason, every step reported; the NCCL step (stage 3)
#     says "skipped: no GPU" without failing
#   - stage 4 runs the whole suite from the kit: its only failures are those CUDA tests
#   - GPU_CHECK_ONLY runs only the steps named (and the set-up steps)
#   - bench/gpu.mjs's own logic (every variant, the graph rows, the goals) on the CPU
#   - a step that hangs is killed by its timeout, the steps after it still run, and the summary
#     says so; a check killed by SIGTERM still leaves its summary and archive
#   - without node at all (no kit), the summary is still written (by bash)
# About 8 minutes on a 2-core machine, most of it stage 4's whole suite.
#
#   bash scripts/gpu-kit.sh --archs 90 && bash scripts/gpu-rehearse.sh [--keep]
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
T0=$SECONDS
MiB=$((1024 * 1024))
fails=0
ok() { printf '  ok   %s\n' "$*"; }
bad() { printf '  FAIL %s\n' "$*"; fails=$((fails + 1)); }
expect() { # expect "what" command...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
[ -f .gpu-kit/kit.tar.xz ] || { echo "no .gpu-kit/kit.tar.xz: run bash scripts/gpu-kit.sh --archs 90 first"; exit 1; }

S=$(mktemp -d "${TMPDIR:-/tmp}/gpu-rehearse.XXXXXX")
cleanup() { if [ "$KEEP" = 1 ]; then echo "scratch kept: $S"; else rm -rf "$S"; fi; }
trap cleanup EXIT

echo "=== what would travel: tracked + untracked-not-ignored files, and .gpu-kit/ ==="
# sizes as stored: a link counts as a link (lstat)
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done > "$S/files"
tree_bytes=$(xargs -0 -r stat -c %s < "$S/files" | awk '{s += $1} END {print s + 0}')
kit_bytes=$(find .gpu-kit -type f -print0 | xargs -0 -r stat -c %s | awk '{s += $1} END {print s + 0}')
total=$((tree_bytes + kit_bytes))
awk -v n="$(tr -cd '\0' < "$S/files" | wc -c)" -v t="$tree_bytes" -v k="$kit_bytes" -v m="$MiB" \
  'BEGIN { printf "  tree %d files, %.1f MiB; .gpu-kit %.1f MiB; together %.1f MiB (limit 64 MiB)\n", n, t / m, k / m, (t + k) / m }'
expect "tree + kit under 64 MiB" [ "$total" -le $((64 * MiB)) ]

# The copy: what travels, with node_modules (here perhaps a link to another checkout) as the
# dangling link it would be there.
mkdir -p "$S/tree" "$S/tmp"
tar --null -T "$S/files" -cf - | tar -xf - -C "$S/tree"
cp -a .gpu-kit "$S/tree/"
if [ -L "$S/tree/node_modules" ]; then ln -sfn /nonexistent/node_modules "$S/tree/node_modules"; fi
[ -e "$S/tree/node_modules" ] && { echo "the copy has a node_modules folder: it would travel; ignore it"; exit 1; }
# A PATH with every system tool but node (and npm, npx, ...): only the kit's node will exist.
# Nor xz: the GPU machine may lack it, and the check's fallback (Python's lzma) is the path to
# rehearse.
mkdir -p "$S/sysbin"
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
  for f in "$d"/*; do
    n=${f##*/}
    case "$n" in node | nodejs | npm | npx | corepack | yarn | yarnpkg | pnpm | pnpx | xz | unxz | xzcat) continue ;; esac
    [ -x "$f" ] && [ ! -e "$S/sysbin/$n" ] && ln -s "$f" "$S/sysbin/$n"
  done
done
expect "no node on the rehearsal's PATH" bash -c "! PATH='$S/sysbin' command -v node >/dev/null"

# runs the check in the copy, as the GPU machine would: a bare environment, a scratch $OUT;
# sets rc (its exit status) and secs (how long it took)
check() { # check OUTDIR LOG ENV... -- ARGS
  local out=$1 log=$2 t=$SECONDS
  shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  mkdir -p "$out"
  (cd "$S/tree" && env -i HOME="$S/home" PATH="$S/sysbin" TMPDIR="$S/tmp" LANG=C.UTF-8 OUT="$out" GPU_CHECK_TIME_SCALE=3 "${envs[@]}" \
    bash scripts/gpu-check.sh "$@") > "$log" 2>&1
  rc=$?
  secs=$((SECONDS - t))
}
# what the GPU machine takes back from $OUT
check_out() { # check_out OUTDIR
  local out=$1 n big odd deep
  n=$(find "$out" -type f | wc -l)
  big=$(find "$out" -type f -size +$((16 * MiB - 1))c | wc -l)
  odd=$(find "$out" -mindepth 1 | sed "s|^$out/||" | tr '/' '\n' | grep -cv '^[A-Za-z0-9._-]*$')
  deep=$(find "$out" -mindepth 4 | wc -l)
  local good=0
  [ "$n" -ge 2 ] && [ "$n" -le 8 ] && [ "$big" -eq 0 ] && [ "$odd" -eq 0 ] && [ "$deep" -eq 0 ] && good=1
  expect "${out##*/}: $n files (2 to 8), over 16 MiB: $big, odd names: $odd, deeper than 2 folders: $deep" [ "$good" = 1 ]
  good=0
  [ -s "$out/summary.md" ] && tar -tzf "$out"/gpu-check-*.tar.gz > /dev/null 2>&1 && good=1
  expect "${out##*/}: summary.md and a readable archive" [ "$good" = 1 ]
}
has() { grep -q -- "$2" "$1"; }
# json FILE EXPRESSION: evaluates EXPRESSION over the parsed FILE (as r) with this machine's node
json() { node -e "const r = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')); process.exit((${2}) ? 0 : 1)" "$1"; }
archive_has() { tar -tzf "$1" | grep -q -- "$2"; }
extract() { mkdir -p "$2" && tar -xzf "$1" -C "$2"; }

echo "=== stage 1 (expected: red, CUDA unavailable) ==="
check "$S/out1" "$S/stage1.txt" -- 1
s1=$secs
echo "  stage 1: exit status $rc in $s1 s; its first lines:"
head -n 16 "$S/stage1.txt" | cut -c1-160 | sed 's/^/  | /'
expect "stage 1 exits non-zero" [ "$rc" -ne 0 ]
expect "'CUDA unavailable: <reason>' in the first 20 lines of output" bash -c "head -n 20 '$S/stage1.txt' | grep -q 'CUDA unavailable: .'"
expect "summary.md starts red with 'CUDA unavailable: <reason>'" bash -c "head -n 1 '$S/out1/summary.md' | grep -q 'stage 1: RED' && head -n 6 '$S/out1/summary.md' | grep -q -- '- CUDA unavailable: .'"
check_out "$S/out1"
for sec in '## Versions' '## Steps' '## Tests' '### Failures' '## CUDA library search'; do expect "summary.md has $sec" has "$S/out1/summary.md" "$sec"; done
expect "the kit was unpacked and its node ran the steps" bash -c "grep -q '^| kit | ok' '$S/out1/summary.md' && grep -q '^| node | v' '$S/out1/summary.md'"
# PyTorch: its version where the rehearsal's python3 has it (Debian's python3-torch, the CPU bench
# peer, on a developer's machine), else the reason it is missing; either way the summary says which
if env -i HOME="$S/home" PATH="$S/sysbin" python3 -c 'import torch' > /dev/null 2>&1; then
  expect "PyTorch's version is reported" bash -c "grep -q '^| torch | [0-9]' '$S/out1/summary.md'"
else
  expect "the missing PyTorch is reported" has "$S/out1/summary.md" "No module named 'torch'"
fi
# bench/torch_alexnet.py's logic (every variant measured and reported) on the CPU, its CUDA calls
# stubbed: a slip there would otherwise cost the GPU check its PyTorch figures
if env -i HOME="$S/home" PATH="$S/sysbin" python3 -c 'import torch' > /dev/null 2>&1; then
  env -i HOME="$S/home" PATH="$S/sysbin" python3 scripts/rehearse-torch-bench.py > "$S/torch-bench.json" 2> "$S/torch-bench.err"
  expect "bench/torch_alexnet.py (CUDA stubbed): eager, bf16 channels-last, and both compiled, measured" \
    json "$S/torch-bench.json" "['bf16', 'compiled', 'compiledBf16'].every((k) => r[k] && r[k].trainImagesPerSecond > 0 && r[k].peakMemoryBytes > 0) && r.trainImagesPerSecond > 0"
fi
extract "$S/out1/gpu-check-1.tar.gz" "$S/a1"
for f in versions.txt info.json cuda-libraries.json tests-cuda-tests.json tests-cuda-train.json bench-tf32.json gpu-check.log steps.tsv; do
  expect "archive has $f" [ -s "$S/a1/gpu-check-1/$f" ]
done
expect "the library search report lists the places tried" json "$S/a1/gpu-check-1/cuda-libraries.json" "r.cudnn.searched.length > 2 && r.cublas.searched.length > 2 && r.reason.length > 0"
# every CUDA test failed, none skipped, and the CPU-side ones passed
for run in cuda-tests cuda-train; do
  expect "$run: CUDA tests fail instead of skipping (ALEXNET_REQUIRE_CUDA=1)" json "$S/a1/gpu-check-1/tests-$run.json" \
    "r.numFailedTests > 0 && r.numPendingTests === 0 && r.testResults.flatMap((f) => f.assertionResults).filter((a) => a.status === 'failed').every((a) => /CUDA is required/.test(a.title))"
done
expect "cuda-tests: the CPU-side tests ran and passed" json "$S/a1/gpu-check-1/tests-cuda-tests.json" "r.numPassedTests > 10"

for st in 2 3; do
  echo "=== stage $st (expected: red, CUDA unavailable; every step reported) ==="
  check "$S/out$st" "$S/stage$st.txt" -- "$st"
  echo "  stage $st: exit status $rc in $secs s"
  expect "stage $st exits non-zero" [ "$rc" -ne 0 ]
  expect "'CUDA unavailable: <reason>' in the first 20 lines of output" bash -c "head -n 20 '$S/stage$st.txt' | grep -q 'CUDA unavailable: .'"
  check_out "$S/out$st"
done
for step in cuda-graph channels-last e2e-bench-compile ops-bench; do expect "stage 2 reports $step" bash -c "grep -q '^| $step | ' '$S/out2/summary.md'"; done
for step in memcheck nccl ops-bench-fp32 e2e-bench-fp32; do expect "stage 3 reports $step" bash -c "grep -q '^| $step | ' '$S/out3/summary.md'"; done
expect "the NCCL step says 'skipped: no GPU' without failing (its CPU-against-CPU comparison ok), in the summary" \
  bash -c "grep -q '^| nccl | ok' '$S/out3/summary.md' && grep -q -- '^- nccl: skipped: no GPU .*: ok$' '$S/out3/summary.md'"

echo "=== stage 4 (expected: red; the whole suite from the kit fails only its CUDA tests) ==="
check "$S/out4s" "$S/stage4.txt" -- 4
s2=$secs
echo "  stage 4: exit status $rc in $s2 s"
expect "stage 4 exits non-zero" [ "$rc" -ne 0 ]
check_out "$S/out4s"
extract "$S/out4s/gpu-check-4.tar.gz" "$S/a4"
# every test file but the kernel emulator and the emulated device (stage 4 leaves them out: they
# need no GPU, CI runs them)
nfiles=$(ls "$S"/tree/test/*.test.ts | grep -vc 'kernel-emulator\.test\.ts$\|cuda-emulated\.test\.ts$')
expect "the whole suite ran from the kit ($nfiles files, the CPU emulations left out); its only failures are CUDA tests that may not skip" json "$S/a4/gpu-check-4/tests-suite.json" \
  "r.testResults.length === $nfiles && r.testResults.every((f) => !/kernel-emulator|cuda-emulated/.test(f.name)) && r.numPassedTests > 200 && r.numFailedTests > 0 && r.testResults.flatMap((f) => f.assertionResults).filter((a) => a.status === 'failed').every((a) => /CUDA is required/.test(a.title)) && r.testResults.every((f) => f.status !== 'failed' || f.assertionResults.some((a) => a.status === 'failed'))"

echo "=== GPU_CHECK_ONLY=cuda-train: stage 1 runs that step alone (and the set-up steps) ==="
check "$S/out6" "$S/stage1-only.txt" GPU_CHECK_ONLY=cuda-train -- 1
grep -E '^\| (cuda-tests|cuda-train|e2e-bench) ' "$S/out6/summary.md" | sed 's/^/    /'
expect "cuda-train ran, cuda-tests and e2e-bench were not asked" bash -c "grep -q '^| cuda-train | \*\*failed' '$S/out6/summary.md' && grep -q '^| cuda-tests | \*\*not asked' '$S/out6/summary.md' && grep -q '^| e2e-bench | \*\*not asked' '$S/out6/summary.md'"

echo "=== bench/gpu.mjs's logic on the CPU (batch 2, one iteration, no PyTorch) ==="
(cd "$S/tree" && env -i HOME="$S/home" PATH="$S/tree/.gpu-kit/bin:$S/sysbin" .gpu-kit/bin/node bench/gpu.mjs --device cpu --batch 2 --iters 1 --no-torch --channels-last --json "$S/gpu-bench.json") > "$S/gpu-bench.txt" 2>&1
expect "every variant measured (tf32, bf16, bf16-cl), the graph rows say why not, the goals judged" json "$S/gpu-bench.json" \
  "r.variants.map((v) => v.key).join() === 'tf32,bf16,bf16-cl' && r.variants.every((v) => v.trainImagesPerSecond > 0 && v.inferImagesPerSecond > 0 && v.peakMemoryBytes > 0 && /CUDA device/.test(v.graph.error)) && r.goals.length === 5 && ['bf16 eager', 'bf16-cl eager'].includes(r.best.name)"

echo "=== a step that hangs is killed by its timeout (GPU_CHECK_HANG=cuda-tests, every step capped at 30 s) ==="
check "$S/outh" "$S/stage1-hang.txt" GPU_CHECK_HANG=cuda-tests GPU_CHECK_STEP_TIMEOUT=30 -- 1
s3=$secs
echo "  exit status $rc in $s3 s"
grep -E '^\| (cuda-tests|cuda-train|ops-bench|e2e-bench) ' "$S/outh/summary.md" | sed 's/^/    /'
expect "non-zero" [ "$rc" -ne 0 ]
check_out "$S/outh"
expect "the summary names the killed step" has "$S/outh/summary.md" "step cuda-tests: timed out after"
expect "the steps after it still ran" bash -c "grep -q '^| cuda-train | ' '$S/outh/summary.md' && grep -q '^| e2e-bench | ' '$S/outh/summary.md'"

echo "=== the check itself killed (SIGTERM after 20 s, in a hanging step) ==="
t=$SECONDS
mkdir -p "$S/out4"
(cd "$S/tree" && env -i HOME="$S/home" PATH="$S/sysbin" TMPDIR="$S/tmp" LANG=C.UTF-8 OUT="$S/out4" GPU_CHECK_HANG=versions \
  timeout --preserve-status -s TERM 20 bash scripts/gpu-check.sh 1) > "$S/stage1-term.txt" 2>&1
rc=$?
s4=$((SECONDS - t))
echo "  exit status $rc in $s4 s"
expect "non-zero ($rc), and over within 15 s of the signal ($s4 s in all)" [ "$rc" -ne 0 -a "$s4" -le 35 ]
check_out "$S/out4"
expect "the summary says it was interrupted, and in which step" has "$S/out4/summary.md" "interrupted by SIGTERM during step versions"

echo "=== no node at all (no kit): the summary is still written ==="
mkdir -p "$S/bare" "$S/out5"
tar --null -T "$S/files" -cf - | tar -xf - -C "$S/bare"
rm -f "$S/bare/node_modules"
(cd "$S/bare" && env -i HOME="$S/home" PATH="$S/sysbin" TMPDIR="$S/tmp" LANG=C.UTF-8 OUT="$S/out5" bash scripts/gpu-check.sh 1) > "$S/stage1-nonode.txt" 2>&1
rc=$?
expect "non-zero, with 'CUDA unavailable: node is missing' in the first lines" bash -c "[ $rc -ne 0 ] && head -n 20 '$S/stage1-nonode.txt' | grep -q 'CUDA unavailable: node is missing'"
check_out "$S/out5"
expect "summary.md (written by bash) names the reason" has "$S/out5/summary.md" "node is missing"

echo "=== scripts/gpu-ops-smoke.mjs on the CPU (the script compute-sanitizer runs in stage 3) ==="
(cd "$S/tree" && env -i HOME="$S/home" PATH="$S/tree/.gpu-kit/bin:$S/sysbin" .gpu-kit/bin/node scripts/gpu-ops-smoke.mjs --device cpu) > "$S/smoke.txt" 2>&1
rc=$?
tail -n 1 "$S/smoke.txt" | sed 's/^/  | /'
expect "every operator ran ($(grep -c '^ok ' "$S/smoke.txt") ok)" [ "$rc" -eq 0 ]

echo
echo "--- summary.md of stage 1, first lines ---"
head -n 12 "$S/out1/summary.md" | cut -c1-200
echo "---"
if [ "$fails" -eq 0 ]; then
  echo "REHEARSAL PASSED in $((SECONDS - T0)) s (stage 1 $s1 s, stage 4 $s2 s, hang $s3 s, SIGTERM $s4 s)"
else
  echo "REHEARSAL FAILED: $fails check(s) in $((SECONDS - T0)) s; outputs in $S (kept)"
  KEEP=1
  for f in "$S"/stage*.txt; do echo "--- tail of $f ---"; tail -n 25 "$f"; done
  exit 1
fi
