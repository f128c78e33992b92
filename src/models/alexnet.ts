// AlexNet in three configurations, as a Module whose state-dict names follow torchvision
// (children `features`, then a parameter-free `flatten` (and `avgpool` for 'torchvision'), then
// `classifier`; inside those, children are numbered '0', '1', ... like nn.Sequential).
//
// 'seed' (default; our design's network), input 3x227x227, numClasses 2, dropout 0.4:
//   features.0  Conv2d(3, 96, 11, stride 4)            -> 96x55x55
//   features.1  ReLU
//   features.2  MaxPool2d(3, 2)                        -> 96x27x27
//   features.3  Conv2d(96, 256, 5, padding 2)          -> 256x27x27
//   features.4  ReLU
//   features.5  MaxPool2d(3, 2)                        -> 256x13x13
//   features.6  Conv2d(256, 384, 3, padding 1)
//   features.7  ReLU
//   features.8  Conv2d(384, 384, 3, padding 1)
//   features.9  ReLU
//   features.10 Conv2d(384, 256, 3, padding 1)
//   features.11 ReLU
//   features.12 MaxPool2d(3, 2)                        -> 256x6x6
//   flatten     Flatten                                -> 9216
//   classifier.0 Linear(9216, 4096), .1 ReLU, .2 Dropout(0.4),
//   classifier.3 Linear(4096, 4096), .4 ReLU, .5 Dropout(0.4),
//   classifier.6 Linear(4096, numClasses)
//
// 'paper2012' (Krizhevsky et al. 2012, one-GPU form: the two-GPU split is groups = 2), input
// 3x227x227, numClasses 1000, dropout 0.5, LRN size 5, alpha 5e-4 in PyTorch's convention
// (the paper's 1e-4 per element), beta 0.75, k 2, after the ReLU of conv1 and conv2, before pooling:
//   features.0  Conv2d(3, 96, 11, stride 4), .1 ReLU, .2 LocalResponseNorm, .3 MaxPool2d(3, 2)
//   features.4  Conv2d(96, 256, 5, padding 2, groups 2), .5 ReLU, .6 LocalResponseNorm, .7 MaxPool2d(3, 2)
//   features.8  Conv2d(256, 384, 3, padding 1), .9 ReLU
//   features.10 Conv2d(384, 384, 3, padding 1, groups 2), .11 ReLU
//   features.12 Conv2d(384, 256, 3, padding 1, groups 2), .13 ReLU, .14 MaxPool2d(3, 2) -> 256x6x6
//   flatten     Flatten
//   classifier.0 Dropout(0.5), .1 Linear(9216, 4096), .2 ReLU,
//   classifier.3 Dropout(0.5), .4 Linear(4096, 4096), .5 ReLU, .6 Linear(4096, numClasses)
//
// 'torchvision' (torchvision.models.alexnet, the "one weird trick" variant), input 3x224x224,
// numClasses 1000, dropout 0.5:
//   features.0  Conv2d(3, 64, 11, stride 4, padding 2), .1 ReLU, .2 MaxPool2d(3, 2)
//   features.3  Conv2d(64, 192, 5, padding 2), .4 ReLU, .5 MaxPool2d(3, 2)
//   features.6  Conv2d(192, 384, 3, padding 1), .7 ReLU
//   features.8  Conv2d(384, 256, 3, padding 1), .9 ReLU
//   features.10 Conv2d(256, 256, 3, padding 1), .11 ReLU, .12 MaxPool2d(3, 2) -> 256x6x6
//   avgpool     AdaptiveAvgPool2d(6) (the identity at 224x224 input; other sizes throw)
//   flatten     Flatten
//   classifier.0 Dropout(0.5), .1 Linear(9216, 4096), .2 ReLU,
//   classifier.3 Dropout(0.5), .4 Linear(4096, 4096), .5 ReLU, .6 Linear(4096, numClasses)
//
// Initialisation, deterministic from `seed` (mulberry32 on the host, layer by layer, weight then
// bias):
//   'paper'   weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the two hidden dense
//             layers, 0 in conv1, conv3 and the output layer (Krizhevsky et al. 2012, section 5).
//   'pytorch' PyTorch's defaults (what torchvision's AlexNet uses): weights
//             kaiming_uniform_(a = sqrt(5)) = U(+-1/sqrt(fanIn)), biases U(+-1/sqrt(fanIn)).
// Dropout layer i (0, 1 in order) gets the stream seed `seed * 64 + i + 1`, offset 0.
import { alexnetError } from '../errors.js';
import { fillNormal } from '../nn/init.js';
import { mulberry32, type Rng } from '../random.js';
import { AdaptiveAvgPool2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import type { MemoryFormat, Precision } from '../nn/module.js';
import { Tensor, type Device } from '../tensor.js';

export type AlexNetConfig = 'seed' | 'paper2012' | 'torchvision';
export type AlexNetInit = 'paper' | 'pytorch' | 'kaiming';

export interface AlexNetOptions {
  /** which network (default 'seed') */
  config?: AlexNetConfig;
  /** output classes (default 2 for 'seed', 1000 otherwise) */
  numClasses?: number;
  /** initialisation (default 'paper') */
  init?: AlexNetInit;
  /** seed of the initial values and of the dropout streams: an integer in [0, 2^46) (default 0) */
  seed?: number;
  /** dropout probability (default 0.4 for 'seed', 0.5 otherwise) */
  dropout?: number;
  /** where the parameters live (default 'cpu') */
  device?: Device | string;
  /**
   * 'fp32' (default) or 'bf16': bfloat16 activations and weight copies, float32 master weights
   * and logits (Module.setPrecision). 'paper2012' has LRN, which is float32 only: ERR_DTYPE.
   */
  precision?: Precision;
  /**
   * 'contiguous_format' (default) or 'channels_last' (Module.setMemoryFormat): the convolution
   * stack on [N, H, W, C] activations, the input still [N, 3, H, W]. 'paper2012' has LRN, which
   * has no channels-last form: ERR_ARGUMENT.
   */
  memoryFormat?: MemoryFormat;
}

/** Input side length of each configuration (the input is [N, 3, size, size]). */
export const ALEXNET_INPUT_SIZE: Readonly<Record<AlexNetConfig, number>> = Object.freeze({ seed: 227, paper2012: 227, torchvision: 224 });

/** The options of an AlexNet, checked and with their defaults filled in. */
interface ResolvedOptions {
  config: AlexNetConfig;
  init: AlexNetInit;
  seed: number;
  numClasses: number;
  dropout: number;
  device: Device | string | undefined;
}

function resolveOptions(options: AlexNetOptions): ResolvedOptions {
  const config = options.config ?? 'seed';
  if (!(config in ALEXNET_INPUT_SIZE)) {
    throw alexnetError('ERR_ARGUMENT', `alexnet: config must be 'seed', 'paper2012' or 'torchvision', got ${String(config)}`);
  }
  const init = options.init ?? 'paper';
  if (init !== 'paper' && init !== 'pytorch' && init !== 'kaiming') throw alexnetError('ERR_ARGUMENT', `alexnet: init must be 'paper', 'pytorch' or 'kaiming', got ${String(init)}`);
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= 2 ** 46) throw alexnetError('ERR_ARGUMENT', `alexnet: seed must be an integer in [0, 2^46), got ${String(seed)}`);
  const numClasses = options.numClasses ?? (config === 'seed' ? 2 : 1000);
  if (!Number.isInteger(numClasses) || numClasses < 1) throw alexnetError('ERR_ARGUMENT', `alexnet: numClasses must be a positive integer, got ${String(numClasses)}`);
  const dropout = options.dropout ?? (config === 'seed' ? 0.4 : 0.5);
  return { config, init, seed, numClasses, dropout, device: options.device };
}

