// The training-state module (src/train/state.ts) and the library's modelFromCheckpoint
// (src/train/run-config.ts): every field survives a save and a load bit for bit, the file keeps
// the checkpoint keys earlier versions wrote (and such files still load), and a state that does
// not fit its target (model configuration, dropout streams, optimizer state) is refused, naming
// what differs, with nothing changed.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alexnet,
  captureTrainingState,
  copy,
  Conv2d,
  dropoutState,
  Dropout,
  Flatten,
  Linear,
  loadCheckpoint,
  loadTrainingState,
  MaxPool2d,
  modelFromCheckpoint,
  mulberry32,
  ParameterStore,
  ReLU,
  readSafetensors,
  restoreTrainingState,
  runConfig,
  saveCheckpoint,
  saveTrainingState,
  Sequential,
  SGD,
  StepLR,
  SyntheticDataset,
  Tensor,
  Trainer,
  type TrainingState,
  type TrainingTarget,
} from '../src/index.js';
import { expectCode, rng } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'alexnet-state-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
let n = 0;
const fresh = (name = 'st'): string => join(dir, `${name}-${n++}.safetensors`);

/**
 * A small network for 16x16 inputs with `drops` Dropout layers (named '4.0', '4.1', ...: the
 * weights keep their names whatever the count), initial weights from `seed`.
 */
function net(seed: number, drops = 2, classes = 3): Sequential {
  const r = mulberry32(seed);
  const d = Array.from({ length: drops }, (_, i) => new Dropout(0.25, { seed: seed + i }));
  return new Sequential(new Conv2d(3, 4, 3, { padding: 1, rng: r }), new ReLU(), new MaxPool2d(2), new Flatten(), new Sequential(...d), new Linear(4 * 8 * 8, classes, { rng: r }));
}

/** A model, its store, an SGD and a StepLR: a trainer's state holders. */
function target(seed: number, drops = 2, classes = 3): TrainingTarget & { schedule: StepLR } {
  const model = net(seed, drops, classes);
  const store = ParameterStore.create(model);
  const optimizer = new SGD(store, { lr: 0.1, momentum: 0.9 });
  return { model, store, optimizer, schedule: new StepLR(optimizer, 2, 0.5) };
}

/** Random weights and momentum (fresh each run), a few optimizer steps, moved dropout streams and schedule. */
async function busy(t: TrainingTarget & { schedule: StepLR }, r: () => number): Promise<void> {
  const fill = (x: Tensor<'float32'>) => Tensor.from(Float32Array.from({ length: x.numel }, () => r() - 0.5), x.shape);
  const p = fill(t.store.params);
  const m = fill(t.store.momentum);
  copy(t.store.params, p);
  copy(t.store.momentum, m);
  p.dispose();
  m.dispose();
  t.optimizer.loadState({ step: 3 + Math.floor(r() * 100), lr: 0.01 + r() });
  t.schedule.step();
  t.schedule.step();
  t.schedule.step();
  t.model.namedModules().forEach(([, d]) => {
    if (d instanceof Dropout) d.offset = Math.floor(r() * 1e6);
  });
}

const config = { note: 'state test', nested: { a: [1, 2, 3] } };

/** The parameters' (or momentum's) values, entry by entry (the flat buffers have alignment gaps). */
async function values(t: TrainingTarget, which: 'params' | 'momentum' = 'params'): Promise<number[][]> {
  const flat = await t.store[which].data();
  return t.store.layout.map((e) => Array.from(flat.subarray(e.offset, e.offset + e.numel)));
}

