// An independent bfloat16 reference: the rounding written as "truncate, then look at the 16
// dropped bits" (not the native code's single add), and a value-level check that a result is a
// nearest bfloat16 (ties to the even pattern), both through Float32Array / DataView.

const view = new DataView(new ArrayBuffer(4));

/** The bits of float32 `f` (f is rounded to float32 first). */
export function f32Bits(f: number): number {
  view.setFloat32(0, f);
  return view.getUint32(0);
}

/** The float32 whose bits are `u` (as a JS number; a NaN's payload is not kept). */
export function bitsF32(u: number): number {
  view.setUint32(0, u >>> 0);
  return view.getFloat32(0);
}

/** bfloat16 pattern -> the float32 bit pattern it stands for (exact: bf16 is float32's top half). */
export function bf16ToF32Bits(h: number): number {
  return ((h & 0xffff) << 16) >>> 0;
}

/** The value of bfloat16 pattern h. */
export function bf16Value(h: number): number {
  return bitsF32(bf16ToF32Bits(h));
}

/**
 * float32 bits -> bfloat16 pattern, round to nearest, ties to even: keep the top 16 bits, and
 * add one unit when the dropped 16 bits are above half a unit, or exactly half with an odd kept
 * pattern. NaN becomes a quiet NaN (bit 6 of the pattern set) with its sign and top payload.
 */
export function f32BitsToBf16(u: number): number {
  u >>>= 0;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff && mant !== 0) return ((u >>> 16) | 0x40) & 0xffff;
  const kept = u >>> 16;
  const dropped = u & 0xffff;
  const up = dropped > 0x8000 || (dropped === 0x8000 && (kept & 1) === 1);
  return (kept + (up ? 1 : 0)) & 0xffff; // a carry out of the mantissa moves to the next binade (or to inf)
}

/**
 * Checks, by values alone, that pattern h is a correctly rounded bfloat16 of the finite float32
 * x: no bfloat16 is nearer, and on a tie h is the even pattern. Beyond the largest finite
 * bfloat16 the next value up is taken as 2^128 (where the exponent range would continue).
 * Returns a description of the failure, or '' when h is right.
 */
export function checkNearest(x: number, h: number): string {
  const v = bf16Value(h);
  const sign = x < 0 || Object.is(x, -0) ? -1 : 1;
  const ax = Math.abs(x);
  if ((h & 0x8000 ? -1 : 1) !== sign && ax !== 0) return `sign of ${h.toString(16)} differs from ${x}`;
  const mag = h & 0x7fff;
  const val = (m: number): number => (m >= 0x7f80 ? 2 ** 128 : bf16Value(m));
  const err = Math.abs(Math.abs(v === Infinity || v === -Infinity ? 2 ** 128 : v) - ax);
  for (const m of [mag - 1, mag + 1]) {
    if (m < 0 || m > 0x7f80) continue;
    const e = Math.abs(val(m) - ax);
    if (e < err) return `${x}: pattern ${m.toString(16)} is nearer than ${h.toString(16)}`;
    if (e === err && (mag & 1) === 1) return `${x}: tie between ${m.toString(16)} and ${h.toString(16)} not broken to even`;
  }
  return '';
}
