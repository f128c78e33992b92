// Data-parallel training (src/train/trainer.ts with a communicator; src/data/loader.ts `shard`):
//  * in this process: the loader's shards are this rank's DistributedSampler indices, disjoint
//    and covering per epoch ('pad': up to the padding; 'strided': exactly), and the batches it
//    loads hold exactly those samples; a checkpoint records the world size and one stopped inside
//    an epoch by 2 ranks is refused (ERR_CHECKPOINT) by a single process, one at an epoch's end
//    accepted;
//  * under `mpirun -n 2` (test/dist-train-ranks.mjs, on the built package): two ranks at batch B
//    end with the same weights (on both ranks) as one process at batch 2B that sees, step by
//    step, the union of the ranks' batches; rank 0 alone writes the checkpoint and the metrics
//    log; the validation figures equal one process's; a 2-rank run stopped at a checkpoint and
//    resumed by 2 ranks ends with the weights of the uninterrupted 2-rank run; the gradients
//    averaged in several buckets during backward give the one-bucket run's weights bit for bit;
//    `alexnet train
//    --nproc 2` launches the ranks itself (one summary, a checkpoint of 2 ranks, mpirun's status;
//    a Ctrl-C stops every rank after a step with one checkpoint).
//    Skipped, saying so, where mpirun or libmpi is absent;
//  * `--nproc`'s mpirun command line (src/cli/launch.ts), and its refusals: mpirun missing from
//    the PATH, already inside an mpirun job.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Conv2d, DataLoader, DistributedSampler, Dropout, Flatten, Linear, loadNative, MaxPool2d, mulberry32, ReLU, Sequential, SyntheticDataset, Trainer,
  type Dataset, type Sample, type SampleContext,
} from '../src/index.js';
import { captureTrainingState, loadTrainingState, saveTrainingState } from '../src/train/state.js';
import { mpirunPlan, withoutNproc } from '../src/cli/launch.js';
import { smallNet as sharedSmallNet } from './small-net.mjs';

const root = join(__dirname, '..');
const hasMpirun = spawnSync('sh', ['-c', 'command -v mpirun']).status === 0;
const launched = process.env.OMPI_COMM_WORLD_SIZE !== undefined;
const mpiFound = loadNative().mpiLibrary().found;

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'alexnet-ddp-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Sample i's image is [i, i, i] (1x1 pixels): a batch says which samples it holds. */
function indexDataset(n: number): Dataset {
  return {
    length: n,
    classNames: ['a', 'b', 'c'],
    sampleShape: [3, 1, 1],
    load: (i: number) => ({ image: Float32Array.of(i, i, i), label: i % 3 }),
  };
}

async function loaded(loader: DataLoader, epoch: number): Promise<number[]> {
  const out: number[] = [];
  for await (const b of loader.batches({ epoch })) {
    if (b.format === 'uint8') throw new Error('expected float32 batches');
    for (let s = 0; s < b.labels.length; s++) {
      const v = b.images[s * 3]!;
      expect(b.labels[s]).toBe(v % 3);
      expect(b.indices[s]).toBe(v);
      out.push(v);
    }
  }
  return out;
}