describe('training state: round trip', () => {
  it('every field comes back bit for bit, under the keys earlier versions wrote', async () => {
    const r = rng();
    const a = target(1);
    await busy(a, r);
    const position = { step: 17, epoch: 2, batch: 5 };
    const state = await captureTrainingState(a, { config, seed: 42, position });
    expect(state.step).toBe(17);
    expect(state.dropout).toEqual(Object.values(dropoutState(a.model)));
    const path = fresh();
    await saveTrainingState(path, state);

    const back = await loadTrainingState(path);
    expect(back.config).toEqual(config);
    expect([back.step, back.epoch]).toEqual([17, 2]);
    expect(back.optimizer).toEqual(a.optimizer.state());
    expect(back.schedule).toEqual({ epoch: 3 });
    expect(back.dropout).toEqual(state.dropout);
    expect(back.seed).toBe(42);
    expect(back.dataOrder).toEqual({ seed: 42, epoch: 2, batch: 5 });
    expect(Object.keys(back.weights).sort()).toEqual(Object.keys(state.weights).sort());
    for (const [name, w] of Object.entries(state.weights)) {
      expect(back.weights[name]!.shape).toEqual(w.shape);
      expect(Buffer.from(back.weights[name]!.data.buffer, back.weights[name]!.data.byteOffset, back.weights[name]!.data.byteLength).equals(Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength))).toBe(true);
      expect(Array.from(back.momentum![name]!.data)).toEqual(Array.from(state.momentum![name]!.data));
    }

    // the on-disk keys: what the trainer wrote before this module existed
    const file = await readSafetensors(path);
    const tensorNames = [...file.tensors.keys()].sort();
    expect(tensorNames).toEqual([...Object.keys(state.weights), ...Object.keys(state.weights).map((k) => `optimizer.momentum.${k}`)].sort());
    const md = file.metadata;
    expect(Object.keys(md).sort()).toEqual(['checkpoint', 'config', 'dataOrder', 'epoch', 'format', 'optimizer', 'rng', 'stateVersion', 'step']);
    expect(md.stateVersion).toBe('2');
    expect(JSON.parse(md.optimizer!)).toEqual({ ...a.optimizer.state(), schedule: { epoch: 3 } });
    expect(JSON.parse(md.rng!)).toEqual({ dropout: state.dropout, seed: 42 });
    // version 2: every field, null where the state records nothing
    expect(JSON.parse(md.dataOrder!)).toEqual({ seed: 42, epoch: 2, batch: 5, batchSize: null, worldSize: null });

    // restored into other initial values: everything equals the source
    const b = target(99);
    const pos = restoreTrainingState(back, b, path);
    expect(pos).toEqual(position);
    expect(await values(b)).toEqual(await values(a));
    expect(await values(b, 'momentum')).toEqual(await values(a, 'momentum'));
    expect(b.optimizer.state()).toEqual(a.optimizer.state());
    expect(b.schedule.state()).toEqual(a.schedule.state());
    expect(dropoutState(b.model)).toEqual(dropoutState(a.model));
  });

  it('a checkpoint in the layout the trainer wrote before (saveCheckpoint by hand) loads and restores', async () => {
    const r = rng();
    const a = target(3);
    await busy(a, r);
    const [params, momentum] = [await a.store.params.data(), await a.store.momentum.data()];
    const weights: Record<string, { shape: number[]; data: Float32Array }> = {};
    const buffers: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const e of a.store.layout) {
      weights[e.name] = { shape: [...e.shape], data: params.slice(e.offset, e.offset + e.numel) };
      buffers[e.name] = { shape: [...e.shape], data: momentum.slice(e.offset, e.offset + e.numel) };
    }
    const dropout = a.model.namedModules().flatMap(([, m]) => (m instanceof Dropout ? [{ seed: m.seed, offset: m.offset }] : []));
    const path = fresh('old');
    await saveCheckpoint(path, {
      weights,
      optimizer: { momentum: buffers, config: { ...a.optimizer.state(), schedule: a.schedule.state() } },
      step: 9,
      epoch: 1,
      rngState: { dropout, seed: 5 },
      dataOrder: { seed: 5, epoch: 1, batch: 3 },
      config,
    });
    const b = target(77);
    expect(restoreTrainingState(await loadTrainingState(path), b, path)).toEqual({ step: 9, epoch: 1, batch: 3 });
    expect(await values(b)).toEqual(await values(a));
    expect(await values(b, 'momentum')).toEqual(await values(a, 'momentum'));
    expect(b.optimizer.state()).toEqual(a.optimizer.state());
    expect(b.schedule.state()).toEqual(a.schedule.state());
    expect(dropoutState(b.model)).toEqual(dropoutState(a.model));
  });

  it('a weights-only checkpoint restores the weights and leaves what it does not record', async () => {
    const r = rng();
    const a = target(4);
    await busy(a, r);
    const full = await captureTrainingState(a, { config, seed: 0, position: { step: 2, epoch: 0, batch: 2 } });
    const path = fresh('weights-only');
    await saveCheckpoint(path, { weights: full.weights, step: 2, epoch: 0, config });
    const st = await loadTrainingState(path);
    expect([st.momentum, st.optimizer, st.schedule, st.dropout, st.seed, st.dataOrder]).toEqual([null, null, null, null, null, null]);
    const b = target(5);
    const dropsBefore = dropoutState(b.model);
    expect(restoreTrainingState(st, b, path)).toEqual({ step: 2, epoch: 0, batch: 0 });
    expect(await values(b)).toEqual(await values(a));
    expect(dropoutState(b.model)).toEqual(dropsBefore);
    expect(b.optimizer.state()).toMatchObject({ step: 0, lr: 0.1 });
  });
});

