// The layers of AlexNet, PyTorch's names and layouts, each a thin Module over the functional
// operators in src/ops (forward and backward side by side). See module.ts for who disposes what.
import { alexnetError } from '../errors.js';
import { relu, reluBackward } from '../ops/activation.js';
import { conv2d, conv2dBackward } from '../ops/conv.js';
import { dropout, dropoutBackward, dropoutCounter, writeDropoutCounter } from '../ops/dropout.js';
import { toMemoryFormat } from '../ops/layout.js';
import { linear, linearBackward } from '../ops/linear.js';
import { localResponseNorm, localResponseNormBackward, type LrnOptions } from '../ops/lrn.js';
import { maxPool2d, maxPool2dBackward, type Pool2dOptions } from '../ops/pool.js';
import { Tensor, type Device } from '../tensor.js';
import { defaultRng, fillUniform, pytorchDefaultBound, type Rng } from './init.js';
import { fmt, Module, type BF16, type F32, type MemoryFormat, type Parameter } from './module.js';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (Array.isArray(v) ? [v[0], v[1]] : [v, v]);

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw alexnetError('ERR_ARGUMENT', `${what} must be a positive integer, got ${String(v)}`);
  return v;
}

/** A layer's input must be a Tensor (a coded error, not a TypeError on its first property). */
function tensorInput(x: unknown, what: string): void {
  if (!(x instanceof Tensor)) throw alexnetError('ERR_ARGUMENT', `${what}: expected the input to be a Tensor, got ${x === null ? 'null' : typeof x}`);
}

/**
 * precision 'bf16': a layer with weights takes its input as bfloat16, converting a float32 one (the
 * network's input, at the first layer: once) into a tensor it owns (`owned`).
 */
function bf16Input(x: F32 | BF16): { x16: BF16; owned: boolean } {
  tensorInput(x, 'a bfloat16 layer');
  return x.dtype === 'bfloat16' ? { x16: x as BF16, owned: false } : { x16: (x as F32).bfloat16(), owned: true };
}

/** The gradient reaching a bfloat16 layer: the loss's float32 one is rounded once to bfloat16. */
function bf16Grad(g: F32 | BF16): { g16: BF16; owned: boolean } {
  tensorInput(g, 'a bfloat16 layer\'s backward');
  return g.dtype === 'bfloat16' ? { g16: g as BF16, owned: false } : { g16: (g as F32).bfloat16(), owned: true };
}

/** The input gradient in the dtype of the layer's input (float32 for the network's input). */
function asInputDtype(g: BF16 | null, inputWasFloat32: boolean): F32 | null {
  if (g === null || !inputWasFloat32) return g as F32 | null;
  const f = g.float();
  g.dispose();
  return f;
}

type Kept16 = { x16: BF16; owned: boolean };

/**
 * precision 'bf16' forward of a layer with weights: the input rounded to bfloat16 once (unless
 * it already is), `run` on it with the output dtype (float32 for the network's last layer, else
 * bfloat16); the bfloat16 input is returned to keep for backward in training, else freed.
 */
function forward16(
  x: F32,
  outputsFloat32: boolean,
  training: boolean,
  run: (x16: BF16, outDtype: 'float32' | 'bfloat16') => Tensor,
): { y: F32; kept: Kept16 | null } {
  const input = bf16Input(x);
  let y: F32;
  try {
    y = run(input.x16, outputsFloat32 ? 'float32' : 'bfloat16') as unknown as F32;
  } catch (e) {
    if (input.owned) input.x16.dispose();
    throw e;
  }
  if (training) return { y, kept: input };
  if (input.owned) input.x16.dispose();
  return { y, kept: null };
}

/** Its backward: the gradient rounded to bfloat16 once, `run`, the input gradient in the input's dtype. */
function backward16(gradOutput: F32, input: Kept16, run: (g16: BF16, x16: BF16) => BF16 | null): F32 | null {
  const grad = bf16Grad(gradOutput);
  try {
    return asInputDtype(run(grad.g16, input.x16), input.owned);
  } finally {
    if (grad.owned) grad.g16.dispose();
    if (input.owned) input.x16.dispose();
  }
}

/** What a layer's backward asks of conv2dBackward / linearBackward: accumulate into its parameters' gradients. */
function gradOptions(weight: Parameter, bias: Parameter | null, needInputGrad: boolean) {
  return {
    computeGradInput: needInputGrad,
    computeGradBias: bias !== null,
    gradWeight: weight.grad,
    ...(bias !== null ? { gradBias: bias.grad } : {}),
    accumulate: true,
  };
}

function noForward(layer: string): never {
  throw alexnetError('ERR_ARGUMENT', `${layer}.backward: no activations kept: call forward in training mode (module.train()) before backward`);
}

/** How Conv2d / Linear set their initial values. */
export interface ParameterInitOptions {
  /** 'pytorch' (default): PyTorch's reset_parameters, U(+-1/sqrt(fanIn)) for weight and bias; 'zeros': all zero (for models that set their own). */
  init?: 'pytorch' | 'zeros';
  /** generator for the initial values (default: the module-wide one, see manualSeed) */
  rng?: Rng;
  /** device of the parameters (default 'cpu') */
  device?: Device | string;
}

