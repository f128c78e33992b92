// Where results go, from a careless or hostile command line: a checkpoint or metrics log that
// cannot be written (found before the first step, not after the run), a folder under /proc
// (Node's recursive mkdir spins there forever), a metrics log that is a directory or a FIFO
// nobody reads (appending blocked the run forever), and plot / filters / samples outputs that are
// directories, FIFOs or missing folders, and a metrics log for plot that is not a regular file
// or is too large to read. Anything that used to hang runs in a child process with a time limit.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Conv2d, Dropout, Flatten, Linear, MAX_METRICS_LOG_BYTES, MaxPool2d, mulberry32, parseMetricsLog, plotMetrics, plotMetricsFile, readMetricsLog, ReLU, Sequential, SyntheticDataset, Trainer, type TrainProgress } from '../src/index.js';
import { smallNet as sharedSmallNet } from './small-net.mjs';

const root = join(__dirname, '..');
const bin = join(root, 'bin', 'alexnet.js');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'alexnet-hostile-out-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const smallNet = (): Sequential => sharedSmallNet({ Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout, mulberry32 }, 1, 2) as Sequential;
const data = (size: number) => new SyntheticDataset({ size, imageSize: 32, split: 'train', seed: 7, numClasses: 2 });

/** Runs a small trainer to completion or failure; returns the error (if any) and the steps it reported. */
async function train(opts: { checkpoint?: string | null; metrics?: string | null; checkpointEvery?: number }): Promise<{ error?: Error & { code?: string }; steps: number }> {
  let steps = 0;
  const trainer = new Trainer({
    model: smallNet(),
    config: { test: 'hostile output' },
    train: data(16),
    batchSize: 8,
    epochs: 1,
    optimizer: { lr: 0.01 },
    workers: 0,
    checkpoint: opts.checkpoint ?? null,
    metrics: opts.metrics ?? null,
    checkpointEvery: opts.checkpointEvery ?? 0,
    onProgress: (p: TrainProgress) => {
      if (p.type === 'step') steps++;
    },
  });
  try {
    await trainer.run();
    return { steps };
  } catch (e) {
    return { error: e as Error & { code?: string }, steps };
  } finally {
    await trainer.close();
  }
}

/** The CLI in a child process (a hang is a timeout there, status null, not a stuck test run). */
function cli(args: string[], timeout = 30_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const procfs = existsSync('/proc/self');

describe('checkpoint and metrics paths of a training run', () => {
  it('a checkpoint that cannot be written is refused before the first step (with checkpointEvery 0 the whole run was lost at the end)', async () => {
    // a plain file where the checkpoint's folder should be: no permission tricks, so it holds as root too
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const r = await train({ checkpoint: join(file, 'ck.safetensors') });
    expect(r.error?.code).toBe('ERR_CHECKPOINT');
    expect(r.error?.message).toMatch(/a-file\/ck\.safetensors: cannot write here \(ENOTDIR\)/);
    expect(r.steps).toBe(0);
    // a folder that does not exist yet is still created, and nothing is left beside the checkpoint
    const ok = await train({ checkpoint: join(dir, 'new', 'deeper', 'ck.safetensors') });
    expect(ok.error).toBeUndefined();
    expect(readdirSync(join(dir, 'new', 'deeper'))).toEqual(['ck.safetensors']);
  });

  it.skipIf(!procfs)('a checkpoint or metrics folder under /proc is an error, not a process spinning forever in mkdir', () => {
    // fs.mkdir('/proc/x/y', { recursive: true }) never returns: the CLI runs in a child with a time limit
    const t = cli(['train', '--max-steps', '1', '--train-size', '4', '--val-size', '4', '-b', '2', '--workers', '0',
      '--checkpoint', '/proc/alexnet-no-such/ck.safetensors', '--metrics', join(dir, 'm.jsonl')]);
    expect(t.status, t.stderr).toBe(1);
    expect(t.stderr).toMatch(/cannot create the folder '\/proc\/alexnet-no-such' \(ENOENT\) \(ERR_CHECKPOINT\)/);
    const m = cli(['train', '--max-steps', '1', '--train-size', '4', '--val-size', '4', '-b', '2', '--workers', '0',
      '--checkpoint', join(dir, 'ck.safetensors'), '--metrics', '/proc/alexnet-no-such/m.jsonl']);
    expect(m.status, m.stderr).toBe(1);
    expect(m.stderr).toMatch(/metrics log \/proc\/alexnet-no-such\/m\.jsonl: cannot create the folder '\/proc\/alexnet-no-such' \(ENOENT\) \(ERR_ARGUMENT\)/);
  }, 60_000);

  it('a metrics log that is a directory is ERR_ARGUMENT before the first step (it was a raw EISDIR)', async () => {
    const d = join(dir, 'metrics-dir');
    mkdirSync(d);
    const r = await train({ metrics: d });
    expect(r.error?.code).toBe('ERR_ARGUMENT');
    expect(r.error?.message).toMatch(/metrics log .*metrics-dir: is a directory/);
    expect(r.steps).toBe(0);
  });

  it('a metrics log that is a FIFO nobody reads is refused at once (appending blocked the run forever); with a reader it gets every record', async () => {
    const fifo = join(dir, 'metrics.fifo');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    const r = await train({ metrics: fifo });
    expect(r.error?.code).toBe('ERR_ARGUMENT');
    expect(r.error?.message).toMatch(/metrics\.fifo: is a FIFO \(named pipe\) that no process reads/);
    expect(Date.now() - t0).toBeLessThan(5000);

    // a reader (`cat`, which stops at the first writer's close) sees the whole log
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    reader.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const done = new Promise((res) => reader.on('close', res));
    try {
      await new Promise((res) => setTimeout(res, 200)); // cat has the FIFO open
      const ok = await train({ metrics: fifo });
      expect(ok.error).toBeUndefined();
      await done; // the log's one close ends cat
      const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { type: string });
      expect(lines.map((l) => l.type)).toEqual(['train', 'val']);
    } finally {
      reader.kill();
    }
  });
});

