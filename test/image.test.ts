// 8-bit batches, normalised on the device: normalizeImages against a float64 reference (CPU)
// and bit for bit between CPU and CUDA; pixel batches equal to the float batches they stand
// for; and training from pixel batches equal to training from float batches.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import {
  setTf32,
  batchImages, Conv2d, DataLoader, Flatten, ImageFolder, Linear, MaxPool2d, mulberry32, normalizeImages, ReLU, Sequential,
  SyntheticDataset, Trainer, type PixelBatch,
} from '../src/index.js';
import { describeCuda, itCuda } from './cuda-gate.js';
import { expectCode, rng } from './helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function randomImages(r: () => number, shape: number[]): { pixels: Uint8Array; mean: number[]; std: number[] } {
  const n = shape.reduce((a, b) => a * b, 1);
  const C = shape[1]!;
  return {
    pixels: Uint8Array.from({ length: n }, () => Math.floor(r() * 256)),
    mean: Array.from({ length: C }, () => r()),
    std: Array.from({ length: C }, () => 0.05 + r()),
  };
}

/** (x / 255 - mean[c]) / std[c] in float64, rounded once to float32. */
function reference(pixels: Uint8Array, shape: number[], mean: number[], std: number[]): Float32Array {
  const [, C, H, W] = shape as [number, number, number, number];
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const c = Math.floor(i / (H * W)) % C;
    out[i] = (pixels[i]! / 255 - mean[c]!) / std[c]!;
  }
  return out;
}

describe('normalizeImages', () => {
  it('matches the float64 reference exactly, for 1 to 3 channels and odd sizes', async () => {
    const r = rng();
    for (const shape of [[3, 3, 7, 5], [1, 1, 1, 1], [5, 2, 13, 3], [2, 3, 227, 227]]) {
      const { pixels, mean, std } = randomImages(r, shape);
      const want = reference(pixels, shape, mean, std);
      const y = normalizeImages(pixels, shape, { mean, std });
      pixels.fill(0); // copied at the call: the caller may reuse its array at once
      expect(y.shape).toEqual(shape);
      expect(Array.from(await y.data())).toEqual(Array.from(want));
    }
  });

  it('reads pixels on a SharedArrayBuffer too (copied at the call)', async () => {
    const r = rng();
    const shape = [2, 3, 5, 4];
    const { pixels, mean, std } = randomImages(r, shape);
    const shared = new Uint8Array(new SharedArrayBuffer(pixels.length + 8), 8);
    shared.set(pixels);
    const y = normalizeImages(shared, shape, { mean, std });
    shared.fill(0);
    expect(Array.from(await y.data())).toEqual(Array.from(reference(pixels, shape, mean, std)));
  });

  it('rejects what it cannot normalise, with coded errors', () => {
    const px = new Uint8Array(12);
    expectCode(() => normalizeImages(new Float32Array(12) as unknown as Uint8Array, [1, 3, 2, 2], { mean: [0, 0, 0], std: [1, 1, 1] }), 'ERR_DTYPE');
    expectCode(() => normalizeImages(px, [1, 3, 2, 3], { mean: [0, 0, 0], std: [1, 1, 1] }), 'ERR_SHAPE', /18 pixels but the array has 12/);
    expectCode(() => normalizeImages(px, [3, 4, 1, 1], { mean: [0, 0, 0, 0], std: [1, 1, 1, 1] }), 'ERR_SHAPE', /1 to 3 channels/);
    expectCode(() => normalizeImages(px, [12], { mean: [0], std: [1] }), 'ERR_SHAPE', /\[N, C, H, W\]/);
    expectCode(() => normalizeImages(px, [1, 3, 2, 2], { mean: [0, 0], std: [1, 1, 1] }), 'ERR_ARGUMENT', /mean to have 3 entries/);
    expectCode(() => normalizeImages(px, [1, 3, 2, 2], { mean: [0, 0, 0], std: [1, 0, 1] }), 'ERR_ARGUMENT', /std\[1\] must be positive/);
    expectCode(() => normalizeImages(px, [1, 3, 2, 2], { mean: [0, NaN, 0], std: [1, 1, 1] }), 'ERR_ARGUMENT');
    expectCode(() => normalizeImages(px, [1, 3, 2, 2], { mean: [0, 0, 0], std: [1, 1, 1], device: 'gpu' }), 'ERR_DEVICE');
  });
});

