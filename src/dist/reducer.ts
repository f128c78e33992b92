// Data-parallel gradient averaging with buckets (issue 13, as PyTorch's DistributedDataParallel):
// the ParameterStore's flat gradient buffer is cut into buckets of about `bucketMB` MiB in
// reverse layer order (the order backward produces them), and each bucket's allReduce 'avg' is
// queued on the communication thread as soon as the backward of the last layer writing into it
// has been queued (a Module backward hook, fired by Sequential). The communication thread starts
// it once the CPU has run that backward, while the CPU goes on with the earlier layers'
// backward; the CPU work queued after backward (the SGD step) waits for every bucket.
//
// Buckets are contiguous ranges of the flat buffer that together cover it exactly (alignment gaps
// included: zeros, whose average is zero), and are started in a fixed order on every rank (bucket
// 0 first), as MPI requires. Each element's average is the same sum over the same ranks whatever
// the bucket it falls in, so bucketed and one-bucket training give the same weights (bitwise with
// two ranks, where the sum of two numbers cannot depend on an algorithm's association order).
//
// A parameter whose module is not run by a Sequential (a custom container) or that is shared
// between modules is not tracked: its bucket (and every later one) starts once model.backward has
// returned, which is still correct, only without overlap.
import { alexnetError } from '../errors.js';
import type { Module } from '../nn/module.js';
import type { F32 } from '../nn/module.js';
import type { ParameterStore } from '../nn/store.js';
import type { Communicator, Work } from './communicator.js';

export interface GradientReducerOptions {
  /** bucket size in MiB (PyTorch DDP's bucket_cap_mb; default 25). Infinity: one bucket. */
  bucketMB?: number;
}

export interface GradientBucket {
  /** the element range [start, end) of the flat gradient buffer */
  start: number;
  end: number;
  /** its parameters' dotted names, in backward (reverse layout) order */
  names: string[];
}

export const DEFAULT_BUCKET_MB = 25;

/**
 * Cuts a store's layout into buckets of at least `bucketMB` MiB (the last may be smaller; a
 * single parameter larger than that is a bucket of its own size), walking the parameters from
 * the last to the first.
 */
export function planBuckets(store: Pick<ParameterStore, 'layout' | 'numel'>, bucketMB = DEFAULT_BUCKET_MB): GradientBucket[] {
  if (!(bucketMB > 0)) throw alexnetError('ERR_ARGUMENT', `bucketMB must be a positive number (Infinity for one bucket), got ${bucketMB}`);
  const cap = bucketMB * 2 ** 20;
  const buckets: GradientBucket[] = [];
  let end = store.numel;
  let names: string[] = [];
  let bytes = 0;
  const layout = store.layout;
  for (let i = layout.length - 1; i >= 0; i--) {
    const e = layout[i]!;
    names.push(e.name);
    bytes += e.numel * 4;
    if (bytes >= cap || i === 0) {
      const start = i === 0 ? 0 : e.offset;
      buckets.push({ start, end, names });
      end = start;
      names = [];
      bytes = 0;
    }
  }
  return buckets;
}

export class GradientReducer {
  readonly buckets: readonly GradientBucket[];
  readonly #comm: Communicator;
  readonly #model: Module;
  readonly #views: F32[];
  /** per bucket: how many of its parameters have a module that fires a hook */
  readonly #tracked: number[];
  /** per module with tracked parameters: the bucket of each of them */
  readonly #moduleBuckets = new Map<Module, number[]>();
  readonly #removeHooks: (() => void)[] = [];
  #pending: number[] = [];
  #works: Work[] = [];
  #active = false;

  constructor(comm: Communicator, model: Module, store: ParameterStore, o: GradientReducerOptions = {}) {
    this.#comm = comm;
    this.#model = model;
    this.buckets = Object.freeze(planBuckets(store, o.bucketMB ?? DEFAULT_BUCKET_MB).map((b) => Object.freeze(b)));
    this.#views = this.buckets.map((b) => store.grads.view(b.start, [b.end - b.start]));
    const bucketOf = new Map<string, number>();
    this.buckets.forEach((b, i) => b.names.forEach((n) => bucketOf.set(n, i)));
    this.#tracked = this.buckets.map(() => 0);
    // Hooks only where each parameter belongs to exactly one module that appears once.
    const modules = model.namedModules();
    const owners = new Map<unknown, number>();
    for (const [, m] of modules) for (const [, p] of m.ownParameters()) owners.set(p, (owners.get(p) ?? 0) + 1);
    const unique = new Set(modules.map(([, m]) => m)).size === modules.length && [...owners.values()].every((c) => c === 1);
    if (unique) {
      for (const [mname, m] of modules) {
        const own = m.ownParameters();
        if (own.length === 0) continue;
        const list = own.map(([p]) => bucketOf.get(mname === '' ? p : `${mname}.${p}`));
        if (list.some((b) => b === undefined)) continue; // not in this store: leave to the flush
        this.#moduleBuckets.set(m, list as number[]);
        for (const b of list as number[]) this.#tracked[b]!++;
        this.#removeHooks.push(m.registerBackwardHook((mod) => this.#fired(mod)));
      }
    }
  }

  /**
   * model.backward(gradOutput, needInputGrad) with the buckets' averaging started during it;
   * CPU work queued after this call (the optimizer step) sees the averaged gradients.
   */
  backward(gradOutput: F32, needInputGrad = false): F32 | null {
    this.#pending = [...this.#tracked];
    this.#works = [];
    this.#active = true;
    let out: F32 | null;
    try {
      out = this.#model.backward(gradOutput, needInputGrad);
    } finally {
      this.#active = false;
      // Whatever backward did not start (untracked parameters, or a throw), in bucket order, so
      // that every rank issues the same collectives; then CPU work waits for all of them.
      while (this.#works.length < this.buckets.length) this.#start();
      for (const w of this.#works) w.wait();
    }
    return out;
  }

  /** Removes the backward hooks (the reducer must not be used afterwards). */
  dispose(): void {
    for (const r of this.#removeHooks.splice(0)) r();
    for (const v of this.#views) v.dispose();
  }

  #fired(m: Module): void {
    if (!this.#active) return;
    for (const b of this.#moduleBuckets.get(m) ?? []) this.#pending[b]!--;
    // A bucket starts once every parameter in it is tracked and written; one with an untracked
    // parameter (and so every later bucket) waits for the end of backward.
    for (let b = this.#works.length; b < this.buckets.length; b = this.#works.length) {
      if (this.#pending[b]! > 0 || this.#tracked[b]! < this.buckets[b]!.names.length) break;
      this.#start();
    }
  }

  #start(): void {
    this.#works.push(this.#comm.allReduceAsync(this.#views[this.#works.length]!, 'avg'));
  }
}
