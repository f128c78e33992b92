// How a process counts as launched (native/dist/comm.h launch_plan, through src/cli/launch.ts
// launchEnvironment): the one decision initDistributed() and the CLI take, from the environment
// alone, checked over the environments the launchers set (Open MPI's mpirun, Slurm's srun with
// and without PMIx, a Slurm batch script, MPICH's hydra, none); and `--nproc` refused inside a job.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { launchedRank, launchEnvironment } from '../src/cli/launch.js';

const bin = join(__dirname, '..', 'bin', 'alexnet.js');

describe('launchEnvironment', () => {
  it("Open MPI's mpirun: MPI, world and local ranks from OMPI_COMM_WORLD_* (PMIX_RANK, which it also sets, does not matter)", () => {
    const p = launchEnvironment({ OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_LOCAL_RANK: '0', OMPI_COMM_WORLD_LOCAL_SIZE: '2', PMIX_RANK: '2' });
    expect(p).toMatchObject({ kind: 'mpi', launcher: 'mpirun', size: 4, rank: 2, localRank: 0, localSize: 2, localRankSource: 'OMPI_COMM_WORLD_LOCAL_RANK', detail: 'OMPI_COMM_WORLD_SIZE=4' });
    // without the local variables the local size is left to MPI
    expect(launchEnvironment({ OMPI_COMM_WORLD_SIZE: '3', OMPI_COMM_WORLD_RANK: '1' })).toMatchObject({ kind: 'mpi', size: 3, rank: 1, localRank: -1, localSize: -1, localRankSource: '' });
    // also under Slurm (mpirun inside an allocation): mpirun's variables decide
    expect(launchEnvironment({ OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_RANK: '0', SLURM_PROCID: '0', SLURM_NTASKS: '1' })).toMatchObject({ kind: 'mpi', launcher: 'mpirun', size: 2 });
  });

  it('srun --mpi=pmix: MPI, rank from SLURM_PROCID, size from the step, local rank from SLURM_LOCALID (local size from MPI)', () => {
    const srun = { SLURM_JOB_ID: '77', SLURM_PROCID: '5', SLURM_NTASKS: '8', SLURM_STEP_NUM_TASKS: '8', SLURM_LOCALID: '1', SLURM_NODEID: '1', PMIX_RANK: '5' };
    expect(launchEnvironment(srun)).toMatchObject({ kind: 'mpi', launcher: 'srun', size: 8, rank: 5, localRank: 1, localSize: -1, localRankSource: 'SLURM_LOCALID' });
    expect(launchedRank(srun)).toBe(5);
    // one task: still MPI (as mpirun -n 1), but no rank to name in messages
    expect(launchEnvironment({ SLURM_PROCID: '0', SLURM_STEP_NUM_TASKS: '1', SLURM_LOCALID: '0', PMIX_RANK: '0' })).toMatchObject({ kind: 'mpi', launcher: 'srun', size: 1 });
    expect(launchedRank({ SLURM_PROCID: '0', SLURM_STEP_NUM_TASKS: '1', PMIX_RANK: '0' })).toBeUndefined();
  });

  it('srun of several tasks without PMIx: refused, saying to use --mpi=pmix (each rank would otherwise train alone)', () => {
    const p = launchEnvironment({ SLURM_PROCID: '1', SLURM_NTASKS: '4', SLURM_STEP_NUM_TASKS: '4', SLURM_LOCALID: '1' });
    expect(p.kind).toBe('refused');
    expect(p.reason).toMatch(/launched by srun \(SLURM_STEP_NUM_TASKS=4\) without PMIx .*srun --mpi=pmix/);
    // PMI-2 (srun --mpi=pmi2) is not PMIx either
    expect(launchEnvironment({ SLURM_PROCID: '0', SLURM_STEP_NUM_TASKS: '2', PMI_SIZE: '2', PMI_RANK: '0' }).kind).toBe('refused');
  });

  it('a Slurm batch script (the job has several tasks, but no srun step): one process', () => {
    const p = launchEnvironment({ SLURM_JOB_ID: '77', SLURM_PROCID: '0', SLURM_NTASKS: '8', SLURM_LOCALID: '0' });
    expect(p).toMatchObject({ kind: 'single', launcher: '', size: 1, rank: 0 });
    expect(launchedRank({ SLURM_JOB_ID: '77', SLURM_PROCID: '0', SLURM_NTASKS: '8' })).toBeUndefined();
  });

  it("MPICH's hydra (PMI_SIZE) and a PMIx launcher outside Slurm: refused, naming the ABI", () => {
    for (const env of [{ PMI_SIZE: '2', PMI_RANK: '1', HYDRA_CONTROL_FD: '7' }, { PMIX_RANK: '0', PMIX_NAMESPACE: 'x' }]) {
      const p = launchEnvironment(env);
      expect(p.kind).toBe('refused');
      expect(p.reason).toMatch(/only Open MPI \(libmpi\.so\.40\) is supported: MPICH's ABI differs/);
    }
    // PMI_SIZE=1 (a singleton) is no job
    expect(launchEnvironment({ PMI_SIZE: '1' }).kind).toBe('single');
  });

  it('no launcher, or variables that are not numbers: one process', () => {
    for (const env of [{}, { PATH: '/usr/bin' }, { OMPI_COMM_WORLD_SIZE: 'two' }, { OMPI_COMM_WORLD_SIZE: '' }, { SLURM_PROCID: 'x', SLURM_STEP_NUM_TASKS: '4' }]) {
      expect(launchEnvironment(env).kind, JSON.stringify(env)).toBe('single');
    }
    expect(launchEnvironment({}).reason).toMatch(/not launched under Open MPI's mpirun \(OMPI_COMM_WORLD_SIZE unset\) or srun --mpi=pmix: a world of one process/);
    expect(launchedRank({})).toBeUndefined();
  });
});

describe('initDistributed takes the same decision', () => {
  const init = (env: Record<string, string>) => {
    const code = `import('${join(__dirname, '..', 'dist', 'index.js')}').then((m) => m.initDistributed()).then((c) => console.log('OK ' + c.backend + ' ' + c.worldSize), (e) => console.log('ERR ' + e.code + ': ' + e.message))`;
    const clean: Record<string, string | undefined> = { ...process.env };
    for (const k of Object.keys(clean)) if (/^(OMPI_|PMIX_|PMI_|SLURM_)/.test(k)) delete clean[k];
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...clean, ...env }, timeout: 60_000 });
    return r.stdout.trim();
  };

  it('srun --mpi=pmix is MPI: without a loadable libmpi, ERR_DIST naming srun; srun without PMIx is ERR_DIST; a batch script is a world of one', () => {
    expect(init({ SLURM_PROCID: '0', SLURM_STEP_NUM_TASKS: '2', SLURM_LOCALID: '0', PMIX_RANK: '0', ALEXNET_MPI_LIBRARY: '/nonexistent' }))
      .toMatch(/^ERR ERR_DIST: initDistributed: launched under srun \(SLURM_PROCID=0, 2 tasks, PMIX_RANK set\) but MPI cannot be loaded: .*\/nonexistent/);
    expect(init({ SLURM_PROCID: '0', SLURM_STEP_NUM_TASKS: '2' })).toMatch(/^ERR ERR_DIST: initDistributed: launched by srun \(SLURM_STEP_NUM_TASKS=2\) without PMIx/);
    expect(init({ SLURM_PROCID: '0', SLURM_NTASKS: '8', SLURM_JOB_ID: '1' })).toBe('OK single 1');
  });
});

describe('--nproc inside a job', () => {
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, [bin, 'train', '--nproc', '2', '--max-steps', '1'], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });

  it('under srun: ERR_DIST, srun sets the ranks (the message names the rank)', () => {
    const r = run({ SLURM_PROCID: '1', SLURM_STEP_NUM_TASKS: '2', SLURM_LOCALID: '1', PMIX_RANK: '1' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/rank 1: alexnet: --nproc: this process is already a rank of an srun job \(SLURM_PROCID=1, 2 tasks, PMIX_RANK set\); drop --nproc, srun's -n sets the ranks \(ERR_DIST\)/);
  });

  it("under a launcher it cannot run under: ERR_DIST with that launcher's reason", () => {
    const r = run({ PMI_SIZE: '2', PMI_RANK: '0' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/alexnet: --nproc: launched by a launcher other than Open MPI's .* \(ERR_DIST\)/);
  });
});