/**
 * The layer factories of one network: every weighted layer draws from `rng` in construction
 * order, and dropout layer i (1, 2 in order) gets the stream seed `seed * 64 + i`.
 */
function layerFactory(o: ResolvedOptions, rng: Rng) {
  // With 'paper' and 'kaiming' the layers start at zero and are filled afterwards (no wasted uniform draws).
  const pinit = { init: o.init === 'pytorch' ? ('pytorch' as const) : ('zeros' as const), rng, device: o.device };
  let dropouts = 0;
  return {
    conv: (i: number, out: number, k: number, s: number, pad: number, groups = 1) => new Conv2d(i, out, k, { stride: s, padding: pad, groups, ...pinit }),
    fc: (i: number, out: number) => new Linear(i, out, pinit),
    drop: () => new Dropout(o.dropout, { seed: o.seed * 64 + ++dropouts }),
    pool: () => new MaxPool2d(3, 2),
    lrn: () => new LocalResponseNorm(5, 5e-4, 0.75, 2),
  };
}

/** The `features` and `classifier` stacks of one configuration (the layer lists at the top of this file). */
function buildLayers(o: ResolvedOptions, rng: Rng): { features: Sequential; classifier: Sequential } {
  const { conv, fc, drop, pool, lrn } = layerFactory(o, rng);
  const n = o.numClasses;
  if (o.config === 'seed') {
    return {
      features: new Sequential(
        conv(3, 96, 11, 4, 0), new ReLU(), pool(),
        conv(96, 256, 5, 1, 2), new ReLU(), pool(),
        conv(256, 384, 3, 1, 1), new ReLU(),
        conv(384, 384, 3, 1, 1), new ReLU(),
        conv(384, 256, 3, 1, 1), new ReLU(), pool(),
      ),
      classifier: new Sequential(fc(9216, 4096), new ReLU(), drop(), fc(4096, 4096), new ReLU(), drop(), fc(4096, n)),
    };
  }
  if (o.config === 'paper2012') {
    return {
      features: new Sequential(
        conv(3, 96, 11, 4, 0), new ReLU(), lrn(), pool(),
        conv(96, 256, 5, 1, 2, 2), new ReLU(), lrn(), pool(),
        conv(256, 384, 3, 1, 1), new ReLU(),
        conv(384, 384, 3, 1, 1, 2), new ReLU(),
        conv(384, 256, 3, 1, 1, 2), new ReLU(), pool(),
      ),
      classifier: new Sequential(drop(), fc(9216, 4096), new ReLU(), drop(), fc(4096, 4096), new ReLU(), fc(4096, n)),
    };
  }
  return {
    features: new Sequential(
      conv(3, 64, 11, 4, 2), new ReLU(), pool(),
      conv(64, 192, 5, 1, 2), new ReLU(), pool(),
      conv(192, 384, 3, 1, 1), new ReLU(),
      conv(384, 256, 3, 1, 1), new ReLU(),
      conv(256, 256, 3, 1, 1), new ReLU(), pool(),
    ),
    classifier: new Sequential(drop(), fc(9216, 4096), new ReLU(), drop(), fc(4096, 4096), new ReLU(), fc(4096, n)),
  };
}

