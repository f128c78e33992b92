#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU and no network (see scripts/gpu-kit.sh), in
# stages sized for a lease of 15 minutes of device time in all (the machine's start, 1-2 minutes,
# included): each stage ends inside 4.5 minutes, most valuable first, so stage 1 and either a rerun
# of what it showed wrong or stage 2 fit one lease, and the later stages wait for the next lease.
#
#   bash scripts/gpu-check.sh 1   first contact: versions; alexnet info --json and "CUDA
#                                 unavailable: <reason>" at once when it is; the CUDA library
#                                 search report; the CUDA tests (every operator against the CPU);
#                                 one training step on the GPU against the CPU; the end-to-end
#                                 benchmark: ours TF32, bf16 and bf16 channels-last, each eager
#                                 and as a CUDA graph, beside PyTorch eager TF32 and its bf16
#                                 channels-last recipe, with issue 14's goals judged   ~4 min
#   bash scripts/gpu-check.sh 2   speed: the training step as a CUDA graph against eager
#                                 (scripts/gpu-graph.mjs); channels-last against NCHW
#                                 (scripts/gpu-channels-last.mjs); the end-to-end benchmark
#                                 beside torch.compile of PyTorch's bf16 recipe; the per-operator
#                                 benchmark (TF32) against the copy bandwidth and bf16 rate ~4 min
#   bash scripts/gpu-check.sh 3   safety: compute-sanitizer memcheck over every operator
#                                 (scripts/gpu-ops-smoke.mjs); NCCL with world size 1 against MPI
#                                 (scripts/gpu-nccl.mjs); strict FP32 benchmarks       ~4 min
#   bash scripts/gpu-check.sh 4   the whole test suite from the kit                    ~3 min
#
# Every step runs under `timeout` (a hang costs one step), and the stage as a whole has a time
# budget (GPU_CHECK_BUDGET, 270 s): a step never gets more than what is left of it. CUDA tests
# fail instead of skipping (ALEXNET_REQUIRE_CUDA=1): a machine where the addon cannot use the GPU
# is a red check. The exit status is 0 only when every step passed and CUDA was available.
# GPU_CHECK_ONLY=step,step runs only those steps of the stage (the kit, versions, info and the
# library search always run): a rerun of what failed, after a fix, costs only its own time.
#
# Results: $OUT (or bench/results/gpu-check-<stage>/) receives exactly two files, rewritten after
# every step and by the EXIT trap (so a killed step, or a killed check, still leaves them):
#   summary.md              the verdict, versions, steps, test counts, failures' first lines,
#                           benchmark ratios and goals, memcheck's verdict, the CUDA library search
#   gpu-check-<stage>.tar.gz  everything else: every step's log, the JSON reports, bench results
#
# Knobs (environment): GPU_CHECK_BUDGET (seconds for the stage), GPU_CHECK_TIME_SCALE (multiplies
# every limit and the budget: slower machines, the rehearsal), GPU_CHECK_STEP_TIMEOUT (caps every
# step's limit), GPU_CHECK_ONLY (above), GPU_CHECK_HANG=<step> (that step sleeps instead: proves
# the timeout path; see scripts/gpu-rehearse.sh), GPU_CHECK_WORK (the work folder).
set -uo pipefail # no -e: a failing step must not skip the summary
cd "$(dirname "$0")/.."
ROOT=$PWD
STAGE="${1:-1}"
case "$STAGE" in 1 | 2 | 3 | 4) ;; *) echo "usage: bash scripts/gpu-check.sh 1|2|3|4" >&2; exit 2 ;; esac
T0=$SECONDS
SCALE="${GPU_CHECK_TIME_SCALE:-1}"
BUDGET=$(( ${GPU_CHECK_BUDGET:-270} * SCALE ))
OUT="${OUT:-$ROOT/bench/results/gpu-check-$STAGE}"
mkdir -p "$OUT"
ARCHIVE="gpu-check-$STAGE.tar.gz"
rm -f "$OUT/summary.md" "$OUT/$ARCHIVE"
if [ -n "${GPU_CHECK_WORK:-}" ]; then WORK="$GPU_CHECK_WORK"; rm -rf "$WORK"; else WORK="$(mktemp -d)/gpu-check-$STAGE"; fi
mkdir -p "$WORK"
: > "$WORK/steps.tsv"
export ALEXNET_REQUIRE_CUDA=1 NO_COLOR=1
CUR_PID=""
NOTE=""
RED=0

