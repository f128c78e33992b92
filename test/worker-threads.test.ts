// The addon used from several worker threads at once: terminating a worker mid-use must not
// take the process down, and a deferred error stays with the tensors (and thread) it belongs to.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadNative, nativePath } from '../src/native.js';

loadNative(); // nativePath() names the addon file once it is loaded
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

describe('worker threads', () => {
  it('survives worker.terminate() during operators and reads (16 rounds of 3 workers)', () => {
    // in a child process, so an abort is reported as a failure rather than killing the runner
    const r = spawnSync(process.execPath, [fixture('terminate-workers.cjs'), nativePath(), '16'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.signal, `stderr: ${r.stderr}`).toBeNull();
    expect(r.status, `stderr: ${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('survived 16');
    expect(r.stderr).not.toMatch(/terminate called|Napi::Error|FATAL/);
  }, 150_000);
});
