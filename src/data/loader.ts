// DataLoader: an async iterator of batches. Shuffling is a deterministic permutation of
// (seed, epoch); augmentation is drawn from (seed, epoch, index); so `startBatch` resumes an
// epoch exactly. Batches are assembled in a pool of worker threads (their Float32Array buffers
// are transferred, not copied) with `prefetch` batches per worker in flight, or in this thread
// with `workers: 0` (sharp still decodes on libuv's thread pool; cropping/normalising and the
// synthetic renderer then run on the main thread).
//
// The worker script is compiled JavaScript: `worker.js` next to this module when it runs from
// dist/, else `<package root>/dist/data/worker.js` when this module runs from src/ (vitest);
// `workerScript` overrides both. Build with `npx tsc -p .` before using workers from src/.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { assembleBatch, type BatchRequest } from './batch.js';
import { checkInt, dataError, epochOrder, hasPixels, MAX_EPOCH_LENGTH, rngFor, type Batch, type Dataset, type DatasetSpec, type DataWarning } from './common.js';
import { DistributedSampler } from '../dist/sampler.js';

/** The most values one sample ([C, H, W]) may have: 2^28 (e.g. 3 x 9459 x 9459). */
export const MAX_SAMPLE_VALUES = 2 ** 28;
/** The most values one batch buffer may have: 2^30 (4 GiB of float32). */
export const MAX_BATCH_VALUES = 2 ** 30;
/** The most batches a DataLoader reads ahead per worker (or in-thread). */
export const MAX_PREFETCH = 64;
/** The most worker threads a DataLoader starts. */
export const MAX_WORKERS = 256;

/**
 * One rank's share of every epoch (data-parallel training). 'pad' (the default) is PyTorch's
 * DistributedSampler (src/dist/sampler.ts): every rank gets ceil(n / worldSize) indices of the
 * epoch's order (a permutation of (seed, epoch) when shuffling), the order padded by repeating
 * its start. 'strided' takes positions rank, rank + worldSize, ... of the unpadded order: the
 * ranks' shares differ in size by at most one and hold every index exactly once, so sums over
 * ranks equal one process's (evaluation).
 */
export interface ShardOptions {
  rank: number;
  worldSize: number;
  mode?: 'pad' | 'strided';
}

export interface DataLoaderOptions {
  batchSize: number;
  /** Shuffle each epoch (a permutation drawn from (seed, epoch)). Default false. */
  shuffle?: boolean;
  /** Seeds the shuffle and the augmentation. Default 0. */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize. Default false. */
  dropLast?: boolean;
  /** Worker threads; 0 assembles batches in this thread. Default min(2, cores). */
  workers?: number;
  /** Batches in flight per worker (in total when workers is 0). Default 2. */
  prefetch?: number;
  /** The epoch that `for await (... of loader)` iterates. Default 0. */
  epoch?: number;
  /** The first batch that `for await (... of loader)` yields (to resume an epoch). Default 0. */
  startBatch?: number;
  /** Samples decoded at once while assembling one batch. Default 8. */
  concurrency?: number;
  /** Path or file URL of the compiled worker script (see resolveWorkerScript). */
  workerScript?: string | URL;
  /**
   * 'float32' (default): normalised float images. 'uint8': 8-bit pixels with the dataset's
   * mean/std, for normalisation on the device (`normalizeImages`): a quarter of the bytes to
   * move between threads and to a GPU. Needs a dataset with loadPixelsInto() and normalization.
   */
  format?: 'float32' | 'uint8';
  /** Read only this rank's share of each epoch (see ShardOptions); absent: the whole epoch. */
  shard?: ShardOptions;
}

export interface EpochOptions {
  epoch?: number;
  startBatch?: number;
}

/**
 * The compiled worker script: `./worker.js` beside this module (dist/data/), else
 * `../../dist/data/worker.js` (this module running from src/data/ under vitest or a TS loader).
 */
export function resolveWorkerScript(): URL {
  const tried: string[] = [];
  const beside = new URL('./worker.js', import.meta.url);
  tried.push(fileURLToPath(beside));
  if (existsSync(tried[0]!)) return beside;
  const built = new URL('../../dist/data/worker.js', import.meta.url);
  const builtPath = fileURLToPath(built);
  tried.push(builtPath);
  if (existsSync(builtPath)) {
    warnIfStale(fileURLToPath(new URL('.', import.meta.url)), dirname(builtPath));
    return built;
  }
  throw dataError(
    `DataLoader: the compiled worker script was not found (tried ${tried.join(', ')}). ` +
      'Build the TypeScript (`npx tsc -p .`), pass `workerScript`, or use `workers: 0` to load in this thread.',
  );
}

