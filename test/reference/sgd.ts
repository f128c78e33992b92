// Float64 reference of one SGD-with-momentum step per element (both conventions, as in
// native/core/sgd.h). Values are rounded to float32 after each step, as the native buffers are.
export interface SgdRefOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  convention?: 'pytorch' | 'krizhevsky';
  firstStep?: boolean;
}

export function sgdStepRef(w: Float64Array, g: ArrayLike<number>, buf: Float64Array | null, o: SgdRefOptions): void {
  const mu = o.momentum ?? 0;
  const d = o.dampening ?? 0;
  const wd = o.weightDecay ?? 0;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i]! + wd * w[i]!;
    if (mu === 0) {
      w[i] = Math.fround(w[i]! - o.lr * gi);
    } else if ((o.convention ?? 'pytorch') === 'pytorch') {
      const b = o.firstStep ? gi : mu * buf![i]! + (1 - d) * gi;
      const step = o.nesterov ? gi + mu * b : b;
      buf![i] = Math.fround(b);
      w[i] = Math.fround(w[i]! - o.lr * step);
    } else {
      const v = (o.firstStep ? 0 : mu * buf![i]!) - o.lr * (1 - d) * gi;
      buf![i] = Math.fround(v);
      w[i] = Math.fround(w[i]! + v);
    }
  }
}