say() { printf '%s\n' "$*" | tee -a "$WORK/gpu-check.log"; }

# ---- the summary and the archive (after every step, and from the EXIT trap) ----------------
# Files over 4 MiB are cut to their first 2 and last 1 MiB first: $OUT takes files up to 16 MiB.
pack() {
  local f size
  while IFS= read -r -d '' f; do
    size=$(stat -c %s "$f")
    if [ "$size" -gt $((4 * 1024 * 1024)) ]; then
      { head -c $((2 * 1024 * 1024)) "$f"; printf '\n\n[... %s bytes cut by gpu-check.sh ...]\n\n' "$size"; tail -c $((1024 * 1024)) "$f"; } > "$f.cut" && mv "$f.cut" "$f"
    fi
  done < <(find "$WORK" -type f -print0)
  tar -czf "$OUT/$ARCHIVE.tmp" -C "$(dirname "$WORK")" "$(basename "$WORK")" 2>/dev/null && mv "$OUT/$ARCHIVE.tmp" "$OUT/$ARCHIVE"
  if [ "$(stat -c %s "$OUT/$ARCHIVE" 2>/dev/null || echo 0)" -gt $((15 * 1024 * 1024)) ]; then
    # still too big: keep the small files only
    tar -czf "$OUT/$ARCHIVE" --exclude='*.log' -C "$(dirname "$WORK")" "$(basename "$WORK")" 2>/dev/null
  fi
}

# summary.md without node: the steps, the versions and the tails of what failed
summary_bash() {
  local rc=$1
  echo "# GPU check, stage $STAGE: $([ "$rc" -eq 0 ] && echo GREEN || echo RED)"
  echo
  [ -n "$NOTE" ] && { echo "- $NOTE"; echo; }
  [ -f "$WORK/cuda-unavailable.txt" ] && { echo "- CUDA unavailable: $(cat "$WORK/cuda-unavailable.txt")"; echo; }
  echo "exit status $rc · everything else is in $ARCHIVE (summary written without node)"
  echo
  echo '## Versions'; echo; echo '```'; cat "$WORK/versions.txt" 2>/dev/null | head -40; echo '```'; echo
  echo '## Steps'; echo; echo '| step | result | seconds (limit) | what |'; echo '|---|---|---:|---|'
  while IFS=$'\t' read -r name code secs status limit desc; do
    echo "| $name | $status ($code) | $secs ($limit) | $desc |"
  done < "$WORK/steps.tsv"
  echo
  while IFS=$'\t' read -r name code secs status limit desc; do
    if [ "$status" = failed ] || [ "$status" = timeout ]; then
      echo "### $name: $status"; echo; echo '```'; tail -n 15 "$WORK/$name.log" 2>/dev/null; echo '```'; echo
    fi
  done < "$WORK/steps.tsv"
}

publish() {
  local rc=$1
  if [ -n "${NODE:-}" ] && "$NODE" scripts/gpu-summary.mjs "$WORK" "$STAGE" "$rc" "$ARCHIVE" "$NOTE" > "$OUT/summary.md.tmp" 2> "$WORK/summary-error.log"; then
    mv "$OUT/summary.md.tmp" "$OUT/summary.md"
  else
    summary_bash "$rc" > "$OUT/summary.md"
    rm -f "$OUT/summary.md.tmp"
  fi
  cp "$OUT/summary.md" "$WORK/summary.md"
  pack
}

status_now() { [ "$RED" -eq 0 ] && echo 0 || echo 1; }

