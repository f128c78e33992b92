import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { relu, Tensor, synchronize } from '../src/index.js';
import { loadNative } from '../src/native.js';
import { expectClose, expectCode, f32, rng, uniform } from './helpers.js';

describe('Tensor', () => {
  it('round-trips float32 and int32 data through native storage', async () => {
    const r = rng();
    const x = f32(uniform(3 * 5 * 7 * 2, r));
    const t = Tensor.from(x, [3, 5, 7, 2]);
    expect(t.shape).toEqual([3, 5, 7, 2]);
    expect(t.dtype).toBe('float32');
    expect(t.device).toBe('cpu');
    expect(t.numel).toBe(x.length);
    expectClose(await t.data(), x, { atol: 0, rtol: 0 });
    expectClose(t.dataSync(), x, { atol: 0, rtol: 0 });
    const labels = Int32Array.from({ length: 9 }, () => Math.floor(r() * 1000) - 500);
    const li = Tensor.from(labels, [9]);
    expect(li.dtype).toBe('int32');
    expect(Array.from(await li.data())).toEqual(Array.from(labels));
    const scalar = Tensor.from([r()], []);
    expect(scalar.shape).toEqual([]);
    expect((await scalar.data()).length).toBe(1);
  });

  it('copies the source array at creation', async () => {
    const a = new Float32Array([1, 2, 3]);
    const t = Tensor.from(a, [3]);
    a[0] = 100;
    expect(Array.from(await t.data())).toEqual([1, 2, 3]);
  });

  it('views and reshapes share storage', async () => {
    const r = rng();
    const x = f32(uniform(24, r));
    const t = Tensor.from(x, [2, 3, 4]);
    const v = t.view(5, [2, 3]);
    expectClose(await v.data(), x.slice(5, 11), { atol: 0, rtol: 0 });
    const y = relu(v); // an operator reading through the offset
    expectClose(await y.data(), Array.from(x.slice(5, 11), (a) => Math.max(a, 0)), { atol: 0, rtol: 0 });
    expect(t.reshape([4, -1]).shape).toEqual([4, 6]);
    expectCode(() => t.view(20, [5]), 'ERR_SHAPE');
    expectCode(() => t.reshape([5, 5]), 'ERR_SHAPE');
    // disposing the parent handle leaves the view usable (the storage is shared)
    t.dispose();
    expectClose(await v.data(), x.slice(5, 11), { atol: 0, rtol: 0 });
  });

  it('dispose is idempotent and use after dispose is a typed error', async () => {
    const t = Tensor.from([1, 2], [2]);
    t.dispose();
    t.dispose();
    t[Symbol.dispose]();
    expect(t.disposed).toBe(true);
    expectCode(() => t.shape, 'ERR_DISPOSED');
    expectCode(() => t.data(), 'ERR_DISPOSED');
    expectCode(() => relu(t), 'ERR_DISPOSED');
    expect(String(t)).toBe('Tensor(disposed)');
  });

  it('rejects bad shapes, dtypes and devices', () => {
    const native = loadNative();
    expectCode(() => Tensor.from([1, 2, 3], [2, 2]), 'ERR_SHAPE', /4 elements but the array has 3/);
    expectCode(() => Tensor.from([1], [1, 1, 1, 1, 1]), 'ERR_SHAPE', /at most 4/);
    expectCode(() => Tensor.from([1], [-1]), 'ERR_SHAPE');
    expectCode(() => Tensor.from([1.5], [1], { dtype: 'int32' }), 'ERR_DTYPE');
    expectCode(() => Tensor.empty([2], { dtype: 'float16' as 'float32' }), 'ERR_DTYPE');
    expectCode(() => Tensor.empty([2], { device: 'tpu' }), 'ERR_DEVICE');
    // a device index no machine has: unavailable with or without a GPU (and without CUDA compiled in)
    expectCode(() => Tensor.empty([2], { device: 'cuda:99' }), 'ERR_CUDA_UNAVAILABLE', /cuda:99 is not available/);
    // cuda:0 exists exactly where the addon found a device
    if (native.info().cuda.deviceFound) {
      const g = Tensor.empty([2], { device: 'cuda:0' });
      expect(g.device).toBe('cuda:0');
      g.dispose();
    } else {
      expectCode(() => Tensor.empty([2], { device: 'cuda:0' }), 'ERR_CUDA_UNAVAILABLE', /cuda:0 is not available/);
    }
    expectCode(() => native.fromData(new Float64Array(2) as unknown as Float32Array, [2]), 'ERR_DTYPE');
    expectCode(() => new (native.NativeTensor as unknown as new () => unknown)(), 'ERR_ARGUMENT');
    // still working afterwards
    expect(Tensor.from([3], [1]).dataSync()[0]).toBe(3);
  });

  it('a shape beyond what a typed array can hold is ERR_SHAPE; an allocation that cannot be satisfied is ERR_OUT_OF_MEMORY; the process goes on', () => {
    // 2^40 and 2^41 floats: refused by the size cap (2^32 elements) before asking the allocator
    expectCode(() => Tensor.empty([1 << 20, 1 << 20]), 'ERR_SHAPE', /too large/);
    expectCode(() => Tensor.empty([1 << 21, 1 << 20]), 'ERR_SHAPE', /too large/);
    expectCode(() => Tensor.empty([16, 1024, 1024, 1024]), 'ERR_SHAPE', /at most 4294967296 elements/);
    // 2^32 floats (16 GiB), the largest allowed: more than this machine has; the allocator
    // fails and says so, unless overcommit hands out the address space
    let caught: unknown;
    try {
      const t = Tensor.empty([65536, 65536]);
      // overcommit may hand out the address space: touching it is not needed to pass
      t.dispose();
    } catch (e) {
      caught = e;
    }
    if (caught) expect((caught as { code?: string }).code).toBe('ERR_OUT_OF_MEMORY');
    expect(Array.from(Tensor.from([1, 2], [2]).dataSync())).toEqual([1, 2]);
  });

  it('reports native memory to V8 and releases it on dispose', async () => {
    const bytes = 64 * 1024 * 1024;
    // externalMemory() is the whole isolate's count: V8 also lowers it when a GC (which reporting
    // 64 MiB can start) frees unrelated ArrayBuffers, e.g. the test runner's IPC buffers. Collect
    // that garbage first, and allow for what is freed meanwhile (seen: 7.5 KB on a busy CI run).
    const slack = 1024 * 1024;
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 0));
    const reported = (): number => loadNative().externalMemory();
    const before = reported();
    const t = Tensor.empty([bytes / 4]);
    const during = reported();
    expect(during - before).toBeGreaterThanOrEqual(bytes - slack);
    t.dispose();
    const after = reported();
    expect(during - after).toBeGreaterThanOrEqual(bytes - slack);
  });

  it('frees tensors that are never disposed once they are garbage collected', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    expect(gc, 'tests run with --expose-gc').toBeTypeOf('function');
    const base = loadNative().externalMemory();
    for (let i = 0; i < 40; i++) {
      Tensor.empty([4 * 1024 * 1024]); // 16 MiB each, dropped at once
      if (i % 10 === 9) {
        gc!();
        await new Promise((r) => setImmediate(r));
      }
    }
    gc!();
    await new Promise((r) => setImmediate(r));
    // 640 MiB were allocated; far less may remain.
    expect(loadNative().externalMemory() - base).toBeLessThan(160 * 1024 * 1024);
  });
});

describe('the CPU queue', () => {
  it('runs operators in order and data() waits for the work before it', async () => {
    const r = rng();
    let x = Tensor.from(f32(uniform(1000, r)), [1000]);
    const first = await x.data();
    for (let i = 0; i < 50; i++) x = relu(x); // 50 chained tasks, none awaited
    expectClose(await x.data(), Array.from(first, (v) => Math.max(v, 0)), { atol: 0, rtol: 0 });
    await synchronize();
    expect(loadNative().pending()).toBe(0);
  });

  it('works from a worker thread, which can exit while the addon stays loaded here', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const a = require(workerData);
      const t = a.reluForward(a.fromData(new Float32Array([-1, 2, -3]), [3]));
      t.data().then((d) => parentPort.postMessage(Array.from(d)));
    `;
    const { nativePath } = await import('../src/native.js');
    const w = new Worker(code, { eval: true, workerData: nativePath() });
    const msg = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(msg).toEqual([0, 2, 0]);
    await w.terminate();
    expect(Array.from(relu(Tensor.from([-5, 5], [2])).dataSync())).toEqual([0, 5]);
  });
});
