import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filtersImage, metricsSvg, niceTicks, parseMetricsLog, plotMetrics, renderFilters, type MetricsRecord } from '../src/viz/index.js';
import { expectCode, rng } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'alexnet-viz-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

async function decode(path: string): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const file = await readFile(path);
  expect(file.subarray(0, 8).equals(PNG_SIGNATURE), 'PNG signature').toBe(true);
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Pixels in a rectangle: how many are not white, and how many are clearly blue-ish / red-ish. */
function regionStats(img: { data: Buffer; width: number; channels: number }, x0: number, y0: number, x1: number, y1: number) {
  let nonWhite = 0;
  let blue = 0;
  let red = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const p = (y * img.width + x) * img.channels;
      const [r, g, b] = [img.data[p]!, img.data[p + 1]!, img.data[p + 2]!];
      if (r < 245 || g < 245 || b < 245) nonWhite++;
      if (b > 150 && r < 100) blue++;
      if (r > 170 && g < 90 && b < 90) red++;
    }
  }
  return { nonWhite, blue, red };
}

function variance(data: Buffer): number {
  let s = 0;
  let s2 = 0;
  for (const v of data) {
    s += v;
    s2 += v * v;
  }
  const m = s / data.length;
  return s2 / data.length - m * m;
}

function syntheticLog(r: () => number, steps = 3000): string {
  const lines: string[] = [];
  for (let step = 0; step <= steps; step += 10) {
    const epoch = Math.floor(step / 1000);
    lines.push(JSON.stringify({ type: 'train', step, epoch, trainLoss: 6.9 * Math.exp(-step / 1500) + 0.5 + 0.2 * r(), trainTop1: 0.6 * (1 - Math.exp(-step / 1000)), lr: 0.01 }));
    if (step > 0 && step % 500 === 0) {
      lines.push(JSON.stringify({ type: 'val', step, epoch, valLoss: 6.9 * Math.exp(-step / 1700) + 1, valTop1: 0.5 * (1 - Math.exp(-step / 1000)), valTop5: 0.8 * (1 - Math.exp(-step / 800)) }));
    }
  }
  lines.push(JSON.stringify({ type: 'note', text: 'ignored' }));
  return lines.join('\n') + '\n';
}

describe('plotMetrics', () => {
  it('writes a two-panel PNG of the expected size that is not blank', async () => {
    const out = join(dir, 'metrics.png');
    const size = await plotMetrics(syntheticLog(rng()), out, { title: 'test run' });
    expect(size).toEqual({ width: 1200, height: 500 });
    const img = await decode(out);
    expect([img.width, img.height]).toEqual([1200, 500]);
    expect(variance(img.data)).toBeGreaterThan(0);
    // Inside each panel's plot area (away from axes and legend): curves are drawn in colour.
    const left = regionStats(img, 70, 100, 590, 440);
    const right = regionStats(img, 670, 100, 1190, 440);
    expect(left.nonWhite).toBeGreaterThan(500);
    expect(right.nonWhite).toBeGreaterThan(500);
    expect(left.blue, 'train loss curve').toBeGreaterThan(100);
    expect(left.red, 'val loss curve').toBeGreaterThan(100);
    expect(right.red, 'val accuracy curves').toBeGreaterThan(100);
    // The title band holds dark text (fonts render).
    const title = regionStats(img, 400, 0, 800, 50);
    expect(title.nonWhite, 'title text').toBeGreaterThan(50);
  });

  it('takes parsed records and a custom size; an empty log still gives a (labelled) image', async () => {
    const records: MetricsRecord[] = [
      { type: 'train', step: 1, epoch: 0, trainLoss: 2.3 },
      { type: 'train', step: 2, epoch: 0, trainLoss: 2.1 },
      { type: 'val', step: 2, epoch: 0, valTop1: 0.1 },
    ];
    const out = join(dir, 'small.png');
    expect(await plotMetrics(records, out, { width: 640, height: 360 })).toEqual({ width: 640, height: 360 });
    const img = await decode(out);
    expect([img.width, img.height]).toEqual([640, 360]);
    const empty = join(dir, 'empty.png');
    await plotMetrics('', empty);
    expect(variance((await decode(empty)).data)).toBeGreaterThan(0);
    expect(metricsSvg([])).toContain('no data');
  });

  it('parses JSON lines: skips blanks, other record types and an unfinished last line; names a bad line', () => {
    const text = '{"type":"train","step":1,"epoch":0,"trainLoss":2}\n\n{"type":"meta"}\n{"type":"val","step":1,"epoch":0,"valTop1":0.5}\n{"type":"tr';
    const recs = parseMetricsLog(text);
    expect(recs.map((r) => r.type)).toEqual(['train', 'val']);
    expectCode(() => parseMetricsLog('{"type":"train","step":1}\nnot json\n{"type":"train","step":2}\n'), 'ERR_ARGUMENT', /line 2 is not JSON/);
    expectCode(() => parseMetricsLog('{"type":"train","step":"x"}\n'), 'ERR_ARGUMENT', /line 1: 'step' must be a number/);
    expectCode(() => metricsSvg([], { width: 10 }), 'ERR_ARGUMENT', /width and height/);
  });

  it('escapes text and draws percentages as given', () => {
    const svg = metricsSvg([{ type: 'val', step: 3, epoch: 1, valTop1: 42 }], { title: '<b>&"' });
    expect(svg).toContain('&lt;b&gt;&amp;&quot;');
    expect(svg).toContain('val top-1 42.00%');
  });

  it('chooses round tick values', () => {
    expect(niceTicks(0, 5000).ticks).toEqual([0, 1000, 2000, 3000, 4000, 5000]);
    expect(niceTicks(0.13, 0.87, 4).ticks.map((t) => +t.toFixed(10))).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    const flat = niceTicks(2, 2);
    expect(flat.lo).toBeLessThan(2);
    expect(flat.hi).toBeGreaterThan(2);
  });
});

