// `alexnet forward`: one timed forward pass of the seed AlexNet (our design documents' network)
// with He-initialised random weights, on the CPU.
import { alexnet } from '../models/alexnet.js';
import { fillNormal } from '../nn/init.js';
import { mulberry32 } from '../random.js';
import { softmax } from '../ops/loss.js';
import { Tensor } from '../tensor.js';

export interface ForwardReport {
  batch: number;
  classes: number;
  parameters: number;
  outputShape: number[];
  probabilities: number[][];
  milliseconds: number;
  imagesPerSecond: number;
}

export async function seedForward({ batch = 4, classes = 2, seed = 1 } = {}): Promise<ForwardReport> {
  const model = alexnet({ config: 'seed', numClasses: classes, init: 'kaiming', seed }).eval();
  const input = Tensor.from(fillNormal(new Float32Array(batch * 3 * 227 * 227), mulberry32(seed), 0, 1), [batch, 3, 227, 227]);
  const run = async (): Promise<Float32Array> => {
    const logits = model.forward(input);
    const probs = softmax(logits);
    logits.dispose();
    const p = await probs.data();
    probs.dispose();
    return p;
  };
  try {
    await run(); // warm-up (page faults, BLAS thread start)
    const t0 = performance.now();
    const p = await run();
    const ms = performance.now() - t0;
    const rows: number[][] = [];
    for (let i = 0; i < batch; i++) rows.push(Array.from(p.subarray(i * classes, (i + 1) * classes)));
    return {
      batch,
      classes,
      parameters: model.numParameters(),
      outputShape: [batch, classes],
      probabilities: rows,
      milliseconds: ms,
      imagesPerSecond: (batch * 1000) / ms,
    };
  } finally {
    input.dispose();
    model.dispose();
  }
}
