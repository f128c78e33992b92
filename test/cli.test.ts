// The `alexnet` command as a user runs it: info --json, a training run stopped with SIGINT
// (Ctrl-C) that leaves a checkpoint which eval loads, and --resume continuing with the recorded
// run's options.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, readRunConfig } from '../src/index.js';

const bin = join(__dirname, '..', 'bin', 'alexnet.js');
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('alexnet CLI', () => {
  it('info --json answers with the version and both backends', () => {
    const r = spawnSync(process.execPath, [bin, 'info', '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.backends.cpu.available).toBe(true);
    expect(typeof info.backends.cuda.compiled).toBe('boolean');
    expect(typeof info.backends.cuda.available).toBe('boolean');
    expect(typeof info.backends.cuda.reason).toBe('string');
    // the plain form names the convolution path the JSON reports
    const plain = spawnSync(process.execPath, [bin, 'info'], { encoding: 'utf8' });
    expect(plain.status).toBe(0);
    const cpuLine = plain.stdout.split('\n').find((l) => l.startsWith('cpu '))!;
    if (info.backends.cpu.directConvIsa === 'none') expect(cpuLine).toMatch(/convolutions: im2col \+ GEMM[;,]/);
    else expect(cpuLine).toContain(`convolutions: direct (${info.backends.cpu.directConvIsa}) where it applies`);
    expect(cpuLine).toContain('Winograd for stride-1 3x3 and 5x5 layers with enough work'); // 'auto' picks it by size
    // the dtypes, and the bfloat16 kernel the JSON reports
    const dtypes = plain.stdout.split('\n').find((l) => l.startsWith('dtypes '))!;
    expect(dtypes).toContain('bfloat16');
    const cpu = info.backends.cpu;
    expect(cpu.bf16Kernel).toBe(cpu.bf16AmxHardware ? 'amx_bf16' : cpu.bf16Hardware ? 'avx512_bf16' : 'portable');
    expect(dtypes).toContain(cpu.bf16AmxHardware ? 'AMX (tiles) and AVX-512 BF16' : cpu.bf16Hardware ? 'AVX-512 BF16' : 'portable');
  });

  it('Ctrl-C during training saves a checkpoint that eval can load', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alexnet-cli-'));
    dirs.push(dir);
    const ckpt = join(dir, 'ck.safetensors');
    const child = spawn(process.execPath, [bin, 'train', '--train-size', '256', '--val-size', '16', '--batch-size', '4', '--epochs', '1',
      '--checkpoint', ckpt, '--checkpoint-every', '0', '--metrics', join(dir, 'm.jsonl'), '--workers', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let sent = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      // the first progress line means training is under way: interrupt it
      if (!sent && out.includes('"type":"step"')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(sent).toBe(true);
    expect(code, err).toBe(0);
    const summary = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(summary.type).toBe('summary');
    expect(summary.stopped).toBe('interrupted');
    expect(summary.checkpoint).toBe(ckpt);
    const ck = await loadCheckpoint(ckpt);
    expect(ck.step).toBe(summary.steps);
    expect(ck.weights['features.0.weight']?.shape).toEqual([96, 3, 11, 11]);
    const ev = spawnSync(process.execPath, [bin, 'eval', ckpt, '--json'], { encoding: 'utf8' });
    expect(ev.status).toBe(0);
    expect(JSON.parse(ev.stdout).valTop1).toBeGreaterThanOrEqual(0);
  }, 180_000);

  it('--resume continues with the options the run recorded; changing one that defines the run is refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alexnet-cli-'));
    dirs.push(dir);
    const ckpt = join(dir, 'ck.safetensors');
    const files = ['--checkpoint', ckpt, '--metrics', join(dir, 'm.jsonl'), '--workers', '0', '--json'];
    const train = (args: string[]) => spawnSync(process.execPath, [bin, 'train', ...args, ...files], { encoding: 'utf8' });
    const summary = (r: ReturnType<typeof train>) => JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    // 12 images at batch 4 (not the default 32, which is larger than the set): 3 steps an epoch;
    // stopped after 2 steps, inside the first epoch
    const first = train(['--train-size', '12', '--val-size', '4', '--batch-size', '4', '--lr', '0.001', '--seed', '7', '--epochs', '1', '--max-steps', '2', '--checkpoint-every', '0']);
    expect(first.status, first.stderr).toBe(0);
    expect(summary(first).steps).toBe(2);
    const recorded = await readRunConfig(ckpt);
    expect(recorded.train).toEqual({ batchSize: 4, epochs: 1, lr: 0.001, momentum: 0.9, weightDecay: 5e-4, convention: 'pytorch', schedule: 'none', warmup: 0, seed: 7, checkpointEvery: 0, precision: 'fp32' });
    expect(recorded.data).toEqual({ kind: 'synthetic', trainSize: 12, valSize: 4, seed: 7 });

    // an option that defines the run, given with another value: refused, the checkpoint untouched
    for (const bad of [['--lr', '0.01'], ['--batch-size', '2'], ['--seed', '8'], ['--train-size', '16'], ['--schedule', 'plateau'], ['--precision', 'bf16']]) {
      const r = train(['--resume', ckpt, ...bad]);
      expect(r.status, bad.join(' ')).not.toBe(0);
      expect(r.stderr).toContain('ERR_ARGUMENT');
      expect(r.stderr).toContain(`${bad[0]} ${bad[1]} differs from the run in ${ckpt}`);
    }
    expect((await loadCheckpoint(ckpt)).step).toBe(2);

    // no options: batch 4 and seed 7 from the checkpoint finish epoch 1 (3 steps); with the
    // default batch size the set would be smaller than one batch. The same value given
    // explicitly is accepted, and --epochs may grow the run.
    const rest = train(['--resume', ckpt, '--lr', '0.001']);
    expect(rest.status, rest.stderr).toBe(0);
    expect(summary(rest).steps).toBe(3);
    const more = train(['--resume', ckpt, '--epochs', '2']);
    expect(more.status, more.stderr).toBe(0);
    expect(summary(more).steps).toBe(6);
    expect((await readRunConfig(ckpt)).train).toMatchObject({ batchSize: 4, epochs: 2, lr: 0.001, seed: 7 });
  }, 240_000);

  it('--channels-last trains (the layout is not recorded: a resume may drop it); --config paper2012 refuses it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alexnet-cli-'));
    dirs.push(dir);
    const ckpt = join(dir, 'ck.safetensors');
    const files = ['--checkpoint', ckpt, '--metrics', join(dir, 'm.jsonl'), '--workers', '0', '--json'];
    const train = (args: string[]) => spawnSync(process.execPath, [bin, 'train', ...args, ...files], { encoding: 'utf8' });
    const first = train(['--channels-last', '--train-size', '4', '--val-size', '2', '--batch-size', '2', '--epochs', '1', '--max-steps', '1', '--checkpoint-every', '0']);
    expect(first.status, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout.trim().split('\n').at(-1)!).steps).toBe(1);
    expect((await readRunConfig(ckpt)).train).not.toHaveProperty('channelsLast');
    expect((await loadCheckpoint(ckpt)).weights['features.0.weight']?.shape).toEqual([96, 3, 11, 11]);
    const resumed = train(['--resume', ckpt, '--epochs', '2', '--max-steps', '3']);
    expect(resumed.status, resumed.stderr).toBe(0);
    const lrn = train(['--config', 'paper2012', '--channels-last', '--train-size', '4', '--val-size', '2', '--batch-size', '2', '--max-steps', '1']);
    expect(lrn.status).not.toBe(0);
    expect(lrn.stderr).toContain('ERR_ARGUMENT');
    expect(lrn.stderr).toContain('LocalResponseNorm');
  }, 180_000);
});
