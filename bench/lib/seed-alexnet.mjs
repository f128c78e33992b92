// The seed AlexNet (our design documents' network) written with the functional operators, for
// the benchmarks: parameters and gradients are views into one flat buffer each, so a training
// step ends with one sgdStep call, as the training loop (src/train) will do it.
//
//   227x227x3 -> conv 96 11x11/4 -> relu -> pool 3/2 -> conv 256 5x5 p2 -> relu -> pool 3/2
//   -> conv 384 3x3 p1 -> relu -> conv 384 3x3 p1 -> relu -> conv 256 3x3 p1 -> relu -> pool 3/2
//   -> 9216 -> fc 4096 -> relu -> dropout -> fc 4096 -> relu -> dropout -> fc classes
export const CONVS = [
  { name: 'features.0', w: [96, 3, 11, 11], stride: 4, padding: 0, pool: true },
  { name: 'features.3', w: [256, 96, 5, 5], stride: 1, padding: 2, pool: true },
  { name: 'features.6', w: [384, 256, 3, 3], stride: 1, padding: 1, pool: false },
  { name: 'features.8', w: [384, 384, 3, 3], stride: 1, padding: 1, pool: false },
  { name: 'features.10', w: [256, 384, 3, 3], stride: 1, padding: 1, pool: true },
];
export const fcs = (classes) => [
  { name: 'classifier.0', w: [4096, 9216], dropout: true },
  { name: 'classifier.3', w: [4096, 4096], dropout: true },
  { name: 'classifier.6', w: [classes, 4096], dropout: false },
];

const numel = (s) => s.reduce((a, b) => a * b, 1);

export function createSeedAlexNet(lib, { classes = 2, device = 'cpu', seed = 1 } = {}) {
  const { Tensor } = lib;
  const layers = [...CONVS.map((c) => ({ ...c, kind: 'conv' })), ...fcs(classes).map((f) => ({ ...f, kind: 'fc' }))];
  let total = 0;
  for (const l of layers) {
    l.wOffset = total;
    total += numel(l.w);
    l.bOffset = total;
    total += l.w[0];
  }
  // He-normal weights (deterministic), zero biases, in one buffer.
  const host = new Float32Array(total);
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (const l of layers) {
    const std = Math.sqrt(2 / numel(l.w.slice(1)));
    for (let i = 0; i < numel(l.w); i++) host[l.wOffset + i] = std * Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
  }
  const params = Tensor.from(host, [total], { device });
  const grads = Tensor.zeros([total], { device });
  const momentum = Tensor.zeros([total], { device });
  for (const l of layers) {
    l.weight = params.view(l.wOffset, l.w);
    l.bias = params.view(l.bOffset, [l.w[0]]);
    l.gradWeight = grads.view(l.wOffset, l.w);
    l.gradBias = grads.view(l.bOffset, [l.w[0]]);
  }
  return { layers, params, grads, momentum, total, classes, device };
}

const POOL = { kernelSize: 3, stride: 2 };

/** Forward; with `train`, keeps what backward needs (and applies dropout with p = 0.4). */
export function forward(lib, net, x, { train = false, step = 0, p = 0.4 } = {}) {
  const { conv2d, relu, maxPool2d, linear, dropout } = lib;
  const saved = [];
  let h = x;
  for (const l of net.layers) {
    if (l.kind === 'conv') {
      const input = h;
      const z = relu(conv2d(input, l.weight, l.bias, { stride: l.stride, padding: l.padding }));
      let out = z;
      if (l.pool) out = maxPool2d(z, POOL);
      saved.push({ input, z, out });
      h = out;
      if (l.name === 'features.10') h = h.reshape([x.shape[0], 9216]);
    } else {
      const input = h;
      let z = linear(input, l.weight, l.bias);
      let mask = null;
      if (l.dropout) {
        z = relu(z);
        const r = z;
        if (train) {
          const d = dropout(r, { p, seed: 1234, offset: step * 1e7 + saved.length * 1e6 });
          mask = d.mask;
          z = d.output;
        }
        saved.push({ input, relu: r, mask });
      } else {
        saved.push({ input });
      }
      h = z;
    }
  }
  return { logits: h, saved };
}

/** One SGD step: forward, softmax cross-entropy, backward into the flat gradient, one update. */
export function trainStep(lib, net, x, labels, { lr = 0.01, step = 0 } = {}) {
  const { softmaxCrossEntropy, linearBackward, dropoutBackward, reluBackward, maxPool2dBackward, conv2dBackward, sgdStep } = lib;
  const { logits, saved } = forward(lib, net, x, { train: true, step });
  const { loss, gradLogits } = softmaxCrossEntropy(logits, labels);
  let g = gradLogits;
  for (let i = net.layers.length - 1; i >= 0; i--) {
    const l = net.layers[i];
    const s = saved[i];
    if (l.kind === 'fc') {
      if (l.dropout) {
        if (s.mask) g = dropoutBackward(g, s.mask);
        g = reluBackward(g, s.relu);
      }
      g = linearBackward(g, s.input, l.weight, { gradWeight: l.gradWeight, gradBias: l.gradBias }).gradInput;
      if (l.name === 'classifier.0') g = g.reshape([x.shape[0], 256, 6, 6]);
    } else {
      if (l.pool) g = maxPool2dBackward(g, s.z, s.out, POOL);
      g = reluBackward(g, s.z);
      g = conv2dBackward(g, s.input, l.weight, {
        stride: l.stride,
        padding: l.padding,
        gradWeight: l.gradWeight,
        gradBias: l.gradBias,
        computeGradInput: i > 0,
      }).gradInput;
    }
  }
  sgdStep(net.params, net.grads, net.momentum, { lr, momentum: 0.9, weightDecay: 5e-4, firstStep: step === 0 });
  return loss;
}
