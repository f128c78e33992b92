// The addon used from several worker threads at once: terminating a worker mid-use must not
// take the process down, and a deferred error stays with the thread (environment) that queued it.
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { relu, softmaxCrossEntropy, synchronize, Tensor } from '../src/index.js';
import { loadNative, nativePath } from '../src/native.js';
import { describeCuda } from './cuda-gate.js';
import { f32, rng, uniform } from './helpers.js';

loadNative(); // nativePath() names the addon file once it is loaded
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

describe('worker threads', () => {
  it('survives worker.terminate() during operators and reads (16 rounds of 3 workers)', () => {
    // in a child process, so an abort is reported as a failure rather than killing the runner
    const r = spawnSync(process.execPath, [fixture('terminate-workers.cjs'), nativePath(), '16'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.signal, `stderr: ${r.stderr}`).toBeNull();
    expect(r.status, `stderr: ${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('survived 16');
    expect(r.stderr).not.toMatch(/terminate called|Napi::Error|FATAL/);
  }, 150_000);
});

function errorsStayInTheirThread(device: 'cpu' | 'cuda:0'): void {
  it(`keeps a worker's deferred label errors on ${device} in the worker: the main thread's reads never see them`, async () => {
    // the worker queues softmaxCrossEntropy with a bad label, then reads: every one of its reads
    // must reject with its own error, while the main thread reads in between
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const a = require(workerData.addon);
      (async () => {
        let rejected = 0, resolved = 0, wrong = 0;
        for (let i = 0; i < workerData.rounds; i++) {
          const logits = a.fromData(new Float32Array(6 * 4).fill(0.5), [6, 4], workerData.device);
          const labels = a.fromData(Int32Array.from([0, 1, 2, 3, 0, 40 + i]), [6], workerData.device);
          const out = a.softmaxCrossEntropy(logits, labels);
          const ok = a.reluForward(logits);
          try {
            await ok.data();
            resolved++;
          } catch (e) {
            rejected++;
            if (e.code !== 'ERR_ARGUMENT' || e.message !== 'softmaxCrossEntropy: label ' + (40 + i) + ' at row 5 is out of range [0, 4)') wrong++;
          }
        }
        parentPort.postMessage({ rejected, resolved, wrong });
      })();
    `;
    const rounds = 400;
    const worker = new Worker(code, { eval: true, workerData: { addon: nativePath(), rounds, device } });
    const report = new Promise<{ rejected: number; resolved: number; wrong: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    let done = false;
    void report.finally(() => (done = true));
    const r = rng();
    let reads = 0;
    const failures: string[] = [];
    while (!done || reads < 200) {
      const x = f32(uniform(64, r));
      const t = Tensor.from(x, [8, 8], { device });
      try {
        const y = await relu(t).data();
        expect(y[3]).toBe(Math.max(x[3]!, 0));
        if (reads % 10 === 0) await synchronize(device);
      } catch (e) {
        failures.push((e as Error).message);
      }
      reads++;
    }
    const w = await report;
    await worker.terminate();
    expect(failures, `main-thread reads that rejected: ${failures.slice(0, 3).join('; ')}`).toEqual([]);
    // each worker read comes after its own failed operator: it rejects, with that operator's error
    expect(w).toEqual({ rejected: rounds, resolved: 0, wrong: 0 });
    // and the main thread's own label errors still reach the main thread's next read
    const z = Tensor.from(f32(uniform(3 * 5, r)), [3, 5], { device });
    softmaxCrossEntropy(z, Tensor.from(new Int32Array([0, 9, 1]), [3], { dtype: 'int32', device }));
    await expect(relu(z).data()).rejects.toMatchObject({ code: 'ERR_ARGUMENT', message: 'softmaxCrossEntropy: label 9 at row 1 is out of range [0, 5)' });
  }, 60_000);
}

describe('deferred errors and threads (cpu)', () => errorsStayInTheirThread('cpu'));
describeCuda('deferred errors and threads (cuda:0)', () => errorsStayInTheirThread('cuda:0'));
