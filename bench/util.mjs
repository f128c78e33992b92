// Small helpers shared by the benchmark scripts.

/** n reproducible values in [-0.5, 0.5) from `seed` (a 32-bit mixing generator; no state kept). */
export function random(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    a[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 32 - 0.5;
  }
  return a;
}

/** The median of a list of numbers (the upper one of an even count). */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