/** The weighted layers (conv1..conv5, then fc1..fc3), in the order their values are drawn. */
function weightedLayers(features: Sequential, classifier: Sequential): (Conv2d | Linear)[] {
  return [...features.children(), ...classifier.children()].filter((m): m is Conv2d | Linear => m instanceof Conv2d || m instanceof Linear);
}

/** Replaces a parameter's values (on its device). */
function setValues(p: { data: Tensor<'float32'>; shape: readonly number[] }, t: Tensor<'float32'>): void {
  p.data.dispose();
  p.data = t;
}

/**
 * He et al. 2015 (PyTorch's kaiming_normal_, fan_in, ReLU gain): N(0, 2 / fan_in), biases 0.
 * Keeps the activations' scale through the eight layers, so training leaves the initial plateau
 * at once (the paper's N(0, 0.01) and PyTorch's default shrink it layer by layer).
 */
function initKaiming(layers: readonly (Conv2d | Linear)[], rng: Rng): void {
  for (const m of layers) {
    const w = m.weight;
    const fanIn = w.numel / w.shape[0]!;
    setValues(w, Tensor.from(fillNormal(new Float32Array(w.numel), rng, 0, Math.sqrt(2 / fanIn)), w.shape, { device: w.data.device }));
  }
}

/**
 * Krizhevsky et al. 2012, section 5: weights N(0, 0.01); bias 1 for conv2, conv4, conv5, fc1 and
 * fc2, 0 for the others.
 */