let staleWarned = false;
/** Warns once when src/data holds a .ts file newer than its compiled dist/data counterpart. */
function warnIfStale(srcDir: string, distDir: string): void {
  if (staleWarned) return;
  try {
    for (const f of readdirSync(srcDir)) {
      if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue;
      const js = join(distDir, f.replace(/\.ts$/, '.js'));
      if (!existsSync(js) || statSync(join(srcDir, f)).mtimeMs > statSync(js).mtimeMs) {
        staleWarned = true;
        console.warn(`alexnet data: ${js} is older than src/data/${f}; workers run the compiled code (run \`npx tsc -p .\`)`);
        return;
      }
    }
  } catch {
    // Not a source checkout; nothing to compare.
  }
}

interface Pending {
  resolve: (b: Batch) => void;
  reject: (e: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  pending: Map<number, Pending>;
  dead: Error | undefined;
}

/** Worker threads that each hold a copy of the dataset and assemble batches on request. */
class WorkerPool {
  readonly #workers: PoolWorker[] = [];
  #nextId = 0;

  constructor(script: URL, spec: DatasetSpec, count: number, concurrency: number, onWarning: (w: DataWarning) => void) {
    for (let i = 0; i < count; i++) {
      // Workers inherit Node's flags, but --input-type (run with --eval) breaks a worker
      // started from a file; then start them without flags.
      const execArgv = process.execArgv.some((a) => a.startsWith('--input-type')) ? [] : undefined;
      const worker = new Worker(script, { workerData: { spec, concurrency }, execArgv });
      const pw: PoolWorker = { worker, pending: new Map(), dead: undefined };
      worker.unref(); // referenced only while it has work, so a forgotten close() never hangs the process
      worker.on('message', (msg: { type: string; id?: number; batch?: Batch; error?: { message: string; code?: string; file?: string; stack?: string }; warning?: DataWarning }) => {
        if (msg.type === 'warning' && msg.warning) {
          onWarning(msg.warning);
          return;
        }
        if (msg.id === undefined) return;
        const p = pw.pending.get(msg.id);
        if (!p) return;
        pw.pending.delete(msg.id);
        if (pw.pending.size === 0) worker.unref();
        if (msg.type === 'batch') p.resolve(msg.batch!);
        else if (msg.type === 'error') {
          const err = dataError(msg.error!.message, msg.error!.file) as Error & { code: string };
          if (msg.error!.code) err.code = msg.error!.code;
          if (msg.error!.stack) err.stack = `${msg.error!.stack}\n    (in a DataLoader worker thread)`;
          p.reject(err);
        }
      });
      const fail = (e: Error): void => {
        pw.dead ??= e;
        for (const p of pw.pending.values()) p.reject(e);
        pw.pending.clear();
      };
      worker.on('error', (e) => fail(dataError(`DataLoader worker failed: ${e.message}`, undefined, e)));
      worker.on('exit', (code) => fail(dataError(`DataLoader worker exited (code ${code})`)));
      this.#workers.push(pw);
    }
  }

  run(request: BatchRequest): Promise<Batch> {
    const live = this.#workers.filter((w) => !w.dead);
    if (live.length === 0) return Promise.reject(this.#workers[0]?.dead ?? dataError('DataLoader: no worker threads'));
    const pw = live.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.#nextId++;
    return new Promise<Batch>((resolve, reject) => {
      if (pw.pending.size === 0) pw.worker.ref();
      pw.pending.set(id, { resolve, reject });
      pw.worker.postMessage({ type: 'batch', id, request });
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#workers.map(async (w) => {
        w.dead ??= dataError('DataLoader closed');
        for (const p of w.pending.values()) p.reject(w.dead);
        w.pending.clear();
        await w.worker.terminate();
      }),
    );
  }
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly workers: number;
  readonly prefetch: number;
  readonly concurrency: number;
  readonly format: 'float32' | 'uint8';
  readonly shard: Readonly<Required<ShardOptions>> | null;
  /** The epoch and first batch that `for await (... of loader)` uses; see setEpoch. */
  epoch: number;
  startBatch: number;
  readonly #workerScript: URL | undefined;
  #pool: WorkerPool | undefined;
  #closed = false;
  #orderCache: { epoch: number; order: number[] } | undefined;

