// Checkpoints from a careless or hostile world (issue 11, items 4, 5, 7, 9, 10, 11): special
// files, crafted headers and sparse files declaring huge tensors, symlinks, flipped bytes,
// non-finite weights and metadata, killed writers' temporaries, and the CLI's numeric flags.
// Everything that could hang or eat memory runs in a child process with a time limit.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHECKSUM_KEY,
  alexnet,
  loadCheckpoint,
  readSafetensors,
  saveCheckpoint,
  SyntheticDataset,
  Trainer,
  writeSafetensors,
} from '../src/index.js';
import sharp from 'sharp';
import { rejection, rng } from './helpers.js';

const root = join(__dirname, '..');
const bin = join(root, 'bin', 'alexnet.js');
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'alexnet-hostile-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
let n = 0;
const fresh = (name = 'ck'): string => join(dir, `${name}-${n++}.safetensors`);


async function expectCheckpointError(p: Promise<unknown>, message: RegExp): Promise<void> {
  const e = await rejection(p);
  expect(e.message).toMatch(message);
  expect(e.code, e.message).toBe('ERR_CHECKPOINT');
}

/** Runs the CLI with a time limit; a hang shows up as a null status (killed). */
function cli(args: string[], timeout = 60_000): { status: number | null; stdout: string; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

/** A header-only safetensors file (the data region left as a hole), sized as the header says. */
async function sparseFile(path: string, header: object): Promise<number> {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const entries = Object.entries(header).filter(([k]) => k !== '__metadata__') as [string, { data_offsets: number[] }][];
  const dataBytes = Math.max(0, ...entries.map(([, e]) => e.data_offsets[1]!));
  const fh = await open(path, 'w');
  await fh.write(Buffer.concat([len, json]), 0, 8 + json.length, 0);
  await fh.truncate(8 + json.length + dataBytes);
  await fh.close();
  return 8 + json.length + dataBytes;
}

/** The seed network's weights (random, small), a run configuration, and a checkpoint of them. */
let shapesCache: (readonly [string, number[]])[] | undefined;
function seedShapes(): (readonly [string, number[]])[] {
  if (!shapesCache) {
    const model = alexnet({ config: 'seed', numClasses: 2, init: 'kaiming', seed: 0 });
    shapesCache = [...model.stateDict()].map(([name, t]) => [name, [...t.shape]] as const);
    model.dispose();
  }
  return shapesCache;
}

function seedRun(): { weights: Record<string, { shape: number[]; data: Float32Array }>; config: object } {
  const numClasses = 2;
  const shapes = seedShapes();
  const r = rng();
  const weights = Object.fromEntries(
    shapes.map(([name, shape]) => [name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r() - 0.5) * 0.02) }]),
  );
  const config = {
    model: { config: 'seed', numClasses, init: 'kaiming', seed: 0 },
    classNames: ['0', '1'].slice(0, numClasses),
    data: { kind: 'synthetic', trainSize: 16, valSize: 8, seed: 0 },
    inputSize: 227,
  };
  return { weights, config };
}

const SEED_SHAPES = (): Record<string, number[]> => Object.fromEntries(seedShapes());

