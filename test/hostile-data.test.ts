// Image folders from a careless or hostile world: symbolic link cycles, dangling links, folders
// that cannot be read, names that are not UTF-8, and images whose header asks for more memory
// than a resized image may take. Each is a coded error (or, where it cannot matter, left out)
// before anything big is allocated, never a crash, a hang or a raw ENOENT.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataLoader, ImageFolder, MAX_DECODED_BYTES, MAX_RESIZE_SIZE, type DataWarning, type Dataset } from '../src/data/index.js';
import { rejection } from './helpers.js';

let tmp: string;
let png: Buffer; // a valid 64x64 RGB PNG
let n = 0;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'alexnet-hostile-data-'));
  png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } }).png().toBuffer();
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A fresh root with classes a and b holding one image each. */
function folder(): string {
  const root = join(tmp, `root-${n++}`);
  for (const c of ['a', 'b']) {
    mkdirSync(join(root, c), { recursive: true });
    writeFileSync(join(root, c, '1.png'), png);
  }
  return root;
}


describe('listing an image folder', () => {
  it('a symbolic link back into its own folder is an ERR_DATA cycle error, not 41 copies of each image (or a hang with two links)', async () => {
    const self = folder();
    symlinkSync('.', join(self, 'a', 'again'));
    const e1 = await rejection(ImageFolder.open(self, { resizeSize: 64, cropSize: 32 }));
    expect(e1.code).toBe('ERR_DATA');
    expect(e1.message).toMatch(/symbolic link cycle: '.*a\/again' is the folder '.*\/a' that contains it/);

    // two such links: 2^40 paths before the kernel's ELOOP, which never finished
    const two = folder();
    symlinkSync('.', join(two, 'a', 'x'));
    symlinkSync('.', join(two, 'a', 'y'));
    const t0 = Date.now();
    expect((await rejection(ImageFolder.open(two, { resizeSize: 64, cropSize: 32 }))).code).toBe('ERR_DATA');
    expect(Date.now() - t0).toBeLessThan(2000);

    const up = folder();
    symlinkSync('..', join(up, 'a', 'up'));
    expect((await rejection(ImageFolder.open(up, { resizeSize: 64, cropSize: 32 }))).message).toMatch(/symbolic link cycle/);
  });

  it('two links to one folder list its images once; a link to a folder elsewhere is followed', async () => {
    const root = folder();
    const shared = join(tmp, `shared-${n++}`);
    mkdirSync(shared);
    writeFileSync(join(shared, 's.png'), png);
    symlinkSync(shared, join(root, 'a', 'l1'));
    symlinkSync(shared, join(root, 'a', 'l2'));
    const ds = await ImageFolder.open(root, { resizeSize: 64, cropSize: 32 });
    expect(ds.files).toEqual(['a/1.png', 'a/l1/s.png', 'b/1.png']);
    expect((await ds.load(1)).label).toBe(0);
  });

  it('a dangling link or a link loop beside the class folders is left out (it was a raw ENOENT / ELOOP error)', async () => {
    const root = folder();
    symlinkSync(join(tmp, 'no-such-folder'), join(root, 'dangling'));
    symlinkSync('loop', join(root, 'loop'));
    const ds = await ImageFolder.open(root, { resizeSize: 64, cropSize: 32 });
    expect(ds.classNames).toEqual(['a', 'b']);
    expect(ds.length).toBe(2);
  });

  it('a class folder that cannot be read is ERR_DATA naming it (it was a raw EACCES)', async (ctx) => {
    // a folder this process cannot list: mode 000, or (as root, which ignores modes) a /proc
    // folder that refuses even root
    const locked = join(tmp, `locked-${n++}`);
    mkdirSync(locked);
    chmodSync(locked, 0);
    const candidates = [locked, '/proc/1/map_files'];
    const target = candidates.find((d) => {
      try {
        readdirSync(d);
        return false;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'EACCES' || (e as NodeJS.ErrnoException).code === 'EPERM';
      }
    });
    if (target === undefined) ctx.skip();
    const root = folder();
    symlinkSync(target!, join(root, 'c'));
    const e = await rejection(ImageFolder.open(root));
    chmodSync(locked, 0o755);
    expect(e.code).toBe('ERR_DATA');
    expect(e.message).toMatch(/cannot read the folder '.*\/c'/);
  });

  it('an image whose name is not UTF-8 is refused when the folder is opened (it failed mid-epoch); skipCorrupt leaves it out with a warning', async () => {
    const root = folder();
    const name = Buffer.concat([Buffer.from(join(root, 'a') + '/'), Buffer.from([0x66, 0xff, 0xfe]), Buffer.from('.png')]);
    writeFileSync(name, png);
    const e = await rejection(ImageFolder.open(root, { resizeSize: 64, cropSize: 32 }));
    expect(e.code).toBe('ERR_DATA');
    expect(e.message).toMatch(/the name of an image is not valid UTF-8: '.*\/a\/f\uFFFD\uFFFD\.png'/);
    const warnings: DataWarning[] = [];
    const ds = await ImageFolder.open(root, { resizeSize: 64, cropSize: 32, skipCorrupt: true, onWarning: (w) => warnings.push(w) });
    expect(ds.files).toEqual(['a/1.png', 'b/1.png']);
    expect(warnings.map((w) => w.message)).toEqual([expect.stringMatching(/not valid UTF-8: .*\(left out\)$/)]);
    for (let i = 0; i < ds.length; i++) await ds.load(i);
  });
});

