// The communicator (src/dist/communicator.ts, native/dist/comm.cc):
//  * in this process, not launched under mpirun: the world of one — collectives before
//    initDistributed are ERR_DIST; allReduce ('sum' and 'avg') and broadcast leave fresh random
//    data exactly as it was, in order with the other CPU operators; bad arguments are typed
//    errors; after finalize every collective is ERR_DIST and initDistributed cannot start again;
//  * under `mpirun -n 2` (test/dist-ranks.mjs, on the built package): allReduce sum / avg against
//    the float64 sum of both ranks' data, broadcast from rank 1, barrier, finalize; a rank that
//    throws ends the job with a non-zero exit naming it, within a bounded time, and so does one
//    killed by SIGKILL while the other waits in an allReduce (mpirun's own message); a program that
//    forgets finalize() still ends the job cleanly (finalized at the normal exit); a launched job
//    without a loadable libmpi fails with ERR_DIST. Skipped, saying so, where mpirun is absent.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initDistributed, loadNative, scale, Tensor } from '../src/index.js';
import { expectCode, rejection, rng, uniform } from './helpers.js';

const root = join(__dirname, '..');
const hasMpirun = spawnSync('sh', ['-c', 'command -v mpirun']).status === 0;
const launched = process.env.OMPI_COMM_WORLD_SIZE !== undefined;
// the ranks load libmpi as this process does (ALEXNET_MPI_LIBRARY=/nonexistent: only the "missing" case runs)
const mpiFound = loadNative().mpiLibrary().found;


describe.skipIf(launched)('a world of one (this process, not under mpirun)', () => {
  it('collectives before initDistributed are ERR_DIST', async () => {
    const t = Tensor.from([1, 2], [2]);
    expectCode(() => loadNative().distAllReduce(t.handle, 'sum'), 'ERR_DIST', /allReduce: call initDistributed\(\) first/);
    expectCode(() => loadNative().distBroadcast(t.handle, 0), 'ERR_DIST', /broadcast: call initDistributed\(\) first/);
    expectCode(() => loadNative().distBarrier(), 'ERR_DIST', /barrier: call initDistributed\(\) first/);
    expect(loadNative().distWorld().kind).toBe('uninitialized');
  });

  it('allReduce and broadcast keep the data, in order with other CPU operators; typed errors', async () => {
    const comm = await initDistributed();
    expect(comm).toMatchObject({ rank: 0, worldSize: 1, localRank: 0, localSize: 1, backend: 'single' });
    expect(comm.reason).toMatch(/OMPI_COMM_WORLD_SIZE unset/);
    expect(await initDistributed()).toEqual(comm); // once per process

    const r = rng();
    const x = Float32Array.from(uniform(999, r, -50, 50));
    const t = Tensor.from(x, [27, 37]);
    expect(comm.allReduce(t, 'sum')).toBe(t);
    expect(await t.data()).toEqual(x);
    comm.allReduce(t, 'avg');
    expect(await t.data()).toEqual(x);
    // queued in order: scale by 3 (in place, a CPU op), then the identity allReduce
    scale(t, 3);
    comm.allReduce(t, 'avg');
    scale(t, 0.5);
    const want = x.map((v) => Math.fround(Math.fround(v * 3) * 0.5));
    expect(await t.data()).toEqual(want);
    const ints = Tensor.from(Int32Array.from({ length: 7 }, (_, i) => i * 13 - 5), [7]);
    comm.broadcast(ints, 0);
    expect(Array.from(await ints.data())).toEqual(Array.from({ length: 7 }, (_, i) => i * 13 - 5));
    await comm.barrier();

    expectCode(() => comm.allReduce(ints), 'ERR_DTYPE', /allReduce: expected tensor to be float32 but got int32/);
    expectCode(() => comm.allReduce(t, 'max' as 'sum'), 'ERR_ARGUMENT', /op must be 'sum' or 'avg' but got 'max'/);
    expectCode(() => comm.broadcast(t, 1), 'ERR_ARGUMENT', /root must be a rank in \[0, 1\) but got 1/);
    expectCode(() => comm.broadcast(t, -1), 'ERR_ARGUMENT', /root must be a non-negative integer/);
    for (const bad of [0.5, 1e20, Number.NaN]) expectCode(() => comm.broadcast(t, bad), 'ERR_ARGUMENT', /root must be/);
    const disposed = Tensor.from([1], [1]);
    disposed.dispose();
    expectCode(() => comm.allReduce(disposed), 'ERR_DISPOSED');
    expectCode(() => comm.allReduce({} as Tensor), 'ERR_ARGUMENT', /allReduce/);
  });

  it('after finalize: collectives fail with ERR_DIST at the next read, and initDistributed cannot start again', async () => {
    const comm = await initDistributed();
    await comm.finalize();
    expect(loadNative().distWorld().kind).toBe('finalized');
    await comm.finalize(); // a second finalize is a no-op
    const t = Tensor.from([1, 2, 3], [3]);
    comm.allReduce(t, 'sum'); // queued: the error waits for the read
    const e = await rejection(t.data());
    expect(e.code).toBe('ERR_DIST');
    expect(e.message).toMatch(/allReduce: the communicator was finalized/);
    expect((await rejection(comm.barrier())).message).toMatch(/barrier: the communicator was finalized/);
    const again = await rejection(initDistributed());
    expect(again.code).toBe('ERR_DIST');
    expect(again.message).toMatch(/finalized in this process and cannot be initialised again/);
  });
});

