// Float64 naive-loop references for matmul and linear (PyTorch layout: weight [out, in]).

/** c[M,N] = A[M,K] @ B[K,N] for logical (untransposed) row-major A, B. */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k]! * b[k * N + j]!;
      c[i * N + j] = s;
    }
  }
  return c;
}

/** The transpose of a row-major [rows, cols] matrix, as [cols, rows]. */
export function transpose(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j]!;
  return t;
}

/** y[b,o] = sum_i x[b,i] w[o,i] + bias[o] */
export function linearRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  B: number,
  inF: number,
  outF: number,
): Float64Array {
  const y = new Float64Array(B * outF);
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < outF; o++) {
      let s = bias ? bias[o]! : 0;
      for (let i = 0; i < inF; i++) s += x[b * inF + i]! * w[o * inF + i]!;
      y[b * outF + o] = s;
    }
  }
  return y;
}

/** Analytic gradients of linear given dy [B, out]. */
export function linearBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  B: number,
  inF: number,
  outF: number,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const dx = new Float64Array(B * inF);
  const dw = new Float64Array(outF * inF);
  const db = new Float64Array(outF);
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < outF; o++) {
      const g = dy[b * outF + o]!;
      db[o] = db[o]! + g;
      for (let i = 0; i < inF; i++) {
        dx[b * inF + i] = dx[b * inF + i]! + g * w[o * inF + i]!;
        dw[o * inF + i] = dw[o * inF + i]! + g * x[b * inF + i]!;
      }
    }
  }
  return { dx, dw, db };
}
