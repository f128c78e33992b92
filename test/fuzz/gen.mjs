// Random calls of the public surface, each a pure function of (seed, index): the child runs
// them and a failure is replayed from its seed and index alone. A generated value carries a
// printable description next to it, so a crash names the call it died in.
//
// Memory safety: the machine that runs this has 24 GiB and 2 cores, so nothing generated may
// be large if the library accepts it. Tensor dims are 0..6 (now and then up to 40); kernel,
// stride, padding and similar options are either small (0..8) or absurd (negative, NaN,
// >= 2**31, 1e300), never "large but plausible"; hostile shapes overflow by far (a product of
// at least 2**60), so a library that forgot a check would fail to allocate rather than
// quietly take gigabytes.

import { mulberry32 } from '../../dist/nn/init.js';

/** The library's mulberry32, from this checkout's build (fixed across `--lib` targets). */
export const rngOf = (seed) => mulberry32(seed >>> 0);

/** The generator of call `index` of run `seed` (independent of every other call). */
export function callRng(seed, index) {
  return rngOf(Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b) ^ 0x5bd1e995);
}

const fmtNum = (x) => (Object.is(x, -0) ? '-0' : Number.isNaN(x) ? 'NaN' : x === Infinity ? 'Infinity' : x === -Infinity ? '-Infinity' : String(x));