describe('DataLoader shards', () => {
  it("'pad': each rank loads its DistributedSampler indices; per epoch the shards are disjoint up to the padding and cover the set", async () => {
    const r = mulberry32(Math.floor(Math.random() * 1e9));
    for (const [n, world, batchSize] of [[37, 2, 4], [50, 3, 7], [8, 2, 3], [29, 4, 5]] as const) {
      const seed = Math.floor(r() * 1000);
      const ds = indexDataset(n);
      for (const epoch of [0, 3]) {
        const all: number[] = [];
        for (let rank = 0; rank < world; rank++) {
          const loader = new DataLoader(ds, { batchSize, shuffle: true, seed, workers: 0, shard: { rank, worldSize: world } });
          const want = new DistributedSampler(n, { rank, worldSize: world, seed }).indices(epoch);
          expect(loader.samplesPerEpoch).toBe(Math.ceil(n / world));
          expect(loader.length).toBe(Math.ceil(want.length / batchSize));
          expect(loader.order(epoch)).toEqual(want);
          const got = await loaded(loader, epoch);
          expect(got).toEqual(want); // the samples loaded are exactly this rank's, in its order
          all.push(...got);
          await loader.close();
        }
        // covering: every index; disjoint: only the padding (totalSize - n) repeats
        expect(new Set(all).size).toBe(n);
        expect(all.length - n).toBe(Math.ceil(n / world) * world - n);
      }
      // another epoch shuffles differently (the same seed)
      const l0 = new DataLoader(ds, { batchSize, shuffle: true, seed, workers: 0, shard: { rank: 0, worldSize: world } });
      expect(l0.order(1)).not.toEqual(l0.order(2));
    }
  });

  it("'strided': the ranks' shares partition the set exactly (the evaluation shares)", async () => {
    for (const [n, world, batchSize] of [[37, 2, 4], [10, 3, 4], [2, 3, 1]] as const) {
      const ds = indexDataset(n);
      const all: number[] = [];
      for (let rank = 0; rank < world; rank++) {
        const loader = new DataLoader(ds, { batchSize, workers: 0, shard: { rank, worldSize: world, mode: 'strided' } });
        const got = await loaded(loader, 0);
        expect(got.length).toBe(loader.samplesPerEpoch);
        expect(got).toEqual(Array.from({ length: n }, (_, i) => i).filter((i) => i % world === rank));
        all.push(...got);
      }
      expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    }
  });

  it('bad shards are ERR_DATA errors', () => {
    const ds = indexDataset(4);
    expect(() => new DataLoader(ds, { batchSize: 1, shard: { rank: 2, worldSize: 2 } })).toThrow(/shard.rank must be in \[0, 2\) but got 2/);
    expect(() => new DataLoader(ds, { batchSize: 1, shard: { rank: 0, worldSize: 0 } })).toThrow(/shard.worldSize must be an integer >= 1/);
    expect(() => new DataLoader(ds, { batchSize: 1, shard: { rank: 0, worldSize: 2, mode: 'x' as 'pad' } })).toThrow(/shard.mode must be 'pad' or 'strided'/);
  });
});

/**
 * The small network of the training tests, with dropout 0.25 as in test/dist-train-ranks.mjs:
 * the ranks draw their slices of one dropout stream (Dropout.shardStream), so together they
 * draw the masks of one process at the global batch.
 */
function smallNet(seed = 1): Sequential {
  return sharedSmallNet({ Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout, mulberry32 }, seed, 2, 0.25) as Sequential;
}

describe('the world size in the training state', () => {
  it('a position inside an epoch recorded by 2 ranks is refused by one process; at an epoch boundary it is accepted', async () => {
    const dir = await tempDir();
    const train = new SyntheticDataset({ size: 16, imageSize: 32, split: 'train', seed: 3, numClasses: 2 });
    const t = new Trainer({ model: smallNet(2), config: {}, train, batchSize: 4, workers: 0 });
    const state = await t.trainingState();
    expect(state.dataOrder).toEqual({ seed: 0, epoch: 0, batch: 0, batchSize: 4 }); // a single process records no world size
    const inside = join(dir, 'inside.safetensors');
    const boundary = join(dir, 'boundary.safetensors');
    await saveTrainingState(inside, { ...state, step: 3, dataOrder: { seed: 0, epoch: 1, batch: 1, batchSize: 4, worldSize: 2 } });
    await saveTrainingState(boundary, { ...state, step: 4, epoch: 2, dataOrder: { seed: 0, epoch: 2, batch: 0, batchSize: 4, worldSize: 2 } });
    expect((await loadTrainingState(inside)).dataOrder).toEqual({ seed: 0, epoch: 1, batch: 1, batchSize: 4, worldSize: 2 });
    await expect(t.loadCheckpoint(inside)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/inside epoch 2 .*with 2 data-parallel ranks; this run has 1/) });
    expect(t.position).toEqual({ step: 0, epoch: 0, batch: 0 }); // nothing changed
    await t.loadCheckpoint(boundary);
    expect(t.position).toEqual({ step: 4, epoch: 2, batch: 0 });
    await t.close();
    // a bad recorded world size is refused when the header is read
    const bad = join(dir, 'bad.safetensors');
    await saveTrainingState(bad, { ...(await captureTrainingState({ model: t.model, store: t.store, optimizer: t.optimizer }, { config: {}, seed: 0, position: { step: 0, epoch: 0, batch: 0 } })), dataOrder: { seed: 0, epoch: 0, batch: 1, worldSize: 0 } });
    await expect(loadTrainingState(bad)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/'dataOrder'\.worldSize must be a positive integer, got 0/) });
  });
});

