// One process of `alexnet bench`'s distributed line (src/cli/bench-dist.ts), run as
//   node dist/cli/bench-rank.js <batch per rank> <timed steps> <threads>
// either alone (a world of one) or as a rank under mpirun. It times data-parallel training steps
// of the seed AlexNet in two ways, alternating step by step so that both see the same machine:
//  * 'flat': forward, loss, backward, one allReduce 'avg' of the flat gradient buffer, SGD, with a
//    wait for the CPU queue before and after the allReduce so that its share of the step can be
//    told apart (stepMs, allReduceMs);
//  * 'bucketed': as the Trainer takes them (src/dist/reducer.ts: buckets of 25 MiB started during
//    backward on the communication thread), with no wait inside the step (bucketedStepMs).
// It prints one line
//   BENCHRANK {"rank", "worldSize", "threads", "batch", "gradientBytes", "buckets", "stepMs": [...],
//              "allReduceMs": [...], "bucketedStepMs": [...]}
// (the warm-up steps left out). Errors print "rank N: <message>" on stderr and exit 1.
import { initDistributed } from '../dist/communicator.js';
import { GradientReducer } from '../dist/reducer.js';
import { setNumThreads } from '../info.js';
import { softmaxCrossEntropy } from '../ops/loss.js';
import { synchronize } from '../tensor.js';
import { disposeRig, rig } from './bench.js';

const args = process.argv.slice(2);
const [batch, steps, threads] = args.map(Number) as [number, number, number];
let rank = '?';
try {
  if (args.length !== 3 || ![batch, steps, threads].every((n) => Number.isInteger(n) && n > 0)) throw new Error('usage: bench-rank.js <batch> <steps> <threads>');
  const comm = await initDistributed();
  rank = String(comm.rank);
  setNumThreads(threads);
  const r = rig('cpu', batch, { infer: false });
  r.model.train();
  const reducer = new GradientReducer(comm, r.model, r.store);
  const stepMs: number[] = [];
  const allReduceMs: number[] = [];
  const bucketedStepMs: number[] = [];
  await comm.barrier();
  for (let s = 0; s <= steps; s++) {
    // flat
    let t0 = performance.now();
    r.store.zeroGrad();
    let logits = r.model.forward(r.x);
    let { loss, gradLogits } = softmaxCrossEntropy(logits, r.y);
    r.model.backward(gradLogits, false)?.dispose();
    await synchronize('cpu');
    const t1 = performance.now();
    comm.allReduce(r.store.grads, 'avg');
    await synchronize('cpu');
    const t2 = performance.now();
    r.sgd.step();
    await loss.data();
    let t3 = performance.now();
    for (const t of [logits, loss, gradLogits]) t.dispose();
    if (s > 0) {
      stepMs.push(t3 - t0);
      allReduceMs.push(t2 - t1);
    }
    // bucketed, overlapped with backward
    t0 = performance.now();
    r.store.zeroGrad();
    logits = r.model.forward(r.x);
    ({ loss, gradLogits } = softmaxCrossEntropy(logits, r.y));
    reducer.backward(gradLogits, false)?.dispose();
    r.sgd.step();
    await loss.data();
    t3 = performance.now();
    for (const t of [logits, loss, gradLogits]) t.dispose();
    if (s > 0) bucketedStepMs.push(t3 - t0);
  }
  const buckets = reducer.buckets.length;
  reducer.dispose();
  const out = { rank: comm.rank, worldSize: comm.worldSize, threads, batch, gradientBytes: r.store.grads.numel * 4, buckets, stepMs, allReduceMs, bucketedStepMs };
  disposeRig(r);
  await comm.finalize();
  console.log(`BENCHRANK ${JSON.stringify(out)}`);
} catch (e) {
  console.error(`rank ${rank}: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
