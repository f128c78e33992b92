// `alexnet bench`: end-to-end inference and training images/s of the seed AlexNet at several
// batch sizes, a per-layer forward/backward table, peak memory, and two peers in the same run:
// onnxruntime-node's CPU inference of the same network (exported to ONNX), and PyTorch's CPU
// build (oneDNN) for inference and training (bench/torch_cpu.py in a process of its own), where
// `/usr/bin/python3 -c 'import torch'` works. The engines take turns, one timed pass each per
// round (ours, onnxruntime, PyTorch, then the FMA peak, and again), and each keeps its best
// round, so the machine's drift hits all of them alike. FLOP rates are given as fractions of a
// square matmul and of the machine's FMA peak, both measured in the same run.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { encodeOnnx } from '../io/onnx.js';
import { alexnet } from '../models/alexnet.js';
import { Conv2d, Linear } from '../nn/layers.js';
import type { Module, Precision } from '../nn/module.js';
import { ParameterStore } from '../nn/store.js';
import { loadNative, openblasThreadTimeoutSetByUs, type ConvAlgorithm } from '../native.js';
import { matmul } from '../ops/linear.js';
import { softmaxCrossEntropy } from '../ops/loss.js';
import { SGD } from '../optim/sgd.js';
import { synchronize, Tensor } from '../tensor.js';
import { backendInfo, setConvAlgorithm, setWeightCache } from '../info.js';
import type { DistBenchResult } from './bench-dist.js';

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
  peer?: { name: string; inferImagesPerSecond: number; ratio: number; inferFractionOfFmaPeak?: number } | { name: string; error: string };
  /** the machine's FMA peak measured in the same run (fmaPeak: every pool thread, best of the rounds) */
  fmaPeak: FmaPeakSummary;
  inferFractionOfFmaPeak: number;
  trainFractionOfFmaPeak: number;
  /** the second peer: PyTorch's CPU build, or why it did not run */
  torch?: TorchPeerResult;
  /**
   * The same network in mixed precision (Module.setPrecision('bf16'): bfloat16 weight copies and
   * activations, float32 master weights and logits), timed in the same rounds, on every device
   * unless the run was asked to leave it out (`--no-bf16`), or why it could not run.
   */
  bf16?: { inferImagesPerSecond: number; trainImagesPerSecond: number; inferVsFp32: number; trainVsFp32: number; inferVsOnnxruntime?: number } | { error: string };
  /** CPU: the instruction sets each engine ran with (`--isa`) */
  cpuIsa?: BenchIsa;
}

/** What `alexnet bench --isa` ran each engine with. */
export interface BenchIsa {
  /** the --isa asked for */
  requested: 'auto' | 'avx2';
  /** our kernels: what they used (backendInfo().backends.cpu.isa), the cap, the CPU's best */
  ours: string;
  cap: string;
  hardware: string;
  /** OpenBLAS as loaded (its config names the kernels: Haswell = AVX2), and OPENBLAS_CORETYPE */
  blas: string;
  openblasCoretype: string | null;
  /** onnxruntime-node has no switch for its kernels: always the CPU's best */
  onnxruntime: string;
  torch: string;
}

export interface FmaPeakSummary {
  /** the best instruction set's rate, the ceiling of the fractions */
  isa: string;
  gflops: number;
  threads: number;
  /** every instruction set this CPU has, measured once at the start */
  isas: { isa: string; gflops: number }[];
}

export type TorchPeerResult =
  | {
      name: string;
      version: string;
      threads: number;
      inferImagesPerSecond: number;
      trainImagesPerSecond: number;
      /** ours / PyTorch */
      inferRatio: number;
      trainRatio: number;
      inferFractionOfFmaPeak: number;
      trainFractionOfFmaPeak: number;
    }
  | { name: string; skipped: string }
  | { name: string; error: string };

/** The interpreter that runs the PyTorch peer: ALEXNET_BENCH_PYTHON, else Debian's /usr/bin/python3 (not whatever `python3` is on PATH). */
export function torchPython(): string {
  return process.env.ALEXNET_BENCH_PYTHON || '/usr/bin/python3';
}

