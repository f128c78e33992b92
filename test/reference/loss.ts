// Float64 references for softmax and softmax cross-entropy (mean over the batch).

export function softmaxRef(z: ArrayLike<number>, B: number, C: number): Float64Array {
  const p = new Float64Array(B * C);
  for (let b = 0; b < B; b++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, z[b * C + c]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(z[b * C + c]! - m);
    for (let c = 0; c < C; c++) p[b * C + c] = Math.exp(z[b * C + c]! - m) / s;
  }
  return p;
}

/** mean_b (logsumexp(z_b) - z_b[y_b]) */
export function crossEntropyRef(z: ArrayLike<number>, labels: ArrayLike<number>, B: number, C: number): number {
  let total = 0;
  for (let b = 0; b < B; b++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, z[b * C + c]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(z[b * C + c]! - m);
    total += m + Math.log(s) - z[b * C + labels[b]!]!;
  }
  return total / B;
}

/** (softmax - onehot) / B */
export function crossEntropyGradRef(z: ArrayLike<number>, labels: ArrayLike<number>, B: number, C: number): Float64Array {
  const g = softmaxRef(z, B, C);
  for (let b = 0; b < B; b++) {
    g[b * C + labels[b]!] = g[b * C + labels[b]!]! - 1;
    for (let c = 0; c < C; c++) g[b * C + c] = g[b * C + c]! / B;
  }
  return g;
}
