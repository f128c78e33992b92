// Reference top-k correct count: a row counts when fewer than k logits are strictly greater
// than the label's logit.
export function topkCorrectRef(z: ArrayLike<number>, labels: ArrayLike<number>, B: number, C: number, k: number): number {
  let correct = 0;
  for (let b = 0; b < B; b++) {
    const t = z[b * C + labels[b]!]!;
    let greater = 0;
    for (let c = 0; c < C; c++) if (z[b * C + c]! > t) greater++;
    if (greater < k) correct++;
  }
  return correct;
}