describe('training state: a mismatch is an error naming what differs, and nothing changes', () => {
  async function snapshot(t: TrainingTarget & { schedule: StepLR }) {
    return { params: Array.from(await t.store.params.data()), opt: t.optimizer.state(), sched: t.schedule.state(), drop: dropoutState(t.model) };
  }

  async function saved(drops: number, classes = 3, seed = 11): Promise<{ path: string; state: TrainingState }> {
    const a = target(seed, drops, classes);
    await busy(a, rng());
    const state = await captureTrainingState(a, { config, seed: 1, position: { step: 4, epoch: 0, batch: 4 } });
    const path = fresh('src');
    await saveTrainingState(path, state);
    return { path, state };
  }

  it('another number of dropout streams: ERR_CHECKPOINT from a file, ERR_ARGUMENT in memory, naming the layers', async () => {
    for (const drops of [1, 3]) {
      const { path } = await saved(drops);
      const b = target(21, 2);
      const before = await snapshot(b);
      const st = await loadTrainingState(path);
      expectCode(() => restoreTrainingState(st, b, path), 'ERR_CHECKPOINT', new RegExp(`${drops} dropout streams but this model has 2 \\(4\\.0, 4\\.1\\)`));
      expectCode(() => restoreTrainingState(st, b), 'ERR_ARGUMENT', /^restoreTrainingState: .*dropout streams but this model has 2/);
      expect(await snapshot(b)).toEqual(before);
    }
    // and through the trainer (what --resume uses)
    const { path } = await saved(1);
    const trainer = new Trainer({ model: net(8, 2), config, train: new SyntheticDataset({ size: 8, imageSize: 16, numClasses: 3, split: 'train' }), batchSize: 4, workers: 0 });
    try {
      await expect(trainer.loadCheckpoint(path)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/1 dropout streams but this model has 2 \(4\.0, 4\.1\)/) });
      expect(trainer.position).toEqual({ step: 0, epoch: 0, batch: 0 });
    } finally {
      await trainer.close();
    }
  });

  it('another model configuration (class count): refused from the header, naming the weight and both shapes', async () => {
    const { path } = await saved(2, 5);
    const trainer = new Trainer({ model: net(8, 2, 3), config, train: new SyntheticDataset({ size: 8, imageSize: 16, numClasses: 3, split: 'train' }), batchSize: 4, workers: 0 });
    try {
      await expect(trainer.loadCheckpoint(path)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/weight '5\.weight' has shape \[5, 256\], expected \[3, 256\]/) });
    } finally {
      await trainer.close();
    }
    // the in-memory state: the same refusal from restoreTrainingState, nothing changed
    const st = await loadTrainingState(path);
    const b = target(2, 2, 3);
    const before = await snapshot(b);
    expectCode(() => restoreTrainingState(st, b), 'ERR_ARGUMENT', /weight '5\.weight' has shape \[5, 256\], expected \[3, 256\]/);
    expect(await snapshot(b)).toEqual(before);
  });

  it('optimizer state: momentum for only some weights, step without lr, a schedule state without a schedule', async () => {
    const { state } = await saved(2);
    const weights = state.weights;
    const partial = Object.fromEntries(Object.entries(state.momentum!).slice(0, 2));
    const p1 = fresh('partial-momentum');
    await saveCheckpoint(p1, { weights, optimizer: { momentum: partial, config: { step: 1, lr: 0.1 } }, step: 1, epoch: 0, config });
    await expect(loadTrainingState(p1)).rejects.toMatchObject({
      code: 'ERR_CHECKPOINT',
      message: expect.stringMatching(/momentum for 2 of its 4 weights \(none for '5\.bias', '5\.weight'\)/),
    });
    const p2 = fresh('step-no-lr');
    await saveCheckpoint(p2, { weights, optimizer: { momentum: state.momentum!, config: { step: 1 } }, step: 1, epoch: 0, config });
    await expect(loadTrainingState(p2)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/'optimizer' has step but no lr/) });
    // a schedule's state and a target without a schedule (it was silently dropped before)
    const p3 = fresh('schedule');
    await saveTrainingState(p3, state);
    const b = target(6);
    const noSchedule = { model: b.model, store: b.store, optimizer: b.optimizer };
    const before = Array.from(await b.store.params.data());
    expectCode(() => restoreTrainingState(state, noSchedule, p3), 'ERR_CHECKPOINT', /'optimizer'\.schedule holds a schedule's state \(\{"epoch":3\}\) but this run has no schedule/);
    expect(Array.from(await b.store.params.data())).toEqual(before);
    // an in-memory dropout stream that is not a stream
    const bad = { ...state, dropout: [state.dropout![0]!, { seed: -1, offset: 0 }] };
    expectCode(() => restoreTrainingState(bad, target(7)), 'ERR_ARGUMENT', /'rng'\.dropout\[1\] \(for '4\.1'\) must be/);
  });
});