  constructor(dataset: Dataset, options: DataLoaderOptions) {
    if (!dataset || typeof dataset.load !== 'function' || !Array.isArray(dataset.sampleShape)) {
      throw dataError('DataLoader: expected a dataset with length, sampleShape and load()');
    }
    // A length or sample shape that is not a small integer would loop forever (NaN batches) or
    // ask for a buffer that cannot exist: refused here, before any work.
    const n = dataset.length;
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_EPOCH_LENGTH) {
      throw dataError(`DataLoader: the dataset's length must be an integer in [0, ${MAX_EPOCH_LENGTH}], got ${String(n)}`);
    }
    const shape = dataset.sampleShape as readonly unknown[];
    const per = shape.reduce<number>((a, d) => a * Number(d), 1); // NaN unless every entry is a number
    if (shape.length !== 3 || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 1) || per > MAX_SAMPLE_VALUES) {
      throw dataError(`DataLoader: the dataset's sampleShape must be [C, H, W] of positive integers with at most ${MAX_SAMPLE_VALUES} values, got [${shape.map(String).join(', ')}]`);
    }
    this.dataset = dataset;
    this.batchSize = checkInt(options?.batchSize, 'DataLoader: batchSize', 1);
    if (Math.min(this.batchSize, n) * per > MAX_BATCH_VALUES) {
      throw dataError(`DataLoader: a batch of ${this.batchSize} samples of [${shape.join(', ')}] is more than ${MAX_BATCH_VALUES} values`);
    }
    this.shuffle = options.shuffle ?? false;
    this.seed = checkInt(options.seed ?? 0, 'DataLoader: seed', 0);
    this.dropLast = options.dropLast ?? false;
    const defaultWorkers = typeof dataset.describe === 'function' ? Math.min(2, availableParallelism()) : 0;
    this.workers = checkInt(options.workers ?? defaultWorkers, 'DataLoader: workers', 0);
    if (this.workers > MAX_WORKERS) throw dataError(`DataLoader: workers must be at most ${MAX_WORKERS}, got ${this.workers}`);
    if (this.workers > 0 && typeof dataset.describe !== 'function') {
      throw dataError('DataLoader: worker threads need a dataset with describe() (SyntheticDataset, ImageFolder); use workers: 0 for this dataset');
    }
    this.prefetch = checkInt(options.prefetch ?? 2, 'DataLoader: prefetch', 1);
    this.concurrency = checkInt(options.concurrency ?? 8, 'DataLoader: concurrency', 1);
    // a huge prefetch would hold a whole epoch's batches in memory at once
    if (this.prefetch > MAX_PREFETCH) throw dataError(`DataLoader: prefetch must be at most ${MAX_PREFETCH}, got ${this.prefetch}`);
    this.format = options.format ?? 'float32';
    if (this.format !== 'float32' && this.format !== 'uint8') throw dataError(`DataLoader: format must be 'float32' or 'uint8', got ${String(this.format)}`);
    if (this.format === 'uint8' && !hasPixels(dataset)) {
      throw dataError("DataLoader: format 'uint8' needs a dataset with loadPixelsInto() and normalization (SyntheticDataset, ImageFolder)");
    }
    this.shard = options.shard === undefined ? null : checkShard(options.shard);
    this.epoch = checkInt(options.epoch ?? 0, 'DataLoader: epoch', 0);
    this.startBatch = checkInt(options.startBatch ?? 0, 'DataLoader: startBatch', 0);
    this.#workerScript =
      options.workerScript === undefined ? undefined : typeof options.workerScript === 'string' ? pathToFileURL(options.workerScript) : options.workerScript;
    if (this.workers > 0 && this.#workerScript === undefined) this.#workerScript = resolveWorkerScript();
  }

