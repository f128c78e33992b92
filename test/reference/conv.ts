// Independent float64 reference for conv2d: naive loops straight from the definition
// y[n,o,oh,ow] = b[o] + sum_{c in group(o), kh, kw} x[n, c, oh*s - p + kh*d, ow*s - p + kw*d] w[o, c', kh, kw]
// (zero outside the input). No im2col, no GEMM: the structure differs from the native kernel.

export interface ConvGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  kH: number;
  kW: number;
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** A square k x k, stride-1, undilated, ungrouped layer (the Winograd-shaped cases of the tests). */
export interface SquareConvCase {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  k: number;
  padding: [number, number];
  bias?: boolean;
}

export const squareGeometry = (c: SquareConvCase): ConvGeometry => ({
  N: c.N, C: c.C, H: c.H, W: c.W, O: c.O, kH: c.k, kW: c.k,
  stride: [1, 1], padding: c.padding, dilation: [1, 1], groups: 1,
});

export function convOutSize(g: ConvGeometry): [number, number] {
  const Ho = Math.floor((g.H + 2 * g.padding[0] - g.dilation[0] * (g.kH - 1) - 1) / g.stride[0]) + 1;
  const Wo = Math.floor((g.W + 2 * g.padding[1] - g.dilation[1] * (g.kW - 1) - 1) / g.stride[1]) + 1;
  return [Ho, Wo];
}

/** One output element. */
export function conv2dAt(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number> | null,
  g: ConvGeometry,
  n: number,
  o: number,
  oh: number,
  ow: number,
): number {
  const Cg = g.C / g.groups;
  const Og = g.O / g.groups;
  const grp = Math.floor(o / Og);
  let s = b ? b[o]! : 0;
  for (let cg = 0; cg < Cg; cg++) {
    const c = grp * Cg + cg;
    for (let kh = 0; kh < g.kH; kh++) {
      const ih = oh * g.stride[0] - g.padding[0] + kh * g.dilation[0];
      if (ih < 0 || ih >= g.H) continue;
      for (let kw = 0; kw < g.kW; kw++) {
        const iw = ow * g.stride[1] - g.padding[1] + kw * g.dilation[1];
        if (iw < 0 || iw >= g.W) continue;
        s += x[((n * g.C + c) * g.H + ih) * g.W + iw]! * w[((o * Cg + cg) * g.kH + kh) * g.kW + kw]!;
      }
    }
  }
  return s;
}

/** The whole output [N, O, Ho, Wo] in float64. */
export function conv2dRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, g: ConvGeometry): Float64Array {
  const [Ho, Wo] = convOutSize(g);
  const y = new Float64Array(g.N * g.O * Ho * Wo);
  let i = 0;
  for (let n = 0; n < g.N; n++)
    for (let o = 0; o < g.O; o++)
      for (let oh = 0; oh < Ho; oh++) for (let ow = 0; ow < Wo; ow++) y[i++] = conv2dAt(x, w, b, g, n, o, oh, ow);
  return y;
}

/**
 * Analytic gradients by scattering each output gradient back along the forward sum
 * (dx and dw accumulate dy * the other factor for every term of every output).
 */
export function conv2dBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  g: ConvGeometry,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const [Ho, Wo] = convOutSize(g);
  const Cg = g.C / g.groups;
  const Og = g.O / g.groups;
  const dx = new Float64Array(g.N * g.C * g.H * g.W);
  const dw = new Float64Array(g.O * Cg * g.kH * g.kW);
  const db = new Float64Array(g.O);
  for (let n = 0; n < g.N; n++)
    for (let o = 0; o < g.O; o++) {
      const grp = Math.floor(o / Og);
      for (let oh = 0; oh < Ho; oh++)
        for (let ow = 0; ow < Wo; ow++) {
          const gy = dy[((n * g.O + o) * Ho + oh) * Wo + ow]!;
          db[o]! += gy;
          for (let cg = 0; cg < Cg; cg++) {
            const c = grp * Cg + cg;
            for (let kh = 0; kh < g.kH; kh++) {
              const ih = oh * g.stride[0] - g.padding[0] + kh * g.dilation[0];
              if (ih < 0 || ih >= g.H) continue;
              for (let kw = 0; kw < g.kW; kw++) {
                const iw = ow * g.stride[1] - g.padding[1] + kw * g.dilation[1];
                if (iw < 0 || iw >= g.W) continue;
                const xi = ((n * g.C + c) * g.H + ih) * g.W + iw;
                const wi = ((o * Cg + cg) * g.kH + kh) * g.kW + kw;
                dx[xi]! += gy * w[wi]!;
                dw[wi]! += gy * x[xi]!;
              }
            }
          }
        }
    }
  return { dx, dw, db };
}

/** dW[o, cg, kh, kw] alone: sum over n, oh, ow of dy * x (for large shapes, at sampled entries). */
export function gradWeightAt(dy: ArrayLike<number>, x: ArrayLike<number>, g: ConvGeometry, wi: number): number {
  const [Ho, Wo] = convOutSize(g);
  const Cg = g.C / g.groups;
  const kw = wi % g.kW;
  const kh = Math.floor(wi / g.kW) % g.kH;
  const cg = Math.floor(wi / (g.kW * g.kH)) % Cg;
  const o = Math.floor(wi / (g.kW * g.kH * Cg));
  const c = Math.floor(o / (g.O / g.groups)) * Cg + cg;
  let s = 0;
  for (let n = 0; n < g.N; n++)
    for (let oh = 0; oh < Ho; oh++) {
      const ih = oh * g.stride[0] - g.padding[0] + kh * g.dilation[0];
      if (ih < 0 || ih >= g.H) continue;
      for (let ow = 0; ow < Wo; ow++) {
        const iw = ow * g.stride[1] - g.padding[1] + kw * g.dilation[1];
        if (iw < 0 || iw >= g.W) continue;
        s += dy[((n * g.O + o) * Ho + oh) * Wo + ow]! * x[((n * g.C + c) * g.H + ih) * g.W + iw]!;
      }
    }
  return s;
}

/** dX[n, c, ih, iw] alone: sum over the outputs whose window reads it (for sampled entries). */
export function gradInputAt(dy: ArrayLike<number>, w: ArrayLike<number>, g: ConvGeometry, xi: number): number {
  const [Ho, Wo] = convOutSize(g);
  const Cg = g.C / g.groups;
  const Og = g.O / g.groups;
  const iw = xi % g.W;
  const ih = Math.floor(xi / g.W) % g.H;
  const c = Math.floor(xi / (g.W * g.H)) % g.C;
  const n = Math.floor(xi / (g.W * g.H * g.C));
  const grp = Math.floor(c / Cg);
  const cg = c - grp * Cg;
  let s = 0;
  for (let o = grp * Og; o < (grp + 1) * Og; o++)
    for (let kh = 0; kh < g.kH; kh++) {
      const t = ih + g.padding[0] - kh * g.dilation[0];
      if (t < 0 || t % g.stride[0] !== 0) continue;
      const oh = t / g.stride[0];
      if (oh >= Ho) continue;
      for (let kw = 0; kw < g.kW; kw++) {
        const u = iw + g.padding[1] - kw * g.dilation[1];
        if (u < 0 || u % g.stride[1] !== 0) continue;
        const ow = u / g.stride[1];
        if (ow >= Wo) continue;
        s += dy[((n * g.O + o) * Ho + oh) * Wo + ow]! * w[((o * Cg + cg) * g.kH + kh) * g.kW + kw]!;
      }
    }
  return s;
}
