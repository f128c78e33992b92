// The fuzzed surface: one generator per entry point. Each returns { name, run, check? }:
// run() makes the call (the arguments are already built and described), check(result) is the
// float64 oracle of a call built valid (returns a message on a mismatch, else null).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, makeGen, reference } from './gen.mjs';
import { recentEntries } from './calls-recent.mjs';

/** A Tensor that is not disposed (false for a Proxy or an Object.create look-alike, whose getters throw). */
export function live(t) {
  try {
    return t !== null && typeof t === 'object' && !t.disposed && Array.isArray(t.shape);
  } catch {
    return false;
  }
}

let scratchDir = null;
/** A temporary folder for this child's checkpoint files (removed by the child at exit). */
export function scratch() {
  scratchDir ??= mkdtempSync(join(tmpdir(), 'alexnet-fuzz-'));
  return scratchDir;
}
export const scratchPath = () => scratchDir;

const damage = new WeakMap();
const describeDamage = (b) => damage.get(b) ?? '';

/** A small checkpoint's bytes, damaged in one of several ways (the way is kept for the report). */
function damagedCheckpoint(lib, g) {
  const meta = {
    format: 'alexnet-node/1',
    step: g.pick(['3', '-1', 'NaN', '1e300', 'x']),
    epoch: '1',
    config: g.pick(['{}', '{"model":{"numClasses":2}}', '{"model":{"numClasses":1e6}}', 'null', '{']),
    optimizer: g.pick(['{"lr":0.1}', '{"lr":"NaN"}', '{}', '[']),
  };
  const weights = { 'fc.weight': { dtype: 'F32', shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 7) }, 'fc.bias': { dtype: 'F32', shape: [3], data: new Float32Array(3) } };
  let bytes = new Uint8Array(lib.serializeSafetensors(weights, meta));
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  let how = 'valid';
  switch (g.int(0, 5)) {
    case 0: break;
    case 1: { // flip bytes anywhere
      const k = g.int(1, 4);
      for (let i = 0; i < k; i++) bytes[g.int(0, bytes.length - 1)] ^= 1 << g.int(0, 7);
      how = `${k} bit flips`;
      break;
    }
    case 2: { // cut
      const at = g.int(0, bytes.length - 1);
      bytes = bytes.slice(0, at);
      how = `cut at ${at}`;
      break;
    }
    case 3: { // a hostile header length
      const v = g.pick([0n, 1n, 7n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n, BigInt(n + 1), BigInt(n - 1)]);
      new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(0, v, true);
      how = `header length ${v}`;
      break;
    }
    default: { // a rewritten header: hostile shapes, offsets, dtypes, names
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
      const t = header[g.pick(['fc.weight', 'fc.bias'])];
      const field = g.pick(['shape', 'data_offsets', 'dtype', 'name', 'extra', 'metadata']);
      if (field === 'shape') t.shape = g.pick([[2 ** 40, 1], [65536, 65536, 65536, 65536], [-1, 3], [1.5], ['3'], null, [], [0], [1, 2 ** 31]]);
      else if (field === 'data_offsets') t.data_offsets = g.pick([[0, 2 ** 40], [-4, 8], [8, 4], [0, 1e300], [null, 4], [0], 'x', [0, 48]]);
      else if (field === 'dtype') t.dtype = g.pick(['F64', 'U8', 'BOOL', 'F16', '', 7, null]);
      else if (field === 'name') header[g.pick(['', '__proto__', 'constructor', 'fc.weight\u0000', 'a'.repeat(300)])] = { ...t };
      else if (field === 'extra') header['big'] = { dtype: 'F32', shape: [2 ** 30, 2 ** 30], data_offsets: [0, 2 ** 62] };
      else header.__metadata__ = g.pick([null, [], 'x', { step: 5 }, { format: 7 }]);
      const h = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(8 + h.length + (bytes.length - 8 - n));
      new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
      out.set(h, 8);
      out.set(bytes.subarray(8 + n), 8 + h.length);
      bytes = out;
      how = `header ${field} rewritten: ${JSON.stringify(header).slice(0, 200)}`;
    }
  }
  damage.set(bytes, `[${how}; metadata ${JSON.stringify(meta)}]`);
  return bytes;
}

