// `alexnet bench`: end-to-end inference and training images/s of the seed AlexNet at several
// batch sizes, a per-layer forward/backward table, peak memory, and onnxruntime-node's CPU
// inference of the same network (exported to ONNX) in the same run as the peer.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { exportOnnx } from '../io/onnx.js';
import { alexnet } from '../models/alexnet.js';
import { Conv2d, Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { ParameterStore } from '../nn/store.js';
import { loadNative } from '../native.js';
import { matmul } from '../ops/linear.js';
import { softmaxCrossEntropy } from '../ops/loss.js';
import { SGD } from '../optim/sgd.js';
import { synchronize, Tensor } from '../tensor.js';
import { backendInfo } from '../info.js';

export interface LayerTiming {
  name: string;
  type: string;
  outputShape: number[];
  forwardMs: number;
  backwardMs: number;
}

export interface BenchResult {
  device: string;
  batch: number;
  inferImagesPerSecond: number;
  trainImagesPerSecond: number;
  layers: LayerTiming[];
  peakRssBytes: number;
  peakNativeBytes: number;
  /** multiply-adds x 2 of the convolutions and linear layers, per image: forward, and a training step */
  forwardGflopPerImage: number;
  trainGflopPerImage: number;
  inferGflops: number;
  trainGflops: number;
  /** the machine's matrix-product rate measured in the same run (the ceiling the fractions use) */
  matmul: { size: number; gflops: number };
  inferFractionOfMatmul: number;
  trainFractionOfMatmul: number;
  peer?: { name: string; inferImagesPerSecond: number; ratio: number } | { name: string; error: string };
}

async function best(reps: number, fn: () => Promise<void>): Promise<number> {
  await fn(); // warm-up: page faults, algorithm searches, thread start
  let ms = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ms = Math.min(ms, performance.now() - t0);
  }
  return ms;
}

/** The leaves of a module tree in forward order, with dotted names. */
function leaves(m: Module, prefix = ''): [string, Module][] {
  const kids = m.namedChildren();
  if (kids.length === 0) return [[prefix, m]];
  return kids.flatMap(([n, c]) => leaves(c, prefix ? `${prefix}.${n}` : n));
}

/**
 * FLOPs of the layers that do arithmetic (2 per multiply-add; bias, ReLU, pooling left out):
 * forward per image, and a training step per image (forward + weight gradient + input gradient,
 * the first layer having no input gradient).
 */
export function modelFlops(chain: { m: Module; output: Tensor<'float32'> }[]): { forward: number; train: number } {
  let forward = 0;
  let train = 0;
  chain.forEach(({ m, output }, i) => {
    let f = 0;
    if (m instanceof Conv2d) {
      const perOutput = (m.inChannels / m.groups) * m.kernelSize[0] * m.kernelSize[1];
      f = 2 * perOutput * output.shape.slice(1).reduce((a, b) => a * b, 1);
    } else if (m instanceof Linear) {
      f = 2 * m.inFeatures * m.outFeatures;
    }
    forward += f;
    train += f * (i === 0 ? 2 : 3);
  });
  return { forward, train };
}

/** The machine's matrix-product rate on `device`: a square matmul, best of `reps`. */
async function matmulCeiling(device: string, reps: number): Promise<{ size: number; gflops: number }> {
  const size = device === 'cpu' ? 2048 : 8192;
  const a = Tensor.from(new Float32Array(size * size).map(() => Math.random() - 0.5), [size, size], { device });
  const b = Tensor.from(new Float32Array(size * size).map(() => Math.random() - 0.5), [size, size], { device });
  const ms = await best(reps, async () => {
    const c = matmul(a, b);
    await synchronize(device);
    c.dispose();
  });
  a.dispose();
  b.dispose();
  return { size, gflops: (2 * size ** 3) / ms / 1e6 };
}

