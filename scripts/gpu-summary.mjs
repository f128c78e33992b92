#!/usr/bin/env node
// Writes summary.md for scripts/gpu-check.sh from what a stage left in its work folder: the
// verdict first (CUDA unavailable and why; failed or timed-out steps), then versions, the steps,
// test counts (vitest's JSON reports), the first lines of every failure, the benchmark headlines
// (ours against PyTorch), the NCCL step's line, compute-sanitizer's verdict and the CUDA library
// search report.
// Node built-ins only, and every input optional: a step that never ran leaves a gap, not an error.
// (When node itself is missing, gpu-check.sh writes a shorter summary in bash.)
//
//   node scripts/gpu-summary.mjs WORK_DIR STAGE EXIT_STATUS ARCHIVE_NAME [NOTE] > summary.md
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [work, stage, rcText, archive, note = ''] = process.argv.slice(2);
if (!work) {
  console.error('usage: node scripts/gpu-summary.mjs WORK_DIR STAGE EXIT_STATUS ARCHIVE_NAME [NOTE]');
  process.exit(2);
}
const rc = Number(rcText ?? 1);
const read = (f) => {
  try {
    return readFileSync(join(work, f), 'utf8');
  } catch {
    return null;
  }
};
const readJson = (f) => {
  const t = read(f);
  if (t === null) return null;
  try {
    return JSON.parse(t);
  } catch {
    return null;
  }
};
// eslint-disable-next-line no-control-regex
const plain = (s) => String(s ?? '').replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
const firstLines = (s, n) => plain(s).split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '').slice(0, n);
const cell = (s) => plain(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
const out = [];
const problems = [];
const warnings = [];

// ---- steps (gpu-check.sh appends one tab-separated line per step) ----
const steps = (read('steps.tsv') ?? '')
  .split('\n')
  .filter(Boolean)
  .map((l) => {
    const [name, code, seconds, status, limit, desc] = l.split('\t');
    return { name, code: Number(code), seconds: Number(seconds), status, limit: Number(limit), desc };
  });
const info = readJson('info.json');
const cuda = info?.backends?.cuda;
const libs = readJson('cuda-libraries.json');
const cudaVersion = (v) => (v ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : '?');

if (!info) {
  const infoStep = steps.find((s) => s.name === 'info');
  const why = infoStep ? `alexnet info failed (${infoStep.status}): ${firstLines(read('info.log'), 3).join(' / ') || 'no output'}` : 'alexnet info did not run';
  problems.push(`CUDA unavailable: ${why}`);
} else if (!cuda?.available) {
  problems.push(`CUDA unavailable: ${cuda?.reason ?? 'no reason given'}`);
}
for (const s of steps) {
  if (s.status === 'timeout') problems.push(`step ${s.name}: timed out after ${s.seconds} s (limit ${s.limit} s) and was killed`);
  else if (s.status === 'failed') problems.push(`step ${s.name}: failed (exit status ${s.code})`);
  else if (s.status === 'interrupted') problems.push(`step ${s.name}: interrupted after ${s.seconds} s`);
  else if (s.status === 'skipped') problems.push(`step ${s.name}: not run (${s.desc})`);
}
if (note) problems.unshift(note); // an interrupted check: what it did not get to matters less

// ---- tests ----
const testRuns = [];
for (const f of readdirSync(work).filter((n) => /^tests-.*\.json$/.test(n)).sort()) {
  const r = readJson(f);
  if (r) testRuns.push({ name: f.replace(/^tests-|\.json$/g, ''), r });
}
const failures = [];
/** The message's first lines without the stack, but for the first frame in a test file. */
function failureLines(message) {
  const lines = firstLines(message, 60);
  const text = lines.filter((l) => !/^\s*at /.test(l)).slice(0, 5);
  const frame = lines.find((l) => /^\s*at .*\/test\/[^/]+\.ts:\d+/.test(l));
  return frame ? [...text, frame.trim().replace(/\(?\S*\/test\//, '(test/')] : text;
}
for (const { name, r } of testRuns) {
  for (const file of r.testResults ?? []) {
    const fileName = String(file.name ?? '').replace(/^.*?\/test\//, 'test/');
    const failedTests = (file.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of failedTests) failures.push({ run: name, where: `${fileName} > ${a.fullName ?? a.title}`, lines: failureLines((a.failureMessages ?? []).join('\n')) });
    if (file.status === 'failed' && failedTests.length === 0) failures.push({ run: name, where: fileName, lines: firstLines(file.message || 'the file failed to run', 6) });
  }
}

// ---- benchmarks ----
const benches = [];
for (const f of readdirSync(work).filter((n) => /^bench-.*\.json$/.test(n)).sort()) {
  const b = readJson(f);
  if (b) benches.push({ name: f.replace(/^bench-|\.json$/g, ''), b });
}
for (const { name, b } of benches) {
  for (const v of b.variants ?? []) {
    if (v.error) problems.push(`ours ${v.key} (${name}): ${v.error}`);
    else if (v.graph?.error) problems.push(`ours ${v.key} + CUDA graph (${name}): ${v.graph.error}`);
  }
  if (b.torch?.error) warnings.push(`PyTorch (${name}): ${b.torch.error}`);
  if (b.torch?.compiled?.error) warnings.push(`torch.compile (${name}): ${b.torch.compiled.error}`);
}
const opsFiles = existsSync(join(work, 'bench')) ? readdirSync(join(work, 'bench')).filter((n) => /^ops-cuda.*\.json$/.test(n)).sort() : [];

// ---- compute-sanitizer ----
const memcheck = read('memcheck.log');
const memSummary = memcheck ? plain(memcheck).match(/=+ (ERROR SUMMARY: .*)/)?.[1] : null;
if (Number(memSummary?.match(/ERROR SUMMARY: (\d+)/)?.[1] ?? 0) > 0) problems.push(`compute-sanitizer memcheck: ${memSummary}`);

// ---- write ----
const verdict = rc === 0 && problems.length === 0 ? 'GREEN' : 'RED';
out.push(`# GPU check, stage ${stage}: ${verdict}`, '');
if (problems.length) {
  out.push('Problems (first the one that matters most):', '');
  for (const p of problems) out.push(`- ${plain(p).split('\n').join('\n  ')}`);
  out.push('');
}
if (warnings.length) {
  out.push('Warnings:', '');
  for (const w of warnings) out.push(`- ${plain(w).split('\n')[0]}`);
  out.push('');
}
const total = steps.reduce((a, s) => a + (Number.isFinite(s.seconds) ? s.seconds : 0), 0);
out.push(`${new Date().toISOString()} · exit status ${rc} · ${total} s in ${steps.length} steps · everything else is in ${archive}`, '');
// the headline: our images/s over PyTorch's on the same GPU, batch and precision
const headline = benches
  .filter(({ b }) => b.ratios)
  .map(({ name, b }) => `${b.tf32 ? 'TF32' : 'strict FP32'} (${name}): train ${b.ratios.train.toFixed(2)}x, inference ${b.ratios.infer.toFixed(2)}x` +
    (b.ratiosCompiled ? `; against torch.compile: train ${b.ratiosCompiled.train.toFixed(2)}x, inference ${b.ratiosCompiled.infer.toFixed(2)}x` : ''));
if (headline.length) out.push(`**Ours / PyTorch eager, seed AlexNet, batch ${benches.find(({ b }) => b.ratios)?.b.batch}:** ${headline.join('; ')}`, '');
// issue 14's goals, as bench/gpu.mjs judged them (TF32 runs; a --compile run has the torch.compile one)
for (const { name, b } of benches.filter(({ b }) => Array.isArray(b.goals))) {
  const fmtGoal = (g) => (g.value === null ? 'n/a' : g.target > 100 ? g.value.toFixed(0) : `${g.value.toFixed(2)}x`);
  out.push(`**Goals (${name}):** ` + b.goals.map((g) => `${g.name}: ${fmtGoal(g)} (target ${g.target > 100 ? g.target : `${g.target}x`}, ${g.met === null ? 'not measured' : g.met ? 'met' : 'not met'}; ${g.how})`).join('; '), '');
}

// versions: "key: value" lines from the versions step, then what the addon says
const versions = [];
for (const l of plain(read('versions.txt') ?? '').split('\n')) {
  const m = l.match(/^([\w.-]+): (.*)$/);
  if (m) versions.push([m[1], m[2]]);
}
if (cuda) {
  versions.push(['device (addon)', `${cuda.deviceName ?? 'none'} (${cuda.deviceCount ?? 0} found)`]);
  versions.push(['CUDA driver (addon)', cuda.driverVersion ? cudaVersion(cuda.driverVersion) : 'none']);
  versions.push(['CUDA runtime (addon, static)', cudaVersion(cuda.runtimeVersion)]);
  versions.push(['addon architectures', cuda.architectures ?? '?']);
  for (const k of ['cudnn', 'cublas']) {
    const l = libs?.[k] ?? cuda.libraries?.[k];
    versions.push([k === 'cudnn' ? 'cuDNN (addon)' : 'cuBLAS (addon)', l?.found ? `${l.version} ${l.path}` : 'not found']);
  }
}
if (info) versions.push(['addon', `${info.addon?.path} (${info.addon?.buildSystem}) · alexnet-node ${info.version} · node ${info.node}`]);
if (versions.length) {
  out.push('## Versions', '', '| | |', '|---|---|');
  for (const [k, v] of versions) out.push(`| ${cell(k)} | ${cell(v)} |`);
  out.push('');
}

// the library search: in full when a library was not taken, the place it was taken from otherwise
if (libs || cuda?.libraries) {
  out.push('## CUDA library search (cudaLibraries())', '');
  for (const k of ['cudnn', 'cublas']) {
    const l = libs?.[k];
    if (!l) {
      const short = cuda?.libraries?.[k];
      out.push(`- ${k}: ${short?.found ? `found ${short.version} at ${short.path}` : 'not found'} (no full report: see cuda-libraries.log)`);
      continue;
    }
    out.push(`- ${k}: ${l.found ? `found ${l.version} at ${l.path}${l.cudartVersion ? ` (built against CUDA runtime ${cudaVersion(l.cudartVersion)})` : ''}` : `NOT FOUND: ${plain(l.reason).split('\n')[0].slice(0, 200)}`}`);
    const searched = l.searched ?? [];
    for (const s of searched.slice(0, 40)) out.push(`    - ${plain(s).slice(0, 240)}`);
    if (searched.length > 40) out.push(`    - ... and ${searched.length - 40} more (cuda-libraries.json)`);
    for (const n of l.notes ?? []) out.push(`    - note: ${plain(n).slice(0, 240)}`);
  }
  out.push('');
}
if (steps.length) {
  out.push('## Steps', '', '| step | result | seconds (limit) | what |', '|---|---|---:|---|');
  for (const s of steps) out.push(`| ${s.name} | ${s.status === 'ok' ? 'ok' : `**${s.status}**${s.status === 'failed' ? ` (${s.code})` : ''}`} | ${s.seconds} (${s.limit}) | ${cell(s.desc)} |`);
  out.push('');
}

if (testRuns.length) {
  out.push('## Tests', '', '| run | passed | failed | skipped | files |', '|---|---:|---:|---:|---:|');
  for (const { name, r } of testRuns) {
    out.push(`| ${name} | ${r.numPassedTests ?? '?'} | ${r.numFailedTests ?? '?'} | ${(r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)} | ${r.numTotalTestSuites ?? (r.testResults ?? []).length} |`);
  }
  out.push('');
}
if (failures.length) {
  // the gate's failures all say why CUDA is unavailable, which the top of this file says already
  const gated = failures.filter((f) => /^AssertionError: CUDA unavailable:/.test(f.lines[0] ?? ''));
  const other = failures.filter((f) => !gated.includes(f));
  out.push(`### Failures (${failures.length}; first lines of each, up to 40)`, '');
  if (gated.length) {
    out.push(`- ${gated.length} CUDA test group(s) failed because CUDA is unavailable (the gate, ALEXNET_REQUIRE_CUDA=1, turns each skip into a failure):`);
    for (const f of gated.slice(0, 20)) out.push(`    - [${f.run}] ${f.where}`);
  }
  for (const f of other.slice(0, 40)) {
    out.push(`- [${f.run}] ${f.where}`);
    for (const l of f.lines) out.push(`      ${l.slice(0, 300)}`);
  }
  out.push('');
}

if (benches.length || opsFiles.length) {
  out.push('## Benchmarks', '');
  for (const { name, b } of benches) {
    if (b.error) {
      out.push(`- end to end (${name}): not run: ${plain(b.error).split('\n')[0]}`);
      continue;
    }
    const o = b.ours ?? {};
    const t = b.torch && !b.torch.error ? b.torch : null;
    for (const v of b.variants ?? []) {
      out.push(`- ours ${v.key} (${name}): ` + (v.error ? `failed: ${plain(v.error).split('\n')[0]}` :
        `train ${v.trainImagesPerSecond?.toFixed(0)} images/s (${v.trainStepMs?.toFixed(1)} ms/step), + graph ${v.graph?.error ? `failed: ${plain(v.graph.error).split('\n')[0]}` : `${v.graph?.trainImagesPerSecond?.toFixed(0)} (${v.graph?.speedup?.toFixed(2)}x eager)`}, inference ${v.inferImagesPerSecond?.toFixed(0)}`));
    }
    out.push(`- end to end (${name}, batch ${b.batch}): ours ${o.trainImagesPerSecond?.toFixed(0)} train / ${o.inferImagesPerSecond?.toFixed(0)} inference images/s` +
      (t ? `; PyTorch ${t.torch} eager ${t.trainImagesPerSecond?.toFixed(0)} / ${t.inferImagesPerSecond?.toFixed(0)}` : `; PyTorch: ${b.torch?.error ?? 'not run'}`) +
      (b.ratios ? `; **ratio ours/PyTorch: train ${b.ratios.train.toFixed(2)}x, inference ${b.ratios.infer.toFixed(2)}x**` : '') +
      (b.ratiosCompiled ? `; ours/torch.compile: train ${b.ratiosCompiled.train.toFixed(2)}x, inference ${b.ratiosCompiled.infer.toFixed(2)}x` : ''));
  }
  for (const f of opsFiles) {
    const r = readJson(join('bench', f));
    if (!r?.rows) continue;
    const rows = r.rows;
    const ceilings = rows.filter((x) => /ceiling/.test(x.name)).map((x) => `${x.name} ${x.gflops ? `${x.gflops.toFixed(0)} GFLOP/s` : `${x.gbps?.toFixed(0)} GB/s`}`);
    const low = rows.filter((x) => !/ceiling|sgemm/.test(x.name)).sort((a, b) => a.fraction - b.fraction).slice(0, 4);
    out.push(`- operators (${f.replace(/\.json$/, '')}, batch ${r.batch}): ${ceilings.join(', ')}; lowest fractions of the ceiling: ${low.map((x) => `${x.name} ${(100 * x.fraction).toFixed(0)}% (${x.ms.toFixed(3)} ms)`).join(', ')}`);
  }
  out.push('');
}

// the NCCL step (scripts/gpu-nccl.mjs): its one line, and what NCCL printed when it failed
const ncclStep = readJson('nccl.json');
if (ncclStep?.line) {
  out.push('## NCCL (world size 1, against MPI on the CPU)', '', `- ${plain(ncclStep.line).slice(0, 600)}`);
  if (/FAILED/.test(ncclStep.line) && ncclStep.output) for (const l of firstLines(ncclStep.output, 8)) out.push(`      ${l.slice(0, 300)}`);
  out.push('');
}

if (memcheck !== null) {
  out.push('## compute-sanitizer memcheck', '', `- ${memSummary ?? 'no ERROR SUMMARY line (see memcheck.log)'}`);
  const errs = plain(memcheck).split('\n').filter((l) => /^=+ +(Invalid|Program hit|Address|Saved host|Misaligned|Out-of-range|Uninitialized)/.test(l)).slice(0, 12);
  for (const l of errs) out.push(`      ${l.trim().slice(0, 300)}`);
  const smokeFails = plain(memcheck).split('\n').filter((l) => l.startsWith('FAIL ')).slice(0, 12);
  for (const l of smokeFails) out.push(`      ${l.slice(0, 300)}`);
  out.push('');
}

process.stdout.write(out.join('\n'));