function initPaper(layers: readonly (Conv2d | Linear)[], rng: Rng): void {
  const biasOne = [false, true, false, true, true, true, true, false];
  layers.forEach((m, i) => {
    const w = m.weight;
    setValues(w, Tensor.from(fillNormal(new Float32Array(w.numel), rng, 0, 0.01), w.shape, { device: w.data.device }));
    if (m.bias !== null && biasOne[i]) setValues(m.bias, Tensor.full(m.bias.shape, 1, { device: m.bias.data.device }));
  });
}

const paper2012Bf16 = () =>
  alexnetError('ERR_DTYPE', "AlexNet(paper2012): precision 'bf16' is not available: LocalResponseNorm has no bfloat16 form (use 'seed' or 'torchvision')");

export class AlexNet extends Sequential {
  readonly config: AlexNetConfig;
  readonly numClasses: number;
  readonly inputSize: number;
  /** The initialisation and seed it was built with (what a checkpoint's configuration records). */
  readonly init: AlexNetInit;
  readonly seed: number;
  readonly features: Sequential;
  readonly classifier: Sequential;

  constructor(options: AlexNetOptions = {}) {
    super();
    const o = resolveOptions(options);
    if (options.precision === 'bf16' && o.config === 'paper2012') throw paper2012Bf16();
    this.config = o.config;
    this.numClasses = o.numClasses;
    this.inputSize = ALEXNET_INPUT_SIZE[o.config];
    this.init = o.init;
    this.seed = o.seed;
    const rng = mulberry32(o.seed);
    const { features, classifier } = buildLayers(o, rng);
    this.features = this.addModule('features', features);
    if (o.config === 'torchvision') this.addModule('avgpool', new AdaptiveAvgPool2d(6));
    this.addModule('flatten', new Flatten());
    this.classifier = this.addModule('classifier', classifier);
    if (o.init === 'kaiming') initKaiming(weightedLayers(features, classifier), rng);
    if (o.init === 'paper') initPaper(weightedLayers(features, classifier), rng);
    if (options.precision !== undefined) this.setPrecision(options.precision);
    if (options.memoryFormat !== undefined) this.setMemoryFormat(options.memoryFormat);
  }

  /** Module.setPrecision; 'bf16' is refused for 'paper2012', whose LRN layers are float32 only. */
  override setPrecision(precision: Precision): this {
    if (precision === 'bf16' && this.config === 'paper2012') throw paper2012Bf16();
    return super.setPrecision(precision);
  }

  override forward(x: Tensor<'float32'>): Tensor<'float32'> {
    const s = this.inputSize;
    if (x.rank !== 4 || x.shape[1] !== 3 || x.shape[2] !== s || x.shape[3] !== s) {
      throw alexnetError('ERR_SHAPE', `AlexNet(${this.config}): expected input [N, 3, ${s}, ${s}], got [${x.shape.join(', ')}]`);
    }
    return super.forward(x);
  }
}

/** Builds AlexNet in one of its configurations (see the layer lists at the top of this file). */
export function alexnet(options: AlexNetOptions = {}): AlexNet {
  return new AlexNet(options);
}