/** Rewrites the __metadata__ of a checkpoint (the checksums cover tensor data only). */
async function editMetadata(path: string, edit: (md: Record<string, string>) => void): Promise<void> {
  const file = await readFile(path);
  const headerLen = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLen).toString()) as { __metadata__: Record<string, string> };
  edit(header.__metadata__);
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  await writeFile(path, Buffer.concat([len, json, file.subarray(8 + headerLen)]));
}

/** Edits one JSON section of the metadata. */
const section = (key: string, edit: (o: Record<string, unknown>) => void) => (md: Record<string, string>) => {
  const o = JSON.parse(md[key]!) as Record<string, unknown>;
  edit(o);
  md[key] = JSON.stringify(o);
};

describe('training state: metadata fields missing or mistyped', () => {
  /** A checkpoint as the trainer writes it (inside an epoch, with a schedule and dropout streams). */
  async function written(): Promise<{ path: string; a: TrainingTarget & { schedule: StepLR } }> {
    const a = target(41);
    await busy(a, rng());
    const path = fresh('fields');
    await saveTrainingState(path, await captureTrainingState(a, { config, seed: 7, batchSize: 4, position: { step: 12, epoch: 1, batch: 3 } }));
    return { path, a };
  }

  it('a version 2 file with a field removed, or of the wrong type, is ERR_CHECKPOINT naming the file and the field (they resumed with defaults)', async () => {
    const edits: [string, (md: Record<string, string>) => void, RegExp][] = [
      ['no step and lr', section('optimizer', (o) => (delete o.step, delete o.lr)), /metadata 'optimizer' has no 'step', 'lr' \(a version 2 training state records every field/],
      ['no schedule', section('optimizer', (o) => delete o.schedule), /metadata 'optimizer' has no 'schedule'/],
      ['no dropout', section('rng', (o) => delete o.dropout), /metadata 'rng' has no 'dropout'/],
      ['no rng seed', section('rng', (o) => delete o.seed), /metadata 'rng' has no 'seed'/],
      ['no batch', section('dataOrder', (o) => delete o.batch), /metadata 'dataOrder' has no 'batch'/],
      ['no data seed', section('dataOrder', (o) => delete o.seed), /metadata 'dataOrder' has no 'seed'/],
      ['no batchSize', section('dataOrder', (o) => delete o.batchSize), /metadata 'dataOrder' has no 'batchSize'/],
      ['schedule a string', section('optimizer', (o) => (o.schedule = 'weekly')), /'optimizer'\.schedule must be a schedule's state \(an object\) or null, got "weekly"/],
      ['schedule an array', section('optimizer', (o) => (o.schedule = [3])), /'optimizer'\.schedule must be a schedule's state/],
      ['lr a string', section('optimizer', (o) => (o.lr = '0.1')), /'optimizer'\.lr must be a finite number >= 0, got "0\.1"/],
      ['lr null, step kept', section('optimizer', (o) => (o.lr = null)), /'optimizer' has step but no lr/],
      ['lr NaN', (md) => (md.optimizer = md.optimizer!.replace(/"lr":[^,}]+/, '"lr":NaN')), /metadata 'optimizer' is not valid JSON/],
      ['negative step', section('optimizer', (o) => (o.step = -4)), /'optimizer'\.step must be a non-negative integer, got -4/],
      ['negative batch', section('dataOrder', (o) => (o.batch = -1)), /'dataOrder'\.batch must be a non-negative integer, got -1/],
      ['batch null', section('dataOrder', (o) => (o.batch = null)), /'dataOrder'\.batch must be a non-negative integer, got null/],
      ['seed a string', section('rng', (o) => (o.seed = '7')), /'rng'\.seed must be a finite number, got "7"/],
      ['dropout an object', section('rng', (o) => (o.dropout = { seed: 1 })), /'rng'\.dropout must be an array/],
      ['negative checkpoint step', (md) => (md.step = '-5'), /metadata 'step' must be a non-negative integer, got '-5'/],
      ['an unknown version', (md) => (md.stateVersion = '3'), /metadata 'stateVersion' is "3"; this version reads training states of versions 1 to 2/],
    ];
    const { path } = await written();
    const original = await readFile(path);
    for (const [what, edit, message] of edits) {
      await writeFile(path, original);
      await editMetadata(path, edit);
      const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      await expect(loadTrainingState(path), what).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(new RegExp(`^${escaped}: .*${message.source}`)) });
    }
    // the unedited file resumes, exactly (the trainer's path: loadTrainingState, then restore)
    await writeFile(path, original);
    const b = target(42);
    expect(restoreTrainingState(await loadTrainingState(path), b, path)).toEqual({ step: 12, epoch: 1, batch: 3 });
    // the extra metadata saveCheckpoint takes cannot stand in for the format's own keys
    const { weights } = await loadTrainingState(path);
    await expect(saveCheckpoint(fresh(), { weights, step: 0, epoch: 0, config, metadata: { step: '3' } })).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/metadata key 'step' is the checkpoint format's own/) });
  });

  it('through the trainer (what --resume uses): refused before anything changes', async () => {
    const { path } = await written();
    await editMetadata(path, section('dataOrder', (o) => delete o.batch));
    const t = new Trainer({ model: net(8), config, train: new SyntheticDataset({ size: 16, imageSize: 16, numClasses: 3, split: 'train' }), batchSize: 4, seed: 7, workers: 0, schedule: { kind: 'step', stepSize: 2 } });
    try {
      const before = Array.from(await t.store.params.data());
      await expect(t.loadCheckpoint(path)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/metadata 'dataOrder' has no 'batch'/) });
      expect(t.position).toEqual({ step: 0, epoch: 0, batch: 0 });
      expect(Array.from(await t.store.params.data())).toEqual(before);
      expect(t.optimizer.state()).toEqual({ step: 0, lr: 0.01 });
    } finally {
      await t.close();
    }
  });

  it('older files (no stateVersion) that lack fields still load, with the documented defaults', async () => {
    const { path, a } = await written();
    // what a file from before batchSize was recorded, and before every field was written, holds
    await editMetadata(path, (md) => {
      delete md.stateVersion;
      section('dataOrder', (o) => (delete o.batchSize, delete o.worldSize))(md);
      section('rng', (o) => delete o.seed)(md);
    });
    const st = await loadTrainingState(path);
    expect(st.dataOrder).toEqual({ seed: 7, epoch: 1, batch: 3 });
    expect(st.seed).toBeNull();
    expect(st.optimizer).toEqual(a.optimizer.state());
    // version 1 defaults for what even older files lack: the data position's seed from 'rng', batch 0
    await editMetadata(path, (md) => {
      section('dataOrder', (o) => (delete o.seed, delete o.batch))(md);
      section('rng', (o) => (o.seed = 9))(md);
      section('optimizer', (o) => delete o.schedule)(md);
    });
    const older = await loadTrainingState(path);
    expect(older.dataOrder).toEqual({ seed: 9, epoch: 1, batch: 0 });
    expect(older.schedule).toBeNull();
    // a wrong type is refused in a version 1 file too
    await editMetadata(path, section('optimizer', (o) => (o.lr = 'fast')));
    await expect(loadTrainingState(path)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/'optimizer'\.lr must be a finite number/) });
  });
});