async function best(reps: number, fn: () => Promise<void>, warmup = true): Promise<number> {
  if (warmup) await fn(); // warm-up: page faults, algorithm searches, thread start
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
export interface BenchRig {
  device: string;
  batch: number;
  /** the network the training steps update */
  model: ReturnType<typeof alexnet>;
  /**
   * The same network (same seed, same weights) for the inference passes, never trained: an
   * inference benchmark is a served model, whose weights stay fixed, as onnxruntime's session's
   * do. Timed on the trained model, every pass after a training step would also pay for packing
   * and transforming the changed filters (the weight cache's one-off work), which no peer does.
   */
  inferModel: ReturnType<typeof alexnet>;
  store: ParameterStore;
  sgd: SGD;
  host: Float32Array;
  x: Tensor<'float32'>;
  y: Tensor<'int32'>;
}

export function rig(device: string, B: number, options: { infer?: boolean; precision?: Precision; host?: Float32Array } = {}): BenchRig {
  const precision = options.precision ?? 'fp32';
  const model = alexnet({ config: 'seed', init: 'kaiming', seed: 1, device, precision });
  const inferModel = options.infer === false ? model : alexnet({ config: 'seed', init: 'kaiming', seed: 1, device, precision });
  const store = ParameterStore.create(model, { device, bf16Copy: precision === 'bf16' });
  const sgd = new SGD(store, { lr: 1e-4 });
  const host = options.host ?? new Float32Array(B * 3 * 227 * 227).map(() => Math.random() - 0.5);
  const x = Tensor.from(host, [B, 3, 227, 227], { device });
  const y = Tensor.from(Int32Array.from({ length: B }, (_, i) => i % 2), [B], { device, dtype: 'int32' });
  return { device, batch: B, model, inferModel, store, sgd, host, x, y };
}

export function disposeRig(r: BenchRig): void {
  for (const t of [r.x, r.y]) t.dispose();
  r.model.dispose();
  if (r.inferModel !== r.model) r.inferModel.dispose();
  r.store.dispose();
}

/** Milliseconds of an inference pass (eval mode) and of a training step (forward, loss, backward, SGD). */
async function timeEndToEnd(r: BenchRig, reps: number, warmup = true): Promise<{ inferMs: number; trainMs: number }> {
  const { model, inferModel, store, sgd, x, y, device } = r;
  inferModel.eval();
  const inferMs = await best(reps, async () => {
    const out = inferModel.forward(x);
    await synchronize(device);
    out.dispose();
  }, warmup);
  model.train();
  const trainMs = await best(reps, async () => {
    store.zeroGrad();
    const logits = model.forward(x);
    const { loss, gradLogits } = softmaxCrossEntropy(logits, y);
    model.backward(gradLogits, false)?.dispose();
    sgd.step();
    await loss.data();
    for (const t of [logits, loss, gradLogits]) t.dispose();
  }, warmup);
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
    // set once every round has measured the peak (applyFmaPeak)
    fmaPeak: { isa: '', gflops: 0, threads: 0, isas: [] },
    inferFractionOfFmaPeak: 0,
    trainFractionOfFmaPeak: 0,
  };
}

/**
 * The first peer: onnxruntime-node's CPU inference of the same network, exported to ONNX once
 * (from the first batch size's model) and timed on the same input. One session per batch size,
 * kept across that batch's rounds.
 */
class OrtPeer {
  readonly name = 'onnxruntime-node (CPU)';
  #ort: typeof import('onnxruntime-node') | null = null;
  /** the model as ONNX bytes, in memory: no file is left behind when a run is killed */
  #onnx: Uint8Array | null = null;
  #session: import('onnxruntime-node').InferenceSession | null = null;
  #feeds: Record<string, import('onnxruntime-node').Tensor> = {};
  #error: string | null = null;
  #bestMs = Infinity;
  #warm = false;

  /** A session for this batch size (the previous one released). */
  async prepare(r: BenchRig): Promise<void> {
    await this.release();
    this.#bestMs = Infinity;
    this.#warm = false;
    this.#error = null;
    try {
      if (!this.#ort) {
        this.#ort = (await import('onnxruntime-node')) as typeof import('onnxruntime-node');
        r.inferModel.eval();
        this.#onnx = await encodeOnnx(r.inferModel as never, { batch: 'dynamic' });
      }
      const ort = this.#ort;
      this.#session = await ort.InferenceSession.create(this.#onnx!, { intraOpNumThreads: os.cpus().length });
      this.#feeds = { input: new ort.Tensor('float32', r.host, [r.batch, 3, 227, 227]) };
    } catch (e) {
      this.#fail(e);
    }
  }

