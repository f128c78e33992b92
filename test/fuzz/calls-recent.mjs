// The fuzzed surface added in sessions 8 and 9: bfloat16 operators and conversions, channels
// last (toMemoryFormat, the memoryFormat option, Module.setMemoryFormat), dropout drawing from
// a device counter, the global switches, small models under setPrecision / setMemoryFormat, and
// the Trainer's options. Same contract as calls.mjs: each entry builds one call from `g` and
// returns { name, text, run, check? }; valid calls carry a float64 oracle.
import { scratch } from './calls.mjs';
import { reference } from './gen.mjs';

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
/** bfloat16 pattern -> its value */
const bfValue = (h) => ((u32[0] = (h & 0xffff) << 16), f32[0]);
/** float32 -> bfloat16, round to nearest even (NaN kept quiet) */
const toBf = (x) => {
  f32[0] = x;
  const u = u32[0];
  if (Number.isNaN(x)) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
};

/** got vs want with an absolute bound per element (bound[i]); NaN must match NaN */
function within(got, want, bound) {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    const gv = got[i], w = want[i];
    if (Number.isNaN(w) || Number.isNaN(gv)) {
      if (Number.isNaN(w) !== Number.isNaN(gv)) return `element ${i}: ${gv}, expected ${w}`;
      continue;
    }
    if (!(Math.abs(gv - w) <= bound[i])) return `element ${i}: ${gv}, expected ${w} (bound ${bound[i]})`;
  }
  return null;
}

const SWITCH_DEFAULTS = new Map();

/** A Tensor that is not disposed (false for a Proxy or a look-alike, whose getters throw). */
function live(t) {
  try {
    return t !== null && typeof t === 'object' && !t.disposed && Array.isArray(t.shape);
  } catch {
    return false;
  }
}