  /** Samples this loader reads per epoch: the dataset's length, or this rank's share of it. */
  get samplesPerEpoch(): number {
    const n = this.dataset.length;
    const sh = this.shard;
    if (sh === null) return n;
    if (sh.mode === 'pad') return Math.ceil(n / sh.worldSize);
    return Math.max(0, Math.ceil((n - sh.rank) / sh.worldSize));
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.samplesPerEpoch;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /**
   * The order of dataset indices in an epoch: a permutation of (seed, epoch) when shuffling;
   * with a shard, this rank's share of the epoch (ShardOptions).
   */
  order(epoch: number = this.epoch): number[] {
    checkInt(epoch, 'DataLoader: epoch', 0);
    if (this.#orderCache?.epoch !== epoch && this.shard !== null) {
      const { rank, worldSize, mode } = this.shard;
      const n = this.dataset.length;
      let order: number[];
      if (mode === 'pad') order = new DistributedSampler(n, { rank, worldSize, shuffle: this.shuffle, seed: this.seed }).indices(epoch);
      else {
        // the unpadded epoch order of the sampler (rank 0 of a world of one), strided
        const all = new DistributedSampler(n, { rank: 0, worldSize: 1, shuffle: this.shuffle, seed: this.seed }).indices(epoch);
        order = all.filter((_, p) => p % worldSize === rank);
      }
      this.#orderCache = { epoch, order };
    } else if (this.#orderCache?.epoch !== epoch) {
      const n = this.dataset.length;
      const order = epochOrder(n, this.shuffle ? rngFor(this.seed, epoch, 0x5f1e) : null);
      this.#orderCache = { epoch, order };
    }
    return [...this.#orderCache.order];
  }

  /** The dataset indices of batch k of an epoch. */
  batchIndices(epoch: number, k: number): number[] {
    if (!Number.isInteger(k) || k < 0 || k >= this.length) throw dataError(`DataLoader: batch ${k} out of range [0, ${this.length})`);
    this.order(epoch);
    return this.#orderCache!.order.slice(k * this.batchSize, Math.min((k + 1) * this.batchSize, this.samplesPerEpoch));
  }

  /** Sets what `for await (... of loader)` iterates next. */
  setEpoch(epoch: number, startBatch = 0): void {
    this.epoch = checkInt(epoch, 'DataLoader: epoch', 0);
    this.startBatch = checkInt(startBatch, 'DataLoader: startBatch', 0);
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.batches({ epoch: this.epoch, startBatch: this.startBatch });
  }

  /** The batches of one epoch from `startBatch` on, in order, prefetched. */
  async *batches({ epoch = this.epoch, startBatch = 0 }: EpochOptions = {}): AsyncGenerator<Batch, void, undefined> {
    if (this.#closed) throw dataError('DataLoader: used after close()');
    checkInt(epoch, 'DataLoader: epoch', 0);
    checkInt(startBatch, 'DataLoader: startBatch', 0);
    const total = this.length;
    if (startBatch > total) throw dataError(`DataLoader: startBatch ${startBatch} is past the epoch's ${total} batches`);
    const depth = this.workers > 0 ? this.prefetch * this.workers : this.prefetch;
    const inFlight = new Map<number, Promise<Batch>>();
    let next = startBatch;
    const fill = (): void => {
      while (next < total && inFlight.size < depth) {
        const k = next++;
        const p = this.#assemble({ indices: this.batchIndices(epoch, k), epoch, seed: this.seed, batchIndex: k, format: this.format });
        p.catch(() => {}); // a batch abandoned by `break` must not become an unhandled rejection
        inFlight.set(k, p);
      }
    };
    for (let k = startBatch; k < total; k++) {
      fill();
      const batch = await inFlight.get(k)!;
      inFlight.delete(k);
      fill(); // keep the pipeline full while the consumer works on this batch
      yield batch;
    }
  }

  #assemble(request: BatchRequest): Promise<Batch> {
    if (this.#closed) return Promise.reject(dataError('DataLoader: used after close()'));
    if (this.workers === 0) return assembleBatch(this.dataset, request, this.concurrency);
    try {
      this.#pool ??= new WorkerPool(this.#workerScript!, this.dataset.describe!(), this.workers, this.concurrency, (w) =>
        this.dataset.emitWarning ? this.dataset.emitWarning(w) : console.warn(`alexnet data: ${w.message}`),
      );
    } catch (e) {
      // describe() threw, or gave what a worker cannot receive (a function: a DataCloneError)
      return Promise.reject(dataError(`DataLoader: cannot start the worker threads: ${(e as Error).message} (describe() must give plain data; or use workers: 0)`, undefined, e));
    }
    return this.#pool.run(request);
  }

  /** Terminates the worker threads. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function checkShard(shard: ShardOptions): Required<ShardOptions> {
  if (shard === null || typeof shard !== 'object') throw dataError('DataLoader: shard must be {rank, worldSize, mode?}');
  const worldSize = checkInt(shard.worldSize, 'DataLoader: shard.worldSize', 1);
  const rank = checkInt(shard.rank, 'DataLoader: shard.rank', 0);
  if (rank >= worldSize) throw dataError(`DataLoader: shard.rank must be in [0, ${worldSize}) but got ${rank}`);
  const mode = shard.mode ?? 'pad';
  if (mode !== 'pad' && mode !== 'strided') throw dataError(`DataLoader: shard.mode must be 'pad' or 'strided', got ${String(mode)}`);
  return { rank, worldSize, mode };
}