describe('decompression bombs', () => {
  it('an image of extreme aspect ratio is refused from its header, before its resized form is allocated', async () => {
    // 1x1500 pixels resized to a shorter side of 256 is 256x384000: 295 MB, over the bound
    // (a 1x30000 one, 5.9 GB, took the process down with an abort in sharp)
    const root = folder();
    await sharp({ create: { width: 1, height: 1500, channels: 3, background: '#808080' } }).png().toFile(join(root, 'a', 'tall.png'));
    await sharp({ create: { width: 1000, height: 100, channels: 3, background: '#808080' } }).png().toFile(join(root, 'b', 'wide.png'));
    const ds = await ImageFolder.open(root, { train: false });
    const tall = ds.files.indexOf('a/tall.png');
    const rss = process.memoryUsage().rss;
    const e = await rejection(ds.load(tall));
    expect(e.code).toBe('ERR_DATA');
    expect(e.message).toMatch(/tall\.png': its 1x1500 pixels resized to a shorter side of 256 would be 256x384000 \(294912000 bytes, more than the 268435456 allowed\)/);
    expect(process.memoryUsage().rss - rss).toBeLessThan(MAX_DECODED_BYTES / 2);
    // an ordinary panorama (10:1) still loads
    expect((await ds.load(ds.files.indexOf('b/wide.png'))).image.length).toBe(3 * 227 * 227);
    // skipCorrupt skips it like any unreadable image
    const warnings: DataWarning[] = [];
    const skipping = await ImageFolder.open(root, { train: false, skipCorrupt: true, onWarning: (w) => warnings.push(w) });
    expect((await skipping.load(tall)).index).not.toBe(tall);
    expect(warnings[0]!.message).toMatch(/extreme aspect ratio/);
  });

  it('resizeSize (and so cropSize) is bounded: every image resized to it must fit the bound', async () => {
    const root = folder();
    expect(MAX_RESIZE_SIZE).toBe(9459);
    const e = await rejection(ImageFolder.open(root, { resizeSize: 100_000, cropSize: 64 }));
    expect(e.code).toBe('ERR_DATA');
    expect(e.message).toMatch(/resizeSize must be at most 9459, got 100000/);
    await ImageFolder.open(root, { resizeSize: MAX_RESIZE_SIZE, cropSize: 64 });
  });
});

describe('options of the wrong type', () => {
  it('ImageFolder: extensions, split and onWarning of the wrong type are ERR_DATA when the folder is opened (a TypeError, or one thrown mid-epoch by the first skipped file)', async () => {
    const root = folder();
    for (const [opts, msg] of [
      [{ extensions: 'png' }, /extensions must be an array of strings/],
      [{ split: 3 }, /split must be a string, got number/],
      [{ onWarning: 'log', skipCorrupt: true }, /onWarning must be a function, got string/],
    ] as const) {
      const e = await rejection(ImageFolder.open(root, opts as never));
      expect(e.code).toBe('ERR_DATA');
      expect(e.message).toMatch(msg);
    }
  });

  it('DataLoader: a describe() that a worker cannot receive is ERR_DATA (it was a DOMException with code 25)', async () => {
    const ds: Dataset = {
      length: 4,
      classNames: ['a'],
      sampleShape: [3, 4, 4],
      load: () => ({ image: new Float32Array(48), label: 0 }),
      describe: () => ({ kind: 'synthetic', options: { size: 4, render: () => 1 } }) as never,
    };
    const loader = new DataLoader(ds, { batchSize: 2, workers: 1 });
    const e = await rejection((async () => {
      for await (const _ of loader) void _;
    })());
    await loader.close();
    expect(e.code).toBe('ERR_DATA');
    expect(e.message).toMatch(/cannot start the worker threads: .*could not be cloned/);
  });
});

describe('an image folder that does not fit the model', () => {
  it('train --classes 2 on a folder of 3 classes is refused before the first step (the first label 2 failed the run mid-epoch)', () => {
    const root = folder();
    mkdirSync(join(root, 'c'));
    writeFileSync(join(root, 'c', '1.png'), png);
    const ck = join(tmp, `ck-${n++}.safetensors`);
    const r = spawnSync(process.execPath, [join(__dirname, '..', 'bin', 'alexnet.js'), 'train', '--data', root, '--classes', '2', '-b', '1', '--max-steps', '3',
      '--epochs', '1', '--workers', '0', '--checkpoint', ck, '--checkpoint-every', '1', '--metrics', join(tmp, `m-${n++}.jsonl`), '--json'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/the image folder '.*' has 3 class folders but the model has 2 classes \(labels 2 and above would be out of range\) \(ERR_ARGUMENT\)/);
    expect(r.stdout).not.toMatch(/"type":"step"/);
    expect(existsSync(ck)).toBe(false);
  }, 60_000);
});
