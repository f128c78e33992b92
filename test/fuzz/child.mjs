// One fuzz batch in its own process: calls [start, start + count) of run `seed`. Before each
// call it prints "C <index> <call>" (a synchronous write, so a crash leaves the call on record),
// after it "R <index> <class> <code> <message>" with class ok | coded | uncoded | mismatch.
//   node test/fuzz/child.mjs --seed 7 --start 0 --count 200
// replays a batch; --start I --count 1 replays one call.
import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { rmSync } from 'node:fs';
import { buildCall, live, scratchPath } from './calls.mjs';
import { callRng } from './gen.mjs';

const { values } = parseArgs({
  options: { seed: { type: 'string', default: '1' }, start: { type: 'string', default: '0' }, count: { type: 'string', default: '100' }, lib: { type: 'string', default: '../../dist/index.js' }, inject: { type: 'string', default: '' } },
});
const lib = await import(new URL(values.lib, import.meta.url).href);
const { Tensor, synchronize } = lib;
const seed = Number(values.seed), start = Number(values.start), count = Number(values.count);

// --inject crash:5,hang:7,uncoded:3 replaces those calls by a fault of that kind: the test of
// the harness itself (a fuzzer that cannot see a crash finds none).
const inject = new Map(values.inject ? values.inject.split(',').map((kv) => { const [k, v] = kv.split(':'); return [Number(v), k]; }) : []);
const faults = {
  crash: () => process.kill(process.pid, 'SIGSEGV'),
  abort: () => process.abort(),
  hang: () => { for (;;); },
  uncoded: () => { throw new TypeError('injected'); },
  exit: () => process.exit(3),
};

const line = (s) => writeSync(1, `${s.replace(/\n/g, ' ')}\n`);

/** Tensors in a result (a Tensor, an array or an object of them). */
function tensorsIn(r, out = []) {
  // instanceof, not Tensor.isTensor: the harness also runs against older builds of the library
  if (r instanceof Tensor) out.push(r);
  else if (r && typeof r === 'object' && !ArrayBuffer.isView(r)) for (const v of Object.values(r)) if (v instanceof Tensor) out.push(v);
  return out;
}

function classify(e) {
  if (e instanceof Error && typeof e.code === 'string' && e.code.length > 0) return ['coded', e.code, e.message];
  return ['uncoded', '-', e instanceof Error ? `${e.constructor.name}: ${e.message}` : `non-Error thrown: ${String(e)}`];
}

for (let i = start; i < start + count; i++) {
  let c;
  try {
    c = buildCall(lib, callRng(seed, i));
    if (inject.has(i)) c = { text: `injected ${inject.get(i)}`, made: c.made, run: faults[inject.get(i)] };
  } catch (e) {
    line(`C ${i} <generator>`);
    line(`R ${i} generror - ${e?.stack ?? e}`);
    continue;
  }
  line(`C ${i} ${c.text}`);
  const t0 = performance.now();
  let result, outcome;
  try {
    result = c.run();
    if (result && typeof result.then === 'function') result = await result;
    // Work is queued: read every output back (and wait for the queue) so a deferred error or
    // a crash in the kernel is charged to this call.
    for (const t of tensorsIn(result)) if (live(t) && t.numel <= 1_000_000) await t.data();
    await synchronize('cpu');
    outcome = ['ok', '-', ''];
  } catch (e) {
    outcome = classify(e);
  }
  if (outcome[0] === 'ok' && c.check) {
    try {
      const msg = await c.check(result);
      if (msg) outcome = ['mismatch', '-', msg];
    } catch (e) {
      outcome = ['mismatch', '-', `the check threw: ${e?.message ?? e}`];
    }
  } else if (outcome[0] !== 'ok' && c.check) {
    // a call built valid must not be refused
    outcome = ['mismatch', outcome[1], `valid call refused: ${outcome[2]}`];
  }
  if (process.env.FUZZ_TRACE) line(`T ${i} ${(performance.now() - t0).toFixed(0)} ms heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB`);
  line(`R ${i} ${outcome[0]} ${outcome[1]} ${outcome[2].slice(0, 300)}`);
  for (const t of [...c.made, ...tensorsIn(result)]) {
    try {
      if (live(t)) t.dispose();
    } catch {
      /* a proxy or a half-made tensor: left to the GC */
    }
  }
}
try {
  await synchronize('cpu');
} catch {
  /* a deferred error with no reader left */
}
if (scratchPath()) rmSync(scratchPath(), { recursive: true, force: true });
line('DONE');