describe('special files (item 4)', () => {
  let fifo: string;
  beforeAll(() => {
    fifo = join(dir, 'a.fifo');
    execFileSync('mkfifo', [fifo]);
  });

  it('readSafetensors and loadCheckpoint refuse a FIFO at once, without blocking', async () => {
    const t0 = Date.now();
    await expectCheckpointError(readSafetensors(fifo), /a\.fifo: not a regular file \(it is a FIFO \(named pipe\)\)/);
    await expectCheckpointError(loadCheckpoint(fifo), /not a regular file/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('eval, predict, --resume and filters on a FIFO exit with ERR_CHECKPOINT instead of hanging', () => {
    for (const args of [
      ['eval', fifo],
      ['predict', fifo, join(dir, 'x.png')],
      ['train', '--resume', fifo, '--checkpoint', join(dir, 'out.safetensors'), '--metrics', join(dir, 'm.jsonl'), '--workers', '0'],
      ['filters', fifo, '-o', join(dir, 'f.png')],
    ]) {
      const r = cli(args, 30_000);
      expect(r.status, `${args[0]}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(/not a regular file \(it is a FIFO.*\(ERR_CHECKPOINT\)/);
    }
  }, 120_000);

  it('predict refuses an image that is a FIFO instead of hanging', async () => {
    const { weights, config } = seedRun();
    const path = fresh('good');
    await saveCheckpoint(path, { weights, step: 0, epoch: 0, config });
    const r = cli(['predict', path, fifo], 30_000);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/a\.fifo': not a regular file \(it is a FIFO \(named pipe\)\) \(ERR_DATA\)/);
  }, 60_000);

  it('a directory and /dev/zero are refused too', async () => {
    await expectCheckpointError(readSafetensors(dir), /not a regular file \(it is a directory\)/);
    await expectCheckpointError(readSafetensors('/dev/zero'), /not a regular file \(it is a device\)/);
  });
});

describe('memory bombs (item 5)', () => {
  it('a sparse 6 GiB file declaring two 3 GiB tensors is rejected from its header, without reading them', async () => {
    const path = fresh('sparse');
    const G3 = 3 * 2 ** 30;
    const size = await sparseFile(path, {
      __metadata__: { format: 'pt', checkpoint: 'alexnet-node/1', step: '0', epoch: '0', config: '{}' },
      a: { dtype: 'F32', shape: [G3 / 4], data_offsets: [0, G3] },
      b: { dtype: 'F32', shape: [G3 / 4], data_offsets: [G3, 2 * G3] },
    });
    expect(size).toBeGreaterThan(6 * 2 ** 30);
    // In a child, so its peak memory can be measured: the resume's expectations refuse the
    // file before a byte of data is read.
    const script = `
      const { loadCheckpoint } = await import(${JSON.stringify(join(root, 'dist', 'index.js'))});
      const expect = ${JSON.stringify(SEED_SHAPES())};
      let message = 'loaded';
      try { await loadCheckpoint(${JSON.stringify(path)}, { expect }); } catch (e) { message = e.code + ': ' + e.message; }
      // VmHWM: this process image's peak resident memory (ru_maxrss would include the forking
      // parent's, which Linux carries across exec).
      const hwm = /VmHWM:\\s*(\\d+) kB/.exec((await import('node:fs')).readFileSync('/proc/self/status', 'utf8'));
      console.log(JSON.stringify({ message, maxRssMiB: Number(hwm[1]) / 1024 }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { message: string; maxRssMiB: number };
    expect(out.message).toMatch(/^ERR_CHECKPOINT: .*missing weights 'features\.0\.weight'/);
    expect(out.maxRssMiB).toBeLessThan(400);
  }, 90_000);

  it('a sparse file with the right names but a huge shape is rejected before reading data', async () => {
    const path = fresh('sparse');
    const shapes = SEED_SHAPES();
    const header: Record<string, object> = {
      __metadata__: { format: 'pt', checkpoint: 'alexnet-node/1', step: '0', epoch: '0', config: '{}' },
    };
    let at = 0;
    const biggest = Object.entries(shapes).sort((x, y) => y[1].reduce((a, b) => a * b, 1) - x[1].reduce((a, b) => a * b, 1))[0]![0];
    expect(shapes[biggest]).toEqual([4096, 9216]);
    for (const [name, shape] of Object.entries(shapes)) {
      const s = name === biggest ? [4096, 2 ** 18] : shape; // 4 GiB instead of 150 MB
      const bytes = 4 * s.reduce((a, b) => a * b, 1);
      header[name] = { dtype: 'F32', shape: s, data_offsets: [at, at + bytes] };
      at += bytes;
    }
    await sparseFile(path, header);
    const t0 = Date.now();
    await expectCheckpointError(loadCheckpoint(path, { expect: shapes }), new RegExp(`weight '${biggest.replace(/\./g, '\\.')}' has shape \\[4096, 262144\\], expected \\[4096, 9216\\]`));
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('eval refuses a configuration asking for a million classes, and one with a billion validation images', async () => {
    const { weights, config } = seedRun();
    const huge = fresh('classes');
    await saveCheckpoint(huge, { weights, step: 0, epoch: 0, config: { ...config, model: { ...(config as { model: object }).model, numClasses: 1e6 } } });
    const r1 = cli(['eval', huge]);
    expect(r1.status).toBe(1);
    expect(r1.stderr).toMatch(/metadata 'config'\.model\.numClasses must be an integer from 1 to 100000, got 1000000 \(ERR_CHECKPOINT\)/);
    const many = fresh('valsize');
    await saveCheckpoint(many, { weights, step: 0, epoch: 0, config: { ...config, data: { kind: 'synthetic', trainSize: 16, valSize: 1e9, seed: 0 } } });
    const r2 = cli(['eval', many]);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/'config'\.data\.valSize must be an integer from 0 to 10000000, got 1000000000 \(ERR_CHECKPOINT\)/);
    // A run's recorded training options (what --resume continues with), each malformed field named.
    const train = { batchSize: 4, epochs: 1, lr: 0.01, momentum: 0.9, weightDecay: 5e-4, convention: 'pytorch', schedule: 'none', warmup: 0, seed: 0, checkpointEvery: 0 };
    for (const [bad, message] of [
      [{ batchSize: 1e6 }, /'config'\.train\.batchSize must be an integer from 1 to 1024, got 1000000/],
      [{ lr: 'NaN' }, /'config'\.train\.lr must be a finite number >= 0, got "NaN"/],
      [{ schedule: 'step:x' }, /'config'\.train\.schedule must be none, step:N, multistep:A,B,\.\.\. or plateau, got "step:x"/],
      [{ convention: 'nesterov' }, /'config'\.train\.convention must be 'pytorch' or 'krizhevsky', got "nesterov"/],
    ] as const) {
      const p = fresh('train-options');
      await saveCheckpoint(p, { weights, step: 0, epoch: 0, config: { ...config, train: { ...train, ...bad } } });
      const r = spawnSync(process.execPath, [bin, 'train', '--resume', p, '--workers', '0'], { encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
    // The same configuration with 3 classes but the 2-class weights: refused from the header.
    const mismatch = fresh('mismatch');
    await saveCheckpoint(mismatch, { weights, step: 0, epoch: 0, config: { ...config, classNames: ['a', 'b', 'c'], model: { ...(config as { model: object }).model, numClasses: 3 } } });
    const r3 = cli(['eval', mismatch]);
    expect(r3.status).toBe(1);
    expect(r3.stderr).toMatch(/says 3 classes but 'classifier\.6\.weight' is \[2, 4096\]/);
  }, 120_000);

  it('numeric flags out of range are ERR_ARGUMENT errors naming the flag, not out-of-memory aborts', () => {
    const common = ['train', '--checkpoint', join(dir, 'never.safetensors'), '--metrics', join(dir, 'never.jsonl')];
    for (const [flag, value, range] of [
      ['--val-size', '1e9', 'from 1 to 10000000'],
      ['--train-size', '1e12', 'from 1 to 10000000'],
      ['--workers', '100000', 'from 0 to 256'],
      ['--batch-size', '1000000', 'from 1 to 1024'],
      ['--epochs', '2.5', 'from 1 to 1000000'],
      ['--lr', 'NaN', 'a finite number from 0'],
    ] as const) {
      const r = cli([...common, flag, value], 30_000);
      expect(r.status, `${flag} ${value}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toContain(`${flag} must be`);
      expect(r.stderr).toContain(range);
      expect(r.stderr).toContain(`got '${value}' (ERR_ARGUMENT)`);
    }
  }, 120_000);
});

describe('checksums and metadata (item 9)', () => {
  it('a flipped byte is rejected naming its tensor; with verification off it loads (changed)', async () => {
    const { weights, config } = seedRun();
    const path = fresh('flip');
    await saveCheckpoint(path, { weights, step: 3, epoch: 0, config });
    const file = await readFile(path);
    // Find 'features.3.bias' from the header and flip one bit in the middle of its bytes.
    const headerLen = Number(file.readBigUInt64LE(0));
    const header = JSON.parse(file.subarray(8, 8 + headerLen).toString()) as Record<string, { data_offsets: [number, number] }>;
    const [b, e] = header['features.3.bias']!.data_offsets;
    const at = 8 + headerLen + Math.floor((b + e) / 2 / 4) * 4 + 1;
    file[at]! ^= 0x10;
    await writeFile(path, file);
    await expectCheckpointError(loadCheckpoint(path), /tensor 'features\.3\.bias': checksum mismatch/);
    const r = cli(['eval', path]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/features\.3\.bias': checksum mismatch/);
    const unchecked = await loadCheckpoint(path, { verify: false });
    expect(unchecked.checksums).toBe('skipped');
    const got = unchecked.weights['features.3.bias']!.data;
    const want = weights['features.3.bias']!.data;
    const differs = [...got.keys()].filter((i) => got[i] !== want[i]);
    expect(differs.length).toBe(1);
  });

  it('a file written before checksums existed loads unverified; edited checksum entries are refused', async () => {
    const { weights, config } = seedRun();
    const path = fresh('nosums');
    await saveCheckpoint(path, { weights, step: 1, epoch: 0, config });
    const file = await readFile(path);
    const headerLen = Number(file.readBigUInt64LE(0));
    const header = JSON.parse(file.subarray(8, 8 + headerLen).toString()) as { __metadata__: Record<string, string> };
    const rewrite = async (h: object): Promise<void> => {
      const json = Buffer.from(JSON.stringify(h));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      await writeFile(path, Buffer.concat([len, json, file.subarray(8 + headerLen)]));
    };
    const sums = JSON.parse(header.__metadata__[CHECKSUM_KEY]!) as Record<string, string>;
    expect(Object.keys(sums).sort()).toEqual(Object.keys(weights).sort());
    const { [CHECKSUM_KEY]: _, ...without } = header.__metadata__;
    await rewrite({ ...header, __metadata__: without });
    const old = await loadCheckpoint(path);
    expect(old.checksums).toBe('absent');
    expect(old.weights['features.0.weight']!.data).toEqual(weights['features.0.weight']!.data);
    const { 'features.0.bias': __, ...fewer } = sums;
    await rewrite({ ...header, __metadata__: { ...header.__metadata__, [CHECKSUM_KEY]: JSON.stringify(fewer) } });
    await expectCheckpointError(loadCheckpoint(path), /tensor 'features\.0\.bias' has no checksum/);
    await rewrite({ ...header, __metadata__: { ...header.__metadata__, [CHECKSUM_KEY]: JSON.stringify({ ...sums, ghost: '00000000' }) } });
    await expectCheckpointError(loadCheckpoint(path), /checksum for '"ghost"', which is not a tensor/);
    await rewrite({ ...header, __metadata__: { ...header.__metadata__, [CHECKSUM_KEY]: JSON.stringify({ ...sums, 'features.0.bias': 'xyz' }) } });
    await expectCheckpointError(loadCheckpoint(path), /'features\.0\.bias': checksum "xyz" is not 8 hex digits/);
    await expect(writeSafetensors(fresh(), {}, { [CHECKSUM_KEY]: '{}' })).rejects.toThrow(/reserved for the checksums/);
  });

  it('a resume refuses optimizer.lr = "NaN" and other malformed fields, naming them', async () => {
    const { weights, config } = seedRun();
    const momentum = Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, { shape: v.shape, data: new Float32Array(v.data.length) }]));
    const cases: [object, RegExp][] = [
      [{ optimizer: { momentum, config: { step: 3, lr: 'NaN' } } }, /metadata 'optimizer'\.lr must be a finite number >= 0, got "NaN"/],
      [{ optimizer: { momentum, config: { step: -1, lr: 0.01 } } }, /'optimizer'\.step must be a non-negative integer, got -1/],
      [{ optimizer: { momentum, config: { lr: 0.01 } } }, /'optimizer' has lr but no step/],
      [{ rngState: { dropout: [{ seed: 1, offset: 'x' }] } }, /'rng'\.dropout\[0\]\.offset must be a non-negative integer/],
      [{ rngState: { dropout: [{ seed: 1, offset: 0 }] } }, /1 dropout streams but this model has 2/],
      [{ dataOrder: { seed: 0, epoch: 1.5, batch: 0 } }, /'dataOrder'\.epoch must be a non-negative integer, got 1\.5/],
      [{ dataOrder: { seed: 0, epoch: 0, batch: 1, batchSize: 0 } }, /'dataOrder'\.batchSize must be a positive integer, got 0/],
    ];
    const model = alexnet({ config: 'seed', numClasses: 2, init: 'kaiming', seed: 0 });
    const trainer = new Trainer({ model, config, train: new SyntheticDataset({ size: 8, numClasses: 2, seed: 0, split: 'train' }), batchSize: 4, workers: 0 });
    try {
      for (const [extra, message] of cases) {
        const path = fresh('meta');
        await saveCheckpoint(path, { weights, step: 3, epoch: 0, config, ...extra });
        await expectCheckpointError(trainer.loadCheckpoint(path), message);
      }
    } finally {
      await trainer.close();
      model.dispose();
    }
  }, 60_000);
});

describe('non-finite weights (item 7, the file half)', () => {
  let path: string;
  beforeAll(async () => {
    const { weights, config } = seedRun();
    weights['features.6.weight']!.data[17] = NaN;
    weights['features.6.weight']!.data[18] = Infinity;
    path = fresh('nan');
    await saveCheckpoint(path, { weights, step: 5, epoch: 0, config });
  });

  it('eval and predict refuse them with a clear message naming the weight', () => {
    for (const args of [['eval', path], ['predict', path, join(dir, 'not-read.png')]]) {
      const r = cli(args);
      expect(r.status, r.stdout).toBe(1);
      expect(r.stderr).toMatch(/weight 'features\.6\.weight' holds 2 NaN or infinite values \(of \d+\): the checkpoint FILE holds a diverged or corrupted model.*\(ERR_CHECKPOINT\)/);
      expect(r.stdout).not.toMatch(/top-1/);
    }
  }, 60_000);

  it('--resume says the file holds NaN (not "lower the learning rate")', async () => {
    const r = cli(['train', '--resume', path, '--batch-size', '4', '--checkpoint', fresh('out'), '--metrics', join(dir, 'm.jsonl'), '--workers', '0', '--json']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(path);
    expect(r.stderr).toMatch(/holds 2 NaN or infinite values.*checkpoint FILE/);
    expect(r.stderr + r.stdout).not.toMatch(/learning rate/i);
    expect((await loadCheckpoint(path, { requireFinite: false })).step).toBe(5);
  }, 60_000);
});

describe('temporary files (item 10)', () => {
  const temps = async (d: string): Promise<string[]> => (await readdir(d)).filter((f) => f.includes('.tmp-')).sort();
  const w = { w: { dtype: 'F32' as const, shape: [4], data: Float32Array.from([1, 2, 3, 4]) } };

  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => child.on('exit', resolve));
    return child.pid!;
  }

  it("the next save removes a dead writer's temporary, and keeps a live one's and unrelated files", async () => {
    const d = await mkdtemp(join(dir, 'temps-'));
    const path = join(d, 'run.safetensors');
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const dead = await deadPid();
      const stale = `run.safetensors.tmp-${dead}-0123456789ab`;
      const alive = `run.safetensors.tmp-${live.pid}-0123456789ab`;
      const other = `other.safetensors.tmp-${dead}-0123456789ab`;
      const odd = `run.safetensors.tmp-${dead}-notours`;
      for (const f of [stale, alive, other, odd]) await writeFile(join(d, f), Buffer.alloc(1000));
      await writeSafetensors(path, w);
      expect(await temps(d)).toEqual([alive, other, odd].sort());
      expect((await readSafetensors(path)).tensors.get('w')!.data).toEqual(w.w.data);
    } finally {
      live.kill('SIGKILL');
    }
  }, 30_000);

  it('kill -9 during a write leaves a temporary that the next save removes', async () => {
    const d = await mkdtemp(join(dir, 'kill-'));
    const path = join(d, 'big.safetensors');
    // The child rewrites a 64 MB file in a loop; it is killed once a temporary is on disk.
    const script = `
      const { writeSafetensors } = await import(${JSON.stringify(join(root, 'dist', 'index.js'))});
      const t = { w: { dtype: 'F32', shape: [16 << 20], data: new Float32Array(16 << 20).fill(1) } };
      for (;;) await writeSafetensors(${JSON.stringify(path)}, t);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    let seen: string[] = [];
    for (let i = 0; i < 3000 && seen.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
      seen = await temps(d);
    }
    child.kill('SIGKILL');
    await exited;
    const left = await temps(d);
    expect(left.length, 'the killed writer left a temporary').toBeGreaterThan(0);
    expect(left[0]).toMatch(new RegExp(`^big\\.safetensors\\.tmp-${child.pid}-[0-9a-f]{12}$`));
    await writeSafetensors(path, w);
    expect(await temps(d)).toEqual([]);
  }, 60_000);

  it('process.exit during a write (what a second Ctrl-C does) leaves no temporary', async () => {
    const d = await mkdtemp(join(dir, 'exit-'));
    const path = join(d, 'big.safetensors');
    const script = `
      const { readdirSync } = await import('node:fs');
      const { writeSafetensors } = await import(${JSON.stringify(join(root, 'dist', 'index.js'))});
      const t = { w: { dtype: 'F32', shape: [32 << 20], data: new Float32Array(32 << 20).fill(1) } };
      writeSafetensors(${JSON.stringify(path)}, t).catch(() => {});
      const poll = () => {
        if (readdirSync(${JSON.stringify(d)}).some((f) => f.includes('.tmp-'))) { console.log('exiting mid-write'); process.exit(130); }
        setImmediate(poll);
      };
      poll();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(130);
    expect(r.stdout).toContain('exiting mid-write');
    expect(await temps(d)).toEqual([]);
  }, 60_000);
});

describe('symlinked checkpoint paths (item 11)', () => {
  const w = (v: number) => ({ w: { dtype: 'F32' as const, shape: [3], data: Float32Array.from([v, v + 1, v + 2]) } });

  it('a save through a symlink replaces its target atomically and keeps the link', async () => {
    const a = await mkdtemp(join(dir, 'target-'));
    const b = await mkdtemp(join(dir, 'link-'));
    const target = join(a, 'real.safetensors');
    const link = join(b, 'link.safetensors');
    await writeSafetensors(target, w(1));
    await symlink(target, link);
    await writeSafetensors(link, w(10));
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readlink(link)).toBe(target);
    expect((await readSafetensors(target)).tensors.get('w')!.data).toEqual(w(10).w.data);
    expect((await readdir(a)).sort()).toEqual(['real.safetensors']);
    expect(await readdir(b)).toEqual(['link.safetensors']);
    // A relative link, and a link to a link, resolve the same way.
    await symlink('link.safetensors', join(b, 'again.safetensors'));
    await writeSafetensors(join(b, 'again.safetensors'), w(20));
    expect((await readSafetensors(target)).tensors.get('w')!.data).toEqual(w(20).w.data);
  });

  it('a link to a directory, a dangling link and a link to a FIFO are refused, nothing written', async () => {
    const d = await mkdtemp(join(dir, 'bad-links-'));
    await mkdir(join(d, 'folder'));
    await symlink(join(d, 'folder'), join(d, 'to-dir.safetensors'));
    await symlink(join(d, 'missing', 'x.safetensors'), join(d, 'dangling.safetensors'));
    execFileSync('mkfifo', [join(d, 'pipe')]);
    await symlink(join(d, 'pipe'), join(d, 'to-fifo.safetensors'));
    await expectCheckpointError(writeSafetensors(join(d, 'to-dir.safetensors'), w(1)), /to-dir\.safetensors: is a symbolic link to the directory .*folder; give a file name/);
    await expectCheckpointError(writeSafetensors(join(d, 'dangling.safetensors'), w(1)), /dangling\.safetensors: is a symbolic link that cannot be resolved \(ENOENT/);
    await expectCheckpointError(writeSafetensors(join(d, 'to-fifo.safetensors'), w(1)), /is a symbolic link to .*pipe, which is not a regular file/);
    await expectCheckpointError(writeSafetensors(join(d, 'pipe'), w(1)), /pipe: is not a regular file/);
    expect(await readdir(join(d, 'folder'))).toEqual([]);
    expect((await readdir(d)).sort()).toEqual(['dangling.safetensors', 'folder', 'pipe', 'to-dir.safetensors', 'to-fifo.safetensors']);
    for (const l of ['to-dir', 'dangling', 'to-fifo']) expect((await lstat(join(d, `${l}.safetensors`))).isSymbolicLink()).toBe(true);
  });

  it('train --checkpoint <link to a directory> fails with a clear message', () => {
    const d = join(dir, 'cli-link');
    execFileSync('mkdir', ['-p', join(d, 'folder')]);
    execFileSync('ln', ['-s', join(d, 'folder'), join(d, 'ck.safetensors')]);
    const r = cli(['train', '--train-size', '8', '--val-size', '4', '--batch-size', '4', '--epochs', '1', '--max-steps', '1',
      '--checkpoint', join(d, 'ck.safetensors'), '--metrics', join(d, 'm.jsonl'), '--workers', '0', '--json'], 120_000);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ck\.safetensors: is a symbolic link to the directory .*folder.*\(ERR_CHECKPOINT\)/);
  }, 150_000);
});

describe('names from a checkpoint or the command line reach the terminal escaped', () => {
  // a raw control character, newlines aside
  const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

  it('predict shows class names and file names with their control characters as \\xNN (an OSC 52 clipboard write, a colour, a C1 CSI); --json keeps the names; an error naming such a path too', async () => {
    const { weights, config } = seedRun();
    const names = ['\x1b]52;c;aGk=\x07clip', 'red\x1b[31m\x9b2J'];
    const path = fresh('escapes');
    await saveCheckpoint(path, { weights, step: 0, epoch: 0, config: { ...config, classNames: names } });
    const img = join(dir, 'img\x1b[2J.png');
    await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toFile(img);
    const r = cli(['predict', path, img, '-k', '2']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stdout).toContain('img\\x1b[2J.png: ');
    expect(r.stdout).toContain('\\x1b]52;c;aGk=\\x07clip ');
    expect(r.stdout).toContain('red\\x1b[31m\\x9b2J ');
    const j = cli(['predict', path, img, '-k', '2', '--json']);
    expect(j.status, j.stderr).toBe(0);
    const out = JSON.parse(j.stdout.trim()) as { file: string; top: { class: string }[] };
    expect(out.file).toBe(img);
    expect(out.top.map((t) => t.class).sort()).toEqual([...names].sort());
    const e = cli(['predict', path, join(dir, 'missing\x1b[2J\x9b.png')]);
    expect(e.status).toBe(1);
    expect(e.stderr).not.toMatch(RAW_CONTROL);
    expect(e.stderr).toContain('missing\\x1b[2J\\x9b.png');
  }, 120_000);
});