// bfloat16 by value: a pattern h is float32's top half
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
const bfValue = (h) => ((u32[0] = (h & 0xffff) << 16), f32[0]);
/** bfloat16 -> float32 is exact */
const checkWiden = (h, x) => (Object.is(x, bfValue(h)) || (Number.isNaN(x) && Number.isNaN(bfValue(h))) ? null : `bf16 0x${h.toString(16)} widened to ${x}`);
/** float32 -> bfloat16: the nearest of the two patterns around x, the even one on a tie; NaN stays NaN */
function checkRound(x, h) {
  const v = bfValue(h);
  if (Number.isNaN(x)) return Number.isNaN(v) ? null : `NaN rounded to ${v}`;
  f32[0] = x;
  const lo = u32[0] >>> 16; // truncated toward zero
  // b: the next pattern away from zero; past the largest finite, rounding measures to 2^128
  const a = bfValue(lo), b = (lo & 0x7fff) === 0x7f7f ? Math.sign(x) * 2 ** 128 : bfValue(lo + 1);
  const da = Math.abs(x - a), db = Math.abs(b - x);
  const want = da < db ? lo : db < da ? lo + 1 : (lo & 1) === 0 ? lo : lo + 1;
  return (h & 0xffff) === (want & 0xffff) ? null : `${x} rounded to 0x${h.toString(16)}, expected 0x${(want & 0xffff).toString(16)}`;
}

const closeTo = (got, want, tol) => {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) !== Number.isNaN(g)) return `element ${i}: ${g}, expected ${w}`;
    if (Number.isNaN(w)) continue;
    if (!Number.isFinite(w)) { if (g !== w) return `element ${i}: ${g}, expected ${w}`; continue; }
    if (Math.abs(g - w) > tol * (1 + Math.abs(w))) return `element ${i}: ${g}, expected ${w}`;
  }
  return null;
};

