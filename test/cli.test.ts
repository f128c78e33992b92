// The `alexnet` command as a user runs it: info --json, and a training run stopped with
// SIGINT (Ctrl-C) that leaves a checkpoint which eval loads.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/index.js';

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
});
