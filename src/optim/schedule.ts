// Learning-rate schedules with PyTorch's semantics (call step() once per epoch, after the
// epoch's optimizer steps). Each changes the optimizer's lr multiplicatively (chainable, like
// PyTorch), so a user's own lr change in between is respected.
import { alexnetError } from '../errors.js';

/** What a schedule needs of an optimizer. */
export interface LrHolder {
  lr: number;
}

function positive(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw alexnetError('ERR_ARGUMENT', `${what} must be a positive number, got ${String(v)}`);
  return v;
}

export interface StepLRState {
  epoch: number;
}

/**
 * What StepLR and MultiStepLR share: an epoch count (their whole state), and at the end of each
 * epoch lr *= gamma^k, k the number of decays the subclass makes at that epoch.
 */
abstract class EpochDecayLR {
  epoch = 0;
  readonly #name: string;
  constructor(
    readonly optimizer: LrHolder,
    readonly gamma: number,
    name: string,
  ) {
    positive(gamma, `${name}: gamma`);
    this.#name = name;
  }
  /** How many times the lr is multiplied by gamma at the end of epoch `epoch` (1-based). */
  protected abstract decaysAt(epoch: number): number;
  /** Ends an epoch; returns the lr for the next one. */
  step(): number {
    this.epoch++;
    const k = this.decaysAt(this.epoch);
    if (k > 0) this.optimizer.lr *= this.gamma ** k;
    return this.optimizer.lr;
  }
  state(): StepLRState {
    return { epoch: this.epoch };
  }
  loadState(s: StepLRState): void {
    this.epoch = checkEpoch(s, this.#name);
  }
}

/** torch.optim.lr_scheduler.StepLR: lr *= gamma every stepSize epochs. */
export class StepLR extends EpochDecayLR {
  readonly stepSize: number;
  constructor(optimizer: LrHolder, stepSize: number, gamma = 0.1) {
    if (!Number.isInteger(stepSize) || stepSize < 1) throw alexnetError('ERR_ARGUMENT', `StepLR: stepSize must be a positive integer, got ${String(stepSize)}`);
    super(optimizer, gamma, 'StepLR');
    this.stepSize = stepSize;
  }
  protected decaysAt(epoch: number): number {
    return epoch % this.stepSize === 0 ? 1 : 0;
  }
}

/** torch.optim.lr_scheduler.MultiStepLR: lr *= gamma when the epoch count reaches each milestone. */
export class MultiStepLR extends EpochDecayLR {
  readonly milestones: readonly number[];
  constructor(optimizer: LrHolder, milestones: readonly number[], gamma = 0.1) {
    if (!Array.isArray(milestones) || milestones.some((m) => !Number.isInteger(m) || m < 1)) {
      throw alexnetError('ERR_ARGUMENT', `MultiStepLR: milestones must be positive integers, got ${JSON.stringify(milestones)}`);
    }
    super(optimizer, gamma, 'MultiStepLR');
    this.milestones = Object.freeze([...milestones].sort((a, b) => a - b));
  }
  /** A milestone listed twice decays twice, as in PyTorch. */
  protected decaysAt(epoch: number): number {
    return this.milestones.filter((m) => m === epoch).length;
  }
}

export interface ReduceLROnPlateauOptions {
  /** 'min' (default: a loss or an error rate) or 'max' (an accuracy) */
  mode?: 'min' | 'max';
  /** lr *= factor on a plateau (default 0.1: "divide by 10") */
  factor?: number;
  /** epochs without improvement tolerated; the next one lowers the lr (default 10) */
  patience?: number;
  /** what counts as an improvement (default 1e-4) */
  threshold?: number;
  /** 'rel' (default): better than best * (1 -+ threshold); 'abs': best -+ threshold */
  thresholdMode?: 'rel' | 'abs';
  /** epochs to wait after a reduction before counting again (default 0) */
  cooldown?: number;
  /** lower bound of the lr (default 0) */
  minLr?: number;
  /** reductions smaller than this are skipped (default 1e-8) */
  eps?: number;
}

export interface ReduceLROnPlateauState {
  epoch: number;
  best: number;
  numBadEpochs: number;
  cooldownCounter: number;
}

/**
 * torch.optim.lr_scheduler.ReduceLROnPlateau, the paper's rule ("divide the learning rate by 10
 * when the validation error rate stopped improving"): step(metric) once per epoch; after
 * `patience` epochs in a row without improvement, the next non-improving epoch multiplies the
 * lr by `factor` (so with patience 2, the third bad epoch in a row lowers it).
 */
export class ReduceLROnPlateau {
  epoch = 0;
  best: number;
  numBadEpochs = 0;
  cooldownCounter = 0;
  readonly mode: 'min' | 'max';
  readonly factor: number;
  readonly patience: number;
  readonly threshold: number;
  readonly thresholdMode: 'rel' | 'abs';
  readonly cooldown: number;
  readonly minLr: number;
  readonly eps: number;