describe('train --nproc: the mpirun command line and its refusals', () => {
  it('the same command minus --nproc, -n N, --allow-run-as-root only as root, --oversubscribe past the cores, the cores shared out as --threads', () => {
    const args = ['train', '--nproc', '3', '--batch-size', '8', '--json'];
    const p = mpirunPlan(3, '/x/alexnet.js', args, { root: false, cores: 4, node: '/n' });
    expect(p.command).toBe('mpirun');
    expect(p.args).toEqual(['-n', '3', '/n', '/x/alexnet.js', 'train', '--batch-size', '8', '--json', '--threads', '1']);
    expect(mpirunPlan(5, '/x/a.js', ['train', '--nproc=5'], { root: true, cores: 4, node: '/n' }).args)
      .toEqual(['--allow-run-as-root', '--oversubscribe', '-n', '5', '/n', '/x/a.js', 'train', '--threads', '1']);
    expect(mpirunPlan(2, '/x/a.js', ['train', '--nproc', '2'], { root: false, cores: 16, node: '/n' }).args).toContain('8');
    // the user's --threads is kept; an operand after -- is passed through unchanged
    expect(mpirunPlan(2, '/x/a.js', ['train', '--threads', '3', '--nproc', '2'], { root: false, cores: 2, node: '/n' }).args)
      .toEqual(['-n', '2', '/n', '/x/a.js', 'train', '--threads', '3']);
    expect(withoutNproc(['a', '--', '--nproc', '2'])).toEqual(['a', '--', '--nproc', '2']);
    // --threads goes before a '--' (after it, it would be an operand); none for a plain script
    expect(mpirunPlan(2, '/x/a.js', ['train', '--nproc', '2', '--', 'x'], { root: false, cores: 2, node: '/n' }).args)
      .toEqual(['-n', '2', '/n', '/x/a.js', 'train', '--threads', '1', '--', 'x']);
    expect(mpirunPlan(2, '/x/r.js', ['4', '1', '1'], { root: false, cores: 2, node: '/n', threads: false }).args).toEqual(['-n', '2', '/n', '/x/r.js', '4', '1', '1']);
  });

  const bin = join(root, 'bin', 'alexnet.js');
  it('without mpirun on the PATH: ERR_DIST naming the package to install', async () => {
    const empty = await tempDir();
    const r = spawnSync(process.execPath, [bin, 'train', '--nproc', '2', '--max-steps', '1'], { encoding: 'utf8', env: { ...process.env, PATH: empty } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/mpirun not found on the PATH: install Open MPI \(Debian\/Ubuntu: apt install openmpi-bin.*\(ERR_DIST\)/);
  });

  it('refused inside an mpirun job (a rank would start a job of its own)', () => {
    const r = spawnSync(process.execPath, [bin, 'train', '--nproc', '2', '--max-steps', '1'], { encoding: 'utf8', env: { ...process.env, OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_RANK: '1' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/rank 1: alexnet: --nproc: this process is already a rank of an mpirun job \(OMPI_COMM_WORLD_SIZE=2\).*\(ERR_DIST\)/);
  });

  it('--nproc must be a positive integer', () => {
    const r = spawnSync(process.execPath, [bin, 'train', '--nproc', '0'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--nproc must be an integer from 1 to 1024, got '0'/);
  });
});

// ---------------------------------------------------------------------------------------------
// Under mpirun -n 2

const SIZE = 48; // training samples: 24 per rank, 3 steps of B = 8 per epoch
const B = 8;
const EPOCHS = 2;

function mpirun(args: string[], seconds = 120) {
  return spawnSync('timeout', ['--kill-after=5', String(seconds), 'mpirun', '--allow-run-as-root', '--oversubscribe', '-n', '2',
    process.execPath, join(root, 'test', 'dist-train-ranks.mjs'), ...args], { encoding: 'utf8', cwd: root });
}

/** A rank's weights as dist-train-ranks.mjs wrote them after its `name` run. */
async function weightsOf(dir: string, rank: number, name: string): Promise<Float32Array> {
  const b = await readFile(join(dir, `weights-${rank}-${name}.f32`));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function results(stdout: string): Array<Record<string, unknown>> {
  return stdout.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)));
}

/**
 * The dataset `base` re-indexed so that a single-process Trainer (which shuffles with its
 * loader's permutation of (seed, epoch)) reads, at batch size 2B, batch k of every epoch = rank
 * 0's batch k then rank 1's batch k of the 2-rank run (whose shards come from the sampler).
 */
function unionOrder(base: Dataset, seed: number): Dataset {
  const maps: number[][] = [];
  const perm = new DataLoader(base, { batchSize: 2 * B, shuffle: true, seed, workers: 0 });
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const shards = [0, 1].map((rank) => new DistributedSampler(base.length, { rank, worldSize: 2, seed }).indices(epoch));
    const wanted: number[] = [];
    for (let k = 0; k * B < shards[0]!.length; k++) for (const s of shards) wanted.push(...s.slice(k * B, (k + 1) * B));
    const order = perm.order(epoch); // the single process reads position j from index order[j]
    const map = new Array<number>(base.length);
    order.forEach((i, j) => (map[i] = wanted[j]!));
    maps.push(map);
  }
  return {
    length: base.length,
    classNames: base.classNames,
    sampleShape: base.sampleShape,
    load: (i: number, ctx: SampleContext): Sample | Promise<Sample> => base.load(maps[ctx.epoch]![i]!, ctx),
  };
}

/** The first index where two arrays differ (bitwise, as toEqual would), or -1: cheap to report for 137k weights. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { abs: number; rel: number } {
  let abs = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    abs = Math.max(abs, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { abs, rel: abs / scale };
}

describe.skipIf(!hasMpirun || launched)('under mpirun -n 2 (needs openmpi-bin: mpirun)', () => {
  it.skipIf(!mpiFound)('two ranks at batch B train to the weights of one process at batch 2B over the union of their batches; rank 0 alone writes; resume is exact', async () => {
    /** The 2-rank run and one process at batch 2B from `seed`: their weights and how far apart. */
    const attempt = async (seed: number) => {
      const dir = await tempDir();
      const r = mpirun([dir, String(seed)], 200);
      expect(r.status, `mpirun failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
      const res = results(r.stdout).sort((a, b) => (a.rank as number) - (b.rank as number));
      const single = new Trainer({
        model: smallNet(seed), config: {}, train: unionOrder(data('train', SIZE), seed), val: data('val', 21), batchSize: 2 * B, epochs: EPOCHS,
        optimizer: { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 }, seed, workers: 0, dataFormat: 'float32',
      });
      const summary = await single.run();
      const want = await single.store.params.data();
      await single.close();
      const full0 = await weightsOf(dir, 0, 'full');
      return { seed, dir, res, summary, want, full0, d: maxDiff(full0, want) };
    };
    const data = (split: 'train' | 'val', size: number) => new SyntheticDataset({ size, imageSize: 32, split, seed: 11, numClasses: 2 });
    // float32 sums in another order over 6 steps: relative differences of ~1e-7 (2e-7 at most over
    // 50 seeds), far below what any missed or double-counted sample, or an unaveraged gradient,
    // would give (checked below). Unless that rounding tips a ReLU or max-pool decision the other
    // way in one run and not the other: then one gradient term moves whole, and the weights can
    // differ by 1e-3 (one seed in 50 gave 3e-5, one CI run 2e-3). Such a flip belongs to a seed,
    // a wrong sum to every seed: a second seed is drawn when the first is off, and must agree.
    let run = await attempt(1 + Math.floor(Math.random() * 1000));
    if (!(run.d.rel < 2e-4)) {
      console.log(`seed ${run.seed}: max relative difference ${run.d.rel} (a flipped decision?); a second seed`);
      run = await attempt(1 + ((run.seed + 1 + Math.floor(Math.random() * 998)) % 1000));
    }
    const { seed, dir, res, summary, want, full0, d } = run;
    expect(res.map((x) => x.rank)).toEqual([0, 1]);
    const [r0, r1] = res as Array<{ rank: number; summary: Record<string, number>; wrote: string[]; buckets: number }>;
    const [full1, resumed0, resumed1, bucketed0, bucketed1] = await Promise.all(
      [weightsOf(dir, 1, 'full'), weightsOf(dir, 0, 'resumed'), weightsOf(dir, 1, 'resumed'), weightsOf(dir, 0, 'bucketed'), weightsOf(dir, 1, 'bucketed')]);

    // rank 0 alone wrote the checkpoint and the metrics log (each rank listed what existed in its
    // own directory after its run: rank 1's stays empty)
    expect(r0!.wrote.sort()).toEqual(['ck.safetensors', 'metrics.jsonl']);
    expect(r1!.wrote).toEqual([]);
    expect(existsSync(join(dir, 'rank1', 'ck.safetensors'))).toBe(false);
    // the ranks hold the same weights, bit for bit (rank 1 started from other ones)
    expect(full0.length).toBeGreaterThan(100_000);
    expect(firstDifference(full1, full0), 'the ranks ended with other weights').toBe(-1);

    // one process at batch 2B over the same samples per step
    expect(summary.steps).toBe(r0!.summary.steps);
    expect(d.rel, `seed ${seed}: max |diff| ${d.abs}`).toBeLessThan(2e-4);
    // the weights moved from the initial ones much more than that
    const init = await smallNet(seed).parameters()[0]!.data.data();
    expect(maxDiff(full0.slice(0, init.length), want.slice(0, init.length)).abs).toBeLessThan(maxDiff(init, want.slice(0, init.length)).abs / 100);
    // evaluation over the ranks' shares gives one process's figures
    expect(r0!.summary.valTop1).toBeCloseTo(summary.valTop1, 6);
    expect(r0!.summary.valTop5).toBeCloseTo(summary.valTop5, 6);
    expect(Math.abs(r0!.summary.valLoss - summary.valLoss)).toBeLessThan(1e-3 * Math.abs(summary.valLoss) + 1e-5);
    // the log came from rank 0 and has the val records of both epochs
    const log = (await readFile(join(dir, 'rank0', 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log.filter((l) => l.type === 'val')).toHaveLength(EPOCHS);

    // 2 ranks stopped inside epoch 2 and resumed by 2 ranks: the uninterrupted run's weights
    expect(firstDifference(resumed0, full0), 'rank 0 resumed to other weights').toBe(-1);
    expect(firstDifference(resumed1, full0), 'rank 1 resumed to other weights').toBe(-1);

    // the gradients averaged in several buckets started during backward (on the communication
    // thread, overlapping the CPU's backward) instead of one: the same weights, bit for bit
    expect(r0!.buckets).toBeGreaterThanOrEqual(3);
    expect(firstDifference(bucketed0, full0), 'rank 0: bucketed averaging gave other weights').toBe(-1);
    expect(firstDifference(bucketed1, full0), 'rank 1: bucketed averaging gave other weights').toBe(-1);
  }, 240_000);

  it.skipIf(!mpiFound)('`mpirun -n 2 alexnet train`: one summary (rank 0 prints, rank 1 is silent), one checkpoint recording 2 ranks; errors name their rank', async () => {
    const dir = await tempDir();
    const bin = join(root, 'bin', 'alexnet.js');
    const run = (args: string[]) =>
      spawnSync('timeout', ['--kill-after=5', '150', 'mpirun', '--allow-run-as-root', '--oversubscribe', '-n', '2', process.execPath, bin, 'train', ...args], { encoding: 'utf8', cwd: dir });
    const r = run(['--train-size', '16', '--val-size', '4', '--batch-size', '2', '--epochs', '1', '--max-steps', '2', '--workers', '0', '--checkpoint', 'ck.safetensors', '--metrics', 'm.jsonl', '--json']);
    expect(r.status, `mpirun failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const summaries = lines.filter((l) => l.type === 'summary');
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({ steps: 2, stopped: 'completed', checkpoint: 'ck.safetensors' });
    expect(lines.filter((l) => l.type === 'checkpoint')).toHaveLength(1);
    expect(lines.find((l) => l.type === 'checkpoint').batchesPerEpoch).toBe(4); // 16 samples / 2 ranks / batch 2
    const state = await loadTrainingState(join(dir, 'ck.safetensors'));
    expect(state.dataOrder).toMatchObject({ epoch: 0, batch: 2, batchSize: 2, worldSize: 2 });
    expect(state.step).toBe(2);
    const metrics = (await readFile(join(dir, 'm.jsonl'), 'utf8')).trim().split('\n');
    expect(metrics.filter((l) => JSON.parse(l).type === 'val')).toHaveLength(1); // written once, by rank 0

    const bad = run(['--resume', join(dir, 'missing.safetensors'), '--json']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/rank [01]: alexnet: .*missing\.safetensors/);
  }, 180_000);

  it.skipIf(!mpiFound)('`alexnet train --nproc 2` starts the ranks itself: one summary, one checkpoint recording 2 ranks; a failing rank\'s status is the exit status', async () => {
    const dir = await tempDir();
    const bin = join(root, 'bin', 'alexnet.js');
    const run = (args: string[]) => spawnSync('timeout', ['--kill-after=5', '150', process.execPath, bin, 'train', ...args], { encoding: 'utf8', cwd: dir });
    const r = run(['--nproc', '2', '--train-size', '16', '--val-size', '4', '--batch-size', '2', '--epochs', '1', '--max-steps', '3', '--workers', '0', '--checkpoint', 'ck.safetensors', '--metrics', 'm.jsonl', '--json']);
    expect(r.status, `--nproc 2 failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const summaries = lines.filter((l) => l.type === 'summary');
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({ steps: 3, stopped: 'completed', checkpoint: 'ck.safetensors' });
    expect(lines.find((l) => l.type === 'checkpoint').batchesPerEpoch).toBe(4); // 16 samples / 2 ranks / batch 2
    const state = await loadTrainingState(join(dir, 'ck.safetensors'));
    expect(state.dataOrder).toMatchObject({ epoch: 0, batch: 3, batchSize: 2, worldSize: 2 });
    expect(state.step).toBe(3);

    // --nproc=2 form; the ranks fail (no such checkpoint): mpirun's non-zero status comes back
    const bad = run(['--nproc=2', '--resume', join(dir, 'missing.safetensors'), '--json']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/rank [01]: alexnet: .*missing\.safetensors/);
  }, 180_000);

  it.skipIf(!mpiFound)('`train --nproc 2` and Ctrl-C: every rank stops after a step with one checkpoint, as a single process does', async () => {
    const dir = await tempDir();
    // the parent leads a process group of its own, as a shell's foreground job: a Ctrl-C at the
    // terminal is a SIGINT to that group (mpirun runs in another, and hears of it through us)
    const child = spawn(process.execPath, [join(root, 'bin', 'alexnet.js'), 'train', '--nproc', '2', '--train-size', '512', '--val-size', '4', '--batch-size', '2',
      '--epochs', '1', '--workers', '0', '--checkpoint', 'ck.safetensors', '--checkpoint-every', '2', '--metrics', 'm.jsonl', '--json'], { cwd: dir, detached: true });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const status = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 120_000);
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (!sent && stdout.includes('"type":"checkpoint"')) {
          sent = true;
          process.kill(-child.pid!, 'SIGINT');
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    expect(sent, `no checkpoint line came:\n${stdout}\n${stderr}`).toBe(true);
    expect(status, `${stdout}\n${stderr}`).toBe(0);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
    const summaries = lines.filter((l) => l.type === 'summary');
    expect(summaries).toHaveLength(1);
    expect(summaries[0].stopped).toBe('interrupted');
    expect(summaries[0].steps).toBeLessThan(128); // 512 / 2 ranks / batch 2: stopped well before the end
    const state = await loadTrainingState(join(dir, 'ck.safetensors'));
    expect(state.step).toBe(summaries[0].steps);
    expect(state.dataOrder).toMatchObject({ worldSize: 2 });
  }, 180_000);

  it.skipIf(!mpiFound)('an interrupt seen by one rank stops every rank after the same step, with the same weights and one checkpoint', async () => {
    const dir = await tempDir();
    const r = mpirun([dir, String(1 + Math.floor(Math.random() * 1000)), 'interrupt']);
    expect(r.status, `mpirun failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
    const res = results(r.stdout).sort((a, b) => (a.rank as number) - (b.rank as number)) as Array<{ rank: number; summary: { steps: number; stopped: string; checkpoint: string } }>;
    expect(res.map((x) => x.rank)).toEqual([0, 1]);
    // rank 1 flagged its 4th step when queueing it; every rank learns it with that step's
    // result, after the 5th was queued, and stops after the 5th
    for (const x of res) expect(x.summary).toMatchObject({ stopped: 'interrupted', steps: 5 });
    const read = async (rank: number) => {
      const b = await readFile(join(dir, `weights-${rank}-interrupted.f32`));
      return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    };
    expect(firstDifference(await read(1), await read(0))).toBe(-1);
    const state = await loadTrainingState(join(dir, 'interrupted.safetensors'));
    expect(state.step).toBe(5);
    expect(state.dataOrder).toMatchObject({ epoch: 1, batch: 2, worldSize: 2 });
  }, 180_000);
});
