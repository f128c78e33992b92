// Host-side parameter initialisation with a small seeded PRNG (mulberry32), so a model built
// with the same seed has the same parameters on every machine and backend.
//
// Layers built without an explicit `rng` draw from one module-wide generator (like PyTorch's
// global generator): `manualSeed(s)` resets it, and construction order then fixes every value.

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

let globalRng: Rng = mulberry32(0);

/** Reseeds the generator used by layers constructed without an explicit `rng`. */
export function manualSeed(seed: number): void {
  globalRng = mulberry32(seed);
}

/** The module-wide generator (what layers use when no `rng` is given). */
export function defaultRng(): Rng {
  return globalRng;
}

/** Fills `out` with U(lo, hi). */
export function fillUniform(out: Float32Array, rng: Rng, lo: number, hi: number): Float32Array {
  const w = hi - lo;
  for (let i = 0; i < out.length; i++) out[i] = lo + w * rng();
  return out;
}

/** Fills `out` with N(mean, std) (Marsaglia's polar method, both values of each pair used). */
export function fillNormal(out: Float32Array, rng: Rng, mean: number, std: number): Float32Array {
  const n = out.length;
  let i = 0;
  while (i < n) {
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * rng() - 1;
      v = 2 * rng() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = std * Math.sqrt((-2 * Math.log(s)) / s);
    out[i++] = mean + u * f;
    if (i < n) out[i++] = mean + v * f;
  }
  return out;
}

/**
 * PyTorch's default for Conv2d / Linear weights, kaiming_uniform_(a = sqrt(5)):
 * gain = sqrt(2 / (1 + a^2)) = sqrt(1/3), bound = gain * sqrt(3 / fanIn) = 1 / sqrt(fanIn).
 * Their biases use the same bound: U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
 */
export function pytorchDefaultBound(fanIn: number): number {
  return fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
}
