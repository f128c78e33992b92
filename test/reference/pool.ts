// Independent float64 reference for 2-D max pooling (PyTorch semantics: padded positions are
// never selected, floor-mode output, ties go to the first element in row-major window order).

export interface PoolGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}

export function poolOutSize(g: PoolGeometry): [number, number] {
  return [
    Math.floor((g.H + 2 * g.padding[0] - g.kernel[0]) / g.stride[0]) + 1,
    Math.floor((g.W + 2 * g.padding[1] - g.kernel[1]) / g.stride[1]) + 1,
  ];
}

/** Flat index into x of the maximum of output (n, c, oh, ow)'s window. */
function argmaxAt(x: ArrayLike<number>, g: PoolGeometry, n: number, c: number, oh: number, ow: number): number {
  let best = -1;
  let m = -Infinity;
  for (let kh = 0; kh < g.kernel[0]; kh++) {
    const ih = oh * g.stride[0] - g.padding[0] + kh;
    if (ih < 0 || ih >= g.H) continue;
    for (let kw = 0; kw < g.kernel[1]; kw++) {
      const iw = ow * g.stride[1] - g.padding[1] + kw;
      if (iw < 0 || iw >= g.W) continue;
      const i = ((n * g.C + c) * g.H + ih) * g.W + iw;
      // the first maximum in row-major order; a NaN beats any number (PyTorch's rule)
      if (best < 0 || x[i]! > m || (Number.isNaN(x[i]!) && !Number.isNaN(m))) {
        best = i;
        m = x[i]!;
      }
    }
  }
  return best;
}

export function maxPool2dRef(x: ArrayLike<number>, g: PoolGeometry): Float64Array {
  const [Ho, Wo] = poolOutSize(g);
  const y = new Float64Array(g.N * g.C * Ho * Wo);
  let o = 0;
  for (let n = 0; n < g.N; n++)
    for (let c = 0; c < g.C; c++)
      for (let oh = 0; oh < Ho; oh++) for (let ow = 0; ow < Wo; ow++) y[o++] = x[argmaxAt(x, g, n, c, oh, ow)]!;
  return y;
}

export function maxPool2dBackwardRef(dy: ArrayLike<number>, x: ArrayLike<number>, g: PoolGeometry): Float64Array {
  const [Ho, Wo] = poolOutSize(g);
  const dx = new Float64Array(g.N * g.C * g.H * g.W);
  let o = 0;
  for (let n = 0; n < g.N; n++)
    for (let c = 0; c < g.C; c++)
      for (let oh = 0; oh < Ho; oh++) for (let ow = 0; ow < Wo; ow++) dx[argmaxAt(x, g, n, c, oh, ow)]! += dy[o++]!;
  return dx;
}
