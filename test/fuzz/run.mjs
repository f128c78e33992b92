// The fuzz runner: runs batches of calls in child processes (test/fuzz/child.mjs) and sorts
// every call into ok, coded error, uncoded error, mismatch (a valid call whose result differs
// from the float64 reference, or that was refused), crash (the child died: a signal or an
// abnormal exit) or hang (no progress for callTimeoutMs). After a crash or a hang the batch
// goes on in a fresh child from the next call, so one bad call hides no other.
//   npm run fuzz -- --seconds 600 [--seed 1] [--batch 500] [--parallel 2] [--verbose] [--lib other/dist/index.js]
// FUZZ_ONLY=model,Trainer,... in the environment draws from those entries only (calls.mjs and
// calls-recent.mjs name them), for a long run aimed at part of the surface.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));

/** Runs calls [start, start + count) of `seed`, restarting after a crash or hang. */
export async function runBatch(seed, start, count, { callTimeoutMs = 20_000, onFailure = () => {}, inject = '', lib = '' } = {}) {
  const stats = { calls: 0, ok: 0, coded: 0, uncoded: 0, mismatch: 0, crash: 0, hang: 0, generror: 0 };
  const failures = [];
  /** calls per entry point (the call text's name), for the summary */
  const byName = new Map();
  let next = start;
  const end = start + count;
  while (next < end) {
    const r = await runChild(seed, next, end - next, callTimeoutMs, inject, lib);
    for (const res of r.results) {
      stats.calls++;
      stats[res.cls]++;
      const name = (r.texts.get(res.index) ?? '?').split('(')[0];
      const e = byName.get(name) ?? { calls: 0, ok: 0 };
      e.calls++;
      if (res.cls === 'ok') e.ok++;
      byName.set(name, e);
      if (res.cls !== 'ok' && res.cls !== 'coded') {
        const f = { seed, index: res.index, kind: res.cls, call: r.texts.get(res.index) ?? '?', message: res.message };
        failures.push(f);
        onFailure(f);
      }
    }
    if (r.done) break;
    // A child that dies before its first call (the library failed to load) is not a fuzz find.
    if (r.texts.size === 0 && r.results.length === 0 && r.kind === 'crash') throw new Error(`fuzz child failed to start: ${r.why}`);
    // The child died or hung in the call it last announced (or, if it announced none after
    // its last result, while building the next one: that call is charged).
    const at = r.current;
    stats.calls++;
    stats[r.kind]++;
    const f = { seed, index: at, kind: r.kind, call: r.texts.get(at) ?? '(between calls)', message: r.why };
    failures.push(f);
    onFailure(f);
    next = at + 1;
  }
  return { stats, failures, byName };
}

function runChild(seed, start, count, callTimeoutMs, inject, lib) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD, '--seed', String(seed), '--start', String(start), '--count', String(count), ...(inject ? ['--inject', inject] : []), ...(lib ? ['--lib', lib] : [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const texts = new Map();
    const results = [];
    let current = null, done = false, buf = '', err = '', hung = false;
    let timer = setTimeout(onHang, callTimeoutMs);
    function onHang() {
      hung = true;
      child.kill('SIGKILL');
    }
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        clearTimeout(timer);
        timer = setTimeout(onHang, callTimeoutMs);
        if (l.startsWith('C ')) {
          const sp = l.indexOf(' ', 2);
          current = Number(l.slice(2, sp));
          texts.set(current, l.slice(sp + 1));
        } else if (l.startsWith('R ')) {
          const [, idx, cls, code, ...msg] = l.split(' ');
          results.push({ index: Number(idx), cls, code, message: `${code} ${msg.join(' ')}`.trim() });
          current = null;
        } else if (l === 'DONE') done = true;
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c) => {
      if (err.length < 4000) err += c;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ok = done && code === 0;
      const why = hung ? `no progress for ${callTimeoutMs} ms` : `exit ${code} signal ${signal}: ${err.trim().split('\n').slice(-6).join(' | ').slice(0, 600)}`;
      // A child that finished its calls but then exited badly still crashed (in teardown).
      if (done && !ok) results.push({ index: start + count - 1, cls: 'crash', code: '-', message: `after the last call: ${why}` });
      resolve({ done, results, texts, current: current ?? (results.length ? results[results.length - 1].index + 1 : start), kind: hung ? 'hang' : 'crash', why });
    });
  });
}