function initTensor(shape: number[], fanIn: number, o: ParameterInitOptions): F32 {
  const init = o.init ?? 'pytorch';
  if (init === 'zeros') return Tensor.zeros(shape, { device: o.device });
  if (init !== 'pytorch') throw alexnetError('ERR_ARGUMENT', `init must be 'pytorch' or 'zeros', got ${String(init)}`);
  const b = pytorchDefaultBound(fanIn);
  const host = fillUniform(new Float32Array(shape.reduce((a, d) => a * d, 1)), o.rng ?? defaultRng(), -b, b);
  return Tensor.from(host, shape, { device: o.device });
}

export interface Conv2dLayerOptions extends ParameterInitOptions {
  stride?: Pair;
  padding?: Pair;
  groups?: number;
  /** learn a bias (default true) */
  bias?: boolean;
}

/** torch.nn.Conv2d: weight [out, in/groups, kH, kW] (OIHW), bias [out]. */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly groups: number;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  #input: F32 | null = null;
  /** precision 'bf16': the bfloat16 input kept for backward, and whether this layer made it */
  #input16: Kept16 | null = null;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options: Conv2dLayerOptions = {}) {
    super();
    this.inChannels = positiveInt(inChannels, 'Conv2d: inChannels');
    this.outChannels = positiveInt(outChannels, 'Conv2d: outChannels');
    this.kernelSize = pair(kernelSize).map((k) => positiveInt(k, 'Conv2d: kernelSize')) as [number, number];
    this.stride = pair(options.stride ?? 1);
    this.padding = pair(options.padding ?? 0);
    this.groups = positiveInt(options.groups ?? 1, 'Conv2d: groups');
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw alexnetError('ERR_ARGUMENT', `Conv2d: inChannels (${inChannels}) and outChannels (${outChannels}) must be divisible by groups (${this.groups})`);
    }
    const [kh, kw] = this.kernelSize;
    const fanIn = (inChannels / this.groups) * kh * kw;
    this.weight = this.addParameter('weight', initTensor([outChannels, inChannels / this.groups, kh, kw], fanIn, options));
    this.bias = options.bias === false ? null : this.addParameter('bias', initTensor([outChannels], fanIn, options));
  }

  #opts() {
    const o = { stride: this.stride, padding: this.padding, groups: this.groups };
    return this.memoryFormat === 'channels_last' ? { ...o, memoryFormat: 'channels_last' as const } : o;
  }

  /** With `relu`, returns max(conv(x), 0) in one pass (Sequential fuses Conv2d + ReLU so). */
  forward(x: F32, relu = false): F32 {
    this.clearCache();
    if (this.precision === 'bf16') return this.#forward16(x, relu);
    const y = conv2d(x, this.weight.data, this.bias?.data ?? null, relu ? { ...this.#opts(), relu } : this.#opts());
    if (this.training) this.#input = x;
    return y;
  }

  // precision 'bf16': the bfloat16 convolution (bfloat16 input and weight copy, float32 bias and
  // accumulation), its output bfloat16, or float32 for the network's last layer.
  #forward16(x: F32, relu: boolean): F32 {
    const o = { ...this.#opts(), ...(relu ? { relu } : {}) };
    const { y, kept } = forward16(x, this.outputsFloat32, this.training, (x16, outDtype) =>
      conv2d(x16, this.weight.bf16(), this.bias?.data ?? null, { ...o, outDtype }));
    this.#input16 = kept;
    return y;
  }

  #backward16(gradOutput: F32, needInputGrad: boolean): F32 | null {
    const input = this.#input16!;
    this.#input16 = null;
    return backward16(gradOutput, input, (g16, x16) =>
      conv2dBackward(g16, x16, this.weight.bf16(), { ...this.#opts(), ...this.#gradOptions(needInputGrad) }).gradInput);
  }

  #gradOptions(needInputGrad: boolean) {
    return gradOptions(this.weight, this.bias, needInputGrad);
  }

  backward(gradOutput: F32, needInputGrad = true): F32 | null {
    if (this.#input16 !== null) return this.#backward16(gradOutput, needInputGrad);
    const x = this.#input ?? noForward('Conv2d');
    this.#input = null;
    return conv2dBackward(gradOutput, x, this.weight.data, { ...this.#opts(), ...this.#gradOptions(needInputGrad) }).gradInput;
  }

  override clearCache(): void {
    this.#input = null;
    if (this.#input16?.owned) this.#input16.x16.dispose();
    this.#input16 = null;
  }
  protected override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernel=${fmt(this.kernelSize)}, stride=${fmt(this.stride)}, padding=${fmt(this.padding)}${this.groups > 1 ? `, groups=${this.groups}` : ''}${this.bias ? '' : ', bias=false'}`;
  }
}

export interface LinearLayerOptions extends ParameterInitOptions {
  /** learn a bias (default true) */
  bias?: boolean;
}

/** torch.nn.Linear: y = x W^T + b with weight [out, in], bias [out]; input [N, in]. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  #input: F32 | null = null;
  /** precision 'bf16': the bfloat16 input kept for backward, and whether this layer made it */
  #input16: Kept16 | null = null;

  constructor(inFeatures: number, outFeatures: number, options: LinearLayerOptions = {}) {
    super();
    this.inFeatures = positiveInt(inFeatures, 'Linear: inFeatures');
    this.outFeatures = positiveInt(outFeatures, 'Linear: outFeatures');
    this.weight = this.addParameter('weight', initTensor([outFeatures, inFeatures], inFeatures, options));
    this.bias = options.bias === false ? null : this.addParameter('bias', initTensor([outFeatures], inFeatures, options));
  }

  /** With `relu`, returns max(linear(x), 0) in one call (Sequential fuses Linear + ReLU so). */
  forward(x: F32, relu = false): F32 {
    this.clearCache();
    if (this.precision === 'bf16') return this.#forward16(x, relu);
    const y = linear(x, this.weight.data, this.bias?.data ?? null, relu ? { relu } : undefined);
    if (this.training) this.#input = x;
    return y;
  }

  // precision 'bf16': bfloat16 input and weight copy, float32 bias and accumulation; the output
  // bfloat16, or float32 for the network's last layer (the logits).
  #forward16(x: F32, relu: boolean): F32 {
    const o = relu ? { relu } : {};
    const { y, kept } = forward16(x, this.outputsFloat32, this.training, (x16, outDtype) =>
      linear(x16, this.weight.bf16(), this.bias?.data ?? null, { ...o, outDtype }));
    this.#input16 = kept;
    return y;
  }

  #backward16(gradOutput: F32, needInputGrad: boolean): F32 | null {
    const input = this.#input16!;
    this.#input16 = null;
    return backward16(gradOutput, input, (g16, x16) => linearBackward(g16, x16, this.weight.bf16(), this.#gradOptions(needInputGrad)).gradInput);
  }

  #gradOptions(needInputGrad: boolean) {
    return gradOptions(this.weight, this.bias, needInputGrad);
  }

  backward(gradOutput: F32, needInputGrad = true): F32 | null {
    if (this.#input16 !== null) return this.#backward16(gradOutput, needInputGrad);
    const x = this.#input ?? noForward('Linear');
    this.#input = null;
    return linearBackward(gradOutput, x, this.weight.data, this.#gradOptions(needInputGrad)).gradInput;
  }

  override clearCache(): void {
    this.#input = null;
    if (this.#input16?.owned) this.#input16.x16.dispose();
    this.#input16 = null;
  }
  protected override extraRepr(): string {
    return `in=${this.inFeatures}, out=${this.outFeatures}${this.bias ? '' : ', bias=false'}`;
  }
}

/** torch.nn.ReLU (backward uses the forward output). */
export class ReLU extends Module {
  #output: F32 | null = null;
  #passThrough = false;

  /** elementwise: either layout */
  override get inputFormat(): null {
    return null;
  }

  forward(x: F32): F32 {
    this.clearCache();
    const y = relu(x);
    if (this.training) this.#output = y;
    return y;
  }

  /** Takes `y` as this layer's output when the previous layer already applied the ReLU. */
  adoptOutput(y: F32): void {
    this.clearCache();
    this.#output = this.training ? y : null;
  }

  /**
   * The next layer (a Dropout, fused by Sequential) applies this ReLU and folds its derivative
   * into its mask: this layer's backward passes the gradient through unchanged.
   */
  passThrough(): void {
    this.clearCache();
    this.#passThrough = this.training;
  }

  backward(gradOutput: F32, needInputGrad = true): F32 | null {
    if (this.#passThrough) {
      this.#passThrough = false;
      return needInputGrad ? gradOutput : null;
    }
    const y = this.#output ?? noForward('ReLU');
    this.#output = null;
    return needInputGrad ? reluBackward(gradOutput, y) : null;
  }

  override clearCache(): void {
    this.#output = null;
    this.#passThrough = false;
  }
}

/**
 * A layer without parameters whose backward needs both its input and its output (MaxPool2d: where
 * each maximum was; LocalResponseNorm: the normaliser): forward keeps them in training mode only,
 * backward consumes them. A subclass gives its operator pair and the options it passes them.
 */
abstract class InputOutputLayer<O> extends Module {
  readonly #layerName: string;
  readonly #forwardOp: (x: F32, options: O) => F32;
  readonly #backwardOp: (gradOutput: F32, x: F32, y: F32, options: O) => F32;
  #input: F32 | null = null;
  #output: F32 | null = null;

  constructor(layerName: string, forwardOp: (x: F32, options: O) => F32, backwardOp: (gradOutput: F32, x: F32, y: F32, options: O) => F32) {
    super();
    this.#layerName = layerName;
    this.#forwardOp = forwardOp;
    this.#backwardOp = backwardOp;
  }

  /** The options both operators get. */
  protected abstract opOptions(): O;

  forward(x: F32): F32 {
    this.clearCache();
    const y = this.#forwardOp(x, this.opOptions());
    if (this.training) {
      this.#input = x;
      this.#output = y;
    }
    return y;
  }

  backward(gradOutput: F32, needInputGrad = true): F32 | null {
    const x = this.#input ?? noForward(this.#layerName);
    const y = this.#output ?? noForward(this.#layerName);
    this.clearCache();
    return needInputGrad ? this.#backwardOp(gradOutput, x, y, this.opOptions()) : null;
  }

  override clearCache(): void {
    this.#input = null;
    this.#output = null;
  }
}

/** torch.nn.MaxPool2d(kernelSize, stride = kernelSize, padding = 0). */
export class MaxPool2d extends InputOutputLayer<Pool2dOptions> {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];

  constructor(kernelSize: Pair, stride?: Pair, padding: Pair = 0) {
    super('MaxPool2d', maxPool2d, maxPool2dBackward);
    this.kernelSize = pair(kernelSize).map((k) => positiveInt(k, 'MaxPool2d: kernelSize')) as [number, number];
    this.stride = pair(stride ?? kernelSize);
    this.padding = pair(padding);
  }

  protected opOptions(): Pool2dOptions {
    const o: Pool2dOptions = { kernelSize: this.kernelSize, stride: this.stride, padding: this.padding };
    if (this.memoryFormat === 'channels_last') o.memoryFormat = 'channels_last';
    return o;
  }

  protected override extraRepr(): string {
    return `kernel=${fmt(this.kernelSize)}, stride=${fmt(this.stride)}`;
  }
}

/**
 * torch.nn.LocalResponseNorm(size, alpha = 1e-4, beta = 0.75, k = 1), PyTorch's convention:
 * y_c = x_c / (k + alpha / size * sum_{|c'-c| <= size/2} x_c'^2)^beta. Krizhevsky et al. 2012's
 * alpha = 1e-4 per element (size 5, k 2) is alpha = 5e-4 here.
 */
export class LocalResponseNorm extends InputOutputLayer<LrnOptions> {
  constructor(
    readonly size: number,
    readonly alpha = 1e-4,
    readonly beta = 0.75,
    readonly k = 1,
  ) {
    super('LocalResponseNorm', localResponseNorm, localResponseNormBackward);
    positiveInt(size, 'LocalResponseNorm: size');
  }

  protected opOptions(): LrnOptions {
    return { size: this.size, alpha: this.alpha, beta: this.beta, k: this.k };
  }

  protected override channelsLastRefusal(): string {
    return 'its window runs across channels of [N, C, H, W] activations and it has no channels-last form';
  }

  protected override extraRepr(): string {
    return `size=${this.size}, alpha=${this.alpha}, beta=${this.beta}, k=${this.k}`;
  }
}

export interface DropoutLayerOptions {
  /** seed of the random stream (an integer in [0, 2^53); default 0) */
  seed?: number;
  /** position in the stream to start at (default 0) */
  offset?: number;
}

/**
 * torch.nn.Dropout(p): identity in eval mode; in training, inverted dropout (kept elements are
 * scaled by 1/(1-p)). Masks come from a counter-based stream: a call draws elements
 * [offset, offset + numel) of the stream `seed`, then `offset` advances by numel, so every call
 * draws a fresh mask and the sequence is fixed by (seed, offset). A checkpoint saves both
 * (`state()` / `loadState()`) to resume the exact stream.
 */
export class Dropout extends Module {
  readonly p: number;
  seed: number;
  offset: number;
  #rank = 0;
  #worldSize = 1;
  #mask: F32 | null = null;
  #identity = false;
  #pending = false;
  /** deviceStream: the stream position in device memory, and the value it holds once the queued work has run */
  #counter: Tensor<'int32'> | null = null;
  #counterAt = -1;
  #deviceStream = false;
  #lastAdvance = 0;

  constructor(p = 0.5, options: DropoutLayerOptions = {}) {
    super();
    if (typeof p !== 'number' || !(p >= 0 && p < 1)) throw alexnetError('ERR_ARGUMENT', `Dropout: p must be in [0, 1), got ${String(p)}`);
    this.p = p;
    this.seed = options.seed ?? 0;
    this.offset = options.offset ?? 0;
    if (!Number.isSafeInteger(this.seed) || this.seed < 0) throw alexnetError('ERR_ARGUMENT', `Dropout: seed must be an integer in [0, 2^53), got ${String(this.seed)}`);
    if (!Number.isSafeInteger(this.offset) || this.offset < 0) throw alexnetError('ERR_ARGUMENT', `Dropout: offset must be a non-negative integer, got ${String(this.offset)}`);
  }

  /** elementwise: either layout */
  override get inputFormat(): null {
    return null;
  }

  /** True while the layer draws from this training (forward would draw a mask). */
  get active(): boolean {
    return this.training && this.p > 0;
  }

  /**
   * With `relu` (Sequential's fused ReLU + Dropout), returns dropout(max(x, 0)) in one pass
   * whose one mask also carries the ReLU's derivative; only for an active layer.
   */
  forward(x: F32, relu = false): F32 {
    this.clearCache();
    if (!this.active) {
      if (relu) throw alexnetError('ERR_INTERNAL', 'Dropout.forward: the fused ReLU needs an active Dropout (training, p > 0)');
      this.#identity = true;
      this.#pending = this.training;
      return x;
    }
    // data-parallel: this rank's slice of the stream a single process would draw for the
    // ranks' batches laid end to end (see shardStream)
    const shift = this.#rank * x.numel;
    const advance = x.numel * this.#worldSize;
    const { output, mask } = this.#deviceStream
      ? dropout(x, { p: this.p, seed: this.seed, offset: shift, advance, relu }, this.#syncCounter(x.device))
      : dropout(x, { p: this.p, seed: this.seed, offset: this.offset + shift, relu });
    this.offset += advance;
    if (this.#deviceStream) this.#counterAt += advance;
    this.#lastAdvance = advance;
    this.#mask = mask;
    this.#pending = true;
    return output;
  }

  /**
   * Draws at a stream position held in device memory (issue 14: a captured CUDA graph replays
   * the same arguments, so the host offset would repeat its mask): each forward reads the
   * counter on the device and advances it there; the host `offset` stays its mirror, in step
   * (the Trainer's cudaGraph option turns this on and advances the mirror at each replay, see
   * replayed()). The masks are those the host offset draws, bit for bit.
   */
  get deviceStream(): boolean {
    return this.#deviceStream;
  }
  set deviceStream(on: boolean) {
    this.#deviceStream = on;
  }

  /**
   * The counter on `device` holding `offset` once the queued work has run: made, or written in
   * queue order, when it does not (an upload: call it outside a CUDA graph capture).
   */
  counterTensor(device: Device | string): Tensor<'int32'> {
    return this.#syncCounter(device);
  }

  #syncCounter(device: Device | string): Tensor<'int32'> {
    if (this.#counter === null || this.#counter.disposed || this.#counter.device !== device) {
      this.#counter?.dispose();
      this.#counter = dropoutCounter(this.offset, device);
      this.#counterAt = this.offset;
    } else if (this.#counterAt !== this.offset) {
      writeDropoutCounter(this.#counter, this.offset);
      this.#counterAt = this.offset;
    }
    return this.#counter;
  }

  /** How far the last forward advanced the stream (0 when it drew nothing). */
  get lastAdvance(): number {
    return this.#lastAdvance;
  }

  /** The stream position and the counter's, to undo a forward that was queued but will not run (a graph capture). */
  streamMark(): { offset: number; counterAt: number } {
    return { offset: this.offset, counterAt: this.#counterAt };
  }
  streamRewind(mark: { offset: number; counterAt: number }): void {
    this.offset = mark.offset;
    this.#counterAt = mark.counterAt;
  }

  /** A replayed captured forward advanced the device counter by `advance`: the host mirror follows. */
  replayed(advance: number): void {
    this.offset += advance;
    this.#counterAt += advance;
  }

  /** Frees the device counter (a later forward in deviceStream makes it again from `offset`). */
  releaseCounter(): void {
    this.#counter?.dispose();
    this.#counter = null;
    this.#counterAt = -1;
  }

  backward(gradOutput: F32, needInputGrad = true): F32 | null {
    if (!this.#pending) noForward('Dropout');
    const mask = this.#mask;
    const identity = this.#identity;
    this.#mask = null; // keep it alive until the op below is queued
    this.#pending = false;
    this.#identity = false;
    let g: F32 | null = null;
    if (needInputGrad) g = identity ? gradOutput : dropoutBackward(gradOutput, mask!);
    mask?.dispose();
    return g;
  }

  /**
   * Data-parallel training (the Trainer calls it on every rank): each forward call draws rank
   * `rank`'s slice [offset + rank·n, offset + (rank + 1)·n) of the stream and advances `offset`
   * by worldSize·n, where n is the input's size, the same on every rank. The ranks' masks are
   * then disjoint slices, and together exactly the mask one process draws for the ranks'
   * batches one after another: data-parallel training with dropout equals single-process
   * training at the global batch. shardStream(0, 1) is the single-process stream.
   */
  shardStream(rank: number, worldSize: number): void {
    if (!Number.isSafeInteger(worldSize) || worldSize < 1 || !Number.isSafeInteger(rank) || rank < 0 || rank >= worldSize) {
      throw alexnetError('ERR_ARGUMENT', `Dropout.shardStream: expected 0 <= rank < worldSize (integers), got rank ${String(rank)}, worldSize ${String(worldSize)}`);
    }
    this.#rank = rank;
    this.#worldSize = worldSize;
  }

  /** The stream position, for checkpoints. */
  state(): { seed: number; offset: number } {
    return { seed: this.seed, offset: this.offset };
  }
  loadState(s: { seed: number; offset: number }): void {
    if (!Number.isSafeInteger(s.seed) || s.seed < 0 || !Number.isSafeInteger(s.offset) || s.offset < 0) {
      throw alexnetError('ERR_ARGUMENT', `Dropout.loadState: expected non-negative integers seed and offset, got ${JSON.stringify(s)}`);
    }
    this.seed = s.seed;
    this.offset = s.offset;
  }

  override clearCache(): void {
    this.#mask?.dispose();
    this.#mask = null;
    this.#pending = false;
    this.#identity = false;
  }
  protected override extraRepr(): string {
    return `p=${this.p}`;
  }
}

/**
 * torch.nn.Flatten(startDim = 1): [N, C, H, W] -> [N, C*H*W] in C, H, W order (a view). Under
 * memoryFormat 'channels_last' a 4-D input is [N, H, W, C]: it is converted back to
 * [N, C, H, W] first, so the features come in PyTorch's order and the next Linear's weights keep
 * their layout; backward converts the gradient the other way.
 */
export class Flatten extends Module {
  #inputShape: readonly number[] | null = null;
  #converted = false;

  forward(x: F32): F32 {
    tensorInput(x, 'Flatten');
    if (x.rank < 2) throw alexnetError('ERR_SHAPE', `Flatten: expected an input of rank >= 2, got ${fmt(x.shape)}`);
    const convert = this.memoryFormat === 'channels_last' && x.rank === 4;
    this.#inputShape = this.training ? x.shape : null;
    this.#converted = convert;
    if (!convert) return x.reshape([x.shape[0]!, -1]);
    const nchw = toMemoryFormat(x, 'contiguous_format');
    const y = nchw.reshape([x.shape[0]!, -1]); // a view: the storage lives while y does
    nchw.dispose();
    return y;
  }

  backward(gradOutput: F32, needInputGrad = true): F32 | null {
    const shape = this.#inputShape ?? noForward('Flatten');
    this.#inputShape = null;
    if (!needInputGrad) return null;
    if (!this.#converted) return gradOutput.reshape(shape);
    const [n, h, w, c] = shape as [number, number, number, number];
    const g = gradOutput.reshape([n, c, h, w]);
    const cl = toMemoryFormat(g, 'channels_last');
    g.dispose();
    return cl;
  }

  override clearCache(): void {
    this.#inputShape = null;
  }
}

/**
 * torch.nn.AdaptiveAvgPool2d(outputSize) where the input already has that size: the identity
 * (torchvision's AlexNet at 224x224 input). Other sizes throw ERR_SHAPE (not implemented).
 */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: [number, number];
  #seen = false;

  constructor(outputSize: Pair) {
    super();
    this.outputSize = pair(outputSize);
  }

  forward(x: F32): F32 {
    tensorInput(x, 'AdaptiveAvgPool2d');
    const [h, w] = this.outputSize;
    const cl = this.memoryFormat === 'channels_last'; // [N, H, W, C]
    if (x.rank !== 4 || x.shape[cl ? 1 : 2] !== h || x.shape[cl ? 2 : 3] !== w) {
      throw alexnetError(
        'ERR_SHAPE',
        `AdaptiveAvgPool2d: only the identity case is implemented: expected input ${cl ? `[N, ${h}, ${w}, C]` : `[N, C, ${h}, ${w}]`}, got ${fmt(x.shape)} (use the model's input size)`,
      );
    }
    this.#seen = this.training;
    return x;
  }

  backward(gradOutput: F32, needInputGrad = true): F32 | null {
    if (!this.#seen) noForward('AdaptiveAvgPool2d');
    this.#seen = false;
    return needInputGrad ? gradOutput : null;
  }

  override clearCache(): void {
    this.#seen = false;
  }
  protected override extraRepr(): string {
    return `outputSize=${fmt(this.outputSize)}`;
  }
}

/** The library's layers whose output has their input's rank (Sequential's layout check looks ahead through them). */
const KEEPS_RANK: (abstract new (...args: never[]) => Module)[] = [Conv2d, Linear, ReLU, MaxPool2d, LocalResponseNorm, Dropout, AdaptiveAvgPool2d];

/**
 * torch.nn.Sequential: children run in order, named '0', '1', ... (or the given names). Owns the
 * activations between its children (see module.ts): kept for backward in training mode and
 * disposed once backward has used them or at the next forward; in eval mode each is disposed as
 * soon as the next child has consumed it.
 */
/**
 * How Sequential runs ReLU followed by an active (training, p > 0) Dropout (issue 14):
 *  - 'fused' (the default): one pass applies the ReLU and the dropout mask and records one mask
 *    carrying both derivatives, so backward is one pass (dy * mask) instead of two; a Conv2d or
 *    Linear before the ReLU then runs with its bias only (no ReLU epilogue).
 *  - 'epilogue': as 'fused', but the Conv2d / Linear before keeps its ReLU epilogue and the
 *    dropout pass applies ReLU again (idempotent: the same values and mask).
 *  - 'off': unfused: the Conv2d / Linear + ReLU fusion, then a separate dropout pass; backward
 *    runs the dropout's pass and then the ReLU's.
 * All three give the same outputs bit for bit and the same gradients (up to the sign of zero
 * gradients where the ReLU cut: dy * 0 keeps dy's sign, ReLU's backward writes +0), so the
 * same training step (test/relu-dropout.test.ts).
 * Why 'fused' is the default (bench/relu-dropout.mjs, forward + backward, the modes taking turns
 * in one process on the 2-core CPU build machine): ReLU + Dropout on [256, 4096] took 0.73x the
 * time of 'off' in either fused mode; Linear(1024, 4096) + ReLU + Dropout at batch 64, 0.92x the
 * CPU time (the GEMM dominates), 'fused' and 'epilogue' within noise of each other. 'fused' does
 * the least work: on the CPU the Linear's ReLU is a separate in-place pass after the GEMM
 * (cache-hot, hence cheap), which 'fused' skips; on CUDA the ReLU epilogue costs nothing
 * (cuBLASLt's RELU_BIAS, or the bias kernel), so the two modes run the same kernels there.
 */
export type ReluDropoutFusion = 'fused' | 'epilogue' | 'off';

function fusionFromEnv(v: string | undefined): ReluDropoutFusion {
  return v === 'off' || v === 'epilogue' ? v : 'fused';
}
let reluDropoutFusion: ReluDropoutFusion = fusionFromEnv(process.env.ALEXNET_RELU_DROPOUT);

/** Sets how Sequential runs ReLU + Dropout (ReluDropoutFusion; also the ALEXNET_RELU_DROPOUT environment variable at start); returns the previous mode. */
export function setReluDropoutFusion(mode: ReluDropoutFusion): ReluDropoutFusion {
  if (mode !== 'fused' && mode !== 'epilogue' && mode !== 'off') throw alexnetError('ERR_ARGUMENT', `setReluDropoutFusion: expected 'fused', 'epilogue' or 'off', got ${String(mode)}`);
  const before = reluDropoutFusion;
  reluDropoutFusion = mode;
  return before;
}

export class Sequential extends Module {
  #input: F32 | null = null;
  #output: F32 | null = null;
  #activations: F32[] = [];
  /** memoryFormat 'channels_last', on the model setMemoryFormat was called on: its converted input */
  #converted: F32 | null = null;
  /** ... and whether its 4-D output was converted back to [N, C, H, W] (backward converts the gradient) */
  #outputConverted = false;

  constructor(...layers: Module[]) {
    super();
    layers.forEach((m, i) => this.addModule(String(i), m));
  }

  /** The model setMemoryFormat('channels_last') was called on converts its [N, C, H, W] input itself. */
  override get inputFormat(): MemoryFormat {
    return this.convertsInput ? 'contiguous_format' : this.memoryFormat;
  }

  /** Appends a layer under the next index (or `name`); returns this. */
  append(layer: Module, name: string = String(this.children().length)): this {
    this.addModule(name, layer);
    return this;
  }

  get length(): number {
    return this.children().length;
  }

  /** The i-th child. */
  at(i: number): Module {
    const m = this.children()[i];
    if (m === undefined) throw alexnetError('ERR_ARGUMENT', `Sequential.at: index ${i} out of range [0, ${this.length})`);
    return m;
  }

  forward(x: F32): F32 {
    this.clearCache();
    tensorInput(x, 'Sequential');
    // a child in another layout is refused before any layer runs, wherever the activations'
    // rank is known ahead (see #checkLayouts)
    this.#checkLayouts(x.rank);
    // channels last: the model's [N, C, H, W] input is converted here, once (setMemoryFormat);
    // an input of another rank (a classifier's [N, F]) has no layout and goes in as it is
    const input = x;
    if (this.convertsInput && x.rank === 4) x = this.#converted = toMemoryFormat(x, 'channels_last');
    const layers = this.children();
    let h = x;
    const kept: F32[] = [];
    try {
      const fusion = reluDropoutFusion;
      const activeDropout = (d: Module | undefined): d is Dropout => fusion !== 'off' && d instanceof Dropout && d.active;
      let reluIntoDropout = false; // 'epilogue': the layer before applied the ReLU, the Dropout next folds in its derivative
      for (let i = 0; i < layers.length; i++) {
        const m = layers[i]!;
        const after = layers[i + 1];
        if (h.rank === 4) this.#checkLayout(m, i);
        let next: F32;
        if (m instanceof ReLU && activeDropout(after)) {
          // ReLU followed by an active Dropout: one pass (the Dropout applies the ReLU and records
          // one mask carrying both derivatives); the ReLU's backward passes the gradient through.
          m.passThrough();
          next = after.forward(h, true);
          i++;
        } else if (reluIntoDropout && m instanceof Dropout) {
          reluIntoDropout = false;
          next = m.forward(h, true);
        } else if ((m instanceof Conv2d || m instanceof Linear) && after instanceof ReLU && !(fusion === 'fused' && activeDropout(layers[i + 2]))) {
          // Conv2d or Linear followed by ReLU runs as one fused call; the ReLU adopts the result as its output.
          next = m.forward(h, true);
          if (fusion === 'epilogue' && activeDropout(layers[i + 2])) {
            after.passThrough();
            reluIntoDropout = true;
          } else {
            after.adoptOutput(next);
          }
          i++;
        } else {
          // (a Conv2d or Linear before ReLU + active Dropout, with fusion 'fused': bias only here,
          // the ReLU in the dropout's pass; see ReluDropoutFusion)
          next = m.forward(h);
        }
        if (this.training) {
          if (next !== x) kept.push(next);
        } else if (h !== x && h !== next) {
          h.dispose();
        }
        h = next;
      }
    } catch (e) {
      // a child refused (its shape, or a layout check the rank was not known ahead for): the
      // activations made so far go now, not with the garbage collector
      for (const t of new Set([...kept, h, this.#converted])) if (t !== null && t !== input) t.dispose();
      this.#converted = null;
      for (const m of layers) m.clearCache();
      throw e;
    }
    // the model that converted its input gives a 4-D output back as [N, C, H, W] too (a
    // feature extractor set to channels last on its own; a whole model's Flatten already did)
    this.#outputConverted = false;
    if (this.#converted !== null && h.rank === 4) {
      const nhwc = h;
      h = toMemoryFormat(nhwc, 'contiguous_format');
      this.#outputConverted = true;
      if (this.training) kept.push(nhwc);
      else if (nhwc !== this.#converted) nhwc.dispose();
    }
    if (!this.training && this.#converted !== null && this.#converted !== h) {
      this.#converted.dispose();
      this.#converted = null;
    }
    if (this.training) {
      this.#input = x;
      this.#output = h;
      this.#activations = kept;
    }
    return h;
  }

  /**
   * Refuses, before anything runs, a child (at any depth of nested Sequentials) whose layout
   * differs from the activations it would get, for every child the activations' rank is known
   * at: from an input of rank `rank`, through the library's layers (Flatten makes [N, F], the
   * others keep the rank). Past a layer of unknown output rank (a Module of the caller's) forward
   * checks as it goes. Returns the output rank, or null when unknown.
   */
  #checkLayouts(rank: number | null): number | null {
    this.namedChildren().forEach(([, m], i) => {
      if (rank === 4) this.#checkLayout(m, i);
      if (m instanceof Sequential) rank = m.#checkLayouts(rank);
      else if (m instanceof Flatten) rank = rank === null ? null : 2;
      else if (!KEEPS_RANK.some((c) => m instanceof c)) rank = null;
    });
    return rank;
  }

  /**
   * A child must take the activations in the layout this container passes them ([N, H, W, C]
   * inside a channels-last model, else [N, C, H, W]); otherwise it would read one as the other
   * (e.g. setMemoryFormat('channels_last') on a lone Conv2d of an NCHW model).
   */
  #checkLayout(m: Module, i: number): void {
    const want = m.inputFormat;
    if (want === null || want === this.memoryFormat) return;
    const name = this.namedChildren()[i]?.[0] ?? String(i);
    throw alexnetError(
      'ERR_ARGUMENT',
      `Sequential: child '${name}' (${m.constructor.name}) takes ${want === 'channels_last' ? '[N, H, W, C]' : '[N, C, H, W]'} activations but this ${this.memoryFormat === 'channels_last' ? 'channels-last' : 'contiguous-format'} Sequential passes ${this.memoryFormat === 'channels_last' ? '[N, H, W, C]' : '[N, C, H, W]'} ones: call setMemoryFormat on the whole model instead of on a part of it`,
    );
  }

  backward(gradOutput: F32, needInputGrad = true): F32 | null {
    if (this.#input === null) noForward('Sequential');
    const layers = this.children();
    const convertedInput = this.#converted !== null;
    // a 4-D output converted back to [N, C, H, W]: its gradient goes in as [N, H, W, C]
    let g: F32 | null = this.#outputConverted ? toMemoryFormat(gradOutput, 'channels_last') : gradOutput;
    try {
      for (let i = layers.length - 1; i >= 0; i--) {
        const need = i > 0 || needInputGrad;
        const next: F32 | null = layers[i]!.backward(g!, need);
        layers[i]!.runBackwardHooks();
        if (g !== gradOutput && g !== next) g!.dispose();
        if (next === null && need) throw alexnetError('ERR_INTERNAL', `Sequential.backward: child '${i}' returned no input gradient`);
        g = next;
      }
    } finally {
      this.clearCache();
    }
    if (g !== null && convertedInput) {
      // the input gradient in the model's input layout, [N, C, H, W]
      const nchw = toMemoryFormat(g, 'contiguous_format');
      if (g !== gradOutput) g.dispose();
      g = nchw;
    }
    return g;
  }

  override clearCache(): void {
    if (this.#converted !== null && this.#converted !== this.#output) this.#converted.dispose();
    this.#converted = null;
    this.#outputConverted = false;
    const keep = new Set<F32 | null>([this.#input, this.#output]);
    for (const t of new Set(this.#activations)) if (!keep.has(t)) t.dispose();
    this.#activations = [];
    this.#input = null;
    this.#output = null;
  }
}

/** The Dropout layers of a module, in module order, with their dotted names. */
export function namedDropouts(module: Module): [string, Dropout][] {
  return module.namedModules().filter((e): e is [string, Dropout] => e[1] instanceof Dropout);
}

/** The Dropout layers of a module with their dotted names, and their stream positions (for checkpoints). */
export function dropoutState(module: Module): Record<string, { seed: number; offset: number }> {
  const out: Record<string, { seed: number; offset: number }> = {};
  for (const [name, d] of namedDropouts(module)) out[name] = d.state();
  return out;
}

/** Restores what dropoutState returned (every Dropout of the module must be listed). */
export function loadDropoutState(module: Module, state: Record<string, { seed: number; offset: number }>): void {
  const drops = namedDropouts(module);
  const missing = drops.map(([n]) => n).filter((n) => !(n in state));
  if (missing.length > 0) throw alexnetError('ERR_ARGUMENT', `loadDropoutState: missing state for ${missing.join(', ')}`);
  for (const [n, d] of drops) d.loadState(state[n]!);
}
