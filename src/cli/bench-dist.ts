// The distributed line of `alexnet bench` (CPU): data-parallel training of the seed AlexNet with
// the cores split between ranks (`ranks` processes under mpirun, `threads / ranks` threads each)
// beside one process with every thread, at the same global batch (so both take the same training
// step), and the time each step spends in the gradient allReduce. Both run in the same command,
// the single process first, each a fresh process of src/cli/bench-rank.ts. Skipped, saying why,
// where mpirun is not on the PATH or libmpi does not load.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { alexnetError } from '../errors.js';
import { loadNative, packageRoot } from '../native.js';
import { mpirunPlan } from './launch.js';

export interface DistBenchRun {
  ranks: number;
  threadsPerRank: number;
  batchPerRank: number;
  /** best step (the slowest rank's time of that step), ms */
  stepMs: number;
  imagesPerSecond: number;
  /** in that step: the allReduce's time averaged over the ranks, ms (it includes waiting for the slower rank) */
  allReduceMs: number;
  /** best step with the gradients averaged in buckets overlapped with backward (the Trainer's way), ms */
  bucketedStepMs: number;
  bucketedImagesPerSecond: number;
  /** gradient buckets of that step */
  buckets: number;
}

export type DistBenchResult =
  | {
      globalBatch: number;
      steps: number;
      /** bytes of the gradient buffer reduced per step */
      gradientBytes: number;
      single: DistBenchRun;
      distributed: DistBenchRun;
      /** distributed images/s over single */
      ratio: number;
      /** the allReduce's share of the distributed step */
      allReduceFraction: number;
      /**
       * the distributed flat step less the bucketed one, over the flat step's allReduce time: the
       * share of the allReduce that overlapping it with backward hid (noisy: two best-of-N steps)
       */
      hiddenFraction: number;
    }
  | { skipped: string };

interface RankLine {
  rank: number;
  worldSize: number;
  threads: number;
  batch: number;
  gradientBytes: number;
  buckets: number;
  stepMs: number[];
  allReduceMs: number[];
  bucketedStepMs: number[];
}

function runRanks(command: string, args: string[], seconds: number): Promise<RankLine[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), seconds * 1000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const lines = stdout.split('\n').filter((l) => l.startsWith('BENCHRANK ')).map((l) => JSON.parse(l.slice(10)) as RankLine);
      if (code !== 0) reject(new Error(`${command} exited with ${code ?? 'a signal'}: ${stderr.trim().split('\n').slice(-3).join(' / ')}`));
      else resolve(lines.sort((a, b) => a.rank - b.rank));
    });
  });
}

function summarise(lines: RankLine[], ranks: number): DistBenchRun {
  if (lines.length !== ranks) throw new Error(`expected ${ranks} rank reports, got ${lines.length}`);
  const steps = lines[0]!.stepMs.length;
  let best = -1;
  let bestMs = Infinity;
  for (let s = 0; s < steps; s++) {
    const ms = Math.max(...lines.map((l) => l.stepMs[s]!));
    if (ms < bestMs) [best, bestMs] = [s, ms];
  }
  const allReduceMs = lines.reduce((a, l) => a + l.allReduceMs[best]!, 0) / ranks;
  const batch = lines[0]!.batch;
  const bucketedStepMs = Math.min(...lines[0]!.bucketedStepMs.map((_, s) => Math.max(...lines.map((l) => l.bucketedStepMs[s]!))));
  return {
    ranks, threadsPerRank: lines[0]!.threads, batchPerRank: batch, stepMs: bestMs, imagesPerSecond: (ranks * batch * 1000) / bestMs, allReduceMs,
    bucketedStepMs, bucketedImagesPerSecond: (ranks * batch * 1000) / bucketedStepMs, buckets: lines[0]!.buckets,
  };
}

/**
 * One process with `threads` threads at batch `globalBatch`, then `ranks` ranks under mpirun
 * with threads / ranks threads each at globalBatch / ranks: `steps` timed training steps each
 * (after a warm-up step), the best kept.
 */
export async function distributedBench(o: { globalBatch: number; steps: number; ranks?: number; threads?: number; timeoutSeconds?: number }): Promise<DistBenchResult> {
  const ranks = o.ranks ?? 2;
  const threads = o.threads ?? loadNative().info().cpu.threads;
  if (!Number.isInteger(o.globalBatch / ranks) || o.globalBatch < ranks) throw alexnetError('ERR_ARGUMENT', `--dist-batch ${o.globalBatch} does not split evenly over ${ranks} ranks`);
  const mpi = loadNative().mpiLibrary();
  if (!mpi.found) return { skipped: `libmpi not found (${mpi.reason})` };
  if (spawnSync('mpirun', ['--version'], { stdio: 'ignore' }).error) return { skipped: 'mpirun not found on the PATH (Debian/Ubuntu: apt install openmpi-bin)' };
  const script = join(packageRoot, 'dist', 'cli', 'bench-rank.js');
  const seconds = o.timeoutSeconds ?? 600;
  const perRank = Math.max(1, Math.floor(threads / ranks));
  const single = summarise(await runRanks(process.execPath, [script, String(o.globalBatch), String(o.steps), String(threads)], seconds), 1);
  const plan = mpirunPlan(ranks, script, [String(o.globalBatch / ranks), String(o.steps), String(perRank)], { threads: false });
  const lines = await runRanks(plan.command, plan.args, seconds);
  const distributed = summarise(lines, ranks);
  return {
    globalBatch: o.globalBatch,
    steps: o.steps,
    gradientBytes: lines[0]!.gradientBytes,
    single,
    distributed,
    ratio: distributed.imagesPerSecond / single.imagesPerSecond,
    allReduceFraction: distributed.allReduceMs / distributed.stepMs,
    hiddenFraction: (distributed.stepMs - distributed.bucketedStepMs) / distributed.allReduceMs,
  };
}

/** The line of the bench's markdown. */
export function distMarkdown(r: DistBenchResult): string {
  if ('skipped' in r) return `Data-parallel line skipped: ${r.skipped}`;
  const { single: s, distributed: d } = r;
  return [
    `Data-parallel training at global batch ${r.globalBatch} (best of ${r.steps} steps; ${(r.gradientBytes / 2 ** 20).toFixed(0)} MiB of gradients averaged per step):`,
    '',
    '| processes | threads each | batch each | training images/s | step ms | allReduce ms per step | allReduce share | bucketed, overlapped: step ms | images/s | allReduce hidden |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${s.ranks} | ${s.threadsPerRank} | ${s.batchPerRank} | ${s.imagesPerSecond.toFixed(1)} | ${s.stepMs.toFixed(0)} | - | - | - | - | - |`,
    `| ${d.ranks} (mpirun) | ${d.threadsPerRank} | ${d.batchPerRank} | ${d.imagesPerSecond.toFixed(1)} (${r.ratio.toFixed(2)}x) | ${d.stepMs.toFixed(0)} | ${d.allReduceMs.toFixed(0)} | ${(100 * r.allReduceFraction).toFixed(0)}% | ${d.bucketedStepMs.toFixed(0)} (${d.buckets} buckets) | ${d.bucketedImagesPerSecond.toFixed(1)} | ${(100 * r.hiddenFraction).toFixed(0)}% |`,
  ].join('\n');
}