describe('plot, filters and samples outputs', () => {
  const log = '{"type":"train","step":1,"epoch":0,"trainLoss":1,"trainTop1":0.5}\n{"type":"val","step":1,"epoch":1,"valLoss":1,"valTop1":0.5,"valTop5":1}\n';

  it('plot -o a directory, a FIFO or a missing folder: ERR_CHECKPOINT naming it, nothing written (libvips printed its errors, or wrote nothing into the FIFO and said "wrote")', async () => {
    const d = join(dir, 'plot-dir');
    mkdirSync(d);
    const fifo = join(dir, 'plot.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const [out, msg] of [
      [d, /plot-dir: is a directory; give a file name for the PNG image/],
      [fifo, /plot\.fifo: is not a regular file \(a FIFO, socket or device\)/],
      [join(dir, 'missing', 'p.png'), /missing\/p\.png: writing the PNG image failed; .* is unchanged: ENOENT/],
    ] as const) {
      let err: (Error & { code?: string }) | undefined;
      await plotMetrics(log, out).catch((e: Error) => (err = e));
      expect(err?.code, out).toBe('ERR_CHECKPOINT');
      expect(err?.message).toMatch(msg);
    }
    expect(readdirSync(d)).toEqual([]);
    // and an ordinary path is written whole, with no temporary left
    const ok = join(dir, 'plot-ok', 'p.png');
    mkdirSync(join(dir, 'plot-ok'));
    expect(await plotMetrics(log, ok)).toEqual({ width: 1200, height: 500 });
    expect(readFileSync(ok).subarray(1, 4).toString()).toBe('PNG');
    expect(readdirSync(join(dir, 'plot-ok'))).toEqual(['p.png']);
    // the command line says so in one line
    writeFileSync(join(dir, 'm.jsonl'), log);
    const r = cli(['plot', join(dir, 'm.jsonl'), '-o', d]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^alexnet: .*plot-dir: is a directory; give a file name for the PNG image \(ERR_CHECKPOINT\)$/)]);
  });

  it('plot reads only a regular metrics log: a missing path, a directory, a FIFO nobody writes (it waited forever), a device (/dev/zero was read until the string overflowed) or a log over 256 MiB is ERR_ARGUMENT naming it', async () => {
    const fifo = join(dir, 'log.fifo');
    execFileSync('mkfifo', [fifo]);
    const big = join(dir, 'big.jsonl');
    writeFileSync(big, '');
    truncateSync(big, MAX_METRICS_LOG_BYTES + 1); // sparse: no disk
    for (const [path, msg] of [
      [join(dir, 'no-such.jsonl'), /no-such\.jsonl: cannot open \(ENOENT\)/],
      [dir, /: not a regular file \(it is a directory\)/],
      [fifo, /log\.fifo: not a regular file \(it is a FIFO \(named pipe\)\)/],
      ['/dev/zero', /\/dev\/zero: not a regular file \(it is a device\)/],
      [big, new RegExp(`big\\.jsonl: the metrics log is ${MAX_METRICS_LOG_BYTES + 1} bytes, more than the ${MAX_METRICS_LOG_BYTES}`)],
    ] as const) {
      let err: (Error & { code?: string }) | undefined;
      await readMetricsLog(path).catch((e: Error) => (err = e));
      expect(err?.code, path).toBe('ERR_ARGUMENT');
      expect(err?.message).toMatch(msg);
    }
    // the command line, in a child with a time limit (the FIFO hung it), says so in one line
    const r = cli(['plot', fifo, '-o', join(dir, 'fifo.png')], 20_000);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^alexnet: .*log\.fifo: not a regular file .* \(ERR_ARGUMENT\)$/)]);
    expect(existsSync(join(dir, 'fifo.png'))).toBe(false);
    // a log a run is still appending to (its last line incomplete) plots what is complete
    const live = join(dir, 'live.jsonl');
    writeFileSync(live, `${log}{"type":"train","st`);
    expect(parseMetricsLog(await readMetricsLog(live))).toHaveLength(2);
    expect(await plotMetricsFile(live, join(dir, 'live.png'))).toEqual({ width: 1200, height: 500 });
  });

  it.skipIf(!procfs)('samples into a folder under /proc or under a file: ERR_ARGUMENT, not a hang or a raw ENOTDIR', () => {
    const r = cli(['samples', '/proc/alexnet-no-such', '-n', '1'], 20_000);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/samples: cannot create the folder '\/proc\/alexnet-no-such' \(ENOENT\) \(ERR_ARGUMENT\)/);
    writeFileSync(join(dir, 'plain'), '');
    const f = cli(['samples', join(dir, 'plain'), '-n', '1'], 20_000);
    expect(f.status, f.stderr).toBe(1);
    expect(f.stderr).toMatch(/samples: '.*plain' is not a folder \(ERR_ARGUMENT\)|samples: cannot use the folder '.*plain\/\w+' \(ENOTDIR\) \(ERR_ARGUMENT\)/);
  }, 60_000);
});