finish() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$CUR_PID" ]; then
    kill -TERM "$CUR_PID" 2>/dev/null
    sleep 2
    kill -KILL "$CUR_PID" 2>/dev/null
  fi
  [ "$rc" -ne 0 ] && RED=1
  rc=$(status_now)
  say ""
  say "=== stage $STAGE done in $((SECONDS - T0)) s: exit status $rc; $OUT: $(ls "$OUT" | tr '\n' ' ')"
  publish "$rc"
  # the summary at the end of the output too (what a caller sees first when it keeps the tail)
  echo; echo "----- summary.md -----"; head -c 10000 "$OUT/summary.md"; echo
  exit "$rc"
}
on_signal() {
  NOTE="the check was interrupted by SIG$1 during step ${CUR_STEP:-?} after $((SECONDS - T0)) s"
  [ -n "$CUR_PID" ] && printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$CUR_STEP" -1 "$((SECONDS - CUR_T))" interrupted "$CUR_LIMIT" "interrupted by SIG$1" >> "$WORK/steps.tsv"
  say "$NOTE"
  RED=1
  exit 1 # runs finish
}
trap finish EXIT
for sig in INT TERM HUP; do trap "on_signal $sig" "$sig"; done

# GPU_CHECK_ONLY: the steps asked for (the set-up steps always run)
asked() {
  [ -z "${GPU_CHECK_ONLY:-}" ] && return 0
  case "$1" in kit | versions | info | cuda-libraries) return 0 ;; esac
  case ",$GPU_CHECK_ONLY," in *",$1,"*) return 0 ;; esac
  return 1
}

# ---- one step: under timeout, its output in WORK/<name>.log ---------------------------------
# run_step NAME LIMIT "what it does" [-o FILE: stdout to FILE, stderr to the log] command...
run_step() {
  local name=$1 limit=$2 desc=$3 outfile=""
  shift 3
  if [ "${1:-}" = "-o" ]; then outfile=$2; shift 2; fi
  if ! asked "$name"; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" -1 0 "not asked" 0 "not in GPU_CHECK_ONLY=$GPU_CHECK_ONLY" >> "$WORK/steps.tsv"
    say "[$name] not asked (GPU_CHECK_ONLY=$GPU_CHECK_ONLY)"
    return 0
  fi
  limit=$((limit * SCALE))
  [ -n "${GPU_CHECK_STEP_TIMEOUT:-}" ] && [ "$GPU_CHECK_STEP_TIMEOUT" -lt "$limit" ] && limit=$GPU_CHECK_STEP_TIMEOUT
  local left=$((BUDGET - (SECONDS - T0) - 15))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 5 ]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" -1 0 skipped 0 "no time left in the stage's ${BUDGET} s budget" >> "$WORK/steps.tsv"
    say "[$name] skipped: no time left in the stage's budget"
    RED=1
    return 1
  fi
  [ "${GPU_CHECK_HANG:-}" = "$name" ] && set -- sleep 100000 # the rehearsal's hanging step
  local log="$WORK/$name.log" t=$SECONDS rc status
  printf '[%s] %s (limit %s s) ... ' "$name" "$desc" "$limit" | tee -a "$WORK/gpu-check.log"
  CUR_STEP=$name CUR_T=$t CUR_LIMIT=$limit
  if [ -n "$outfile" ]; then
    timeout --kill-after=10 "$limit" "$@" > "$outfile" 2> "$log" < /dev/null &
  else
    timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1 < /dev/null &
  fi
  CUR_PID=$!
  wait "$CUR_PID"
  rc=$?
  CUR_PID=""
  local secs=$((SECONDS - t))
  if [ "$rc" -eq 0 ]; then status=ok
  elif { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; } && [ "$secs" -ge "$limit" ]; then status=timeout
  else status=failed
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$status" "$limit" "$desc" >> "$WORK/steps.tsv"
  say "$status ($secs s)"
  if [ "$status" != ok ]; then
    RED=1
    [ "$status" = timeout ] && echo "  killed after $limit s" >> "$log"
    tail -n 8 "$log" 2>/dev/null | sed 's/^/    | /' | cut -c1-240
  fi
  publish "$(status_now)"
  return "$rc"
}

skip_step() { # skip_step NAME "why"
  asked "$1" || return 0
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" -1 0 skipped 0 "$2" >> "$WORK/steps.tsv"
  say "[$1] not run: $2"
  RED=1
}

say "=== GPU check, stage $STAGE ($(date -u +%FT%TZ), $(hostname 2>/dev/null || echo '?'), budget $BUDGET s, work $WORK) ==="

