// DistributedSampler: which dataset indices each rank reads in an epoch, with PyTorch's
// semantics (torch.utils.data.DistributedSampler): the epoch's order is the same on every rank
// (a permutation of (seed, epoch) when shuffling, else 0..n-1); without dropLast it is padded
// by repeating its start until its length is a multiple of the world size, and rank r takes
// positions r, r + world, r + 2·world, ... — so every rank gets ceil(n / world) indices, the
// ranks' shares are disjoint up to the padding, and together they cover the dataset. With
// dropLast the order is cut to floor(n / world)·world instead (no repeats, the tail skipped).
// Pure arithmetic: no MPI, no tensors.
import { alexnetError } from '../errors.js';
import { epochOrder, MAX_EPOCH_LENGTH, rngFor } from '../data/common.js';

export interface DistributedSamplerOptions {
  /** The number of processes (ranks). */
  worldSize: number;
  /** This process's rank in [0, worldSize). */
  rank: number;
  /** Shuffle each epoch with a permutation of (seed, epoch). Default true (as in PyTorch). */
  shuffle?: boolean;
  /** Seeds the shuffle; must be the same on every rank. Default 0. */
  seed?: number;
  /** Drop the tail that does not divide evenly instead of padding. Default false. */
  dropLast?: boolean;
}

function checkInt(value: unknown, what: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
    throw alexnetError('ERR_ARGUMENT', `DistributedSampler: ${what} must be an integer >= ${min} but got ${String(value)}`);
  return value;
}

export class DistributedSampler {
  readonly length: number;
  readonly worldSize: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Indices this rank gets per epoch. */
  readonly numSamples: number;
  /** numSamples · worldSize: the padded (or cut) length of the epoch's order. */
  readonly totalSize: number;
  #epoch = 0;

  /** `length`: the dataset's size (or the dataset itself: anything with a `length`). */
  constructor(dataset: number | { length: number }, options: DistributedSamplerOptions) {
    this.length = checkInt(typeof dataset === 'number' ? dataset : dataset?.length, 'the dataset length', 0);
    if (this.length > MAX_EPOCH_LENGTH)
      throw alexnetError('ERR_ARGUMENT', `DistributedSampler: the dataset length must be at most ${MAX_EPOCH_LENGTH} but got ${this.length}`);
    this.worldSize = checkInt(options?.worldSize, 'worldSize', 1);
    this.rank = checkInt(options.rank, 'rank', 0);
    if (this.rank >= this.worldSize)
      throw alexnetError('ERR_ARGUMENT', `DistributedSampler: rank must be in [0, ${this.worldSize}) but got ${this.rank}`);
    this.shuffle = options.shuffle ?? true;
    this.seed = checkInt(options.seed ?? 0, 'seed', 0);
    this.dropLast = options.dropLast ?? false;
    if (this.dropLast && this.length % this.worldSize !== 0)
      this.numSamples = Math.ceil((this.length - this.worldSize) / this.worldSize);
    else this.numSamples = Math.ceil(this.length / this.worldSize);
    this.totalSize = this.numSamples * this.worldSize;
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** The epoch `indices()` uses by default (call it every epoch, as in PyTorch). */
  setEpoch(epoch: number): void {
    this.#epoch = checkInt(epoch, 'epoch', 0);
  }

  /** This rank's dataset indices for `epoch` (default: the one set with setEpoch). */
  indices(epoch: number = this.#epoch): number[] {
    checkInt(epoch, 'epoch', 0);
    const n = this.length;
    const order = epochOrder(n, this.shuffle ? rngFor(this.seed, epoch, 0xd157) : null);
    // Position p of the epoch's padded order is order[p % n]: the tail wraps around to the
    // start (dropLast cuts instead, and then totalSize <= n). Never materialised: a world far
    // larger than the dataset would make it huge.
    const mine: number[] = [];
    for (let p = this.rank; p < this.totalSize; p += this.worldSize) mine.push(order[p % n]!);
    return mine;
  }

  [Symbol.iterator](): Iterator<number> {
    return this.indices()[Symbol.iterator]();
  }
}