describe('pixel batches', () => {
  it('a SyntheticDataset pixel batch is its float batch rounded to 8 bits', async () => {
    const ds = new SyntheticDataset({ size: 6, imageSize: 31, split: 'train', seed: 3 });
    const floats = new DataLoader(ds, { batchSize: 6, workers: 0 });
    const bytes = new DataLoader(ds, { batchSize: 6, workers: 1, format: 'uint8' }); // through a worker thread
    const f = (await floats.batches().next()).value!;
    const p = (await bytes.batches().next()).value! as PixelBatch;
    await bytes.close();
    expect(p.format).toBe('uint8');
    expect(p.pixels).toBeInstanceOf(Uint8Array);
    expect(Array.from(p.labels)).toEqual(Array.from(f.labels));
    const fromPixels = batchImages(p);
    const device = await normalizeImages(p.pixels, p.shape, { mean: p.mean, std: p.std }).data();
    expect(Array.from(device)).toEqual(Array.from(fromPixels)); // the native table equals the host's
    const images = batchImages(f);
    let worst = 0;
    for (let i = 0; i < images.length; i++) worst = Math.max(worst, Math.abs(images[i]! - fromPixels[i]!) * p.std[Math.floor(i / (31 * 31)) % 3]!);
    expect(worst).toBeLessThanOrEqual(0.5 / 255 + 1e-6); // rounding to 8 bits, no more
    expect(worst).toBeGreaterThan(0); // and the noise does not sit on the 8-bit grid
  });

  it('an ImageFolder pixel batch normalises to exactly its float batch, and training from either is identical', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alexnet-pixels-'));
    dirs.push(dir);
    const r = mulberry32(11);
    for (const name of ['a', 'b']) {
      await mkdir(join(dir, name), { recursive: true });
      for (let i = 0; i < 8; i++) {
        const px = Uint8Array.from({ length: 36 * 40 * 3 }, () => Math.floor(r() * 256));
        await sharp(px, { raw: { width: 40, height: 36, channels: 3 } }).png().toFile(join(dir, name, `${i}.png`));
      }
    }
    const train = await ImageFolder.open(dir, { resizeSize: 36, cropSize: 32, train: true });
    const f = (await new DataLoader(train, { batchSize: 16, workers: 0, shuffle: true, seed: 5 }).batches().next()).value!;
    const p = (await new DataLoader(train, { batchSize: 16, workers: 0, shuffle: true, seed: 5, format: 'uint8' }).batches().next()).value! as PixelBatch;
    expect(Array.from(batchImages(p))).toEqual(Array.from(batchImages(f)));
    const net = () => {
      const g = mulberry32(2);
      return new Sequential(new Conv2d(3, 4, 3, { rng: g }), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(4 * 15 * 15, 2, { rng: g }));
    };
    const losses = async (dataFormat: 'uint8' | 'float32') => {
      const seen: number[] = [];
      const t = new Trainer({ model: net(), config: {}, train, batchSize: 4, epochs: 2, optimizer: { lr: 0.01 }, workers: 0, dataFormat, onProgress: (e) => e.type === 'step' && seen.push(e.loss!) });
      await t.run();
      await t.close();
      return seen;
    };
    const a = await losses('uint8');
    expect(a).toHaveLength(8);
    expect(a).toEqual(await losses('float32'));
  }, 60_000);

  it('refuses the uint8 format for a dataset without pixels', () => {
    const plain = { length: 2, classNames: ['x'], sampleShape: [3, 2, 2] as const, load: () => ({ image: new Float32Array(12), label: 0 }) };
    expectCode(() => new DataLoader(plain, { batchSize: 1, format: 'uint8' }), 'ERR_DATA', /loadPixelsInto/);
  });
});

describeCuda('normalizeImages on CUDA', () => {
  itCuda('equals the CPU bit for bit, including more than 65535 planes in one call', async () => {
    const r = rng();
    for (const shape of [[4, 3, 227, 227], [3, 1, 5, 7], [22000, 3, 1, 2]]) {
      const { pixels, mean, std } = randomImages(r, shape);
      const cpu = await normalizeImages(pixels, shape, { mean, std }).data();
      const gpu = normalizeImages(pixels, shape, { mean, std, device: 'cuda:0' });
      pixels.fill(7); // the upload was staged at the call
      expect(gpu.device).toBe('cuda:0');
      expect(Array.from(await gpu.data())).toEqual(Array.from(cpu));
    }
  });
});

describeCuda('training from pixel batches on CUDA', () => {
  itCuda('one step in flight, 8-bit upload: the same losses as the CPU run (strict FP32)', async () => {
    const train = new SyntheticDataset({ size: 48, imageSize: 32, split: 'train', seed: 9 });
    const net = () => {
      const g = mulberry32(4);
      return new Sequential(new Conv2d(3, 6, 5, { padding: 2, rng: g }), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(6 * 16 * 16, 2, { rng: g }));
    };
    const losses = async (device: string) => {
      const seen: number[] = [];
      const t = new Trainer({ model: net(), config: {}, train, batchSize: 8, epochs: 2, device, optimizer: { lr: 0.01 }, workers: 1, onProgress: (e) => e.type === 'step' && seen.push(e.loss!) });
      const summary = await t.run();
      await t.close();
      expect(summary.steps).toBe(12);
      return seen;
    };
    setTf32(false);
    try {
      const cpu = await losses('cpu');
      const gpu = await losses('cuda:0');
      expect(gpu).toHaveLength(cpu.length);
      gpu.forEach((l, i) => expect(Math.abs(l - cpu[i]!), `step ${i + 1}: ${l} vs ${cpu[i]}`).toBeLessThan(1e-3 + 1e-3 * Math.abs(cpu[i]!)));
    } finally {
      setTf32(true);
    }
  }, 120_000);
});
