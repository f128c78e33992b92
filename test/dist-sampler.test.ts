// DistributedSampler (src/dist/sampler.ts) against PyTorch's DistributedSampler semantics,
// re-derived here independently: ceil(n / world) indices per rank, padding by wrapping from the
// start of the epoch's order, rank r taking every world-th position from r; shares disjoint up
// to the padding and covering the dataset; deterministic per (seed, epoch). No MPI needed.
import { describe, expect, it } from 'vitest';
import { DistributedSampler } from '../src/index.js';
import { MAX_EPOCH_LENGTH } from '../src/data/common.js';
import { expectCode, rng } from './helpers.js';

function shares(n: number, world: number, opts: { seed?: number; shuffle?: boolean; dropLast?: boolean } = {}, epoch = 0): number[][] {
  return Array.from({ length: world }, (_, rank) => {
    const s = new DistributedSampler(n, { worldSize: world, rank, ...opts });
    s.setEpoch(epoch);
    return s.indices();
  });
}

describe('DistributedSampler', () => {
  const r = rng();
  const cases: Array<[number, number]> = [[10, 2], [10, 3], [7, 4], [3, 5], [1, 1], [100, 7]];
  for (let k = 0; k < 4; k++) cases.push([1 + Math.floor(r() * 500), 1 + Math.floor(r() * 9)]);

  for (const [n, world] of cases) {
    it(`n=${n}, world=${world}: ceil(n/world) each, disjoint up to the padding, covering the dataset`, () => {
      const seed = Math.floor(r() * 1e6);
      const all = shares(n, world, { seed });
      const per = Math.ceil(n / world);
      for (const s of all) expect(s.length).toBe(per);
      const counts = new Map<number, number>();
      for (const s of all) for (const i of s) {
        expect(Number.isInteger(i) && i >= 0 && i < n).toBe(true);
        counts.set(i, (counts.get(i) ?? 0) + 1);
      }
      expect(counts.size).toBe(n); // covers everything
      const repeats = [...counts.values()].reduce((a, c) => a + (c - 1), 0);
      expect(repeats).toBe(per * world - n); // only the padding repeats
    });
  }

  it('pads by wrapping from the start of the order and strides by rank (unshuffled, as in PyTorch)', () => {
    // order 0..9 padded to 12 with 0, 1; rank r takes positions r, r+3, r+6, r+9
    expect(shares(10, 3, { shuffle: false })).toEqual([[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]);
    // n < world: the order repeats more than once
    expect(shares(2, 5, { shuffle: false })).toEqual([[0], [1], [0], [1], [0]]);
    expect(shares(0, 2)).toEqual([[], []]); // an empty dataset: nothing to pad from
  });

  it('dropLast cuts the tail instead: floor(n/world) each, no repeats', () => {
    const all = shares(11, 3, { seed: 4, dropLast: true });
    for (const s of all) expect(s.length).toBe(3);
    expect(new Set(all.flat()).size).toBe(9);
    expect(shares(10, 3, { shuffle: false, dropLast: true })).toEqual([[0, 3, 6], [1, 4, 7], [2, 5, 8]]);
  });

  it('is deterministic per (seed, epoch), differs across epochs and seeds, and is the same order on every rank', () => {
    const seed = Math.floor(r() * 1e6);
    const n = 200;
    const a = shares(n, 4, { seed }, 3);
    expect(shares(n, 4, { seed }, 3)).toEqual(a);
    expect(shares(n, 4, { seed }, 4)).not.toEqual(a);
    expect(shares(n, 4, { seed: seed + 1 }, 3)).not.toEqual(a);
    // interleaving the ranks' shares gives back one permutation of 0..n-1 (every rank used the same order)
    const order: number[] = [];
    for (let p = 0; p < n; p++) order.push(a[p % 4]![Math.floor(p / 4)]!);
    expect([...order].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(order).not.toEqual(Array.from({ length: n }, (_, i) => i)); // shuffled
    // indices(epoch) and setEpoch agree; iteration follows setEpoch
    const s = new DistributedSampler(n, { worldSize: 4, rank: 2, seed });
    s.setEpoch(3);
    expect([...s]).toEqual(a[2]);
    expect(new DistributedSampler({ length: n }, { worldSize: 4, rank: 2, seed }).indices(3)).toEqual(a[2]);
  });

  it('rejects bad options with ERR_ARGUMENT', () => {
    expectCode(() => new DistributedSampler(10, { worldSize: 2, rank: 2 }), 'ERR_ARGUMENT', /rank must be in \[0, 2\)/);
    expectCode(() => new DistributedSampler(10, { worldSize: 0, rank: 0 }), 'ERR_ARGUMENT', /worldSize/);
    expectCode(() => new DistributedSampler(-1, { worldSize: 1, rank: 0 }), 'ERR_ARGUMENT', /dataset length/);
    expectCode(() => new DistributedSampler(10, { worldSize: 2, rank: 0 }).setEpoch(1.5), 'ERR_ARGUMENT', /epoch/);
    // a length no JavaScript array can hold as an epoch order: an error, not an out-of-memory abort
    expectCode(() => new DistributedSampler(2 ** 40, { worldSize: 2, rank: 0 }), 'ERR_ARGUMENT', /at most 100000000/);
    expectCode(() => new DistributedSampler({ length: MAX_EPOCH_LENGTH + 1 }, { worldSize: 1, rank: 0 }), 'ERR_ARGUMENT', /dataset length/);
  });

  it('pads a world far larger than the dataset without building the padded order', () => {
    const ws = 2 ** 31;
    const shard = (rank: number) => new DistributedSampler(3, { worldSize: ws, rank, shuffle: false }).indices(0);
    // position p of the padded order is p mod 3: each rank gets one index
    for (const rank of [0, 1, 2, 3, 7, ws - 1]) expect(shard(rank)).toEqual([rank % 3]);
    expect(new DistributedSampler(3, { worldSize: ws, rank: 5, dropLast: true }).indices(0)).toEqual([]);
  });
});