/** Runs seeds seed, seed+1, ... for about `seconds` (or `seeds` batches), two children at a time. */
export async function fuzz({ seconds = 60, seed = 1, batch = 500, seeds = Infinity, parallel = 2, callTimeoutMs = 20_000, lib = '', onFailure, onBatch } = {}) {
  const total = { calls: 0, ok: 0, coded: 0, uncoded: 0, mismatch: 0, crash: 0, hang: 0, generror: 0 };
  const failures = [];
  const byName = new Map();
  const t0 = Date.now();
  let nextSeed = seed, started = 0;
  const worker = async () => {
    while ((Date.now() - t0) / 1000 < seconds && started < seeds) {
      const s = nextSeed++;
      started++;
      const r = await runBatch(s, 0, batch, { callTimeoutMs, onFailure, lib });
      for (const k of Object.keys(total)) total[k] += r.stats[k];
      failures.push(...r.failures);
      for (const [k, v] of r.byName) {
        const e = byName.get(k) ?? { calls: 0, ok: 0 };
        e.calls += v.calls;
        e.ok += v.ok;
        byName.set(k, e);
      }
      onBatch?.(s, r.stats);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { ...total, seconds: (Date.now() - t0) / 1000, seedsRun: started, firstSeed: seed, failures, byName };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      seed: { type: 'string', default: String(Date.now() % 1_000_000) },
      batch: { type: 'string', default: '500' },
      parallel: { type: 'string', default: '2' },
      verbose: { type: 'boolean', default: false },
      // another build of the library (its dist/index.js), e.g. an older commit's
      lib: { type: 'string', default: '' },
    },
  });
  const seconds = Number(values.seconds);
  console.log(`fuzz: ${seconds} s from seed ${values.seed}, ${values.batch} calls per child, ${values.parallel} at a time`);
  const seen = new Map();
  const r = await fuzz({
    seconds,
    seed: Number(values.seed),
    batch: Number(values.batch),
    parallel: Number(values.parallel),
    lib: values.lib ? pathToFileURL(resolve(values.lib)).href : '',
    onFailure: (f) => {
      // Print each kind of failure once per operator and message (a long run repeats them).
      const key = `${f.kind} ${f.call.split('(')[0]} ${f.message.replace(/[0-9]+/g, '#')}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (values.verbose || seen.get(key) === 1 || f.kind === 'crash' || f.kind === 'hang')
        console.log(`${f.kind.toUpperCase()} seed ${f.seed} call ${f.index}: ${f.call}\n  -> ${f.message}\n  replay: node test/fuzz/child.mjs --seed ${f.seed} --start ${f.index} --count 1`);
    },
    onBatch: values.verbose ? (s, st) => console.log(`seed ${s}: ${JSON.stringify(st)}`) : undefined,
  });
  const { failures, byName, ...summary } = r;
  console.log('\ncalls (ok) per entry point:');
  const rows = [...byName].sort((a, b) => b[1].calls - a[1].calls).map(([k, v]) => `${k} ${v.calls} (${v.ok})`);
  for (let i = 0; i < rows.length; i += 4) console.log(`  ${rows.slice(i, i + 4).join(', ')}`);
  if (seen.size) {
    console.log('\nfailures by kind, operator and message:');
    for (const [k, n] of [...seen].sort((a, b) => b[1] - a[1])) console.log(`${String(n).padStart(7)}  ${k}`);
  }
  console.log(`\ncalls ${r.calls} in ${r.seconds.toFixed(0)} s (${r.seedsRun} seeds from ${r.firstSeed}): ok ${r.ok}, coded errors ${r.coded}, uncoded errors ${r.uncoded}, mismatches ${r.mismatch}, crashes ${r.crash}, hangs ${r.hang}`);
  console.log(JSON.stringify({ ...summary, failures: failures.length }));
  process.exitCode = r.crash + r.hang + r.mismatch + r.generror > 0 ? 1 : 0;
}