export function recentEntries(lib, g, call) {
  const { Tensor } = lib;
  const memFmt = () => (g.chance(0.85) ? g.pick(['contiguous_format', 'channels_last']) : g.pick(['NHWC', 'channels-last', 'CHANNELS_LAST', '', null, 1, {}, 'preserve_format']));
  const widened = (t) => (t.dtype === 'bfloat16' ? Float64Array.from(t.dataSync(), bfValue) : Float64Array.from(t.dataSync()));
  /** a float32 tensor of plain values, or its bfloat16 rounding, in NCHW or NHWC order */
  const activation = (shape, dtype, cl) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const nchw = new Float32Array(n);
    for (let i = 0; i < n; i++) nchw[i] = g.rnd() * 4 - 2;
    const data = cl ? reference.toNhwc(nchw, shape) : nchw;
    const [N, C, H, W] = shape;
    const t = dtype === 'bfloat16' ? Tensor.from(Uint16Array.from(data, toBf), cl ? [N, H, W, C] : shape, { dtype }) : Tensor.from(data, cl ? [N, H, W, C] : shape);
    g.made.push(t);
    g.tag(t, `T(${dtype},[${t.shape.join(',')}]${cl ? ' NHWC' : ''})`);
    const values = dtype === 'bfloat16' ? Float64Array.from(nchw, (v) => bfValue(toBf(v))) : Float64Array.from(nchw);
    return { t, values };
  };
  const plainTensor = (shape, dtype = 'float32') => {
    const { t, values } = activation([shape.reduce((a, b) => a * b, 1), 1, 1, 1], dtype, false);
    const r = t.reshape(shape);
    g.made.push(r);
    g.tag(r, `T(${dtype},[${shape.join(',')}])`);
    return { t: r, values };
  };

  return {
    Trainer: () => trainerEntry(lib, g),
    resume: () => resumeEntry(lib, g, scratch),
    // conv2d in either memory format, float32 or bfloat16: valid calls against the float64 loops
    conv2dFormat() {
      if (g.chance(0.5)) {
        const groups = g.int(1, 2), Cg = g.int(1, 3), Og = g.int(1, 3), kh = g.int(1, 3), kw = g.int(1, 3);
        const C = Cg * groups, O = Og * groups, N = g.int(0, 2), H = g.int(kh, kh + 4), W = g.int(kw, kw + 4);
        const stride = [g.int(1, 2), g.int(1, 2)], padding = [g.int(0, Math.floor(kh / 2)), g.int(0, Math.floor(kw / 2))];
        const dtype = g.pick(['float32', 'bfloat16']), cl = g.chance(0.6), relu = g.chance(0.3);
        const x = activation([N, C, H, W], dtype, cl);
        const w = plainTensor([O, Cg, kh, kw], dtype);
        const b = g.chance(0.7) ? plainTensor([O]) : null;
        const o = { stride, padding, groups, relu, ...(cl ? { memoryFormat: 'channels_last' } : g.chance(0.5) ? { memoryFormat: 'contiguous_format' } : {}) };
        return call('conv2d', lib.conv2d, [x.t, w.t, b?.t ?? null, o], {
          async check(y) {
            const ref = reference.conv2d(x.values, [N, C, H, W], w.values, [O, Cg, kh, kw], b?.values, stride, padding, groups);
            const abs = reference.conv2d(x.values.map(Math.abs), [N, C, H, W], w.values.map(Math.abs), [O, Cg, kh, kw], b?.values.map(Math.abs), stride, padding, groups);
            const [, , Ho, Wo] = ref.shape;
            const want = cl ? [N, Ho, Wo, O] : ref.shape;
            if (y.dtype !== 'float32' || y.shape.join() !== want.join()) return `got ${y.dtype} [${y.shape}], expected float32 [${want}]`;
            let r = ref.y, a = abs.y;
            if (relu) r = r.map((v) => (v > 0 ? v : 0));
            if (cl) { r = reference.toNhwc(r, ref.shape); a = reference.toNhwc(a, ref.shape); }
            return within(widened(y), r, a.map((v) => 1e-5 * ref.K * v + 1e-6));
          },
        });
      }
      const dt = g.pick(['float32', 'bfloat16']);
      const x = g.anyTensor(g.nchwMaybe(), dt);
      const wshape = g.chance(0.8) ? [g.int(0, 6), g.int(0, 6), g.int(0, 5), g.int(0, 5)] : g.smallShape();
      const w = g.anyTensor(wshape, g.chance(0.8) ? dt : 'float32');
      const b = g.chance(0.4) ? null : g.anyTensor(g.chance(0.8) ? [wshape[0] ?? 1] : g.smallShape());
      const o = g.opts((o) => {
        g.maybeKey(o, 'stride', g.pair, 0.4);
        g.maybeKey(o, 'padding', g.pair, 0.4);
        g.maybeKey(o, 'groups', g.smallOrAbsurd, 0.3);
        g.maybeKey(o, 'memoryFormat', memFmt, 0.9);
        g.maybeKey(o, 'outDtype', () => g.pick(['float32', 'bfloat16', 'int32', '', null]), 0.3);
        g.maybeKey(o, 'relu', () => g.pick([true, false, 1]), 0.2);
      });
      return call('conv2d', lib.conv2d, [x, w, b, o]);
    },
    conv2dBackwardFormat() {
      const cl = g.chance(0.6), dt = g.pick(['float32', 'bfloat16']);
      const N = g.int(0, 3), C = g.int(0, 4), H = g.int(0, 6), W = g.int(0, 6), O = g.int(0, 4), kh = g.int(0, 3), kw = g.int(0, 3);
      const Ho = g.chance(0.7) ? Math.max(0, H - kh + 1) : g.int(0, 6), Wo = g.chance(0.7) ? Math.max(0, W - kw + 1) : g.int(0, 6);
      const x = g.anyTensor(cl ? [N, H, W, C] : [N, C, H, W], dt);
      const w = g.anyTensor([O, C, kh, kw], dt);
      const dy = g.chance(0.1) ? x : g.anyTensor(cl ? [N, Ho, Wo, O] : [N, O, Ho, Wo], dt);
      const o = g.opts((o) => {
        g.maybeKey(o, 'memoryFormat', () => (g.chance(0.8) ? (cl ? 'channels_last' : 'contiguous_format') : memFmt()), 0.9);
        g.maybeKey(o, 'stride', g.pair, 0.2);
        g.maybeKey(o, 'padding', g.pair, 0.2);
        g.maybeKey(o, 'computeGradInput', () => g.pick([true, false, 0]), 0.3);
        g.maybeKey(o, 'accumulate', () => g.pick([true, false]), 0.3);
        g.maybeKey(o, 'gradWeight', () => (g.chance(0.3) ? g.pick([w, x, dy]) : g.anyTensor([O, C, kh, kw])), 0.3);
        g.maybeKey(o, 'gradBias', () => g.anyTensor([O]), 0.2);
      });
      return call('conv2dBackward', lib.conv2dBackward, [dy, x, w, o]);
    },
    // max pooling in either memory format against the naive window maximum
    maxPool2dFormat() {
      if (g.chance(0.5)) {
        const N = g.int(0, 2), C = g.int(1, 4), k = g.int(1, 3), s = g.int(1, 3), pad = g.int(0, Math.floor(k / 2));
        const H = g.int(k, k + 5), W = g.int(k, k + 5), dtype = g.pick(['float32', 'bfloat16']), cl = g.chance(0.6);
        const x = activation([N, C, H, W], dtype, cl);
        const o = { kernelSize: k, stride: s, padding: pad, ...(cl ? { memoryFormat: 'channels_last' } : {}) };
        return call('maxPool2d', lib.maxPool2d, [x.t, o], {
          async check(y) {
            const Ho = Math.floor((H + 2 * pad - k) / s) + 1, Wo = Math.floor((W + 2 * pad - k) / s) + 1;
            const want = cl ? [N, Ho, Wo, C] : [N, C, Ho, Wo];
            if (y.dtype !== dtype || y.shape.join() !== want.join()) return `got ${y.dtype} [${y.shape}], expected ${dtype} [${want}]`;
            let r = new Float64Array(N * C * Ho * Wo);
            for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
              let m = -Infinity;
              for (let p = 0; p < k; p++) for (let q = 0; q < k; q++) {
                const hi = i * s - pad + p, wi = j * s - pad + q;
                if (hi >= 0 && hi < H && wi >= 0 && wi < W) m = Math.max(m, x.values[((n * C + c) * H + hi) * W + wi]);
              }
              r[((n * C + c) * Ho + i) * Wo + j] = m;
            }
            if (cl) r = reference.toNhwc(r, [N, C, Ho, Wo]);
            return within(widened(y), r, new Float64Array(r.length));
          },
        });
      }
      const dt = g.pick(['float32', 'bfloat16']);
      const o = g.opts((o) => {
        g.maybeKey(o, 'kernelSize', g.pair, 0.9);
        g.maybeKey(o, 'stride', g.pair, 0.4);
        g.maybeKey(o, 'padding', g.pair, 0.3);
        g.maybeKey(o, 'memoryFormat', memFmt, 0.9);
      });
      return call('maxPool2d', lib.maxPool2d, [g.anyTensor(g.nchwMaybe(), dt), o]);
    },
    maxPool2dBackwardFormat() {
      const s = g.nchw(), dt = g.pick(['float32', 'bfloat16']);
      const k = g.int(1, 3);
      const cl = g.chance(0.6);
      const [N, A, B, Cc] = s;
      const os = cl ? [N, Math.floor(A / k), Math.floor(B / k), Cc] : [N, A, Math.floor(B / k), Math.floor(Cc / k)];
      const x = g.anyTensor(s, dt);
      const y = g.chance(0.7) ? g.anyTensor(os, dt) : g.anyTensor(g.nchwMaybe(), dt);
      const dy = g.chance(0.8) ? g.anyTensor(os, dt) : g.anyTensor(undefined, dt);
      const o = g.opts((o) => {
        o.kernelSize = g.chance(0.8) ? k : g.pair();
        g.maybeKey(o, 'memoryFormat', () => (g.chance(0.8) ? (cl ? 'channels_last' : 'contiguous_format') : memFmt()), 0.9);
        g.maybeKey(o, 'stride', g.pair, 0.2);
        g.maybeKey(o, 'padding', g.pair, 0.2);
      });
      return call('maxPool2dBackward', lib.maxPool2dBackward, [dy, x, y, o]);
    },
    toMemoryFormat() {
      if (g.chance(0.5)) {
        const s = g.nchw(), dtype = g.pick(['float32', 'bfloat16']), toCl = g.chance(0.5);
        const [N, C, H, W] = s;
        // the source in the other format: NCHW data for 'channels_last', NHWC for 'contiguous_format'
        const x = activation(s, dtype, !toCl);
        return call('toMemoryFormat', lib.toMemoryFormat, [x.t, toCl ? 'channels_last' : 'contiguous_format'], {
          async check(y) {
            const want = toCl ? [N, H, W, C] : [N, C, H, W];
            if (y === x.t) return 'returned its input';
            if (y.dtype !== dtype || y.shape.join() !== want.join()) return `got ${y.dtype} [${y.shape}], expected [${want}]`;
            const r = toCl ? reference.toNhwc(x.values, s) : x.values;
            return within(widened(y), r, new Float64Array(r.length));
          },
        });
      }
      const t = g.chance(0.7) ? g.anyTensor(g.nchwMaybe(), g.pick(['float32', 'bfloat16', 'int32'])) : g.receiver(g.pick(['float32', 'bfloat16']));
      return call('toMemoryFormat', lib.toMemoryFormat, [t, memFmt()]);
    },
    // dropout reading its stream position from an int32 [2] counter, and advancing it
    dropoutCounter() {
      const x = g.chance(0.7) ? plainTensor(g.smallShape(), g.pick(['float32', 'bfloat16'])).t : g.anyTensor(undefined, g.pick(['float32', 'bfloat16']));
      const words = g.pick([[0, 0], [5, 0], [-1, 0], [-1, -1], [0, 1], [2 ** 31 - 1, 2 ** 31 - 1], [-(2 ** 31), -(2 ** 31)], [123456, 2 ** 20]]);
      let counter;
      switch (g.int(0, 9)) {
        case 0: counter = g.anyTensor([2], 'int32'); break;
        case 1: counter = g.tensorOf([2], 'float32'); break;
        case 2: counter = g.tensorOf(g.pick([[1], [3], [1, 2], [2, 1], [0], []]), 'int32'); break;
        case 3: { counter = lib.dropoutCounter(0); counter.dispose(); g.descs.set(counter, 'disposed(dropoutCounter(0))'); break; }
        case 4: counter = g.junk(); break;
        case 5: { const base = g.tensorOf([5], 'int32'); counter = base.view(g.int(0, 3), [2]); g.made.push(counter); g.tag(counter, `${g.desc(base)}.view(_, [2])`); break; }
        default: counter = Tensor.from(Int32Array.from(words), [2], { dtype: 'int32' }); g.made.push(counter); g.tag(counter, `counter([${words}])`);
      }
      const o = g.opts((o) => {
        o.p = g.chance(0.8) ? g.pick([0, 0.3, 0.5, 0.9]) : g.pick([1, -0.1, NaN, Infinity, '0.5', null]);
        o.seed = g.chance(0.8) ? g.int(0, 1000) : g.pick([-1, 2 ** 53, 1.5, NaN, '1']);
        g.maybeKey(o, 'offset', () => (g.chance(0.7) ? g.int(0, 100) : g.pick([-1, 2 ** 53, 2 ** 53 - 1, NaN, 1e300, 0.5])), 0.4);
        g.maybeKey(o, 'advance', () => (g.chance(0.7) ? g.int(0, 1000) : g.pick([-1, 2 ** 53, 2 ** 53 - 1, NaN, Infinity, 0.5, '3'])), 0.5);
        g.maybeKey(o, 'relu', () => g.pick([true, false, 1, 'yes']), 0.3);
      });
      const valid = g.descs.get(counter)?.startsWith('counter(') && live(x) && x instanceof Tensor && (x.dtype === 'float32' || x.dtype === 'bfloat16') && o && typeof o.p === 'number' && o.p >= 0 && o.p < 1 && Number.isInteger(o.seed) && o.seed >= 0 && o.seed < 2 ** 53 && (o.offset === undefined || (Number.isInteger(o.offset) && o.offset >= 0 && o.offset < 2 ** 53)) && (o.advance === undefined || (Number.isInteger(o.advance) && o.advance >= 0 && o.advance < 2 ** 53)) && (o.relu === undefined || typeof o.relu === 'boolean') && Object.keys(o).every((k) => ['p', 'seed', 'offset', 'advance', 'relu'].includes(k));
      const before = valid ? BigInt.asUintN(64, (BigInt(words[1] >>> 0) << 32n) | BigInt(words[0] >>> 0)) : 0n;
      return call('dropout+counter', lib.dropout, [x, o, counter], valid ? {
        async check(r) {
          const w = await counter.data();
          const after = (BigInt(w[1] >>> 0) << 32n) | BigInt(w[0] >>> 0);
          const want = BigInt.asUintN(64, before + BigInt(o.advance ?? 0));
          if (after !== want) return `counter ${before} advanced by ${o.advance ?? 0} holds ${after}, expected ${want}`;
          const pos = before + BigInt(o.offset ?? 0);
          // the same mask as the host offset where that offset is one (< 2^53 and no wrap in the call)
          if (pos + BigInt(x.numel) < 2n ** 53n) {
            const host = lib.dropout(x, { p: o.p, seed: o.seed, offset: Number(pos), ...(o.relu !== undefined ? { relu: o.relu } : {}) });
            try {
              const [a, b] = [await r.mask.data(), await host.mask.data()];
              for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `mask element ${i}: ${a[i]}, the host offset ${pos} gives ${b[i]}`;
            } finally {
              host.output.dispose();
              host.mask.dispose();
            }
          }
          const m = await r.mask.data();
          const keep = 1 / (1 - o.p);
          for (let i = 0; i < m.length; i++) if (m[i] !== 0 && Math.abs(m[i] - keep) > 1e-6 * keep) return `mask element ${i} is ${m[i]}`;
          return null;
        },
      } : {});
    },
    // the bfloat16 copy of a float32 weight, refreshed in place
    refreshBf16Copy() {
      if (g.chance(0.4)) {
        const s = g.smallShape();
        const src = g.tensorOf(s, 'float32');
        const copy = g.tensorOf(s, 'bfloat16');
        const xs = src.dataSync().slice();
        return call('refreshBf16Copy', lib.refreshBf16Copy, [copy, src], {
          async check() {
            const h = await copy.data();
            for (let i = 0; i < xs.length; i++) if (!(h[i] === toBf(xs[i]) || (Number.isNaN(xs[i]) && Number.isNaN(bfValue(h[i]))))) return `element ${i}: ${xs[i]} gave 0x${h[i].toString(16)}`;
            return null;
          },
        });
      }
      const s = g.smallShape();
      const src = g.anyTensor(s, 'float32');
      const copy = g.chance(0.15) ? src : g.anyTensor(g.chance(0.8) ? s : undefined, 'bfloat16');
      return call('refreshBf16Copy', lib.refreshBf16Copy, [copy, src]);
    },
    // float32 linear on its kept weight panels (8-192 rows, features and k from 256): the
    // second call at one weight value makes them; between the two, the weight may be written
    // (the second must see the write), disposed (a coded error), or read through a view
    linearPacked() {
      const B = g.int(8, 40), I = g.int(256, 300), O = g.int(256, 300), relu = g.chance(0.3);
      const x = plainTensor([B, I]), b = g.chance(0.5) ? plainTensor([O]) : null;
      const whole = plainTensor([O * I + (g.chance(0.3) ? 7 : 0)]);
      const off = whole.t.numel - O * I;
      const w = off ? whole.t.view(off, [O, I]) : whole.t.reshape([O, I]);
      const wv = whole.values.slice(off);
      lib.linear(x.t, w, b?.t ?? null, { relu }).dispose();
      const between = g.pick(['none', 'none', 'scale', 'dispose', 'dispose-base']);
      if (between === 'scale') {
        lib.scale(whole.t, -0.5);
        for (let i = 0; i < wv.length; i++) wv[i] *= -0.5;
      } else if (between === 'dispose') {
        w.dispose();
        return call('linear', lib.linear, [x.t, w, b?.t ?? null, { relu }]); // ERR_DISPOSED
      } else if (between === 'dispose-base') {
        whole.t.dispose(); // the view keeps the storage (and its panels)
      }
      return call('linear', lib.linear, [x.t, w, b?.t ?? null, { relu }], {
        async check(y) {
          if (y.dtype !== 'float32' || y.shape.join() !== [B, O].join()) return `got ${y.dtype} [${y.shape}]`;
          const { c } = reference.matmul(x.values, [B, I], wv, [O, I], false, true);
          const a = reference.matmul(x.values.map(Math.abs), [B, I], wv.map(Math.abs), [O, I], false, true).c;
          for (let i = 0; i < B; i++) for (let j = 0; j < O; j++) { if (b) { c[i * O + j] += b.values[j]; a[i * O + j] += Math.abs(b.values[j]); } if (relu && !(c[i * O + j] > 0)) c[i * O + j] = 0; }
          return within(Float64Array.from(y.dataSync()), c, a.map((v) => 1e-6 * Math.sqrt(I) * v + 1e-6));
        },
      });
    },
    linearBf16() {
      if (g.chance(0.5)) {
        // from 32 rows the packed GEMM (the AMX tiles where the CPU has them) with its edges:
        // row groups of 32, k ending inside a tile, columns past a tile
        const big = g.chance(0.3);
        const B = big ? g.int(32, 70) : g.int(0, 5), I = big ? g.int(1, 70) : g.int(0, 8), O = big ? g.int(1, 40) : g.int(0, 6), relu = g.chance(0.3);
        const x = plainTensor([B, I], 'bfloat16'), w = plainTensor([O, I], 'bfloat16'), b = g.chance(0.5) ? plainTensor([O]) : null;
        return call('linear', lib.linear, [x.t, w.t, b?.t ?? null, { relu }], {
          async check(y) {
            if (y.dtype !== 'float32' || y.shape.join() !== [B, O].join()) return `got ${y.dtype} [${y.shape}]`;
            const { c } = reference.matmul(x.values, [B, I], w.values, [O, I], false, true);
            const a = reference.matmul(x.values.map(Math.abs), [B, I], w.values.map(Math.abs), [O, I], false, true).c;
            for (let i = 0; i < B; i++) for (let j = 0; j < O; j++) { if (b) { c[i * O + j] += b.values[j]; a[i * O + j] += Math.abs(b.values[j]); } if (relu && !(c[i * O + j] > 0)) c[i * O + j] = 0; }
            return within(widened(y), c, a.map((v) => 1e-5 * Math.max(1, I) * v + 1e-6));
          },
        });
      }
      const B = g.int(0, 6), I = g.int(0, 8), O = g.int(0, 6);
      const o = g.opts((o) => {
        g.maybeKey(o, 'outDtype', () => g.pick(['float32', 'bfloat16', 'int32', 'float16', '', null]), 0.6);
        g.maybeKey(o, 'relu', () => g.pick([true, false, 'x']), 0.3);
      });
      return call('linear', lib.linear, [g.anyTensor([B, I], 'bfloat16'), g.anyTensor(g.chance(0.8) ? [O, I] : undefined, g.pick(['bfloat16', 'float32'])), g.chance(0.4) ? null : g.anyTensor([O], g.pick(['float32', 'bfloat16'])), o]);
    },
    reluBf16() {
      const s = g.smallShape();
      if (g.chance(0.5)) {
        const x = g.tensorOf(s, 'bfloat16');
        const xs = x.dataSync().slice();
        return call('relu', lib.relu, [x], {
          async check(y) {
            if (y.dtype !== 'bfloat16' || y.shape.join() !== s.join()) return `got ${y.dtype} [${y.shape}]`;
            const h = await y.data();
            for (let i = 0; i < xs.length; i++) {
              const v = bfValue(xs[i]), got = bfValue(h[i]);
              if (Number.isNaN(v) ? !Number.isNaN(got) : got !== (v > 0 ? v : 0)) return `element ${i}: relu(${v}) gave ${got}`;
            }
            return null;
          },
        });
      }
      const op = g.pick(['relu', 'reluBackward', 'dropoutBackward', 'softmaxCrossEntropy']);
      if (op === 'relu') return call('relu', lib.relu, [g.anyTensor(s, 'bfloat16')]);
      if (op === 'reluBackward') return call('reluBackward', lib.reluBackward, [g.anyTensor(s, 'bfloat16'), g.anyTensor(g.chance(0.8) ? s : undefined, 'bfloat16')]);
      if (op === 'dropoutBackward') return call('dropoutBackward', lib.dropoutBackward, [g.anyTensor(s, 'bfloat16'), g.anyTensor(g.chance(0.8) ? s : undefined, g.pick(['float32', 'bfloat16']))]);
      const B = g.int(0, 6), C = g.int(0, 8);
      return call('softmaxCrossEntropy', lib.softmaxCrossEntropy, [g.anyTensor([B, C], 'bfloat16'), g.anyTensor([B], 'int32')]);
    },
    // the global switches, each restored afterwards (so calls stay independent of each other)
    setSwitch() {
      const info = () => lib.backendInfo().backends.cpu;
      if (SWITCH_DEFAULTS.size === 0) {
        const c = info();
        SWITCH_DEFAULTS.set('threads', c.threads).set('gemm', c.gemm).set('blasCompiled', c.blasCompiled);
      }
      const blas = SWITCH_DEFAULTS.get('blasCompiled');
      const table = {
        setCpuIsa: [['auto', 'avx2', 'avx512'], () => lib.setCpuIsa('auto')],
        setReluDropoutFusion: [['fused', 'epilogue', 'off'], () => lib.setReluDropoutFusion('fused')],
        setCublasLtEpilogues: [[true, false], () => lib.setCublasLtEpilogues(false)],
        setBf16Kernel: [['auto', 'portable', 'avx512_bf16', 'amx_bf16'], () => lib.setBf16Kernel('auto')],
        setConvAlgorithm: [['auto', 'direct', 'direct-avx2', 'im2col', 'winograd', 'winograd-gemm'], () => lib.setConvAlgorithm('auto')],
        setGemmBackend: [blas ? ['blas', 'portable'] : ['portable'], () => lib.setGemmBackend(SWITCH_DEFAULTS.get('gemm'))],
        setNumThreads: [[1, 2, 3], () => lib.setNumThreads(SWITCH_DEFAULTS.get('threads'))],
        setWeightCache: [[true, false], () => lib.setWeightCache(true)],
        setTf32: [[true, false], () => lib.setTf32(true)],
        setDeterministic: [[true, false], () => lib.setDeterministic(false)],
      };
      const name = g.pick(Object.keys(table));
      const [valid, restore] = table[name];
      const isValid = g.chance(0.4);
      const arg = isValid ? g.pick(valid) : g.pick([
        () => g.pick(['', 'AUTO', 'avx2 ', 'avx2\u0000', 'auto\u0000junk', 'avx1024', 'fused\n', 'true', '1', 'on', 'blas\u0000x']),
        () => g.pick([0, 1, -1, 0.5, NaN, Infinity, -Infinity, 65, 2 ** 31, 2 ** 53, 1e300, -0]),
        () => g.junk(),
        () => g.anyValue(),
      ])();
      const validArg = isValid || valid.some((v) => Object.is(v, arg));
      const run = (a) => {
        try {
          const r = lib[name](a);
          // a value outside the switch's list must be refused, not taken as something else
          if (!validArg) throw new Error(`${name} accepted ${g.desc(a)}`);
          return r;
        } finally {
          restore();
        }
      };
      return call(name, run, [arg], validArg ? { async check() { return null; } } : {});
    },
    // a small model under setMemoryFormat / setPrecision calls on it and its children: in eval
    // mode its output must match the same weights run NCHW in float32
    model() {
      const C = g.int(1, 3), O = g.int(1, 4), H = g.int(4, 8), W = g.int(4, 8), classes = g.int(1, 4), N = g.int(1, 3);
      const build = () => {
        const conv = new lib.Conv2d(C, O, 3, { padding: 1 });
        const features = new lib.Sequential(conv, new lib.ReLU(), new lib.MaxPool2d(2), new lib.Dropout(0.5, { seed: 3 }));
        const fc = new lib.Linear(O * Math.floor(H / 2) * Math.floor(W / 2), classes);
        const classifier = new lib.Sequential(new lib.Dropout(0.5, { seed: 4 }), fc);
        const m = new lib.Sequential();
        m.append(features, 'features').append(new lib.Flatten(), 'flatten').append(classifier, 'classifier');
        return m;
      };
      const model = build();
      const ref = build();
      ref.loadStateDict(model.stateDict());
      const targets = { model, features: model.at(0), classifier: model.at(2), conv: model.at(0).at(0), flatten: model.at(1) };
      const steps = [];
      for (let k = g.int(1, 4); k > 0; k--) {
        const who = g.pick(Object.keys(targets));
        const what = g.pick(['setMemoryFormat', 'setMemoryFormat', 'setMemoryFormat', 'setPrecision', 'train', 'eval']);
        const arg = what === 'setMemoryFormat' ? memFmt() : what === 'setPrecision' ? (g.chance(0.85) ? g.pick(['fp32', 'bf16']) : g.pick(['bfloat16', 'fp16', '', null])) : undefined;
        steps.push([who, what, arg]);
      }
      const training = g.chance(0.3);
      // x: plain values (checked against the NCHW float32 model), or anything (must not crash)
      const plainX = g.chance(0.85);
      const x = plainX ? activation([N, C, H, W], 'float32', false).t : g.anyTensor(g.chance(0.5) ? [N, C, H, W] : undefined);
      const text = `model([${C},${H},${W}] -> ${classes}; ${steps.map(([w, f, a]) => `${w}.${f}(${a === undefined ? '' : g.desc(a)})`).join('; ')}; ${training ? 'train' : 'eval'}, x ${g.desc(x)})`;
      let threw = false;
      const run = () => {
        for (const [who, what, arg] of steps) {
          try {
            targets[who][what](arg);
          } catch (e) {
            threw = true; // a refused switch: coded, and the model still works (checked below)
            if (!(e instanceof Error && typeof e.code === 'string')) throw e;
          }
        }
        if (training) model.train(); else model.eval();
        ref.eval();
        let y;
        try {
          y = model.forward(x);
        } catch (e) {
          // a part set to another layout than the model around it is refused when it runs
          if (e?.code === 'ERR_ARGUMENT' && /call setMemoryFormat on the whole model/.test(e.message)) return { refused: e.message };
          throw e;
        }
        if (training) {
          const gy = Tensor.full(y.shape, 1);
          try {
            const gx = model.backward(gy);
            if (gx && gx.shape.join() !== x.shape.join()) throw new Error(`input gradient [${gx.shape}] for input [${x.shape}]`);
            gx?.dispose();
          } finally {
            gy.dispose();
          }
        }
        return y;
      };
      const validX = plainX;
      const anyBf16 = () => model.namedModules().some(([, m]) => m.precision === 'bf16');
      return {
        name: 'model',
        text,
        run,
        made: [...g.made, { dispose: () => { model.clearCache(); ref.clearCache(); for (const p of [...model.parameters(), ...ref.parameters()]) { p.disposeBf16?.(); p.data.dispose(); p.grad.dispose(); } }, get disposed() { return false; }, shape: [] }],
        check: validX ? async (y) => {
          if (y.refused !== undefined) return steps.some(([, f, a]) => f === 'setMemoryFormat' && a === 'channels_last') ? null : `refused with no part set to channels_last: ${y.refused}`;
          if (y.shape.join() !== [N, classes].join()) return `output [${y.shape}], expected [${N},${classes}]`;
          if (training) return null;
          const want = ref.forward(x);
          try {
            const a = await y.data(), b = await want.data();
            // bf16 somewhere: the activations rounded to 8 bits; a wrong layout is off by O(1)
            const tol = anyBf16() ? 0.1 : 1e-4;
            const scale = Math.max(1, ...Array.from(b, Math.abs).filter(Number.isFinite));
            for (let i = 0; i < a.length; i++) if (!(a[i] === b[i] || Math.abs(a[i] - b[i]) <= tol * scale || (Number.isNaN(a[i]) && Number.isNaN(b[i])))) return `output ${i}: ${a[i]}, the NCHW float32 model gives ${b[i]}${threw ? ' (after a refused call)' : ''}`;
            return null;
          } finally {
            want.dispose();
          }
        } : undefined,
      };
    },
  };
}

