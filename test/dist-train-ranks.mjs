// One rank of the data-parallel training test (test/dist-train.test.ts), run by
//   mpirun --allow-run-as-root --oversubscribe -n 2 node test/dist-train-ranks.mjs <dir> <seed> [interrupt]
// on the built package (../dist/index.js). With 'interrupt': rank 1 alone is interrupted (its
// signal reads aborted from the 4th step it launches on); every rank prints "RESULT <json>" with
// its summary and writes its weights to <dir>/weights-<N>-interrupted.f32. Otherwise every rank:
//   1. trains the small network (dropout 0.25, initial weights and dropout stream from <seed>;
//      rank 1 first draws other initial weights and another dropout seed, which the broadcast
//      from rank 0 must replace) for 2 epochs at batch
//      8 per rank, with its checkpoint and metrics log in <dir>/rank<N>/ (only rank 0 may write);
//   2. trains the same run again, stopped at step 4 (inside epoch 2) with a checkpoint in
//      <dir>/part/ (written by rank 0), then resumes it from that file to the end.
//   3. trains the first run again with gradient buckets of 10 KiB (several buckets, started
//      during backward) instead of the default 25 MiB (one bucket for this network).
// Writes the final flat weights of the three runs to <dir>/weights-<N>-{full,resumed,bucketed}.f32
// (raw float32) and prints one line "RESULT <json>" per rank: the first run's summary, the files
// found in its own directory and the number of buckets of the third run. Any failure names the rank and exits 1.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Conv2d, Dropout, Flatten, initDistributed, Linear, MaxPool2d, mulberry32, planBuckets, ReLU, Sequential, SyntheticDataset, Trainer } from '../dist/index.js';

const BUCKET_MB = 10 / 1024;
import { smallNet } from './small-net.mjs';

const [dir, seedArg, mode = 'train'] = process.argv.slice(2);
const seed = Number(seedArg);
let rank = '?';

process.on('uncaughtException', (e) => {
  console.error(`rank ${rank}: ${e instanceof Error ? e.stack : String(e)}`);
  process.exit(1);
});
process.on('unhandledRejection', (e) => {
  console.error(`rank ${rank}: ${e instanceof Error ? e.stack : String(e)}`);
  process.exit(1);
});

const comm = await initDistributed();
rank = String(comm.rank);
if (comm.worldSize !== 2) throw new Error(`world size ${comm.worldSize} (${comm.reason})`);

/** p of the network's Dropout: the ranks draw slices of one stream, so they still equal one process */
const DROPOUT = 0.25;
const lib = { Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout, mulberry32 };
const data = (split, size) => new SyntheticDataset({ size, imageSize: 32, split, seed: 11, numClasses: 2 });
const base = (extra) => ({
  model: smallNet(lib, comm.rank === 0 ? seed : seed + 1000, 2, DROPOUT),
  config: { test: 'ddp' },
  train: data('train', 48),
  val: data('val', 21),
  batchSize: 8,
  epochs: 2,
  optimizer: { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 },
  seed,
  workers: 0,
  dataFormat: 'float32',
  communicator: comm,
  ...extra,
});

async function params(trainer, name) {
  const p = await trainer.store.params.data();
  writeFileSync(join(dir, `weights-${comm.rank}-${name}.f32`), Buffer.from(p.buffer, p.byteOffset, p.byteLength));
}

if (mode === 'interrupt') {
  let reads = 0;
  const signal = { get aborted() { return comm.rank === 1 && ++reads >= 4; } };
  const t = new Trainer(base({ signal, checkpoint: join(dir, 'interrupted.safetensors') }));
  const summary = await t.run();
  await params(t, 'interrupted');
  await t.close();
  console.log(`RESULT ${JSON.stringify({ rank: comm.rank, summary })}`);
  await comm.finalize();
  process.exit(0);
}

// 1. the full run
const own = join(dir, `rank${comm.rank}`);
mkdirSync(own, { recursive: true });
const full = new Trainer(base({ checkpoint: join(own, 'ck.safetensors'), metrics: join(own, 'metrics.jsonl') }));
const summary = await full.run();
await params(full, 'full');
await full.close();
await comm.barrier(); // rank 0's files are written (run() resolves after them)
const wrote = readdirSync(own);

// 2. stopped inside epoch 2, resumed from rank 0's checkpoint by both ranks
const part = join(dir, 'part', 'ck.safetensors');
const first = new Trainer(base({ checkpoint: part, maxSteps: 4 }));
const s1 = await first.run();
await first.close();
if (s1.steps !== 4) throw new Error(`the stopped run took ${s1.steps} steps`);
await comm.barrier(); // rank 0 has written the checkpoint both ranks read
const resumed = new Trainer(base({ resume: part, model: smallNet(lib, seed + 2000 + comm.rank, 2, DROPOUT) }));
await resumed.run();
await params(resumed, 'resumed');
await resumed.close();

// 3. the full run again with the gradients averaged in small buckets (10 KiB: several, started
//    during backward) instead of the one bucket of the default 25 MiB
const bucketed = new Trainer(base({ bucketMB: BUCKET_MB }));
await bucketed.run();
await params(bucketed, 'bucketed');
const buckets = planBuckets(bucketed.store, BUCKET_MB).length;
await bucketed.close();

console.log(`RESULT ${JSON.stringify({ rank: comm.rank, summary, wrote, buckets })}`);
await comm.finalize();
