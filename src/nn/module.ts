// Module and Parameter: the PyTorch-like skeleton every layer builds on.
//
// - Children are registered in order (`addModule`), parameters likewise (`addParameter`);
//   `namedParameters()` walks them and names each one with PyTorch's dotted path
//   (`features.0.weight`, `classifier.6.bias`, ...): the names of `stateDict()`, of the
//   parameter store's layout and of a checkpoint.
// - `forward(x)` in training mode keeps what `backward` needs; `backward(gradOutput)` ADDS the
//   parameter gradients into `param.grad` (so zero them between steps: `store.zeroGrad()` or
//   `module.zeroGrad()`) and returns the gradient with respect to the input, or null when the
//   caller said it does not need it (`needInputGrad = false`, as for the first layer).
//
// Ownership of tensors (so that memory stays flat from step to step): a module disposes only
// the tensors it creates and does not hand out. A leaf layer never disposes its input or its
// output (the caller owns them); a Sequential owns the activations between its children and
// disposes them when backward has used them, at the next forward, or (in eval mode) as soon as
// the next child has consumed them. Operators run in call order on the device queue and storage
// lives until the last queued task using it has run, so disposing right after enqueueing is safe.
import { alexnetError } from '../errors.js';
import { copy, fill, refreshBf16Copy } from '../ops/elementwise.js';
import type { MemoryFormat } from '../ops/layout.js';
import { Tensor } from '../tensor.js';

export type F32 = Tensor<'float32'>;
export type BF16 = Tensor<'bfloat16'>;

/**
 * A model's arithmetic: 'fp32' (default), or 'bf16' (mixed precision): Conv2d and Linear read a
 * bfloat16 copy of their float32 weights, the input is converted to bfloat16 once at the first
 * layer, activations and the gradients between layers are bfloat16, the last layer with weights
 * outputs float32 for the loss, weight gradients and the weights themselves (the master copy the
 * optimizer updates and checkpoints hold) stay float32. Under 'bf16' the tensors passed between
 * a model's layers are bfloat16 although the Module API types them F32; the model's input and
 * output stay float32.
 */
export type Precision = 'fp32' | 'bf16';

/**
 * A model's activation layout (docs/architecture.md, decision 14): 'contiguous_format' (default,
 * [N, C, H, W]) or 'channels_last': set on a model with setMemoryFormat, its input (still
 * [N, C, H, W]) is converted once to [N, H, W, C] where the model (a Sequential) begins, the
 * convolution stack (Conv2d, bias, ReLU, MaxPool2d, Dropout) runs on [N, H, W, C] activations,
 * and Flatten converts back, so the classifier, the weights (always PyTorch's layouts) and
 * checkpoints are the same in both. Opt-in: the GPU check measures it against NCHW.
 */
export type { MemoryFormat };

/** A learnable tensor and its gradient (same shape, same device). */
export class Parameter {
  /** The values. The parameter store rebinds this to a view of its one params buffer. */
  data: F32;
  /** The accumulated gradient (zeros at first). The store rebinds it to a view of its grads buffer. */
  grad: F32;
  /** The bfloat16 copy of `data` (precision 'bf16'), made on first use; see bf16(). */
  #data16: BF16 | null = null;
  /** The whole buffers the copy is refreshed over: the store's flat ones, or data and #data16. */
  #copyOf: { copy: BF16; source: F32 } | null = null;

  constructor(
    /** The local name inside its module ('weight', 'bias'); the full name comes from namedParameters(). */
    readonly name: string,
    data: F32,
    grad?: F32,
  ) {
    if (!(data instanceof Tensor)) throw alexnetError('ERR_ARGUMENT', `Parameter '${name}': expected data to be a Tensor`);
    if (data.dtype !== 'float32') throw alexnetError('ERR_DTYPE', `Parameter '${name}': data must be float32, got ${data.dtype}`);
    this.data = data;
    this.grad = grad ?? Tensor.zeros(data.shape, { device: data.device });
    if (!sameShape(this.grad.shape, data.shape)) {
      throw alexnetError('ERR_SHAPE', `Parameter '${name}': grad shape ${fmt(this.grad.shape)} differs from data shape ${fmt(data.shape)}`);
    }
  }

