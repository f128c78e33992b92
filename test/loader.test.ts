// The loader when no addon loads: one ERR_ADDON_NOT_FOUND error that names every path tried,
// why each failed, and what to do. Runs findNative() against an empty package folder, so the
// addon this test process loads elsewhere is not involved.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findNative } from '../src/native.js';

const platform = `${process.platform}-${process.arch}`;
let root = '';
let savedAddon: string | undefined;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'alexnet-loader-'));
  savedAddon = process.env.ALEXNET_ADDON;
  delete process.env.ALEXNET_ADDON;
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  if (savedAddon === undefined) delete process.env.ALEXNET_ADDON;
  else process.env.ALEXNET_ADDON = savedAddon;
});

function loadError(): Error & { code?: string } {
  try {
    findNative(root);
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('findNative() loaded an addon from an empty package folder');
}

describe('native loader: no addon anywhere', () => {
  it('one error lists every path tried and what to do', () => {
    const missing = join(root, 'elsewhere', 'alexnet.node');
    process.env.ALEXNET_ADDON = missing;
    const err = loadError();
    expect(err.code).toBe('ERR_ADDON_NOT_FOUND');
    const lines = err.message.split('\n');
    expect(lines[0]).toContain(`could not load the native addon (${platform}`);
    // every place, in the order tried, each with its reason
    const tried = lines.slice(lines.indexOf(lines.find((l) => l.endsWith('Tried:'))!) + 1, lines.indexOf('What to do:'));
    expect(tried).toEqual([
      `  ${missing}: not found`,
      `  ${join(root, 'prebuilds', platform, 'alexnet-node.napi.node')}: not found (no prebuilt binary for ${platform} in this package)`,
      `  ${join(root, 'build', 'Release', 'alexnet.node')}: not found`,
      `  ${join(root, 'build', 'Debug', 'alexnet.node')}: not found`,
      expect.stringMatching(new RegExp(`^  bindings search under ${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: Could not locate the bindings file`)),
    ]);
    // what to do: rebuild (and npm 11's approval), a checkout build, or ALEXNET_ADDON
    expect(err.message).toContain('npm rebuild alexnet-node');
    expect(err.message).toContain('npm install-scripts approve alexnet-node');
    expect(err.message).toContain('npm run build:native');
    expect(err.message).toContain('npx node-gyp rebuild');
    expect(err.message).toContain('ALEXNET_ADDON');
  });

  it('a prebuilt that does not load is listed with the reason it failed', () => {
    const dir = join(root, 'prebuilds', platform);
    mkdirSync(dir, { recursive: true });
    const bad = join(dir, 'alexnet-node.napi.node');
    writeFileSync(bad, 'not a shared object');
    const err = loadError();
    expect(err.code).toBe('ERR_ADDON_NOT_FOUND');
    const line = err.message.split('\n').find((l) => l.startsWith(`  ${bad}: `));
    expect(line).toBeDefined();
    expect(line).not.toMatch(/: not found$/);
    expect(line!.length).toBeGreaterThan(`  ${bad}: `.length);
    expect(err.message).toContain(`  ${join(root, 'build', 'Release', 'alexnet.node')}: not found`);
  });

  it('an empty prebuilds folder for this platform is named as such', () => {
    mkdirSync(join(root, 'prebuilds', platform), { recursive: true });
    const err = loadError();
    expect(err.message).toContain(`  ${join(root, 'prebuilds', platform, 'alexnet-node.napi.node')}: not found (no .node file in this folder)`);
  });
});
