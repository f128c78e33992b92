// Training curves: a metrics log (JSON lines) drawn as two panels, loss and accuracy, in an SVG
// that sharp (librsvg) rasterises to PNG. No plotting library: axes, "nice" ticks, lines,
// markers and a legend are a few dozen SVG elements.
import sharp from 'sharp';
import { alexnetError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { openRegularFile } from '../io/safetensors.js';

/** One line of the metrics log written during training (every `logEvery` steps). */
export interface TrainMetricsRecord {
  type: 'train';
  /** Optimizer steps taken so far. */
  step: number;
  epoch: number;
  /** Mean training loss over the steps since the last record. */
  trainLoss: number;
  /** Training accuracies as fractions in [0, 1] (percentages are accepted too; see below). */
  trainTop1?: number;
  trainTop5?: number;
  lr?: number;
  /** Anything else the trainer adds (time, images/s, ...) is kept and ignored here. */
  [key: string]: unknown;
}

/** One line written after each validation pass. */
export interface ValMetricsRecord {
  type: 'val';
  step: number;
  epoch: number;
  valLoss?: number;
  /** Validation accuracies as fractions in [0, 1]. */
  valTop1: number;
  valTop5?: number;
  /** The training loss at that point, when the trainer includes it. */
  trainLoss?: number;
  [key: string]: unknown;
}

export type MetricsRecord = TrainMetricsRecord | ValMetricsRecord;

export interface PlotOptions {
  title?: string;
  /** Pixels; default 1200 x 500. */
  width?: number;
  height?: number;
}

/**
 * Parses a metrics log: one JSON object per line; blank lines and records of other types are
 * skipped, and so is an incomplete last line (a log still being written). Any other bad line is
 * an ERR_ARGUMENT error naming its line number.
 */
export function parseMetricsLog(text: string): MetricsRecord[] {
  const lines = text.split('\n');
  const out: MetricsRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      const isLast = lines.slice(i + 1).every((l) => l.trim() === '');
      if (isLast && !text.endsWith('\n')) break;
      throw alexnetError('ERR_ARGUMENT', `metrics log line ${i + 1} is not JSON (${(e as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw alexnetError('ERR_ARGUMENT', `metrics log line ${i + 1} is not a JSON object`);
    const r = v as Record<string, unknown>;
    if (r.type !== 'train' && r.type !== 'val') continue;
    if (typeof r.step !== 'number') throw alexnetError('ERR_ARGUMENT', `metrics log line ${i + 1}: 'step' must be a number`);
    out.push(r as unknown as MetricsRecord);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

interface Series {
  label: string;
  color: string;
  dash?: string;
  markers?: boolean;
  width?: number;
  points: [number, number][];
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function collect(records: readonly MetricsRecord[], type: 'train' | 'val', key: string, scale = 1): [number, number][] {
  const pts: [number, number][] = [];
  for (const r of records) {
    if (r.type !== type) continue;
    const x = num(r.step);
    const y = num(r[key]);
    if (x !== undefined && y !== undefined) pts.push([x, y * scale]);
  }
  return pts.sort((a, b) => a[0] - b[0]);
}

/** At most `max` points: consecutive points averaged in equal-sized groups. */
function thin(pts: [number, number][], max = 1500): [number, number][] {
  if (pts.length <= max) return pts;
  const out: [number, number][] = [];
  const per = pts.length / max;
  for (let g = 0; g < max; g++) {
    const a = Math.floor(g * per);
    const b = Math.floor((g + 1) * per);
    let sx = 0;
    let sy = 0;
    for (let i = a; i < b; i++) {
      sx += pts[i]![0];
      sy += pts[i]![1];
    }
    out.push([sx / (b - a), sy / (b - a)]);
  }
  return out;
}

/** Round-number ticks covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5, minStep = 0): { lo: number; hi: number; step: number; ticks: number[] } {
  if (!(hi > lo)) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = Math.max(minStep, (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag);
  const nlo = Math.floor(lo / step + 1e-9) * step;
  const nhi = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; nlo + i * step <= nhi + step * 1e-9; i++) ticks.push(nlo + i * step);
  return { lo: nlo, hi: nhi, step, ticks };
}

function fmtTick(v: number, step: number): string {
  const a = Math.abs(v);
  if (a >= 1e6 && step >= 1e5) return `${+(v / 1e6).toFixed(Math.max(0, -Math.floor(Math.log10(step / 1e6))))}M`;
  if (a >= 1e4 && step >= 1e3) return `${+(v / 1e3).toFixed(Math.max(0, -Math.floor(Math.log10(step / 1e3))))}k`;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(Math.min(decimals, 6));
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const r2 = (v: number): string => (Math.round(v * 100) / 100).toString();

const FONT = `font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif"`;

/** A panel's plot area and its scales: data coordinates to SVG coordinates. */
interface Frame {
  x0: number;
  y0: number;
  px: number;
  py: number;
  pw: number;
  ph: number;
  xt: ReturnType<typeof niceTicks>;
  yt: ReturnType<typeof niceTicks>;
  sx: (v: number) => number;
  sy: (v: number) => number;
}

/** The y range of the points, padded by 5% and clamped to `yClamp`. */
function yRange(all: readonly [number, number][], yClamp?: [number, number]): [number, number] {
  let ylo = Number.POSITIVE_INFINITY;
  let yhi = Number.NEGATIVE_INFINITY;
  for (const p of all) {
    ylo = Math.min(ylo, p[1]);
    yhi = Math.max(yhi, p[1]);
  }
  const pad = (yhi - ylo) * 0.05;
  ylo -= pad;
  yhi += pad;
  if (yClamp) {
    ylo = Math.max(ylo, yClamp[0]);
    yhi = Math.min(yhi, yClamp[1]);
  }
  return [ylo, yhi];
}

/** The plot background, grid, ticks, frame and axis labels. */
function axes(f: Frame, yLabel: string): string[] {
  const { x0, px, py, pw, ph, xt, yt, sx, sy } = f;
  const out: string[] = [];
  out.push(`<rect x="${px}" y="${py}" width="${pw}" height="${ph}" fill="#ffffff" stroke="none"/>`);
  for (const t of yt.ticks) {
    const y = r2(sy(t));
    out.push(`<line x1="${px}" y1="${y}" x2="${px + pw}" y2="${y}" stroke="#e4e4e4" stroke-width="1"/>`);
    out.push(`<line x1="${px - 5}" y1="${y}" x2="${px}" y2="${y}" stroke="#333" stroke-width="1"/>`);
    out.push(`<text x="${px - 8}" y="${y}" dy="0.35em" text-anchor="end" font-size="12" fill="#333" ${FONT}>${fmtTick(t, yt.step)}</text>`);
  }
  for (const t of xt.ticks) {
    const x = r2(sx(t));
    out.push(`<line x1="${x}" y1="${py}" x2="${x}" y2="${py + ph}" stroke="#e4e4e4" stroke-width="1"/>`);
    out.push(`<line x1="${x}" y1="${py + ph}" x2="${x}" y2="${py + ph + 5}" stroke="#333" stroke-width="1"/>`);
    out.push(`<text x="${x}" y="${py + ph + 19}" text-anchor="middle" font-size="12" fill="#333" ${FONT}>${fmtTick(t, xt.step)}</text>`);
  }
  out.push(`<rect x="${px}" y="${py}" width="${pw}" height="${ph}" fill="none" stroke="#333" stroke-width="1"/>`);
  out.push(`<text x="${r2(px + pw / 2)}" y="${py + ph + 40}" text-anchor="middle" font-size="13" fill="#222" ${FONT}>step</text>`);
  const ly = r2(py + ph / 2);
  out.push(`<text x="${x0 + 16}" y="${ly}" text-anchor="middle" font-size="13" fill="#222" transform="rotate(-90 ${x0 + 16} ${ly})" ${FONT}>${esc(yLabel)}</text>`);
  return out;
}

/** Lines and markers, clipped to the plot area. */
function curves(f: Frame, series: readonly Series[]): string[] {
  const { x0, y0, px, py, pw, ph, sx, sy } = f;
  const out: string[] = [];
  const clip = `clip${Math.round(x0)}_${Math.round(y0)}`;
  out.push(`<clipPath id="${clip}"><rect x="${px - 4}" y="${py - 4}" width="${pw + 8}" height="${ph + 8}"/></clipPath>`);
  out.push(`<g clip-path="url(#${clip})">`);
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${r2(sx(p[0]))},${r2(sy(p[1]))}`).join('');
    out.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2}" stroke-linejoin="round" stroke-linecap="round"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    );
    if (s.markers || s.points.length === 1) {
      for (const p of s.points) out.push(`<circle cx="${r2(sx(p[0]))}" cy="${r2(sy(p[1]))}" r="3" fill="${s.color}"/>`);
    }
  }
  out.push('</g>');
  return out;
}

/**
 * The legend, in the corner whose box covers the fewest points (curves that fall keep the top
 * free, rising ones the bottom).
 */
function legend(f: Frame, series: readonly Series[], all: readonly [number, number][]): string[] {
  const { px, py, pw, ph, sx, sy } = f;
  const out: string[] = [];
  const shown = series.filter((s) => s.points.length > 0);
  const lw = 8 + shown.reduce((a, s) => Math.max(a, s.label.length), 0) * 7.2 + 40;
  const lh = shown.length * 18 + 8;
  const corners: [number, number][] = [
    [px + pw - lw - 8, py + 8],
    [px + pw - lw - 8, py + ph - lh - 8],
    [px + 8, py + ph - lh - 8],
    [px + 8, py + 8],
  ];
  const covered = ([cx, cy]: [number, number]): number =>
    all.reduce((n, p) => {
      const x = sx(p[0]);
      const y = sy(p[1]);
      return n + (x >= cx - 4 && x <= cx + lw + 4 && y >= cy - 4 && y <= cy + lh + 4 ? 1 : 0);
    }, 0);
  let [lx, lyy] = corners[0]!;
  let best = Number.POSITIVE_INFINITY;
  for (const corner of corners) {
    const n = covered(corner);
    if (n < best) {
      best = n;
      [lx, lyy] = corner;
    }
  }
  out.push(`<rect x="${r2(lx)}" y="${lyy}" width="${r2(lw)}" height="${lh}" fill="#ffffff" fill-opacity="0.9" stroke="#bbb" rx="3"/>`);
  shown.forEach((s, i) => {
    const y = lyy + 13 + i * 18;
    out.push(`<line x1="${r2(lx + 8)}" y1="${y}" x2="${r2(lx + 32)}" y2="${y}" stroke="${s.color}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${r2(lx + 38)}" y="${y}" dy="0.35em" font-size="12" fill="#222" ${FONT}>${esc(s.label)}</text>`);
  });
  return out;
}

/** One titled panel at (x0, y0) of size w x h: axes, the series' curves and a legend ("no data" when empty). */
function panel(
  x0: number,
  y0: number,
  w: number,
  h: number,
  title: string,
  yLabel: string,
  xDomain: [number, number],
  series: Series[],
  yClamp?: [number, number],
): string {
  const m = { left: 64, right: 16, top: 34, bottom: 48 };
  const px = x0 + m.left;
  const py = y0 + m.top;
  const pw = w - m.left - m.right;
  const ph = h - m.top - m.bottom;
  const out: string[] = [];
  out.push(`<text x="${r2(px + pw / 2)}" y="${r2(y0 + 20)}" text-anchor="middle" font-size="15" font-weight="bold" ${FONT}>${esc(title)}</text>`);
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) {
    out.push(`<rect x="${px}" y="${py}" width="${pw}" height="${ph}" fill="#fafafa" stroke="#999"/>`);
    out.push(`<text x="${r2(px + pw / 2)}" y="${r2(py + ph / 2)}" text-anchor="middle" font-size="14" fill="#888" ${FONT}>no data</text>`);
    return out.join('\n');
  }
  const [ylo, yhi] = yRange(all, yClamp);
  const yt = niceTicks(ylo, yhi, 6);
  const xt = niceTicks(xDomain[0], xDomain[1], 6, 1); // steps are whole numbers
  const frame: Frame = {
    x0, y0, px, py, pw, ph, xt, yt,
    sx: (v) => px + ((v - xt.lo) / (xt.hi - xt.lo)) * pw,
    sy: (v) => py + ph - ((v - yt.lo) / (yt.hi - yt.lo)) * ph,
  };
  out.push(...axes(frame, yLabel), ...curves(frame, series), ...legend(frame, series, all));
  return out.join('\n');
}

/** The plot as an SVG document. */
export function metricsSvg(records: readonly MetricsRecord[], options: PlotOptions = {}): string {
  const width = options.width ?? 1200;
  const height = options.height ?? 500;
  if (!(width >= 200 && height >= 150 && width <= 10000 && height <= 10000)) {
    throw alexnetError('ERR_ARGUMENT', `plotMetrics: width and height must be between 200x150 and 10000x10000, got ${width}x${height}`);
  }
  // Accuracies are fractions; a log that holds percentages (any value > 1) is drawn as is.
  const accKeys = ['trainTop1', 'trainTop5', 'valTop1', 'valTop5'];
  const isPercent = records.some((r) => accKeys.some((k) => (num(r[k]) ?? 0) > 1));
  const accScale = isPercent ? 1 : 100;

  const trainLoss = thin(collect(records, 'train', 'trainLoss'));
  const valLoss = collect(records, 'val', 'valLoss');
  const loss: Series[] = [
    { label: 'train loss', color: '#1f77b4', points: trainLoss, width: trainLoss.length > 200 ? 1.5 : 2 },
    { label: 'val loss', color: '#d62728', points: valLoss, markers: valLoss.length <= 60 },
  ];
  const v1 = collect(records, 'val', 'valTop1', accScale);
  const v5 = collect(records, 'val', 'valTop5', accScale);
  const acc: Series[] = [
    { label: 'train top-1', color: '#1f77b4', points: thin(collect(records, 'train', 'trainTop1', accScale)), width: 1.5 },
    { label: 'train top-5', color: '#1f77b4', dash: '6 4', points: thin(collect(records, 'train', 'trainTop5', accScale)), width: 1.5 },
    { label: 'val top-1', color: '#d62728', points: v1, markers: v1.length <= 60 },
    { label: 'val top-5', color: '#d62728', dash: '6 4', points: v5, markers: v5.length <= 60 },
  ];
  const xDomain: [number, number] = [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
  for (const r of records) {
    const s = num(r.step);
    if (s === undefined) continue;
    xDomain[0] = Math.min(xDomain[0], s);
    xDomain[1] = Math.max(xDomain[1], s);
  }
  if (!(xDomain[1] >= xDomain[0])) xDomain.splice(0, 2, 0, 1);

  const last = [...records].reverse();
  const lastVal = last.find((r) => r.type === 'val') as ValMetricsRecord | undefined;
  const lastAny = last[0];
  const parts: string[] = [];
  if (lastAny) parts.push(`step ${lastAny.step}`, `epoch ${String(lastAny.epoch)}`);
  if (lastVal && num(lastVal.valTop1) !== undefined) parts.push(`val top-1 ${(lastVal.valTop1 * accScale).toFixed(2)}%`);
  if (lastVal && num(lastVal.valTop5) !== undefined) parts.push(`val top-5 ${(lastVal.valTop5! * accScale).toFixed(2)}%`);
  const title = options.title ?? 'AlexNet training';

  const top = 56;
  const half = width / 2;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="18" font-weight="bold" fill="#111" ${FONT}>${esc(title)}</text>`,
    `<text x="${width / 2}" y="44" text-anchor="middle" font-size="12" fill="#555" ${FONT}>${esc(parts.join('  ·  '))}</text>`,
    panel(0, top, half, height - top, 'Loss', 'cross-entropy loss', xDomain, loss),
    panel(half, top, half, height - top, 'Accuracy', 'accuracy (%)', xDomain, acc, [0, 100]),
    '</svg>',
  ].join('\n');
}

/**
 * Draws the metrics log (its JSON-lines text, or parsed records) as a PNG with two panels:
 * train/val loss and top-1/top-5 accuracy against the step.
 */
export async function plotMetrics(log: string | readonly MetricsRecord[], outPath: string, options: PlotOptions = {}): Promise<{ width: number; height: number }> {
  const records = typeof log === 'string' ? parseMetricsLog(log) : log;
  const svg = metricsSvg(records, options);
  // written atomically, like checkpoints: a directory, a FIFO or a folder that is not there is
  // an ERR_CHECKPOINT error naming the path (sharp's toFile printed libvips' errors, or wrote
  // nothing into a FIFO and said it had)
  const { data, info } = await sharp(Buffer.from(svg)).png().toBuffer({ resolveWithObject: true });
  await writeFileAtomic(outPath, [data], { what: 'the PNG image', noun: 'PNG image' });
  return { width: info.width, height: info.height };
}

/** The largest metrics log readMetricsLog takes: 256 MiB, about a million records. */
export const MAX_METRICS_LOG_BYTES = 256 * 2 ** 20;

/**
 * Reads a metrics log file: a regular file of at most MAX_METRICS_LOG_BYTES, read up to the size
 * it had when opened (a log a run is still appending to ends in an incomplete line, which
 * parseMetricsLog leaves out). A FIFO, a device or a directory is refused, not waited on or read
 * without end; every refusal is an ERR_ARGUMENT error naming the path.
 */
export async function readMetricsLog(path: string): Promise<string> {
  const argumentError = (message: string, cause?: unknown) => alexnetError('ERR_ARGUMENT', message, cause);
  const fh = await openRegularFile(path, argumentError);
  try {
    const { size } = await fh.stat();
    if (size > MAX_METRICS_LOG_BYTES) {
      throw argumentError(`${path}: the metrics log is ${size} bytes, more than the ${MAX_METRICS_LOG_BYTES} plot reads; plot its last records instead (tail -n 500000 log.jsonl > part.jsonl)`);
    }
    const buf = Buffer.allocUnsafe(size);
    let n = 0;
    while (n < size) {
      const { bytesRead } = await fh.read(buf, n, size - n, n);
      if (bytesRead === 0) break; // truncated while read: what there was
      n += bytesRead;
    }
    return buf.toString('utf8', 0, n);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === undefined || code.startsWith('ERR_')) throw e;
    throw argumentError(`${path}: reading the metrics log failed (${code})`, e);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Reads a metrics log file (readMetricsLog) and plots it. */
export async function plotMetricsFile(logPath: string, outPath: string, options: PlotOptions = {}): Promise<{ width: number; height: number }> {
  return plotMetrics(await readMetricsLog(logPath), outPath, options);
}
