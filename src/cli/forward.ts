// `alexnet forward`: one forward pass of the seed AlexNet (our design documents' network) with
// random He-initialised weights, timed. The training issue replaces this with `alexnet train`.
import { conv2d, linear, maxPool2d, relu, softmax } from '../ops/index.js';
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

function randomNormal(n: number, std: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(Math.max(next(), 1e-12)));
    const a = 2 * Math.PI * next();
    out[i] = std * r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = std * r * Math.sin(a);
  }
  return out;
}

interface Layer {
  w: Tensor<'float32'>;
  b: Tensor<'float32'>;
}

function layer(shape: number[], seed: number): Layer {
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const w = Tensor.from(randomNormal(shape.reduce((a, b) => a * b, 1), Math.sqrt(2 / fanIn), seed), shape);
  return { w, b: Tensor.zeros([shape[0]!]) };
}

export async function seedForward({ batch = 4, classes = 2, seed = 1 } = {}): Promise<ForwardReport> {
  const convs = [
    layer([96, 3, 11, 11], seed + 1),
    layer([256, 96, 5, 5], seed + 2),
    layer([384, 256, 3, 3], seed + 3),
    layer([384, 384, 3, 3], seed + 4),
    layer([256, 384, 3, 3], seed + 5),
  ];
  const fcs = [layer([4096, 9216], seed + 6), layer([4096, 4096], seed + 7), layer([classes, 4096], seed + 8)];
  const parameters = [...convs, ...fcs].reduce((n, l) => n + l.w.numel + l.b.numel, 0);
  const input = Tensor.from(randomNormal(batch * 3 * 227 * 227, 1, seed), [batch, 3, 227, 227]);

  const run = async (): Promise<Tensor<'float32'>> => {
    const pool = { kernelSize: 3, stride: 2 };
    let x = maxPool2d(relu(conv2d(input, convs[0]!.w, convs[0]!.b, { stride: 4 })), pool);
    x = maxPool2d(relu(conv2d(x, convs[1]!.w, convs[1]!.b, { padding: 2 })), pool);
    x = relu(conv2d(x, convs[2]!.w, convs[2]!.b, { padding: 1 }));
    x = relu(conv2d(x, convs[3]!.w, convs[3]!.b, { padding: 1 }));
    x = maxPool2d(relu(conv2d(x, convs[4]!.w, convs[4]!.b, { padding: 1 })), pool);
    x = x.reshape([batch, 9216]);
    // dropout is the identity at evaluation time
    x = relu(linear(x, fcs[0]!.w, fcs[0]!.b));
    x = relu(linear(x, fcs[1]!.w, fcs[1]!.b));
    const probs = softmax(linear(x, fcs[2]!.w, fcs[2]!.b));
    await probs.data();
    return probs;
  };

  await run(); // warm-up (page faults, BLAS thread start)
  const t0 = performance.now();
  const probs = await run();
  const ms = performance.now() - t0;
  const p = await probs.data();
  const rows: number[][] = [];
  for (let i = 0; i < batch; i++) rows.push(Array.from(p.subarray(i * classes, (i + 1) * classes)));
  return {
    batch,
    classes,
    parameters,
    outputShape: [...probs.shape],
    probabilities: rows,
    milliseconds: ms,
    imagesPerSecond: (batch * 1000) / ms,
  };
}