# ---- the kit: packages, dist/, the addon and node for a bare copy of the tree ----------------
# Unpacked into a bare tree (no node_modules), or over an earlier unpack of another kit (the
# stamp differs); never over a developer's own node_modules (it may be a link to another tree).
KIT=.gpu-kit/kit.tar.xz
KIT_STAMP=node_modules/.alexnet-gpu-kit
if [ -f "$KIT" ]; then
  [ -L node_modules ] && [ ! -e node_modules ] && rm -f node_modules # a dangling link from the copy
  sum=$(sha256sum "$KIT" | cut -d' ' -f1)
  if [ ! -e node_modules ] || { [ -f "$KIT_STAMP" ] && [ "$(cat "$KIT_STAMP")" != "$sum" ]; }; then
    # xz where it is installed, else Python's lzma (the GPU machine's venv has it)
    unpack="if command -v xz >/dev/null; then xz -dc -T0 '$KIT' | tar -x; else python3 -c 'import sys, tarfile; t = tarfile.open(sys.argv[1], \"r:xz\"); t.extractall(**({\"filter\": \"tar\"} if hasattr(tarfile, \"tar_filter\") else {}))' '$KIT'; fi"
    run_step kit 120 "unpack $KIT" bash -c "$unpack && echo '$sum' > '$KIT_STAMP' && ls -la .gpu-kit/bin build/Release"
  elif [ -f "$KIT_STAMP" ]; then
    say "[kit] already unpacked ($sum)"
  else
    say "[kit] not unpacked: this tree has its own node_modules (using its packages and build)"
  fi
  [ -f "$KIT_STAMP" ] && [ -f build/Release/alexnet.node ] && export ALEXNET_ADDON="$ROOT/build/Release/alexnet.node"
fi
NODE=""
if [ -x .gpu-kit/bin/node ] && .gpu-kit/bin/node --version >/dev/null 2>&1; then
  NODE="$ROOT/.gpu-kit/bin/node"
elif command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 20 ]; then
  NODE="$(command -v node)"
fi
export NODE
[ -n "$NODE" ] && export PATH="$(dirname "$NODE"):$PATH"

# cuDNN and cuBLAS from the Python environment's nvidia/* wheels (the loader's ALEXNET_PYTHON_SITE)
if [ -z "${ALEXNET_PYTHON_SITE:-}" ] && command -v python3 >/dev/null; then
  ALEXNET_PYTHON_SITE=$(timeout 30 python3 -c 'import site; print(":".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null || true)
  export ALEXNET_PYTHON_SITE
fi

# ---- versions: GPU, driver, toolkit, node, PyTorch (one "key: value" per line) ---------------
versions_cmd='
v() { printf "%s: %s\n" "$1" "$2"; }
v gpu "$(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | head -1 || echo "nvidia-smi missing")"
v nvidia-smi-cuda "$(nvidia-smi 2>/dev/null | grep -o "CUDA Version: [0-9.]*" | head -1)"
v nvcc "$(nvcc --version 2>/dev/null | tail -2 | head -1 || echo missing)"
san=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
v compute-sanitizer "$( [ -n "$san" ] && "$san" --version 2>/dev/null | grep -i version | head -1 || echo missing)"
v node "$( [ -n "$NODE" ] && "$NODE" --version || echo "missing (no .gpu-kit/bin/node and no node >= 20 on PATH)")"
v cpu "$(nproc) cores, $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed "s/^ //")"
v python-site "${ALEXNET_PYTHON_SITE:-}"
v python3 "$(python3 --version 2>&1 || echo missing)"
v torch "$(python3 -c "import torch; print(torch.__version__, \"cuda\", torch.version.cuda, \"cudnn\", torch.backends.cudnn.version(), \"available\", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"\")" 2>&1 | tail -1)"
'
run_step versions 90 "GPU, driver, toolkit, node and PyTorch versions" -o "$WORK/versions.txt" bash -c "$versions_cmd"
sed 's/^/  /' "$WORK/versions.txt" | cut -c1-200

# ---- is CUDA usable? said at once, and the check goes on for what helps diagnose it ----------
if [ -z "$NODE" ]; then
  echo "node is missing (no .gpu-kit/kit.tar.xz unpacked and no node >= 20 on PATH): nothing of ours can run" > "$WORK/cuda-unavailable.txt"
  say "CUDA unavailable: $(cat "$WORK/cuda-unavailable.txt")"
  NOTE="node is missing: run bash scripts/gpu-kit.sh and carry .gpu-kit"
  skip_step info "node is missing"
  exit 1
fi
run_step info 60 "alexnet info --json" -o "$WORK/info.json" "$NODE" bin/alexnet.js info --json
"$NODE" -e '
  const fs = require("fs");
  let c;
  try { c = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).backends.cuda; } catch (e) { c = { available: false, reason: "alexnet info --json gave no report: " + (fs.existsSync(process.argv[2]) ? fs.readFileSync(process.argv[2], "utf8").trim().split("\n").slice(0, 3).join(" / ") : "no output") }; }
  if (c.available && (c.architectures === "emulated" || /^Emulated CUDA device/.test(c.deviceName || ""))) { c.available = false; c.reason = `the addon runs on the CPU emulation (${c.deviceName}; test/cuda-emu/device), which never counts as a GPU`; }
  if (c.available) console.log(`CUDA available: ${c.deviceName}, driver ${c.driverVersion}, runtime ${c.runtimeVersion}, cuDNN ${c.libraries.cudnn.version} (${c.libraries.cudnn.path}), cuBLAS ${c.libraries.cublas.version} (${c.libraries.cublas.path}), ${c.architectures}`);
  else { fs.writeFileSync(process.argv[3], c.reason + "\n"); console.log(`CUDA unavailable: ${c.reason}`); process.exitCode = 1; }