  /** One round: a timed inference pass (after a warm-up on the first round). */
  async round(): Promise<void> {
    if (!this.#session || this.#error) return;
    try {
      const session = this.#session;
      this.#bestMs = Math.min(this.#bestMs, await best(1, async () => void (await session.run(this.#feeds)), !this.#warm));
      this.#warm = true;
    } catch (e) {
      this.#fail(e);
    }
  }

  result(batch: number, ours: number): NonNullable<BenchResult['peer']> {
    if (this.#error !== null || !Number.isFinite(this.#bestMs)) return { name: this.name, error: this.#error ?? 'not timed' };
    const ips = (batch * 1000) / this.#bestMs;
    return { name: this.name, inferImagesPerSecond: ips, ratio: ours / ips };
  }

  #fail(e: unknown): void {
    this.#error = (e as Error).message?.split('\n')[0] ?? String(e);
  }

  async release(): Promise<void> {
    const s = this.#session;
    this.#session = null;
    this.#feeds = {};
    if (s) await s.release();
  }

  async close(): Promise<void> {
    await this.release();
    this.#onnx = null;
  }
}

/** Lines of a child's stdout, one at a time, each awaited with a time limit. */
class LineReader {
  #lines: string[] = [];
  #waiting: ((line: string | null) => void) | null = null;
  #closed = false;

  constructor(child: ChildProcessWithoutNullStreams) {
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      if (this.#waiting) {
        const w = this.#waiting;
        this.#waiting = null;
        w(line);
      } else this.#lines.push(line);
    });
    rl.on('close', () => {
      this.#closed = true;
      this.#waiting?.(null);
      this.#waiting = null;
    });
  }

  /** The next line; null at the end of the output; rejects after `ms`. */
  next(ms: number, what: string): Promise<string | null> {
    if (this.#lines.length > 0) return Promise.resolve(this.#lines.shift()!);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = null;
        reject(new Error(`${what} took longer than ${ms / 1000} s`));
      }, ms);
      this.#waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
    });
  }
}

/** Time limits of the PyTorch peer: importing torch, and one round (a warm-up and a timed pass of each, at batch 64 some 20 s on 2 cores). */
const TORCH_START_MS = 120_000;
const TORCH_ROUND_MS = 600_000;

/**
 * The second peer: PyTorch's CPU build, fp32 eager with its oneDNN convolutions, on as many
 * threads as ours. bench/torch_cpu.py --serve runs in a process of its own for the whole
 * benchmark and times one inference pass and one training step (forward, cross-entropy,
 * backward, SGD with momentum) per request, so it takes its turn in the rounds like the others.
 * Skipped, with the reason, where the interpreter or torch is missing.
 */
export class TorchPeer {
  readonly name = 'PyTorch (CPU)';
  #child: ChildProcessWithoutNullStreams | null = null;
  #lines: LineReader | null = null;
  #stderr = '';
  #version = '';
  #threads = 0;
  /** why the peer does not run: skipped (no interpreter, no torch) or failed */
  #skipped: string | null = null;
  #error: string | null = null;
  #best = { inferMs: Infinity, trainMs: Infinity };
  #warm = false;

  /** Starts the interpreter and waits until torch is imported; false (with the reason kept) where it cannot. */
  async start(python: string, threads: number, isa: 'auto' | 'avx2' = 'auto'): Promise<boolean> {
    const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'torch_cpu.py');
    const env = { ...process.env, ...torchIsaEnv(isa) };
    if (isa === 'auto') {
      delete env.OPENBLAS_CORETYPE; // PyTorch's BLAS is OpenBLAS too: same kernels a user gets
      delete env.OPENBLAS_L2_SIZE;
    if (openblasThreadTimeoutSetByUs) delete env.OPENBLAS_THREAD_TIMEOUT; // our setting, not the peer's: it gets OpenBLAS's default, as its users do
    }
    try {
      const child = spawn(python, [script, '--serve', '--threads', String(threads)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      this.#child = child;
      child.stderr.on('data', (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-4000)));
      const spawned = new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      await spawned;
      this.#lines = new LineReader(child);
      const line = await this.#lines.next(TORCH_START_MS, `${python}: import torch`);
      const ready = line ? (JSON.parse(line) as { ready?: boolean; torch?: string; threads?: number; error?: string }) : null;
      if (!ready?.ready) {
        this.#skipped = ready?.error ?? `${python} ${script} ended before it was ready${this.#stderrTail()}`;
        await this.close();
        return false;
      }
      this.#version = ready.torch ?? '';
      this.#threads = ready.threads ?? threads;
      return true;
    } catch (e) {
      // spawn ENOENT (no such interpreter) or the time limit
      this.#skipped = `${python}: ${(e as Error).message.split('\n')[0]}`;
      await this.close();
      return false;
    }
  }

  get skipped(): string | null {
    return this.#skipped;
  }

  /** The next batch size: its best times start afresh, and its first round warms up. */
  reset(): void {
    this.#best = { inferMs: Infinity, trainMs: Infinity };
    this.#warm = false;
    this.#error = null;
  }

