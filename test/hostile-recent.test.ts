// Regression tests for what the fuzz of the session-8/9 surface found (test/fuzz/calls-recent.mjs):
// environment switches with values they do not take, switch names with a NUL inside, refused
// Trainer options that changed the model, step counts that made a run endless, and data sets
// whose length, sample shape, samples or labels are not what they claim. The model-level
// setMemoryFormat / setPrecision findings are in channels-last.test.ts.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Conv2d, DataLoader, Dropout, Flatten, Linear, memoryStats, ReLU, Sequential, setCpuIsa, setNumThreads, synchronize, Tensor, Trainer, backendInfo, type Batch, type Dataset } from '../src/index.js';
import { checkEnvironment } from '../src/native.js';
import { collectGarbage, expectCode, rng, uniform } from './helpers.js';

const here = fileURLToPath(new URL('.', import.meta.url));

describe('environment switches', () => {
  it('a value a switch does not take is ERR_ARGUMENT naming the variable and the values it takes (it was silently the default)', () => {
    const bad: [string, string, RegExp][] = [
      ['ALEXNET_RELU_DROPOUT', 'fusd', /ALEXNET_RELU_DROPOUT must be 'fused', 'epilogue' or 'off' but is 'fusd'/],
      ['ALEXNET_CUBLASLT', 'true', /ALEXNET_CUBLASLT must be '0' or '1' but is 'true'/],
      ['ALEXNET_CUDA_MEMPOOL', 'off', /ALEXNET_CUDA_MEMPOOL must be '0' or '1' but is 'off'/],
      ['ALEXNET_DERIVED_CACHE_MB', '1e9', /ALEXNET_DERIVED_CACHE_MB must be a whole number of MiB in \[0, 1048576\] but is '1e9'/],
      // 2^43 MiB shifted by 20 overflowed int64 in the addon
      ['ALEXNET_DERIVED_CACHE_MB', '8796093022208', /ALEXNET_DERIVED_CACHE_MB must be/],
      ['ALEXNET_CPU_ISA', 'avx2\nx', /ALEXNET_CPU_ISA must be 'auto', 'avx2' or 'avx512' but is 'avx2\\x0ax'/],
    ];
    for (const [name, value, message] of bad) expectCode(() => checkEnvironment({ [name]: value }), 'ERR_ARGUMENT', message);
    // the values they take, unset and empty: no error
    for (const env of [{}, { ALEXNET_RELU_DROPOUT: 'off', ALEXNET_CUBLASLT: '1', ALEXNET_CUDA_MEMPOOL: '0', ALEXNET_DERIVED_CACHE_MB: '0', ALEXNET_CPU_ISA: 'avx2' }, { ALEXNET_RELU_DROPOUT: '', ALEXNET_DERIVED_CACHE_MB: '1048576' }]) {
      expect(() => checkEnvironment(env)).not.toThrow();
    }
  });

  it('the library refuses a bad ALEXNET_RELU_DROPOUT at its first operator, in a fresh process', () => {
    const script = `
      const lib = await import(${JSON.stringify(join(here, '..', 'dist', 'index.js'))});
      try {
        lib.Tensor.zeros([2]);
        console.log(JSON.stringify({ ok: true }));
      } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const p = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ALEXNET_RELU_DROPOUT: 'fused ' }, encoding: 'utf8', timeout: 60_000 });
    expect(p.status, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout.trim().split('\n').at(-1)!)).toEqual({ code: 'ERR_ARGUMENT', message: "alexnet: ALEXNET_RELU_DROPOUT must be 'fused', 'epilogue' or 'off' but is 'fused '" });
  }, 60_000);
});

describe('environment switches on the command line', () => {
  it('alexnet info with a bad ALEXNET_CUBLASLT: exit 1 and one line naming it (no doubled prefix)', () => {
    const p = spawnSync(process.execPath, [join(here, '..', 'bin', 'alexnet.js'), 'info'], { env: { ...process.env, ALEXNET_CUBLASLT: 'yes' }, encoding: 'utf8', timeout: 60_000 });
    expect(p.status).toBe(1);
    expect(p.stderr.trim()).toBe("alexnet: ALEXNET_CUBLASLT must be '0' or '1' but is 'yes' (ERR_ARGUMENT)");
  }, 60_000);
});

describe('switch setters', () => {
  it("setCpuIsa('avx2\\0junk') is refused (the addon compared the C string, 'avx2'); messages show a NUL and keep a number's digits", () => {
    const before = backendInfo().backends.cpu.isaCap;
    expectCode(() => setCpuIsa('auto\u0000junk' as never), 'ERR_ARGUMENT', /setCpuIsa: expected 'auto', 'avx2' or 'avx512' but got 'auto\\x00junk'$/);
    expect(backendInfo().backends.cpu.isaCap).toBe(before);
    const threads = backendInfo().backends.cpu.threads;
    expectCode(() => setNumThreads(2.0000001), 'ERR_ARGUMENT', /threads must be an integer in \[1, 64\] but got 2\.0000001$/);
    expect(backendInfo().backends.cpu.threads).toBe(threads);
  });
});

/** A small in-memory data set (3 x 4 x 4 images) with overridable parts. */
function dataset(over: Partial<Dataset> & { label?: (i: number) => unknown; image?: (i: number) => unknown } = {}): Dataset {
  const { label = (i: number) => i % 2, image = (i: number) => Float32Array.from({ length: 48 }, (_, k) => ((i * 7 + k) % 5) / 5 - 0.4), ...rest } = over;
  return {
    length: 8,
    classNames: ['a', 'b'],
    sampleShape: [3, 4, 4],
    load: (i: number) => ({ image: image(i), label: label(i) }) as never,
    ...rest,
  };
}

const tinyModel = () => new Sequential(new Conv2d(3, 2, 3, { padding: 1 }), new ReLU(), new Dropout(0.5), new Flatten(), new Linear(32, 2));

async function firstBatch(loader: DataLoader): Promise<Batch> {
  for await (const b of loader) return b;
  throw new Error('no batch');
}

describe('data sets that are not what they claim', () => {
  it('a sample shape that is not three small positive integers, or a batch buffer no machine holds: ERR_DATA when the loader is made', () => {
    for (const sampleShape of [[3, 4], [3, 0, 4], [3, NaN, 4], [3, 1.5, 4], [3, 2 ** 20, 2 ** 20], ['3', 4, 4]]) {
      expectCode(() => new DataLoader(dataset({ sampleShape: sampleShape as never }), { batchSize: 2 }), 'ERR_DATA', /sampleShape must be \[C, H, W\] of positive integers/);
    }
    // 2^14 samples of 3 x 4096 x 4096 would be a 3 TB buffer (a RangeError before)
    expectCode(() => new DataLoader(dataset({ length: 2 ** 14, sampleShape: [3, 4096, 4096] }), { batchSize: 2 ** 14 }), 'ERR_DATA', /more than 1073741824 values/);
    expectCode(() => new DataLoader(dataset(), { batchSize: 2, workers: 1e6 }), 'ERR_DATA', /workers must be at most 256/);
    // a prefetch of 1e9 would read the whole epoch ahead into memory
    expectCode(() => new DataLoader(dataset(), { batchSize: 2, prefetch: 1e9 }), 'ERR_DATA', /prefetch must be at most 64/);
  });

  it('a sample without a Float32Array image, or a label the int32 labels cannot hold exactly: ERR_DATA naming the sample (they were a TypeError, or silently another class)', async () => {
    const cases: [Partial<Parameters<typeof dataset>[0]>, RegExp][] = [
      [{ image: () => undefined }, /sample \d: load\(\) must return \{ image: Float32Array, label \}, got an image of undefined/],
      [{ image: () => [1, 2, 3] }, /got an image of \[object Array\]/],
      [{ load: () => null as never }, /load\(\) must return \{ image: Float32Array, label \}, got null/],
      [{ label: () => 1.5 }, /sample \d: expected a label that is an integer in \[0, 2\^31\), got 1\.5/],
      [{ label: () => NaN }, /got NaN/],
      [{ label: () => 2 ** 32 + 1 }, /got 4294967297/],
      [{ label: () => -1 }, /got -1/],
      [{ label: () => '1' }, /got string/],
    ];
    for (const [over, message] of cases) {
      const loader = new DataLoader(dataset(over), { batchSize: 4 });
      await expect(firstBatch(loader), String(message)).rejects.toMatchObject({ code: 'ERR_DATA', message: expect.stringMatching(message) });
    }
    const ok = await firstBatch(new DataLoader(dataset(), { batchSize: 4 }));
    expect(Array.from(ok.labels)).toEqual([0, 1, 0, 1]);
  });
});

describe('Trainer options', () => {
  it('refused options leave the model as it was (precision and memory format were switched before the refusal)', () => {
    const model = tinyModel();
    const base = { model, config: {}, train: dataset(), checkpoint: null, workers: 0 };
    const state = () => model.namedModules().map(([, m]) => `${m.precision}/${m.memoryFormat}`).join(' ');
    const before = state();
    const refused: [object, string, RegExp][] = [
      [{ precision: 'bf16', optimizer: { lr: NaN } }, 'ERR_ARGUMENT', /lr must be a finite number/],
      [{ precision: 'bf16', memoryFormat: 'NHWC' }, 'ERR_ARGUMENT', /setMemoryFormat: expected/],
      [{ memoryFormat: 'channels_last', optimizer: { lr: 0.1, weightDecay: -1 } }, 'ERR_ARGUMENT', /weightDecay/],
      [{ memoryFormat: 'channels_last', precision: 'bf16', batchSize: 9 }, 'ERR_ARGUMENT', /smaller than one batch of 9/],
      [{ precision: 'bf16', device: 'tpu' }, 'ERR_DEVICE', /unknown device 'tpu'/],
      [{ precision: 'bf16', train: dataset({ length: NaN }) }, 'ERR_DATA', /the dataset's length/],
    ];
    for (const [o, code, message] of refused) {
      expectCode(() => new Trainer({ ...base, ...o } as never), code, message);
      expect(state(), JSON.stringify(o)).toBe(before);
    }
    // and the same model trains afterwards
    expect(() => new Trainer({ ...base, batchSize: 4, precision: 'bf16', memoryFormat: 'channels_last', optimizer: { lr: 0.1 } })).not.toThrow();
    expect(model.precision).toBe('bf16');
  });

  it('a Trainer refused after it made its parameter store gives the parameters their own tensors back and frees the store (its buffers stayed alive in the parameters)', async () => {
    const r = rng();
    const model = tinyModel().eval();
    // fresh values and non-zero gradients, so that both must come back unchanged
    for (const p of model.parameters()) {
      p.assign(uniform(p.numel, r));
      p.grad.dispose();
      p.grad = Tensor.from(uniform(p.numel, r), p.shape);
    }
    const x = Tensor.from(uniform(2 * 48, r), [2, 3, 4, 4]);
    const values = () => model.namedParameters().map(([n, p]) => [n, Array.from(p.data.dataSync()), Array.from(p.grad.dataSync())]);
    const output = () => {
      const y = model.forward(x);
      const v = Array.from(y.dataSync());
      y.dispose();
      return v;
    };
    const used = async () => {
      await collectGarbage(); // what nobody holds any more (the momentum buffer) goes with its finalizer
      await synchronize();
      return memoryStats().usedBytes;
    };
    const before = values();
    const out = output();
    const used0 = await used();
    const base = { model, config: {}, train: dataset(), checkpoint: null, workers: 0, optimizer: { lr: 0.1 } };
    // each refused after ParameterStore.create: by SGD, by the schedule, by the data set's size
    const refused: [object, RegExp][] = [
      [{ optimizer: { lr: NaN } }, /lr must be a finite number/],
      [{ schedule: { kind: 'step', stepSize: 0 } }, /stepSize must be a positive integer/],
      [{ batchSize: 9 }, /smaller than one batch of 9/],
      [{ precision: 'bf16', batchSize: 9 }, /smaller than one batch of 9/], // the store's bfloat16 copy too
    ];
    for (const [o, message] of refused) {
      expectCode(() => new Trainer({ ...base, ...o } as never), 'ERR_ARGUMENT', message);
      expect(await used(), `${JSON.stringify(o)}: the store's buffers are freed`).toBe(used0);
      expect(values(), JSON.stringify(o)).toEqual(before);
      expect(output(), JSON.stringify(o)).toEqual(out);
    }
    // a later Trainer takes the same values and trains them
    const t = new Trainer({ ...base, batchSize: 4, maxSteps: 1 });
    expect(values()).toEqual(before);
    const summary = await t.run();
    expect(summary.steps).toBe(1);
    expect(Number.isFinite(summary.trainLoss)).toBe(true);
    expect(values()).not.toEqual(before);
    await t.close();
    x.dispose();
  });

  it('step counts that are not integers are refused up front (maxSteps NaN with epochs 1e300 ran forever)', () => {
    const base = { model: tinyModel(), config: {}, train: dataset(), batchSize: 4, checkpoint: null, workers: 0 };
    const refused: [object, RegExp][] = [
      [{ epochs: 1e300, maxSteps: NaN }, /epochs must be a positive integer, got 1e\+300/],
      [{ maxSteps: NaN }, /maxSteps must be an integer >= 0, got NaN/],
      [{ maxSteps: 1.5 }, /maxSteps must be an integer >= 0/],
      [{ warmupSteps: -1 }, /warmupSteps must be an integer >= 0/],
      [{ logEvery: 0 }, /logEvery must be an integer >= 1/],
      [{ checkpointEvery: Infinity }, /checkpointEvery must be an integer >= 0/],
      [{ cudaGraph: 'yes' }, /cudaGraph must be a boolean/],
      [{ batchSize: 2 ** 53 }, /batchSize must be a positive integer/],
    ];
    for (const [o, message] of refused) expectCode(() => new Trainer({ ...base, ...o } as never), 'ERR_ARGUMENT', message);
  });
});
