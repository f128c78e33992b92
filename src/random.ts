// The library's one seeded generator, shared by parameter initialisation (src/nn/init.ts) and the
// data pipeline's augmentation and shuffling (src/data/common.ts): a model or an epoch built from
// the same seed is the same on every machine and backend.

/** A generator of uniform numbers in [0, 1). */
export type Rng = () => number;

/** mulberry32: 32 bits of state, fast, good enough for initialisation. `seed` is taken mod 2^32. */
export function mulberry32(seed: number): Rng {
  let a = Math.floor(seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
