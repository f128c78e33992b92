// The package's install step (scripts/install.mjs) as npm runs it in an installed copy: the
// prebuilt binary when it loads, else a build from source; when that build cannot run (no
// compiler, make or python3 on PATH) it fails with a message that says what to install.
// Runs in a scratch copy of the package files, never in the checkout (node-gyp rebuild would
// replace build/). .ci/run installs the packed tarball and checks a real build from source.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadNative, nativePath } from '../src/native.js';

const repo = join(__dirname, '..');
const platform = `${process.platform}-${process.arch}`;
const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
let pkg = '';
let bin = '';

beforeEach(() => {
  const dir = mkdtempSync(join(tmpdir(), 'alexnet-install-'));
  pkg = join(dir, 'alexnet-node');
  bin = join(dir, 'bin');
  for (const f of ['package.json', 'binding.gyp', 'scripts/install.mjs', 'scripts/detect.mjs', 'native/sources.json']) {
    mkdirSync(join(pkg, f, '..'), { recursive: true });
    copyFileSync(join(repo, f), join(pkg, f));
  }
  // a PATH with node and nothing else: no compiler, make, python3, cmake or nvcc
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
});
afterEach(() => rmSync(join(pkg, '..'), { recursive: true, force: true }));

function install(): { status: number | null; stdout: string; stderr: string } {
  const env: Record<string, string> = { PATH: bin, HOME: join(pkg, '..'), ALEXNET_CUDA: '0', npm_config_node_gyp: nodeGyp };
  const r = spawnSync(process.execPath, [join(pkg, 'scripts', 'install.mjs')], { cwd: pkg, env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectWhatToInstall(stderr: string): void {
  expect(stderr).toContain('alexnet-node: building the native addon from source failed');
  expect(stderr).toContain('C++17 compiler, make and python3');
  expect(stderr).toContain('sudo apt-get install g++ make python3');
  expect(stderr).toContain('Then run the install again');
}

describe('install step (scripts/install.mjs)', () => {
  it('uses a prebuilt binary that loads, and builds nothing', () => {
    loadNative();
    mkdirSync(join(pkg, 'prebuilds', platform), { recursive: true });
    copyFileSync(nativePath(), join(pkg, 'prebuilds', platform, 'alexnet-node.napi.node'));
    const r = install();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`using the prebuilt binary ${join('prebuilds', platform, 'alexnet-node.napi.node')}`);
    expect(r.stdout).not.toContain('building from source');
  });

  it('no prebuilt for this platform: builds from source, and a failed build says what to install', () => {
    mkdirSync(join(pkg, 'prebuilds', 'other-arch'), { recursive: true }); // a prebuilt for another platform only
    const r = install();
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`no prebuilt binary for ${platform} (this package carries other-arch): building from source`);
    expect(r.stdout).toContain('node-gyp.js rebuild --jobs=max');
    expect(r.stdout).toContain('building the CPU backend only');
    expectWhatToInstall(r.stderr);
    expect(r.stderr).toContain(`(no prebuilt binary for ${platform}`);
  });

  it('a prebuilt that does not load here: builds from source, and says why', () => {
    mkdirSync(join(pkg, 'prebuilds', platform), { recursive: true });
    writeFileSync(join(pkg, 'prebuilds', platform, 'alexnet-node.napi.node'), 'not a shared object');
    const r = install();
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('prebuilt alexnet-node.napi.node does not load here');
    expect(r.stdout).toContain(`the prebuilt binary for ${platform} does not load here: building from source`);
    expectWhatToInstall(r.stderr);
  });
});