  /**
   * The bfloat16 copy of `data`, current: refreshed (converted again) only when `data`'s buffer
   * was written since the copy was made (refreshBf16Copy; the SGD step writes the copy of a
   * ParameterStore's buffer in its own pass, so training converts nothing here). Made on first
   * use, unless a ParameterStore bound one (bindBf16).
   */
  bf16(): BF16 {
    if (this.#data16 === null || this.#data16.disposed || this.#copyOf === null) {
      this.#data16 = Tensor.zeros(this.data.shape, { dtype: 'bfloat16', device: this.data.device });
      this.#copyOf = { copy: this.#data16, source: this.data };
    }
    if (this.#copyOf.source !== this.data && this.#copyOf.copy === this.#data16) this.#copyOf = { copy: this.#data16, source: this.data };
    refreshBf16Copy(this.#copyOf.copy, this.#copyOf.source);
    return this.#data16;
  }

  /**
   * @internal The ParameterStore binds the copy to a view of its flat bfloat16 buffer, refreshed
   * over the flat buffers as a whole (`copy` the store's bfloat16 buffer, `source` its params).
   */
  bindBf16(view: BF16 | null, whole: { copy: BF16; source: F32 } | null): void {
    if (this.#data16 !== null && this.#data16 !== view) this.#data16.dispose();
    this.#data16 = view;
    this.#copyOf = whole;
  }

  /** Frees the bfloat16 copy (the next bf16() makes one again). */
  disposeBf16(): void {
    this.#data16?.dispose();
    this.#data16 = null;
    this.#copyOf = null;
  }

  get shape(): readonly number[] {
    return this.data.shape;
  }
  get numel(): number {
    return this.data.numel;
  }

  /** Copies values into `data` in place (keeps a store binding): a same-shape Tensor or host array. */
  assign(values: F32 | Float32Array | ArrayLike<number>): void {
    if (values instanceof Tensor) {
      if (!sameShape(values.shape, this.data.shape)) {
        throw alexnetError('ERR_SHAPE', `Parameter '${this.name}': cannot assign shape ${fmt(values.shape)} to ${fmt(this.data.shape)}`);
      }
      if (values.device === this.data.device) {
        copy(this.data, values);
        return;
      }
      values = values.dataSync();
    }
    if (values.length !== this.data.numel) {
      throw alexnetError('ERR_SHAPE', `Parameter '${this.name}': cannot assign ${values.length} values to shape ${fmt(this.data.shape)}`);
    }
    const tmp = Tensor.from(values, this.data.shape, { device: this.data.device });
    copy(this.data, tmp);
    tmp.dispose();
  }
}

export interface LoadStateDictOptions {
  /** require exactly the module's keys (default true); shapes are checked either way */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export type StateDict = Map<string, Tensor> | Record<string, Tensor>;

export abstract class Module {
  /** Training mode (dropout active, activations kept for backward). Set with train() / eval(). */
  training = true;
  #precision: Precision = 'fp32';
  #outputsFloat32 = false;
  #memoryFormat: MemoryFormat = 'contiguous_format';
  #convertsInput = false;
  /** The module whose setPrecision / setMemoryFormat call set this one's (null: never set) */
  #precisionRoot: Module | null = null;
  #formatRoot: Module | null = null;
  readonly #children = new Map<string, Module>();
  readonly #params = new Map<string, Parameter>();
  readonly #backwardHooks = new Set<(module: Module) => void>();

  /** Output of the layer for input `x`. In training mode it keeps what backward needs. */
  abstract forward(x: F32): F32;

  /**
   * Adds this layer's parameter gradients into `param.grad` and returns the gradient with respect
   * to the input of the last training-mode forward (null when `needInputGrad` is false).
   */
  abstract backward(gradOutput: F32, needInputGrad?: boolean): F32 | null;

  /**
   * Calls `fn(this)` each time a container (Sequential) has queued this module's backward, i.e.
   * once the operators that write this module's parameter gradients are queued (not run: they
   * run later on the device's queue). The data-parallel gradient reducer starts a bucket's
   * allReduce from it. Returns a function that removes the hook.
   */
  registerBackwardHook(fn: (module: Module) => void): () => void {
    this.#backwardHooks.add(fn);
    return () => void this.#backwardHooks.delete(fn);
  }

  /** @internal Runs the backward hooks (called by containers after this module's backward). */
  runBackwardHooks(): void {
    for (const fn of [...this.#backwardHooks]) fn(this);
  }

  /** Registers a child under `name` (PyTorch's add_module); returns it. */
  addModule<M extends Module>(name: string, module: M): M {
    checkName(name, 'addModule');
    if (!(module instanceof Module)) throw alexnetError('ERR_ARGUMENT', `addModule('${name}'): expected a Module`);
    if (this.#children.has(name) || this.#params.has(name)) throw alexnetError('ERR_ARGUMENT', `addModule: '${name}' is already registered`);
    this.#children.set(name, module);
    return module;
  }

  /** Registers a parameter with initial values `data` (a zero gradient is allocated); returns it. */
  protected addParameter(name: string, data: F32): Parameter {
    checkName(name, 'addParameter');
    if (this.#children.has(name) || this.#params.has(name)) throw alexnetError('ERR_ARGUMENT', `addParameter: '${name}' is already registered`);
    const p = new Parameter(name, data);
    this.#params.set(name, p);
    return p;
  }

  /** Direct children, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.#children];
  }
  children(): Module[] {
    return [...this.#children.values()];
  }
  /** This module ('' ) and every descendant with its dotted name, depth first in registration order. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.#children) out.push(...child.namedModules(prefix === '' ? name : `${prefix}.${name}`));
    return out;
  }
  /** Parameters owned directly by this module (not its children). */
  ownParameters(): [string, Parameter][] {
    return [...this.#params];
  }

  /** Every parameter with its dotted name, own parameters first, then children in order (as PyTorch). */
  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    const seen = new Set<Parameter>();
    for (const [mname, m] of this.namedModules(prefix)) {
      for (const [pname, p] of m.#params) {
        if (seen.has(p)) continue;
        seen.add(p);
        out.push([mname === '' ? pname : `${mname}.${pname}`, p]);
      }
    }
    return out;
  }
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }
  /** Total number of parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((a, p) => a + p.numel, 0);
  }

  /** 'fp32' or 'bf16' (see Precision); set with setPrecision. */
  get precision(): Precision {
    return this.#precision;
  }

  /**
   * @internal Under 'bf16': whether this module is the last one with parameters of the model
   * setPrecision was called on, whose output (the logits) stays float32.
   */
  protected get outputsFloat32(): boolean {
    return this.#outputsFloat32;
  }

  /**
   * Sets the precision of this module and every descendant (see Precision) and marks the last
   * module with parameters (in module order: the classifier's last Linear) to output float32.
   * Returns this. Parameters are untouched: the bfloat16 copies are made on first use.
   */
  setPrecision(precision: Precision): this {
    if (precision !== 'fp32' && precision !== 'bf16') throw alexnetError('ERR_ARGUMENT', `setPrecision: expected 'fp32' or 'bf16', got ${String(precision)}`);
    // Inside a model that setPrecision('bf16') was called on, this module passes bfloat16
    // activations on (and the model converts its input once): 'bf16' again is already the case,
    // and a float32 part would take bfloat16 activations. (A part of a float32 model may be set
    // to 'bf16' on its own: it converts its input and outputs float32.)
    const root = this.#precisionRoot;
    if (root !== null && root !== this && root.#precision === 'bf16') {
      if (precision === 'bf16') return this;
      throw alexnetError('ERR_ARGUMENT', `setPrecision('${precision}'): this ${this.constructor.name} is part of a ${root.constructor.name} set to 'bf16' by its setPrecision; call setPrecision on that model instead`);
    }
    const mods = this.namedModules().map(([, m]) => m);
    for (const m of mods) {
      m.#precision = precision;
      m.#precisionRoot = this;
      m.#outputsFloat32 = false;
      m.clearCache();
      if (precision === 'fp32') for (const p of m.#params.values()) p.disposeBf16();
    }
    const last = mods.filter((m) => m.#params.size > 0).at(-1);
    if (last !== undefined) last.#outputsFloat32 = true;
    return this;
  }

  /** 'contiguous_format' or 'channels_last' (see MemoryFormat); set with setMemoryFormat. */
  get memoryFormat(): MemoryFormat {
    return this.#memoryFormat;
  }

  /**
   * @internal Under 'channels_last': whether this is the module setMemoryFormat was called on,
   * which converts the model's [N, C, H, W] input once (a Sequential does; see MemoryFormat).
   */
  protected get convertsInput(): boolean {
    return this.#convertsInput;
  }

  /**
   * Why this layer cannot run on channels-last activations, or null when it can (the default;
   * LocalResponseNorm overrides it).
   */
  protected channelsLastRefusal(): string | null {
    return null;
  }

  /**
   * Sets the activation layout of this module and every descendant (see MemoryFormat); this
   * module converts the input. Refuses (ERR_ARGUMENT, nothing changed) when a descendant has no
   * channels-last form, naming it. Returns this. Parameters are untouched.
   */
  setMemoryFormat(format: MemoryFormat): this {
    if (format !== 'contiguous_format' && format !== 'channels_last') {
      throw alexnetError('ERR_ARGUMENT', `setMemoryFormat: expected 'contiguous_format' or 'channels_last', got ${String(format)}`);
    }
    // Inside a model that setMemoryFormat('channels_last') was called on, this module already
    // takes the model's converted [N, H, W, C] activations: 'channels_last' again is a no-op (a
    // second conversion would permute them twice), and 'contiguous_format' would read them as
    // [N, C, H, W]. (A part of an NCHW model may be set to 'channels_last' on its own: it
    // converts its 4-D input, and a 4-D output back.)
    const root = this.#formatRoot;
    if (root !== null && root !== this && root.#memoryFormat === 'channels_last') {
      if (format === 'channels_last') return this;
      throw alexnetError(
        'ERR_ARGUMENT',
        `setMemoryFormat('${format}'): this ${this.constructor.name} is part of a ${root.constructor.name} set to 'channels_last' by its setMemoryFormat; call setMemoryFormat on that model instead`,
      );
    }
    const mods = this.namedModules();
    if (format === 'channels_last') {
      const refused = mods.flatMap(([name, m]) => {
        const why = m.channelsLastRefusal();
        return why === null ? [] : [`${name === '' ? '(the model)' : name} (${m.constructor.name}): ${why}`];
      });
      if (refused.length > 0) {
        throw alexnetError('ERR_ARGUMENT', `setMemoryFormat('channels_last'): not available for ${refused.join('; ')} (use 'contiguous_format')`);
      }
    }
    for (const [, m] of mods) {
      m.#memoryFormat = format;
      m.#convertsInput = false;
      m.#formatRoot = this;
      m.clearCache();
    }
    this.#convertsInput = format === 'channels_last';
    return this;
  }

  /**
   * @internal The layout this module takes a 4-D input in: its memoryFormat (a Sequential that
   * converts its input itself takes [N, C, H, W]); null for layers that do not care (elementwise
   * ones). A container refuses a child whose layout differs from the activations it passes
   * (Sequential.forward).
   */
  get inputFormat(): MemoryFormat | null {
    return this.#memoryFormat;
  }

  /**
   * @internal The precision and memory-format settings of this module and its descendants,
   * restored by the returned function (a Trainer whose options are refused leaves the model as
   * it was).
   */
  saveSettings(): () => void {
    const saved = this.namedModules().map(([, m]) => ({ m, p: m.#precision, o: m.#outputsFloat32, f: m.#memoryFormat, c: m.#convertsInput, pr: m.#precisionRoot, fr: m.#formatRoot }));
    return () => {
      for (const { m, p, o, f, c, pr, fr } of saved) {
        const changed = m.#precision !== p || m.#memoryFormat !== f || m.#convertsInput !== c || m.#outputsFloat32 !== o;
        m.#precision = p;
        m.#outputsFloat32 = o;
        m.#memoryFormat = f;
        m.#convertsInput = c;
        m.#precisionRoot = pr;
        m.#formatRoot = fr;
        if (changed) m.clearCache();
        if (p === 'fp32') for (const q of m.#params.values()) q.disposeBf16();
      }
    };
  }

  /** Sets training mode on this module and every descendant; returns this. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) {
      m.training = mode;
      m.clearCache();
    }
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /** Zeroes every parameter gradient (one fill per parameter; a ParameterStore does it in one call). */
  zeroGrad(): void {
    for (const p of this.parameters()) fill(p.grad, 0);
  }

  /**
   * The parameters by dotted name, in order. The tensors are the live parameters (as PyTorch's
   * state_dict): copy them if a snapshot must survive later training steps.
   */
  stateDict(): Map<string, F32> {
    return new Map(this.namedParameters().map(([n, p]) => [n, p.data]));
  }

  /**
   * Copies `dict` into the parameters. Every shape is checked before anything is copied
   * (ERR_SHAPE lists all mismatches); with strict (the default) missing or unexpected keys are an
   * ERR_ARGUMENT that lists both.
   */
  loadStateDict(dict: StateDict, { strict = true }: LoadStateDictOptions = {}): LoadStateDictResult {
    const entries: [string, unknown][] =
      dict instanceof Map ? [...(dict as Map<string, unknown>)] : dict !== null && typeof dict === 'object' ? Object.entries(dict) : [];
    if (!(dict instanceof Map) && (dict === null || typeof dict !== 'object')) {
      throw alexnetError('ERR_ARGUMENT', 'loadStateDict: expected a Map or a record of name -> Tensor');
    }
    const given = new Map(entries);
    const params = this.namedParameters();
    const expected = new Map(params);
    const missingKeys = params.map(([n]) => n).filter((n) => !given.has(n));
    const unexpectedKeys = [...given.keys()].filter((n) => !expected.has(n));
    if (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0)) {
      const parts: string[] = [];
      if (missingKeys.length > 0) parts.push(`missing keys (${missingKeys.length}): ${missingKeys.join(', ')}`);
      if (unexpectedKeys.length > 0) parts.push(`unexpected keys (${unexpectedKeys.length}): ${unexpectedKeys.join(', ')}`);
      throw alexnetError('ERR_ARGUMENT', `loadStateDict: the state dict does not match the module: ${parts.join('; ')}`);
    }
    const bad: string[] = [];
    const todo: [Parameter, Tensor][] = [];
    for (const [name, p] of params) {
      if (!given.has(name)) continue;
      const t = given.get(name);
      if (!(t instanceof Tensor)) {
        throw alexnetError('ERR_ARGUMENT', `loadStateDict: expected '${name}' to be a Tensor`);
      }
      if (t.dtype !== 'float32') throw alexnetError('ERR_DTYPE', `loadStateDict: '${name}' must be float32, got ${t.dtype}`);
      if (!sameShape(t.shape, p.shape)) bad.push(`${name}: expected ${fmt(p.shape)}, got ${fmt(t.shape)}`);
      else todo.push([p, t]);
    }
    if (bad.length > 0) throw alexnetError('ERR_SHAPE', `loadStateDict: shape mismatch (${bad.length}): ${bad.join('; ')}`);
    for (const [p, t] of todo) if (p.data !== t) p.assign(t as F32);
    return { missingKeys, unexpectedKeys };
  }

  /** Drops what forward kept for backward (disposing what this module created). */
  clearCache(): void {}

  /** Disposes cached activations and the parameter tensors of this module and its descendants. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      m.clearCache();
      for (const p of m.#params.values()) {
        p.data.dispose();
        p.grad.dispose();
        p.disposeBf16();
      }
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** A readable tree of the module (PyTorch's repr). */
  toString(): string {
    const kids = this.namedChildren();
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    if (kids.length === 0) return `${head})`;
    const body = kids.map(([n, m]) => `  (${n}): ${m.toString().split('\n').join('\n  ')}`).join('\n');
    return `${head}\n${body}\n)`;
  }
  protected extraRepr(): string {
    return '';
  }
}

function checkName(name: string, op: string): void {
  if (typeof name !== 'string' || name === '' || name.includes('.')) {
    throw alexnetError('ERR_ARGUMENT', `${op}: a name must be a non-empty string without '.', got ${JSON.stringify(name)}`);
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