describe('training state: a mid-epoch position continues only in the same data order', () => {
  it('another seed or batch size inside an epoch is refused (nothing changes); at an epoch boundary both may change', async () => {
    const train = new SyntheticDataset({ size: 16, imageSize: 16, numClasses: 3, split: 'train' });
    const a = target(31);
    await busy(a, rng());
    const inside = fresh('inside');
    await saveTrainingState(inside, await captureTrainingState(a, { config, seed: 5, batchSize: 4, position: { step: 6, epoch: 1, batch: 2 } }));
    const boundary = fresh('boundary');
    await saveTrainingState(boundary, await captureTrainingState(a, { config, seed: 5, batchSize: 4, position: { step: 8, epoch: 2, batch: 0 } }));
    expect((await loadTrainingState(inside)).dataOrder).toEqual({ seed: 5, epoch: 1, batch: 2, batchSize: 4 });

    const trainer = (seed: number, batchSize: number) => new Trainer({ model: net(8), config, train, batchSize, seed, workers: 0, schedule: { kind: 'step', stepSize: 2 } });
    for (const [seed, batchSize, why] of [[6, 4, /of the data order of seed 5; this run's seed is 6/], [5, 2, /at batch size 4; this run's batch size is 2/]] as const) {
      const t = trainer(seed, batchSize);
      try {
        const before = Array.from(await t.store.params.data());
        await expect(t.loadCheckpoint(inside)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(new RegExp(`stopped inside epoch 2 \\(before its batch 3\\) ${why.source}`)) });
        expect(t.position).toEqual({ step: 0, epoch: 0, batch: 0 });
        expect(Array.from(await t.store.params.data())).toEqual(before);
        // the next epoch starts a fresh shuffle: the same file at a boundary resumes
        await t.loadCheckpoint(boundary);
        expect(t.position).toEqual({ step: 8, epoch: 2, batch: 0 });
      } finally {
        await t.close();
      }
    }
    const same = trainer(5, 4);
    try {
      await same.loadCheckpoint(inside);
      expect(same.position).toEqual({ step: 6, epoch: 1, batch: 2 });
    } finally {
      await same.close();
    }
  });
});