/** The process's peak resident and native (addon) memory, sampled every 20 ms while running. */
class MemoryPeaks {
  rss = 0;
  native = 0;
  readonly #externalMemory: () => number;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(externalMemory: () => number) {
    this.#externalMemory = externalMemory;
  }

  start(): void {
    this.#timer = setInterval(() => this.sample(), 20);
  }

  sample(): void {
    this.rss = Math.max(this.rss, process.memoryUsage().rss);
    this.native = Math.max(this.native, this.#externalMemory());
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}

/** One batch size's network, optimizer and inputs. */
interface BenchRig {
  device: string;
  batch: number;
  model: ReturnType<typeof alexnet>;
  store: ParameterStore;
  sgd: SGD;
  host: Float32Array;
  x: Tensor<'float32'>;
  y: Tensor<'int32'>;
}

function rig(device: string, B: number): BenchRig {
  const model = alexnet({ config: 'seed', init: 'kaiming', seed: 1, device });
  const store = ParameterStore.create(model, { device });
  const sgd = new SGD(store, { lr: 1e-4 });
  const host = new Float32Array(B * 3 * 227 * 227).map(() => Math.random() - 0.5);
  const x = Tensor.from(host, [B, 3, 227, 227], { device });
  const y = Tensor.from(Int32Array.from({ length: B }, (_, i) => i % 2), [B], { device, dtype: 'int32' });
  return { device, batch: B, model, store, sgd, host, x, y };
}

function disposeRig(r: BenchRig): void {
  for (const t of [r.x, r.y]) t.dispose();
  r.model.dispose();
  r.store.dispose();
}

/** Milliseconds of an inference pass (eval mode) and of a training step (forward, loss, backward, SGD). */
async function timeEndToEnd(r: BenchRig, reps: number): Promise<{ inferMs: number; trainMs: number }> {
  const { model, store, sgd, x, y, device } = r;
  model.eval();
  const inferMs = await best(reps, async () => {
    const out = model.forward(x);
    await synchronize(device);
    out.dispose();
  });
  model.train();
  const trainMs = await best(reps, async () => {
    store.zeroGrad();
    const logits = model.forward(x);
    const { loss, gradLogits } = softmaxCrossEntropy(logits, y);
    model.backward(gradLogits, false)?.dispose();
    sgd.step();
    await loss.data();
    for (const t of [logits, loss, gradLogits]) t.dispose();
  });
  return { inferMs, trainMs };
}

/** Per layer: each leaf's forward and backward on its real input. */
async function timeLayers(r: BenchRig, reps: number): Promise<{ layers: LayerTiming[]; chain: { m: Module; output: Tensor<'float32'> }[] }> {
  const { model, x, device } = r;
  const layers: LayerTiming[] = [];
  let h = x;
  const chain: { name: string; m: Module; input: Tensor<'float32'>; output: Tensor<'float32'> }[] = [];
  for (const [name, m] of leaves(model)) {
    const out = m.forward(h);
    chain.push({ name, m, input: h, output: out });
    h = out;
  }
  await synchronize(device);
  for (const c of chain) {
    const forwardMs = await best(reps, async () => {
      const o = c.m.forward(c.input);
      await synchronize(device);
      if (o !== c.input) o.dispose();
    });
    const g = Tensor.full(c.output.shape, 1e-3, { device });
    const needInput = c !== chain[0];
    c.m.forward(c.input); // re-prime the layer's cache for backward
    // a layer's backward needs the cache of its forward: time both, subtract the forward
    const bothMs = await best(reps, async () => {
      c.m.forward(c.input);
      const gx = c.m.backward(g, needInput);
      await synchronize(device);
      if (gx && gx !== g) gx.dispose();
    });
    const backwardMs = Math.max(0, bothMs - forwardMs);
    g.dispose();
    layers.push({ name: c.name, type: c.m.constructor.name, outputShape: [...c.output.shape], forwardMs, backwardMs });
  }
  return { layers, chain };
}

/** The figures of one batch size: rates, FLOP rates and their fractions of the matmul ceiling. */
function benchResult(
  r: BenchRig,
  t: { inferMs: number; trainMs: number },
  layers: LayerTiming[],
  flops: { forward: number; train: number },
  memory: MemoryPeaks,
  ceiling: { size: number; gflops: number },
): BenchResult {
  const B = r.batch;
  const inferGflops = (flops.forward * B) / t.inferMs / 1e6;
  const trainGflops = (flops.train * B) / t.trainMs / 1e6;
  return {
    device: r.device,
    batch: B,
    inferImagesPerSecond: (B * 1000) / t.inferMs,
    trainImagesPerSecond: (B * 1000) / t.trainMs,
    layers,
    peakRssBytes: memory.rss,
    peakNativeBytes: memory.native,
    forwardGflopPerImage: flops.forward / 1e9,
    trainGflopPerImage: flops.train / 1e9,
    inferGflops,
    trainGflops,
    matmul: ceiling,
    inferFractionOfMatmul: inferGflops / ceiling.gflops,
    trainFractionOfMatmul: trainGflops / ceiling.gflops,
  };
}

/**
 * The peer: onnxruntime-node's CPU inference of the same network, exported to ONNX once (from
 * the first batch size's model) and timed on the same input.
 */
class OrtPeer {
  #ort: typeof import('onnxruntime-node') | null = null;
  #onnxPath: string | null = null;

  async time(r: BenchRig, reps: number, ours: number): Promise<NonNullable<BenchResult['peer']>> {
    const name = 'onnxruntime-node (CPU)';
    try {
      if (!this.#ort) {
        this.#ort = (await import('onnxruntime-node')) as typeof import('onnxruntime-node');
        this.#onnxPath = join(os.tmpdir(), `alexnet-bench-${process.pid}.onnx`);
        r.model.eval();
        await exportOnnx(r.model as never, this.#onnxPath, { batch: 'dynamic' });
      }
      const ort = this.#ort;
      const session = await ort.InferenceSession.create(this.#onnxPath!, { intraOpNumThreads: os.cpus().length });
      const feeds = { input: new ort.Tensor('float32', r.host, [r.batch, 3, 227, 227]) };
      const peerMs = await best(reps, async () => {
        await session.run(feeds);
      });
      const ips = (r.batch * 1000) / peerMs;
      await session.release();
      return { name, inferImagesPerSecond: ips, ratio: ours / ips };
    } catch (e) {
      return { name, error: (e as Error).message.split('\n')[0] ?? String(e) };
    }
  }

  async close(): Promise<void> {
    if (this.#onnxPath) await rm(this.#onnxPath, { force: true });
  }
}

export async function benchmark(options: { device: string; batches: number[]; reps: number; peer: boolean }): Promise<BenchResult[]> {
  const native = loadNative();
  const memory = new MemoryPeaks(() => native.externalMemory());
  memory.start();
  const peer = new OrtPeer();
  const results: BenchResult[] = [];
  try {
    const ceiling = await matmulCeiling(options.device, options.reps);
    for (const B of options.batches) {
      const r = rig(options.device, B);
      const times = await timeEndToEnd(r, options.reps);
      const { layers, chain } = await timeLayers(r, options.reps);
      memory.sample();
      const result = benchResult(r, times, layers, modelFlops(chain), memory, ceiling);
      if (options.peer && options.device === 'cpu') result.peer = await peer.time(r, options.reps, result.inferImagesPerSecond);
      results.push(result);
      disposeRig(r);
    }
  } finally {
    memory.stop();
    await peer.close();
  }
  return results;
}

export function benchMarkdown(results: BenchResult[]): string {
  const info = backendInfo();
  const lines = [
    `# alexnet bench (${results[0]?.device ?? 'cpu'})`,
    '',
    `${new Date().toISOString()} · ${os.cpus()[0]?.model ?? 'cpu'} · ${os.cpus().length} cores · ${info.backends.cpu.blas} · node ${process.version}`,
    '',
    results[0] ? `matmul ${results[0].matmul.size}^3 in the same run: **${results[0].matmul.gflops.toFixed(1)} GFLOP/s** (the ceiling below); the network does ${results[0].forwardGflopPerImage.toFixed(2)} GFLOP per image forward, ${results[0].trainGflopPerImage.toFixed(2)} per training step` : '',
    '',
    '| batch | inference images/s | of matmul rate | training images/s | of matmul rate | peer inference images/s | ours / peer | peak RSS |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const pct = (f: number) => `${(100 * f).toFixed(0)}%`;
  for (const r of results) {
    const peer = r.peer && 'ratio' in r.peer ? `${r.peer.inferImagesPerSecond.toFixed(1)} | ${r.peer.ratio.toFixed(2)}x` : `${r.peer && 'error' in r.peer ? r.peer.error : 'not run'} | `;
    lines.push(`| ${r.batch} | ${r.inferImagesPerSecond.toFixed(1)} | ${pct(r.inferFractionOfMatmul)} | ${r.trainImagesPerSecond.toFixed(1)} | ${pct(r.trainFractionOfMatmul)} | ${peer} | ${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB |`);
  }
  const last = results.at(-1);
  if (last) {
    lines.push('', `Per layer at batch ${last.batch} (best of the repetitions):`, '', '| layer | type | output | forward ms | backward ms (forward subtracted) |', '|---|---|---|---:|---:|');
    for (const l of last.layers) lines.push(`| ${l.name} | ${l.type} | ${l.outputShape.join('x')} | ${l.forwardMs.toFixed(2)} | ${l.backwardMs.toFixed(2)} |`);
  }
  return lines.join('\n');
}

export async function benchCommand(o: { device: string; batch?: string; reps: number; json: boolean; peer: boolean; save: boolean }): Promise<void> {
  const batches = (o.batch ?? (o.device === 'cpu' ? '1,16,64' : '1,16,64,128')).split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  const results = await benchmark({ device: o.device, batches, reps: o.reps, peer: o.peer });
  if (o.json) for (const r of results) console.log(JSON.stringify(r));
  const md = benchMarkdown(results);
  if (!o.json) console.log(md);
  if (o.save) {
    const dir = join(process.cwd(), 'bench', 'results');
    await mkdir(dir, { recursive: true });
    const stamp = `bench-${o.device.replace(':', '')}-${new Date().toISOString().slice(0, 10)}`;
    await writeFile(join(dir, `${stamp}.json`), JSON.stringify({ date: new Date().toISOString(), machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length }, results }, null, 2) + '\n');
    await writeFile(join(dir, `${stamp}.md`), md + '\n');
    if (!o.json) console.log(`\nsaved bench/results/${stamp}.{json,md}`);
  }
}