function mpirun(mode: string, env: Record<string, string> = {}, seconds = 60) {
  // `timeout` bounds a hung job; --kill-after in case mpirun ignores SIGTERM
  return spawnSync('timeout', ['--kill-after=5', String(seconds), 'mpirun', '--allow-run-as-root', '--oversubscribe', '-n', '2',
    process.execPath, join(root, 'test', 'dist-ranks.mjs'), mode, String(Math.floor(Math.random() * 1e6))], {
    encoding: 'utf8', cwd: root, env: { ...process.env, ...env },
  });
}

function results(stdout: string): Array<Record<string, unknown>> {
  return stdout.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)));
}

describe.skipIf(!hasMpirun || launched)('under mpirun -n 2 (needs openmpi-bin: mpirun)', () => {
  it.skipIf(!mpiFound)('allReduce sum / avg (and allReduceAsync, ordered between CPU copies) match the float64 sum of both ranks\' data; broadcast from rank 1; barrier; finalize', () => {
    const r = mpirun('collectives');
    expect(r.status, `mpirun failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
    const res = results(r.stdout).sort((a, b) => (a.rank as number) - (b.rank as number));
    expect(res.map((x) => x.rank)).toEqual([0, 1]);
    for (const x of res) {
      expect(x.worldSize).toBe(2);
      expect(x.localRank).toBe(x.rank); // one machine
      expect(['MPI_THREAD_FUNNELED', 'MPI_THREAD_SERIALIZED', 'MPI_THREAD_MULTIPLE']).toContain(x.threadLevel);
      expect(typeof x.asyncErr).toBe('number'); // allReduceAsync between two copies was checked
    }
  });

  it.skipIf(!mpiFound)('a program that ends without finalize() still ends the job cleanly (finalized at exit)', () => {
    const r = mpirun('no-finalize');
    expect(r.status, `mpirun failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).not.toMatch(/exiting improperly/);
    expect(results(r.stdout).map((x) => x.value)).toEqual([3, 3]);
  });

  it.skipIf(!mpiFound)('a rank that throws ends the job with a non-zero exit and a message naming the rank, in bounded time', () => {
    const t0 = Date.now();
    const r = mpirun('throw', {}, 60);
    expect(r.status).not.toBe(0);
    expect(r.status, 'the job hung until `timeout` killed it').not.toBe(124);
    expect(r.stderr + r.stdout).toMatch(/rank 1: failing on purpose before the allReduce/);
    expect(Date.now() - t0).toBeLessThan(55_000);
  });

  it.skipIf(!mpiFound)('a rank killed by SIGKILL while the other waits in an allReduce ends the job: non-zero, naming the rank, in bounded time', () => {
    // no watchdog of ours: Open MPI's mpirun notices the dead process (no MPI_Abort, no handler
    // ran), kills the rank stuck in the collective and exits with 128 + 9 (Open MPI 4.1: ~2 s)
    const t0 = Date.now();
    const r = mpirun('kill', {}, 60);
    const seconds = (Date.now() - t0) / 1000;
    expect(r.status, 'the job hung until `timeout` killed it').not.toBe(124);
    expect(r.status, r.stderr).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/process rank 1 .*exited on signal 9 \(Killed\)/);
    expect(r.stdout).not.toMatch(/the allReduce completed without rank 1/);
    expect(seconds).toBeLessThan(55);
  });

  it('a launched job without a loadable libmpi fails with ERR_DIST on every rank', () => {
    const r = mpirun('missing', { ALEXNET_MPI_LIBRARY: '/nonexistent' });
    expect(r.status, r.stderr).toBe(0);
    const res = results(r.stdout);
    expect(res).toHaveLength(2);
    for (const x of res) {
      expect(x.code).toBe('ERR_DIST');
      expect(x.message).toMatch(/launched under mpirun \(OMPI_COMM_WORLD_SIZE=2\) but MPI cannot be loaded/);
    }
  });
});