/**
 * new Trainer(options).run() on a tiny model and data set with hostile options and samples. A
 * refused Trainer must leave the model as it was (its precision and memory format), and a run
 * either completes (maxSteps is small) or fails with a coded error.
 */
export function trainerEntry(lib, g) {
  const C = 3, H = g.int(4, 6), W = H, classes = 2;
  const model = new lib.Sequential(new lib.Conv2d(C, 2, 3, { padding: 1 }), new lib.ReLU(), new lib.Dropout(0.5), new lib.Flatten(), new lib.Linear(2 * H * W, classes));
  const badLabel = g.chance(0.15) ? g.pick([2, 7, -1, NaN, 1.5, 2 ** 31, Infinity]) : null;
  const badImage = g.chance(0.1) ? g.pick(['short', 'long', 'nan', 'missing']) : null;
  const sampleShape = g.chance(0.9) ? [C, H, W] : g.pick([[C, H + 1, W], [1, H, W], [C, 0, W], [C, 2 ** 20, 2 ** 20]]);
  const n = g.chance(0.9) ? g.int(4, 12) : g.pick([0, 1, 2 ** 31, -1, NaN]);
  const train = {
    length: n,
    classNames: ['a', 'b'],
    sampleShape,
    load(i) {
      const len = C * H * W;
      const image = new Float32Array(badImage === 'short' ? len - 1 : badImage === 'long' ? len + 5 : len);
      for (let k = 0; k < image.length; k++) image[k] = badImage === 'nan' && k === 3 ? NaN : ((i * 31 + k * 7) % 11) / 11 - 0.5;
      return badImage === 'missing' ? { label: 0 } : { image, label: badLabel !== null && i === 1 ? badLabel : i % 2 };
    },
  };
  const opt = (p, valid, hostile) => (g.chance(p) ? (g.chance(0.75) ? g.pick(valid) : g.pick(hostile)) : undefined);
  const o = { model, config: {}, train, checkpoint: null, metrics: null };
  const put = (k, v) => { if (v !== undefined) o[k] = v; };
  put('device', opt(0.2, ['cpu'], ['cuda', 'cuda:0', 'cuda:9', 'tpu', '', 'cpu:1', null, 7]));
  put('batchSize', opt(0.9, [1, 2, 4], [0, -1, 1.5, NaN, Infinity, 2 ** 31, 2 ** 53, 1e300, '2', null]));
  put('epochs', opt(0.4, [1, 2], [0, -1, NaN, Infinity, 1e300, 2 ** 53, '1']));
  put('maxSteps', g.chance(0.9) ? g.pick([1, 2, 3]) : g.pick([0, -1, NaN, 1.5, '2', null]));
  put('optimizer', g.chance(0.6) ? { lr: opt(1, [0.01, 0.1, 0], [NaN, -1, Infinity, -Infinity, 1e300, '0.1', null, undefined]), ...(g.chance(0.3) ? { momentum: g.pick([0.9, -1, NaN, 2, 1e300]) } : {}), ...(g.chance(0.3) ? { weightDecay: g.pick([5e-4, -1, NaN, Infinity]) } : {}) } : g.chance(0.1) ? g.junk() : undefined);
  put('precision', opt(0.3, ['fp32', 'bf16'], ['bfloat16', 'fp16', '', null, 1]));
  put('memoryFormat', opt(0.3, ['contiguous_format', 'channels_last'], ['NHWC', 'channels-last', '', null, 1]));
  put('cudaGraph', opt(0.2, [false, true], ['yes', 1, null]));
  put('warmupSteps', opt(0.2, [0, 2], [-1, NaN, 1.5, Infinity, 1e300, '2']));
  put('logEvery', opt(0.2, [1, 5], [0, -1, NaN, 1.5, Infinity]));
  put('seed', opt(0.2, [0, 7], [-1, NaN, 1.5, 2 ** 53, 1e300, 'x']));
  put('workers', opt(0.15, [0], [-1, NaN, 1.5, 1e6, 2 ** 31, Infinity, 'x']));
  put('schedule', opt(0.15, [{ kind: 'none' }, { kind: 'step', stepSize: 1, gamma: 0.5 }], [{ kind: 'step', stepSize: 0, gamma: NaN }, { kind: 'multistep', milestones: [-1, NaN], gamma: 2 }, { kind: 'plateau', patience: -1, factor: 7 }, { kind: 'x' }, 'step', null]));
  put('dataFormat', opt(0.1, ['auto', 'float32'], ['uint8', 'x', null]));
  put('checkpointEvery', opt(0.1, [1], [0, -1, NaN, 1.5]));
  const before = () => `${model.precision}/${model.memoryFormat}/${model.namedModules().map(([, m]) => `${m.precision}${m.memoryFormat[0]}`).join('')}`;
  const text = `Trainer({${Object.entries(o).filter(([k]) => !['model', 'config', 'train', 'checkpoint', 'metrics'].includes(k)).map(([k, v]) => `${k}: ${g.desc(v)}`).join(', ')}}, ${n} samples [${sampleShape}]${badLabel !== null ? `, a label ${badLabel}` : ''}${badImage ? `, image ${badImage}` : ''})`;
  const run = async () => {
    const b = before();
    let trainer;
    try {
      trainer = new lib.Trainer(o);
    } catch (e) {
      if (before() !== b) throw new Error(`a refused Trainer changed the model (${b} -> ${before()}): ${e?.message}`);
      throw e;
    }
    try {
      return await trainer.run();
    } finally {
      await trainer.close();
    }
  };
  const cleanup = { dispose: () => { model.clearCache(); for (const p of model.parameters()) { try { p.disposeBf16?.(); p.data.dispose(); p.grad.dispose(); } catch { /* held by a store */ } } }, disposed: false, shape: [] };
  return { name: 'Trainer', text, run, made: [...g.made, cleanup] };
}