  /** One round at batch B: one timed inference pass and one training step. */
  async round(batch: number): Promise<void> {
    if (!this.#child || !this.#lines || this.#error) return;
    try {
      this.#child.stdin.write(JSON.stringify({ batch, warmup: !this.#warm }) + '\n');
      const line = await this.#lines.next(TORCH_ROUND_MS, `PyTorch at batch ${batch}`);
      if (line === null) throw new Error(`bench/torch_cpu.py exited${this.#stderrTail()}`);
      const t = JSON.parse(line) as { inferMs?: number; trainMs?: number; error?: string };
      if (t.error || t.inferMs === undefined || t.trainMs === undefined) throw new Error(t.error ?? `unexpected answer: ${line}`);
      this.#best = { inferMs: Math.min(this.#best.inferMs, t.inferMs), trainMs: Math.min(this.#best.trainMs, t.trainMs) };
      this.#warm = true;
    } catch (e) {
      this.#error = (e as Error).message.split('\n')[0]!;
      await this.close(); // a timed-out child is not left running
    }
  }

  result(r: { batch: number; inferImagesPerSecond: number; trainImagesPerSecond: number; forwardGflopPerImage: number; trainGflopPerImage: number }): TorchPeerResult {
    if (this.#skipped !== null) return { name: this.name, skipped: this.#skipped };
    if (this.#error !== null || !Number.isFinite(this.#best.inferMs)) return { name: this.name, error: this.#error ?? 'not timed' };
    const infer = (r.batch * 1000) / this.#best.inferMs;
    const train = (r.batch * 1000) / this.#best.trainMs;
    return {
      name: this.name,
      version: this.#version,
      threads: this.#threads,
      inferImagesPerSecond: infer,
      trainImagesPerSecond: train,
      inferRatio: r.inferImagesPerSecond / infer,
      trainRatio: r.trainImagesPerSecond / train,
      // filled in with the final peak (applyFmaPeak)
      inferFractionOfFmaPeak: 0,
      trainFractionOfFmaPeak: 0,
    };
  }

  #stderrTail(): string {
    const last = this.#stderr.trim().split('\n').at(-1);
    return last ? `: ${last}` : '';
  }

  async close(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin.end(); // the server's input ends: it exits
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  }
}

/**
 * The PyTorch peer's environment under `--isa avx2`: oneDNN's documented cap (its convolutions
 * then report `isa:Intel AVX2` and run jit:avx2 kernels, checked with ONEDNN_VERBOSE=1), ATen's
 * CPU capability, and OpenBLAS's AVX2 kernels.
 */
export function torchIsaEnv(isa: 'auto' | 'avx2'): Record<string, string> {
  return isa === 'avx2' ? { ONEDNN_MAX_CPU_ISA: 'AVX2', DNNL_MAX_CPU_ISA: 'AVX2', ATEN_CPU_CAPABILITY: 'avx2', OPENBLAS_CORETYPE: 'Haswell' } : {};
}

/** The machine's FMA peak on our pool: every instruction set once, then the best one re-measured each round; the highest is kept. */
class FmaPeakMeter {
  summary: FmaPeakSummary = { isa: '', gflops: 0, threads: 0, isas: [] };
  readonly #native: ReturnType<typeof loadNative>;

  constructor(native: ReturnType<typeof loadNative>) {
    this.#native = native;
  }

  async all(): Promise<void> {
    const rows = await this.#native.fmaPeak({ seconds: 0.2 });
    // the ceiling is the best set our kernels may use: under an AVX2 cap, AVX2's peak
    const capped = this.#native.info().cpu.isa !== 'avx512';
    const top = (capped ? rows.find((r) => r.isa !== 'avx512f') : undefined) ?? rows[0]!;
    this.summary = { isa: top.isa, gflops: top.gflops, threads: top.threads, isas: rows.map((r) => ({ isa: r.isa, gflops: r.gflops })) };
  }

  async round(): Promise<void> {
    const [row] = await this.#native.fmaPeak({ isa: 'best', seconds: 0.2 });
    if (row && row.gflops > this.summary.gflops) {
      this.summary.gflops = row.gflops;
      const first = this.summary.isas.find((i) => i.isa === row.isa);
      if (first) first.gflops = Math.max(first.gflops, row.gflops);
    }
  }
}

/** Every result's fractions of the final (highest) FMA peak. */
function applyFmaPeak(results: BenchResult[], peak: FmaPeakSummary): void {
  if (!(peak.gflops > 0)) return;
  for (const r of results) {
    r.fmaPeak = { ...peak, isas: peak.isas.map((i) => ({ ...i })) };
    r.inferFractionOfFmaPeak = r.inferGflops / peak.gflops;
    r.trainFractionOfFmaPeak = r.trainGflops / peak.gflops;
    if (r.peer && 'ratio' in r.peer) r.peer.inferFractionOfFmaPeak = (r.peer.inferImagesPerSecond * r.forwardGflopPerImage) / peak.gflops;
    if (r.torch && 'inferRatio' in r.torch) {
      r.torch.inferFractionOfFmaPeak = (r.torch.inferImagesPerSecond * r.forwardGflopPerImage) / peak.gflops;
      r.torch.trainFractionOfFmaPeak = (r.torch.trainImagesPerSecond * r.trainGflopPerImage) / peak.gflops;
    }
  }
}

export interface BenchOptions {
  device: string;
  batches: number[];
  /** rounds: each engine's best of this many timed passes */
  reps: number;
  /** run the peers (CPU only): onnxruntime-node, and PyTorch where it imports */
  peer: boolean;
  /** the PyTorch peer's interpreter (default torchPython()) */
  python?: string;
  /** where "PyTorch peer skipped: <reason>" goes (default console.error) */
  log?: (line: string) => void;
  /** time the mixed-precision (bf16) network too, in the same rounds (default true) */
  bf16?: boolean;
  /** 'avx2': the PyTorch peer capped to AVX2 too (our cap and OpenBLAS's are set before the addon loads: benchIsaChild) */
  isa?: 'auto' | 'avx2';
}

/**
 * The network in mixed precision beside the float32 one: its own pair of models (same seed,
 * same weights, same input), timed in the same rounds. A failure (a backend without a bfloat16
 * path) is reported in the result, not thrown: the float32 figures and the peers still stand.
 */
class Bf16Engine {
  #rig: BenchRig | null = null;
  #best = { inferMs: Infinity, trainMs: Infinity };
  #error: string | null = null;

  prepare(r: BenchRig): void {
    this.#best = { inferMs: Infinity, trainMs: Infinity };
    this.#error = null;
    try {
      this.#rig = rig(r.device, r.batch, { precision: 'bf16', host: r.host });
    } catch (e) {
      this.#fail(e);
    }
  }

  async round(first: boolean): Promise<void> {
    if (!this.#rig || this.#error) return;
    try {
      const t = await timeEndToEnd(this.#rig, 1, first);
      this.#best = { inferMs: Math.min(this.#best.inferMs, t.inferMs), trainMs: Math.min(this.#best.trainMs, t.trainMs) };
    } catch (e) {
      this.#fail(e);
    }
  }

  result(r: BenchResult): NonNullable<BenchResult['bf16']> | { error: string } {
    if (this.#error !== null || !Number.isFinite(this.#best.inferMs)) return { error: this.#error ?? 'not timed' };
    const infer = (r.batch * 1000) / this.#best.inferMs;
    const train = (r.batch * 1000) / this.#best.trainMs;
    const ort = r.peer && 'ratio' in r.peer ? r.peer.inferImagesPerSecond : undefined;
    return {
      inferImagesPerSecond: infer,
      trainImagesPerSecond: train,
      inferVsFp32: infer / r.inferImagesPerSecond,
      trainVsFp32: train / r.trainImagesPerSecond,
      ...(ort ? { inferVsOnnxruntime: infer / ort } : {}),
    };
  }

  #fail(e: unknown): void {
    this.#error = (e as Error).message?.split('\n')[0] ?? String(e);
    this.release();
  }

  release(): void {
    if (this.#rig) disposeRig(this.#rig);
    this.#rig = null;
  }
}

export async function benchmark(options: BenchOptions): Promise<BenchResult[]> {
  const native = loadNative();
  const log = options.log ?? ((line: string) => console.error(line));
  const memory = new MemoryPeaks(() => native.externalMemory());
  memory.start();
  const cpu = options.device === 'cpu';
  const peers = options.peer && cpu;
  const ort = new OrtPeer();
  const torch = new TorchPeer();
  const peak = new FmaPeakMeter(native);
  const bf16 = options.bf16 !== false ? new Bf16Engine() : null;
  const results: BenchResult[] = [];
  try {
    const ceiling = await matmulCeiling(options.device, options.reps);
    if (cpu) await peak.all(); // the CPU's peak: no ceiling for a GPU run
    const isa = options.isa ?? 'auto';
    if (peers && !(await torch.start(options.python ?? torchPython(), native.info().cpu.threads, isa))) log(`PyTorch peer skipped: ${torch.skipped}`);
    for (const B of options.batches) {
      const r = rig(options.device, B);
      bf16?.prepare(r);
      if (peers) {
        await ort.prepare(r);
        torch.reset();
      }
      // alternating rounds, each engine keeping its best
      let times = { inferMs: Infinity, trainMs: Infinity };
      for (let round = 0; round < options.reps; round++) {
        const t = await timeEndToEnd(r, 1, round === 0);
        times = { inferMs: Math.min(times.inferMs, t.inferMs), trainMs: Math.min(times.trainMs, t.trainMs) };
        await bf16?.round(round === 0);
        if (peers) {
          await ort.round();
          await torch.round(B);
        }
        if (cpu) await peak.round();
      }
      if (peers) await ort.release();
      bf16?.release(); // before the per-layer table: its memory is the float32 network's
      const { layers, chain } = await timeLayers(r, options.reps);
      memory.sample();
      const result = benchResult(r, times, layers, modelFlops(chain), memory, ceiling);
      if (peers) {
        result.peer = ort.result(B, result.inferImagesPerSecond);
        result.torch = torch.result(result);
      }
      if (bf16) result.bf16 = bf16.result(result);
      if (cpu) result.cpuIsa = benchIsa(isa);
      results.push(result);
      disposeRig(r);
    }
    applyFmaPeak(results, peak.summary);
  } finally {
    memory.stop();
    bf16?.release();
    await ort.close();
    await torch.close();
  }
  return results;
}

function benchIsa(requested: 'auto' | 'avx2'): BenchIsa {
  const cpu = backendInfo().backends.cpu;
  return {
    requested,
    ours: cpu.isa,
    cap: cpu.isaCap,
    hardware: cpu.isaHardware,
    blas: cpu.blas,
    openblasCoretype: process.env.OPENBLAS_CORETYPE ?? null,
    onnxruntime: `not capped (no switch for it): its own kernels for the CPU's best, ${cpu.isaHardware}`,
    torch: requested === 'avx2' ? `capped: ${Object.entries(torchIsaEnv('avx2')).map(([k, v]) => `${k}=${v}`).join(' ')}` : 'not capped',
  };
}

/** The variable that marks the child process of `alexnet bench --isa avx2` (benchIsaChild). */
const ISA_CHILD = 'ALEXNET_BENCH_ISA_CHILD';

/**
 * `alexnet bench --isa avx2`: OpenBLAS picks its kernels once, when it loads, from
 * OPENBLAS_CORETYPE, and our cap is read then too (ALEXNET_CPU_ISA). So the command runs itself
 * again in a child process with both set before anything loads, and passes on its exit status.
 * Returns true in that child (go on benchmarking), false in the parent once the child is done.
 */
export async function benchIsaChild(isa: 'auto' | 'avx2'): Promise<boolean> {
  if (isa !== 'avx2' || process.env[ISA_CHILD] === '1') return true;
  const env: NodeJS.ProcessEnv = { ...process.env, [ISA_CHILD]: '1', ALEXNET_CPU_ISA: 'avx2', OPENBLAS_CORETYPE: 'Haswell' };
  delete env.OPENBLAS_L2_SIZE;
  console.error('alexnet bench --isa avx2: running again in a child process with ALEXNET_CPU_ISA=avx2 OPENBLAS_CORETYPE=Haswell (set before the addon and OpenBLAS load)');
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { env, stdio: 'inherit' });
  const code = await new Promise<number>((resolve) => {
    child.once('error', () => resolve(1));
    child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  process.exitCode = code;
  return false;
}

/** "amd-epyc", "intel-r-xeon-r-processor": the CPU model as a file-name part. */
export function cpuSlug(model = os.cpus()[0]?.model ?? 'cpu'): string {
  return model.toLowerCase().replace(/\((r|tm)\)/g, '').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'cpu';
}

export function benchMarkdown(results: BenchResult[]): string {
  const info = backendInfo();
  const first = results[0];
  const peak = first?.fmaPeak;
  const torchSkipped = results.map((r) => r.torch).find((t) => t && 'skipped' in t) as { skipped: string } | undefined;
  const torchRun = results.map((r) => r.torch).find((t) => t && 'version' in t) as { version: string; threads: number } | undefined;
  const lines = [
    `# alexnet bench (${first?.device ?? 'cpu'})`,
    '',
    `${new Date().toISOString()} · ${os.cpus()[0]?.model ?? 'cpu'} · ${os.cpus().length} cores · ${info.backends.cpu.threads} threads · ${info.backends.cpu.blas} · node ${process.version}`,
    '',
    first ? `matmul ${first.matmul.size}^3 in the same run: **${first.matmul.gflops.toFixed(1)} GFLOP/s** (the ceiling below); the network does ${first.forwardGflopPerImage.toFixed(2)} GFLOP per image forward, ${first.trainGflopPerImage.toFixed(2)} per training step` : '',
    '',
    peak && peak.gflops > 0
      ? `FMA peak in the same run (${peak.threads} threads, best of the rounds): **${peak.gflops.toFixed(1)} GFLOP/s with ${peak.isa}** (${peak.isas.map((i) => `${i.isa} ${i.gflops.toFixed(1)}`).join(', ')}); matmul is ${pct(first!.matmul.gflops / peak.gflops)} of it`
      : '',
    '',
    torchSkipped ? `PyTorch peer skipped: ${torchSkipped.skipped}` : torchRun ? `PyTorch peer: torch ${torchRun.version}, ${torchRun.threads} threads, fp32 eager (bench/torch_cpu.py)` : '',
    '',
    ...isaLines(first?.cpuIsa),
    `Each engine keeps its best of the rounds; a round times one pass of each in turn (ours${results.some((r) => r.bf16) ? ', ours in bf16' : ''}, onnxruntime, PyTorch).`,
    '',
    '| batch | inference images/s | of matmul rate | training images/s | of matmul rate | inference of FMA peak | training of FMA peak | onnxruntime inference images/s | ours / onnxruntime | PyTorch inference images/s | ours / PyTorch | PyTorch training images/s | ours / PyTorch | peak RSS |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const peer = r.peer && 'ratio' in r.peer ? `${r.peer.inferImagesPerSecond.toFixed(1)} | ${r.peer.ratio.toFixed(2)}x` : `${r.peer && 'error' in r.peer ? r.peer.error : 'not run'} | `;
    const t = r.torch;
    const torch =
      t && 'inferRatio' in t
        ? `${t.inferImagesPerSecond.toFixed(1)} | ${t.inferRatio.toFixed(2)}x | ${t.trainImagesPerSecond.toFixed(1)} | ${t.trainRatio.toFixed(2)}x`
        : `${t && 'skipped' in t ? 'skipped' : t && 'error' in t ? t.error : 'not run'} | | |`;
    lines.push(
      `| ${r.batch} | ${r.inferImagesPerSecond.toFixed(1)} | ${pct(r.inferFractionOfMatmul)} | ${r.trainImagesPerSecond.toFixed(1)} | ${pct(r.trainFractionOfMatmul)} | ${ofPeak(r.inferFractionOfFmaPeak)} | ${ofPeak(r.trainFractionOfFmaPeak)} | ${peer} | ${torch} | ${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB |`,
    );
  }
  const mixed = results.filter((r) => r.bf16);
  if (mixed.length > 0) {
    lines.push(
      '',
      'Mixed precision (bf16: bfloat16 weight copies and activations, float32 master weights and logits), the same network and input, timed in the same rounds:',
      '',
      '| batch | bf16 inference images/s | bf16 / fp32 | bf16 / onnxruntime | bf16 training images/s | bf16 / fp32 | bf16 / PyTorch fp32 training |',
      '|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const r of mixed) {
      const m = r.bf16!;
      if ('error' in m) {
        lines.push(`| ${r.batch} | ${m.error} | | | | | |`);
        continue;
      }
      const t = r.torch && 'inferRatio' in r.torch ? `${(m.trainImagesPerSecond / r.torch.trainImagesPerSecond).toFixed(2)}x` : '-';
      const o = m.inferVsOnnxruntime !== undefined ? `${m.inferVsOnnxruntime.toFixed(2)}x` : '-';
      lines.push(`| ${r.batch} | ${m.inferImagesPerSecond.toFixed(1)} | ${m.inferVsFp32.toFixed(2)}x | ${o} | ${m.trainImagesPerSecond.toFixed(1)} | ${m.trainVsFp32.toFixed(2)}x | ${t} |`);
    }
  }
  const last = results.at(-1);
  if (last) {
    lines.push('', `Per layer at batch ${last.batch} (best of the repetitions):`, '', '| layer | type | output | forward ms | backward ms (forward subtracted) |', '|---|---|---|---:|---:|');
    for (const l of last.layers) lines.push(`| ${l.name} | ${l.type} | ${l.outputShape.join('x')} | ${l.forwardMs.toFixed(2)} | ${l.backwardMs.toFixed(2)} |`);
  }
  return lines.join('\n');
}

/** The header's instruction-set lines: what each engine ran with (plainly, where they differ). */
function isaLines(isa: BenchIsa | undefined): string[] {
  if (!isa) return [];
  if (isa.requested === 'auto' && isa.cap === 'auto') return [`Instruction sets: ours ${isa.ours} (the CPU's best), OpenBLAS as it chose (${isa.blas}); onnxruntime and PyTorch their own choice.`, ''];
  const coretype = isa.openblasCoretype ? `OPENBLAS_CORETYPE=${isa.openblasCoretype}` : 'OPENBLAS_CORETYPE unset';
  return [
    `**Instruction sets (--isa ${isa.requested}): ours capped to ${isa.ours}** (cap '${isa.cap}', the CPU has ${isa.hardware}; set with ALEXNET_CPU_ISA before the addon loaded, in a child process of the command), ` +
      `OpenBLAS on ${coretype} (${isa.blas}); the FMA peak is the ${isa.ours} peak. ` +
      `**onnxruntime-node was NOT capped: it ran its ${isa.hardware} kernels** (it has no switch for them), so "ours / onnxruntime" compares our ${isa.ours} code with its ${isa.hardware} code, a stricter comparison for us. ` +
      `PyTorch: ${isa.torch}.`,
    '',
  ];
}

function pct(f: number): string {
  return `${(100 * f).toFixed(0)}%`;
}

/** A fraction of the FMA peak: one decimal (they are small), '-' where there is no peak (GPU runs). */
function ofPeak(f: number): string {
  return f > 0 ? `${(100 * f).toFixed(1)}%` : '-';
}

export async function benchCommand(o: { device: string; batch?: string; reps: number; json: boolean; peer: boolean; save: boolean; conv?: ConvAlgorithm; weightCache?: boolean; dist?: boolean; distBatch?: number; bf16?: boolean; isa?: 'auto' | 'avx2' }): Promise<void> {
  const batches = (o.batch ?? (o.device === 'cpu' ? '1,16,64' : '1,16,64,128')).split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  // the CPU convolution path (default 'auto'): `--conv direct` against `--conv auto` compares them
  const conv = o.conv ?? 'auto';
  setConvAlgorithm(conv);
  // the CPU weight cache (default on): `--no-weight-cache` against the default compares them
  const weightCache = o.weightCache !== false;
  setWeightCache(weightCache);
  const isa = o.isa ?? 'auto';
  if (isa === 'avx2' && backendInfo().backends.cpu.isa === 'avx512') throw new Error('alexnet bench --isa avx2: the cap did not take (ALEXNET_CPU_ISA=avx2 must be set before the addon loads)');
  const results = await benchmark({ device: o.device, batches, reps: o.reps, peer: o.peer, isa, bf16: o.bf16 !== false });
  if (o.json) for (const r of results) console.log(JSON.stringify({ ...r, convAlgorithm: conv, weightCache }));
  // CPU: the data-parallel line (2 ranks x half the threads beside 1 process x all of them)
  let dist: DistBenchResult | undefined;
  if (o.device === 'cpu' && o.dist !== false) {
    const { distributedBench } = await import('./bench-dist.js');
    dist = await distributedBench({ globalBatch: o.distBatch ?? 32, steps: o.reps });
    if (o.json) console.log(JSON.stringify({ type: 'distributed', ...dist }));
  }
  let md = benchMarkdown(results);
  if (dist) md += `\n\n${(await import('./bench-dist.js')).distMarkdown(dist)}`;
  if (!o.json) console.log(md);
  if (o.save) {
    const dir = join(process.cwd(), 'bench', 'results');
    await mkdir(dir, { recursive: true });
    // the CPU model in the name: results of several machines sit side by side
    const stamp = `bench-${o.device.replace(':', '')}-${o.device === 'cpu' ? `${cpuSlug()}-` : ''}${isa === 'avx2' ? 'avx2-' : ''}${new Date().toISOString().slice(0, 10)}`;
    const machine = { cpu: os.cpus()[0]?.model, cores: os.cpus().length, threads: backendInfo().backends.cpu.threads, convAlgorithm: conv, weightCache, fmaPeak: results[0]?.fmaPeak, cpuIsa: results[0]?.cpuIsa };
    await writeFile(join(dir, `${stamp}.json`), JSON.stringify({ date: new Date().toISOString(), machine, results, ...(dist ? { distributed: dist } : {}) }, null, 2) + '\n');
    await writeFile(join(dir, `${stamp}.md`), md + '\n');
    if (!o.json) console.log(`\nsaved bench/results/${stamp}.{json,md}`);
  }
}
