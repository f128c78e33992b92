// One process of `alexnet bench`'s distributed line (src/cli/bench-dist.ts), run as
//   node dist/cli/bench-rank.js <batch per rank> <timed steps> <threads>
// either alone (a world of one) or as a rank under mpirun. It times data-parallel training steps
// of the seed AlexNet as the Trainer takes them (forward, loss, backward, one allReduce 'avg' of
// the flat gradient buffer, SGD), with a wait for the CPU queue before and after the allReduce so
// that its share of the step can be told apart, and prints one line
//   BENCHRANK {"rank", "worldSize", "threads", "batch", "gradientBytes", "stepMs": [...], "allReduceMs": [...]}
// (the warm-up step left out). Errors print "rank N: <message>" on stderr and exit 1.
import { initDistributed } from '../dist/communicator.js';
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
  const r = rig('cpu', batch);
  r.model.train();
  const stepMs: number[] = [];
  const allReduceMs: number[] = [];
  await comm.barrier();
  for (let s = 0; s <= steps; s++) {
    const t0 = performance.now();
    r.store.zeroGrad();
    const logits = r.model.forward(r.x);
    const { loss, gradLogits } = softmaxCrossEntropy(logits, r.y);
    r.model.backward(gradLogits, false)?.dispose();
    await synchronize('cpu');
    const t1 = performance.now();
    comm.allReduce(r.store.grads, 'avg');
    await synchronize('cpu');
    const t2 = performance.now();
    r.sgd.step();
    await loss.data();
    const t3 = performance.now();
    for (const t of [logits, loss, gradLogits]) t.dispose();
    if (s > 0) {
      stepMs.push(t3 - t0);
      allReduceMs.push(t2 - t1);
    }
  }
  const out = { rank: comm.rank, worldSize: comm.worldSize, threads, batch, gradientBytes: r.store.grads.numel * 4, stepMs, allReduceMs };
  disposeRig(r);
  await comm.finalize();
  console.log(`BENCHRANK ${JSON.stringify(out)}`);
} catch (e) {
  console.error(`rank ${rank}: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
