// An independent reimplementation (BigInt) of the dropout random stream documented in
// native/cpu/dropout.h. The CUDA kernel is checked against this too.
const MASK64 = (1n << 64n) - 1n;
export const GAMMA = 0x9e3779b97f4a7c15n;

/** SplitMix64's finaliser, modulo 2^64. */
export function mix64(z: bigint): bigint {
  z &= MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** key = mix64(seed + GAMMA) */
export function dropoutKey(seed: number | bigint): bigint {
  return mix64(BigInt(seed) + GAMMA);
}

/** bits(c) = mix64(key + (c + 1) * GAMMA) >> 40, in [0, 2^24) */
export function dropoutBits24(key: bigint, counter: number | bigint): number {
  return Number(mix64(key + (BigInt(counter) + 1n) * GAMMA) >> 40n);
}

/** The mask of n elements for (p, seed, offset): 0 or fround(1 / (1 - p)). */
export function dropoutMaskRef(n: number, p: number, seed: number, offset: number): Float32Array {
  const key = dropoutKey(seed);
  const threshold = Math.ceil(p * 2 ** 24);
  const scale = Math.fround(1 / (1 - p));
  const m = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = dropoutBits24(key, BigInt(offset) + BigInt(i)) / 2 ** 24;
    // keep iff u >= p (u is exact, so this equals bits >= ceil(p * 2^24))
    const keep = u >= p;
    if (keep !== dropoutBits24(key, BigInt(offset) + BigInt(i)) >= threshold) throw new Error('threshold mismatch');
    m[i] = keep ? scale : 0;
  }
  return m;
}