/** Runs the CLI, closes its stdout after the first line (as `| head -1` does); resolves with its exit and stderr. */
function headOne(args: string[], timeout = 60_000): Promise<{ status: number | null; stderr: string; first: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [bin, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let first = '';
    const timer = setTimeout(() => c.kill('SIGKILL'), timeout);
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!first && out.includes('\n')) {
        first = out.slice(0, out.indexOf('\n'));
        c.stdout.destroy();
      }
    });
    c.on('error', reject);
    c.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr, first });
    });
  });
}

describe('a reader that goes away (`alexnet ... | head -1`)', () => {
  it('samples ends quietly with 141 (128 + SIGPIPE) instead of an uncaught EPIPE with a stack trace', async () => {
    const r = await headOne(['samples', join(dir, 'samples-head'), '-n', '500']);
    expect(r.first).toMatch(/samples-head\/hstripes\/0\.png$/);
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled|at /);
    expect(r.status).toBe(141);
    expect(readdirSync(join(dir, 'samples-head', 'hstripes')).length).toBeLessThan(250);
  });

  it('train stops as on Ctrl-C and saves its checkpoint (the uncaught EPIPE ended the run with nothing saved)', async () => {
    const ck = join(dir, 'head-ck.safetensors');
    const r = await headOne(['train', '--json', '--max-steps', '100', '--train-size', '24', '--val-size', '2', '-b', '2', '--lr', '0.0001',
      '--workers', '0', '--checkpoint', ck, '--checkpoint-every', '0', '--metrics', join(dir, 'head.jsonl')]);
    expect(r.first).toMatch(/^\{"type":"step","step":10,/);
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(r.status).toBe(0);
    expect(existsSync(ck)).toBe(true);
    const log = readFileSync(join(dir, 'head.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number });
    expect(log.at(-1)!.step).toBeLessThan(100); // it stopped early, at the interrupt
  });
});

describe('bench --batch', () => {
  it('each batch size is an integer from 1 to 1024 like every other batch flag (2000 went on to allocate gigabytes; "abc" was dropped silently)', () => {
    // (not run against the previous code: there these start a benchmark)
    for (const [value, bad] of [['2000', '2000'], ['1,abc', 'abc'], ['16,,64', ''], ['0', '0']]) {
      const r = cli(['bench', '--batch', value, '--reps', '1', '--no-peer', '--no-dist', '--no-bf16'], 20_000);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr.trim()).toBe(`alexnet: --batch must be an integer from 1 to 1024, got '${bad}' (ERR_ARGUMENT)`);
    }
  });
});
