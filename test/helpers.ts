// Test helpers: a seeded RNG for fresh random inputs, float64 comparison with
// `atol + rtol * |ref|` that prints the first mismatches, and finite differences.
import { expect } from 'vitest';
import { mulberry32 } from '../src/nn/init.js';

/** The library's mulberry32 generator; each test draws its own seed so inputs are fresh per run. */
export function rng(seed = (Math.random() * 2 ** 32) >>> 0): () => number {
  return mulberry32(seed);
}

/** n values uniform in [lo, hi). */
export function uniform(n: number, r: () => number, lo = -1, hi = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** Normal(0, std) via Box-Muller. */
export function normal(n: number, r: () => number, std = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

export const f32 = (a: ArrayLike<number>): Float32Array => Float32Array.from(a);
export const f64 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a);

/** Asserts |actual - expected| <= atol + rtol * |expected| everywhere; prints the first mismatches. */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-4, label = 'values' }: { atol?: number; rtol?: number; label?: string } = {},
): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  const bad: string[] = [];
  let count = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const err = Math.abs(a - e);
    const tol = atol + rtol * Math.abs(e);
    if (!(err <= tol)) {
      count++;
      worst = Math.max(worst, err / tol);
      if (bad.length < 8) bad.push(`  [${i}] got ${a}, want ${e} (|diff| ${err.toExponential(3)} > tol ${tol.toExponential(3)})`);
    }
  }
  if (count > 0) {
    expect.fail(`${label}: ${count} of ${expected.length} elements out of tolerance (atol ${atol}, rtol ${rtol}; worst ${worst.toFixed(2)}x tol):\n${bad.join('\n')}`);
  }
}

/**
 * Central finite differences of a scalar function f(x) (float64) at x:
 * grad[i] = (f(x + h e_i) - f(x - h e_i)) / 2h. `indices` limits the check to some entries.
 */
export function finiteDifference(
  f: (x: Float64Array) => number,
  x: Float64Array,
  { h = 1e-4, indices }: { h?: number; indices?: number[] } = {},
): Map<number, number> {
  const out = new Map<number, number>();
  const idx = indices ?? Array.from({ length: x.length }, (_, i) => i);
  const xp = Float64Array.from(x);
  for (const i of idx) {
    const v = xp[i]!;
    xp[i] = v + h;
    const fp = f(xp);
    xp[i] = v - h;
    const fm = f(xp);
    xp[i] = v;
    out.set(i, (fp - fm) / (2 * h));
  }
  return out;
}

/** Some indices of an array of length n (all if n is small), for finite-difference checks. */
export function sampleIndices(n: number, count: number, r: () => number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const s = new Set<number>();
  while (s.size < count) s.add(Math.floor(r() * n));
  return [...s];
}

/** sum(a .* b) in float64. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Asserts that `fn` throws an error with the given code (and optionally a message part). */
export function expectCode(fn: () => unknown, code: string, message?: string | RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected an error with code ${code}`).toBeInstanceOf(Error);
  expect((caught as { code?: string }).code).toBe(code);
  if (message !== undefined) expect((caught as Error).message).toMatch(message);
}

/**
 * Collects the garbage earlier tests left (tensors never disposed, freed by their finalizers)
 * and lets their finalizers run, so a process-wide count (the weight cache's bytes, native
 * memory) moves only with what the caller does next; await synchronize() after it where the
 * frees go through a device queue. Tests run with --expose-gc (vitest.config.ts).
 */
export async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  expect(gc, 'tests run with --expose-gc').toBeTypeOf('function');
  for (let i = 0; i < 3; i++) {
    gc!();
    await new Promise((r) => setImmediate(r)); // finalizers queued by the collection run here
  }
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}
