// Independent float64 reference for local response normalisation across channels, in
// PyTorch's LocalResponseNorm convention:
//   y_c = x_c / (k + alpha/size * sum_{c' = c - floor(size/2)}^{c + floor((size-1)/2)} x_c'^2)^beta

export interface LrnGeometry {
  N: number;
  C: number;
  S: number; // spatial positions (H*W, or L)
  size: number;
  alpha: number;
  beta: number;
  k: number;
}

function denominator(x: ArrayLike<number>, g: LrnGeometry, n: number, c: number, i: number): number {
  let s = 0;
  for (let cc = c - Math.floor(g.size / 2); cc <= c + Math.floor((g.size - 1) / 2); cc++) {
    if (cc < 0 || cc >= g.C) continue;
    const v = x[(n * g.C + cc) * g.S + i]!;
    s += v * v;
  }
  return g.k + (g.alpha / g.size) * s;
}

export function lrnRef(x: ArrayLike<number>, g: LrnGeometry): Float64Array {
  const y = new Float64Array(g.N * g.C * g.S);
  for (let n = 0; n < g.N; n++)
    for (let c = 0; c < g.C; c++)
      for (let i = 0; i < g.S; i++) {
        const j = (n * g.C + c) * g.S + i;
        y[j] = x[j]! / Math.pow(denominator(x, g, n, c, i), g.beta);
      }
  return y;
}

/**
 * Analytic gradient written as the Jacobian-transpose product: for every output y_c and every
 * x_j it depends on, dx_j += dy_c * dy_c/dx_j, with
 *   dy_c/dx_j = [j == c] D_c^-beta - x_c * beta * D_c^(-beta-1) * (alpha/size) * 2 x_j   (j in window(c)).
 */
export function lrnBackwardRef(dy: ArrayLike<number>, x: ArrayLike<number>, g: LrnGeometry): Float64Array {
  const dx = new Float64Array(g.N * g.C * g.S);
  for (let n = 0; n < g.N; n++)
    for (let i = 0; i < g.S; i++)
      for (let c = 0; c < g.C; c++) {
        const ic = (n * g.C + c) * g.S + i;
        const D = denominator(x, g, n, c, i);
        dx[ic]! += dy[ic]! * Math.pow(D, -g.beta);
        const common = dy[ic]! * x[ic]! * g.beta * Math.pow(D, -g.beta - 1) * (g.alpha / g.size) * 2;
        for (let j = c - Math.floor(g.size / 2); j <= c + Math.floor((g.size - 1) / 2); j++) {
          if (j < 0 || j >= g.C) continue;
          const ij = (n * g.C + j) * g.S + i;
          dx[ij]! -= common * x[ij]!;
        }
      }
  return dx;
}