/** This child's checkpoint of a bf16, channels-last training run (made by the first resume call). */
let goodCheckpoint = null;

/**
 * Trainer({ resume }) from a checkpoint a bf16 / channels-last run wrote, damaged: cut, bits
 * flipped (anywhere, in the header, in the tensor data) or a metadata field replaced. Either a
 * coded error or a completed run; with verification on, a flip in the tensor data must be
 * refused (ERR_CHECKPOINT: the checksums).
 */
export function resumeEntry(lib, g, scratch) {
  const { Sequential, Conv2d, ReLU, MaxPool2d, Dropout, Flatten, Linear, Trainer } = lib;
  const model = () => new Sequential(new Conv2d(3, 4, 3, { padding: 1 }), new ReLU(), new MaxPool2d(2), new Dropout(0.3), new Flatten(), new Linear(4 * 4 * 4, 2));
  const data = { length: 16, classNames: ['a', 'b'], sampleShape: [3, 8, 8], load: (i) => ({ image: Float32Array.from({ length: 192 }, (_, k) => ((i * 13 + k) % 7) / 7 - 0.5), label: i % 2 }) };
  const opts = (extra) => ({ config: { fuzz: 1 }, train: data, batchSize: 4, precision: 'bf16', memoryFormat: 'channels_last', metrics: null, workers: 0, optimizer: { lr: 0.05, momentum: 0.9 }, ...extra });
  const how = g.int(0, 4), verify = g.chance(0.7);
  const pick = { at: g.rnd(), bit: g.int(0, 7), k: g.int(1, 4), flips: Array.from({ length: 4 }, () => [g.rnd(), g.int(0, 7)]), key: g.rnd(), value: g.pick(['NaN', '-1', '1e300', '{', '[]', '{"lr":-1}', '{"step":-5,"lr":0.1}', 'null', '"x"', '{"dropout":[{"seed":-1,"offset":1e300}]}', '{"dropout":[]}', '{"seed":0,"epoch":1e300,"batch":7,"batchSize":0}', '{"train":{"precision":7,"batchSize":1e300}}']) };
  let desc = '';
  let dataFlip = false;
  const run = async () => {
    const path = `${scratch()}/resume-${process.pid}.safetensors`;
    if (goodCheckpoint === null) {
      const { readFileSync } = await import('node:fs');
      const t = new Trainer({ model: model(), ...opts({ epochs: 1, checkpoint: path }) });
      try { await t.run(); } finally { await t.close(); }
      goodCheckpoint = readFileSync(path);
    }
    let b = Buffer.from(goodCheckpoint);
    const n = Number(b.readBigUInt64LE(0));
    if (how === 0) { const at = Math.floor(pick.at * b.length); b = b.subarray(0, at); desc = `cut at ${at} of ${goodCheckpoint.length}`; }
    else if (how === 1) { for (const [r, bit] of pick.flips.slice(0, pick.k)) b[Math.floor(r * b.length)] ^= 1 << bit; desc = `${pick.k} bit flips`; }
    else if (how === 2) { const at = 8 + Math.floor(pick.at * n); b[at] ^= 1 << pick.bit; desc = `header bit flip at ${at}`; }
    else if (how === 3) { const at = 8 + n + Math.floor(pick.at * (b.length - 8 - n)); b[at] ^= 1 << pick.bit; dataFlip = true; desc = `data bit flip at ${at}`; }
    else {
      const h = JSON.parse(b.subarray(8, 8 + n).toString());
      const keys = Object.keys(h.__metadata__);
      const k = keys[Math.floor(pick.key * keys.length)];
      h.__metadata__[k] = pick.value;
      const hb = Buffer.from(JSON.stringify(h));
      const out = Buffer.alloc(8 + hb.length + (b.length - 8 - n));
      out.writeBigUInt64LE(BigInt(hb.length));
      hb.copy(out, 8);
      b.subarray(8 + n).copy(out, 8 + hb.length);
      b = out;
      desc = `metadata ${k} = ${pick.value}`;
    }
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path, b);
    let t;
    try {
      t = new Trainer({ model: model(), ...opts({ epochs: 2, maxSteps: 6, checkpoint: null, resume: path, verifyCheckpoint: verify }) });
      await t.run();
    } catch (e) {
      if (!(e && typeof e.code === 'string')) throw new Error(`${desc}: ${e?.constructor?.name}: ${e?.message}`);
      throw Object.assign(new Error(`${desc}: ${e.message}`), { code: e.code });
    } finally {
      await t?.close();
    }
    if (verify && dataFlip) throw new Error(`${desc}: resumed from a checkpoint whose data fails its checksum`);
    return null;
  };
  return { name: 'resume', text: `resume(bf16 channels-last checkpoint, damage ${['cut', 'flips', 'header flip', 'data flip', 'metadata'][how]}, verify ${verify})`, run, made: g.made };
}
