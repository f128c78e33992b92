// One rank of the mpirun tests (test/dist.test.ts), run by
//   mpirun --allow-run-as-root --oversubscribe -n 2 node test/dist-ranks.mjs <mode> <seed>
// on the built package (../dist/index.js). Modes:
//   collectives  allReduce 'sum' and 'avg' of random tensors (each rank's data drawn from
//                seed + rank, so every rank can rebuild every rank's data and compute the float64
//                reference), allReduceAsync ordered between two CPU copies, broadcast from rank 1
//                (float32 and int32), barrier, finalize.
//                Prints one line "RESULT <json>" per rank.
//   missing      (ALEXNET_MPI_LIBRARY=/nonexistent) initDistributed rejects; prints its code/message.
//   no-finalize  an allReduce, then the script ends without finalize(): the job must succeed
//                (initDistributed finalizes at the main thread's normal exit).
//   throw        rank 1 throws after initialising while rank 0 waits in an allReduce: the job
//                must end with a non-zero exit and a message naming rank 1.
//   kill         after a barrier rank 1 kills itself with SIGKILL (no handler, no MPI_Abort) while
//                rank 0 waits in an allReduce: mpirun must end the job, naming rank 1.
// Any failed check throws; the handler below names the rank on stderr and exits 1.
import { copy, initDistributed, mulberry32, Tensor } from '../dist/index.js';

const [mode = 'collectives', seedArg = '1'] = process.argv.slice(2);
const seed = Number(seedArg);
let rank = '?';

process.on('uncaughtException', (e) => {
  console.error(`rank ${rank}: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});

function data(r, n, salt) {
  const g = mulberry32((seed * 1000 + r * 17 + salt) >>> 0);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (g() * 2 - 1) * (1 + 100 * g());
  return out;
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function compare(actual, expected, what) {
  check(actual.length === expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const tol = 1e-6 + 1e-6 * Math.abs(expected[i]);
    if (!(err <= tol)) throw new Error(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
    worst = Math.max(worst, err);
  }
  return worst;
}

if (mode === 'missing') {
  // launched under mpirun with ALEXNET_MPI_LIBRARY pointing nowhere: initDistributed must refuse
  try {
    await initDistributed();
  } catch (e) {
    console.log(`RESULT ${JSON.stringify({ code: e.code, message: e.message })}`);
    process.exit(0);
  }
  throw new Error('initDistributed succeeded without libmpi');
}

const comm = await initDistributed();
rank = String(comm.rank);
const world = comm.worldSize;
check(comm.backend === 'mpi', `backend is ${comm.backend} (${comm.reason})`);

if (mode === 'no-finalize') {
  // an allReduce, then the program just ends: finalize must happen at exit, or mpirun fails the job
  const t = Tensor.from([comm.rank + 1], [1]);
  comm.allReduce(t, 'sum');
  const [v] = await t.data();
  check(v === 3, `allReduce of 1 and 2 gave ${v}`);
  console.log(`RESULT ${JSON.stringify({ rank: comm.rank, value: v })}`);
} else if (mode === 'throw') {
  if (comm.rank === 1) throw new Error('failing on purpose before the allReduce');
  const t = Tensor.from(data(comm.rank, 64, 0), [64]);
  comm.allReduce(t, 'sum');
  await t.data(); // never completes: rank 1 is gone
  throw new Error('the allReduce completed without rank 1');
} else if (mode === 'kill') {
  // both ranks reach the barrier, so rank 1 dies after MPI is up and rank 0 is inside the allReduce
  // (or about to enter it) when rank 1 is gone; a SIGKILL runs no handler and no MPI_Abort
  await comm.barrier();
  if (comm.rank === 1) process.kill(process.pid, 'SIGKILL');
  const t = Tensor.from(data(comm.rank, 64, 0), [64]);
  comm.allReduce(t, 'sum');
  await t.data(); // never completes: rank 1 is gone
  throw new Error('the allReduce completed without rank 1');
}

if (mode === 'collectives') await collectives();
else if (mode !== 'no-finalize' && mode !== 'kill') throw new Error(`unknown mode '${mode}'`);

async function collectives() {
  // allReduce 'sum' and 'avg' (the sizes include one that is not a multiple of anything handy)
  const n = 1003;
  const sumT = Tensor.from(data(comm.rank, n, 1), [n]);
  const avgT = Tensor.from(data(comm.rank, n, 2), [17, 59]);
  comm.allReduce(sumT, 'sum');
  comm.allReduce(avgT, 'avg');
  const refSum = new Float64Array(n);
  const refAvg = new Float64Array(n);
  for (let r = 0; r < world; r++) {
    const a = data(r, n, 1);
    const b = data(r, n, 2);
    for (let i = 0; i < n; i++) {
      refSum[i] += a[i];
      refAvg[i] += b[i] / world;
    }
  }
  const sumErr = compare(await sumT.data(), refSum, 'allReduce sum');
  const avgErr = compare(await avgT.data(), refAvg, 'allReduce avg');
  // the tensors really changed (a world of one would pass the comparison only if it had one rank)
  check(world === 2, `world size ${world}`);

  // allReduceAsync on the communication thread, ordered by events: it reduces what the CPU copy
  // queued before it wrote (not the zeros before), and a copy queued after work.wait() reads the
  // reduced values (not the input); big enough that a missing order would show
  const m = 1 << 21;
  const src = Tensor.from(data(comm.rank, m, 4), [m]);
  const t = Tensor.zeros([m]);
  const out = Tensor.zeros([m]);
  copy(t, src);
  const work = comm.allReduceAsync(t, 'sum');
  work.wait();
  copy(out, t);
  const refAsync = new Float64Array(m);
  for (let r = 0; r < world; r++) {
    const a = data(r, m, 4);
    for (let i = 0; i < m; i++) refAsync[i] += a[i];
  }
  const asyncErr = compare(await out.data(), refAsync, 'allReduceAsync sum, read after wait()');
  for (const x of [src, t, out]) x.dispose();

  // broadcast from rank 1: float32 and int32
  const b32 = Tensor.from(data(comm.rank, 257, 3), [257]);
  comm.broadcast(b32, 1);
  const got = await b32.data();
  const want = data(1, 257, 3);
  for (let i = 0; i < want.length; i++) check(got[i] === want[i], `broadcast float32 element ${i}: ${got[i]} != ${want[i]}`);
  const ints = Int32Array.from({ length: 33 }, (_, i) => (comm.rank + 1) * 1000 + i);
  const bi = Tensor.from(ints, [33], { dtype: 'int32' });
  comm.broadcast(bi, 1);
  const gotInts = await bi.data();
  for (let i = 0; i < 33; i++) check(gotInts[i] === 2000 + i, `broadcast int32 element ${i}: ${gotInts[i]}`);

  await comm.barrier();
  const result = { rank: comm.rank, worldSize: world, localRank: comm.localRank, threadLevel: comm.threadLevel, sumErr, avgErr, asyncErr };
  await comm.finalize();
  console.log(`RESULT ${JSON.stringify(result)}`);
}