export function describe(v, depth = 0) {
  if (v && typeof v === 'object' && v.__desc) return v.__desc;
  if (typeof v === 'number') return fmtNum(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'function') return 'function';
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.length})`;
  if (Array.isArray(v)) return depth > 3 ? '[...]' : `[${v.map((x) => describe(x, depth + 1)).join(', ')}]`;
  if (typeof v === 'object') {
    if (depth > 3) return '{...}';
    return `{${Object.entries(v).map(([k, x]) => `${k}: ${describe(x, depth + 1)}`).join(', ')}}`;
  }
  return String(v);
}

export function makeGen(lib, rnd) {
  const { Tensor } = lib;
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
  const chance = (p) => rnd() < p;
  // Holders: every tensor made here is listed so the child can dispose of it after the call.
  const made = [];
  const tag = (t, d) => {
    // A description lives in a WeakMap so tensors stay plain Tensors.
    descs.set(t, d);
    return t;
  };
  const descs = new WeakMap();
  const desc = (v) => (v !== null && typeof v === 'object' && descs.has(v) ? descs.get(v) : describe(v));

  const dim = () => (chance(0.1) ? int(1, 40) : int(0, 6));
  const shapeOfRank = (r) => Array.from({ length: r }, dim);
  /** Small shapes, with a total element count kept below about 300k whatever the dims. */
  const smallShape = (rank = int(0, 4)) => {
    let s = shapeOfRank(rank);
    while (s.reduce((a, b) => a * b, 1) > 300_000) s = shapeOfRank(rank);
    return s;
  };
  const specialValue = () => pick([NaN, Infinity, -Infinity, 0, -0, 1e30, -1e30, 3e38, 1e-45]);
  const values = (n, dtype, plain = false) => {
    const special = !plain && chance(0.15);
    if (dtype === 'bfloat16') {
      // bit patterns: mostly values in about [-4, 4], some NaN / inf / subnormal / max finite
      const h = new Uint16Array(n);
      for (let i = 0; i < n; i++) h[i] = special && chance(0.1) ? pick([0x7fc0, 0xffc1, 0x7f80, 0xff80, 0x0001, 0x8000, 0x7f7f]) : (chance(0.5) ? 0x8000 : 0) | int(0x3c00, 0x4080);
      return h;
    }
    const a = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (dtype === 'int32') a[i] = chance(0.8) ? int(-2, 9) : int(-2147483648, 2147483647);
      else a[i] = special && chance(0.1) ? specialValue() : rnd() * 4 - 2;
    }
    return a;
  };
  /** A fresh tensor of this shape and dtype with random values (the fuzz's valid input); plain: no
   *  NaN, infinities or near-overflow values (for the numeric oracle of sums and products). */
  const tensorOf = (shape, dtype = 'float32', plain = false) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const t = Tensor.from(values(n, dtype, plain), shape, { dtype });
    made.push(t);
    return tag(t, `T(${dtype},[${shape.join(',')}])`);
  };
  /** A view at a random offset into a larger tensor (outputs written through views, aliasing). */
  const viewOf = (shape, dtype = 'float32') => {
    const n = shape.reduce((a, b) => a * b, 1);
    const off = int(0, 7);
    const base = tensorOf([n + off + int(0, 7)], dtype);
    const v = base.view(off, shape);
    made.push(v);
    return tag(v, `${desc(base)}.view(${off}, [${shape.join(',')}])`);
  };
  /**
   * A tensor whose element count overflows 64 bits (to 0 when wrapped), as an operator input:
   * the library must refuse to make one (issue 11 item 1); where a build wrongly accepts it,
   * the operator gets it. Only shapes that wrap to 0 bytes are tried, so a build without the
   * check allocates nothing. Returns null when refused (the fixed library, always).
   */
  const overflowTensor = (dtype) => {
    const shape = pick([[65536, 65536, 65536, 65536], [2 ** 30, 2 ** 30, 16, 1], [2 ** 32, 2 ** 32], [16, 2 ** 30, 2 ** 30, 1]]);
    const how = int(0, 3);
    try {
      let t;
      if (how === 0) t = Tensor.from(dtype === 'int32' ? new Int32Array(0) : new Float32Array(0), shape, { dtype });
      else if (how === 1) t = Tensor.empty(shape, { dtype });
      else if (how === 2) t = Tensor.zeros(shape, { dtype });
      else { const base = tensorOf([4], dtype); t = base.view(0, shape); }
      made.push(t);
      return tag(t, `${['Tensor.from(empty)', 'Tensor.empty', 'Tensor.zeros', 'T([4]).view(0)'][how]}([${shape.join(',')}], ${dtype})`);
    } catch {
      return null;
    }
  };
  const hostileDim = () => pick([65536, 2 ** 30, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, 1e300, -1, -(2 ** 31), NaN, Infinity, 1.5, 0]);
  /** A shape meant to be rejected: absurd dims or a product of at least 2**60. */
  const hostileShape = () => {
    switch (int(0, 6)) {
      case 0: return [65536, 65536, 65536, 65536];
      case 1: return [2 ** 30, 2 ** 30, 16, 1];
      case 2: return [2 ** 31, 2 ** 31];
      case 3: { const s = [0, 0, 0, 0].map(hostileDim); s[int(0, 3)] = pick([-1, NaN, 1e300, 2 ** 53, 1.5]); return s; }
      case 4: return [2 ** 20, 2 ** 20, 2 ** 20];
      case 5: return [65536, 65536, 65536, 65536, 65536];
      default: return [pick([-1, -(2 ** 31), NaN, 1e300, 0.5, 2 ** 62])];
    }
  };
  const junk = () => {
    switch (int(0, 16)) {
      case 0: return null;
      case 1: return undefined;
      case 2: return pick([0, -1, 1, NaN, 1e300, 2 ** 31, -Infinity]);
      case 3: return pick(['', 'abc', '3', 'float32', 'cuda', 'cpu']);
      case 4: return {};
      case 5: return { shape: [2, 2], dtype: 'float32' };
      case 6: return [];
      case 7: return [1, 2, 3];
      case 8: { const t = tensorOf(smallShape(int(1, 4))); const p = new Proxy(t, {}); descs.set(p, `Proxy(${desc(t)})`); return p; }
      case 9: { const o = Object.create(Tensor.prototype); descs.set(o, 'Object.create(Tensor.prototype)'); return o; }
      case 10: { const t = tensorOf(smallShape(int(1, 4))); t.dispose(); descs.set(t, `disposed(${desc(t)})`); return t; }
      case 11: return 10n;
      case 12: return Symbol('x');
      case 13: return new Float32Array(4);
      case 14: return () => 1;
      case 15: return true;
      default: return { size: 3, kernelSize: 2, p: 0.5, lr: 0.1 };
    }
  };
  /** A tensor argument: mostly fine, sometimes of a wrong dtype or rank, sometimes not a tensor. */
  const anyTensor = (shape, dtype = 'float32') => {
    const r = rnd();
    if (r < 0.03) return overflowTensor(dtype) ?? tensorOf(shape ?? smallShape(), dtype);
    if (r < 0.6) return tensorOf(shape ?? smallShape(), dtype);
    if (r < 0.7) return viewOf(shape ?? smallShape(), dtype);
    if (r < 0.8) return tensorOf(shape ?? smallShape(), dtype === 'float32' ? pick(['int32', 'bfloat16']) : 'float32');
    if (r < 0.9) return tensorOf(smallShape());
    return junk();
  };
  /** The receiver of a Tensor method: a tensor, or something that only looks like one. */
  const receiver = (dtype) => {
    const r = rnd();
    if (r < 0.8) return tensorOf(smallShape(), dtype);
    if (r < 0.87) { const t = tensorOf(smallShape(), dtype); const p = new Proxy(t, {}); descs.set(p, `Proxy(${desc(t)})`); return p; }
    if (r < 0.93) { const o = Object.create(Tensor.prototype); descs.set(o, 'Object.create(Tensor.prototype)'); return o; }
    const t = tensorOf(smallShape(), dtype); t.dispose(); descs.set(t, `disposed(${desc(t)})`); return t;
  };
  /** A small (0..8) or absurd option number. */
  const smallOrAbsurd = () => (chance(0.8) ? int(0, 8) : pick([-1, -8, NaN, Infinity, 2 ** 31, 2 ** 32, 1e300, 1.5, -0, '2', null]));
  const pair = () => (chance(0.5) ? smallOrAbsurd() : chance(0.8) ? [smallOrAbsurd(), smallOrAbsurd()] : pick([[], [1], [1, 1, 1], 'ab', { 0: 1, 1: 1 }]));
  const anyValue = () => pick([0, 1, -1, 0.5, NaN, Infinity, -Infinity, 1e300, -1e300, 2 ** 31, 1e-320, '1', null, undefined, {}, [1], true]);
  const maybeKey = (o, k, gen, p = 0.7) => {
    if (chance(p)) o[k] = gen();
  };
  /** Options: the keys the operator reads, sometimes junk keys, sometimes not an object at all. */
  const opts = (build) => {
    if (chance(0.08)) return junk();
    const o = {};
    build(o);
    if (chance(0.1)) o[pick(['foo', '__proto__x', 'constructor', 'size', 'stride'])] = anyValue();
    return o;
  };
  const nchw = () => smallShape(4);
  const nchwMaybe = () => (chance(0.85) ? nchw() : smallShape());

  return { viewOf, receiver, int, pick, chance, tensorOf, anyTensor, junk, smallShape, hostileShape, hostileDim, values, opts, maybeKey, smallOrAbsurd, pair, anyValue, nchw, nchwMaybe, made, desc, descs, tag };
}

/** Float64 references for the few valid calls the oracle checks numerically. */
export const reference = {
  relu: (x) => Float64Array.from(x, (v) => (Number.isNaN(v) ? NaN : v > 0 ? v : 0)),
  /**
   * y [N, O, Ho, Wo] = conv2d(x [N, C, H, W], w [O, C/groups, kh, kw]) + b, in float64 (the
   * naive loops); returns { y, shape, K } (K: the products summed per output).
   */
  conv2d(x, [N, C, H, W], w, [O, Cg, kh, kw], b, [sh, sw], [ph, pw], groups) {
    const Ho = Math.floor((H + 2 * ph - kh) / sh) + 1, Wo = Math.floor((W + 2 * pw - kw) / sw) + 1;
    const y = new Float64Array(N * O * Ho * Wo);
    const Og = O / groups;
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
        let s = b ? b[o] : 0;
        for (let c = 0; c < Cg; c++) for (let p = 0; p < kh; p++) for (let q = 0; q < kw; q++) {
          const hi = i * sh - ph + p, wi = j * sw - pw + q;
          if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
          s += x[((n * C + g * Cg + c) * H + hi) * W + wi] * w[((o * Cg + c) * kh + p) * kw + q];
        }
        y[((n * O + o) * Ho + i) * Wo + j] = s;
      }
    }
    return { y, shape: [N, O, Ho, Wo], K: Cg * kh * kw };
  },
  /** [N, C, H, W] data -> [N, H, W, C] (channels last), any typed array */
  toNhwc(a, [N, C, H, W]) {
    const out = new a.constructor(a.length);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) out[((n * H + h) * W + w) * C + c] = a[((n * C + c) * H + h) * W + w];
    return out;
  },
  /** [N, H, W, C] data -> [N, C, H, W] */
  toNchw(a, [N, C, H, W]) {
    const out = new a.constructor(a.length);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) out[((n * C + c) * H + h) * W + w] = a[((n * H + h) * W + w) * C + c];
    return out;
  },
  /** c[M,N] = op(a) @ op(b), op(a) [M,K] */
  matmul(a, as, b, bs, transA, transB) {
    const [M, K] = transA ? [as[1], as[0]] : [as[0], as[1]];
    const N = transB ? bs[0] : bs[1];
    const A = (i, k) => (transA ? a[k * as[1] + i] : a[i * as[1] + k]);
    const B = (k, j) => (transB ? b[j * bs[1] + k] : b[k * bs[1] + j]);
    const c = new Float64Array(M * N);
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A(i, k) * B(k, j);
      c[i * N + j] = s;
    }
    return { c, K };
  },
};
