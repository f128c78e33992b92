// Host-side parameter initialisation with a small seeded PRNG (mulberry32, src/random.ts), so a
// model built with the same seed has the same parameters on every machine and backend.
//
// Layers built without an explicit `rng` draw from one module-wide generator (like PyTorch's
// global generator): `manualSeed(s)` resets it, and construction order then fixes every value.

// The generator itself lives in src/random.ts (the data pipeline uses it too); re-exported here,
// where the library has always exported it from.
import { mulberry32, type Rng } from '../random.js';

export { mulberry32, type Rng };

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