' "$WORK/info.json" "$WORK/info.log" "$WORK/cuda-unavailable.txt" 2>&1 | tee -a "$WORK/gpu-check.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || RED=1
run_step cuda-libraries 60 "the CUDA library search: every place tried, and why each library was or was not taken" \
  -o "$WORK/cuda-libraries.json" "$NODE" --input-type=module -e '
    const { loadNative } = await import(process.cwd() + "/dist/index.js");
    console.log(JSON.stringify(loadNative().cudaLibraries(), null, 2));'
"$NODE" bin/alexnet.js info > "$WORK/info.txt" 2>&1 || true

# the test files with CUDA tests (they import test/cuda-gate.ts), and the ABI pins
cuda_test_files() { { grep -l "cuda-gate" test/*.test.ts; echo test/cuda-abi.test.ts; } | sort -u | grep -v -e "$1"; }
vitest() { # vitest NAME LIMIT "what" files...
  local name=$1 limit=$2 desc=$3
  shift 3
  run_step "$name" "$limit" "$desc" "$NODE" node_modules/vitest/vitest.mjs run --reporter=default --reporter=json \
    --outputFile.json="$WORK/tests-$name.json" "$@"
}
# the benchmarks load every CUDA module up front, so no lazy loading lands in a timed loop
BENCH_ENV=(env CUDA_MODULE_LOADING=EAGER OUT="$WORK")

case "$STAGE" in
1)
  # ~90 s on an H100: cuda-ops (every operator against the CPU, TF32 and FP32), cuda-abi, and
  # whatever else imports cuda-gate (bench.test.ts and cuda-train have their own steps)
  # shellcheck disable=SC2046
  vitest cuda-tests 150 "the CUDA tests (ALEXNET_REQUIRE_CUDA=1)" $(cuda_test_files 'cuda-train\|bench\.test')
  # ~50 s: the CPU half of the comparisons dominates
  vitest cuda-train 100 "one training step on cuda:0 against the CPU (FP32, TF32), each layer given the CPU's inputs, the Trainer on cuda:0" test/cuda-train.test.ts
  # ~60 s: ours TF32, bf16 and bf16 channels-last, eager and as a graph; then PyTorch eager TF32
  # and bf16 channels-last in a child; issue 14's goals but torch.compile's (stage 2)
  run_step e2e-bench 150 "bench/gpu.mjs: ours TF32 / bf16 / bf16 channels-last, eager and graph, beside PyTorch eager TF32 and bf16 autocast channels-last, batch 128" \
    "${BENCH_ENV[@]}" "$NODE" bench/gpu.mjs --batch 128 --channels-last --torch-timeout 100 --json "$WORK/bench-tf32.json"
  ;;
2)
  # ~40 s: the seed AlexNet (with dropout) trained with and without the CUDA graph from the same
  # seed: weights within fp32 tolerance, bit for bit with setDeterministic(true), the same dropout
  # stream offsets; images/s of both
  run_step cuda-graph 60 "the training step as a CUDA graph against eager: scripts/gpu-graph.mjs" \
    "${BENCH_ENV[@]}" "$NODE" scripts/gpu-graph.mjs --json "$WORK/cuda-graph.json"
  # ~30 s: the seed AlexNet trained NCHW and channels-last (opt-in NHWC) from one seed, TF32 and
  # bf16: weights agree to rounding; images/s of both (issue 14: opt-in until measured)
  run_step channels-last 60 "channels-last against NCHW on cuda:0, TF32 and bf16: scripts/gpu-channels-last.mjs" \
    "${BENCH_ENV[@]}" "$NODE" scripts/gpu-channels-last.mjs --json "$WORK/channels-last.json"
  # ~90 s: ours again (the same run's figures), PyTorch eager, and one torch.compile (bf16 recipe)
  run_step e2e-bench-compile 180 "bench/gpu.mjs beside torch.compile of PyTorch's bf16 channels-last recipe" \
    "${BENCH_ENV[@]}" "$NODE" bench/gpu.mjs --batch 128 --channels-last --compile-bf16 --torch-timeout 150 --json "$WORK/bench-compile.json"
  # ~60 s: every AlexNet layer shape, C++-driven, beside the copy bandwidth and bf16 matrix rate
  run_step ops-bench 90 "bench/ops.mjs --device cuda (TF32)" "${BENCH_ENV[@]}" "$NODE" bench/ops.mjs --device cuda
  ;;
3)
  SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
  if [ -n "$SAN" ]; then
    # ~1-2 min: every operator once on small shapes; API errors are left to our own checks
    # (cuDNN's algorithm search provokes some by design), memory errors are the point.
    run_step memcheck 150 "compute-sanitizer memcheck over scripts/gpu-ops-smoke.mjs" \
      "$SAN" --tool memcheck --leak-check no --report-api-errors no --print-limit 20 --error-exitcode 86 \
      "$NODE" scripts/gpu-ops-smoke.mjs --device cuda:0
  else
    skip_step memcheck "compute-sanitizer not found"
    echo "compute-sanitizer not found" > "$WORK/memcheck.log"
  fi
  # ~10 s: allReduce sum/avg and broadcast of a CUDA tensor through NCCL, world size 1 (mpirun -n 1
  # where mpirun exists), against MPI on the CPU; NCCL from the PyTorch environment's nvidia/nccl
  # wheel (ALEXNET_PYTHON_SITE) or ALEXNET_NCCL_PATH. Without a GPU: "skipped: no GPU".
  run_step nccl 45 "NCCL on cuda:0 (world size 1) against MPI on the CPU: scripts/gpu-nccl.mjs" \
    "$NODE" scripts/gpu-nccl.mjs --json "$WORK/nccl.json"
  run_step ops-bench-fp32 60 "bench/ops.mjs --device cuda --strict-fp32" "${BENCH_ENV[@]}" "$NODE" bench/ops.mjs --device cuda --strict-fp32
  run_step e2e-bench-fp32 100 "bench/gpu.mjs beside PyTorch eager, strict FP32" \
    "${BENCH_ENV[@]}" "$NODE" bench/gpu.mjs --batch 128 --strict-fp32 --no-bf16 --torch-timeout 60 --json "$WORK/bench-fp32.json"
  ;;
4)
  # ~2-3 min on 16 cores: the whole suite from the kit, less the kernel emulator and the
  # emulated device (the CUDA code on the CPU: CI runs them, and they need no GPU)
  vitest suite 255 "the whole test suite (ALEXNET_REQUIRE_CUDA=1)" --exclude test/kernel-emulator.test.ts \
    --exclude test/cuda-emulated.test.ts
  ;;
esac
exit 0 # finish() decides the status