  constructor(
    readonly optimizer: LrHolder,
    options: ReduceLROnPlateauOptions = {},
  ) {
    this.mode = options.mode ?? 'min';
    if (this.mode !== 'min' && this.mode !== 'max') throw alexnetError('ERR_ARGUMENT', `ReduceLROnPlateau: mode must be 'min' or 'max', got ${String(this.mode)}`);
    this.factor = options.factor ?? 0.1;
    if (!(this.factor > 0 && this.factor < 1)) throw alexnetError('ERR_ARGUMENT', `ReduceLROnPlateau: factor must be in (0, 1), got ${String(this.factor)}`);
    this.patience = options.patience ?? 10;
    this.cooldown = options.cooldown ?? 0;
    for (const [k, v] of [['patience', this.patience], ['cooldown', this.cooldown]] as const) {
      if (!Number.isInteger(v) || v < 0) throw alexnetError('ERR_ARGUMENT', `ReduceLROnPlateau: ${k} must be an integer >= 0, got ${String(v)}`);
    }
    this.threshold = options.threshold ?? 1e-4;
    this.thresholdMode = options.thresholdMode ?? 'rel';
    if (this.thresholdMode !== 'rel' && this.thresholdMode !== 'abs') throw alexnetError('ERR_ARGUMENT', `ReduceLROnPlateau: thresholdMode must be 'rel' or 'abs'`);
    this.minLr = options.minLr ?? 0;
    this.eps = options.eps ?? 1e-8;
    this.best = this.mode === 'min' ? Infinity : -Infinity;
  }

  isBetter(a: number, best: number): boolean {
    const t = this.threshold;
    if (this.mode === 'min') return this.thresholdMode === 'rel' ? a < best * (1 - t) : a < best - t;
    return this.thresholdMode === 'rel' ? a > best * (1 + t) : a > best + t;
  }

  /** Ends an epoch with its validation metric; returns the lr for the next one. */
  step(metric: number): number {
    if (typeof metric !== 'number' || Number.isNaN(metric)) throw alexnetError('ERR_ARGUMENT', `ReduceLROnPlateau.step: expected a number, got ${String(metric)}`);
    this.epoch++;
    if (this.isBetter(metric, this.best)) {
      this.best = metric;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs++;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter--;
      this.numBadEpochs = 0;
    }
    if (this.numBadEpochs > this.patience) {
      const old = this.optimizer.lr;
      const next = Math.max(old * this.factor, this.minLr);
      if (old - next > this.eps) this.optimizer.lr = next;
      this.cooldownCounter = this.cooldown;
      this.numBadEpochs = 0;
    }
    return this.optimizer.lr;
  }

  state(): ReduceLROnPlateauState {
    return { epoch: this.epoch, best: this.best, numBadEpochs: this.numBadEpochs, cooldownCounter: this.cooldownCounter };
  }
  loadState(s: ReduceLROnPlateauState): void {
    this.epoch = checkEpoch(s, 'ReduceLROnPlateau');
    // JSON writes an initial best of +-Infinity as null.
    const best = (s.best as number | null) === null ? (this.mode === 'min' ? Infinity : -Infinity) : s.best;
    if (typeof best !== 'number' || !Number.isInteger(s.numBadEpochs) || !Number.isInteger(s.cooldownCounter)) {
      throw alexnetError('ERR_ARGUMENT', `ReduceLROnPlateau.loadState: bad state ${JSON.stringify(s)}`);
    }
    this.best = best;
    this.numBadEpochs = s.numBadEpochs;
    this.cooldownCounter = s.cooldownCounter;
  }
}

function checkEpoch(s: { epoch: number } | null | undefined, who: string): number {
  if (s === null || typeof s !== 'object' || !Number.isSafeInteger(s.epoch) || s.epoch < 0) {
    throw alexnetError('ERR_ARGUMENT', `${who}.loadState: expected { epoch: integer >= 0 }, got ${JSON.stringify(s)}`);
  }
  return s.epoch;
}