/** Builds call `index` from rnd. Returns { name, text, run, check }. */
export function buildCall(lib, rnd) {
  const g = makeGen(lib, rnd);
  const { Tensor } = lib;
  const d = g.desc;
  const call = (name, fn, args, extra = {}) => ({
    name,
    text: name === 'parseSafetensors' ? `parseSafetensors(${d(args[0])} ${describeDamage(args[0])})` : `${name}(${args.map(d).join(', ')})`,
    run: () => fn(...args),
    made: g.made,
    ...extra,
  });
  const tensorList = (x) => (x === null ? [] : Array.isArray(x) ? x : [x]);
  void tensorList;

  /** A collective's oracle in a world of one (no mpirun): it returns its tensor, left as it was. */
  const leftAsIs = (name, t) => {
    const before = t.dataSync().slice();
    return {
      async check(y) {
        if (y !== t) return `${name} did not return its tensor`;
        return closeTo(await y.data(), before, 0);
      },
    };
  };

  const entries = {
    conv2d() {
      const x = g.anyTensor(g.nchwMaybe());
      const wshape = g.chance(0.8) ? [g.int(0, 6), g.int(0, 6), g.int(0, 5), g.int(0, 5)] : g.smallShape();
      const w = g.anyTensor(wshape);
      const b = g.chance(0.4) ? null : g.anyTensor(g.chance(0.8) ? [wshape[0] ?? 1] : g.smallShape());
      const o = g.opts((o) => {
        g.maybeKey(o, 'stride', g.pair, 0.5);
        g.maybeKey(o, 'padding', g.pair, 0.5);
        g.maybeKey(o, 'dilation', g.pair, 0.3);
        g.maybeKey(o, 'groups', g.smallOrAbsurd, 0.3);
        g.maybeKey(o, 'relu', () => g.pick([true, false, 1, 'yes', null]), 0.2);
      });
      return call('conv2d', lib.conv2d, [x, w, b, o]);
    },
    conv2dBackward() {
      const N = g.int(0, 3), C = g.int(0, 4), H = g.int(0, 6), W = g.int(0, 6), O = g.int(0, 4), kh = g.int(0, 3), kw = g.int(0, 3);
      const Ho = g.chance(0.7) ? Math.max(0, H - kh + 1) : g.int(0, 6), Wo = g.chance(0.7) ? Math.max(0, W - kw + 1) : g.int(0, 6);
      const x = g.anyTensor([N, C, H, W]);
      const w = g.anyTensor([O, C, kh, kw]);
      const dy = g.chance(0.2) ? x : g.anyTensor([N, O, Ho, Wo]);
      const o = g.opts((o) => {
        g.maybeKey(o, 'stride', g.pair, 0.3);
        g.maybeKey(o, 'padding', g.pair, 0.3);
        g.maybeKey(o, 'groups', g.smallOrAbsurd, 0.2);
        g.maybeKey(o, 'computeGradInput', () => g.pick([true, false, 0, null]), 0.3);
        g.maybeKey(o, 'computeGradBias', () => g.pick([true, false, 'no']), 0.3);
        g.maybeKey(o, 'accumulate', () => g.pick([true, false, 1]), 0.3);
        // outputs: fresh, wrong shape, or aliasing an input (issue 11 item 6)
        g.maybeKey(o, 'gradWeight', () => (g.chance(0.3) ? g.pick([w, x, dy]) : g.anyTensor([O, C, kh, kw])), 0.3);
        g.maybeKey(o, 'gradBias', () => (g.chance(0.3) ? g.pick([w, dy]) : g.anyTensor([O])), 0.3);
      });
      return call('conv2dBackward', lib.conv2dBackward, [dy, x, w, o]);
    },
    maxPool2d() {
      const x = g.anyTensor(g.nchwMaybe());
      const o = g.opts((o) => {
        g.maybeKey(o, 'kernelSize', g.pair, 0.9);
        g.maybeKey(o, 'stride', g.pair, 0.4);
        g.maybeKey(o, 'padding', g.pair, 0.3);
      });
      return call('maxPool2d', lib.maxPool2d, [x, o]);
    },
    maxPool2dBackward() {
      const s = g.nchw();
      const x = g.anyTensor(s);
      const k = g.int(1, 3);
      const os = g.chance(0.7) ? [s[0], s[1], Math.floor(s[2] / k), Math.floor(s[3] / k)] : g.nchwMaybe();
      const y = g.anyTensor(os);
      const dy = g.chance(0.8) ? g.anyTensor(os) : g.anyTensor();
      const o = g.opts((o) => {
        o.kernelSize = g.chance(0.8) ? k : g.pair();
        g.maybeKey(o, 'stride', g.pair, 0.3);
        g.maybeKey(o, 'padding', g.pair, 0.2);
      });
      return call('maxPool2dBackward', lib.maxPool2dBackward, [dy, x, y, o]);
    },
    localResponseNorm() {
      const x = g.anyTensor(g.nchwMaybe());
      const o = g.opts((o) => {
        g.maybeKey(o, 'size', () => (g.chance(0.7) ? g.int(0, 17) : g.anyValue()), 0.9);
        g.maybeKey(o, 'alpha', g.anyValue, 0.3);
        g.maybeKey(o, 'beta', g.anyValue, 0.3);
        g.maybeKey(o, 'k', () => g.pick([1, 2, 1e-5, 1e-10, 0, -1, 1e300, NaN, 3.5e38]), 0.3);
      });
      return call('localResponseNorm', lib.localResponseNorm, [x, o]);
    },
    localResponseNormBackward() {
      const s = g.nchwMaybe();
      const o = g.opts((o) => {
        g.maybeKey(o, 'size', () => (g.chance(0.7) ? g.int(0, 17) : g.anyValue()), 0.9);
        g.maybeKey(o, 'alpha', g.anyValue, 0.2);
        g.maybeKey(o, 'beta', g.anyValue, 0.2);
        g.maybeKey(o, 'k', () => g.pick([1, 2, 1e-5, 1e-10, 0, -1, 1e300, NaN]), 0.2);
      });
      const x = g.anyTensor(s);
      return call('localResponseNormBackward', lib.localResponseNormBackward, [g.anyTensor(g.chance(0.8) ? s : undefined), x, g.anyTensor(g.chance(0.8) ? s : undefined), o]);
    },
    relu() {
      if (g.chance(0.5)) {
        const s = g.smallShape();
        const x = g.tensorOf(s);
        const xs = x.dataSync();
        return call('relu', lib.relu, [x], {
          async check(y) {
            if (!(y instanceof Tensor)) return 'not a tensor';
            if (y.shape.join() !== s.join()) return `shape [${y.shape}], expected [${s}]`;
            return closeTo(await y.data(), reference.relu(xs), 0);
          },
        });
      }
      return call('relu', lib.relu, [g.anyTensor()]);
    },
    reluBackward() {
      const s = g.smallShape();
      return call('reluBackward', lib.reluBackward, [g.anyTensor(g.chance(0.8) ? s : undefined), g.anyTensor(s)]);
    },
    linear() {
      if (g.chance(0.4)) {
        const B = g.int(0, 6), I = g.int(0, 8), O = g.int(0, 6);
        const x = g.tensorOf([B, I], 'float32', true), w = g.tensorOf([O, I], 'float32', true), b = g.chance(0.5) ? g.tensorOf([O], 'float32', true) : null;
        const [xs, ws, bs] = [x.dataSync(), w.dataSync(), b?.dataSync()];
        return call('linear', lib.linear, [x, w, b], {
          async check(y) {
            if (y.shape.join() !== [B, O].join()) return `shape [${y.shape}], expected [${B},${O}]`;
            const { c, K } = reference.matmul(xs, [B, I], ws, [O, I], false, true);
            if (bs) for (let i = 0; i < B; i++) for (let j = 0; j < O; j++) c[i * O + j] += bs[j];
            return closeTo(await y.data(), c, 1e-5 * Math.max(1, K));
          },
        });
      }
      const B = g.int(0, 6), I = g.int(0, 8), O = g.int(0, 6);
      const b = g.chance(0.3) ? null : g.chance(0.3) ? undefined : g.anyTensor([O]);
      return call('linear', lib.linear, [g.anyTensor([B, I]), g.anyTensor(g.chance(0.8) ? [O, I] : undefined), b]);
    },
    linearBackward() {
      const B = g.int(0, 6), I = g.int(0, 8), O = g.int(0, 6);
      const x = g.anyTensor([B, I]), w = g.anyTensor([O, I]);
      const dy = g.chance(0.1) ? x : g.anyTensor([B, O]);
      const o = g.opts((o) => {
        g.maybeKey(o, 'computeGradInput', () => g.pick([true, false, 0, null]), 0.3);
        g.maybeKey(o, 'computeGradBias', () => g.pick([true, false, 'no']), 0.3);
        g.maybeKey(o, 'accumulate', () => g.pick([true, false, 1]), 0.3);
        g.maybeKey(o, 'gradWeight', () => (g.chance(0.3) ? g.pick([w, x, dy]) : g.anyTensor([O, I])), 0.3);
        g.maybeKey(o, 'gradBias', () => (g.chance(0.3) ? g.pick([w, dy]) : g.anyTensor([O])), 0.3);
      });
      return call('linearBackward', lib.linearBackward, [dy, x, w, o]);
    },
    matmul() {
      if (g.chance(0.4)) {
        const M = g.int(0, 7), K = g.int(0, 9), N = g.int(0, 7), tA = g.chance(0.5), tB = g.chance(0.5);
        const as = tA ? [K, M] : [M, K], bs = tB ? [N, K] : [K, N];
        const a = g.tensorOf(as, 'float32', true), b = g.tensorOf(bs, 'float32', true);
        const [ad, bd] = [a.dataSync(), b.dataSync()];
        return call('matmul', lib.matmul, [a, b, { transA: tA, transB: tB }], {
          async check(c) {
            if (c.shape.join() !== [M, N].join()) return `shape [${c.shape}], expected [${M},${N}]`;
            return closeTo(await c.data(), reference.matmul(ad, as, bd, bs, tA, tB).c, 1e-5 * Math.max(1, K));
          },
        });
      }
      const o = g.opts((o) => {
        g.maybeKey(o, 'transA', () => g.pick([true, false, 1, 'x', null]), 0.4);
        g.maybeKey(o, 'transB', () => g.pick([true, false, 1, 'x', null]), 0.4);
      });
      return call('matmul', lib.matmul, [g.anyTensor(g.chance(0.7) ? g.smallShape(2) : undefined), g.anyTensor(g.chance(0.7) ? g.smallShape(2) : undefined), o]);
    },
    dropout() {
      const o = g.opts((o) => {
        g.maybeKey(o, 'p', () => g.pick([0, 0.5, 0.99, 1, -0.1, 1.5, NaN, Infinity, '0.5', null]), 0.9);
        g.maybeKey(o, 'seed', () => g.pick([0, 1, 42, -1, 2 ** 32, 2 ** 53, 1.5, NaN, 1e300, '1']), 0.8);
        g.maybeKey(o, 'offset', () => g.pick([0, 5, -1, 2 ** 53, 2 ** 60, NaN, 1e300, 0.5]), 0.4);
      });
      return call('dropout', lib.dropout, [g.anyTensor(), o]);
    },
    dropoutBackward() {
      const s = g.smallShape();
      return call('dropoutBackward', lib.dropoutBackward, [g.anyTensor(s), g.anyTensor(g.chance(0.8) ? s : undefined)]);
    },
    softmax() {
      return call('softmax', lib.softmax, [g.anyTensor(g.chance(0.7) ? g.smallShape(2) : undefined)]);
    },
    softmaxCrossEntropy() {
      const B = g.int(0, 6), C = g.int(0, 8);
      return call('softmaxCrossEntropy', lib.softmaxCrossEntropy, [g.anyTensor([B, C]), g.anyTensor(g.chance(0.8) ? [B] : undefined, 'int32')]);
    },
    sgdStep() {
      const s = g.smallShape();
      const p = g.anyTensor(s);
      const grad = g.chance(0.1) ? p : g.anyTensor(g.chance(0.8) ? s : undefined);
      const m = g.chance(0.3) ? null : g.chance(0.1) ? p : g.anyTensor(g.chance(0.8) ? s : undefined);
      const o = g.opts((o) => {
        g.maybeKey(o, 'lr', () => g.pick([0.1, 0, -1, NaN, Infinity, 1e300, '0.1', null]), 0.9);
        g.maybeKey(o, 'momentum', () => g.pick([0, 0.9, -1, 1, 2, NaN]), 0.5);
        g.maybeKey(o, 'dampening', () => g.pick([0, 0.1, -1, NaN]), 0.3);
        g.maybeKey(o, 'weightDecay', () => g.pick([0, 5e-4, -1, NaN, Infinity]), 0.4);
        g.maybeKey(o, 'nesterov', () => g.pick([true, false, 1]), 0.3);
        g.maybeKey(o, 'convention', () => g.pick(['pytorch', 'krizhevsky', 'keras', '', 1]), 0.3);
        g.maybeKey(o, 'firstStep', () => g.pick([true, false, 'x']), 0.3);
      });
      return call('sgdStep', lib.sgdStep, [p, grad, m, o]);
    },
    topkCorrect() {
      const B = g.int(0, 6), C = g.int(0, 8);
      const k = g.chance(0.7) ? g.int(0, 9) : g.anyValue();
      return call('topkCorrect', lib.topkCorrect, [g.anyTensor([B, C]), g.anyTensor(g.chance(0.8) ? [B] : undefined, 'int32'), k]);
    },
    fill() {
      return call('fill', lib.fill, [g.anyTensor(undefined, g.pick(['float32', 'int32'])), g.chance(0.5) ? g.int(-5, 5) : g.anyValue()]);
    },
    copy() {
      const s = g.smallShape();
      const dst = g.anyTensor(s, g.pick(['float32', 'int32']));
      return call('copy', lib.copy, [dst, g.chance(0.1) ? dst : g.anyTensor(g.chance(0.8) ? s : undefined, g.pick(['float32', 'int32']))]);
    },
    scale() {
      if (g.chance(0.4)) {
        const t = g.tensorOf(g.smallShape());
        const a = g.pick([0, 1, -2, 0.5, 3.25]);
        const before = t.dataSync();
        return call('scale', lib.scale, [t, a], {
          async check() {
            return closeTo(await t.data(), Float64Array.from(before, (v) => Math.fround(v * a)), 0);
          },
        });
      }
      return call('scale', lib.scale, [g.anyTensor(), g.anyValue()]);
    },
    axpy() {
      if (g.chance(0.4)) {
        const s = g.smallShape();
        const y = g.tensorOf(s, 'float32', true), x = g.tensorOf(s, 'float32', true);
        const a = g.pick([0, 1, -2, 0.5, 3.25]);
        const [yd, xd] = [y.dataSync(), x.dataSync()];
        return call('axpy', lib.axpy, [y, a, x], {
          async check() {
            // y + a*x in float64, allowing one float32 rounding of each term (an FMA or not)
            return closeTo(await y.data(), Float64Array.from(yd, (v, i) => v + a * xd[i]), 2 ** -22);
          },
        });
      }
      const s = g.smallShape();
      return call('axpy', lib.axpy, [g.anyTensor(s), g.anyValue(), g.anyTensor(g.chance(0.8) ? s : undefined)]);
    },
    normalizeImages() {
      const s = g.chance(0.7) ? [g.int(0, 3), g.int(0, 4), g.int(0, 6), g.int(0, 6)] : g.chance(0.5) ? g.hostileShape() : g.smallShape();
      const n = s.every((v) => Number.isInteger(v) && v >= 0) ? s.reduce((a, b) => a * b, 1) : 4;
      const len = n <= 100_000 ? (g.chance(0.8) ? n : g.int(0, 20)) : g.int(0, 20);
      const px = g.chance(0.1) ? g.junk() : g.chance(0.1) ? new Uint8Array(new SharedArrayBuffer(len)) : new Uint8Array(len);
      const ch = () => (g.chance(0.8) ? Array.from({ length: Number.isInteger(s[1]) && s[1] >= 0 && s[1] <= 8 ? s[1] : 3 }, () => g.pick([0.5, 0.2, 0, -1, NaN, 1e-40, Infinity])) : g.junk());
      const o = g.opts((o) => {
        g.maybeKey(o, 'mean', ch, 0.9);
        g.maybeKey(o, 'std', ch, 0.9);
        g.maybeKey(o, 'device', () => g.pick(['cpu', 'cuda', 'cuda:0', 'cuda:-1', 'tpu', 3, null]), 0.2);
      });
      return call('normalizeImages', lib.normalizeImages, [px, s, o]);
    },
    // ---- the checkpoint reader: a small valid checkpoint, then damaged (bytes flipped, cut,
    // header fields replaced with hostile values). Declared sizes stay tiny or absurd
    // (>= 2**40 bytes) so a reader that trusted them would fail rather than allocate gigabytes.
    parseSafetensors() {
      return call('parseSafetensors', lib.parseSafetensors, [damagedCheckpoint(lib, g)]);
    },
    loadCheckpoint() {
      const bytes = damagedCheckpoint(lib, g);
      const path = join(scratch(), `ck-${process.pid}.safetensors`);
      writeFileSync(path, bytes);
      const expect = g.chance(0.3) ? { 'fc.weight': g.pick([[3, 4], [4, 3], [2 ** 40, 1], [-1]]) } : undefined;
      return call('loadCheckpoint', lib.loadCheckpoint, [path, expect === undefined ? {} : { expect }], { text: `loadCheckpoint(${g.desc(bytes)} ${describeDamage(bytes)})` });
    },
    // ---- the Tensor API
    from() {
      const r = g.rnd();
      const dtype = g.pick(['float32', 'int32', 'float32', 'bfloat16', 'float64', 'uint8', '', null, undefined]);
      let shape, data;
      if (r < 0.2) {
        shape = g.hostileShape();
        data = g.pick([new Float32Array(0), new Float32Array(4), [], [1, 2]]);
      } else {
        shape = g.chance(0.1) ? g.junk() : g.smallShape();
        const n = Array.isArray(shape) ? shape.reduce((a, b) => a * b, 1) : 4;
        const len = g.chance(0.8) && n <= 300_000 ? n : g.int(0, 10);
        data = g.pick([
          () => new Float32Array(len),
          () => new Int32Array(len),
          () => Array.from({ length: len }, () => g.pick([1, 2.5, NaN, Infinity, -1, 3e9, 2 ** 32 + 5, 1e300])),
          () => Array.from({ length: len }, () => g.pick(['a', null, undefined, {}, 1])),
          () => new BigInt64Array(len),
          () => new Float64Array(len),
          () => new Uint8Array(len),
          () => Uint16Array.from({ length: len }, () => g.int(0, 0xffff)),
          () => new Float32Array(new SharedArrayBuffer(len * 4)),
          () => g.junk(),
        ])();
      }
      const o = g.chance(0.3) ? g.junk() : { dtype, ...(g.chance(0.2) ? { device: g.pick(['cpu', 'cuda', 'gpu', 1]) } : {}) };
      return call('Tensor.from', Tensor.from.bind(Tensor), [data, shape, o]);
    },
    empty() {
      const shape = g.chance(0.3) ? g.hostileShape() : g.chance(0.1) ? g.junk() : g.smallShape();
      const o = g.chance(0.3) ? g.junk() : { dtype: g.pick(['float32', 'int32', 'float16', 7]) };
      return call('Tensor.empty', Tensor.empty.bind(Tensor), [shape, o]);
    },
    zeros() {
      const shape = g.chance(0.3) ? g.hostileShape() : g.chance(0.1) ? g.junk() : g.smallShape();
      const o = g.chance(0.3) ? g.junk() : { dtype: g.pick(['float32', 'int32', 'bool']) };
      return call('Tensor.zeros', Tensor.zeros.bind(Tensor), [shape, o]);
    },
    full() {
      const shape = g.chance(0.3) ? g.hostileShape() : g.chance(0.1) ? g.junk() : g.smallShape();
      const o = g.chance(0.3) ? g.junk() : { dtype: g.pick(['float32', 'int32', 'x']) };
      return call('Tensor.full', Tensor.full.bind(Tensor), [shape, g.anyValue(), o]);
    },
    view() {
      const t = g.receiver(g.pick(['float32', 'int32']));
      const off = g.chance(0.7) ? g.int(0, 8) : g.pick([-1, NaN, 1.5, 2 ** 31, 2 ** 53, 1e300, '1', null]);
      const shape = g.chance(0.3) ? g.hostileShape() : g.chance(0.1) ? g.junk() : g.smallShape();
      return call('view', (x, ...a) => Tensor.prototype.view.call(x, ...a), [t, off, shape]);
    },
    reshape() {
      const t = g.receiver(g.pick(['float32', 'int32']));
      const n = live(t) && g.chance(0.5) ? t.numel : -1;
      const shape = n >= 0 ? (g.chance(0.5) ? [n] : [1, n, 1]) : g.chance(0.3) ? g.hostileShape() : g.chance(0.2) ? g.junk() : g.smallShape();
      return call('reshape', (x, s) => Tensor.prototype.reshape.call(x, s), [t, shape]);
    },
    data() {
      const t = g.receiver(g.pick(['float32', 'int32']));
      return call('data', (x) => Tensor.prototype.data.call(x), [t]);
    },
    dataSync() {
      const t = g.receiver(g.pick(['float32', 'int32']));
      return call('dataSync', (x) => Tensor.prototype.dataSync.call(x), [t]);
    },
    // The communicator of a world of one (no mpirun): collectives leave a valid tensor as it is.
    allReduce() {
      const valid = g.chance(0.4);
      const t = valid ? g.tensorOf(g.smallShape(), 'float32', true) : g.anyTensor(undefined, g.pick(['float32', 'int32']));
      const op = valid ? g.pick(['sum', 'avg', undefined]) : g.chance(0.5) ? g.pick(['sum', 'avg', 'max', 'mean', '', 'SUM']) : g.junk();
      return call('allReduce', async (x, o) => (await lib.initDistributed()).allReduce(x, o), [t, op], valid ? leftAsIs('allReduce', t) : {});
    },
    allReduceAsync() {
      const valid = g.chance(0.4);
      const t = valid ? g.tensorOf(g.smallShape(), 'float32', true) : g.anyTensor(undefined, g.pick(['float32', 'int32']));
      const op = valid ? g.pick(['sum', 'avg', undefined]) : g.chance(0.5) ? g.pick(['max', '', 'AVG']) : g.junk();
      const wait = g.chance(0.8);
      const run = async (x, o) => {
        const work = (await lib.initDistributed()).allReduceAsync(x, o);
        if (wait) work.wait();
        return x;
      };
      return call(`allReduceAsync${wait ? '+wait' : ''}`, run, [t, op], valid ? leftAsIs('allReduceAsync', t) : {});
    },
    broadcast() {
      const valid = g.chance(0.4);
      const t = valid ? g.tensorOf(g.smallShape(), g.pick(['float32', 'int32']), true) : g.anyTensor(undefined, g.pick(['float32', 'int32']));
      const root = valid ? g.pick([0, undefined]) : g.pick([1, -1, NaN, 1.5, 2 ** 31, 2 ** 53, '0', null, g.junk()]);
      return call('broadcast', async (x, r) => (await lib.initDistributed()).broadcast(x, r), [t, root], valid ? leftAsIs('broadcast', t) : {});
    },
    // dtype conversion: float32 <-> bfloat16 checked by value (the nearest bfloat16, ties to
    // the even pattern; back to float32 exactly), anything else must be refused with a code
    to() {
      const from = g.pick(['float32', 'bfloat16', 'int32']);
      const t = g.chance(0.85) ? g.tensorOf(g.smallShape(), from) : g.receiver(from);
      const target = g.chance(0.85) ? g.pick(['float32', 'bfloat16']) : g.pick(['int32', 'float16', 'bool', '', g.junk()]);
      const valid = live(t) && t.device === 'cpu' && ((from === 'float32' && target === 'bfloat16') || (from === 'bfloat16' && target === 'float32') || from === target && from !== 'int32');
      const src = valid ? t.dataSync().slice() : null;
      return call('to', (x, d) => Tensor.prototype.to.call(x, d), [t, target], valid ? {
        async check(y) {
          if (y === t) return 'to() returned its receiver, not a copy';
          if (y.dtype !== target || y.shape.join() !== t.shape.join()) return `got ${y.dtype} [${y.shape}]`;
          const got = await y.data();
          for (let i = 0; i < src.length; i++) {
            const msg = from === target ? (Object.is(got[i], src[i]) || (Number.isNaN(got[i]) && Number.isNaN(src[i])) ? null : 'the copy differs')
              : target === 'float32' ? checkWiden(src[i], got[i]) : checkRound(src[i], got[i]);
            if (msg) return `element ${i}: ${msg}`;
          }
          return null;
        },
      } : {});
    },
    memoryStats() {
      const device = g.chance(0.6) ? 'cpu' : g.pick(['cuda', 'cuda:0', 'cuda:7', 'gpu', '', 'cpu:1', g.junk()]);
      const o = g.chance(0.7) ? { resetPeak: g.pick([true, false, undefined]) } : g.chance(0.5) ? { resetPeak: g.junk() } : g.junk();
      return call('memoryStats', lib.memoryStats, [device, o]);
    },
    barrier() {
      return call('barrier', async () => (await lib.initDistributed()).barrier(), []);
    },
    DistributedSampler() {
      const valid = g.chance(0.5);
      const n = valid ? g.int(0, 50) : g.pick([-1, NaN, 1.5, 2 ** 32, 2 ** 53, 1e300, '5', null, { length: 2 ** 40 }, { length: -1 }, g.junk()]);
      const worldSize = valid ? g.int(1, 5) : g.pick([0, -1, NaN, 2 ** 31, 1e300, '2', null, g.int(1, 5)]);
      const rank = valid ? g.int(0, worldSize - 1) : g.pick([0, -1, 7, NaN, 1.5, '0', undefined]);
      const opts = !valid && g.chance(0.1) ? g.junk() : { worldSize, rank, seed: valid ? g.int(0, 1000) : g.pick([0, -1, NaN, 2 ** 60, 'x', undefined]), dropLast: g.chance(0.3), shuffle: g.chance(0.8) };
      const epoch = valid ? g.int(0, 5) : g.pick([0, -1, NaN, 1.5, 2 ** 53, 'x', undefined]);
      const run = (d, o, e) => new lib.DistributedSampler(d, o).indices(e);
      return call('DistributedSampler', run, [n, opts, epoch], valid ? {
        async check(idx) {
          // every rank's shard from the same options: disjoint (up to the padding), covering, in range
          const all = [];
          for (let r = 0; r < worldSize; r++) all.push(...new lib.DistributedSampler(n, { ...opts, rank: r }).indices(epoch));
          if (idx.join() !== new lib.DistributedSampler(n, opts).indices(epoch).join()) return 'the same options gave another shard';
          if (all.some((i) => !Number.isInteger(i) || i < 0 || i >= n)) return `an index out of [0, ${n})`;
          const seen = new Set(all);
          const per = opts.dropLast && n % worldSize !== 0 ? Math.ceil((n - worldSize) / worldSize) : Math.ceil(n / worldSize);
          if (all.length !== per * worldSize) return `${all.length} indices over the ranks, expected ${per * worldSize}`;
          if (!opts.dropLast && seen.size !== n) return `the shards cover ${seen.size} of ${n}`;
          if (seen.size !== Math.min(n, all.length)) return 'shards overlap beyond the padding';
          return null;
        },
      } : {});
    },
    dispose() {
      const t = g.receiver('float32');
      return call('dispose', (x) => { Tensor.prototype.dispose.call(x); Tensor.prototype.dispose.call(x); }, [t]);
    },
  };
  g.rnd = rnd;
  // the surface added in sessions 8 and 9 (bfloat16, channels last, counters, switches, models)
  Object.assign(entries, recentEntries(lib, g, call));
  // FUZZ_ONLY=name,name...: draw from those entries only (long runs aimed at part of the surface)
  const only = process.env.FUZZ_ONLY ? new Set(process.env.FUZZ_ONLY.split(',')) : null;
  const names = Object.keys(entries).filter((n) => only === null || only.has(n));
  const name = names[Math.floor(rnd() * names.length)];
  return entries[name]();
}

export { describe };