describe('modelFromCheckpoint (library)', () => {
  it('rebuilds the AlexNet of a checkpoint with its weights, in eval mode, giving the same logits', async () => {
    const r = rng();
    const model = alexnet({ config: 'seed', numClasses: 3, init: 'kaiming', seed: Math.floor(r() * 1000) });
    const train = new SyntheticDataset({ size: 16, numClasses: 3, seed: 4, split: 'train' });
    const val = new SyntheticDataset({ size: 8, numClasses: 3, seed: 4, split: 'val' });
    const cfg = runConfig(model, { train, val });
    expect(cfg).toEqual({
      model: { config: 'seed', numClasses: 3, init: 'kaiming', seed: model.seed },
      classNames: ['hstripes', 'vstripes', 'disc'],
      data: { kind: 'synthetic', trainSize: 16, valSize: 8, seed: 4 },
      inputSize: 227,
    });
    const path = fresh('alexnet');
    await saveCheckpoint(path, { weights: Object.fromEntries(model.stateDict()), step: 0, epoch: 0, config: cfg });
    const { model: back, config: got } = await modelFromCheckpoint(path);
    try {
      expect(got).toEqual(cfg);
      expect(back.training).toBe(false);
      expect([back.config, back.numClasses, back.init, back.seed]).toEqual(['seed', 3, 'kaiming', model.seed]);
      const x = Tensor.from(Float32Array.from({ length: 3 * 227 * 227 }, () => r() * 2 - 1), [1, 3, 227, 227]);
      model.eval();
      const want = await model.forward(x).data();
      const have = await back.forward(x).data();
      expect(Array.from(have)).toEqual(Array.from(want));
      expect(Math.max(...Array.from(want, Math.abs))).toBeGreaterThan(0);
    } finally {
      back.dispose();
      model.dispose();
    }
    // a configuration whose class count the weights contradict: refused before the model is built
    const lying = fresh('lying');
    const ck = await loadCheckpoint(path);
    await saveCheckpoint(lying, { weights: ck.weights, step: 0, epoch: 0, config: { ...cfg, classNames: ['a', 'b'], model: { ...cfg.model, numClasses: 2 } } });
    await expect(modelFromCheckpoint(lying)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/says 2 classes but 'classifier\.6\.weight' is \[3, 4096\]/) });
  }, 60_000);

  it('runConfig refuses what a checkpoint cannot describe', () => {
    const model = alexnet({ config: 'seed', numClasses: 2, init: 'kaiming' });
    try {
      const custom = { length: 4, classNames: ['a', 'b'], sampleShape: [3, 227, 227] as const, load: () => ({ image: new Float32Array(3 * 227 * 227), label: 0 }) };
      expectCode(() => runConfig(model, { train: custom }), 'ERR_ARGUMENT', /must be a SyntheticDataset or an ImageFolder/);
      expectCode(() => runConfig(net(1) as never, { train: custom }), 'ERR_ARGUMENT', /must be an AlexNet/);
      const wrongSize = new SyntheticDataset({ size: 4, numClasses: 2, imageSize: 32 });
      expectCode(() => runConfig(model, { train: wrongSize }), 'ERR_ARGUMENT', /32x32.*227x227/);
    } finally {
      model.dispose();
    }
  });
});