describe('renderFilters', () => {
  it('draws 96 random 11x11 RGB kernels as a 16 x 6 grid of the expected size', async () => {
    const r = rng();
    const data = Float32Array.from({ length: 96 * 3 * 11 * 11 }, () => r() - 0.5);
    const out = join(dir, 'filters.png');
    const info = await renderFilters({ data, shape: [96, 3, 11, 11] }, out);
    // 16 columns of 44 px (11 x scale 4) with 1 px gaps between and around: 16*44 + 17.
    expect(info).toEqual({ width: 16 * 44 + 17, height: 6 * 44 + 7, columns: 16, rows: 6 });
    const img = await decode(out);
    expect([img.width, img.height, img.channels]).toEqual([721, 271, 3]);
    // The PNG holds exactly the raw grid.
    expect(img.data.equals(filtersImage({ data, shape: [96, 3, 11, 11] }).data)).toBe(true);
    expect(variance(img.data)).toBeGreaterThan(100);
    const wide = await renderFilters({ data, shape: [96, 3, 11, 11] }, join(dir, 'filters-2.png'), { scale: 2, columns: 8, gap: 2 });
    expect(wide).toEqual({ width: 8 * 22 + 9 * 2, height: 12 * 22 + 13 * 2, columns: 8, rows: 12 });
  });

  it('maps each kernel min to 0 and max to 255 (per kernel), scales by nearest neighbour, and leaves gaps', async () => {
    const kh = 2;
    const kw = 3;
    const plane = kh * kw;
    // Kernel 0: a ramp over (channel, y, x), min at R(0,0), max at B(1,2). Kernel 1: constant.
    // Kernel 2: values in [-100, 100] with known positions.
    const data = new Float32Array(3 * 3 * plane);
    for (let i = 0; i < 3 * plane; i++) data[i] = 10 + i; // 10..27
    data.fill(7, 3 * plane, 6 * plane);
    data.fill(0, 6 * plane, 9 * plane);
    data[6 * plane + plane + 1] = -100; // G at (0,1)
    data[6 * plane + 2 * plane + 5] = 100; // B at (1,2)
    const scale = 3;
    const gap = 2;
    const out = join(dir, 'known.png');
    const info = await renderFilters({ data, shape: [3, 3, kh, kw] }, out, { scale, gap, columns: 2 });
    expect(info).toEqual({ width: 2 * 9 + 3 * 2, height: 2 * 6 + 3 * 2, columns: 2, rows: 2 });
    const img = await decode(out);
    const px = (x: number, y: number): number[] => {
      const p = (y * img.width + x) * 3;
      return [img.data[p]!, img.data[p + 1]!, img.data[p + 2]!];
    };
    /** Pixel of kernel k's element (y, x), checking the whole scale x scale block agrees. */
    const elem = (k: number, y: number, x: number): number[] => {
      const x0 = gap + (k % 2) * (kw * scale + gap) + x * scale;
      const y0 = gap + Math.floor(k / 2) * (kh * scale + gap) + y * scale;
      const v = px(x0, y0);
      for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) expect(px(x0 + dx, y0 + dy)).toEqual(v);
      return v;
    };
    const ramp = (i: number): number => Math.round((i / (3 * plane - 1)) * 255);
    expect(elem(0, 0, 0)).toEqual([0, ramp(plane), ramp(2 * plane)]);
    expect(elem(0, 1, 2)).toEqual([ramp(5), ramp(plane + 5), 255]);
    expect(elem(0, 0, 1)).toEqual([ramp(1), ramp(plane + 1), ramp(2 * plane + 1)]);
    expect(elem(1, 0, 0)).toEqual([128, 128, 128]); // constant kernel: mid grey
    expect(elem(2, 0, 1)).toEqual([128, 0, 128]); // min -> 0, zeros -> 128 (of -100..100)
    expect(elem(2, 1, 2)).toEqual([128, 128, 255]); // max -> 255
    // Gaps (and the unused 4th cell) are the white background.
    expect(px(0, 0)).toEqual([255, 255, 255]);
    expect(px(gap + kw * scale, gap)).toEqual([255, 255, 255]);
    expect(px(gap + kw * scale + gap + 1, gap + kh * scale + gap + 1)).toEqual([255, 255, 255]);
  });

  it('grey kernels (1 input channel) and shape errors', async () => {
    const im = filtersImage({ data: Float32Array.from([0, 1, 2, 3]), shape: [1, 1, 2, 2] }, { scale: 1, gap: 0 });
    expect([...im.data]).toEqual([0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255]);
    expectCode(() => filtersImage({ data: new Float32Array(8), shape: [2, 2, 1, 2] }), 'ERR_SHAPE', /3 \(RGB\) or 1 input channels/);
    expectCode(() => filtersImage({ data: new Float32Array(5), shape: [1, 3, 1, 2] }), 'ERR_SHAPE', /holds 6 values but data has 5/);
    expectCode(() => filtersImage({ data: new Float32Array(6), shape: [3, 2] }), 'ERR_SHAPE', /\[O, 3, kH, kW\]/);
    expectCode(() => filtersImage({ data: new Float32Array(6), shape: [1, 3, 1, 2] }, { scale: 0 }), 'ERR_ARGUMENT', /scale must be an integer >= 1/);
  });
});
