// `alexnet train --nproc N`: starts N local ranks of the same command through Open MPI's mpirun,
// so a user need not write the mpirun line. The ranks run `alexnet train` without --nproc (one
// process per rank, data-parallel as under a hand-written mpirun) and with --threads set to their
// share of the cores unless the user chose it; this process waits for mpirun and exits with its
// status (128 + the signal number when mpirun was killed by a signal). Refused inside a job
// already (mpirun, srun): that launcher sets the ranks.
import { spawn } from 'node:child_process';
import { availableParallelism, constants as osConstants } from 'node:os';
import { alexnetError } from '../errors.js';
import { loadNative, type LaunchPlan } from '../native.js';

export interface MpirunPlan {
  /** 'mpirun' */
  command: string;
  args: string[];
}

/**
 * How a process with environment `env` counts as launched: by mpirun or srun --mpi=pmix ('mpi'),
 * by a launcher it cannot run under ('refused'), or by none ('single'). The decision
 * initDistributed() takes (native/dist/comm.h launch_plan), from the environment alone.
 */
export function launchEnvironment(env: NodeJS.ProcessEnv = process.env): LaunchPlan {
  return loadNative().distLaunchPlan(env);
}

/** This process's rank when it is one of several ranks of an mpirun or srun job, else undefined. */
export function launchedRank(env: NodeJS.ProcessEnv = process.env): number | undefined {
  try {
    const p = launchEnvironment(env);
    return p.kind === 'mpi' && p.size > 1 ? p.rank : undefined;
  } catch {
    return undefined; // the addon does not load: no launcher matters then
  }
}

/** `args` (the command line after the script) without `--nproc N` / `--nproc=N`. */
export function withoutNproc(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (a === '--nproc') {
      i++; // its value
      continue;
    }
    if (a.startsWith('--nproc=')) continue;
    out.push(a);
  }
  return out;
}

/**
 * The mpirun command line for `n` local ranks of `node script ...args`: `--allow-run-as-root`
 * only as root, `--oversubscribe` when n exceeds the cores (mpirun refuses more ranks than slots
 * otherwise), and `--threads` per rank (the cores shared out, at least 1) unless args set it or
 * o.threads is false (a script of other arguments).
 */
export function mpirunPlan(n: number, script: string, args: readonly string[], o: { root?: boolean; cores?: number; node?: string; threads?: boolean } = {}): MpirunPlan {
  const root = o.root ?? (typeof process.getuid === 'function' && process.getuid() === 0);
  const cores = o.cores ?? availableParallelism();
  const rest = withoutNproc(args);
  const options = rest.indexOf('--') < 0 ? rest.length : rest.indexOf('--'); // options end at '--'
  const hasThreads = rest.slice(0, options).some((a) => a === '--threads' || a.startsWith('--threads='));
  if (o.threads !== false && !hasThreads) rest.splice(options, 0, '--threads', String(Math.max(1, Math.floor(cores / n))));
  return {
    command: 'mpirun',
    args: [
      ...(root ? ['--allow-run-as-root'] : []),
      ...(n > cores ? ['--oversubscribe'] : []),
      '-n', String(n),
      o.node ?? process.execPath, script, ...rest,
    ],
  };
}

const MISSING = "mpirun not found on the PATH: install Open MPI (Debian/Ubuntu: apt install openmpi-bin; it also brings libopenmpi3, the libmpi the ranks load)";

/**
 * Runs `alexnet <args>` as `n` ranks under mpirun and resolves to the exit status to use. ERR_DIST
 * when already under mpirun (a rank would start a job of its own) or when mpirun is missing.
 */
export async function launchRanks(n: number, args: readonly string[], script = process.argv[1]!): Promise<number> {
  const launched = launchEnvironment();
  if (launched.kind === 'mpi') {
    throw alexnetError('ERR_DIST', `--nproc: this process is already a rank of an ${launched.launcher} job (${launched.detail}); drop --nproc, ${launched.launcher}'s -n sets the ranks`);
  }
  if (launched.kind === 'refused') throw alexnetError('ERR_DIST', `--nproc: ${launched.reason}`);
  const plan = mpirunPlan(n, script, args);
  // mpirun runs in a process group of its own, so a Ctrl-C at the terminal reaches this process
  // alone: the first asks the ranks for a checkpoint after the current step (SIGUSR1, which
  // mpirun forwards to every rank and `train` takes as its interrupt under mpirun), the second
  // ends the job at once (SIGINT to mpirun). SIGTERM and SIGHUP are passed on to mpirun. Its stdin
  // is closed: a process group in the background that read the terminal would be stopped.
  let interrupts = 0;
  let child: ReturnType<typeof spawn> | undefined;
  const onInt = (): void => {
    interrupts++;
    child?.kill(interrupts === 1 ? 'SIGUSR1' : 'SIGINT');
  };
  const onTerm = (signal: NodeJS.Signals): void => void child?.kill(signal);
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onTerm);
  try {
    return await new Promise<number>((resolve, reject) => {
      child = spawn(plan.command, plan.args, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
      child.on('error', (e: NodeJS.ErrnoException) => {
        reject(e.code === 'ENOENT' ? alexnetError('ERR_DIST', MISSING) : alexnetError('ERR_DIST', `--nproc: could not start mpirun: ${e.message}`));
      });
      child.on('exit', (code, signal) => {
        if (code !== null) resolve(code);
        else resolve(128 + (signal ? signalNumber(signal) : 0));
      });
    });
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    process.off('SIGHUP', onTerm);
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  return osConstants.signals[signal] ?? 0;
}
